//! The `loadgen` binary: usage errors are one clear line and exit code 64; a tiny run works.

// Test helpers may unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn loadgen(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn usage_errors_name_the_problem_and_exit_64() {
    let cases: &[(&[&str], &str)] = &[
        (&["--stage", "10x:5", "http://127.0.0.1:9/"], "--stage"),
        (
            &["--stage", "10x:5", "http://127.0.0.1:9/"],
            "DURATION:RATE",
        ),
        (
            &["--rate", "10", "http://127.0.0.1:9/"],
            "unbounded run refused",
        ),
        (
            &["--closed", "http://127.0.0.1:9/"],
            "unbounded run refused",
        ),
        (&["-d", "1s", "http://127.0.0.1:9/"], "needs --rate"),
        (
            &["--rate", "10", "-d", "1s", "https://127.0.0.1:9/"],
            "https is not supported",
        ),
        (
            &["--rate", "10", "-d", "1s", "127.0.0.1:9"],
            "invalid target URL",
        ),
        (
            &[
                "--rate",
                "10",
                "-d",
                "1s",
                "-H",
                "nocolon",
                "http://127.0.0.1:9/",
            ],
            "invalid -H",
        ),
        (
            &[
                "--rate",
                "10",
                "-d",
                "1s",
                "--mix",
                "/nonexistent.yaml",
                "http://127.0.0.1:9/",
            ],
            "cannot read mix file",
        ),
        (&["--rate=0", "-d", "1s", "http://127.0.0.1:9/"], "rate"),
        (
            &["--stage", "1s:5", "-d", "1s", "http://127.0.0.1:9/"],
            "conflicts with --stage",
        ),
        (
            &[
                "--rate",
                "1",
                "-d",
                "1s",
                "--bookinfo",
                "-H",
                "a: b",
                "http://127.0.0.1:9/",
            ],
            "single-URL",
        ),
    ];
    for (args, needle) in cases {
        let (code, stdout, stderr) = loadgen(args);
        assert_eq!(code, 64, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn bad_mix_yaml_names_the_field() {
    let dir = std::env::temp_dir().join(format!("loadgen-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mix.yaml");
    std::fs::write(&path, "requests:\n  - path: /a\n    wieght: 3\n").unwrap();
    let (code, _, stderr) = loadgen(&[
        "--rate",
        "1",
        "-d",
        "1s",
        "--mix",
        path.to_str().unwrap(),
        "http://127.0.0.1:9/",
    ]);
    assert_eq!(code, 64);
    assert!(stderr.contains("wieght"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unreachable_target_reports_connect_errors_and_writes_reports() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("loadgen-cli-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, html) = (dir.join("r.json"), dir.join("r.html"));
    let url = format!("http://127.0.0.1:{port}/productpage");
    let (code, stdout, stderr) = loadgen(&[
        "--rate",
        "50",
        "-d",
        "500ms",
        "-c",
        "4",
        "--json",
        json.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
        &url,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Errors      connect: 25"), "{stdout}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["errors"]["connect"], 25);
    assert!(std::fs::read_to_string(&html).unwrap().contains("<svg"));
    // Not a terminal: no progress bar noise on stderr.
    assert!(stderr.is_empty(), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
