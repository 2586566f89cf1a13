//! The Spin glue every component shares, so that a component crate is one line.
//!
//! Owns: answering (every response carries the whole body with its `Content-Length` and the
//! request's id in `x-request-id`; errors are mapped once from [`ApiError`], a server error's
//! details logged under that id and never answered), reading route parameters from the path by
//! the endpoint's route pattern, reading application variables (cached per instance), the admin
//! routes' switch, the per-instance Redis and Postgres connections that heal themselves,
//! `Idempotency-Key` handling for every mutating endpoint, counting every request for `/metrics`,
//! calls to other components (service chaining, carrying the request's trace context and id), the
//! per-request context and the structured log lines that carry it, and running futures
//! concurrently. Domain rules live in the Spin-free service libraries.
//!
//! A component is:
//! ```ignore
//! spin_kit::endpoint!(POST "/stock/subtract/:item_id/:amount" => stock_service::subtract);
//! ```

pub mod admin;
pub mod auth;
pub mod body;
pub mod chain;
pub mod concurrent;
pub mod idempotency;
pub mod log;
pub mod metrics;
pub mod pg_store;
pub mod redis_store;
pub mod request_context;
pub mod request_id;
pub mod respond;
pub mod route;
pub mod signal;
pub mod vars;

pub use market_core::ApiError;
pub use respond::Reply;
pub use spin_sdk;
pub use spin_sdk::http::Request;

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::thread::LocalKey;

/// Runs `handler` for a request to the endpoint `method route` of `component`, inside the
/// request's context ([`request_context`]: its id, trace, route and component, for log lines
/// and outgoing calls); every outcome becomes a [`Reply`] that carries the request's id (header
/// `x-request-id`; error bodies also as `"request_id"`).
pub async fn serve<F, Fut>(
    req: Request,
    methods: &[http::Method],
    route: &'static str,
    component: &'static str,
    handler: F,
) -> Reply
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<Reply, ApiError>>,
{
    route::declare(route);
    let _in_flight = pg_store::request_started();
    let started = std::time::Instant::now();
    let context = request_context::for_request(req.headers(), route, component);
    let request_id = context.request_id.clone();
    let work = async {
        let mut reply = dispatch(req, methods, &request_id, handler).await;
        metrics::count_request(route, &mut reply, started.elapsed().as_micros() as u64);
        reply
    };
    let mut reply = request_context::scope(context, work).await;
    if reply.status().as_u16() >= 400 {
        respond::add_request_id(&mut reply, &request_id);
    }
    if let Ok(value) = http::HeaderValue::from_str(&request_id) {
        reply.headers_mut().insert("x-request-id", value);
    }
    reply
}

async fn dispatch<F, Fut>(req: Request, methods: &[http::Method], request_id: &str, handler: F) -> Reply
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<Reply, ApiError>>,
{
    // Every body a request declares is read before the answer, whether the handler wants it or
    // not: a body left unread is dropped, the server stops reading the connection and closes it
    // with the client's bytes unread, so the client's write is refused half-way (a reset), which
    // can cost it the answer, and the connection is lost (hostile_clients tests it).
    let req = if body::declared(&req) {
        match body::buffer(req).await {
            Ok(req) => req,
            Err(err) => return fail(&err, request_id),
        }
    } else {
        req
    };
    if !methods.contains(req.method()) {
        let allowed = methods.iter().map(http::Method::as_str).collect::<Vec<_>>().join(", ");
        return fail(&ApiError::MethodNotAllowed { allowed }, request_id);
    }
    let (req, keyed) = if req.method() == http::Method::GET {
        (req, None)
    } else {
        match idempotency::keyed(req).await {
            Ok(keyed) => keyed,
            Err(err) => return fail(&err, request_id),
        }
    };
    let work = async move {
        match handler(req).await {
            Ok(reply) => reply,
            Err(err) => fail(&err, request_id),
        }
    };
    match keyed {
        Some(keyed) => idempotency::once(keyed, request_id, work).await,
        None => work.await,
    }
}

/// The answer to `err`: a server error's whole text goes to the log, under the request's id (the
/// line's context); the client reads the public message (see [`ApiError::public_message`]) and
/// the id.
pub(crate) fn fail(err: &ApiError, request_id: &str) -> Reply {
    if err.is_server_error() {
        log::write(log::Level::Error, err, &[("status", &err.status().to_string())]);
    }
    respond::error_for(err, request_id)
}

/// Declares a component's HTTP entry point: the method and route it serves (the route as in
/// `spin.toml`) and the handler it runs; or, for a route served for several methods (Spin routes
/// by path only), the route and one handler per method:
/// ```ignore
/// spin_kit::endpoint!("/stock/items/:item_id" { GET => stock_service::item_page, PATCH => stock_service::change_item });
/// ``` The component's id in log lines is its crate's name,
/// which is its id in `spin.toml`.
///
/// The component crate must depend on `spin-sdk` (its `http_service` macro refers to it by name).
#[macro_export]
macro_rules! endpoint {
    ($method:ident $route:literal => $handler:path) => {
        #[::spin_sdk::http_service]
        async fn handle(req: $crate::Request) -> $crate::Reply {
            $crate::serve(req, &[::http::Method::$method], $route, env!("CARGO_PKG_NAME"), $handler).await
        }
    };
    ($route:literal { $($method:ident => $handler:path),+ $(,)? }) => {
        #[::spin_sdk::http_service]
        async fn handle(req: $crate::Request) -> $crate::Reply {
            let methods = [$(::http::Method::$method),+];
            $crate::serve(req, &methods, $route, env!("CARGO_PKG_NAME"), |req: $crate::Request| async move {
                $(if req.method() == ::http::Method::$method {
                    return $handler(req).await;
                })+
                Err($crate::ApiError::Internal("no handler for an allowed method".into()))
            })
            .await
        }
    };
}

/// Drops `conn` from the instance's `slot` if it is still the one cached there (another request
/// may already have reopened it).
pub(crate) fn forget_cached<T>(slot: &'static LocalKey<RefCell<Option<Rc<T>>>>, conn: &Rc<T>) {
    slot.with(|s| {
        let mut cached = s.borrow_mut();
        if cached.as_ref().is_some_and(|c| Rc::ptr_eq(c, conn)) {
            *cached = None;
        }
    });
}
