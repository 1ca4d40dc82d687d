//! The control plane's JSON, pinned: the bodies of `docs/control-plane-api.md` decode into
//! the wire types, and the wire types encode to exactly the field names and order that
//! Chaos Toolkit experiments, scripts and curl users read. A renamed or reordered field
//! fails here before it reaches a user.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::BTreeMap;

use mesh_api::wire::{
    AbortView, ApiError, Applied, CaRoot, CertificateRequest, ChangeRecord, DelayView, Deleted,
    Deregistered, Direction, ErrorRecord, ExperimentRecorded, ExperimentReport, ExperimentView,
    FaultCreated, FaultDeleted, FaultRequest, FaultsCleared, Graph, Health, Issued, LeaseView,
    Mode, Overview, ProxyConfig, ProxyStatus, Registered, ResetFault, RouteSummary,
    ServiceDescription, ServiceOverview, SyncStatus, TargetGroup, WorkloadSpec, WorkloadView,
};
use mesh_api::{Registry, RouteTable};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Compact JSON of `value`.
fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap()
}

/// `text` decodes as `T` and encodes back to the same JSON (modulo whitespace).
fn round_trip<T: Serialize + DeserializeOwned>(text: &str) -> T {
    let value: T = serde_json::from_str(text).unwrap();
    let compact: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(json(&value), compact.to_string());
    value
}

/// The top-level field names of `value`, in order.
fn keys(value: &impl Serialize) -> Vec<String> {
    match serde_json::to_value(value).unwrap() {
        serde_json::Value::Object(map) => map.keys().cloned().collect(),
        other => panic!("not an object: {other}"),
    }
}

#[test]
fn the_documented_registration_round_trips() {
    let spec: WorkloadSpec = round_trip(
        r#"{"name": "reviews-v2", "namespace": "default", "service": "reviews",
            "serviceAccount": "bookinfo-reviews", "labels": {"app": "reviews", "version": "v2"},
            "address": "127.0.0.1:15106", "sidecar": true, "mode": "sidecar"}"#,
    );
    assert_eq!(spec.mode, Mode::Sidecar);
    assert_eq!(spec.admin, None);
    let scraped: WorkloadSpec = round_trip(
        r#"{"name": "reviews-v2", "namespace": "default", "serviceAccount": "default",
            "labels": {}, "sidecar": true, "mode": "sidecar", "admin": "127.0.0.1:15100"}"#,
    );
    assert_eq!(scraped.admin, Some("127.0.0.1:15100".parse().unwrap()));
    // Defaults and the snake_case spelling older scripts send.
    let gateway: WorkloadSpec =
        serde_json::from_str(r#"{"name": "ingress", "service_account": "gw", "mode": "gateway"}"#)
            .unwrap();
    assert_eq!(gateway.namespace, "default");
    assert_eq!(gateway.service_account, "gw");
    assert!(gateway.sidecar);
    assert_eq!(gateway.mode, Mode::Gateway);
    assert_eq!(
        json(&gateway),
        r#"{"name":"ingress","namespace":"default","serviceAccount":"gw","labels":{},"sidecar":true,"mode":"gateway"}"#
    );
}

