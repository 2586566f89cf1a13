//! The app's Prometheus metrics, without Spin or Redis: what is counted (the fields of one Redis
//! hash, [`COUNTERS_KEY`], incremented by [`COUNT`]), the histograms' buckets, and the rendering
//! of those fields (and the saga gauges) as Prometheus text exposition format 0.0.4.
//!
//! A [`Tally`] collects a request's increments (its route's latency bucket, latency sum, status
//! count, and whatever the handler adds: a checkout's outcome, saga drives, compensations, a
//! batch's size, an idempotent replay); tallies merge, and [`COUNT`] applies one (a request's, or
//! several requests' merged) in one script. A histogram's buckets are stored as they are hit (one
//! field per bucket, not cumulative: one increment per observation); [`render`] sums them into
//! Prometheus's cumulative `le` buckets, and the `_count` is the `+Inf` bucket.

use crate::Script;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The Redis hash (database 0) that holds every counter, owned by `spin_kit::metrics`.
pub const COUNTERS_KEY: &str = "metrics:counters";

/// Applies a [`Tally`]: `ARGV` is field, increment, field, increment, ...
pub const COUNT: Script = Script::new(include_str!("metrics/count.lua"));

/// The upper bounds (seconds) of the request latency buckets; `+Inf` follows.
pub const LATENCY_BUCKETS_SECONDS: [f64; 13] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The upper bounds of the checkout batch size buckets (sagas in one batch, at most 64); `+Inf`
/// follows.
pub const BATCH_SIZE_BUCKETS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// How a checkout request ended, as it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutOutcome {
    /// 200: the order is paid.
    Paid,
    /// 409: the stock service refused the reservation.
    RefusedStock,
    /// 409: the payment service refused the charge.
    RefusedCredit,
    /// Any other final failure (400: the order cannot be paid as it is; 409: the order changed).
    Failed,
    /// 503: the saga is stuck, waiting for an operator.
    Stuck,
}

impl CheckoutOutcome {
    pub const ALL: [CheckoutOutcome; 5] = [
        CheckoutOutcome::Paid,
        CheckoutOutcome::RefusedStock,
        CheckoutOutcome::RefusedCredit,
        CheckoutOutcome::Failed,
        CheckoutOutcome::Stuck,
    ];

    /// The value of the `outcome` label.
    pub fn label(self) -> &'static str {
        match self {
            CheckoutOutcome::Paid => "paid",
            CheckoutOutcome::RefusedStock => "refused_stock",
            CheckoutOutcome::RefusedCredit => "refused_credit",
            CheckoutOutcome::Failed => "failed",
            CheckoutOutcome::Stuck => "stuck",
        }
    }
}

/// Increments to apply in one Redis call: one request's, a background batch's, or several merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    increments: Vec<(String, i64)>,
}

impl Tally {
    pub fn new() -> Tally {
        Tally::default()
    }

    fn add(&mut self, field: String, by: i64) {
        if by == 0 {
            return;
        }
        match self.increments.iter_mut().find(|(f, _)| *f == field) {
            Some((_, n)) => *n += by,
            None => self.increments.push((field, by)),
        }
    }

    /// A request to `route` (the route pattern, as in spin.toml) answered `status` after
    /// `micros` microseconds.
    pub fn request(&mut self, route: &str, status: u16, micros: u64) {
        self.add(format!("req|{route}|{status}"), 1);
        let bucket = bucket_index(&LATENCY_BUCKETS_SECONDS, micros as f64 / 1e6);
        self.add(format!("lat|{route}|{bucket}"), 1);
        self.add(format!("latsum|{route}"), i64::try_from(micros).unwrap_or(i64::MAX));
    }

    /// A response replayed from an `Idempotency-Key` record.
    pub fn replay(&mut self, route: &str) {
        self.add(format!("replay|{route}"), 1);
    }

    /// A checkout answered with `outcome`.
    pub fn checkout(&mut self, outcome: CheckoutOutcome) {
        self.add(format!("checkout|{}", outcome.label()), 1);
    }

