//! HTTP trigger routing and the `spin-*` request headers, as Spin's `routes`
//! and `trigger-http` crates define them.
//!
//! Matching uses the same `routefinder` crate Spin uses, so precedence is the
//! same: exact segments beat `:param` segments, which beat a trailing wildcard;
//! among wildcards the longest prefix wins. When two triggers have the same
//! route, the later one wins (Spin logs the duplicate too).

use std::net::SocketAddr;

use anyhow::anyhow;

/// A routing table built from the manifest's HTTP triggers.
#[derive(Debug)]
pub struct Router {
    inner: routefinder::Router<Handler>,
}

#[derive(Debug, Clone)]
struct Handler {
    component: String,
    /// Route with the (always `/`) base applied, e.g. `/items/...`.
    based_route: String,
    /// Route as written in the manifest.
    raw_route: String,
    /// Display form for the startup listing.
    display: String,
}

/// A duplicate route, reported at startup.
#[derive(Debug, PartialEq, Eq)]
pub struct Duplicate {
    pub route: String,
    pub replaced: String,
    pub effective: String,
}

/// The result of routing one path (or of a service-chaining request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub component: String,
    based_route: String,
    pub raw_route: String,
    named: Vec<(String, String)>,
    trailing: String,
}

impl Router {
    /// Builds a router from `(component id, route)` pairs in manifest order.
    pub fn build<'a>(routes: impl IntoIterator<Item = (&'a str, &'a str)>) -> anyhow::Result<(Self, Vec<Duplicate>)> {
        // Keep insertion order but let later entries replace earlier ones.
        let mut entries: Vec<(String, &str)> = Vec::new();
        let mut duplicates = Vec::new();
        for (component, raw) in routes {
            if let Some(existing) = entries.iter_mut().find(|(_, r)| *r == raw) {
                duplicates.push(Duplicate {
                    route: raw.to_owned(),
                    replaced: existing.0.clone(),
                    effective: component.to_owned(),
                });
                existing.0 = component.to_owned();
            } else {
                entries.push((component.to_owned(), raw));
            }
        }

        let mut inner = routefinder::Router::new();
        for (component, raw) in entries {
            let based = based_route(raw);
            let (spec, display) = if let Some(prefix) = based.strip_suffix("/...") {
                (format!("{prefix}/*"), format!("{prefix} (wildcard)"))
            } else if let Some(prefix) = based.strip_suffix("/*") {
                (based.clone(), format!("{prefix} (wildcard)"))
            } else {
                (based.clone(), based.clone())
            };
            let handler = Handler {
                component: component.clone(),
                based_route: based.clone(),
                raw_route: raw.to_owned(),
                display,
            };
            inner
                .add(spec.as_str(), handler)
                .map_err(|e| anyhow!("Error parsing route {based} associated with component {component}: {e}"))?;
        }
        Ok((Self { inner }, duplicates))
    }

    /// Routes a request path. `None` means 404.
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let m = self.inner.best_match(path)?;
        let handler = m.handler();
        let captures = m.captures();
        let named = captures.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        // Spin keeps the trailing slash in the wildcard part, which routefinder drops.
        let trailing = match captures.wildcard() {
            None => String::new(),
            Some(w) => match (w.is_empty(), path.ends_with('/')) {
                (true, false) => String::new(),
                (true, true) => "/".to_owned(),
                (false, false) => format!("/{w}"),
                (false, true) => format!("/{w}/"),
            },
        };
        Some(RouteMatch {
            component: handler.component.clone(),
            based_route: handler.based_route.clone(),
            raw_route: handler.raw_route.clone(),
            named,
            trailing,
        })
    }

    /// `(component, display route)` pairs for the startup listing, in routing
    /// order; Spin prints them after the base URL (so `/` shows as empty).
    pub fn listing(&self) -> Vec<(String, String)> {
        self.inner.iter().map(|(_, h)| (h.component.clone(), h.display.clone())).collect()
    }
}

