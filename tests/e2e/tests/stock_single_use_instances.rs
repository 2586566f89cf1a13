//! Correctness never depends on instance reuse: the same behaviour with one request per instance.

use e2e::App;

#[test]
fn stock_works_with_one_request_per_instance() {
    let app = App::start_with(&["--max-instance-reuse-count", "1", "--max-instance-concurrent-reuse-count", "1"]);
    let created = app.post("/stock/item/create/9");
    assert_eq!(created.status, 200, "{created:?}");
    let id = created.json()["item_id"].as_str().expect("item_id").to_string();
    assert_eq!(app.post(&format!("/stock/add/{id}/20")).status, 200);
    let successes = std::thread::scope(|s| {
        let workers: Vec<_> = (0..30).map(|_| s.spawn(|| app.post(&format!("/stock/subtract/{id}/1")))).collect();
        workers.into_iter().map(|w| w.join().expect("worker")).filter(|r| r.status == 200).count()
    });
    assert_eq!(successes, 20);
    let found = app.get(&format!("/stock/find/{id}")).json();
    assert_eq!((found["stock"].as_i64(), found["price"].as_i64()), (Some(0), Some(9)));
}
