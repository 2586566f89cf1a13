//! The context of the request being served: its id, route, component, W3C trace context and
//! any fields a handler adds (a saga's id), read by the log lines ([`crate::log`]) and forwarded
//! on service calls ([`crate::chain`]).
//!
//! One instance serves up to 16 requests at once on one thread, interleaved at every host call,
//! so the context cannot simply sit in a thread-local for the request's life. Instead
//! [`scope`] wraps a request's future: while that future is polled its context is the current
//! one, and the one current before is put back after every poll (as tokio's task-local scopes
//! do). Nested scopes ([`with_field`]) work the same way, so futures joined inside one request
//! (a drain driving many sagas) each see their own fields. A task spawned from a request does
//! not inherit its context unless wrapped with [`bind`].

use std::cell::{Ref, RefCell};
use std::future::{Future, poll_fn};
use std::rc::Rc;

/// What a request's log lines and outgoing calls carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The request's id (answered in `x-request-id`).
    pub request_id: String,
    /// The route pattern the component serves, as in `spin.toml`.
    pub route: &'static str,
    /// The component's id (its crate's name, which is its id in `spin.toml`).
    pub component: &'static str,
    /// The trace this request belongs to.
    pub trace: TraceParent,
    /// The trace's vendor state (`tracestate`), forwarded as it came.
    pub trace_state: Option<String>,
    /// The caller's credentials (`Authorization`) as they came, forwarded on chained calls so
    /// that the service called checks the same caller.
    pub authorization: Option<String>,
    /// Fields added by the code serving the request (e.g. `saga_id`), in the order added.
    pub fields: RefCell<Vec<(&'static str, String)>>,
}

impl RequestContext {
    /// The value of an added field.
    pub fn field(&self, name: &str) -> Option<String> {
        self.fields.borrow().iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
    }

    /// The added fields, in the order added.
    pub fn fields(&self) -> Ref<'_, Vec<(&'static str, String)>> {
        self.fields.borrow()
    }

    fn set_field(&self, name: &'static str, value: String) {
        let mut fields = self.fields.borrow_mut();
        match fields.iter_mut().find(|(n, _)| *n == name) {
            Some(field) => field.1 = value,
            None => fields.push((name, value)),
        }
    }
}

/// Adds the field `name` = `value` (replacing one of that name) to the current context, for the
/// rest of its scope: the request's, or the innermost [`with_field`]'s. Outside any scope it
/// does nothing.
pub fn add_field(name: &'static str, value: impl Into<String>) {
    if let Some(ctx) = current() {
        ctx.set_field(name, value.into());
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<RequestContext>>> = const { RefCell::new(None) };
}

/// The context of the request whose future is being polled; `None` outside any [`scope`] (a
/// Redis-triggered component, a task spawned without [`bind`]).
pub fn current() -> Option<Rc<RequestContext>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Runs `fut` with `context` as the current context during each of its polls.
pub async fn scope<F: Future>(context: RequestContext, fut: F) -> F::Output {
    scope_rc(Rc::new(context), fut).await
}

/// Runs `fut` with the current context plus the field `name` = `value` (replacing a field of
/// that name); outside any scope, `fut` runs as it is.
pub async fn with_field<F: Future>(name: &'static str, value: impl Into<String>, fut: F) -> F::Output {
    match current() {
        Some(ctx) => {
            let ctx = (*ctx).clone();
            ctx.set_field(name, value.into());
            scope(ctx, fut).await
        }
        None => fut.await,
    }
}

/// `fut` bound to the current context, for a task spawned from the request that should log
/// under it.
pub fn bind<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let ctx = current();
    async move {
        match ctx {
            Some(ctx) => scope_rc(ctx, fut).await,
            None => fut.await,
        }
    }
}

async fn scope_rc<F: Future>(context: Rc<RequestContext>, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    poll_fn(move |cx| {
        let _installed = Installed::new(context.clone());
        fut.as_mut().poll(cx)
    })
    .await
}

/// Makes a context current until dropped, then puts back the one that was (also when the poll
/// panics).
struct Installed(Option<Rc<RequestContext>>);

