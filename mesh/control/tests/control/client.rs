//! The typed client (`mesh-client`) against the real API: every call decodes the answer
//! the control plane sends, so server and client agree on the contract end to end.

use std::time::Duration;

use mesh_api::wire::{
    DelayRequest, ExperimentReport, FaultRequest, Mode, SyncStatus, WorkloadSpec,
};
use mesh_client::{ClientError, ControlClient};
use mesh_identity::{Identity, SpiffeId};

use crate::support::{shipped, start};

fn workload(name: &str, service: &str, port: u16) -> WorkloadSpec {
    serde_json::from_value(serde_json::json!({
        "name": name, "service": service, "serviceAccount": format!("bookinfo-{service}"),
        "labels": {"app": service, "version": "v1"}, "address": format!("127.0.0.1:{port}"),
    }))
    .unwrap()
}

#[tokio::test]
async fn every_call_decodes_the_real_answer() {
    let server = start().await;
    let client = ControlClient::new(&server.base).unwrap();

    // Configuration.
    let applied = client
        .apply(
            "destination-rule-all.yaml",
            shipped("destination-rule-all.yaml"),
        )
        .await
        .unwrap();
    assert!(
        applied
            .applied
            .contains(&"DestinationRule default/reviews".to_owned())
    );
    let routed = client
        .apply(
            "virtual-service-reviews-test-v2.yaml",
            shipped("virtual-service-reviews-test-v2.yaml"),
        )
        .await
        .unwrap();
    assert_eq!(routed.version, server.version());
    let resources = client.resources(Some("VirtualService")).await.unwrap();
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].name, "reviews");
    assert!(client.resources(None).await.unwrap().len() > 1);

    // A rejected change: the precise errors come through, and the record stays.
    let rejected = client
        .apply(
            "broken.yaml",
            "kind: VirtualService\nmetadata: {name: x}\nspec: {http: [{route: []}]}\n".to_owned(),
        )
        .await
        .unwrap_err();
    let ClientError::Api { status, errors, .. } = &rejected else {
        panic!("{rejected}");
    };
    assert_eq!(*status, 400);
    assert!(!errors.is_empty(), "{rejected}");
    assert!(!client.config_errors().await.unwrap().is_empty());

    // Registry, watch API, proxy status, certificates.
    let registered = client
        .register(&workload("reviews-v2", "reviews", 15106))
        .await
        .unwrap();
    assert_eq!(registered.registered, "reviews-v2");
    let listed = client.workloads().await.unwrap();
    assert_eq!(listed[0].spec.service_account, "bookinfo-reviews");
    assert_eq!(listed[0].spec.mode, Mode::Sidecar);
    let config = client
        .proxy_config("reviews-v2", None, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(config.version, server.version().to_string());
    assert!(
        config
            .registry
            .service("reviews.default.svc.cluster.local")
            .is_some()
    );
    // The registration named no admin listener: nothing to scrape yet.
    assert!(client.prometheus_targets().await.unwrap().is_empty());
    let mut scraped = workload("reviews-v2", "reviews", 15106);
    scraped.admin = Some("127.0.0.1:15100".parse().unwrap());
    client.register(&scraped).await.unwrap();
    let targets = client.prometheus_targets().await.unwrap();
    assert_eq!(targets[0].targets, ["127.0.0.1:15100"]);
    assert_eq!(targets[0].labels["workload"], "reviews-v2");
    let status = client.proxy_status().await.unwrap();
    assert_eq!(status[0].workload, "reviews-v2");
    assert_eq!(
        status[0].status,
        SyncStatus::Stale,
        "no version acked yet: {status:?}"
    );
    let unknown = client
        .proxy_config("nobody", None, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(unknown.is_not_found(), "{unknown}");

    let root = client.ca_root().await.unwrap();
    assert!(root.root.contains("BEGIN CERTIFICATE"));
    let id = SpiffeId::new("cluster.local", "default", "ignored").unwrap();
    let (key, csr) = Identity::csr(&id).unwrap();
    let issued = client
        .certificate(&mesh_api::wire::CertificateRequest {
            workload: "reviews-v2".to_owned(),
            csr,
            ttl_seconds: Some(600),
        })
        .await
        .unwrap();
    assert_eq!(
        issued.spiffe_id,
        "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    );
    Identity::from_signed(key, &issued.chain, &root.root).unwrap();

    // Faults.
    let created = client
        .add_fault(&FaultRequest {
            service: "reviews".to_owned(),
            delay: Some(DelayRequest {
                fixed_delay: "2s".to_owned(),
                percentage: None,
                jitter: None,
                direction: None,
            }),
            ttl_seconds: Some(60),
            ..FaultRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(created.lease.delay.as_ref().unwrap().percentage, 100.0);
    let faults = client.faults().await.unwrap();
    assert_eq!(faults[0].id, created.lease.id);

    // A chaos run's progress.
    let report = ExperimentReport {
        id: "run-1".to_owned(),
        title: "Reviews slow".to_owned(),
        phase: "method".to_owned(),
        status: "running".to_owned(),
        hypothesis: "met".to_owned(),
        deviated: false,
        started_at_ms: 1,
        elapsed_s: 2.0,
        faults: Vec::new(),
    };
    assert_eq!(
        client.report_experiment(&report).await.unwrap().recorded,
        "run-1"
    );
    let runs = client.experiments().await.unwrap();
    assert_eq!(runs[0].report, report);
    assert!(!runs[0].stale);

    // Views.
    let described = client.describe("reviews", "default").await.unwrap();
    assert_eq!(described.host, "reviews.default.svc.cluster.local");
    assert_eq!(described.virtual_services, ["default/reviews"]);
    assert_eq!(described.faults.len(), 1);
    assert_eq!(described.endpoints.len(), 1);
    assert!(described.subsets.contains_key("v2"));
    let missing = client.describe("reveiws", "default").await.unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    let overview = client.overview().await.unwrap();
    assert!(overview.services.iter().any(|s| s.host == described.host));

    // Removing things.
    assert_eq!(
        client
            .remove_fault(&created.lease.id)
            .await
            .unwrap()
            .deleted,
        created.lease.id
    );
    assert!(
        client
            .remove_fault(&created.lease.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(client.clear_faults().await.unwrap().deleted.is_empty());
    let deleted = client
        .delete_resources(
            "virtual-service-reviews-test-v2.yaml",
            shipped("virtual-service-reviews-test-v2.yaml"),
        )
        .await
        .unwrap();
    assert_eq!(deleted.deleted, ["VirtualService default/reviews"]);
    assert_eq!(
        client.deregister("reviews-v2").await.unwrap().deregistered,
        "reviews-v2"
    );
    assert!(
        client
            .deregister("reviews-v2")
            .await
            .unwrap_err()
            .is_not_found()
    );
}

/// A proxy's admin listener whose counters grow by 10 requests per scrape.
async fn fake_admin() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut served = 0u32;
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
            served += 1;
            let n = served * 10;
            let labels = "reporter=\"source\",source_workload=\"productpage-v1\",destination_service_name=\"reviews\",destination_workload=\"reviews-v1\",destination_version=\"v1\",response_code=\"200\"";
            let body = format!(
                "istio_requests_total{{{labels}}} {n}\nistio_request_duration_milliseconds_bucket{{{labels},le=\"10.0\"}} {n}\nistio_request_duration_milliseconds_bucket{{{labels},le=\"+Inf\"}} {n}\n"
            );
            let answer = format!(
                "HTTP/1.0 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(answer.as_bytes()).await;
        }
    });
    addr
}

#[tokio::test]
async fn the_graph_shows_rates_read_from_the_proxies_metrics() {
    let server = start().await;
    let client = ControlClient::new(&server.base).unwrap();
    let mut spec = workload("productpage-v1", "productpage", 9080);
    spec.admin = Some(fake_admin().await);
    client.register(&spec).await.unwrap();
    client
        .apply(
            "virtual-service-reviews-v3.yaml",
            shipped("virtual-service-reviews-v3.yaml"),
        )
        .await
        .unwrap();

    // The first request starts the scraping; rates need two scrapes a second apart.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let edge = loop {
        let graph = client.graph().await.unwrap();
        assert!(graph.nodes.iter().any(|n| n.workload == "productpage-v1"));
        if let Some(edge) = graph.edges.iter().find(|e| e.rps > 0.0) {
            break edge.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no rate after 15 s: {graph:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        (edge.source.as_str(), edge.destination.as_str()),
        ("productpage-v1", "reviews-v1")
    );
    assert_eq!(edge.share, 1.0);
    assert_eq!(edge.error_rate, 0.0);
    assert!(
        edge.p99_ms.is_some_and(|p| p > 0.0 && p <= 10.0),
        "{edge:?}"
    );
    // The change just applied is among the recent ones.
    let overview = client.overview().await.unwrap();
    assert!(
        overview.changes.iter().any(|c| c
            .change
            .starts_with("applied virtual-service-reviews-v3.yaml")),
        "{:?}",
        overview.changes
    );
}
