//! Istio's effective defaults, as the proxy will apply them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::time::Duration;

use mesh_api::defaults::{
    self, ConnectionPool, EffectiveMirror, HashKey, LoadBalancer, Outlier, UpstreamTls,
    effective_mirrors, effective_timeout,
};
use mesh_api::networking::destination_rule::TlsMode;
use mesh_api::networking::virtual_service::HttpRoute;
use mesh_api::{EffectiveFault, MeshConfig, ProxyScope, RetryPolicy, compile};

/// One HTTP route decoded from YAML (the `http[0]` of a tiny VirtualService).
fn route(yaml: &str) -> HttpRoute {
    let text = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: r}}\nspec:\n  hosts: [r]\n  http:\n  - route: [{{destination: {{host: r}}}}]\n{}",
        yaml.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    let outcome = MeshConfig::load([("r.yaml", text.as_str())]).unwrap();
    outcome.config.virtual_services().next().unwrap().spec.http[0].clone()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn retry_policy_table() {
    let default_on = strings(&[
        "connect-failure",
        "refused-stream",
        "unavailable",
        "cancelled",
        "retriable-status-codes",
    ]);
    let cases: Vec<(&str, RetryPolicy)> = vec![
        (
            "",
            RetryPolicy {
                attempts: 2,
                retry_on: default_on.clone(),
                // istiod's default policy retries 503 as a retriable status code.
                retriable_status_codes: vec![503],
                per_try_timeout: None,
                backoff: Duration::from_millis(25),
                retry_ignore_previous_hosts: true,
                retry_remote_localities: false,
            },
        ),
        ("retries: {attempts: 0}", RetryPolicy::disabled()),
        (
            "retries: {attempts: 5, perTryTimeout: 2s}",
            RetryPolicy {
                attempts: 5,
                per_try_timeout: Some(Duration::from_secs(2)),
                ..RetryPolicy::istio_default()
            },
        ),
        (
            "retries: {attempts: 3, retryOn: \"5xx, 503,gateway-error\", backoff: 100ms, retryIgnorePreviousHosts: false}",
            RetryPolicy {
                attempts: 3,
                retry_on: strings(&["5xx", "gateway-error", "retriable-status-codes"]),
                retriable_status_codes: vec![503],
                per_try_timeout: None,
                backoff: Duration::from_millis(100),
                retry_ignore_previous_hosts: false,
                retry_remote_localities: false,
            },
        ),
    ];
    for (yaml, expected) in cases {
        assert_eq!(RetryPolicy::effective(&route(yaml)), expected, "{yaml:?}");
    }
    assert_eq!(
        RetryPolicy::istio_default().max_backoff(),
        Duration::from_millis(250)
    );
    assert!(RetryPolicy::istio_default().retries_on("connect-failure"));
    assert!(!RetryPolicy::istio_default().retries_on("5xx"));
}

#[test]
fn timeout_table() {
    assert_eq!(effective_timeout(&route("")), None);
    assert_eq!(effective_timeout(&route("timeout: 0s")), None);
    assert_eq!(
        effective_timeout(&route("timeout: 0.5s")),
        Some(Duration::from_millis(500))
    );
    assert_eq!(
        effective_timeout(&route("timeout: 1m")),
        Some(Duration::from_secs(60))
    );
}

#[test]
fn fault_percentages_default_to_zero() {
    let fault = |yaml: &str| EffectiveFault::effective(route(yaml).fault.as_ref()).unwrap();
    let delay = fault("fault: {delay: {fixedDelay: 7s}}").delay.unwrap();
    assert_eq!(
        (delay.fixed_delay, delay.percent),
        (Duration::from_secs(7), 0.0)
    );
    let delay = fault("fault: {delay: {fixedDelay: 1s, percent: 30}}")
        .delay
        .unwrap();
    assert_eq!(delay.percent, 30.0);
    let abort = fault("fault: {abort: {httpStatus: 503}}").abort.unwrap();
    assert_eq!(
        (abort.status, abort.percent),
        (defaults::AbortStatus::Http(503), 0.0)
    );
    let abort = fault("fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 12.5}}}")
        .abort
        .unwrap();
    assert_eq!(
        (abort.status, abort.percent),
        (defaults::AbortStatus::Grpc("UNAVAILABLE".into()), 12.5)
    );
    assert_eq!(EffectiveFault::effective(route("").fault.as_ref()), None);
}

