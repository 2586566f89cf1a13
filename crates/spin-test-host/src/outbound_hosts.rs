//! `allowed_outbound_hosts`, as Spin's `outbound-networking-config` parses and
//! checks it.
//!
//! Each entry is `<scheme>://<host>[:<port>]`: scheme `*` or a name; host `*`,
//! `*.domain`, a domain or an IP address; port `*`, a number or a range
//! `a..b` (end exclusive), defaulting to the scheme's well-known port.
//! Literal entries, and templated ones rendered with the manifest defaults, are
//! checked when the manifest is loaded (an invalid one fails the load, as in
//! Spin). Templates (`{{ var }}`) are rendered at startup with the variables'
//! values; an entry that renders to an empty string (or a bare
//! `http://`/`https://`) is skipped, like Spin; one that renders to an invalid
//! entry makes every outbound check of the component fail (Spin logs it and
//! denies; it does not stop the app). `http://*.spin.internal` expands to every
//! component of the (`-c`-selected) application.
//!
//! Which entries are for service chaining is decided as Spin's loader does it:
//! on the entry as written, so `http://{{ x }}.spin.internal` does not count
//! (it cannot be parsed before rendering) while `http://*.spin.internal` does.
//! Not supported: CIDR ranges, the `self` host (relative URLs), lists in braces.

use anyhow::{Context, bail, ensure};
use url::Host;

use crate::variables::{AppVariables, Template};

