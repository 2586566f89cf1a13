//! `GET /rentals/:rental_id`: the order service's `rental` endpoint as a Spin component.
spin_kit::endpoint!(GET "/rentals/:rental_id" => order_service::rental);
