//! `GET /orders/sagas/stuck`: the order service's `stuck_sagas` endpoint (an operator route) as a Spin component.
spin_kit::endpoint!(GET "/orders/sagas/stuck" => order_service::stuck_sagas);
