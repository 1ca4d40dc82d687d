//! The lab runner: each lab is a folder `labs/NN-name/` whose `README.md` a student
//! follows; its fenced command blocks run in order against a fresh `meshctl up`, and the
//! `expect` block after each states what the step must show. The syntax is in
//! `labs/README.md`.
//!
//! Bottom up: `expect` (the expectations and their checks; `metrics` reads Prometheus
//! text for them), `markdown` (a README into steps), `ports` (free ports, and the
//! student's default ports rewritten to them), `shell` (one block in bash), `mesh` (the
//! lab's `meshctl up`), `runner` (a lab, step by step).

pub mod expect;
pub mod markdown;
pub mod mesh;
pub mod metrics;
pub mod ports;
pub mod runner;
pub mod shell;
