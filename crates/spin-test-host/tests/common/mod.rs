//! Helpers shared by the integration tests: where the fixture components are built, and URL bits.

use std::path::PathBuf;

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The built fixture `file` (e.g. `spin_test_host_probe.wasm`) of the cargo `package`; panics
/// with the command that builds it when it is missing.
pub fn built_wasm(file: &str, package: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_relative() { crate_dir().join("../..").join(p) } else { p })
        .unwrap_or_else(|| crate_dir().join("../../target"));
    let wasm = target.join("wasm32-wasip2/release").join(file);
    assert!(
        wasm.is_file(),
        "the {package} component is not built ({} is missing); build it with: \
         cargo build --release --target wasm32-wasip2 -p {package}",
        wasm.display()
    );
    wasm
}

/// `host[:port]` of a `scheme://[user@]host[:port][/path]` URL, with `default_port` added when
/// the URL has none.
pub fn authority(url: &str, default_port: Option<u16>) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
    let auth = rest.split(['/', '?']).next().unwrap_or(rest);
    match default_port {
        Some(port) if !auth.contains(':') => format!("{auth}:{port}"),
        _ => auth.to_owned(),
    }
}