/// The service-chaining domain.
pub const CHAINING_SUFFIX: &str = ".spin.internal";

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemePattern {
    Any,
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`, stored as `.example.com`.
    AnySubdomain(String),
    Literal(Host<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Port(u16),
    /// `start..end`, end exclusive as in Spin.
    Range(u16, u16),
}

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: SchemePattern,
    host: HostPattern,
    port: PortPattern,
}

/// All entries of one component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    hosts: Vec<AllowedHost>,
    /// Set when a templated entry rendered to something invalid: every check
    /// then fails with this message (Spin's resolution error).
    invalid: Option<String>,
}

fn well_known_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "postgres" => 5432,
        "mysql" => 3306,
        "redis" => 6379,
        "mqtt" => 1883,
        "http" => 80,
        "https" => 443,
        _ => return None,
    })
}

impl AllowedHost {
    /// Parses one literal (already rendered) entry.
    pub fn parse(entry: &str) -> anyhow::Result<Self> {
        let url = entry.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            bail!(
                "{url:?} does not contain a scheme (e.g., 'http://' or '*://'); hosts must be in the form <scheme>://<host>[:<port>]"
            );
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        ensure!(!rest.contains('/'), "{url:?} has a path but is not allowed to");
        // IPv6 literals contain colons; only a colon after `]` (or the only
        // colon, for names) separates the port.
        let (host, port) = if let Some(end) = rest.find(']') {
            match rest[end + 1..].strip_prefix(':') {
                Some(port) => (&rest[..=end], port),
                None => (rest, ""),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, p),
                None => (rest, ""),
            }
        };

        let scheme_pat = if scheme == "*" {
            SchemePattern::Any
        } else {
            ensure!(
                !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphabetic()),
                "invalid scheme {scheme:?} in {url:?}"
            );
            SchemePattern::Exact(scheme.to_owned())
        };

        let host_pat = if host == "*" {
            HostPattern::Any
        } else if host.starts_with('{') {
            bail!("host lists are not supported: {url:?}")
        } else if let Some(domain) = host.strip_prefix("*.") {
            ensure!(!domain.contains('*'), "wildcards are allowed only as prefixes: {url:?}");
            match Host::parse(domain).with_context(|| format!("invalid host in {url:?}"))? {
                Host::Domain(d) => HostPattern::AnySubdomain(format!(".{d}")),
                _ => bail!("wildcard suffix must be a domain: {url:?}"),
            }
        } else {
            ensure!(!host.contains('*'), "wildcards are allowed only as subdomains: {url:?}");
            ensure!(
                host != "self" && host != "self.alt",
                "the `self` host is not supported by spin-test-host: {url:?}"
            );
            HostPattern::Literal(Host::parse(host).with_context(|| format!("invalid host in {url:?}"))?)
        };

        let port_pat = if port.is_empty() {
            PortPattern::Port(well_known_port(scheme).with_context(|| {
                format!("{url:?}: no port was provided and the scheme {scheme:?} has no known default port")
            })?)
        } else if port == "*" {
            PortPattern::Any
        } else if let Some((a, b)) = port.split_once("..") {
            PortPattern::Range(
                a.parse().with_context(|| format!("bad port range in {url:?}"))?,
                b.parse().with_context(|| format!("bad port range in {url:?}"))?,
            )
        } else {
            PortPattern::Port(port.parse().with_context(|| format!("bad port in {url:?}"))?)
        };

        Ok(Self { scheme: scheme_pat, host: host_pat, port: port_pat })
    }

    /// Whether this entry is for service chaining (`*.spin.internal` or
    /// `<name>.spin.internal`), as Spin's `is_for_service_chaining`.
    pub fn is_for_service_chaining(&self) -> bool {
        match &self.host {
            HostPattern::Literal(Host::Domain(d)) => d.ends_with(CHAINING_SUFFIX),
            HostPattern::AnySubdomain(suffix) => suffix == CHAINING_SUFFIX,
            _ => false,
        }
    }

    fn allows(&self, scheme: &str, host: &Host<String>, port: Option<u16>) -> bool {
        let scheme_ok = match &self.scheme {
            SchemePattern::Any => true,
            SchemePattern::Exact(s) => s == scheme,
        };
        let host_ok = match (&self.host, host) {
            (HostPattern::Any, _) => true,
            (HostPattern::AnySubdomain(suffix), Host::Domain(d)) => d.ends_with(suffix.as_str()),
            (HostPattern::AnySubdomain(_), _) => false,
            (HostPattern::Literal(l), h) => l == h,
        };
        let port_ok = match &self.port {
            PortPattern::Any => true,
            other => match port.or_else(|| well_known_port(scheme)) {
                None => false,
                Some(p) => match other {
                    PortPattern::Port(q) => *q == p,
                    PortPattern::Range(a, b) => (*a..*b).contains(&p),
                    PortPattern::Any => true,
                },
            },
        };
        scheme_ok && host_ok && port_ok
    }
}

/// Spin's check of a raw `allowed_outbound_hosts` list when the manifest is
/// loaded: literal entries must parse; a templated entry must parse once
/// rendered with the manifest defaults (`default` is the default of a
/// variable, `None` when it has none, in which case the entry is not checked).
pub fn validate(entries: &[String], default: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
    if let [only] = entries {
        ensure!(only != "insecure:allow-all", "'insecure:allow-all' is not allowed - use '*://*:*' instead");
    }
    for entry in entries {
        let template = Template::parse(entry)?;
        if template.is_literal() {
            AllowedHost::parse(entry)?;
            continue;
        }
        let Ok(rendered) = template.render(|name| default(name).context("no default")) else {
            continue;
        };
        if !skipped(&rendered) {
            AllowedHost::parse(&rendered).with_context(|| {
                format!(
                    "using default variable value(s) with template {entry:?} results in invalid config {rendered:?}"
                )
            })?;
        }
    }
    Ok(())
}

/// A rendered template that Spin ignores (an "optional endpoint").
fn skipped(rendered: &str) -> bool {
    rendered.is_empty() || rendered == "http://" || rendered == "https://"
}

/// Whether a component needs the host to support local service chaining (the
/// `local_service_chaining` host requirement Spin's loader derives): one of its
/// entries, as written (templates unrendered), parses as a `*.spin.internal`
/// or `<name>.spin.internal` host.
pub fn requires_service_chaining(entries: &[String]) -> bool {
    entries.iter().any(|e| AllowedHost::parse(e).map(|h| h.is_for_service_chaining()).unwrap_or(false))
}

/// The service-chaining target an entry names, as `spin up -c` reads it
/// (`*` for `http://*.spin.internal`); `None` for other entries and for
/// entries that are not valid URIs as written (templates).
pub fn chaining_target_of_entry(entry: &str) -> Option<String> {
    let uri: http::Uri = entry.parse().ok()?;
    let host = uri.authority()?.host().trim();
    chaining_target(host).map(str::to_owned)
}