#[test]
fn registrations_name_the_bad_field() {
    let mut spec: WorkloadSpec = serde_json::from_str(r#"{"name": "Reviews"}"#).unwrap();
    assert!(
        spec.validate()
            .unwrap_err()
            .to_string()
            .starts_with("name: ")
    );
    spec.name = "reviews-v1".to_owned();
    spec.service_account = "a/b".to_owned();
    assert_eq!(spec.validate().unwrap_err().field, "serviceAccount");
    spec.service_account = "ok".to_owned();
    spec.ports = vec![0];
    assert_eq!(
        spec.validate().unwrap_err().to_string(),
        "ports: 0 is not a port"
    );
}

#[test]
fn workload_listing_and_proxy_status_fields() {
    let spec: WorkloadSpec = serde_json::from_str(r#"{"name": "details-v1"}"#).unwrap();
    let view = WorkloadView {
        spec,
        last_seen_ms: 2,
        age_ms: 1,
        registered_at_ms: 1,
    };
    assert_eq!(
        json(&view),
        r#"{"name":"details-v1","namespace":"default","serviceAccount":"default","labels":{},"sidecar":true,"mode":"sidecar","last_seen_ms":2,"age_ms":1,"registered_at_ms":1}"#
    );
    let status = ProxyStatus {
        workload: "details-v1".to_owned(),
        mode: Mode::Sidecar,
        version: "7".to_owned(),
        latest: "8".to_owned(),
        status: SyncStatus::Stale,
        last_seen_ms: 5,
    };
    assert_eq!(
        json(&status),
        r#"{"workload":"details-v1","mode":"sidecar","version":"7","latest":"8","status":"STALE","last_seen_ms":5}"#
    );
    assert_eq!(json(&SyncStatus::Synced), r#""SYNCED""#);
}

#[test]
fn the_documented_fault_request_round_trips() {
    let request: FaultRequest = round_trip(
        r#"{"service": "ratings", "subset": "v1", "delay": {"fixed_delay": "7s", "percentage": 100.0},
            "abort": {"http_status": 500, "percentage": 100.0}, "headers": {"end-user": "jason"},
            "ttl_seconds": 60}"#,
    );
    assert_eq!(request.delay.unwrap().fixed_delay, "7s");
    // camelCase spellings are accepted too; unknown fields are refused by name.
    let camel: FaultRequest = serde_json::from_str(
        r#"{"service": "ratings", "delay": {"fixedDelay": "1s"}, "ttlSeconds": 5}"#,
    )
    .unwrap();
    assert_eq!(camel.ttl_seconds, Some(5));
    let unknown = serde_json::from_str::<FaultRequest>(r#"{"service": "x", "ttl": 5}"#)
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("unknown field `ttl`"), "{unknown}");
}

#[test]
fn a_created_lease_lists_its_fields_then_the_warnings() {
    let lease = LeaseView {
        id: "f-1".to_owned(),
        service: "ratings".to_owned(),
        namespace: "default".to_owned(),
        host: "ratings.default.svc.cluster.local".to_owned(),
        subset: Some("v1".to_owned()),
        delay: Some(DelayView {
            fixed_delay: "7s".to_owned(),
            percentage: 100.0,
            jitter: None,
            direction: Direction::Request,
        }),
        abort: Some(AbortView {
            http_status: 500,
            percentage: 50.0,
        }),
        bandwidth: None,
        reset: None,
        blackhole: None,
        slow_close: None,
        headers: BTreeMap::from([("end-user".to_owned(), "jason".to_owned())]),
        ttl_seconds: 60,
        created_at_ms: 1,
        expires_at_ms: 60_001,
        remaining_ms: 59_000,
    };
    let created = FaultCreated {
        lease: lease.clone(),
        warnings: vec!["no route".to_owned()],
    };
    let text = json(&created);
    assert_eq!(
        text,
        r#"{"id":"f-1","service":"ratings","namespace":"default","host":"ratings.default.svc.cluster.local","subset":"v1","delay":{"fixed_delay":"7s","percentage":100.0},"abort":{"http_status":500,"percentage":50.0},"headers":{"end-user":"jason"},"ttl_seconds":60,"created_at_ms":1,"expires_at_ms":60001,"remaining_ms":59000,"warnings":["no route"]}"#
    );
    assert_eq!(
        serde_json::from_str::<FaultCreated>(&text).unwrap(),
        created
    );
    // Without subset, delay or abort, the keys are absent rather than null.
    let bare = LeaseView {
        subset: None,
        delay: None,
        abort: None,
        ..lease
    };
    assert!(!json(&bare).contains("subset"));
    assert!(!json(&bare).contains("delay"));
}

#[test]
fn network_faults_list_with_their_defaults_filled_in() {
    let request: FaultRequest = round_trip(
        r#"{"service": "productpage", "delay": {"fixed_delay": "1s", "jitter": "200ms", "direction": "response"},
            "bandwidth": {"bytes_per_second": 2048}, "reset": {"after_bytes": 100},
            "blackhole": {"percentage": 10.0}, "slow_close": {"delay": "2s"}}"#,
    );
    assert_eq!(request.bandwidth.unwrap().bytes_per_second, 2048);
    assert_eq!(request.reset.unwrap().after_bytes, Some(100));
    assert_eq!(request.delay.unwrap().direction, Some(Direction::Response));
    let camel: FaultRequest = serde_json::from_str(
        r#"{"service": "x", "bandwidth": {"bytesPerSecond": 10}, "slowClose": {"delay": "1s"}}"#,
    )
    .unwrap();
    assert!(camel.slow_close.is_some());
    let typo = serde_json::from_str::<FaultRequest>(r#"{"service": "x", "reset": {"after": 5}}"#)
        .unwrap_err()
        .to_string();
    assert!(typo.contains("unknown field `after`"), "{typo}");
    let view = DelayView {
        fixed_delay: "1s".to_owned(),
        percentage: 100.0,
        jitter: Some("200ms".to_owned()),
        direction: Direction::Response,
    };
    assert_eq!(
        json(&view),
        r#"{"fixed_delay":"1s","percentage":100.0,"jitter":"200ms","direction":"response"}"#
    );
    let reset = ResetFault {
        after_bytes: Some(0),
        direction: Some(Direction::Response),
        percentage: Some(100.0),
    };
    assert_eq!(
        json(&reset),
        r#"{"after_bytes":0,"direction":"response","percentage":100.0}"#
    );
}

#[test]
fn acknowledgements_and_errors() {
    let applied = Applied {
        applied: vec!["VirtualService default/reviews".to_owned()],
        warnings: vec![],
        version: 3,
    };
    assert_eq!(
        json(&applied),
        r#"{"applied":["VirtualService default/reviews"],"warnings":[],"version":3}"#
    );
    let deleted = Deleted {
        deleted: vec![],
        missing: vec!["VirtualService default/x".to_owned()],
        version: 4,
    };
    assert_eq!(
        json(&deleted),
        r#"{"deleted":[],"missing":["VirtualService default/x"],"version":4}"#
    );
    let name = || "reviews-v2".to_owned();
    assert_eq!(
        json(&Registered { registered: name() }),
        r#"{"registered":"reviews-v2"}"#
    );
    assert_eq!(
        json(&Deregistered {
            deregistered: name()
        }),
        r#"{"deregistered":"reviews-v2"}"#
    );
    assert_eq!(
        json(&FaultDeleted {
            deleted: "f-1".to_owned()
        }),
        r#"{"deleted":"f-1"}"#
    );
    assert_eq!(
        json(&FaultsCleared {
            deleted: vec!["f-1".to_owned(), "f-2".to_owned()]
        }),
        r#"{"deleted":["f-1","f-2"]}"#
    );
    assert_eq!(
        json(&CaRoot {
            root: "PEM".to_owned()
        }),
        r#"{"root":"PEM"}"#
    );
    let plain = ApiError {
        error: "no such endpoint".to_owned(),
        errors: vec![],
    };
    assert_eq!(json(&plain), r#"{"error":"no such endpoint"}"#);
    let invalid: ApiError = round_trip(
        r#"{"error": "invalid configuration", "errors": ["a.yaml: document 1: VirtualService default/x: spec.http[0]: bad"]}"#,
    );
    assert_eq!(invalid.errors.len(), 1);
}

#[test]
fn certificates() {
    let request: CertificateRequest =
        round_trip(r#"{"workload": "reviews-v2", "csr": "PEM", "ttl_seconds": 86400}"#);
    assert_eq!(request.ttl_seconds, Some(86400));
    assert!(
        serde_json::from_str::<CertificateRequest>(r#"{"workload": "w", "csr": "c", "x": 1}"#)
            .is_err()
    );
    let issued = Issued {
        chain: vec!["LEAF".to_owned(), "ROOT".to_owned()],
        spiffe_id: "spiffe://cluster.local/ns/default/sa/bookinfo-reviews".to_owned(),
        expires_at_ms: 9,
    };
    assert_eq!(
        json(&issued),
        r#"{"chain":["LEAF","ROOT"],"spiffe_id":"spiffe://cluster.local/ns/default/sa/bookinfo-reviews","expires_at_ms":9}"#
    );
}

#[test]
fn proxy_configuration_and_views_keep_their_field_order() {
    let config = ProxyConfig {
        version: "1".to_owned(),
        table: RouteTable::default(),
        registry: Registry::default(),
        security: Default::default(),
    };
    assert_eq!(keys(&config), ["version", "table", "registry", "security"]);
    // An older control plane sent no `security`: it means none.
    let without: ProxyConfig = serde_json::from_str(
        r#"{"version": "1", "table": {"namespace": "default", "services": {}, "listeners": []}, "registry": {"services": []}}"#,
    )
    .unwrap();
    assert_eq!(without.security, Default::default());

    let description = ServiceDescription {
        host: "reviews.default.svc.cluster.local".to_owned(),
        routes: vec![],
        subsets: BTreeMap::new(),
        policy: None,
        endpoints: vec![],
        faults: vec![],
        authorization: vec![],
        peer_authentication: vec![],
        virtual_services: vec![],
        destination_rule: None,
        version: "1".to_owned(),
    };
    assert_eq!(
        keys(&description),
        [
            "host",
            "routes",
            "subsets",
            "policy",
            "endpoints",
            "faults",
            "authorization",
            "peer_authentication",
            "virtual_services",
            "destination_rule",
            "version"
        ]
    );
    let overview = Overview {
        version: "1".to_owned(),
        resources: 2,
        services: vec![ServiceOverview {
            host: "reviews.default.svc.cluster.local".to_owned(),
            virtual_services: vec!["default/reviews".to_owned()],
            destination_rule: None,
            routes: vec![RouteSummary {
                name: None,
                matches: "any".to_owned(),
                to: "reviews v1 100%".to_owned(),
                timeout: None,
                fault: None,
                expires_at_ms: None,
            }],
        }],
        errors: vec![ErrorRecord {
            at_ms: 1,
            change: "apply x.yaml".to_owned(),
            error: "invalid".to_owned(),
            errors: vec![],
        }],
        changes: vec![ChangeRecord {
            at_ms: 2,
            version: "3".to_owned(),
            change: "fault f-1 added on ratings".to_owned(),
        }],
    };
    assert_eq!(
        json(&overview),
        r#"{"version":"1","resources":2,"services":[{"host":"reviews.default.svc.cluster.local","virtual_services":["default/reviews"],"destination_rule":null,"routes":[{"name":null,"match":"any","to":"reviews v1 100%","timeout":null,"fault":null,"expires_at_ms":null}]}],"errors":[{"at_ms":1,"change":"apply x.yaml","error":"invalid","errors":[]}],"changes":[{"at_ms":2,"version":"3","change":"fault f-1 added on ratings"}]}"#
    );
}

#[test]
fn prometheus_targets_are_in_the_http_sd_format() {
    // https://prometheus.io/docs/prometheus/latest/http_sd/: a list of
    // {"targets": [...], "labels": {...}}.
    let groups: Vec<TargetGroup> = round_trip(
        r#"[{"targets": ["127.0.0.1:15100"], "labels": {"__metrics_path__": "/stats/prometheus",
            "app": "reviews", "mesh_mode": "sidecar", "namespace": "default", "version": "v2",
            "workload": "reviews-v2"}}]"#,
    );
    assert_eq!(groups[0].labels["__metrics_path__"], "/stats/prometheus");
}

#[test]
fn the_graph_and_the_admin_address_are_pinned() {
    let graph: Graph = round_trip(
        r#"{"at_ms": 1796310419894, "window_ms": 5000,
            "nodes": [{"workload": "reviews-v3", "app": "reviews", "version": "v3", "mode": "sidecar", "rps": 3.2, "registered": true}],
            "edges": [{"source": "productpage-v1", "service": "reviews", "destination": "reviews-v3", "version": "v3",
                       "rps": 3.2, "error_rate": 0.0, "p99_ms": 24.5, "share": 1.0, "mtls": true, "health": "healthy"},
                      {"source": "productpage-v1", "service": "reviews", "destination": "reviews-v1", "version": "v1",
                       "rps": 0.0, "error_rate": 0.0, "p99_ms": null, "share": 0.0, "mtls": null, "health": "idle"}],
            "unreachable": [{"workload": "ratings-v1", "error": "127.0.0.1:15000: no answer within 800ms"}]}"#,
    );
    assert_eq!(graph.edges[0].health, Health::Healthy);
    assert_eq!(Health::of(0.0, 0.0), Health::Idle);
    assert_eq!(Health::of(1.0, 0.009), Health::Healthy);
    assert_eq!(Health::of(1.0, 0.01), Health::Degraded);
    assert_eq!(Health::of(1.0, 0.2), Health::Failing);
    // Older overviews without changes still decode.
    let old: Overview =
        serde_json::from_str(r#"{"version": "1", "resources": 0, "services": [], "errors": []}"#)
            .unwrap();
    assert!(old.changes.is_empty());
    let spec: WorkloadSpec = round_trip(
        r#"{"name": "reviews-v2", "namespace": "default", "service": "reviews", "serviceAccount": "bookinfo-reviews",
            "labels": {}, "address": "127.0.0.1:15106", "sidecar": true, "mode": "sidecar", "admin": "127.0.0.1:15103"}"#,
    );
    assert_eq!(spec.admin, Some("127.0.0.1:15103".parse().unwrap()));
}

#[test]
fn the_documented_experiment_report_round_trips_and_views_add_two_fields() {
    let report: ExperimentReport = round_trip(
        r#"{"id": "run-1764849600000-4242", "title": "The product page survives a details outage",
            "phase": "method", "status": "running", "hypothesis": "met", "deviated": false,
            "started_at_ms": 1764849600000, "elapsed_s": 12.5,
            "faults": [{"id": "f-1", "description": "abort 503 100% on details", "start_s": 2.1,
                        "end_s": 62.1, "removed": false}]}"#,
    );
    assert_eq!(report.faults[0].id, "f-1");
    let view = ExperimentView {
        report,
        updated_at_ms: 1764849612500,
        stale: false,
    };
    assert_eq!(
        keys(&view),
        [
            "id",
            "title",
            "phase",
            "status",
            "hypothesis",
            "deviated",
            "started_at_ms",
            "elapsed_s",
            "faults",
            "updated_at_ms",
            "stale"
        ]
    );
    assert_eq!(
        json(&ExperimentRecorded {
            recorded: "run-1".into()
        }),
        r#"{"recorded":"run-1"}"#
    );
}
