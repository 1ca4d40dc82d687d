//! Shared plumbing for the Bookinfo services.
//!
//! Every service binary follows the same startup shape, and this crate holds it once:
//! parse the environment into a typed config ([`config`]) before binding anything,
//! exit with code 64 and one clear line on bad config, initialise logs ([`telemetry`])
//! and, when an OTLP endpoint is set, spans ([`trace`]),
//! bind `[::]:9080` dual-stack ([`serve`]), expose `/metrics` ([`metrics`]), forward the
//! tracing and identity headers the original Bookinfo forwards ([`headers`]), call
//! upstreams through a client that honours `HTTP_PROXY` so the mesh sidecar sees every
//! call ([`client`]), and drain on SIGTERM or Ctrl-C ([`shutdown`]).
//!
//! Only [`shutdown`] and [`secret`] (random tokens, owner-only files) are there without the
//! default `service` feature: the mesh's proxy, control plane and meshctl share them
//! without linking the rest.

#[cfg(feature = "service")]
pub mod client;
#[cfg(feature = "service")]
pub mod config;
#[cfg(feature = "service")]
pub mod headers;
#[cfg(feature = "service")]
pub mod json;
#[cfg(feature = "service")]
pub mod metrics;
pub mod secret;
#[cfg(feature = "service")]
pub mod serve;
pub mod shutdown;
#[cfg(feature = "service")]
pub mod telemetry;
#[cfg(feature = "service")]
pub mod trace;