impl Installed {
    fn new(context: Rc<RequestContext>) -> Self {
        Installed(CURRENT.with(|c| c.replace(Some(context))))
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// A W3C Trace Context `traceparent` (version 00): trace id, parent (span) id and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: u128,
    pub parent_id: u64,
    pub flags: u8,
}

impl TraceParent {
    /// Parses a `traceparent` header value as the W3C Trace Context spec says a receiver must:
    /// lowercase hex fields `version-traceid-parentid-flags`; version `ff`, an all-zero trace or
    /// parent id, or a malformed field make it invalid (`None`). A version above 00 may carry
    /// more fields after a `-`, which are ignored.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let bytes = value.as_bytes();
        if bytes.len() < 55 || !value.is_ascii() {
            return None;
        }
        let version = hex_field(&value[0..2])? as u8;
        if version == 0xff || (version == 0 && bytes.len() != 55) || (bytes.len() > 55 && bytes[55] != b'-') {
            return None;
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let trace_id = hex_field(&value[3..35])?;
        let parent_id = hex_field(&value[36..52])? as u64;
        let flags = hex_field(&value[53..55])? as u8;
        if trace_id == 0 || parent_id == 0 {
            return None;
        }
        Some(TraceParent { trace_id, parent_id, flags })
    }

    /// A new trace (for a request that came without a valid `traceparent`, as the spec says a
    /// receiver starts one): random trace and parent ids, not sampled (nothing here records it:
    /// it only ties this request's log lines and calls together).
    pub fn new_random() -> TraceParent {
        let high = u128::from(crate::request_id::random_u64());
        let low = u128::from(crate::request_id::random_u64());
        TraceParent { trace_id: (high << 64 | low).max(1), parent_id: crate::request_id::random_u64().max(1), flags: 0 }
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The header value, version 00.
    pub fn header_value(&self) -> String {
        format!("00-{:032x}-{:016x}-{:02x}", self.trace_id, self.parent_id, self.flags)
    }
}

/// A field of lowercase hex digits (the spec forbids uppercase), at most 32 of them.
fn hex_field(s: &str) -> Option<u128> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    u128::from_str_radix(s, 16).ok()
}

/// The context of a request arriving at `component` for `route`: its trace from the
/// `traceparent` header when valid (with its `tracestate`), a new trace otherwise; its id from
/// `x-request-id` when the caller (another component of the app, or a proxy) sent a plausible
/// one, a new id otherwise.
pub fn for_request(headers: &http::HeaderMap, route: &'static str, component: &'static str) -> RequestContext {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let trace = header("traceparent").and_then(TraceParent::parse);
    let trace_state = trace.and(header("tracestate")).filter(|s| !s.is_empty()).map(str::to_string);
    let request_id = header("x-request-id").filter(|id| plausible_request_id(id)).map(str::to_string);
    RequestContext {
        request_id: request_id.unwrap_or_else(crate::request_id::new),
        route,
        component,
        trace: trace.unwrap_or_else(TraceParent::new_random),
        trace_state,
        authorization: header("authorization").map(str::to_string),
        fields: RefCell::default(),
    }
}

/// A request id taken from a caller: 1 to 64 letters, digits, `-`, `_` or `.` (nothing that
/// could break a header or a log line).
fn plausible_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    fn context(id: &str) -> RequestContext {
        RequestContext {
            request_id: id.to_string(),
            route: "/r",
            component: "c",
            trace: TraceParent { trace_id: 1, parent_id: 1, flags: 1 },
            trace_state: None,
            authorization: None,
            fields: RefCell::default(),
        }
    }

    /// Pending on its first poll, ready on the second: a host call in between.
    async fn yield_once() {
        let yielded = Cell::new(false);
        poll_fn(|_| if yielded.replace(true) { Poll::Ready(()) } else { Poll::Pending }).await
    }

    fn seen_id() -> Option<String> {
        current().map(|c| c.request_id.clone())
    }

