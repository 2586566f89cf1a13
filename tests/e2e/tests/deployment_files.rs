//! The manifest and the deployment files agree with each other and with Spin's rules: the app
//! is run as two processes (the HTTP components; the Redis-triggered saga worker), and what each
//! process may do is what Spin allows its trigger.

use e2e::repo_root;
use std::collections::BTreeSet;
use std::process::Command;

fn manifest() -> toml::Table {
    let text = std::fs::read_to_string(repo_root().join("spin.toml")).expect("spin.toml");
    toml::from_str(&text).expect("spin.toml parses")
}

/// The components bound to triggers of `trigger_type` in spin.toml.
fn triggered(manifest: &toml::Table, trigger_type: &str) -> BTreeSet<String> {
    manifest["trigger"]
        .get(trigger_type)
        .and_then(|t| t.as_array())
        .map(|triggers| triggers.iter().filter_map(|t| t["component"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// The `components:` list of the SpinApp in a Kubernetes file (the `    - id` lines after it).
fn spinapp_components(file: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo_root().join(file)).expect("k8s file");
    text.lines()
        .skip_while(|l| l.trim() != "components:")
        .skip(1)
        .take_while(|l| l.trim_start().starts_with("- "))
        .map(|l| l.trim_start().trim_start_matches("- ").trim().to_string())
        .collect()
}

#[test]
fn only_http_components_chain_to_other_components() {
    let manifest = manifest();
    let http = triggered(&manifest, "http");
    for (id, component) in manifest["component"].as_table().expect("components") {
        let hosts = component.get("allowed_outbound_hosts").and_then(|h| h.as_array()).cloned().unwrap_or_default();
        let chains = hosts.iter().filter_map(|h| h.as_str()).any(|h| h.contains(".spin.internal"));
        assert!(
            !chains || http.contains(id),
            "{id} is not an HTTP component but chains to other components: Spin refuses to start it"
        );
    }
}

#[test]
fn the_redis_trigger_serves_only_the_saga_worker() {
    let manifest = manifest();
    let redis = triggered(&manifest, "redis");
    assert_eq!(redis, BTreeSet::from(["orders-saga-worker".to_string()]));
    assert!(
        triggered(&manifest, "http").is_disjoint(&redis),
        "a component with both an HTTP and a Redis trigger would put a Redis trigger in the HTTP process"
    );
}

/// The HTTP component served by the saga worker's process, not the HTTP one: the worker's probe.
const WORKER_PROBE: &str = "health-worker";

/// The components of the HTTP process: every HTTP component but the worker's probe.
fn http_process(manifest: &toml::Table) -> BTreeSet<String> {
    let mut http = triggered(manifest, "http");
    assert!(http.remove(WORKER_PROBE), "spin.toml has no HTTP component {WORKER_PROBE}");
    http
}

/// The components of the worker's process: the Redis-triggered ones and the worker's probe.
fn worker_process(manifest: &toml::Table) -> BTreeSet<String> {
    let mut worker = triggered(manifest, "redis");
    worker.insert(WORKER_PROBE.to_string());
    worker
}

/// `infra/app-components <kind>`.
fn app_components(kind: &str) -> BTreeSet<String> {
    let out =
        Command::new(repo_root().join("infra/app-components")).arg(kind).output().expect("infra/app-components runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
fn kubernetes_runs_the_http_components_and_the_worker_apart() {
    let manifest = manifest();
    assert_eq!(
        spinapp_components("infra/k8s/spinapp.yaml"),
        http_process(&manifest),
        "infra/k8s/spinapp.yaml: the HTTP SpinApp runs every HTTP component but the worker's probe"
    );
    assert_eq!(
        spinapp_components("infra/k8s/saga-worker.yaml"),
        worker_process(&manifest),
        "infra/k8s/saga-worker.yaml: the worker SpinApp runs the Redis-triggered components and their probe"
    );
}

#[test]
fn serve_http_and_saga_worker_select_their_components() {
    let manifest = manifest();
    assert_eq!(app_components("http"), http_process(&manifest));
    assert_eq!(app_components("worker"), worker_process(&manifest));
}