/// Spin joins the base (`/`) and the route, each with one trailing slash removed.
fn based_route(raw: &str) -> String {
    let abs = if raw.starts_with('/') { raw.to_owned() } else { format!("/{raw}") };
    abs.strip_suffix('/').unwrap_or(&abs).to_owned()
}

impl RouteMatch {
    /// The match Spin synthesizes for a service-chaining request: the whole
    /// path is treated as the trailing wildcard of a `/...` route.
    pub fn synthetic(component: &str, path: &str) -> Self {
        Self {
            component: component.to_owned(),
            based_route: "/...".to_owned(),
            raw_route: "/...".to_owned(),
            named: Vec::new(),
            trailing: path.to_owned(),
        }
    }

    /// The `spin-*` headers for a request, in Spin's order. `path_and_query`
    /// and `host` come from the request; `scheme` is the server's. Names are
    /// Spin's `SPIN_*` keys with `_` turned into `-`, in lower case (so the
    /// parameter `:user_id` gives `spin-path-match-user-id`).
    pub fn spin_headers(
        &self,
        scheme: &str,
        host: &str,
        path_and_query: &str,
        client_addr: SocketAddr,
    ) -> Vec<(String, String)> {
        let component_route = self.raw_route.strip_suffix("/...").unwrap_or(&self.raw_route);
        let mut headers = vec![
            ("spin-path-info".to_owned(), self.trailing.clone()),
            ("spin-full-url".to_owned(), format!("{scheme}://{host}{path_and_query}")),
            ("spin-matched-route".to_owned(), self.based_route.clone()),
            ("spin-base-path".to_owned(), "/".to_owned()),
            ("spin-raw-component-route".to_owned(), self.raw_route.clone()),
            ("spin-component-route".to_owned(), component_route.to_owned()),
            ("spin-client-addr".to_owned(), client_addr.to_string()),
        ];
        for (name, value) in &self.named {
            let key = format!("SPIN_PATH_MATCH_{}", name.to_ascii_uppercase());
            headers.push((header_key(&key), value.clone()));
        }
        headers
    }
}

