//! The `ratings` binary: configuration errors, startup and graceful shutdown.

// Test helpers may panic: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ratings() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ratings"));
    cmd.env_clear().stdin(Stdio::null());
    cmd
}

#[test]
fn bad_configuration_exits_64_with_one_line() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("SERVICE_VERSION", "v3")],
            "invalid SERVICE_VERSION=\"v3\": expected one of v1, v2, v-faulty",
        ),
        (
            &[("SERVICE_VERSION", "v2")],
            "MongoDB back end is not available",
        ),
        (
            &[
                ("SERVICE_VERSION", "v2"),
                ("DB_TYPE", "mysql"),
                ("MYSQL_DB_PORT", "x"),
            ],
            "invalid MYSQL_DB_PORT=\"x\"",
        ),
        (&[("RATINGS_SEED", "seed")], "invalid RATINGS_SEED=\"seed\""),
        (&[("PORT", "99999")], "invalid PORT=\"99999\""),
    ];
    for (env, want) in cases {
        let out = ratings().envs(env.iter().copied()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{env:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("ratings: ") && stderr.contains(want),
            "{env:?}: {stderr}"
        );
    }
}

#[test]
fn starts_on_the_port_argument_and_stops_cleanly_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = ratings()
        .arg(port.to_string())
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("SERVICE_VERSION", "v-faulty")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Startup takes milliseconds; the bound only matters when something is broken.
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("ratings exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "ratings did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("ratings ignored SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}