#[test]
fn mirror_percentages_default_to_hundred() {
    let hosts = |mirrors: Vec<EffectiveMirror>| -> Vec<(String, f64)> {
        mirrors
            .into_iter()
            .map(|m| (m.destination.host, m.percent))
            .collect()
    };
    assert_eq!(
        hosts(effective_mirrors(&route("mirror: {host: m}"))),
        [("m".to_owned(), 100.0)]
    );
    assert_eq!(
        hosts(effective_mirrors(&route(
            "mirror: {host: m}\nmirrorPercentage: {value: 0}"
        ))),
        [("m".to_owned(), 0.0)]
    );
    assert_eq!(
        hosts(effective_mirrors(&route(
            "mirror: {host: m}\nmirrorPercent: 40"
        ))),
        [("m".to_owned(), 40.0)]
    );
    assert_eq!(
        hosts(effective_mirrors(&route(
            "mirrors:\n- destination: {host: a}\n- destination: {host: b}\n  percentage: {value: 5}"
        ))),
        [("a".to_owned(), 100.0), ("b".to_owned(), 5.0)]
    );
    assert!(effective_mirrors(&route("")).is_empty());
}

#[test]
fn destination_policy_defaults() {
    let policy = mesh_api::EffectivePolicy::default();
    assert_eq!(policy.load_balancer, LoadBalancer::LeastRequest);
    assert_eq!(policy.connection_pool, ConnectionPool::default());
    assert_eq!(
        policy.connection_pool.connect_timeout,
        Duration::from_secs(10)
    );
    assert_eq!(policy.connection_pool.max_connections, u32::MAX);
    assert_eq!(policy.connection_pool.http1_max_pending_requests, u32::MAX);
    assert_eq!(policy.connection_pool.http2_max_requests, u32::MAX);
    assert_eq!(policy.connection_pool.max_requests_per_connection, 0);
    assert_eq!(policy.connection_pool.max_retries, u32::MAX);
    assert_eq!(policy.outlier_detection, None);
    assert_eq!(policy.tls, UpstreamTls::Auto);
}

const RULE: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool:
      tcp: {maxConnections: 1, connectTimeout: 250ms}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
    outlierDetection: {consecutive5xxErrors: 1}
    tls: {mode: ISTIO_MUTUAL}
    portLevelSettings:
    - port: {number: 9443}
      connectionPool: {tcp: {maxConnections: 7}}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer:
        consistentHash: {httpHeaderName: X-User}
      outlierDetection: {interval: 1s, maxEjectionPercent: 100}
"#;

#[test]
fn subset_policy_overrides_field_by_field_and_ports_do_not_inherit() {
    let outcome = MeshConfig::load([("dr.yaml", RULE)]).unwrap();
    let table = compile(&outcome.config, &ProxyScope::sidecar("default", &[]));
    let service = table.lookup("reviews").unwrap();

    let rule = service.policy_for(None, None);
    assert_eq!(rule.load_balancer, LoadBalancer::RoundRobin);
    assert_eq!(rule.connection_pool.max_connections, 1);
    assert_eq!(
        rule.connection_pool.connect_timeout,
        Duration::from_millis(250)
    );
    assert_eq!(rule.connection_pool.http1_max_pending_requests, 1);
    assert_eq!(rule.connection_pool.max_requests_per_connection, 1);
    // Outlier detection set with one field: the others get Istio's defaults.
    assert_eq!(
        rule.outlier_detection,
        Some(Outlier {
            consecutive_5xx_errors: 1,
            consecutive_gateway_errors: 0,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: 10,
            min_health_percent: 0,
        })
    );

    // v1 has no policy of its own: everything inherited.
    assert_eq!(service.policy_for(Some("v1"), None), rule);

    // v2 replaces loadBalancer and outlierDetection, inherits pool and TLS.
    let v2 = service.policy_for(Some("v2"), None);
    assert_eq!(
        v2.load_balancer,
        LoadBalancer::ConsistentHash(HashKey::Header("x-user".into()))
    );
    let outlier = v2.outlier_detection.clone().unwrap();
    assert_eq!(outlier.interval, Duration::from_secs(1));
    assert_eq!(outlier.consecutive_5xx_errors, 5);
    assert_eq!(outlier.max_ejection_percent, 100);
    assert_eq!(v2.connection_pool, rule.connection_pool);
    let UpstreamTls::Explicit(tls) = &v2.tls else {
        panic!("expected TLS")
    };
    assert_eq!(tls.mode, TlsMode::IstioMutual);

    // Port 9443: only what the port entry says, defaults for the rest (no inheritance).
    let port = service.policy_for(Some("v1"), Some(9443));
    assert_eq!(port.connection_pool.max_connections, 7);
    assert_eq!(
        port.connection_pool.connect_timeout,
        Duration::from_secs(10)
    );
    assert_eq!(port.load_balancer, LoadBalancer::LeastRequest);
    assert_eq!(port.outlier_detection, None);
    assert_eq!(port.tls, UpstreamTls::Auto);
    // Other ports use the subset policy.
    assert_eq!(service.policy_for(Some("v1"), Some(9080)), rule);
}