    #[test]
    fn two_interleaved_requests_each_see_their_own_context() {
        let log = RefCell::new(Vec::new());
        let request = |id: &'static str| {
            let log = &log;
            scope(context(id), async move {
                log.borrow_mut().push((id, seen_id()));
                yield_once().await;
                log.borrow_mut().push((id, seen_id()));
                with_field("saga_id", format!("saga-of-{id}"), async {
                    yield_once().await;
                    log.borrow_mut().push((id, current().and_then(|c| c.field("saga_id"))));
                })
                .await;
                log.borrow_mut().push((id, current().and_then(|c| c.field("saga_id"))));
                add_field("order_id", format!("order-of-{id}"));
                yield_once().await;
                log.borrow_mut().push((id, current().and_then(|c| c.field("order_id"))));
            })
        };
        {
            let mut a = pin!(request("a"));
            let mut b = pin!(request("b"));
            let mut cx = Context::from_waker(Waker::noop());
            // a, b, a, b, ... as an instance interleaves two requests.
            for _ in 0..3 {
                assert!(a.as_mut().poll(&mut cx).is_pending());
                assert_eq!(seen_id(), None, "nothing current between polls");
                assert!(b.as_mut().poll(&mut cx).is_pending());
            }
            assert!(a.as_mut().poll(&mut cx).is_ready());
            assert!(b.as_mut().poll(&mut cx).is_ready());
        }
        let log = log.into_inner();
        for id in ["a", "b"] {
            let seen: Vec<Option<String>> = log.iter().filter(|(who, _)| *who == id).map(|(_, s)| s.clone()).collect();
            assert_eq!(
                seen,
                vec![
                    Some(id.to_string()),
                    Some(id.to_string()),
                    Some(format!("saga-of-{id}")),
                    None,
                    Some(format!("order-of-{id}"))
                ],
                "request {id}"
            );
        }
        assert_eq!(seen_id(), None);
    }

    #[test]
    fn bound_futures_carry_the_context_that_was_current_when_bound() {
        let mut bound = None;
        {
            let mut outer = pin!(scope(context("outer"), async {
                bound = Some(bind(async { seen_id() }));
            }));
            assert!(outer.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_ready());
        }
        let mut spawned = pin!(bound.expect("bound in the scope"));
        assert_eq!(spawned.as_mut().poll(&mut Context::from_waker(Waker::noop())), Poll::Ready(Some("outer".into())));
    }

    #[test]
    fn a_panicking_poll_puts_the_previous_context_back() {
        let outcome = std::panic::catch_unwind(|| {
            let mut fut = pin!(scope(context("x"), async { panic!("boom") }));
            let _ = fut.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        });
        assert!(outcome.is_err());
        assert_eq!(seen_id(), None);
    }

    #[test]
    fn traceparents_are_parsed_as_the_w3c_spec_says() {
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let tp = TraceParent::parse(valid).expect("valid");
        assert_eq!(tp.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!((tp.parent_id, tp.flags), (0x00f067aa0ba902b7, 1));
        assert_eq!(tp.header_value(), valid);
        // A later version may append fields; version 00 may not.
        assert!(TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").is_some());
        for invalid in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473é-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(invalid), None, "{invalid:?}");
        }
    }

    #[test]
    fn a_request_keeps_a_valid_incoming_trace_and_id_and_gets_new_ones_otherwise() {
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
        headers.insert("tracestate", "congo=t61rcWkgMzE".parse().unwrap());
        headers.insert("x-request-id", "abc-123".parse().unwrap());
        let ctx = for_request(&headers, "/orders/checkout/:order_id", "orders-checkout");
        assert_eq!(ctx.trace.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!((ctx.trace_state.as_deref(), ctx.request_id.as_str()), (Some("congo=t61rcWkgMzE"), "abc-123"));

        headers.insert("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01".parse().unwrap());
        headers.insert("x-request-id", "has space".parse().unwrap());
        let fresh = for_request(&headers, "/r", "c");
        let again = for_request(&headers, "/r", "c");
        assert_ne!(fresh.trace.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_ne!(fresh.trace.trace_id, again.trace.trace_id, "each request starts its own trace");
        assert_eq!(TraceParent::parse(&fresh.trace.header_value()), Some(fresh.trace));
        assert_eq!(fresh.trace_state, None, "no tracestate without a valid traceparent");
        assert_eq!(fresh.request_id.len(), 16);
        assert_ne!(fresh.request_id, again.request_id);
    }
}
