//! `POST /rentals/:rental_id/return`: the order service's `return_rental` endpoint (a return saga) as a Spin component.
spin_kit::endpoint!(POST "/rentals/:rental_id/return" => order_service::return_rental);