#[test]
fn outlier_ejection_time_grows_and_is_capped() {
    let outlier = Outlier::effective(Some(&Default::default())).unwrap();
    assert_eq!(outlier.ejection_time(1), Duration::from_secs(30));
    assert_eq!(outlier.ejection_time(3), Duration::from_secs(90));
    assert_eq!(outlier.ejection_time(50), Duration::from_secs(300));
    assert_eq!(Outlier::effective(None), None);
}

#[test]
fn lb_aliases_mean_least_request() {
    for simple in ["UNSPECIFIED", "LEAST_CONN", "LEAST_REQUEST"] {
        let yaml = format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: d}}\nspec:\n  host: d\n  trafficPolicy: {{loadBalancer: {{simple: {simple}}}}}\n"
        );
        let outcome = MeshConfig::load([("d.yaml", yaml.as_str())]).unwrap();
        let table = compile(&outcome.config, &ProxyScope::sidecar("default", &[]));
        assert_eq!(
            table.lookup("d").unwrap().policy.load_balancer,
            LoadBalancer::LeastRequest,
            "{simple}"
        );
    }
}

#[test]
fn warnings_do_not_stop_loading() {
    let yaml = "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: reviews}\nspec: {parentRefs: [{name: reviews}]}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ratings-v1}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  trafficPolicy: {loadBalancer: {simple: RANDOM}, shiny: true}\n";
    let outcome = MeshConfig::load([("mixed.yaml", yaml)]).unwrap();
    let warnings: Vec<String> = outcome.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "mixed.yaml: document 1: GRPCRoute default/reviews: kind GRPCRoute (gateway.networking.k8s.io/v1) is not a mesh resource; skipped",
            "mixed.yaml: document 2: Deployment default/ratings-v1: kind Deployment (apps/v1) is not a mesh resource; skipped",
            "mixed.yaml: document 3: DestinationRule default/reviews: spec.trafficPolicy.shiny: unknown field; ignored",
        ]
    );
    assert_eq!(outcome.config.len(), 1);
    let dr = outcome.config.destination_rules().next().unwrap();
    assert_eq!(dr.spec.host, "reviews");
}

#[test]
fn security_resources_load() {
    let yaml = r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ratings, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: ratings}}
  mtls: {mode: STRICT}
  portLevelMtls:
    9080: {mode: PERMISSIVE}
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: reviews-viewer, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: reviews}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: [cluster.local/ns/bookinfo/sa/bookinfo-productpage]}
    to:
    - operation: {methods: [GET], ports: ["9080"]}
    when:
    - {key: "request.headers[end-user]", values: [jason]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: bookinfo}
spec: {}
"#;
    let outcome = MeshConfig::load([("sec.yaml", yaml)]).unwrap();
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    let pa = outcome.config.peer_authentications().next().unwrap();
    assert_eq!(
        pa.spec.port_level_mtls["9080"].mode,
        Some(mesh_api::security::peer_authentication::MtlsMode::Permissive)
    );
    let policies: Vec<_> = outcome.config.authorization_policies().collect();
    assert_eq!(policies.len(), 2);
    assert_eq!(policies[0].spec.rules[0].when[0].values, ["jason"]);
    assert!(policies[1].spec.rules.is_empty() && policies[1].spec.action.is_none());
}