impl AllowedHosts {
    /// Renders templates and parses every entry. `component_ids` is used to
    /// expand `*.spin.internal`. Entries were checked when the manifest was
    /// loaded; a templated one that renders to something invalid makes every
    /// check fail instead of failing here, as in Spin.
    pub fn resolve(entries: &[String], vars: &AppVariables, component_ids: &[String]) -> Self {
        let mut hosts = Vec::new();
        for entry in entries {
            let parsed = Template::parse(entry).and_then(|template| {
                let rendered = if template.is_literal() { entry.clone() } else { vars.render(&template)? };
                if skipped(&rendered) && !template.is_literal() {
                    return Ok(None);
                }
                AllowedHost::parse(&rendered).map(Some)
            });
            let host = match parsed {
                Ok(Some(host)) => host,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!("Error parsing allowed outbound hosts: {e:#}");
                    return Self { hosts: Vec::new(), invalid: Some(format!("{e:#}")) };
                }
            };
            match &host.host {
                HostPattern::AnySubdomain(suffix) if suffix == CHAINING_SUFFIX => {
                    for id in component_ids {
                        let mut h = host.clone();
                        h.host = HostPattern::Literal(Host::Domain(format!("{id}{CHAINING_SUFFIX}")));
                        hosts.push(h);
                    }
                }
                _ => hosts.push(host),
            }
        }
        Self { hosts, invalid: None }
    }

    /// Whether an outbound URL is allowed. `default_scheme` is assumed when
    /// `url` has none (e.g. a bare `host:port`), as Spin does. `Err` when the
    /// component's entries could not be resolved (Spin's caller decides what
    /// that means: `http` denies, `redis` and `postgres` answer `other`).
    pub fn check_url(&self, url: &str, default_scheme: &str) -> Result<bool, String> {
        if let Some(e) = &self.invalid {
            return Err(e.clone());
        }
        Ok(self.allows_url(url, default_scheme))
    }

    /// [`Self::check_url`], with unresolvable entries counting as "not allowed".
    pub fn allows_url(&self, url: &str, default_scheme: &str) -> bool {
        if self.invalid.is_some() {
            return false;
        }
        // Like Spin, percent-encode the user info first, so that a password
        // with `#`, `/` or `@` in it does not move the host.
        let url = encode_userinfo(url);
        let parsed = match url::Url::parse(&url) {
            Ok(u) if u.has_host() => Some(u),
            _ => url::Url::parse(&format!("{default_scheme}://{url}")).ok(),
        };
        let Some(parsed) = parsed else { return false };
        // Non-special schemes (redis, postgres) leave hosts opaque; re-parse
        // so IP addresses compare as addresses, as Spin does.
        let Some(host) = parsed.host_str().and_then(|h| Host::parse(h).ok()) else {
            return false;
        };
        self.hosts.iter().any(|h| h.allows(parsed.scheme(), &host, parsed.port()))
    }
}

/// Percent-encodes everything between `scheme://` and the first `@`, if that is
/// before the path (every byte but `A-Z a-z 0-9 - . _ ~`), as Spin's `OutboundUrl::parse`.
fn encode_userinfo(url: &str) -> std::borrow::Cow<'_, str> {
    let Some(at) = url.find('@') else {
        return url.into();
    };
    let scheme_end = url.find("://").map(|e| e + 3).unwrap_or(0);
    let path_start = url[scheme_end..].find('/').map(|e| e + scheme_end).unwrap_or(usize::MAX);
    if at >= path_start || at < scheme_end {
        return url.into();
    }
    let mut out = String::with_capacity(url.len() + 8);
    out.push_str(&url[..scheme_end]);
    for b in url[scheme_end..at].bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push_str(&url[at..]);
    out.into()
}

