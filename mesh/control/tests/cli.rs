//! The binary's command line: bad flags end with one line and exit code 64.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mesh-control"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MESH_CONTROL_") {
            command.env_remove(key);
        }
    }
    let output = command.args(args).output().unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn bad_flags_exit_64_with_one_line() {
    for (args, expected) in [
        (&["--bogus"][..], "--bogus"),
        (&["--cert-ttl", "5s"][..], "shorter than 10s"),
        (&["--cert-ttl", "soon"][..], "soon"),
        (&["--listen", "nowhere"][..], "nowhere"),
        (&["--ca-cert", "/tmp/x.pem"][..], "--ca-key"),
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(64), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("mesh-control: "), "{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn an_invalid_config_dir_at_start_exits_64() {
    let dir = std::env::temp_dir().join(format!("mesh-control-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bad.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec: {hosts: []}\n",
    )
    .unwrap();
    let (code, stderr) = run(&[
        "--listen",
        "127.0.0.1:0",
        "--config-dir",
        dir.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, Some(64), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("bad.yaml"), "{stderr}");
}
