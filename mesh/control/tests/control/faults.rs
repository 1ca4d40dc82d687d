//! Fault leases: creation, injection into compiled tables, expiry, deletion.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::start;

fn ratings_routes(config: &Value) -> Vec<Value> {
    config["table"]["services"]["ratings.default.svc.cluster.local"]["routes"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(start_paused = true)]
async fn a_lease_injects_a_fault_route_first_and_ends_by_itself() {
    let server = start().await;
    let t0 = tokio::time::Instant::now();
    server.apply("virtual-service-all-v1.yaml").await;
    server.apply("destination-rule-all.yaml").await;
    server.register("reviews-v2", "reviews", "v2", 15306).await;
    server.register("ratings-v1", "ratings", "v1", 15406).await;
    let version = server.version();

    let (status, lease) = server
        .post_json(
            "/api/v1/faults",
            &json!({"service": "ratings", "subset": "v1",
                "delay": {"fixed_delay": "7s", "percentage": 100},
                "headers": {"end-user": "jason"}, "ttl_seconds": 60}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lease}");
    assert_eq!(lease["id"], "f-1");
    assert!(lease["warnings"].as_array().unwrap().is_empty(), "{lease}");
    let expires_at_ms = lease["expires_at_ms"].as_u64().unwrap();
    assert_eq!(server.version(), version + 1);

    let (_, config) = server.get("/api/v1/proxy-config?workload=reviews-v2").await;
    let routes = ratings_routes(&config);
    assert_eq!(routes.len(), 2, "{routes:?}");
    let fault = &routes[0];
    assert_eq!(fault["expires_at_ms"], expires_at_ms);
    assert_eq!(fault["matches"][0]["headers"]["end-user"]["exact"], "jason");
    assert_eq!(fault["fault"]["delay"]["fixed_delay"]["secs"], 7);
    assert_eq!(fault["fault"]["delay"]["percent"], 100.0);
    assert!(routes[1]["fault"].is_null());
    assert!(routes[1]["expires_at_ms"].is_null());
    // The proxy's own type reads it back.
    let table: mesh_api::RouteTable = serde_json::from_value(config["table"].clone()).unwrap();
    let compiled = &table.services["ratings.default.svc.cluster.local"].routes[0];
    assert_eq!(compiled.expires_at_ms, Some(expires_at_ms));

    let (_, list) = server.get("/api/v1/faults").await;
    let listed = &list[0];
    assert_eq!(listed["id"], "f-1");
    assert_eq!(listed["service"], "ratings");
    assert_eq!(listed["delay"]["fixed_delay"], "7s");
    assert_eq!(listed["headers"]["end-user"], "jason");
    let remaining = listed["remaining_ms"].as_u64().unwrap();
    assert!(remaining > 59_000 && remaining <= 60_000, "{remaining}");

    // Proxies keep polling meanwhile (heartbeats), so only the lease changes things.
    let heartbeat = || async {
        for workload in ["reviews-v2", "ratings-v1"] {
            let (status, _) = server
                .get(&format!(
                    "/api/v1/proxy-config?workload={workload}&version=0"
                ))
                .await;
            assert_eq!(status, StatusCode::OK, "{workload} at {:?}", t0.elapsed());
        }
    };
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        heartbeat().await;
    }
    let (_, list) = server.get("/api/v1/faults").await;
    let remaining = list[0]["remaining_ms"].as_u64().unwrap();
    assert!(remaining <= 30_000, "{remaining}");

    let (_, describe) = server.get("/api/v1/describe/ratings").await;
    assert_eq!(describe["faults"][0]["id"], "f-1");

    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        heartbeat().await;
    }
    tokio::time::sleep(Duration::from_secs(9)).await;
    let (_, list) = server.get("/api/v1/faults").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "ended early");
    heartbeat().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, list) = server.get("/api/v1/faults").await;
    assert!(list.as_array().unwrap().is_empty(), "{list}");
    assert_eq!(server.version(), version + 2);
    let (_, config) = server.get("/api/v1/proxy-config?workload=reviews-v2").await;
    let routes = ratings_routes(&config);
    assert_eq!(routes.len(), 1);
    assert!(routes[0]["fault"].is_null());
}

