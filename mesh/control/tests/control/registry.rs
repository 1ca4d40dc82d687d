//! Registry, long polls and proxy-status.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::time::Instant;

use crate::support::start;

fn endpoints<'a>(config: &'a Value, service: &str) -> &'a Vec<Value> {
    config["registry"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == service)
        .unwrap_or_else(|| panic!("{service} missing in {config}"))["endpoints"]
        .as_array()
        .unwrap()
}

#[tokio::test]
async fn productpage_gets_both_reviews_endpoints_with_labels() {
    let server = start().await;
    server.apply("destination-rule-all.yaml").await;
    server
        .register("productpage-v1", "productpage", "v1", 15106)
        .await;
    server.register("reviews-v1", "reviews", "v1", 15206).await;
    server.register("reviews-v2", "reviews", "v2", 15306).await;

    let (status, config) = server
        .get("/api/v1/proxy-config?workload=productpage-v1")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(config["version"], server.version().to_string());
    let reviews = endpoints(&config, "reviews");
    assert_eq!(reviews.len(), 2);
    assert_eq!(reviews[0]["address"], "127.0.0.1:15206");
    assert_eq!(reviews[0]["labels"]["version"], "v1");
    assert_eq!(reviews[0]["workload"], "reviews-v1");
    assert_eq!(reviews[0]["sidecar"], true);
    assert_eq!(reviews[1]["address"], "127.0.0.1:15306");
    assert_eq!(reviews[1]["labels"]["version"], "v2");
    // The routing table is the compiled one for this workload, and parses back.
    let table: mesh_api::RouteTable = serde_json::from_value(config["table"].clone()).unwrap();
    let service = &table.services["reviews.default.svc.cluster.local"];
    assert_eq!(service.subsets["v2"].labels["version"], "v2");
    let registry: mesh_api::Registry = serde_json::from_value(config["registry"].clone()).unwrap();
    let names: Vec<&str> = registry.services.iter().map(|s| s.name.as_str()).collect();
    // The services, then the per-version ones Gateway API routes send to.
    assert_eq!(
        names,
        [
            "productpage",
            "reviews",
            "productpage-v1",
            "reviews-v1",
            "reviews-v2"
        ]
    );
    assert_eq!(
        endpoints(&config, "reviews-v2")[0]["address"],
        "127.0.0.1:15306"
    );

    let (status, list) = server.get("/api/v1/workloads").await;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[1]["serviceAccount"], "bookinfo-reviews");
    assert!(list[1]["last_seen_ms"].as_u64().unwrap() > 0);

    // Going away removes the endpoint.
    let (status, body) = server.delete("/api/v1/workloads/reviews-v1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["deregistered"], "reviews-v1");
    let (_, config) = server
        .get("/api/v1/proxy-config?workload=productpage-v1")
        .await;
    assert_eq!(endpoints(&config, "reviews").len(), 1);
    let (status, _) = server.delete("/api/v1/workloads/reviews-v1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_registrations_and_unknown_workloads_are_refused() {
    let server = start().await;
    let (status, body) = server.post("/api/v1/workloads", "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid workload:")
    );
    let (status, body) = server
        .post_json(
            "/api/v1/workloads",
            &serde_json::json!({"name": "r", "address": "nowhere"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("address"),
        "{body}"
    );
    let (status, body) = server
        .post_json("/api/v1/workloads", &serde_json::json!({"name": "Not OK"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().starts_with("name:"));

    let (status, body) = server.get("/api/v1/proxy-config?workload=ghost").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("ghost"));
    let (status, _) = server.get("/api/v1/proxy-config").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = server
        .get("/api/v1/proxy-config?workload=x&wait=soon")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(start_paused = true)]
async fn a_workload_that_stops_polling_expires_after_15_seconds() {
    let server = start().await;
    server.register("reviews-v1", "reviews", "v1", 15206).await;
    let version = server.version();
    tokio::time::sleep(Duration::from_secs(13)).await;
    let (_, list) = server.get("/api/v1/workloads").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // A poll is a heartbeat.
    let (status, _) = server.get("/api/v1/proxy-config?workload=reviews-v1").await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(13)).await;
    let (_, list) = server.get("/api/v1/workloads").await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "expired despite a recent poll"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, list) = server.get("/api/v1/workloads").await;
    assert!(list.as_array().unwrap().is_empty(), "{list}");
    assert_eq!(server.version(), version + 1);
}

#[tokio::test(start_paused = true)]
async fn long_polls_answer_at_once_wait_for_changes_and_time_out() {
    let server = start().await;
    server.register("reviews-v2", "reviews", "v2", 15306).await;
    let current = server.version().to_string();

    // No version, or an old one: at once.
    let t0 = Instant::now();
    let (_, config) = server.get("/api/v1/proxy-config?workload=reviews-v2").await;
    assert_eq!(config["version"], current);
    let (_, config) = server
        .get("/api/v1/proxy-config?workload=reviews-v2&version=0")
        .await;
    assert_eq!(config["version"], current);
    assert!(t0.elapsed() < Duration::from_secs(1));

    // Up to date: waits for `wait`, then answers with the same version.
    let t0 = Instant::now();
    let (_, config) = server
        .get(&format!(
            "/api/v1/proxy-config?workload=reviews-v2&version={current}&wait=5"
        ))
        .await;
    assert_eq!(config["version"], current);
    assert!(t0.elapsed() >= Duration::from_secs(5), "{:?}", t0.elapsed());

    // A change during the wait answers early with the new version.
    let url = format!(
        "{}/api/v1/proxy-config?workload=reviews-v2&version={current}&wait=30",
        server.base
    );
    let t0 = Instant::now();
    let poll = tokio::spawn(async move {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let response = client.get(url).send().await.unwrap();
        (
            response.status(),
            response.json::<Value>().await.unwrap(),
            t0.elapsed(),
        )
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!poll.is_finished());
    server.apply("virtual-service-all-v1.yaml").await;
    let (status, config, waited) = poll.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_ne!(config["version"], current);
    assert_eq!(config["version"], server.version().to_string());
    assert!(
        config["table"]["services"]["ratings.default.svc.cluster.local"].is_object(),
        "new table expected"
    );
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_secs(30));
}

#[tokio::test]
async fn proxy_status_shows_synced_and_stale() {
    let server = start().await;
    server.register("reviews-v1", "reviews", "v1", 15206).await;
    server.register("ratings-v1", "ratings", "v1", 15406).await;
    let (_, status) = server.get("/api/v1/proxy-status").await;
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "STALE" && s["version"] == "")
    );

    let current = server.version().to_string();
    for workload in ["reviews-v1", "ratings-v1"] {
        let (_, config) = server
            .get(&format!(
                "/api/v1/proxy-config?workload={workload}&version=0"
            ))
            .await;
        assert_eq!(config["version"], current);
    }
    // Both polled last with version 0: stale.
    let (_, status) = server.get("/api/v1/proxy-status").await;
    for s in status.as_array().unwrap() {
        assert_eq!(s["status"], "STALE", "{s}");
        assert_eq!(s["version"], "0");
        assert_eq!(s["latest"], current);
    }
    // reviews-v1 acks the current version (the poll waits; a short wait returns).
    let (_, _) = server
        .get(&format!(
            "/api/v1/proxy-config?workload=reviews-v1&version={current}&wait=0"
        ))
        .await;
    let (_, status) = server.get("/api/v1/proxy-status").await;
    let by_name = |n: &str| {
        status
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["workload"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("reviews-v1")["status"], "SYNCED");
    assert_eq!(by_name("reviews-v1")["mode"], "sidecar");
    assert_eq!(by_name("ratings-v1")["status"], "STALE");
    // A change makes everyone stale until they poll again.
    server.apply("virtual-service-all-v1.yaml").await;
    let (_, status) = server.get("/api/v1/proxy-status").await;
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "STALE")
    );
}
