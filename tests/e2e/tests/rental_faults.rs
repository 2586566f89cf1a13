//! The rental saga with a fault in the middle: many borrowers race for the units of one item
//! while the app host is killed with SIGKILL and restarted, Redis restarted, or Postgres
//! restarted. Clients may see errors during the fault, but no lie: after a bounded recovery wait,
//! no rental is pending, each active rental holds a unit, a charge and a credit, each failed one
//! holds nothing, stock and money are conserved, every 201 rental is active and every 409 one
//! failed.

use e2e::accounts::Session;
use e2e::market::in_parallel;
use e2e::{App, Reply, json, repo_root, sql, stores};
use std::collections::HashMap;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The faults touch shared stores: one scenario at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const STOCK: i64 = 100;
const BORROWERS: usize = 300;
/// Each borrower's credit: enough for the longest rental (3 days at 1 a day).
const FUNDS: i64 = 5;
/// How long rentals may take to be settled after the fault.
const RECOVERY_LIMIT: Duration = Duration::from_secs(90);
/// How long a client keeps sending a request the app refused to connect for (it is restarting).
const RECONNECT_LIMIT: Duration = Duration::from_secs(60);

struct Borrower {
    session: Session,
    days: i64,
}

/// A rental of the item as the stores hold it, with its participants' ledger rows.
#[derive(Debug)]
struct Row {
    rental_id: String,
    borrower: String,
    state: String,
    amount: i64,
    /// The state of its stock reservation ("" if none).
    reservation: String,
    /// Its charge as "state,user,amount" ("" if none).
    charge: String,
    /// Its credits as "state,user,amount", separated by ";" ("" if none).
    credits: String,
}

/// `POST /rentals` as `borrower`; `None` when no whole answer came. A connection the app refused
/// (down, restarting) never reached it: that request is sent again, for a while.
fn rent(agent: &ureq::Agent, app: &App, borrower: &Borrower, item: &str) -> Option<Reply> {
    let body = json!({ "item_id": item, "days": borrower.days }).to_string();
    let auth = borrower.session.bearer();
    let started = Instant::now();
    loop {
        let sent = agent
            .post(&format!("{}/rentals", app.base))
            .header("content-type", "application/json")
            .header("authorization", auth.as_str())
            .send(body.as_bytes());
        match sent {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let body = response.body_mut().read_to_string().ok()?;
                return Some(Reply { status, content_length: None, body, headers: Vec::new() });
            }
            Err(ureq::Error::Io(e))
                if e.kind() == std::io::ErrorKind::ConnectionRefused && started.elapsed() < RECONNECT_LIMIT =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(_) => return None,
        }
    }
}

/// Runs one SQL statement; `None` if it fails (e.g. Postgres is still coming back).
fn try_sql(statement: &str) -> Option<Vec<String>> {
    let out = Command::new(repo_root().join("infra/stores"))
        .args(["psql", "-v", "ON_ERROR_STOP=1", "-Atc", statement])
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect())
}

/// Waits until every rental of `item` is settled (active or failed), without any request
/// arriving: what is left pending the saga worker must finish.
fn wait_until_settled(item: &str) {
    let deadline = Instant::now() + RECOVERY_LIMIT;
    let query =
        format!("SELECT count(*) FROM orders.rentals WHERE item_id = '{item}' AND state NOT IN ('active', 'failed')");
    loop {
        let unsettled = try_sql(&query);
        if unsettled.as_deref() == Some(&["0".to_string()][..]) {
            return;
        }
        assert!(Instant::now() < deadline, "rentals still unsettled after {RECOVERY_LIMIT:?}: {unsettled:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn rows(item: &str) -> Vec<Row> {
    let saga = "'rental:' || r.rental_id";
    let lines = sql(&format!(
        "SELECT r.rental_id, r.borrower_id, r.state, r.amount, \
           coalesce((SELECT s.state FROM stock.reservations s WHERE s.saga_id = {saga}), ''), \
           coalesce((SELECT c.state || ',' || coalesce(c.user_id, '') || ',' || coalesce(c.amount::text, '') \
                     FROM payment.charges c WHERE c.saga_id = {saga}), ''), \
           coalesce((SELECT string_agg(k.state || ',' || coalesce(k.user_id, '') || ',' || coalesce(k.amount::text, ''), ';') \
                     FROM payment.credits k WHERE k.saga_id = {saga}), '') \
         FROM orders.rentals r WHERE r.item_id = '{item}'"
    ));
    lines
        .iter()
        .map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            assert_eq!(f.len(), 7, "{line}");
            Row {
                rental_id: f[0].to_string(),
                borrower: f[1].to_string(),
                state: f[2].to_string(),
                amount: f[3].parse().unwrap_or_else(|_| panic!("amount: {line}")),
                reservation: f[4].to_string(),
                charge: f[5].to_string(),
                credits: f[6].to_string(),
            }
        })
        .collect()
}

