//! Loading and validating a Spin manifest (version 2), limited to the subset we serve.
//!
//! Unknown keys are tolerated where Spin itself has features we do not implement
//! (they are simply not used), but structural mistakes that Spin rejects — a
//! trigger naming a missing component, a variable that is neither required nor
//! defaulted, a component variable referring to an undeclared application
//! variable — are errors here too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use serde::Deserialize;

use crate::outbound_hosts::{self, chaining_target_of_entry};
use crate::variables::{Template, validate_variable_name};

/// A validated application, ready to be served.
#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    /// `[application] version`, reported by `/.well-known/spin/info`.
    pub version: Option<String>,
    /// Application variables, by (lowercase) name.
    pub variables: BTreeMap<String, Variable>,
    /// Components by id.
    pub components: BTreeMap<String, Component>,
    pub http_triggers: Vec<HttpTrigger>,
    pub redis_triggers: Vec<RedisTrigger>,
    /// `[application.trigger.redis] address`, a template.
    pub redis_default_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub default: Option<String>,
    pub required: bool,
    pub secret: bool,
}

#[derive(Debug, Clone)]
pub struct Component {
    pub id: String,
    /// Absolute (or base-dir joined) path of the Wasm file.
    pub source: PathBuf,
    /// `allowed_outbound_hosts` entries, unresolved (they may hold templates).
    pub allowed_outbound_hosts: Vec<String>,
    /// Component variables: name -> template.
    pub variables: BTreeMap<String, Template>,
    /// `environment`: environment variables given to the guest.
    pub environment: BTreeMap<String, String>,
}

/// What an HTTP trigger's `route` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpRoute {
    /// A routable pattern, e.g. `/items/:id/...`.
    Pattern(String),
    /// `route = { private = true }`: reachable only through service chaining.
    Private,
}

#[derive(Debug, Clone)]
pub struct HttpTrigger {
    pub route: HttpRoute,
    pub component: String,
}

#[derive(Debug, Clone)]
pub struct RedisTrigger {
    /// Channel name (a template).
    pub channel: String,
    pub component: String,
    /// Per-trigger address override (a template).
    pub address: Option<String>,
}

// ---- raw TOML shapes -------------------------------------------------------

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: BTreeMap<String, Vec<toml::Table>>,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
struct RawApplication {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    trigger: BTreeMap<String, toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    allowed_http_hosts: Option<toml::Value>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    /// Spin features we do not implement; rejected when present.
    #[serde(flatten)]
    other: BTreeMap<String, toml::Value>,
}

/// Component keys that Spin accepts and that we can safely ignore.
const IGNORED_COMPONENT_KEYS: &[&str] = &["build", "description", "tool", "exclude_files"];

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Pattern(String),
    Private { private: bool },
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: RawRoute,
    component: toml::Value,
    #[serde(default)]
    executor: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedisTrigger {
    channel: String,
    component: toml::Value,
    #[serde(default)]
    address: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedisAppTrigger {
    address: String,
}

/// Reads and validates the manifest at `path`.
pub fn load(path: &Path) -> anyhow::Result<App> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read manifest {}", path.display()))?;
    let base_dir = path
        .parent()
        .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p })
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let app = parse(&text, &base_dir).with_context(|| format!("invalid manifest {}", path.display()))?;
    for component in app.components.values() {
        ensure!(
            component.source.is_file(),
            "component {:?}: Wasm file {} does not exist (was it built?)",
            component.id,
            component.source.display()
        );
    }
    Ok(app)
}

