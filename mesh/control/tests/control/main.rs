//! The control plane's HTTP API end to end, over real sockets on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod analyze;
mod auth;
mod ca;
mod ca_secret;
mod client;
mod config;
mod fake_kube;
mod faults;
mod kube_source;
mod misc;
mod registry;
mod restart;
mod support;
