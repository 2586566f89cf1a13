//! The WDM consistency scenario with a fault in the middle of the checkouts: the app host killed
//! with SIGKILL and restarted, Redis restarted, Postgres restarted. Clients may see errors during
//! the fault, but no lie: after a bounded recovery wait, every saga is finished, stock and money
//! are conserved, every 2xx order is paid and every 409 order is not. And a fault of our own
//! making: the lock of the shared batch of forward steps taken over by a leader that is dead.

use e2e::market::in_parallel;
use e2e::{App, Reply, stores};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The faults touch shared stores: one scenario at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const STOCK: i64 = 100;
const ORDERS: usize = 1000;
/// How long sagas may take to be finished after the fault.
const RECOVERY_LIMIT: Duration = Duration::from_secs(90);

fn scenario(fault: impl FnOnce(&App) + Send) -> Vec<Option<Reply>> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let app = App::start();
    let item = app.new_item(1, STOCK);
    let users: Vec<String> = in_parallel(16, &[(); ORDERS], |_| app.new_user(1));
    let orders: Vec<String> = in_parallel(16, &users, |u| app.new_order(u, &[(&item, 1)]));

    let answered = AtomicUsize::new(0);
    let replies: Vec<Option<Reply>> = std::thread::scope(|s| {
        let faulting = s.spawn(|| {
            // Early, while stock remains: the fault must hit sagas on their way to success.
            while answered.load(Ordering::Relaxed) < STOCK as usize / 3 {
                std::thread::sleep(Duration::from_millis(5));
            }
            fault(&app);
        });
        let replies = in_parallel(32, &orders, |o| {
            let reply = app.try_request("POST", &format!("/orders/checkout/{o}")).ok();
            answered.fetch_add(1, Ordering::Relaxed);
            reply
        });
        faulting.join().expect("fault thread");
        replies
    });

    // Recovery: every saga that started must finish without any request arriving.
    app.wait_until_sagas_finish(&orders, RECOVERY_LIMIT);

    let paid: Vec<bool> = in_parallel(16, &orders, |o| app.order(o)["paid"].as_bool().expect("paid"));
    let credits: Vec<i64> = in_parallel(16, &users, |u| app.credit_of(u));
    let sold = paid.iter().filter(|p| **p).count() as i64;
    assert_eq!(app.stock_of(&item).0 + sold, STOCK, "stock conserved");
    assert_eq!(credits.iter().sum::<i64>() + sold, ORDERS as i64, "money conserved");
    for i in 0..ORDERS {
        assert_eq!(credits[i], if paid[i] { 0 } else { 1 }, "order {} paid iff its user was charged", orders[i]);
        match replies[i].as_ref().map(|r| r.status) {
            Some(200) => assert!(paid[i], "order {} got 2xx but is not paid", orders[i]),
            Some(409) => assert!(!paid[i], "order {} got 409 but is paid", orders[i]),
            _ => {} // no answer or 5xx during the fault: either outcome, as long as it is consistent
        }
    }
    assert!(sold <= STOCK);
    let ok = replies.iter().filter(|r| r.as_ref().is_some_and(|r| r.status == 200)).count();
    eprintln!("{ok} checkouts answered 2xx, {sold} orders paid after recovery");
    replies
}

#[test]
fn app_host_killed_and_restarted_mid_run() {
    let _ = scenario(|app| {
        app.kill();
        app.restart();
    });
}

/// Redis goes down for a few seconds and comes back. As under Spin, the saga worker's process
/// ends with its Redis trigger; its supervisor starts it again. The process serving HTTP has no
/// Redis trigger, so it keeps answering: during the outage with a JSON 503 at once, never a hang.
#[test]
fn redis_restarted_mid_run() {
    let _ = scenario(|app| {
        let worker_ends = |app: &App| app.worker_log_text().matches("worker process ended").count();
        let ends_before = worker_ends(app);
        stores(&["stop-redis"]);
        for path in ["/stock/find/some-item", "/orders/checkout/some-order", "/payment/create_user"] {
            let method = if path.starts_with("/stock/find") { "GET" } else { "POST" };
            let started = Instant::now();
            let reply = app
                .try_request(method, path)
                .unwrap_or_else(|e| panic!("{method} {path}: no answer while Redis is down: {e}"));
            if reply.status >= 500 || path.starts_with("/orders/checkout") {
                assert_eq!(reply.status, 503, "{method} {path} while Redis is down: {reply:?}");
                assert_eq!(reply.json()["error"], "unavailable", "{method} {path}: {reply:?}");
            }
            assert!(started.elapsed() < Duration::from_secs(5), "{method} {path} took {:?}", started.elapsed());
        }
        std::thread::sleep(Duration::from_secs(2));
        stores(&["start-redis"]);
        assert!(app.http_process_alive(), "the HTTP process ended with Redis; its log:\n{}", app.log_text());
        let deadline = Instant::now() + Duration::from_secs(30);
        while worker_ends(app) == ends_before {
            assert!(
                Instant::now() < deadline,
                "the worker process did not end with its Redis connection:\n{}",
                app.worker_log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(app.worker_supervisor_alive(), "the worker's supervisor ended:\n{}", app.worker_log_text());
    });
}

#[test]
fn postgres_restarted_mid_run() {
    let _ = scenario(|_| stores(&["restart-postgres"]));
}

/// The checkout leading the shared batches dies with the lock and with the sagas it had taken
/// from the queue (here: the lock is taken over, for 5 s, by a leader that never sends anything,
/// and what was queued in its first second is deleted). Those sagas get no answers: after 2 s
/// each sends its steps on its own, so clients only wait, with no error at all.
#[test]
fn batch_leader_dead_with_the_lock_and_its_sagas_mid_run() {
    let replies = scenario(|_| {
        stores(&["redis-cli", "-n", "1", "SET", "orders:fwd:leader", "dead", "PX", "5000"]);
        std::thread::sleep(Duration::from_secs(1));
        stores(&["redis-cli", "-n", "1", "DEL", "orders:fwd:queue"]);
    });
    let statuses: Vec<Option<u16>> = replies.iter().map(|r| r.as_ref().map(|r| r.status)).collect();
    assert!(
        statuses.iter().all(|s| matches!(s, Some(200) | Some(409))),
        "every checkout answered 200 or 409: {statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == Some(200)).count(), STOCK as usize, "exactly the stock sold");
}
