//! The Kubernetes source: the Istio resources stored in the cluster, watched.
//!
//! With it, `kubectl apply -f virtual-service-reviews-test-v2.yaml` changes routing the way
//! it does under Istio. Every object of a watched kind, in every namespace, becomes one
//! source file for the same parser and validation as the directory source; an invalid
//! object is reported and left out while the others apply ([`Admission::EachFile`]).
//!
//! * [`client`]: finding the cluster (in-cluster service account or kubeconfig).
//! * [`kinds`]: which kinds are watched, with their API group, version and plural.
//! * [`convert`]: one object → one [`SourceFile`].
//! * [`watch`]: a watcher per kind, the shared object set, and [`KubeSource`].
//! * [`ca_secret`]: the CA root kept in a Secret, so a new control-plane pod keeps it.
//!
//! [`Admission::EachFile`]: crate::source::Admission::EachFile
//! [`SourceFile`]: crate::source::SourceFile

pub mod ca_secret;
pub mod client;
pub mod convert;
pub mod kinds;
pub mod watch;

pub use client::{ConnectError, client_for, connect};
pub use watch::{KubeSource, Retry};

/// The source's name in `/api/v1/resources` and in rejected changes.
pub const SOURCE_NAME: &str = "kubernetes";
