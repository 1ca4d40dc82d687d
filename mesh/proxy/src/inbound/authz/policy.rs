//! AuthorizationPolicy evaluation for one workload's inbound requests.
//!
//! Istio's order: CUSTOM, then DENY, then ALLOW.
//! - CUSTOM policies delegate to an external authorizer. The mesh has none, so a request
//!   matching a CUSTOM policy is denied (failing closed, as Envoy does when the ext_authz
//!   service is unreachable); a CUSTOM policy that does not match has no effect.
//! - Any matching DENY policy denies. A DENY policy without rules never matches.
//! - Without ALLOW policies the request is allowed; otherwise one ALLOW rule must match.
//!   `spec: {}` is an ALLOW policy without rules: it denies everything ("allow-nothing"),
//!   `rules: [{}]` allows everything.
//! - AUDIT policies never change the decision.
//!
//! What this proxy cannot know never matches: `requestPrincipals` and `request.auth.*`
//! conditions need JWT authentication, which the mesh does not do. `remoteIpBlocks` is
//! checked against the peer address (no X-Forwarded-For trust). Unknown `when` keys are
//! ignored, as Istio ignores unsupported keys. Policies with `targetRef(s)` address
//! gateways or waypoints by name and are not applied to sidecars by
//! [`Authorizer::for_workload`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use http::HeaderMap;
use mesh_api::security::authorization_policy::{
    Action, AuthorizationPolicy, Condition, Operation, Rule, Source,
};

use super::matching::{Cidr, Field, Pattern};
use crate::tls::SpiffeId;

/// Status of a denied HTTP request.
pub const DENIED_STATUS: http::StatusCode = http::StatusCode::FORBIDDEN;
/// Body of a denied HTTP request (what Envoy's RBAC filter answers).
pub const DENIED_BODY: &str = "RBAC: access denied";
/// `Decision::Deny.policy` when no ALLOW policy matched.
pub const NO_MATCHING_ALLOW: &str = "none";

/// What an inbound request looks like to the policies.
#[derive(Debug, Clone, Copy)]
pub struct RequestAttributes<'a> {
    /// The peer's SPIFFE ID, with `spiffe://`, when it came over mTLS.
    pub peer: Option<&'a str>,
    /// The peer's address.
    pub source_ip: IpAddr,
    /// HTTP method.
    pub method: &'a str,
    /// Request path; a query string, if still present, is ignored.
    pub path: &'a str,
    /// Host / `:authority`.
    pub host: &'a str,
    /// The workload port the request arrived for.
    pub port: u16,
    /// Request headers.
    pub headers: &'a HeaderMap,
}

/// The outcome of [`Authorizer::authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let the request through.
    Allow,
    /// Answer [`DENIED_STATUS`] / [`DENIED_BODY`].
    Deny {
        /// The deciding rule as Envoy names it, `ns[<ns>]-policy[<name>]-rule[<i>]`, or
        /// [`NO_MATCHING_ALLOW`] when ALLOW policies exist and none matched.
        policy: String,
    },
}

impl Decision {
    /// True for [`Decision::Allow`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow)
    }
}

/// The policies of one workload, ready to evaluate requests.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    custom: Vec<CompiledPolicy>,
    deny: Vec<CompiledPolicy>,
    allow: Vec<CompiledPolicy>,
}