fn credit_of(app: &App, user: &Session) -> i64 {
    let found = app.as_user(user, "GET", &format!("/payment/find_user/{}", user.user_id));
    assert_eq!(found.status, 200, "{found:?}");
    found.json()["credit"].as_i64().expect("credit")
}

fn scenario(fault: impl FnOnce(&App) + Send) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let app = App::start();
    let owner = app.new_session("lender");
    let listing =
        json!({ "title": "Crowded tent", "category": "faults", "daily_price": 1, "price": 10, "stock": STOCK });
    let listed = app.send(
        "POST",
        "/stock/items",
        &[("content-type", "application/json"), ("authorization", &owner.bearer())],
        listing.to_string().as_bytes(),
    );
    assert_eq!(listed.status, 201, "{listed:?}");
    let item = listed.json()["item_id"].as_str().expect("item_id").to_string();
    // Registering costs an argon2 hash each: 16 at a time.
    let indexes: Vec<usize> = (0..BORROWERS).collect();
    let borrowers: Vec<Borrower> = in_parallel(16, &indexes, |i| {
        let session = app.new_session("renter");
        let funded = app.as_user(&session, "POST", &format!("/payment/add_funds/{}/{FUNDS}", session.user_id));
        assert_eq!(funded.status, 200, "{funded:?}");
        Borrower { session, days: 1 + (*i as i64 % 3) }
    });
    let owner_before = credit_of(&app, &owner);
    let total_before = owner_before + FUNDS * BORROWERS as i64;

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let answered = AtomicUsize::new(0);
    let replies: Vec<Option<Reply>> = std::thread::scope(|s| {
        let faulting = s.spawn(|| {
            // Early, while units remain: the fault must hit sagas on their way to success.
            while answered.load(Ordering::Relaxed) < STOCK as usize / 3 {
                std::thread::sleep(Duration::from_millis(5));
            }
            fault(&app);
        });
        let replies = in_parallel(32, &borrowers, |b| {
            let reply = rent(&agent, &app, b, &item);
            answered.fetch_add(1, Ordering::Relaxed);
            reply
        });
        faulting.join().expect("fault thread");
        replies
    });

    // Recovery: every rental that started must be settled without any request arriving.
    wait_until_settled(&item);

    let rows = rows(&item);
    let days: HashMap<&str, i64> = borrowers.iter().map(|b| (b.session.user_id.as_str(), b.days)).collect();
    let mut by_borrower: HashMap<&str, &Row> = HashMap::new();
    let mut by_id: HashMap<&str, &Row> = HashMap::new();
    for row in &rows {
        let days = days.get(row.borrower.as_str()).unwrap_or_else(|| panic!("a rental of no borrower: {row:?}"));
        assert_eq!(row.amount, *days, "daily_price 1 × days: {row:?}");
        assert!(by_borrower.insert(&row.borrower, row).is_none(), "two rentals of one borrower: {row:?}");
        by_id.insert(&row.rental_id, row);
        match row.state.as_str() {
            "active" => {
                assert_eq!(row.reservation, "reserved", "an active rental holds its unit: {row:?}");
                assert_eq!(row.charge, format!("charged,{},{}", row.borrower, row.amount), "charged: {row:?}");
                assert_eq!(row.credits, format!("credited,{},{}", owner.user_id, row.amount), "credited: {row:?}");
            }
            "failed" => {
                assert_ne!(row.reservation, "reserved", "a failed rental holds no unit: {row:?}");
                let charge = row.charge.split(',').next().unwrap_or_default();
                assert!(["", "refunded", "refused"].contains(&charge), "a failed rental's charge given back: {row:?}");
                for credit in row.credits.split(';').filter(|c| !c.is_empty()) {
                    let state = credit.split(',').next().unwrap_or_default();
                    assert!(
                        ["reversed", "blocked", "refused"].contains(&state),
                        "a failed rental's credit taken back: {row:?}"
                    );
                }
            }
            other => panic!("a rental {other} after recovery: {row:?}"),
        }
    }

    let active: Vec<&Row> = rows.iter().filter(|r| r.state == "active").collect();
    let rented = active.len() as i64;
    assert!(rented <= STOCK, "{rented} rentals of {STOCK} units");
    let page = app.get(&format!("/stock/items/{item}"));
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.json()["stock"].as_i64(), Some(STOCK - rented), "stock conserved (the item's page)");
    assert_eq!(sql(&format!("SELECT stock FROM stock.items WHERE item_id = '{item}'")), [(STOCK - rented).to_string()]);

    let credits: Vec<i64> = in_parallel(16, &borrowers, |b| credit_of(&app, &b.session));
    let owner_credit = credit_of(&app, &owner);
    let paid: i64 = active.iter().map(|r| r.amount).sum();
    assert_eq!(credits.iter().sum::<i64>() + owner_credit, total_before, "money conserved");
    assert_eq!(owner_credit - owner_before, paid, "the owner got the amounts of the active rentals");
    for (b, credit) in borrowers.iter().zip(&credits) {
        let charged =
            by_borrower.get(b.session.user_id.as_str()).filter(|r| r.state == "active").map_or(0, |r| r.amount);
        assert_eq!(*credit, FUNDS - charged, "borrower {} charged iff their rental is active", b.session.user_id);
    }

    for (b, reply) in borrowers.iter().zip(&replies) {
        let user = b.session.user_id.as_str();
        match reply.as_ref().map(|r| r.status) {
            Some(201) => {
                let body = reply.as_ref().map(Reply::json).unwrap_or_default();
                let id = body["rental_id"].as_str().unwrap_or_else(|| panic!("201 without a rental_id: {body}"));
                let row = by_id.get(id).unwrap_or_else(|| panic!("201 rental {id} of {user} not stored"));
                assert_eq!((row.state.as_str(), row.borrower.as_str()), ("active", user), "201 but {row:?}");
            }
            Some(409) => {
                let row = by_borrower.get(user).unwrap_or_else(|| panic!("409 for {user} but no rental stored"));
                assert_eq!(row.state, "failed", "409 but {row:?}");
            }
            // A valid request for a known item: never "bad", "unknown" or "unauthorised", even
            // during the fault.
            Some(status) => assert!(status >= 500, "{user}: {reply:?}"),
            None => {} // no answer during the fault: either outcome, as long as it is consistent
        }
    }
    assert!(rented > 0, "no rental went through at all");
    let ok = replies.iter().filter(|r| r.as_ref().is_some_and(|r| r.status == 201)).count();
    eprintln!("{ok} rentals answered 201, {rented} active after recovery, {} rentals stored", rows.len());
}

#[test]
fn app_host_killed_and_restarted_mid_run() {
    scenario(|app| {
        app.kill();
        app.restart();
    });
}

/// Redis goes down for a few seconds and comes back; the process serving HTTP keeps running.
#[test]
fn redis_restarted_mid_run() {
    scenario(|app| {
        stores(&["stop-redis"]);
        std::thread::sleep(Duration::from_secs(2));
        stores(&["start-redis"]);
        assert!(app.http_process_alive(), "the HTTP process ended with Redis; its log:\n{}", app.log_text());
    });
}

#[test]
fn postgres_restarted_mid_run() {
    scenario(|_| stores(&["restart-postgres"]));
}
