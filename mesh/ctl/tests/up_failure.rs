//! `meshctl up` when a workload cannot start: the crash is reported with its restart,
//! startup gives up at `--ready-timeout` naming the component and showing the tail of its
//! log, and everything is stopped. Uses a stand-in binary, so it needs no build.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn a_crashing_workload_fails_startup_with_its_log_tail_and_nothing_is_left() {
    let root = std::env::temp_dir().join(format!("meshctl-fail-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let bins = root.join("bin");
    std::fs::create_dir_all(&bins).unwrap();
    let details = bins.join("details");
    std::fs::write(
        &details,
        "#!/bin/sh\necho \"details: invalid PORT for this test\" >&2\nexit 64\n",
    )
    .unwrap();
    std::fs::set_permissions(&details, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run_dir = root.join("run");

    let out = Command::new(env!("CARGO_BIN_EXE_meshctl"))
        .args([
            "up",
            "--no-mesh",
            "--workloads",
            "details",
            "--ready-timeout",
            "1500ms",
        ])
        .args(["--base-port", "27800", "--gateway-port", "27890"])
        .arg("--bin-dir")
        .arg(&bins)
        .arg("--run-dir")
        .arg(&run_dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("details-v1 exited (code 64); restarting in 1 s"),
        "{text}"
    );
    assert!(text.contains("✘ details-v1"), "{text}");
    assert!(
        text.contains("meshctl up failed: not ready in time: details-v1: nothing accepts connections on 127.0.0.1:27810"),
        "{text}"
    );
    assert!(text.contains("--- last lines of "), "{text}");
    assert!(
        text.contains("details: invalid PORT for this test"),
        "{text}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.trim_end().ends_with("stopped"), "{text}");
    assert!(!run_dir.join("state.json").exists());
    std::fs::remove_dir_all(&root).unwrap();
}
