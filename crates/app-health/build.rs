//! Compiles in the migration this build expects the database to have: the last file (in name
//! order, as infra/migrate applies them) of infra/migrations.
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut versions: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".sql").map(str::to_string)
        })
        .collect();
    versions.sort();
    let expected = versions.pop().unwrap_or_else(|| panic!("no migration in {}", dir.display()));
    println!("cargo:rustc-env=EXPECTED_MIGRATION={expected}");
}
