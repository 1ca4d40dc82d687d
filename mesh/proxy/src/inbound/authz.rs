//! Inbound security policy of a workload.
//!
//! - [`peer`]: PeerAuthentication → the [`MtlsMode`](crate::tls::MtlsMode) of each inbound
//!   port (STRICT / PERMISSIVE / DISABLE), which [`crate::tls::accept`] enforces.
//! - [`policy`]: AuthorizationPolicy → an [`Authorizer`] deciding each request from the
//!   peer identity (the mTLS SPIFFE ID), its address and the HTTP request.
//! - `matching`: the string and CIDR matchers both rely on.

mod matching;
pub mod peer;
pub mod policy;

pub use peer::{ROOT_NAMESPACE, effective_mtls};
pub use policy::{
    Authorizer, DENIED_BODY, DENIED_STATUS, Decision, NO_MATCHING_ALLOW, RequestAttributes, selects,
};