impl Authorizer {
    /// An authorizer for `policies`, which the caller has already selected for the
    /// workload (see [`selects`]). AUDIT policies are dropped.
    pub fn new<'a>(policies: impl IntoIterator<Item = &'a AuthorizationPolicy>) -> Self {
        let mut authorizer = Self::default();
        for policy in policies {
            let compiled = CompiledPolicy::compile(policy);
            match policy.spec.action.unwrap_or(Action::Allow) {
                Action::Allow => authorizer.allow.push(compiled),
                Action::Deny => authorizer.deny.push(compiled),
                Action::Custom => authorizer.custom.push(compiled),
                Action::Audit => {}
            }
        }
        authorizer
    }

    /// An authorizer for the workload `namespace` / `labels`, picking from all of the
    /// mesh's policies those that apply to it.
    pub fn for_workload<'a>(
        policies: impl IntoIterator<Item = &'a AuthorizationPolicy>,
        root_namespace: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> Self {
        Self::new(
            policies
                .into_iter()
                .filter(|p| selects(p, root_namespace, namespace, labels)),
        )
    }

    /// True when no policy applies (every request is allowed).
    pub fn is_empty(&self) -> bool {
        self.custom.is_empty() && self.deny.is_empty() && self.allow.is_empty()
    }

    /// Decides one request.
    pub fn authorize(&self, request: &RequestAttributes<'_>) -> Decision {
        // No policy selects the workload (the usual case): nothing to compare, so the
        // request's facts (a few strings) are not built.
        if self.custom.is_empty() && self.deny.is_empty() && self.allow.is_empty() {
            return Decision::Allow;
        }
        let facts = Facts::of(request);
        for policy in self.custom.iter().chain(&self.deny) {
            if let Some(rule) = policy.matching_rule(&facts) {
                return Decision::Deny {
                    policy: policy.rule_name(rule),
                };
            }
        }
        if self.allow.is_empty() || self.allow.iter().any(|p| p.matching_rule(&facts).is_some()) {
            Decision::Allow
        } else {
            Decision::Deny {
                policy: NO_MATCHING_ALLOW.to_owned(),
            }
        }
    }
}

/// Whether `policy` applies to a sidecar workload in `namespace` with `labels`: same
/// namespace or the root namespace (mesh-wide), and a selector that is absent, empty or
/// matching. Policies addressing gateways/waypoints through `targetRef(s)` do not.
pub fn selects(
    policy: &AuthorizationPolicy,
    root_namespace: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    let ns = policy.namespace();
    let spec = &policy.spec;
    (ns == namespace || ns == root_namespace)
        && spec.target_refs.is_empty()
        && spec.target_ref.is_none()
        && spec.selector.as_ref().is_none_or(|s| s.matches(labels))
}

/// The request, reduced to what rules compare.
struct Facts<'a> {
    /// Peer principal without `spiffe://`.
    principal: Option<&'a str>,
    namespace: Option<String>,
    /// `<ns>/<sa>`.
    service_account: Option<String>,
    source_ip: IpAddr,
    method: &'a str,
    path: &'a str,
    host: String,
    port: u16,
    headers: &'a HeaderMap,
}

impl<'a> Facts<'a> {
    fn of(request: &RequestAttributes<'a>) -> Self {
        let principal = request
            .peer
            .map(|peer| peer.strip_prefix("spiffe://").unwrap_or(peer));
        let id = request.peer.and_then(|peer| SpiffeId::parse(peer).ok());
        Self {
            principal,
            namespace: id.as_ref().map(|id| id.namespace().to_owned()),
            service_account: id
                .as_ref()
                .map(|id| format!("{}/{}", id.namespace(), id.service_account())),
            source_ip: request.source_ip,
            method: request.method,
            path: request.path.split('?').next().unwrap_or_default(),
            host: request.host.to_ascii_lowercase(),
            port: request.port,
            headers: request.headers,
        }
    }

    /// All values of a header joined with `,` (Envoy's view of repeated headers).
    fn header(&self, name: &str) -> Option<String> {
        let mut values = self.headers.get_all(name).iter().peekable();
        values.peek()?;
        let joined: Vec<&str> = values.map(|v| v.to_str().unwrap_or_default()).collect();
        Some(joined.join(","))
    }
}

#[derive(Debug, Clone)]
struct CompiledPolicy {
    namespace: String,
    name: String,
    rules: Vec<CompiledRule>,
}

impl CompiledPolicy {
    fn compile(policy: &AuthorizationPolicy) -> Self {
        Self {
            namespace: policy.namespace().to_owned(),
            name: policy.name().to_owned(),
            rules: policy
                .spec
                .rules
                .iter()
                .map(CompiledRule::compile)
                .collect(),
        }
    }

