//! `POST /orders/saga/drain`: drives the due checkout sagas; called by the saga worker.
spin_kit::endpoint!(POST "/orders/saga/drain" => order_service::worker::drain_endpoint);
