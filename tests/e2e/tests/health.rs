//! The health endpoints: `GET /health/live`, `GET /health/ready` (each check with its result and
//! latency; 503 naming the failing check while a store is down, 200 again once it is back), and
//! the saga worker's heartbeat and its process's probe (`GET /health/worker`).

use e2e::own_stores::OwnStores;
use e2e::{App, Reply, Value};
use std::time::{Duration, Instant};

const CHECKS: [&str; 7] =
    ["redis", "postgres_accounts", "postgres_stock", "postgres_orders", "postgres_payment", "migrations", "worker"];

fn app_on(stores: &OwnStores, extra: &[(&str, &str)]) -> App {
    let mut env = stores.app_env();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    App::start_with_env(&env)
}

/// Asks `probe` until `done` holds for its answer (or panics after `limit`, showing the last).
fn wait_for(
    what: &str,
    limit: Duration,
    mut probe: impl FnMut() -> Option<Reply>,
    done: impl Fn(&Reply) -> bool,
) -> Reply {
    let deadline = Instant::now() + limit;
    loop {
        let reply = probe();
        if let Some(reply) = reply.as_ref().filter(|r| done(r)) {
            return reply.clone();
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}; last answer: {reply:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The check `name` of a health answer.
fn check(reply: &Reply, name: &str) -> Value {
    let body = reply.json();
    assert!(body["checks"][name].is_object(), "no check {name}: {reply:?}");
    body["checks"][name].clone()
}

fn ready(app: &App) -> Option<Reply> {
    app.try_request("GET", "/health/ready").ok()
}

#[test]
fn live_answers_and_ready_passes_every_check_on_a_healthy_app() {
    let app = App::start();
    let live = app.get("/health/live");
    assert_eq!(live.status, 200, "{live:?}");
    assert_eq!(live.json(), e2e::json!({ "status": "ok" }));
    assert_eq!(live.content_length, Some(live.body.len()));

    // A worker beats with every ring of its supervisor (2 s): the heartbeat's age goes down again
    // (a key left by an earlier run would only grow older).
    let age = |r: &Reply| r.json()["checks"]["worker"]["heartbeat_age_ms"].as_u64();
    let first = wait_for("a heartbeat in /health/ready", Duration::from_secs(30), || ready(&app), |r| age(r).is_some());
    let ready = wait_for(
        "a fresher heartbeat",
        Duration::from_secs(30),
        || ready(&app),
        |r| matches!((age(r), age(&first)), (Some(now), Some(then)) if now < then),
    );
    assert_eq!(ready.status, 200, "{ready:?}");
    assert_eq!(ready.json()["status"], "ok");
    assert_eq!(ready.content_length, Some(ready.body.len()));
    for name in CHECKS {
        let c = check(&ready, name);
        assert_eq!(c["status"], "ok", "{name}: {ready:?}");
        assert!(c["latency_ms"].is_u64(), "{name}: {ready:?}");
    }
    let migrations = check(&ready, "migrations");
    assert_eq!(migrations["expected"], migrations["latest"], "{ready:?}");
    assert_eq!(app.post("/health/ready").status, 405);
}

#[test]
fn ready_fails_naming_the_store_that_is_down_and_recovers_when_it_is_back() {
    let stores = OwnStores::start("health-store-faults");
    let app = app_on(&stores, &[]);
    let recovery = Duration::from_secs(60);
    wait_for("ready", recovery, || ready(&app), |r| r.status == 200);

    stores.run(&["stop-redis"]);
    let down = ready(&app).expect("/health/ready answers while Redis is down");
    assert_eq!(down.status, 503, "{down:?}");
    assert_eq!(down.json()["status"], "fail");
    assert_eq!(check(&down, "redis")["status"], "fail", "{down:?}");
    assert!(check(&down, "redis")["error"].is_string(), "{down:?}");
    for name in ["postgres_accounts", "postgres_stock", "postgres_orders", "postgres_payment", "migrations"] {
        assert_eq!(check(&down, name)["status"], "ok", "{name}: {down:?}");
    }
    assert_eq!(app.get("/health/live").status, 200, "live does not depend on the stores");
    stores.run(&["start-redis"]);
    wait_for("ready after Redis is back", recovery, || ready(&app), |r| r.status == 200);

    stores.run(&["stop-postgres"]);
    let down = ready(&app).expect("/health/ready answers while Postgres is down");
    assert_eq!(down.status, 503, "{down:?}");
    for name in ["postgres_accounts", "postgres_stock", "postgres_orders", "postgres_payment", "migrations"] {
        assert_eq!(check(&down, name)["status"], "fail", "{name}: {down:?}");
    }
    assert_eq!(check(&down, "redis")["status"], "ok", "{down:?}");
    stores.run(&["start-postgres"]);
    let back = wait_for("ready after Postgres is back", recovery, || ready(&app), |r| r.status == 200);
    for name in CHECKS {
        assert_eq!(check(&back, name)["status"], "ok", "{name}: {back:?}");
    }
}

/// The worker's heartbeat, and what its silence does: with a saga due and the worker silent past
/// `worker_max_silence_seconds` (2 here), the worker check fails — in `/health/ready` reported
/// but not failing the HTTP app unless `health_ready_requires_worker` is "true", and in the
/// worker process's own probe, which fails. The supervisor's doorbell is slowed to once an hour,
/// so the worker runs only when the test rings it: a live process whose worker does not run.
#[test]
fn a_silent_worker_fails_its_checks_only_while_sagas_are_due() {
    let stores = OwnStores::start("health-worker-silence");
    let slow = [("SPIN_VARIABLE_WORKER_MAX_SILENCE_SECONDS", "2"), ("MARKET_WORKER_RING_SECONDS", "3600")];
    let app = app_on(&stores, &slow);
    let strict = app_on(&stores, &[slow[0], slow[1], ("SPIN_VARIABLE_HEALTH_READY_REQUIRES_WORKER", "true")]);
    strict.stop_worker();
    let ring = || stores.redis_cli(&["-n", "1", "PUBLISH", "orders:doorbell", "ring"]);
    let probe = |app: &App| app.try_worker_get("/health/worker").ok();
    let limit = Duration::from_secs(60);

    // Rung, the worker runs and records its heartbeat: its own and the shared one.
    let ran = wait_for(
        "the worker's probe after a ring",
        limit,
        || {
            ring();
            probe(&app)
        },
        |r| r.status == 200 && r.json()["checks"]["worker"]["heartbeat_age_ms"].is_u64(),
    );
    assert_eq!(check(&ran, "redis")["status"], "ok", "{ran:?}");
    let r = wait_for(
        "a heartbeat in ready",
        limit,
        || ready(&app),
        |r| r.json()["checks"]["worker"]["heartbeat_age_ms"].is_u64(),
    );
    assert_eq!(r.status, 200, "{r:?}");

    // Silent for longer than allowed, but nothing is due: fine.
    std::thread::sleep(Duration::from_secs(3));
    let idle = probe(&app).expect("probe answers");
    assert_eq!(idle.status, 200, "silent with nothing due: {idle:?}");
    assert!(check(&idle, "worker")["heartbeat_age_ms"].as_u64().expect("age") > 2000, "{idle:?}");
    assert_eq!(check(&idle, "worker")["oldest_due_saga_age_ms"], Value::Null, "{idle:?}");

    // A saga due (as a checkout whose driver died leaves one), and nobody rings the worker.
    stores.redis_cli(&["-n", "1", "ZADD", "orders:sagas:active", "1", "health-test-due-saga"]);
    let failing = wait_for("the worker's probe failing", limit, || probe(&app), |r| r.status == 503);
    let worker = check(&failing, "worker");
    assert_eq!(worker["status"], "fail", "{failing:?}");
    assert!(worker["error"].as_str().expect("error").contains("saga worker"), "{failing:?}");
    assert!(worker["oldest_due_saga_age_ms"].is_u64(), "{failing:?}");
    let reported = ready(&app).expect("ready answers");
    assert_eq!(reported.status, 200, "the HTTP app stays ready by default: {reported:?}");
    assert_eq!(check(&reported, "worker")["status"], "fail", "{reported:?}");
    assert_eq!(check(&reported, "worker")["required"], false, "{reported:?}");
    let gated = ready(&strict).expect("ready answers");
    assert_eq!(gated.status, 503, "health_ready_requires_worker: {gated:?}");
    assert_eq!(check(&gated, "worker")["status"], "fail", "{gated:?}");
    assert_eq!(check(&gated, "worker")["required"], true, "{gated:?}");

    // Rung again, the worker runs (and drains what is due): its probe passes again.
    wait_for(
        "the worker's probe after the ring",
        limit,
        || {
            ring();
            probe(&app)
        },
        |r| r.status == 200,
    );

    // A worker that is gone does not answer its probe at all.
    app.stop_worker();
    assert!(probe(&app).is_none(), "the worker's probe answered with the worker stopped");
}
