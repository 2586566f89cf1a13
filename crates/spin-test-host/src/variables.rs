//! Application variables and `{{ name }}` templates, as Spin's `expressions`,
//! `variables-env` and `factor-variables` crates define them.
//!
//! Values come from the environment first (`SPIN_VARIABLE_<NAME IN UPPERCASE>`,
//! Spin's default env provider) and then from the `[variables]` default. They
//! are read once, at startup. Like Spin, a `required` variable that no provider
//! can resolve is a startup error.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{anyhow, bail};

use crate::manifest::{App, Component};

/// A parsed template: literal text mixed with `{{ variable }}` expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Expr(String),
}

impl Template {
    /// Parses `text`. An unmatched `{{` is an error; expression names are trimmed
    /// and must be valid variable names.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after_open) = rest.strip_prefix("{{") {
                let Some((expr, after)) = after_open.split_once("}}") else {
                    bail!("invalid template {text:?}: unmatched '{{{{'");
                };
                let name = expr.trim();
                validate_variable_name(name).map_err(|e| anyhow!("invalid template {text:?}: {e}"))?;
                parts.push(Part::Expr(name.to_owned()));
                rest = after;
            } else {
                let end = rest.find("{{").unwrap_or(rest.len());
                parts.push(Part::Lit(rest[..end].to_owned()));
                rest = &rest[end..];
            }
        }
        Ok(Self { parts })
    }

    /// True when there is no `{{ }}` expression in it.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// Names of the variables the template refers to.
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(name) => Some(name.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// Renders the template, looking each variable up with `lookup`.
    pub fn render(&self, mut lookup: impl FnMut(&str) -> anyhow::Result<String>) -> anyhow::Result<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(lit) => out.push_str(lit),
                Part::Expr(name) => out.push_str(&lookup(name)?),
            }
        }
        Ok(out)
    }
}

/// Spin's variable-name rule: lowercase ASCII letters, digits and single
/// underscores; starts with a letter, ends with a letter or digit.
pub fn validate_variable_name(name: &str) -> anyhow::Result<()> {
    let reason = if name.is_empty() {
        "must not be empty"
    } else if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        "may contain only lower-case letters, numbers, and underscores"
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        "must start with a lowercase ASCII letter"
    } else if !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        "must end with a lowercase ASCII letter or digit"
    } else if name.contains("__") {
        "must not contain multiple consecutive underscores"
    } else {
        return Ok(());
    };
    bail!("invalid variable name {name:?}: {reason}")
}

/// The values of the application variables, resolved once at startup.
#[derive(Debug, Clone, Default)]
pub struct AppVariables {
    /// name -> value; a required variable with no value is absent.
    values: BTreeMap<String, String>,
}

impl AppVariables {
    /// Resolves every application variable with `env` (given the environment
    /// variable name, returns its value) and then the manifest default.
    pub fn resolve(app: &App, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut values = BTreeMap::new();
        let mut unresolved = Vec::new();
        for (name, var) in &app.variables {
            let env_key = format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase());
            match env(&env_key).or_else(|| var.default.clone()) {
                Some(value) => {
                    values.insert(name.clone(), value);
                }
                None => unresolved.push(name.clone()),
            }
        }
        if !unresolved.is_empty() {
            let hints = unresolved
                .iter()
                .map(|n| format!("{n} (set SPIN_VARIABLE_{})", n.to_ascii_uppercase()))
                .collect::<Vec<_>>()
                .join(", ");
            bail!("no value for required variable(s): {hints}");
        }
        Ok(Self { values })
    }

    /// From the process environment.
    pub fn from_env(app: &App) -> anyhow::Result<Self> {
        Self::resolve(app, |k| std::env::var(k).ok())
    }

    /// Renders a template against the application variables.
    pub fn render(&self, template: &Template) -> anyhow::Result<String> {
        template.render(|name| {
            self.values.get(name).cloned().ok_or_else(|| anyhow!("undefined application variable {name:?}"))
        })
    }

    /// Parses and renders a template string.
    pub fn render_str(&self, template: &str) -> anyhow::Result<String> {
        self.render(&Template::parse(template)?)
    }
}