#[tokio::test]
async fn leases_are_deleted_one_by_one_or_all_at_once() {
    let server = start().await;
    let abort = json!({"service": "details", "abort": {"http_status": 500}, "ttl_seconds": 600});
    for _ in 0..3 {
        let (status, _) = server.post_json("/api/v1/faults", &abort).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, body) = server.delete("/api/v1/faults/f-2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["deleted"], "f-2");
    let (status, body) = server.delete("/api/v1/faults/f-2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("f-2"));
    let version = server.version();
    let (status, body) = server.delete("/api/v1/faults").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["deleted"], json!(["f-1", "f-3"]));
    assert_eq!(server.version(), version + 1);
    let (_, list) = server.get("/api/v1/faults").await;
    assert!(list.as_array().unwrap().is_empty());
    let (_, body) = server.delete("/api/v1/faults").await;
    assert_eq!(body["deleted"], json!([]));
}

#[tokio::test]
async fn bad_fault_bodies_name_the_field() {
    let server = start().await;
    let version = server.version();
    let cases = [
        (
            json!({"service": "ratings", "ttl_seconds": 60}),
            "invalid fault: delay:",
        ),
        (
            json!({"service": "ratings", "abort": {"http_status": 500}, "ttl_seconds": 0}),
            "invalid fault: ttl_seconds:",
        ),
        (
            json!({"service": "ratings", "abort": {"http_status": 500}}),
            "invalid fault: ttl_seconds:",
        ),
        (
            json!({"service": "ratings", "delay": {"fixed_delay": "1s", "percentage": 150}, "ttl_seconds": 5}),
            "invalid fault: delay.percentage: 150 is not between 0 and 100",
        ),
        (
            json!({"service": "ratings", "abort": {"http_status": 500, "percentage": -1}, "ttl_seconds": 5}),
            "invalid fault: abort.percentage:",
        ),
        (
            json!({"service": "ratings", "delay": {"fixed_delay": "forever"}, "ttl_seconds": 5}),
            "invalid fault: delay.fixed_delay:",
        ),
        (
            json!({"service": "ratings", "abort": {"http_status": 500}, "ttl_seconds": 5, "colour": "red"}),
            "unknown field `colour`",
        ),
        (
            json!({"abort": {"http_status": 500}, "ttl_seconds": 5}),
            "missing field `service`",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = server.post_json("/api/v1/faults", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(expected),
            "{error:?} should contain {expected:?}"
        );
    }
    assert_eq!(server.version(), version);

    // An unknown service is accepted, with a warning.
    let (status, lease) = server
        .post_json(
            "/api/v1/faults",
            &json!({"service": "nowhere", "abort": {"http_status": 503}, "ttl_seconds": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let warning = lease["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("nowhere.default.svc.cluster.local"),
        "{warning}"
    );
}

#[tokio::test]
async fn experiment_reports_are_kept_listed_and_refused_by_field() {
    let server = start().await;
    let report = |phase: &str, status: &str| {
        json!({"id": "run-1", "title": "Details outage", "phase": phase, "status": status,
               "hypothesis": "met", "started_at_ms": 1, "elapsed_s": 3.0,
               "faults": [{"id": "f-1", "description": "abort 503 100% on details",
                           "start_s": 1.0, "end_s": 61.0}]})
    };
    let (status, body) = server
        .post_json("/api/v1/experiments", &report("method", "running"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recorded"], "run-1");
    let (_, list) = server.get("/api/v1/experiments").await;
    assert_eq!(list[0]["phase"], "method");
    assert_eq!(list[0]["stale"], false);
    assert_eq!(list[0]["faults"][0]["removed"], false);

    for (bad, field) in [
        (report("warmup", "running"), "phase"),
        (report("done", "running"), "status"),
        (json!({"id": "run-1"}), "missing field"),
    ] {
        let (status, body) = server.post_json("/api/v1/experiments", &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"].as_str().unwrap().contains(field), "{body}");
    }
    // Nothing of a refused report was kept.
    let (_, list) = server.get("/api/v1/experiments").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["phase"], "method");
}
