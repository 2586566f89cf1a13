//! `POST /rentals`: the order service's `rent` endpoint (a rental saga) as a Spin component.
spin_kit::endpoint!(POST "/rentals" => order_service::rent);
