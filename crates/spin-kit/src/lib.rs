//! The Spin glue every component shares, so that a component crate is one line.
//!
//! Owns: answering (every response carries the whole body with its `Content-Length`, errors are
//! mapped once from [`ApiError`]), reading route parameters from the path by the endpoint's route
//! pattern, reading application variables (cached per instance), the per-instance Redis and
//! Postgres connections that heal themselves, `Idempotency-Key` handling for every mutating
//! endpoint, calls to other components (service chaining), and running futures concurrently.
//! Domain rules live in the Spin-free service libraries.
//!
//! A component is:
//! ```ignore
//! spin_kit::endpoint!(POST "/stock/subtract/:item_id/:amount" => stock_service::subtract);
//! ```

pub mod body;
pub mod chain;
pub mod concurrent;
pub mod group_commit;
pub mod idempotency;
pub mod respond;
pub mod route;
pub mod signal;
pub mod stores;
pub mod vars;

pub use market_core::ApiError;
pub use respond::Reply;
pub use spin_sdk;
pub use spin_sdk::http::Request;

use std::future::Future;

/// Runs `handler` for a request to the endpoint `method route`; every outcome becomes a [`Reply`].
pub async fn serve<F, Fut>(req: Request, method: http::Method, route: &'static str, handler: F) -> Reply
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<Reply, ApiError>>,
{
    route::declare(route);
    let _in_flight = stores::request_started();
    if req.method() != method {
        return respond::error(&ApiError::MethodNotAllowed { allowed: method_name(&method) });
    }
    let keyed = if method == http::Method::GET { None } else { idempotency::keyed(&req) };
    let work = async move {
        match handler(req).await {
            Ok(reply) => reply,
            Err(err) => {
                if err.status() >= 500 {
                    eprintln!("error: {err}");
                }
                respond::error(&err)
            }
        }
    };
    match keyed {
        Some(keyed) => idempotency::once(keyed, work).await,
        None => work.await,
    }
}

fn method_name(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        _ => "another method",
    }
}

/// Declares a component's HTTP entry point: the method and route it serves (the route as in
/// `spin.toml`) and the handler it runs.
///
/// The component crate must depend on `spin-sdk` (its `http_service` macro refers to it by name).
#[macro_export]
macro_rules! endpoint {
    ($method:ident $route:literal => $handler:path) => {
        #[::spin_sdk::http_service]
        async fn handle(req: $crate::Request) -> $crate::Reply {
            $crate::serve(req, ::http::Method::$method, $route, $handler).await
        }
    };
}
