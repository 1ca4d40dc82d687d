//! A restart of the control plane is invisible to traffic: proxies configured by the
//! previous run keep their configuration until the workloads have registered again, and
//! a workload that did not come back is gone from what they get next.

use std::time::Duration;

use mesh_control::Settings;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::time::Instant;

use crate::support::{Server, start_with};

fn grace(grace: Duration) -> Settings {
    Settings {
        registration_grace: grace,
        ..Settings::default()
    }
}

/// The addresses of `service`'s endpoints in a pushed configuration (none when absent).
fn endpoints(config: &Value, service: &str) -> Vec<String> {
    config["registry"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == service)
        .flat_map(|s| s["endpoints"].as_array().unwrap().iter())
        .map(|e| e["address"].as_str().unwrap().to_owned())
        .collect()
}

/// The first run: productpage, two reviews and ratings registered; productpage holds
/// the configuration this run handed out. Returns its version.
async fn first_run() -> String {
    let first = start_with(grace(Duration::from_secs(5))).await;
    for (name, service, version, port) in [
        ("productpage-v1", "productpage", "v1", 15106),
        ("reviews-v1", "reviews", "v1", 15206),
        ("reviews-v2", "reviews", "v2", 15306),
        ("ratings-v1", "ratings", "v1", 15406),
    ] {
        first.register(name, service, version, port).await;
    }
    let (status, config) = first
        .get("/api/v1/proxy-config?workload=productpage-v1")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(endpoints(&config, "reviews").len(), 2);
    // Versions start at the start time in ms: a real restart takes far longer than
    // this, and the next run's versions must start above this run's.
    std::thread::sleep(Duration::from_millis(20));
    config["version"].as_str().unwrap().to_owned()
}

/// productpage's proxy polls with the version it holds, as its sync loop does.
fn poll_in_background(
    server: &Server,
    held: &str,
) -> tokio::task::JoinHandle<(StatusCode, Value, Duration)> {
    let url = format!(
        "{}/api/v1/proxy-config?workload=productpage-v1&version={held}&wait=10",
        server.base
    );
    let t0 = Instant::now();
    tokio::spawn(async move {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let response = client.get(url).send().await.unwrap();
        let status = response.status();
        (
            status,
            response.json::<Value>().await.unwrap(),
            t0.elapsed(),
        )
    })
}

#[tokio::test(start_paused = true)]
async fn proxies_of_the_previous_run_wait_for_the_registry_to_refill() {
    let held = first_run().await;
    let second = start_with(grace(Duration::from_secs(5))).await;

    // productpage's proxy is back first; its next configuration waits for the others.
    second
        .register("productpage-v1", "productpage", "v1", 15106)
        .await;
    let poll = poll_in_background(&second, &held);
    tokio::time::sleep(Duration::from_secs(1)).await;
    second.register("reviews-v1", "reviews", "v1", 15206).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    second.register("reviews-v2", "reviews", "v2", 15306).await;
    assert!(!poll.is_finished(), "answered before the grace ended");

    // A proxy starting now holds nothing: it is answered at once, with what is known.
    let t0 = Instant::now();
    second.register("details-v1", "details", "v1", 15506).await;
    let (status, fresh) = second.get("/api/v1/proxy-config?workload=details-v1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(endpoints(&fresh, "reviews").len(), 2);
    assert!(t0.elapsed() < Duration::from_secs(1));

    // At the end of the grace: the refilled registry, without ratings, which never
    // came back (its workload really went away).
    let (status, config, waited) = poll.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    assert_eq!(config["version"], second.version().to_string());
    assert_eq!(
        endpoints(&config, "reviews"),
        ["127.0.0.1:15206", "127.0.0.1:15306"]
    );
    assert!(endpoints(&config, "ratings").is_empty(), "{config}");

    // After the grace, a configuration of the previous run is replaced at once.
    let t0 = Instant::now();
    let (status, config) = second
        .get(&format!(
            "/api/v1/proxy-config?workload=productpage-v1&version={held}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(config["version"], second.version().to_string());
    assert!(t0.elapsed() < Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn the_hold_ends_with_the_poll_wait_and_needs_a_grace() {
    let held = first_run().await;
    let second = start_with(grace(Duration::from_secs(5))).await;
    second
        .register("productpage-v1", "productpage", "v1", 15106)
        .await;
    // A shorter wait than the grace answers when the wait is over.
    let t0 = Instant::now();
    let (status, _) = second
        .get(&format!(
            "/api/v1/proxy-config?workload=productpage-v1&version={held}&wait=2"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    // Without a grace the proxy is answered at once, with a registry still missing the
    // workloads not back yet: exactly what the grace is there to avoid.
    let held = first_run().await;
    let bare = start_with(grace(Duration::ZERO)).await;
    bare.register("productpage-v1", "productpage", "v1", 15106)
        .await;
    let t0 = Instant::now();
    let (status, config) = bare
        .get(&format!(
            "/api/v1/proxy-config?workload=productpage-v1&version={held}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert!(endpoints(&config, "reviews").is_empty(), "{config}");
}
