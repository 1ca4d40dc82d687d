//! HTTP as the listeners speak it, below every traffic decision: the accept loop
//! ([`server`]), our own HTTP/1.1 for the common case ([`http1`]), the body types every
//! module shares ([`body`]), header handling ([`headers`]) and the replies the proxy
//! makes itself ([`respond`]). It uses only `telemetry` (response flags) and `tls` (the
//! accepted stream), so every layer above can use it.

pub mod body;
pub mod headers;
pub mod http1;
pub mod respond;
pub mod server;
