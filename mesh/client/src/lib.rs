//! The one client of the control plane's HTTP API (`docs/control-plane-api.md`).
//!
//! The proxy registers and long-polls its configuration with it, `meshctl` applies,
//! describes and injects faults with it, the chaos runner leases faults with it. Every
//! call takes and returns the `mesh_api::wire` types the control plane serves, so a
//! change of the contract is a compile error on both sides rather than a surprise at run
//! time.
//!
//! - [`ControlClient`]: one method per API call, over plain HTTP/1.1 with keep-alive
//!   ([`HyperTransport`], or the caller's own [`Transport`]).
//! - [`Credential`]: the bearer token sent with every call (`Authorization: Bearer`), fixed
//!   or read from a file per request.
//! - [`ClientError`]: unreachable, refused with the control plane's own message, or an
//!   answer that is not the contract.

mod api;
mod credential;
mod error;
mod transport;

pub use credential::Credential;
pub use error::ClientError;
pub use transport::{ControlClient, HyperTransport, Transport, TransportError, base_url};

/// Where `meshctl up` and the local runner start the control plane.
pub const DEFAULT_URL: &str = "http://127.0.0.1:15010";