    /// Drives of sagas, and the compensation steps (release, refund) they performed.
    pub fn saga_drives(&mut self, drives: u64, compensations: u64) {
        self.add("drives".into(), i64::try_from(drives).unwrap_or(i64::MAX));
        self.add("compensations".into(), i64::try_from(compensations).unwrap_or(i64::MAX));
    }

    /// One batch of forward steps sent for `sagas` sagas.
    pub fn batch(&mut self, sagas: usize) {
        let bucket = bucket_index(&BATCH_SIZE_BUCKETS, sagas as f64);
        self.add(format!("batch|{bucket}"), 1);
        self.add("batchsum".into(), i64::try_from(sagas).unwrap_or(i64::MAX));
    }

    /// Adds another tally's increments to this one.
    pub fn merge(&mut self, other: Tally) {
        for (field, by) in other.increments {
            self.add(field, by);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.increments.is_empty()
    }

    /// [`COUNT`]'s arguments: field, increment, field, increment, ...
    pub fn argv(&self) -> Vec<String> {
        self.increments.iter().flat_map(|(f, n)| [f.clone(), n.to_string()]).collect()
    }
}

/// The index of the first bucket whose bound is at least `value` (`bounds.len()`: `+Inf`).
pub fn bucket_index(bounds: &[f64], value: f64) -> usize {
    bounds.iter().position(|&b| value <= b).unwrap_or(bounds.len())
}

/// The saga table as the order service reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SagaGauges {
    /// Sagas running now (not final, not stuck).
    pub running: u64,
    /// Sagas stuck, waiting for an operator.
    pub stuck: u64,
    /// Age of the oldest running saga (since it began), if one runs.
    pub oldest_running_seconds: Option<f64>,
    /// How long the saga due longest has been due (its retry time or dead driver's lease end
    /// passed, no worker took it yet), if one is due.
    pub oldest_due_seconds: Option<f64>,
    /// Since the saga worker last ran, if it ever did.
    pub worker_last_run_seconds: Option<f64>,
}

