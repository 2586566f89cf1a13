//! `allowed_outbound_hosts`, as Spin's `outbound-networking-config` parses and
//! checks it.
//!
//! Each entry is `<scheme>://<host>[:<port>]`: scheme `*` or a name; host `*`,
//! `*.domain`, a domain or an IP address; port `*`, a number or a range
//! `a..b` (end exclusive), defaulting to the scheme's well-known port.
//! Templates (`{{ var }}`) are rendered at startup; an entry that renders to an
//! empty string (or a bare `http://`/`https://`) is skipped, like Spin.
//! `http://*.spin.internal` expands to every component of the application.
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
        ensure!(
            !rest.contains('/'),
            "{url:?} has a path but is not allowed to"
        );
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
        } else if let Some(domain) = host.strip_prefix("*.") {
            ensure!(
                !domain.contains('*'),
                "wildcards are allowed only as prefixes: {url:?}"
            );
            match Host::parse(domain).with_context(|| format!("invalid host in {url:?}"))? {
                Host::Domain(d) => HostPattern::AnySubdomain(format!(".{d}")),
                _ => bail!("wildcard suffix must be a domain: {url:?}"),
            }
        } else {
            ensure!(
                !host.contains('*'),
                "wildcards are allowed only as subdomains: {url:?}"
            );
            ensure!(
                host != "self" && host != "self.alt",
                "the `self` host is not supported by spin-test-host: {url:?}"
            );
            HostPattern::Literal(
                Host::parse(host).with_context(|| format!("invalid host in {url:?}"))?,
            )
        };

        let port_pat = if port.is_empty() {
            PortPattern::Port(well_known_port(scheme).with_context(|| {
                format!("{url:?}: no port was provided and the scheme {scheme:?} has no known default port")
            })?)
        } else if port == "*" {
            PortPattern::Any
        } else if let Some((a, b)) = port.split_once("..") {
            PortPattern::Range(
                a.parse()
                    .with_context(|| format!("bad port range in {url:?}"))?,
                b.parse()
                    .with_context(|| format!("bad port range in {url:?}"))?,
            )
        } else {
            PortPattern::Port(
                port.parse()
                    .with_context(|| format!("bad port in {url:?}"))?,
            )
        };

        Ok(Self {
            scheme: scheme_pat,
            host: host_pat,
            port: port_pat,
        })
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

impl AllowedHosts {
    /// Renders templates and parses every entry. `component_ids` is used to
    /// expand `*.spin.internal`.
    pub fn resolve(
        entries: &[String],
        vars: &AppVariables,
        component_ids: &[String],
    ) -> anyhow::Result<Self> {
        let mut hosts = Vec::new();
        for entry in entries {
            ensure!(
                entry != "insecure:allow-all",
                "'insecure:allow-all' is not allowed - use '*://*:*' instead"
            );
            let template = Template::parse(entry)?;
            let rendered = if template.is_literal() {
                entry.clone()
            } else {
                let r = vars.render(&template)?;
                if r.is_empty() || r == "http://" || r == "https://" {
                    continue;
                }
                r
            };
            let host = AllowedHost::parse(&rendered)?;
            match &host.host {
                HostPattern::AnySubdomain(suffix) if suffix == CHAINING_SUFFIX => {
                    for id in component_ids {
                        let mut h = host.clone();
                        h.host =
                            HostPattern::Literal(Host::Domain(format!("{id}{CHAINING_SUFFIX}")));
                        hosts.push(h);
                    }
                }
                _ => hosts.push(host),
            }
        }
        Ok(Self { hosts })
    }

    /// Whether an outbound URL is allowed. `default_scheme` is assumed when
    /// `url` has none (e.g. a bare `host:port`), as Spin does.
    pub fn allows_url(&self, url: &str, default_scheme: &str) -> bool {
        let parsed = match url::Url::parse(url) {
            Ok(u) if u.has_host() => Some(u),
            _ => url::Url::parse(&format!("{default_scheme}://{url}")).ok(),
        };
        let Some(parsed) = parsed else { return false };
        // Non-special schemes (redis, postgres) leave hosts opaque; re-parse
        // so IP addresses compare as addresses, as Spin does.
        let Some(host) = parsed.host_str().and_then(|h| Host::parse(h).ok()) else {
            return false;
        };
        self.hosts
            .iter()
            .any(|h| h.allows(parsed.scheme(), &host, parsed.port()))
    }
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
        AllowedHosts::resolve(
            &entries,
            &AppVariables::default(),
            &["probe".to_string(), "other".to_string()],
        )
        .unwrap()
    }

    #[test]
    fn exact_hosts_and_default_ports() {
        let h = hosts(&[
            "https://example.com",
            "redis://127.0.0.1:6380",
            "postgres://db",
        ]);
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
        for bad in [
            "example.com",
            "*",
            "http://a/b",
            "http://a*b.com",
            "foo://x",
            "http://x:y",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
        assert!(
            AllowedHosts::resolve(
                &["insecure:allow-all".to_string()],
                &AppVariables::default(),
                &[]
            )
            .is_err()
        );
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
        let vars = AppVariables::resolve(&app, |k| {
            (k == "SPIN_VARIABLE_REDIS_PORT").then(|| "7000".to_string())
        })
        .unwrap();
        let h =
            AllowedHosts::resolve(&app.components["c"].allowed_outbound_hosts, &vars, &[]).unwrap();
        assert!(h.allows_url("redis://127.0.0.1:7000", "redis"));
        assert!(!h.allows_url("redis://127.0.0.1:6390", "redis"));
    }
}
