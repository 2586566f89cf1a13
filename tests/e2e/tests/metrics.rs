//! `GET /metrics` scraped by a real Prometheus: the test starts one (the Debian package, which
//! `infra/prometheus-tools` installs) with a configuration that scrapes this test's app every
//! second, does a known number of checkouts of each outcome, waits for a scrape taken after
//! them, and asks Prometheus's HTTP API (PromQL) how many it saw.
//!
//! Counts are compared with the ones Prometheus saw before the checkouts (the counters live in
//! the shared Redis, which other test binaries count into too), and this binary starts one
//! app (its other test only reads files), so nothing else of this process counts meanwhile.

use e2e::{App, Value, repo_root};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A Prometheus of this test's own, killed when dropped.
struct Prometheus {
    child: Child,
    base: String,
    agent: ureq::Agent,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (host:port) every second; `None` if the binary is
    /// missing (a failure under `CI=true`, where infra/prometheus-tools installed it).
    fn start(target: &str) -> Option<Prometheus> {
        if Command::new("prometheus").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "prometheus is not installed (infra/prometheus-tools installs it)"
            );
            eprintln!("metrics test skipped: no `prometheus` binary (run infra/prometheus-tools)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let dir = repo_root().join(format!("target/e2e-logs/prometheus-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("prometheus dir");
        let rules = repo_root().join("infra/prometheus/alerts.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: marketplace\n    metrics_path: /metrics\n    static_configs:\n      - targets: ['{target}']\n",
            rules.display()
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("config");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let prometheus = Prometheus { child, base: format!("http://127.0.0.1:{port}"), agent };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !prometheus.ready() {
            assert!(Instant::now() < deadline, "prometheus not ready; see {}", dir.join("prometheus.log").display());
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(prometheus)
    }

    fn ready(&self) -> bool {
        self.agent.get(format!("{}/-/ready", self.base)).call().is_ok_and(|r| r.status() == 200)
    }

    /// The result vector of an instant PromQL query.
    fn query(&self, promql: &str) -> Vec<Value> {
        let url = format!("{}/api/v1/query?query={}", self.base, encode(promql));
        let mut resp = self.agent.get(&url).call().expect("query answered");
        let body: Value = serde_json::from_str(&resp.body_mut().read_to_string().expect("body")).expect("JSON");
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The value of a query that yields one number (0 when it yields nothing).
    fn number(&self, promql: &str) -> f64 {
        let result = self.query(promql);
        assert!(result.len() <= 1, "{promql} gave several series: {result:?}");
        result.first().map(|s| s["value"][1].as_str().expect("value").parse().expect("a number")).unwrap_or(0.0)
    }

    /// Waits until Prometheus holds a successful scrape of the app taken after `after` (Unix
    /// seconds).
    fn wait_for_scrape_after(&self, after: f64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // `timestamp` of the selector itself: of an expression it is the query's own time.
            let scraped = self.number("timestamp(up{job=\"marketplace\"})");
            if scraped > after && self.number("up{job=\"marketplace\"}") == 1.0 {
                return;
            }
            assert!(Instant::now() < deadline, "no successful scrape after {after}: {scraped:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Percent-encodes a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn now_seconds() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("time").as_secs_f64()
}

const CHECKOUT_ROUTE: &str = "/orders/checkout/:order_id";

#[test]
fn prometheus_scrapes_checkouts_by_outcome_drives_replays_and_latency() {
    let app = App::start();
    let exposition = app.get("/metrics");
    assert_eq!(exposition.status, 200, "{exposition:?}");
    assert_eq!(exposition.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert!(exposition.body.contains("# TYPE market_checkouts_total counter"), "{}", exposition.body);

    let target = app.base.trim_start_matches("http://");
    let Some(prometheus) = Prometheus::start(target) else { return };

    let series = [
        ("paid", "market_checkouts_total{outcome=\"paid\"}".to_string()),
        ("refused_stock", "market_checkouts_total{outcome=\"refused_stock\"}".to_string()),
        ("refused_credit", "market_checkouts_total{outcome=\"refused_credit\"}".to_string()),
        ("drives", "market_saga_drives_total".to_string()),
        ("compensations", "market_saga_compensations_total".to_string()),
        (
            "checkout latency count",
            format!("sum(market_http_request_duration_seconds_count{{route=\"{CHECKOUT_ROUTE}\"}})"),
        ),
        ("checkout 409s", format!("sum(market_http_requests_total{{route=\"{CHECKOUT_ROUTE}\",status=\"409\"}})")),
        ("replays", "sum(market_idempotent_replays_total{route=\"/payment/add_funds/:user_id/:amount\"})".to_string()),
    ];
    prometheus.wait_for_scrape_after(now_seconds());
    let before: Vec<f64> = series.iter().map(|(_, q)| prometheus.number(q)).collect();

    // 3 paid, 2 refused for stock, 1 refused for credit; one request replayed by its key.
    let rich = app.new_user(1_000);
    let poor = app.new_user(1);
    let item = app.new_item(2, 100);
    let none_left = app.new_item(2, 0);
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(app.post(&format!("/orders/checkout/{}", app.new_order(&rich, &[(&item, 1)]))).status);
    }
    for _ in 0..2 {
        answers.push(app.post(&format!("/orders/checkout/{}", app.new_order(&rich, &[(&none_left, 1)]))).status);
    }
    answers.push(app.post(&format!("/orders/checkout/{}", app.new_order(&poor, &[(&item, 1)]))).status);
    assert_eq!(answers, [200, 200, 200, 409, 409, 409]);
    let funds = format!("/payment/add_funds/{poor}/1");
    let key = format!("metrics-test-{poor}");
    let first = app.post_with_key(&funds, &key);
    let again = app.post_with_key(&funds, &key);
    assert_eq!((first.status, again.header("idempotent-replayed")), (200, Some("true")), "{again:?}");

    // Each instance writes its counts a moment after its requests (spin_kit::metrics gathers
    // them): scrape until they are all there, or until a deadline shows what was.
    let expected = [
        ("paid", 3.0),
        ("refused_stock", 2.0),
        ("refused_credit", 1.0),
        // One drive per checkout; the refused charge released the reserved stock.
        ("drives", 6.0),
        ("compensations", 1.0),
        ("checkout latency count", 6.0),
        ("checkout 409s", 3.0),
        ("replays", 1.0),
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        prometheus.wait_for_scrape_after(now_seconds());
        let after: Vec<f64> = series.iter().map(|(_, q)| prometheus.number(q)).collect();
        let seen: Vec<(&str, f64)> =
            series.iter().zip(before.iter().zip(&after)).map(|((name, _), (b, a))| (*name, a - b)).collect();
        if seen == expected || Instant::now() > deadline {
            break seen;
        }
    };
    assert_eq!(seen, expected);
    // The saga gauges are there, from the order service; nothing runs once all answered.
    assert_eq!(prometheus.query("market_sagas_running").len(), 1);
    assert_eq!(prometheus.query("market_saga_oldest_due_seconds").len(), 1);
    // The alert rules load and evaluate against the scraped series.
    let mut rules = prometheus.agent.get(format!("{}/api/v1/rules", prometheus.base)).call().expect("rules");
    let rules: Value = serde_json::from_str(&rules.body_mut().read_to_string().expect("body")).expect("rules JSON");
    let names: Vec<&str> = rules["data"]["groups"][0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(names.contains(&"CheckoutSagaRunningTooLong") && names.contains(&"SagaWorkerSilent"), "{names:?}");
}

/// The Grafana dashboard loads: the fields Grafana needs of a dashboard and of each panel (the
/// dashboard JSON model: title, uid, schemaVersion, panels with id, type, title, gridPos and
/// targets), every panel query is PromQL that Prometheus parses (`promtool check rules` on the
/// queries as recording rules), and every series it names is one `GET /metrics` exposes.
#[test]
fn the_grafana_dashboard_is_well_formed_and_queries_exposed_series() {
    let text =
        std::fs::read_to_string(repo_root().join("infra/grafana/dashboards/marketplace.json")).expect("dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("dashboard JSON");
    for field in ["title", "uid"] {
        assert!(dashboard[field].as_str().is_some_and(|v| !v.is_empty()), "dashboard {field}");
    }
    assert!(dashboard["schemaVersion"].as_u64().is_some(), "schemaVersion");
    let panels = dashboard["panels"].as_array().expect("panels");
    let exposed = market_core::metrics::render(
        &Default::default(),
        &market_core::metrics::SagaGauges { worker_last_run_seconds: Some(0.0), ..Default::default() },
    );
    let families: Vec<&str> = exposed.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
    let mut ids = std::collections::HashSet::new();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for panel in panels {
        let title = panel["title"].as_str().expect("panel title");
        assert!(ids.insert(panel["id"].as_u64().expect("panel id")), "{title}: duplicate id");
        assert!(panel["type"].as_str().is_some(), "{title}: type");
        for key in ["h", "w", "x", "y"] {
            assert!(panel["gridPos"][key].as_u64().is_some(), "{title}: gridPos.{key}");
        }
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            let expr = target["expr"].as_str().expect("expr");
            let names: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("market_"))
                .collect();
            assert!(!names.is_empty(), "{title}: {expr} names no market_ series");
            for name in names {
                let family = ["_bucket", "_sum", "_count"].iter().fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
                assert!(families.contains(&name) || families.contains(&family), "{title}: {name} is not exposed");
            }
            rules.push_str(&format!(
                "      - record: dashboard_panel_{}\n        expr: {}\n",
                ids.len(),
                serde_json::to_string(expr).expect("quoted")
            ));
        }
    }
    if Command::new("promtool").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "promtool is not installed (infra/prometheus-tools installs it)"
        );
        eprintln!("dashboard queries not parsed: no `promtool` (run infra/prometheus-tools)");
        return;
    }
    let file = repo_root().join("target/e2e-logs/dashboard-queries.rules.yml");
    std::fs::create_dir_all(file.parent().expect("dir")).expect("dir");
    std::fs::write(&file, rules).expect("rules");
    let checked = Command::new("promtool").arg("check").arg("rules").arg(&file).output().expect("promtool runs");
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}
