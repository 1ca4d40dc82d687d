//! The Istio resource model our mesh understands.
//!
//! Users bring the same YAML they would give Istio (`networking.istio.io` VirtualService,
//! DestinationRule, Gateway, ServiceEntry; `security.istio.io` PeerAuthentication,
//! AuthorizationPolicy; the Kubernetes Gateway API's `gateway.networking.k8s.io` Gateway
//! and HTTPRoute; the one `EnvoyFilter` shape of Istio's local rate limit task). This crate turns that YAML into checked, typed data:
//!
//! * [`parse`]: multi-document YAML → typed resources, unknown kinds/fields as warnings,
//!   never a panic ([`parse_file`]).
//! * [`validate`]: the checks istiod applies, with errors naming file, document, resource
//!   and field path ([`ConfigError`]).
//! * [`config::MeshConfig`]: a validated set of resources ([`MeshConfig::load`]).
//! * [`defaults`]: Istio's effective defaults (retries, timeouts, load balancing, pools,
//!   outlier detection, faults, mirroring) as typed values.
//! * [`host`]: host qualification and authority matching.
//! * [`matching`]: route matching on a borrowed request view.
//! * [`mod@compile`]: the per-proxy [`RouteTable`] the proxy holds in an `Arc`.
//! * [`wire`]: the control plane's HTTP contract (registration, proxy configuration,
//!   faults, describe and overview views, errors), shared by server and clients.
//!
//! No I/O happens here: callers pass file names and texts.

pub mod analyze;
pub mod compile;
pub mod config;
pub mod defaults;
pub mod duration;
pub mod error;
pub mod gateway_api;
pub mod host;
pub mod matching;
pub mod meta;
pub mod networking;
pub mod parse;
pub mod registry;
pub mod resource;
pub mod security;
pub mod string_match;
pub mod validate;
pub mod wire;

pub use compile::{
    CompiledRoute, CompiledService, CompiledSubset, Listener, ProxyScope, RouteAction, RouteTable,
    WeightedDestination, WeightedDestinations, compile, select_route,
};
pub use config::{LoadOutcome, MeshConfig};
pub use defaults::{EffectiveFault, EffectivePolicy, LoadBalancer, RetryPolicy};
pub use duration::{IstioDuration, parse_duration};
pub use error::{ConfigError, ConfigErrors, Origin, Warning};
pub use matching::RequestInfo;
pub use parse::{Loaded, MAX_FLOW_DEPTH, ParsedFile, flow_depth, parse_file, parse_file_in};
pub use registry::{EndpointRecord, Registry, ServiceRecord};
pub use resource::{Kind, Resource};
pub use string_match::{FullRegex, StringMatch};
