//! The application's log lines: one JSON object per line on stderr (which Spin keeps per
//! component), with the time, level, message and the current request's context
//! ([`crate::request_context`]): `request_id`, `route`, `component`, `trace_id`, and the fields
//! added to the context (`saga_id` while a saga is driven), then the line's own fields.
//!
//! ```text
//! {"time":"2025-01-02T03:04:05.006Z","level":"error","message":"...","request_id":"...","route":"/orders/checkout/:order_id","component":"orders-checkout","trace_id":"...","saga_id":"..."}
//! ```
//! Outside a request (the Redis-triggered worker) the context's fields are absent.

use crate::request_context::{self, RequestContext};
use std::fmt::Display;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// How bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Something worth knowing that needs nobody.
pub fn info(message: impl Display) {
    write(Level::Info, message, &[]);
}

/// Something went wrong and was worked around (a cache not written, a best-effort step
/// skipped).
pub fn warn(message: impl Display) {
    write(Level::Warn, message, &[]);
}

/// Something failed that an operator should look at (a request answered with a 5xx).
pub fn error(message: impl Display) {
    write(Level::Error, message, &[]);
}

/// A line with fields of its own (after the context's; a field named like a context field
/// replaces it, one named like a standard field is left out).
pub fn write(level: Level, message: impl Display, fields: &[(&str, &str)]) {
    let ctx = request_context::current();
    let mut line = format_line(SystemTime::now(), level, &message.to_string(), ctx.as_deref(), fields);
    line.push('\n');
    // A log line that cannot be written is lost; the request goes on.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The names every line may carry from its context, in their order.
const STANDARD: [&str; 7] = ["time", "level", "message", "request_id", "route", "component", "trace_id"];

/// One line, without its newline.
pub fn format_line(
    time: SystemTime,
    level: Level,
    message: &str,
    ctx: Option<&RequestContext>,
    fields: &[(&str, &str)],
) -> String {
    let mut out = String::with_capacity(160 + message.len());
    out.push('{');
    push_field(&mut out, "time", &rfc3339_millis(time));
    push_field(&mut out, "level", level.as_str());
    push_field(&mut out, "message", message);
    let own = |name: &str| fields.iter().any(|(n, _)| *n == name);
    if let Some(ctx) = ctx {
        push_field(&mut out, "request_id", &ctx.request_id);
        push_field(&mut out, "route", ctx.route);
        push_field(&mut out, "component", ctx.component);
        push_field(&mut out, "trace_id", &ctx.trace.trace_id_hex());
        for (name, value) in ctx.fields().iter() {
            if !own(name) && !STANDARD.contains(name) {
                push_field(&mut out, name, value);
            }
        }
    }
    for (i, (name, value)) in fields.iter().enumerate() {
        let repeated = fields[..i].iter().any(|(n, _)| n == name);
        if !repeated && !STANDARD.contains(name) {
            push_field(&mut out, name, value);
        }
    }
    out.push('}');
    out
}

fn push_field(out: &mut String, name: &str, value: &str) {
    if out.len() > 1 {
        out.push(',');
    }
    push_json_string(out, name);
    out.push(':');
    push_json_string(out, value);
}

fn push_json_string(out: &mut String, s: &str) {
    // Encoding a string cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// `time` in UTC as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn rfc3339_millis(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (days, secs_of_day) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        since_epoch.subsec_millis()
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request_context::TraceParent;
    use std::time::Duration;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339_millis(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(at(951_782_400, 7)), "2000-02-29T00:00:00.007Z");
        assert_eq!(rfc3339_millis(at(1_735_787_045, 6)), "2025-01-02T03:04:05.006Z");
        assert_eq!(rfc3339_millis(at(4_107_542_399, 999)), "2100-02-28T23:59:59.999Z");
    }

    #[test]
    fn a_line_is_one_json_object_with_the_context_then_its_own_fields() {
        let ctx = RequestContext {
            request_id: "0123456789abcdef".into(),
            route: "/orders/checkout/:order_id",
            component: "orders-checkout",
            trace: TraceParent { trace_id: 0x4bf92f3577b34da6a3ce929d0e0e4736, parent_id: 7, flags: 1 },
            trace_state: None,
            authorization: Some("Bearer secret.token.here".into()),
            fields: vec![("saga_id", "o1.0.0".into()), ("order_id", "o1".into())].into(),
        };
        let line = format_line(
            at(1_735_787_045, 6),
            Level::Error,
            "saga \"o1\": record not written\nRedis down",
            Some(&ctx),
            &[("order_id", "o2"), ("level", "fake"), ("item_id", "i"), ("item_id", "again")],
        );
        assert_eq!(
            line,
            concat!(
                r#"{"time":"2025-01-02T03:04:05.006Z","level":"error","#,
                r#""message":"saga \"o1\": record not written\nRedis down","#,
                r#""request_id":"0123456789abcdef","route":"/orders/checkout/:order_id","#,
                r#""component":"orders-checkout","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","#,
                r#""saga_id":"o1.0.0","order_id":"o2","item_id":"i"}"#
            )
        );
        assert!(!line.contains('\n'), "one line");
        let parsed: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(parsed["saga_id"], "o1.0.0");
    }

    #[test]
    fn outside_a_request_a_line_has_no_context_fields() {
        let line = format_line(at(0, 0), Level::Warn, "worker", None, &[]);
        assert_eq!(line, r#"{"time":"1970-01-01T00:00:00.000Z","level":"warn","message":"worker"}"#);
    }
}