/// Errors of `spin:variables/variables.get`, mirroring the WIT variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetError {
    InvalidName(String),
    Undefined(String),
}

/// What one component can see through `spin:variables`.
#[derive(Debug, Clone)]
pub struct ComponentVariables {
    component_id: String,
    resolved: Arc<BTreeMap<String, String>>,
}

impl ComponentVariables {
    /// Renders every variable of `component` now (values never change later).
    pub fn new(component: &Component, app_vars: &AppVariables) -> anyhow::Result<Self> {
        let mut resolved = BTreeMap::new();
        for (name, template) in &component.variables {
            let value = app_vars
                .render(template)
                .map_err(|e| anyhow!("component {:?} variable {name:?}: {e}", component.id))?;
            resolved.insert(name.clone(), value);
        }
        Ok(Self { component_id: component.id.clone(), resolved: Arc::new(resolved) })
    }

    /// `spin:variables/variables.get` semantics.
    pub fn get(&self, name: &str) -> Result<String, GetError> {
        validate_variable_name(name).map_err(|e| GetError::InvalidName(e.to_string()))?;
        self.resolved
            .get(name)
            .cloned()
            .ok_or_else(|| GetError::Undefined(format!("no variable for {:?}.{name:?}", self.component_id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;
    use std::path::Path;

    #[test]
    fn template_parts_and_rendering() {
        let t = Template::parse("redis://{{ host }}:{{port}}/x").unwrap();
        assert!(!t.is_literal());
        assert_eq!(t.references().collect::<Vec<_>>(), ["host", "port"]);
        let out = t.render(|n| Ok(if n == "host" { "h".into() } else { "1".into() })).unwrap();
        assert_eq!(out, "redis://h:1/x");
        assert!(Template::parse("plain").unwrap().is_literal());
        assert!(Template::parse("").unwrap().is_literal());
        assert!(Template::parse("{{ a }} {{ b").is_err());
        assert!(Template::parse("{{ Bad }}").is_err());
    }

    #[test]
    fn variable_names() {
        for good in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3"] {
            validate_variable_name(good).unwrap();
        }
        for bad in ["", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y"] {
            assert!(validate_variable_name(bad).is_err(), "{bad}");
        }
    }

    const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
greeting = { default = "hello" }
token = { required = true, secret = true }
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "c.wasm"
variables = { message = "{{ greeting }}, {{ token }}!", plain = "x" }
"#;

    #[test]
    fn env_overrides_default_and_required_needs_value() {
        let app = manifest::parse(APP, Path::new(".")).unwrap();
        let env = |k: &str| match k {
            "SPIN_VARIABLE_TOKEN" => Some("t0k".to_string()),
            "SPIN_VARIABLE_GREETING" => Some("hi".to_string()),
            _ => None,
        };
        let vars = AppVariables::resolve(&app, env).unwrap();
        let cv = ComponentVariables::new(&app.components["c"], &vars).unwrap();
        assert_eq!(cv.get("message").unwrap(), "hi, t0k!");
        assert_eq!(cv.get("plain").unwrap(), "x");
        assert!(matches!(cv.get("nope"), Err(GetError::Undefined(_))));
        assert!(matches!(cv.get("Nope"), Err(GetError::InvalidName(_))));

        let only_token = |k: &str| (k == "SPIN_VARIABLE_TOKEN").then(|| "z".to_string());
        let vars = AppVariables::resolve(&app, only_token).unwrap();
        let cv = ComponentVariables::new(&app.components["c"], &vars).unwrap();
        assert_eq!(cv.get("message").unwrap(), "hello, z!");

        let err = AppVariables::resolve(&app, |_| None).unwrap_err().to_string();
        assert!(err.contains("SPIN_VARIABLE_TOKEN"), "{err}");
    }
}