/// Parses and validates manifest text. Does not touch the file system.
pub fn parse(text: &str, base_dir: &Path) -> anyhow::Result<App> {
    let raw: RawManifest = toml::from_str(text)?;
    match raw.spin_manifest_version {
        toml::Value::Integer(2) => {}
        toml::Value::String(ref s) if s == "2" => {}
        other => bail!("spin_manifest_version must be 2, found {other}"),
    }

    let mut variables = BTreeMap::new();
    for (name, v) in raw.variables {
        validate_variable_name(&name).with_context(|| format!("[variables] {name:?}"))?;
        match (v.required, &v.default) {
            (true, Some(_)) => {
                bail!("variable {name:?}: `required = true` and `default` are mutually exclusive")
            }
            (false, None) => {
                bail!("variable {name:?}: must either be `required = true` or have a `default`")
            }
            _ => {}
        }
        variables.insert(name, Variable { default: v.default, required: v.required, secret: v.secret });
    }

    let mut components = BTreeMap::new();
    for (id, c) in raw.component {
        validate_component_id(&id)?;
        ensure!(
            c.allowed_http_hosts.is_none(),
            "component {id:?}: `allowed_http_hosts` is not supported; use `allowed_outbound_hosts`"
        );
        if let Some(key) = c.other.keys().find(|k| !IGNORED_COMPONENT_KEYS.contains(&k.as_str())) {
            bail!("component {id:?}: `{key}` is not supported by spin-test-host");
        }
        let source = match c.source {
            toml::Value::String(s) => base_dir.join(s),
            _ => bail!("component {id:?}: only a local file path is supported as `source`"),
        };
        let mut comp_vars = BTreeMap::new();
        for (name, template) in c.variables {
            validate_variable_name(&name).with_context(|| format!("component {id:?} variable {name:?}"))?;
            let template = Template::parse(&template).with_context(|| format!("component {id:?} variable {name:?}"))?;
            for referenced in template.references() {
                ensure!(
                    variables.contains_key(referenced),
                    "component {id:?} variable {name:?} refers to undefined application variable {referenced:?}"
                );
            }
            comp_vars.insert(name, template);
        }
        for host in &c.allowed_outbound_hosts {
            let template =
                Template::parse(host).with_context(|| format!("component {id:?} allowed_outbound_hosts {host:?}"))?;
            for referenced in template.references() {
                ensure!(
                    variables.contains_key(referenced),
                    "component {id:?} allowed_outbound_hosts {host:?} refers to undefined application variable {referenced:?}"
                );
            }
        }
        let default_of = |name: &str| variables.get(name).and_then(|v| v.default.clone());
        outbound_hosts::validate(&c.allowed_outbound_hosts, default_of)
            .context("`allowed_outbound_hosts` is malformed")
            .with_context(|| format!("Failed to load component `{id}`"))?;
        components.insert(
            id.clone(),
            Component {
                id,
                source,
                allowed_outbound_hosts: c.allowed_outbound_hosts,
                variables: comp_vars,
                environment: c.environment,
            },
        );
    }

    let component_ref = |value: &toml::Value, kind: &str| -> anyhow::Result<String> {
        let toml::Value::String(id) = value else {
            bail!("{kind} trigger: only a component id string is supported as `component`")
        };
        ensure!(components.contains_key(id), "{kind} trigger refers to component {id:?}, which is not defined");
        Ok(id.clone())
    };

    let mut http_triggers = Vec::new();
    let mut redis_triggers = Vec::new();
    for (kind, entries) in raw.trigger {
        match kind.as_str() {
            "http" => {
                for entry in entries {
                    let t: RawHttpTrigger = toml::Value::Table(entry).try_into().context("invalid [[trigger.http]]")?;
                    ensure!(
                        t.executor.is_none(),
                        "[[trigger.http]] `executor` is not supported (only the default wasi:http executor)"
                    );
                    let route = match t.route {
                        RawRoute::Pattern(p) => HttpRoute::Pattern(p),
                        RawRoute::Private { private: true } => HttpRoute::Private,
                        RawRoute::Private { private: false } => {
                            bail!("route must be a string pattern or '{{ private = true }}'")
                        }
                    };
                    http_triggers.push(HttpTrigger { route, component: component_ref(&t.component, "http")? });
                }
            }
            "redis" => {
                for entry in entries {
                    let t: RawRedisTrigger =
                        toml::Value::Table(entry).try_into().context("invalid [[trigger.redis]]")?;
                    for tpl in std::iter::once(&t.channel).chain(t.address.as_ref()) {
                        check_app_template(tpl, &variables)?;
                    }
                    redis_triggers.push(RedisTrigger {
                        channel: t.channel,
                        component: component_ref(&t.component, "redis")?,
                        address: t.address,
                    });
                }
            }
            other => bail!("trigger type {other:?} is not supported (only http and redis)"),
        }
    }

    let redis_default_address = match raw.application.trigger.get("redis") {
        Some(table) => {
            let t: RawRedisAppTrigger =
                toml::Value::Table(table.clone()).try_into().context("invalid [application.trigger.redis]")?;
            check_app_template(&t.address, &variables)?;
            Some(t.address)
        }
        None => None,
    };
    if let Some(t) = redis_triggers.iter().find(|t| t.address.is_none()) {
        ensure!(
            redis_default_address.is_some(),
            "redis trigger for component {:?} has no `address` and [application.trigger.redis] sets none",
            t.component
        );
    }

    Ok(App {
        name: raw.application.name,
        version: raw.application.version,
        variables,
        components,
        http_triggers,
        redis_triggers,
        redis_default_address,
    })
}

