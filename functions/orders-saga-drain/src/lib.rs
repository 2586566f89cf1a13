//! `POST /orders/saga/drain`: drives the due sagas of every workflow (checkouts, rentals, returns); called by the saga worker.
spin_kit::endpoint!(POST "/orders/saga/drain" => order_service::worker::drain_endpoint);
