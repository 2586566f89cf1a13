//! Traces, black-box: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the app exports OpenTelemetry
//! spans (Spin does; so does our test host, in Spin's shape), and a checkout is one trace that
//! spans the order, stock and payment components, each execution under the outbound call that
//! reached it.
//!
//! Under the real Spin 4.1 a checkout is not one trace, and no component can make it one: for a
//! WASIp3 component Spin starts each outbound call's span (HTTP, Redis, Postgres) with no parent
//! (the host call runs outside the component's execution span, and Spin re-parents it only onto
//! guest spans of the experimental `wasi:otel` interface), then writes that span's context into
//! the request's `traceparent`, replacing the one the component forwarded. So under Spin this
//! test checks each hop instead: the request's server span continues the client's trace, the
//! checkout runs under it, and each participant runs under the outbound call that reached it.

use e2e::App;
use e2e::otlp::{Receiver, Span};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const SERVER: i32 = 2;
const CLIENT: i32 = 3;

/// The component executions the checkout must reach: the order component, a stock reserve and a
/// payment charge (single or batched).
fn execution_of(span: &Span) -> Option<&str> {
    span.name.strip_prefix("execute_wasm_component ")
}

fn is_checkout_part(component: &str) -> bool {
    component == "orders-checkout" || component.starts_with("stock-reserve") || component.starts_with("payment-charge")
}

#[test]
fn a_checkout_is_one_trace_across_the_order_stock_and_payment_components() {
    let receiver = Receiver::start();
    let endpoint = receiver.endpoint();
    // Export every half second rather than every five (the SDK default).
    let app = App::start_with_env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint), ("OTEL_BSP_SCHEDULE_DELAY", "500")]);
    let user = app.new_user(100);
    let item = app.new_item(7, 5);
    let order = app.new_order(&user, &[(&item, 2)]);

    // The client's own trace: the app's spans must join it.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{client_span}-01");
    let paid = app.send("POST", &format!("/orders/checkout/{order}"), &[("traceparent", &traceparent)], b"");
    assert_eq!(paid.status, 200, "{paid:?}");

    // Under Spin the hops are separate traces (see the module's comment).
    let one_trace = !e2e::use_spin();
    let wanted = |spans: &[Span]| {
        let reached: HashSet<&str> =
            spans.iter().filter(|s| !one_trace || s.trace_id == trace_id).filter_map(execution_of).collect();
        reached.contains("orders-checkout")
            && reached.iter().any(|c| c.starts_with("stock-reserve"))
            && reached.iter().any(|c| c.starts_with("payment-charge"))
    };
    let spans = receiver.wait_for(Duration::from_secs(60), wanted);
    let dump = || spans.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join("\n");
    assert!(wanted(&spans), "the checkout's component spans never came; spans received:\n{}", dump());

    // Every execution of the checkout's components is in the client's trace: one trace.
    if one_trace {
        let checkout_traces: HashSet<&str> = spans
            .iter()
            .filter(|s| execution_of(s).is_some_and(is_checkout_part))
            .map(|s| s.trace_id.as_str())
            .collect();
        assert_eq!(checkout_traces, HashSet::from([trace_id]), "{}", dump());
    }

    let trace: Vec<&Span> = spans.iter().filter(|s| !one_trace || s.trace_id == trace_id).collect();
    let by_id: HashMap<&str, &Span> = trace.iter().map(|s| (s.span_id.as_str(), *s)).collect();
    let parent_of = |s: &Span| by_id.get(s.parent_id.as_str()).copied();

    // The request's server span continues the client's span.
    let server: Vec<&&Span> = trace.iter().filter(|s| s.kind == SERVER && s.trace_id == trace_id).collect();
    assert_eq!(server.len(), 1, "one server span (chained requests have none): {}", dump());
    assert_eq!(server[0].parent_id, client_span);
    assert_eq!(server[0].name, "POST /orders/checkout/:order_id");
    assert_eq!(server[0].attribute("http.route"), Some("/orders/checkout/:order_id"));
    assert_eq!(server[0].attribute("http.response.status_code"), Some("200"));

    // orders-checkout runs under the server span; stock and payment each under an outbound
    // HTTP call made inside the orders-checkout execution.
    let checkout = trace
        .iter()
        .find(|s| s.trace_id == trace_id && execution_of(s) == Some("orders-checkout"))
        .expect("checkout span");
    assert_eq!(checkout.parent_id, server[0].span_id, "{}", dump());
    for part in ["stock-reserve", "payment-charge"] {
        let execution =
            trace.iter().find(|s| execution_of(s).is_some_and(|c| c.starts_with(part))).expect("participant span");
        let call = parent_of(execution).unwrap_or_else(|| panic!("{part}: no parent span in the trace\n{}", dump()));
        assert_eq!((call.kind, call.name.as_str()), (CLIENT, "POST"), "{part}'s parent: {call:?}");
        let component = execution_of(execution).unwrap_or_default();
        assert!(
            call.attribute("url.full").is_some_and(|u| u.starts_with(&format!("http://{component}.spin.internal/"))),
            "{call:?}"
        );
        if one_trace {
            let caller = parent_of(call).unwrap_or_else(|| panic!("{part}: the call has no parent\n{}", dump()));
            assert_eq!(caller.span_id, checkout.span_id, "{part}'s call is made by the checkout: {}", dump());
        }
    }
    if !one_trace {
        return;
    }

    // The store calls are spans of the components that make them.
    let under = |s: &Span, component: &str| {
        let mut at = parent_of(s);
        while let Some(p) = at {
            if execution_of(p).is_some_and(|c| c.starts_with(component)) {
                return true;
            }
            at = parent_of(p);
        }
        false
    };
    let redis_in_checkout =
        trace.iter().any(|s| s.attribute("db.system.name") == Some("redis") && under(s, "orders-checkout"));
    let pg_in_stock =
        trace.iter().any(|s| s.attribute("db.system.name") == Some("postgresql") && under(s, "stock-reserve"));
    assert!(redis_in_checkout && pg_in_stock, "store call spans missing: {}", dump());
}