impl App {
    /// What `spin up -c <id>...` does (Spin's `retain_components` with its
    /// service-chaining validator): every id must name a component; a kept
    /// component must not chain (by a literal `allowed_outbound_hosts` entry)
    /// to a component that is not kept, nor use `http://*.spin.internal`; then
    /// only the kept components that have triggers remain, with those triggers.
    /// An application left without triggers is refused later ("No triggers in
    /// app"), as Spin does.
    pub fn retain_components(mut self, retained: &[String]) -> anyhow::Result<App> {
        for id in retained {
            ensure!(self.components.contains_key(id), "Specified component \"{id}\" not found in application");
        }
        let kept = |id: &String| retained.contains(id);
        let triggered =
            self.http_triggers.iter().map(|t| &t.component).chain(self.redis_triggers.iter().map(|t| &t.component));
        for id in triggered.filter(|id| kept(id)) {
            for host in &self.components[id].allowed_outbound_hosts {
                let Some(target) = chaining_target_of_entry(host) else {
                    continue;
                };
                if kept(&target) {
                    continue;
                }
                if target == "*" {
                    bail!(
                        "Selected component '{id}' cannot use wildcard service chaining: allowed_outbound_hosts = [\"http://*.spin.internal\"]"
                    );
                }
                bail!(
                    "Selected component '{id}' cannot use service chaining to unselected component: allowed_outbound_hosts = [\"http://{target}.spin.internal\"]"
                );
            }
        }
        self.http_triggers.retain(|t| kept(&t.component));
        self.redis_triggers.retain(|t| kept(&t.component));
        let with_triggers: std::collections::BTreeSet<String> = self
            .http_triggers
            .iter()
            .map(|t| t.component.clone())
            .chain(self.redis_triggers.iter().map(|t| t.component.clone()))
            .collect();
        self.components.retain(|id, _| with_triggers.contains(id));
        Ok(self)
    }

    /// Whether any trigger is left.
    pub fn has_triggers(&self) -> bool {
        !self.http_triggers.is_empty() || !self.redis_triggers.is_empty()
    }
}

fn check_app_template(template: &str, variables: &BTreeMap<String, Variable>) -> anyhow::Result<()> {
    let parsed = Template::parse(template)?;
    for referenced in parsed.references() {
        ensure!(
            variables.contains_key(referenced),
            "{template:?} refers to undefined application variable {referenced:?}"
        );
    }
    Ok(())
}

