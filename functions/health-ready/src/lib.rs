//! `GET /health/ready`: readiness: stores, migrations, saga worker (`app_health::ready`) as a Spin component.
spin_kit::endpoint!(GET "/health/ready" => app_health::ready);
