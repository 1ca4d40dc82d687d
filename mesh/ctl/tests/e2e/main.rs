//! End-to-end tests of the whole mesh on loopback: `meshctl up` with the real binaries
//! (they must sit next to meshctl: `cargo build --workspace --bins` first, which the
//! test script does). Each test uses its own ports and run directory, so they can run in
//! parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod dashboard;
#[path = "../dashboards/mod.rs"]
mod dashboards;
mod mesh;
mod prometheus;
mod support;
mod trace;
mod up;
