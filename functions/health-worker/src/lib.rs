//! `GET /health/worker`: the saga worker process's probe (`app_health::worker`) as a Spin component.
spin_kit::endpoint!(GET "/health/worker" => app_health::worker);