/// The text exposition (format 0.0.4) of the counters in `fields` (the hash [`COUNTERS_KEY`],
/// as field → value) and of `gauges`.
pub fn render(fields: &BTreeMap<String, i64>, gauges: &SagaGauges) -> String {
    let mut out = String::new();
    let field = |name: &str| fields.get(name).copied().unwrap_or(0);

    family(&mut out, "market_checkouts_total", "counter", "Checkout requests by how they were answered.");
    for outcome in CheckoutOutcome::ALL {
        let value = field(&format!("checkout|{}", outcome.label()));
        let _ = writeln!(out, "market_checkouts_total{{outcome=\"{}\"}} {value}", outcome.label());
    }

    family(
        &mut out,
        "market_saga_drives_total",
        "counter",
        "Drives of checkout sagas (by checkouts, the worker, operators).",
    );
    let _ = writeln!(out, "market_saga_drives_total {}", field("drives"));
    family(
        &mut out,
        "market_saga_compensations_total",
        "counter",
        "Compensation steps (release stock, refund payment) performed by saga drives.",
    );
    let _ = writeln!(out, "market_saga_compensations_total {}", field("compensations"));

    family(&mut out, "market_sagas_running", "gauge", "Checkout sagas running now.");
    let _ = writeln!(out, "market_sagas_running {}", gauges.running);
    family(&mut out, "market_sagas_stuck", "gauge", "Checkout sagas stuck, waiting for an operator.");
    let _ = writeln!(out, "market_sagas_stuck {}", gauges.stuck);
    family(&mut out, "market_saga_oldest_running_seconds", "gauge", "Age of the oldest running saga (0: none runs).");
    let _ =
        writeln!(out, "market_saga_oldest_running_seconds {}", number(gauges.oldest_running_seconds.unwrap_or(0.0)));
    family(
        &mut out,
        "market_saga_oldest_due_seconds",
        "gauge",
        "How long the saga due longest has waited for the worker (0: none is due).",
    );
    let _ = writeln!(out, "market_saga_oldest_due_seconds {}", number(gauges.oldest_due_seconds.unwrap_or(0.0)));
    if let Some(age) = gauges.worker_last_run_seconds {
        family(
            &mut out,
            "market_saga_worker_last_run_seconds",
            "gauge",
            "Since the saga worker last ran (its heartbeat's age).",
        );
        let _ = writeln!(out, "market_saga_worker_last_run_seconds {}", number(age));
    }

    family(&mut out, "market_checkout_batch_size", "histogram", "Sagas in one batch of checkout forward steps.");
    histogram(
        &mut out,
        "market_checkout_batch_size",
        "",
        &BATCH_SIZE_BUCKETS,
        |i| field(&format!("batch|{i}")),
        field("batchsum") as f64,
    );

    family(
        &mut out,
        "market_idempotent_replays_total",
        "counter",
        "Responses replayed for a repeated Idempotency-Key, by route.",
    );
    for (route, value) in labelled(fields, "replay|") {
        let _ = writeln!(out, "market_idempotent_replays_total{{route=\"{}\"}} {value}", escape(route));
    }

    family(&mut out, "market_http_requests_total", "counter", "HTTP requests by route (pattern) and status.");
    for (rest, value) in labelled(fields, "req|") {
        if let Some((route, status)) = rest.rsplit_once('|') {
            let _ = writeln!(
                out,
                "market_http_requests_total{{route=\"{}\",status=\"{}\"}} {value}",
                escape(route),
                escape(status)
            );
        }
    }

    family(
        &mut out,
        "market_http_request_duration_seconds",
        "histogram",
        "HTTP request latency in the component, by route (pattern).",
    );
    let routes: Vec<&str> = labelled(fields, "latsum|").map(|(route, _)| route).collect();
    for route in routes {
        let sum = field(&format!("latsum|{route}")) as f64 / 1e6;
        let labels = format!("route=\"{}\",", escape(route));
        histogram(
            &mut out,
            "market_http_request_duration_seconds",
            &labels,
            &LATENCY_BUCKETS_SECONDS,
            |i| field(&format!("lat|{route}|{i}")),
            sum,
        );
    }
    out
}

/// The Content-Type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Cumulative `le` buckets, `_sum` and `_count` from per-bucket counts (`count_in(i)`, `i` up to
/// `bounds.len()` for `+Inf`); `labels` is empty or ends with a comma.
fn histogram(out: &mut String, name: &str, labels: &str, bounds: &[f64], count_in: impl Fn(usize) -> i64, sum: f64) {
    let mut cumulative = 0;
    for (i, bound) in bounds.iter().enumerate() {
        cumulative += count_in(i);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{}\"}} {cumulative}", number(*bound));
    }
    cumulative += count_in(bounds.len());
    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {cumulative}");
    let plain = labels.trim_end_matches(',');
    let braces = if plain.is_empty() { String::new() } else { format!("{{{plain}}}") };
    let _ = writeln!(out, "{name}_sum{braces} {}", number(sum));
    let _ = writeln!(out, "{name}_count{braces} {cumulative}");
}

/// The fields that start with `prefix`, without it, with their values.
fn labelled<'a>(fields: &'a BTreeMap<String, i64>, prefix: &'a str) -> impl Iterator<Item = (&'a str, i64)> {
    fields.iter().filter_map(move |(f, v)| f.strip_prefix(prefix).map(|rest| (rest, *v)))
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{}", value as i64) } else { format!("{value}") }
}

