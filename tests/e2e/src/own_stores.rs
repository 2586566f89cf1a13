//! A Redis and a Postgres of a test's own, for tests that stop and start them: `infra/stores` on
//! free ports, with data under `target/e2e-stores/<name>` (migrations applied). The other tests
//! share the stores of `./dev test` and run at the same time; stopping those would fail them.

use crate::repo_root;
use std::path::PathBuf;
use std::process::Command;

/// Stores of a test's own; stopped when dropped.
pub struct OwnStores {
    redis_port: u16,
    pg_port: u16,
    data: PathBuf,
}

impl OwnStores {
    /// Starts them (`infra/stores up`), reusing the data folder `name` of an earlier run.
    pub fn start(name: &str) -> OwnStores {
        let data = repo_root().join("target/e2e-stores").join(name);
        std::fs::create_dir_all(&data).expect("data folder");
        let stores = OwnStores { redis_port: crate::free_port(), pg_port: crate::free_port(), data };
        stores.run(&["up"]);
        stores
    }

    /// Runs `infra/stores <args>` on these stores, panicking if it fails.
    pub fn run(&self, args: &[&str]) {
        let out = self.command(args).output().expect("infra/stores runs");
        assert!(
            out.status.success(),
            "infra/stores {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(repo_root().join("infra/stores"));
        cmd.args(args)
            .env("MARKET_REDIS_PORT", self.redis_port.to_string())
            .env("MARKET_PG_PORT", self.pg_port.to_string())
            .env("MARKET_DATA_DIR", &self.data);
        cmd
    }

    /// `redis-cli <args>` on this Redis; its output lines.
    pub fn redis_cli(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec!["redis-cli"];
        all.extend_from_slice(args);
        let out = self.command(&all).output().expect("infra/stores runs");
        assert!(out.status.success(), "redis-cli {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
    }

    /// The environment that points an app at these stores.
    pub fn app_env(&self) -> Vec<(String, String)> {
        vec![
            ("SPIN_VARIABLE_REDIS_HOST".into(), format!("127.0.0.1:{}", self.redis_port)),
            ("SPIN_VARIABLE_PG_HOST".into(), format!("127.0.0.1:{}", self.pg_port)),
        ]
    }
}

impl Drop for OwnStores {
    fn drop(&mut self) {
        let _ = self.command(&["down"]).output();
    }
}
