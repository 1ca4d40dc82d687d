//! The supervisor with real child processes: a killed child is restarted after its
//! backoff, a child that ignores SIGTERM is killed after the grace period, and after
//! `stop` no child is left.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::time::Duration;

use mesh_ctl::backoff::BackoffPolicy;
use mesh_ctl::supervisor::{Event, Output, ProcessSpec, Supervisor};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, timeout};

/// Short delays so the test takes a fraction of a second, with the same shape as the
/// real 1 s → 30 s schedule.
fn fast() -> BackoffPolicy {
    BackoffPolicy {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(400),
        reset_after: Duration::from_secs(60),
    }
}

fn sh(name: &str, script: &str, log: &std::path::Path) -> ProcessSpec {
    ProcessSpec {
        name: name.into(),
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![("GREETING".into(), "hello".into())],
        env_remove: vec!["HOME".into()],
        output: Output::File(log.into()),
    }
}

async fn next(events: &mut UnboundedReceiver<Event>) -> Event {
    timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("no supervisor event within 10 s")
        .expect("event channel closed")
}

fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

/// Waits until the log holds `n` greetings: each run of the child wrote one, with the
/// environment as specified (GREETING set, HOME removed), appended to the same file.
async fn greetings(log: &std::path::Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = std::fs::read_to_string(log).unwrap_or_default();
        if text.matches("hello nohome").count() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(text.matches("hello nohome").count(), n, "{text}");
}

/// Live (non-zombie) processes of process group `pgid`, from /proc.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name (which is in parentheses): state ppid pgrp ...
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
            found.push(pid);
        }
    }
    found
}

/// Removes the directory of a test's log.
fn clean(log: &std::path::Path) {
    if let Some(dir) = log.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn log_path(test: &str) -> std::path::PathBuf {
    std::env::temp_dir()
        .join(format!("meshctl-supervise-{}-{test}", std::process::id()))
        .join("child.log")
}

#[tokio::test]
async fn a_killed_child_is_restarted_after_the_backoff_and_stop_leaves_none() {
    let log = log_path("restart");
    let _ = std::fs::remove_file(&log);
    let (mut sup, mut events) = Supervisor::new(fast(), Duration::from_secs(5));
    sup.spawn(sh(
        "worker",
        "echo \"$GREETING ${HOME:-nohome}\"; exec sleep 60",
        &log,
    ));

    let Event::Started { name, pid: first } = next(&mut events).await else {
        panic!("expected a start")
    };
    assert_eq!(name, "worker");
    assert_eq!(sup.pids().get("worker"), Some(&first));
    greetings(&log, 1).await;

    kill(Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();
    let killed_at = Instant::now();
    assert_eq!(
        next(&mut events).await,
        Event::Exited {
            name: "worker".into(),
            status: "signal 9".into(),
            restart_in: Duration::from_millis(100)
        }
    );
    let Event::Started { pid: second, .. } = next(&mut events).await else {
        panic!("expected a restart")
    };
    assert!(
        killed_at.elapsed() >= Duration::from_millis(100),
        "restarted before the backoff"
    );
    assert_ne!(first, second);
    assert!(alive(second));
    greetings(&log, 2).await;

    // The second crash in a row waits twice as long.
    kill(Pid::from_raw(second as i32), Signal::SIGKILL).unwrap();
    let Event::Exited { restart_in, .. } = next(&mut events).await else {
        panic!("expected an exit")
    };
    assert_eq!(restart_in, Duration::from_millis(200));
    let Event::Started { pid: third, .. } = next(&mut events).await else {
        panic!("expected a restart")
    };

    greetings(&log, 3).await;
    sup.stop().await;
    assert!(!alive(third), "child {third} survived stop");
    clean(&log);
}

#[tokio::test]
async fn stop_kills_a_child_that_ignores_sigterm_after_the_grace_period() {
    let log = log_path("stubborn");
    let (mut sup, mut events) = Supervisor::new(fast(), Duration::from_millis(300));
    // The shell ignores TERM and so does the sleep it starts (ignored signals are inherited).
    sup.spawn(sh(
        "stubborn",
        "trap '' TERM; sleep 60 & wait; sleep 60",
        &log,
    ));
    let Event::Started { pid, .. } = next(&mut events).await else {
        panic!("expected a start")
    };
    // Let the shell install its trap.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let begun = Instant::now();
    timeout(Duration::from_secs(10), sup.stop()).await.unwrap();
    assert!(
        begun.elapsed() >= Duration::from_millis(300),
        "did not wait for the grace period"
    );
    assert!(!alive(pid), "the shell survived");
    // Its background sleep was in the same process group: gone too (SIGKILL to a
    // grandchild is asynchronous, so give it a moment).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !group_members(pid).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        group_members(pid),
        Vec::<u32>::new(),
        "left in the process group"
    );
    clean(&log);
}

#[tokio::test]
async fn a_missing_program_is_reported_and_retried() {
    let log = log_path("missing");
    let (mut sup, mut events) = Supervisor::new(fast(), Duration::from_secs(1));
    let mut spec = sh("ghost", "true", &log);
    spec.program = "/nonexistent/ghost".into();
    sup.spawn(spec);
    let Event::SpawnFailed { name, retry_in, .. } = next(&mut events).await else {
        panic!("expected a spawn failure")
    };
    assert_eq!(
        (name.as_str(), retry_in),
        ("ghost", Duration::from_millis(100))
    );
    let Event::SpawnFailed { retry_in, .. } = next(&mut events).await else {
        panic!("expected a second failure")
    };
    assert_eq!(retry_in, Duration::from_millis(200));
    timeout(Duration::from_secs(5), sup.stop()).await.unwrap();
    clean(&log);
}
