//! End-to-end tests of productpage: in-process router calls, and real sockets on
//! 127.0.0.1 against small fake upstreams that record what they receive.

// Test helpers outside `#[test]` functions panic on purpose when setup fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod binary;
mod metrics;
mod page;
mod router;
mod session;
mod support;
mod timing;
