//! `GET /metrics`: the app's counters and the saga gauges, in Prometheus text format.
spin_kit::endpoint!(GET "/metrics" => order_service::ops::metrics_endpoint);
