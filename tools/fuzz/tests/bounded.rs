//! Every fuzz target for a bounded number of inputs, against the programs the workspace
//! built (`cargo build --bins`, which the test command runs first). The long runs are
//! `scripts/fuzz.sh`'s; this keeps each target working and catches the shallow bugs on
//! every change.
//!
//! The hang limit is looser than the 1 s of `scripts/fuzz.sh`: these are debug builds,
//! on a machine running the rest of the test suite at the same time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::time::Duration;

use bookinfo_fuzz::harness::{self, Settings};
use bookinfo_fuzz::targets::{self, Env};

fn env(name: &str) -> Env {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_fuzz"))
        .parent()
        .unwrap()
        .to_path_buf();
    Env {
        repo,
        bin_dir,
        work: std::env::temp_dir().join(format!("fuzz-{name}-{}", std::process::id())),
    }
}

fn bounded(name: &str, count: u64) {
    let env = env(name);
    let mut target = targets::make(name, &env).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    // Only now: the hook keeps the panics the inputs cause out of the output, and would
    // hide this test's own failure messages too, which are therefore printed first.
    harness::quiet_panics();
    let settings = Settings {
        count,
        seed: 20261203,
        hang: Duration::from_secs(5),
        out: env.work.join("findings"),
        progress: false,
    };
    let report = harness::run(target.as_mut(), &settings);
    if report.inputs != count || !report.findings.is_empty() {
        eprintln!(
            "{name}: {} of {count} inputs ran; findings: {:#?} (replay: fuzz replay {name} <file>)",
            report.inputs, report.findings
        );
    }
    assert_eq!(report.inputs, count, "{name}: every input ran");
    assert!(report.findings.is_empty(), "{name}: findings");
    drop(target);
    let _ = std::fs::remove_dir_all(&env.work);
}

#[test]
fn istio_yaml() {
    bounded("istio-yaml", 4000);
}

#[test]
fn chaos_experiment() {
    bounded("chaos-experiment", 1500);
}

#[test]
fn control_api() {
    bounded("control-api", 3000);
}

#[test]
fn proxy_http() {
    bounded("proxy-http", 3000);
}