/// A label value as the format wants it: backslash, double quote and line feed escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of(tally: &Tally) -> BTreeMap<String, i64> {
        let argv = tally.argv();
        argv.chunks(2).map(|p| (p[0].clone(), p[1].parse().unwrap())).collect()
    }

    #[test]
    fn buckets_take_values_up_to_their_bound() {
        assert_eq!(bucket_index(&LATENCY_BUCKETS_SECONDS, 0.0), 0);
        assert_eq!(bucket_index(&LATENCY_BUCKETS_SECONDS, 0.001), 0);
        assert_eq!(bucket_index(&LATENCY_BUCKETS_SECONDS, 0.0011), 1);
        assert_eq!(bucket_index(&LATENCY_BUCKETS_SECONDS, 11.0), LATENCY_BUCKETS_SECONDS.len());
        assert_eq!(bucket_index(&BATCH_SIZE_BUCKETS, 3.0), 2);
        assert_eq!(bucket_index(&BATCH_SIZE_BUCKETS, 64.0), 6);
    }

    #[test]
    fn a_tally_merges_repeated_fields_and_skips_zeros() {
        let mut t = Tally::new();
        t.saga_drives(1, 0);
        t.saga_drives(2, 3);
        t.checkout(CheckoutOutcome::RefusedStock);
        assert_eq!(t.argv(), ["drives", "3", "compensations", "3", "checkout|refused_stock", "1"]);
        assert!(Tally::new().is_empty());
    }

    #[test]
    fn histograms_render_cumulative_with_sum_and_count() {
        let mut t = Tally::new();
        t.request("/orders/checkout/:order_id", 200, 800); // 0.8 ms: first bucket
        t.request("/orders/checkout/:order_id", 200, 30_000); // 30 ms: le 0.05
        t.request("/orders/checkout/:order_id", 409, 20_000_000); // 20 s: +Inf
        t.batch(3);
        t.batch(64);
        let text = render(&fields_of(&t), &SagaGauges::default());
        let r = "route=\"/orders/checkout/:order_id\"";
        for line in [
            format!("market_http_request_duration_seconds_bucket{{{r},le=\"0.001\"}} 1"),
            format!("market_http_request_duration_seconds_bucket{{{r},le=\"0.025\"}} 1"),
            format!("market_http_request_duration_seconds_bucket{{{r},le=\"0.05\"}} 2"),
            format!("market_http_request_duration_seconds_bucket{{{r},le=\"10\"}} 2"),
            format!("market_http_request_duration_seconds_bucket{{{r},le=\"+Inf\"}} 3"),
            format!("market_http_request_duration_seconds_sum{{{r}}} 20.0308"),
            format!("market_http_request_duration_seconds_count{{{r}}} 3"),
            format!("market_http_requests_total{{{r},status=\"200\"}} 2"),
            format!("market_http_requests_total{{{r},status=\"409\"}} 1"),
            "market_checkout_batch_size_bucket{le=\"2\"} 0".into(),
            "market_checkout_batch_size_bucket{le=\"4\"} 1".into(),
            "market_checkout_batch_size_bucket{le=\"64\"} 2".into(),
            "market_checkout_batch_size_sum 67".into(),
            "market_checkout_batch_size_count 2".into(),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples_and_every_outcome_shows() {
        let mut t = Tally::new();
        t.checkout(CheckoutOutcome::Paid);
        t.replay("/payment/pay/:user_id/:amount");
        let gauges = SagaGauges {
            running: 2,
            stuck: 1,
            oldest_running_seconds: Some(1.5),
            oldest_due_seconds: None,
            worker_last_run_seconds: Some(3.0),
        };
        let text = render(&fields_of(&t), &gauges);
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"].iter().fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
                assert!(declared.contains(name) || declared.contains(family), "{line} before its TYPE");
            }
        }
        for outcome in CheckoutOutcome::ALL {
            let expected = if outcome == CheckoutOutcome::Paid { 1 } else { 0 };
            assert!(text.contains(&format!("market_checkouts_total{{outcome=\"{}\"}} {expected}\n", outcome.label())));
        }
        assert!(text.contains("market_idempotent_replays_total{route=\"/payment/pay/:user_id/:amount\"} 1\n"));
        assert!(text.contains("market_sagas_running 2\n"));
        assert!(text.contains("market_saga_oldest_running_seconds 1.5\n"));
        assert!(text.contains("market_saga_oldest_due_seconds 0\n"));
        assert!(text.contains("market_saga_worker_last_run_seconds 3\n"));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
