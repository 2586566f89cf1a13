//! `POST /orders/saga/:saga_id/redrive`: the order service's `redrive_saga` endpoint (an operator route) as a Spin component.
spin_kit::endpoint!(POST "/orders/saga/:saga_id/redrive" => order_service::redrive_saga);