/// Spin's `prepare_header_key`: `SPIN_PATH_INFO` -> `spin-path-info`.
fn header_key(key: &str) -> String {
    key.replace('_', "-").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        Router::build(routes.iter().copied()).unwrap().0
    }

    fn component(r: &Router, path: &str) -> Option<String> {
        r.route(path).map(|m| m.component)
    }

    #[test]
    fn exact_param_and_wildcard_precedence() {
        let r = router(&[
            ("catchall", "/..."),
            ("items", "/items/..."),
            ("item", "/items/:id"),
            ("special", "/items/special"),
            ("deep", "/items/:id/reviews/..."),
            ("root", "/"),
        ]);
        assert_eq!(component(&r, "/items/special").as_deref(), Some("special"));
        assert_eq!(component(&r, "/items/42").as_deref(), Some("item"));
        assert_eq!(component(&r, "/items/42/reviews/7").as_deref(), Some("deep"));
        assert_eq!(component(&r, "/items/42/other").as_deref(), Some("items"));
        assert_eq!(component(&r, "/items").as_deref(), Some("items"));
        assert_eq!(component(&r, "/elsewhere").as_deref(), Some("catchall"));
        assert_eq!(component(&r, "/").as_deref(), Some("root"));
    }

    #[test]
    fn unknown_route_is_none() {
        let r = router(&[("a", "/a"), ("b", "/b/...")]);
        assert_eq!(component(&r, "/c"), None);
        assert_eq!(component(&r, "/a/x"), None);
        assert_eq!(component(&r, "/bb"), None);
        assert_eq!(component(&r, "/b").as_deref(), Some("b"));
    }

    #[test]
    fn trailing_slash_and_duplicates() {
        let (r, dups) = Router::build([("a", "/foo/"), ("b", "/bar"), ("c", "/bar")]).unwrap();
        assert_eq!(component(&r, "/foo").as_deref(), Some("a"));
        assert_eq!(component(&r, "/bar").as_deref(), Some("c"));
        assert_eq!(dups, vec![Duplicate { route: "/bar".into(), replaced: "b".into(), effective: "c".into() }]);
    }

    #[test]
    fn headers_for_wildcard_route() {
        let r = router(&[("dummy", "/foo/...")]);
        let m = r.route("/foo/bar").unwrap();
        let addr: SocketAddr = "127.0.0.1:8777".parse().unwrap();
        let h = m.spin_headers("https", "fermyon.dev", "/foo/bar?key1=value1", addr);
        let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("spin-full-url"), Some("https://fermyon.dev/foo/bar?key1=value1"));
        assert_eq!(get("spin-path-info"), Some("/bar"));
        assert_eq!(get("spin-matched-route"), Some("/foo/..."));
        assert_eq!(get("spin-base-path"), Some("/"));
        assert_eq!(get("spin-raw-component-route"), Some("/foo/..."));
        assert_eq!(get("spin-component-route"), Some("/foo"));
        assert_eq!(get("spin-client-addr"), Some("127.0.0.1:8777"));

        // Trailing slashes are kept in path-info, as Spin does.
        let m = r.route("/foo/").unwrap();
        assert_eq!(m.trailing, "/");
        let m = r.route("/foo").unwrap();
        assert_eq!(m.trailing, "");
        let m = r.route("/foo/a/b/").unwrap();
        assert_eq!(m.trailing, "/a/b/");
    }

    #[test]
    fn headers_for_named_params() {
        let r = router(&[("dummy", "/foo/:userid/...")]);
        let m = r.route("/foo/42/bar").unwrap();
        let addr: SocketAddr = "127.0.0.1:8777".parse().unwrap();
        let h = m.spin_headers("http", "h", "/foo/42/bar", addr);
        let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("spin-path-match-userid"), Some("42"));
        assert_eq!(get("spin-path-info"), Some("/bar"));
        assert_eq!(get("spin-matched-route"), Some("/foo/:userid/..."));
        assert_eq!(get("spin-component-route"), Some("/foo/:userid"));
    }

    #[test]
    fn parameter_names_with_underscores_and_capitals() {
        let r = router(&[("dummy", "/users/:user_id/:Kind")]);
        let m = r.route("/users/7/Admin").unwrap();
        let h = m.spin_headers("http", "h", "/users/7/Admin", "0.0.0.0:0".parse().unwrap());
        let names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            &names[..7],
            [
                "spin-path-info",
                "spin-full-url",
                "spin-matched-route",
                "spin-base-path",
                "spin-raw-component-route",
                "spin-component-route",
                "spin-client-addr",
            ]
        );
        let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("spin-path-match-user-id"), Some("7"));
        assert_eq!(get("spin-path-match-kind"), Some("Admin"));
        assert_eq!(get("spin-path-match-user_id"), None);
    }

    #[test]
    fn exact_route_headers_and_root() {
        let r = router(&[("root", "/"), ("x", "/x")]);
        let m = r.route("/x").unwrap();
        let h = m.spin_headers("http", "h", "/x", "0.0.0.0:0".parse().unwrap());
        let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("spin-path-info"), Some(""));
        assert_eq!(get("spin-matched-route"), Some("/x"));
        assert_eq!(get("spin-component-route"), Some("/x"));
        // Spin's based route for "/" is the empty string.
        let m = r.route("/").unwrap();
        assert_eq!(m.based_route, "");
        assert_eq!(m.raw_route, "/");
    }

    #[test]
    fn synthetic_match_for_chaining() {
        let m = RouteMatch::synthetic("probe", "/echo/x");
        let h = m.spin_headers("http", "probe.spin.internal", "/echo/x?a=1", "0.0.0.0:0".parse().unwrap());
        let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("spin-path-info"), Some("/echo/x"));
        assert_eq!(get("spin-matched-route"), Some("/..."));
        assert_eq!(get("spin-component-route"), Some(""));
        assert_eq!(get("spin-full-url"), Some("http://probe.spin.internal/echo/x?a=1"));
        assert_eq!(get("spin-client-addr"), Some("0.0.0.0:0"));
    }
}