    /// Index of the first matching rule. No rules = never matches (for ALLOW that is
    /// "allow nothing", for DENY "deny nothing").
    fn matching_rule(&self, facts: &Facts<'_>) -> Option<usize> {
        self.rules.iter().position(|rule| rule.matches(facts))
    }

    fn rule_name(&self, rule: usize) -> String {
        format!("ns[{}]-policy[{}]-rule[{rule}]", self.namespace, self.name)
    }
}

#[derive(Debug, Clone)]
struct CompiledRule {
    from: Vec<CompiledSource>,
    to: Vec<CompiledOperation>,
    when: Vec<CompiledCondition>,
}

impl CompiledRule {
    fn compile(rule: &Rule) -> Self {
        Self {
            from: rule
                .from
                .iter()
                .map(|f| CompiledSource::compile(&f.source))
                .collect(),
            to: rule
                .to
                .iter()
                .map(|t| CompiledOperation::compile(&t.operation))
                .collect(),
            when: rule.when.iter().map(CompiledCondition::compile).collect(),
        }
    }

    fn matches(&self, facts: &Facts<'_>) -> bool {
        (self.from.is_empty() || self.from.iter().any(|s| s.matches(facts)))
            && (self.to.is_empty() || self.to.iter().any(|o| o.matches(facts)))
            && self.when.iter().all(|c| c.matches(facts))
    }
}

fn patterns(values: &[String], fold_case: bool) -> Vec<Pattern> {
    values
        .iter()
        .map(|v| Pattern::parse(v, fold_case))
        .collect()
}

fn pattern_field(values: &[String], not_values: &[String], fold_case: bool) -> Field<Pattern> {
    Field::new(patterns(values, fold_case), patterns(not_values, fold_case))
}

/// CIDRs; an unparsable entry is kept as `None`, which matches no address (mesh-api
/// validation rejects such policies before they get here).
fn cidrs(values: &[String]) -> Vec<Option<Cidr>> {
    values.iter().map(|v| Cidr::parse(v)).collect()
}

fn cidr_field(values: &[String], not_values: &[String]) -> Field<Option<Cidr>> {
    Field::new(cidrs(values), cidrs(not_values))
}

fn in_cidr(cidr: &Option<Cidr>, ip: IpAddr) -> bool {
    cidr.is_some_and(|c| c.contains(ip))
}

fn pattern_matches(pattern: &Pattern, value: &str) -> bool {
    pattern.matches(value)
}

/// Ports are strings in policies; one that is not a port number matches nothing.
fn ports(values: &[String]) -> Vec<Option<u16>> {
    values.iter().map(|v| v.trim().parse().ok()).collect()
}

fn port_field(values: &[String], not_values: &[String]) -> Field<Option<u16>> {
    Field::new(ports(values), ports(not_values))
}

fn port_matches(expected: &Option<u16>, port: u16) -> bool {
    *expected == Some(port)
}

#[derive(Debug, Clone)]
struct CompiledSource {
    principals: Field<Pattern>,
    namespaces: Field<Pattern>,
    service_accounts: Field<Pattern>,
    ip_blocks: Field<Option<Cidr>>,
    remote_ip_blocks: Field<Option<Cidr>>,
    request_principals: Field<Pattern>,
}

impl CompiledSource {
    fn compile(source: &Source) -> Self {
        Self {
            principals: pattern_field(&source.principals, &source.not_principals, false),
            namespaces: pattern_field(&source.namespaces, &source.not_namespaces, false),
            service_accounts: pattern_field(
                &source.service_accounts,
                &source.not_service_accounts,
                false,
            ),
            ip_blocks: cidr_field(&source.ip_blocks, &source.not_ip_blocks),
            remote_ip_blocks: cidr_field(&source.remote_ip_blocks, &source.not_remote_ip_blocks),
            request_principals: pattern_field(
                &source.request_principals,
                &source.not_request_principals,
                false,
            ),
        }
    }

