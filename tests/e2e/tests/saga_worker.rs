//! The saga worker's HTTP half: `POST /orders/saga/drain` drives due sagas for the worker, and
//! answers nobody without the drain token.

use e2e::App;

#[test]
fn the_drain_endpoint_answers_only_with_the_drain_token() {
    let app = App::start();
    for headers in [vec![], vec![("x-saga-drain-token", "guess")], vec![("x-saga-drain-token", "")]] {
        let reply = app.send("POST", "/orders/saga/drain", &headers, b"");
        assert_eq!(reply.status, 404, "{headers:?}: {reply:?}");
        assert_eq!(reply.json()["error"], "not_found");
    }
    let reply = app.send("POST", "/orders/saga/drain", &[("x-saga-drain-token", "local-saga-drain-token")], b"");
    assert_eq!(reply.status, 200, "{reply:?}");
    let report = reply.json();
    assert!(report["driven"].is_u64() && report["more"].is_boolean(), "{report}");
    assert_eq!(app.get("/orders/saga/drain").status, 405);
}
