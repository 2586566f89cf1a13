//! `GET /health/live`: liveness: the app answers (`app_health::live`) as a Spin component.
spin_kit::endpoint!(GET "/health/live" => app_health::live);