    fn matches(&self, facts: &Facts<'_>) -> bool {
        self.principals.check(facts.principal, pattern_matches)
            && self
                .namespaces
                .check(facts.namespace.as_deref(), pattern_matches)
            && self
                .service_accounts
                .check(facts.service_account.as_deref(), pattern_matches)
            && self.ip_blocks.check(Some(facts.source_ip), in_cidr)
            && self.remote_ip_blocks.check(Some(facts.source_ip), in_cidr)
            // No JWT authentication: there is never a request principal.
            && self.request_principals.check(None::<&str>, pattern_matches)
    }
}

#[derive(Debug, Clone)]
struct CompiledOperation {
    hosts: Field<Pattern>,
    ports: Field<Option<u16>>,
    methods: Field<Pattern>,
    paths: Field<Pattern>,
}

impl CompiledOperation {
    fn compile(operation: &Operation) -> Self {
        Self {
            hosts: pattern_field(&operation.hosts, &operation.not_hosts, true),
            ports: port_field(&operation.ports, &operation.not_ports),
            methods: pattern_field(&operation.methods, &operation.not_methods, false),
            paths: pattern_field(&operation.paths, &operation.not_paths, false),
        }
    }

    fn matches(&self, facts: &Facts<'_>) -> bool {
        self.hosts.check(Some(facts.host.as_str()), pattern_matches)
            && self.ports.check(Some(facts.port), port_matches)
            && self.methods.check(Some(facts.method), pattern_matches)
            && self.paths.check(Some(facts.path), pattern_matches)
    }
}

#[derive(Debug, Clone)]
enum CompiledCondition {
    Header(String, Field<Pattern>),
    SourceIp(Field<Option<Cidr>>),
    SourceNamespace(Field<Pattern>),
    SourcePrincipal(Field<Pattern>),
    SourceServiceAccount(Field<Pattern>),
    DestinationPort(Field<Option<u16>>),
    /// `request.auth.*`: needs JWT authentication, never matches.
    RequestAuth,
    /// A key this proxy does not evaluate: ignored, like Istio ignores unsupported keys.
    Ignored,
}

impl CompiledCondition {
    fn compile(condition: &Condition) -> Self {
        let key = condition.key.trim();
        let values = &condition.values;
        let not_values = &condition.not_values;
        if let Some(name) = key
            .strip_prefix("request.headers[")
            .and_then(|rest| rest.strip_suffix(']'))
        {
            return Self::Header(
                name.trim().to_ascii_lowercase(),
                pattern_field(values, not_values, false),
            );
        }
        match key {
            "source.ip" | "remote.ip" => Self::SourceIp(cidr_field(values, not_values)),
            "source.namespace" => Self::SourceNamespace(pattern_field(values, not_values, false)),
            "source.principal" => Self::SourcePrincipal(pattern_field(values, not_values, false)),
            "source.serviceAccount" => {
                Self::SourceServiceAccount(pattern_field(values, not_values, false))
            }
            "destination.port" => Self::DestinationPort(port_field(values, not_values)),
            _ if key.starts_with("request.auth.") => Self::RequestAuth,
            _ => Self::Ignored,
        }
    }

    fn matches(&self, facts: &Facts<'_>) -> bool {
        match self {
            Self::Header(name, field) => {
                field.check(facts.header(name).as_deref(), pattern_matches)
            }
            Self::SourceIp(field) => field.check(Some(facts.source_ip), in_cidr),
            Self::SourceNamespace(field) => {
                field.check(facts.namespace.as_deref(), pattern_matches)
            }
            Self::SourcePrincipal(field) => field.check(facts.principal, pattern_matches),
            Self::SourceServiceAccount(field) => {
                field.check(facts.service_account.as_deref(), pattern_matches)
            }
            Self::DestinationPort(field) => field.check(Some(facts.port), port_matches),
            Self::RequestAuth => false,
            Self::Ignored => true,
        }
    }
}
