//! `fuzz`: mutation fuzzing of every parser that reads what users or the network send the
//! suite, on the stable toolchain: Istio YAML (parse, validate, compile), the chaos
//! experiment format, the control plane's HTTP API (a real `mesh-control`), and the
//! proxy's listeners (a real sidecar pair: the HTTP/1.1 fast lane, its hand-off to
//! hyper, PERMISSIVE sniffing).
//!
//! Without coverage feedback, inputs come from seeds (the shipped files, requests of
//! every shape the listeners take) through stacked byte mutations ([`mutate`]) and, for
//! YAML, structural ones ([`tree`]), from a seeded generator: a run is reproducible, and
//! each finding is saved with its input for `fuzz replay`.
//!
//! * [`harness`]: the run loop, the hang limit, memory after warm-up and at the end.
//! * [`targets`]: what each target feeds and what it promises.
//! * [`process`], [`wire`]: the real programs and one exchange with them.

pub mod harness;
pub mod mutate;
pub mod process;
pub mod targets;
pub mod tree;
pub mod wire;