/// Component ids are kebab-case, as Spin requires: lowercase ASCII letters and
/// digits in words separated by single hyphens, starting with a letter.
pub fn validate_component_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && !id.contains("--")
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    ensure!(
        ok,
        "component id {id:?} is not valid: it must be kebab-case (lowercase letters, digits and single hyphens, starting with a letter)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
spin_manifest_version = 2

[application]
name = "shop"
[application.trigger.redis]
address = "redis://{{ redis_host }}:6379"

[variables]
redis_host = { default = "127.0.0.1" }
api_key = { required = true, secret = true }

[[trigger.http]]
route = "/items/..."
component = "items"

[[trigger.http]]
route = { private = true }
component = "internal"

[[trigger.redis]]
channel = "orders"
component = "worker"

[component.items]
source = "target/items.wasm"
allowed_outbound_hosts = ["redis://{{ redis_host }}:6379", "http://internal.spin.internal"]
variables = { key = "k-{{ api_key }}" }
[component.items.build]
command = "cargo build"

[component.internal]
source = "internal.wasm"

[component.worker]
source = "worker.wasm"
"#;

    #[test]
    fn parses_a_good_manifest() {
        let app = parse(GOOD, Path::new("/apps/shop")).unwrap();
        assert_eq!(app.name, "shop");
        assert_eq!(app.components.len(), 3);
        assert_eq!(app.components["items"].source, Path::new("/apps/shop/target/items.wasm"));
        assert_eq!(app.http_triggers.len(), 2);
        assert_eq!(app.http_triggers[1].route, HttpRoute::Private);
        assert_eq!(app.redis_triggers[0].channel, "orders");
        assert_eq!(app.redis_default_address.as_deref(), Some("redis://{{ redis_host }}:6379"));
        assert!(app.variables["api_key"].required);
        assert!(app.variables["api_key"].secret);
    }

    fn err_of(text: &str) -> String {
        format!("{:#}", parse(text, Path::new(".")).unwrap_err())
    }

    #[test]
    fn rejects_missing_component() {
        let text = GOOD.replace("component = \"worker\"", "component = \"nope\"");
        assert!(err_of(&text).contains("\"nope\", which is not defined"));
    }

    #[test]
    fn rejects_undefined_variable_reference() {
        let text = GOOD.replace("k-{{ api_key }}", "{{ missing }}");
        assert!(err_of(&text).contains("undefined application variable \"missing\""));
    }

    #[test]
    fn rejects_variable_without_value_or_required() {
        let text = GOOD.replace("{ default = \"127.0.0.1\" }", "{ secret = true }");
        assert!(err_of(&text).contains("must either be `required = true` or have a `default`"));
        let text = GOOD.replace("{ default = \"127.0.0.1\" }", "{ default = \"x\", required = true }");
        assert!(err_of(&text).contains("mutually exclusive"));
    }

    #[test]
    fn rejects_bad_ids_and_names() {
        let text = GOOD.replace("[component.worker]", "[component.Worker]");
        assert!(err_of(&text).contains("kebab-case"));
        let text = GOOD.replace("api_key = {", "Api_Key = {");
        assert!(err_of(&text).contains("Api_Key"));
    }

    #[test]
    fn rejects_wrong_version_and_unknown_trigger() {
        let text = GOOD.replace("spin_manifest_version = 2", "spin_manifest_version = 1");
        assert!(err_of(&text).contains("must be 2"));
        let text = format!("{GOOD}\n[[trigger.cron]]\ncomponent = \"worker\"\n");
        assert!(err_of(&text).contains("\"cron\" is not supported"));
    }

    #[test]
    fn redis_trigger_needs_an_address() {
        let text = GOOD.replace("[application.trigger.redis]\naddress = \"redis://{{ redis_host }}:6379\"", "");
        assert!(err_of(&text).contains("has no `address`"));
    }

    fn ids(app: &App) -> Vec<&str> {
        app.components.keys().map(String::as_str).collect()
    }

    #[test]
    fn retain_components_like_spin_up_c() {
        let app = parse(GOOD, Path::new(".")).unwrap();
        let err = |r: anyhow::Result<App>| format!("{:#}", r.unwrap_err());

        let kept = app.clone().retain_components(&["worker".into()]).unwrap();
        assert_eq!(ids(&kept), ["worker"]);
        assert!(kept.http_triggers.is_empty());
        assert_eq!(kept.redis_triggers.len(), 1);

        let kept = app.clone().retain_components(&["items".into(), "internal".into()]).unwrap();
        assert_eq!(ids(&kept), ["internal", "items"]);
        assert_eq!(kept.http_triggers.len(), 2);
        assert!(kept.redis_triggers.is_empty());

        assert_eq!(
            err(app.clone().retain_components(&["nope".into()])),
            "Specified component \"nope\" not found in application"
        );
        // items chains to internal, which is not kept.
        assert_eq!(
            err(app.clone().retain_components(&["items".into()])),
            "Selected component 'items' cannot use service chaining to unselected component: \
             allowed_outbound_hosts = [\"http://internal.spin.internal\"]"
        );

        let wildcard = GOOD.replace("http://internal.spin.internal", "http://*.spin.internal");
        let app = parse(&wildcard, Path::new(".")).unwrap();
        assert_eq!(
            err(app.retain_components(&["items".into(), "internal".into(), "worker".into()])),
            "Selected component 'items' cannot use wildcard service chaining: \
             allowed_outbound_hosts = [\"http://*.spin.internal\"]"
        );

        // Templated hosts are not looked at; components without triggers go.
        let templated = GOOD
            .replace("http://internal.spin.internal", "http://{{ redis_host }}.spin.internal")
            .replace("[[trigger.redis]]\nchannel = \"orders\"\ncomponent = \"worker\"\n", "");
        let app = parse(&templated, Path::new(".")).unwrap();
        let kept = app.clone().retain_components(&["items".into()]).unwrap();
        assert_eq!(ids(&kept), ["items"]);
        let kept = app.retain_components(&["worker".into()]).unwrap();
        assert!(!kept.has_triggers());
        assert!(kept.components.is_empty());
    }

    #[test]
    fn malformed_allowed_hosts_fail_the_load() {
        let text = GOOD.replace("\"http://internal.spin.internal\"", "\"http://a/b\"");
        assert!(err_of(&text).contains("`allowed_outbound_hosts` is malformed"));
        // A template is checked with the defaults (and only when they render it).
        let text = GOOD.replace("\"http://internal.spin.internal\"", "\"http://{{ redis_host }}:x\"");
        assert!(err_of(&text).contains("results in invalid config"));
        let text = GOOD.replace("\"http://internal.spin.internal\"", "\"{{ api_key }}\"");
        parse(&text, Path::new(".")).unwrap();
    }

    #[test]
    fn load_reports_missing_wasm() {
        let dir = std::env::temp_dir().join(format!("sth-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("spin.toml");
        std::fs::write(&path, GOOD).unwrap();
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(err.contains("does not exist"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
