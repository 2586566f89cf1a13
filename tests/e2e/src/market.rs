//! Marketplace fixtures through the public API: items, users, orders, and reading them back.

use crate::App;
use serde_json::Value;
use std::time::{Duration, Instant};

impl App {
    /// Creates an item with `price` and `stock` units; returns its id.
    pub fn new_item(&self, price: i64, stock: i64) -> String {
        let created = self.post(&format!("/stock/item/create/{price}"));
        assert_eq!(created.status, 200, "{created:?}");
        let id = created.json()["item_id"].as_str().expect("item_id").to_string();
        if stock > 0 {
            let added = self.post(&format!("/stock/add/{id}/{stock}"));
            assert_eq!(added.status, 200, "{added:?}");
        }
        id
    }

    /// Creates a user with `credit`; returns its id.
    pub fn new_user(&self, credit: i64) -> String {
        let created = self.post("/payment/create_user");
        assert_eq!(created.status, 200, "{created:?}");
        let id = created.json()["user_id"].as_str().expect("user_id").to_string();
        if credit > 0 {
            let added = self.post(&format!("/payment/add_funds/{id}/{credit}"));
            assert_eq!(added.status, 200, "{added:?}");
        }
        id
    }

    /// Creates an order of `user` with these lines; returns its id.
    pub fn new_order(&self, user: &str, lines: &[(&str, i64)]) -> String {
        let created = self.post(&format!("/orders/create/{user}"));
        assert_eq!(created.status, 200, "{created:?}");
        let id = created.json()["order_id"].as_str().expect("order_id").to_string();
        for (item, qty) in lines {
            let added = self.post(&format!("/orders/addItem/{id}/{item}/{qty}"));
            assert_eq!(added.status, 200, "{added:?}");
        }
        id
    }

    /// (stock, price) of an item.
    pub fn stock_of(&self, item: &str) -> (i64, i64) {
        let found = self.get(&format!("/stock/find/{item}"));
        assert_eq!(found.status, 200, "{found:?}");
        let v = found.json();
        (v["stock"].as_i64().expect("stock"), v["price"].as_i64().expect("price"))
    }

    /// A user's credit.
    pub fn credit_of(&self, user: &str) -> i64 {
        let found = self.get(&format!("/payment/find_user/{user}"));
        assert_eq!(found.status, 200, "{found:?}");
        found.json()["credit"].as_i64().expect("credit")
    }

    /// An order as `GET /orders/find` shows it.
    pub fn order(&self, order: &str) -> Value {
        let found = self.get(&format!("/orders/find/{order}"));
        assert_eq!(found.status, 200, "{found:?}");
        found.json()
    }

    /// The order's current checkout saga, as the status endpoint shows it.
    pub fn saga_of(&self, order: &str) -> Value {
        let status = self.get(&format!("/orders/checkout/{order}/status"));
        assert_eq!(status.status, 200, "{status:?}");
        status.json()["saga"].clone()
    }

    /// Waits until none of these orders has a running checkout saga (none started, or its saga
    /// paid, failed or stuck), with no request but the status endpoint's: what is left running
    /// the worker must finish. Panics after `limit`, naming how many are still running.
    pub fn wait_until_sagas_finish<S: AsRef<str>>(&self, orders: &[S], limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut running: Vec<&str> = orders.iter().map(AsRef::as_ref).collect();
        while !running.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{} sagas still running after {limit:?}, e.g. of order {}",
                running.len(),
                running[0]
            );
            std::thread::sleep(Duration::from_millis(250));
            running.retain(|o| {
                self.try_request("GET", &format!("/orders/checkout/{o}/status"))
                    .map_or(true, |r| r.status != 200 || r.json()["saga"]["state"] == "running")
            });
        }
    }
}

/// Runs `f` over `inputs` on `threads` threads at once; outputs in input order.
pub fn in_parallel<I: Sync, O: Send>(threads: usize, inputs: &[I], f: impl Fn(&I) -> O + Sync) -> Vec<O> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, O)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(input) = inputs.get(i) else { break };
                        out.push((i, f(input)));
                    }
                    out
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("worker thread")).collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, o)| o).collect()
}