/// If `host` (possibly with `:port`) is `<component>.spin.internal`, the component id.
pub fn chaining_target(host: &str) -> Option<&str> {
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    let (first, rest) = host.split_once('.')?;
    (rest == &CHAINING_SUFFIX[1..]).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;
    use std::path::Path;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        validate(&entries, |_| None).unwrap();
        AllowedHosts::resolve(&entries, &AppVariables::default(), &["probe".to_string(), "other".to_string()])
    }

    #[test]
    fn exact_hosts_and_default_ports() {
        let h = hosts(&["https://example.com", "redis://127.0.0.1:6380", "postgres://db"]);
        assert!(h.allows_url("https://example.com/path", "https"));
        assert!(h.allows_url("https://example.com:443/", "https"));
        assert!(!h.allows_url("https://example.com:8443/", "https"));
        assert!(!h.allows_url("http://example.com/", "http"));
        assert!(!h.allows_url("https://www.example.com/", "https"));
        assert!(h.allows_url("redis://127.0.0.1:6380", "redis"));
        assert!(h.allows_url("redis://user:pw@127.0.0.1:6380/0", "redis"));
        assert!(!h.allows_url("redis://127.0.0.1", "redis"));
        assert!(h.allows_url("postgres://u:p@db/shop", "postgres"));
        assert!(h.allows_url("postgres://u:p@db:5432/shop?sslmode=disable", "postgres"));
        assert!(!h.allows_url("postgres://u:p@db:5433/shop", "postgres"));
    }

    #[test]
    fn wildcards() {
        let h = hosts(&["*://*.example.com:*", "http://localhost:3000..3010"]);
        assert!(h.allows_url("https://api.example.com:9/", "https"));
        assert!(h.allows_url("redis://r.example.com", "redis"));
        assert!(!h.allows_url("https://example.com/", "https"));
        assert!(h.allows_url("http://localhost:3005/", "http"));
        assert!(!h.allows_url("http://localhost:3010/", "http"));
        let all = hosts(&["*://*:*"]);
        assert!(all.allows_url("http://anything:1/", "http"));
        assert!(all.allows_url("http://probe.spin.internal/", "http"));
        assert!(!hosts(&[]).allows_url("http://x/", "http"));
    }

    #[test]
    fn service_chaining_entries() {
        let h = hosts(&["http://probe.spin.internal"]);
        assert!(h.allows_url("http://probe.spin.internal/echo", "http"));
        assert!(!h.allows_url("http://other.spin.internal/echo", "http"));
        let h = hosts(&["http://*.spin.internal"]);
        assert!(h.allows_url("http://other.spin.internal/", "http"));
        assert!(!h.allows_url("http://unknown.spin.internal/", "http"));
        assert_eq!(chaining_target("probe.spin.internal"), Some("probe"));
        assert_eq!(chaining_target("probe.spin.internal:80"), Some("probe"));
        assert_eq!(chaining_target("probe.example.com"), None);
        assert_eq!(chaining_target("a.b.spin.internal"), None);
    }

    #[test]
    fn bad_entries() {
        for bad in ["example.com", "*", "http://a/b", "http://a*b.com", "foo://x", "http://x:y"] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
        assert!(validate(&["insecure:allow-all".to_string()], |_| None).is_err());
        assert!(validate(&["http://{{ h }}".to_string()], |_| Some("a b".into())).is_err());
        validate(&["http://{{ h }}".to_string()], |_| None).unwrap();
        validate(&["http://{{ h }}".to_string()], |_| Some(String::new())).unwrap();
    }

    #[test]
    fn templates_are_rendered() {
        let text = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
redis_port = { default = "6390" }
optional_host = { default = "" }
[component.c]
source = "c.wasm"
allowed_outbound_hosts = ["redis://127.0.0.1:{{ redis_port }}", "{{ optional_host }}"]
"#;
        let app = manifest::parse(text, Path::new(".")).unwrap();
        let vars =
            AppVariables::resolve(&app, |k| (k == "SPIN_VARIABLE_REDIS_PORT").then(|| "7000".to_string())).unwrap();
        let h = AllowedHosts::resolve(&app.components["c"].allowed_outbound_hosts, &vars, &[]);
        assert!(h.allows_url("redis://127.0.0.1:7000", "redis"));
        assert!(!h.allows_url("redis://127.0.0.1:6390", "redis"));
        assert_eq!(h.check_url("redis://127.0.0.1:7000", "redis"), Ok(true));

        // Rendered to something invalid: not a startup error, every check fails.
        let vars = AppVariables::resolve(&app, |k| (k == "SPIN_VARIABLE_REDIS_PORT").then(|| "x".to_string())).unwrap();
        let h = AllowedHosts::resolve(&app.components["c"].allowed_outbound_hosts, &vars, &[]);
        assert!(!h.allows_url("redis://127.0.0.1:7000", "redis"));
        assert!(h.check_url("redis://127.0.0.1:7000", "redis").is_err());
    }

    #[test]
    fn userinfo_is_encoded_before_parsing() {
        let h = hosts(&["postgres://db:5432"]);
        assert!(h.allows_url("postgres://u:p#w?d@db:5432/shop", "postgres"));
        assert!(!h.allows_url("postgres://u:pw@other:5432/shop", "postgres"));
        // Spin looks for the path from the first `/`, so one in the password
        // defeats the encoding (and the check), there as here.
        assert!(!h.allows_url("postgres://u:p#w/d@db:5432/shop", "postgres"));
    }

    fn strings(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn which_entries_require_service_chaining() {
        // As Spin's loader: on the entry as written.
        for yes in [
            "http://a.spin.internal",
            "http://*.spin.internal",
            "*://a.spin.internal:*",
            "https://a.spin.internal:8080",
            "http://a-{{x}}.spin.internal",
        ] {
            assert!(requires_service_chaining(&strings(&[yes])), "{yes}");
        }
        for no in [
            "http://{{ x }}.spin.internal",
            "http://{{x}}.spin.internal",
            "http://a.spin.internal:{{ port }}",
            "{{ scheme }}://a.spin.internal",
            "http://spin.internal",
            "http://a.b.example.com",
            "redis://{{ redis_host }}",
            "http://{{ app_http_host }}",
        ] {
            assert!(!requires_service_chaining(&strings(&[no])), "{no}");
        }
    }

    #[test]
    fn chaining_targets_as_spin_up_c_reads_them() {
        assert_eq!(chaining_target_of_entry("http://a.spin.internal").as_deref(), Some("a"));
        assert_eq!(chaining_target_of_entry("http://a.spin.internal:81").as_deref(), Some("a"));
        assert_eq!(chaining_target_of_entry("http://*.spin.internal").as_deref(), Some("*"));
        assert_eq!(chaining_target_of_entry("http://{{ x }}.spin.internal"), None);
        assert_eq!(chaining_target_of_entry("http://a.example.com"), None);
        assert_eq!(chaining_target_of_entry("redis://{{ h }}"), None);
    }
}
