//! Traces with nothing installed: under `meshctl up` every proxy exports its spans to
//! the control plane's embedded store, and one product page asked for with a sampled
//! `traceparent` is one trace there, with the gateway's spans and each sidecar's.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use tokio::time::{Instant, sleep};

use super::support::*;

const TRACE: &str = "5e1f0c0ffee0000000000000000b00c5";
const PARENT: &str = "0123456789abcdef";

/// The trace's spans once `n` of them are in the store.
async fn stored_trace(up: &Up, n: usize) -> Vec<Value> {
    let url = format!("{}/api/traces/{TRACE}", up.control_url());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    while Instant::now() < deadline {
        let resp = http().get(&url).send().await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status == 200 {
            let spans = body["spans"].as_array().cloned().unwrap_or_default();
            if spans.len() >= n {
                return spans;
            }
        }
        last = format!("{status}: {body}");
        sleep(Duration::from_millis(200)).await;
    }
    panic!("the store never had {n} spans of the trace; last: {last}");
}

fn one<'a>(spans: &'a [Value], service: &str, kind: &str) -> Vec<&'a Value> {
    spans
        .iter()
        .filter(|s| s["service"] == service && s["kind"] == kind)
        .collect()
}

#[tokio::test]
async fn a_sampled_page_is_one_trace_in_the_embedded_store() {
    let mut up = Up::start("trace", 29600, 29680, 29690, &[]);
    up.ready().await;
    // Every reviews call on v3, so every page calls ratings.
    for file in [
        "destination-rule-all.yaml",
        "virtual-service-reviews-v3.yaml",
    ] {
        let yaml = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../config")
                .join(file),
        )
        .unwrap();
        let resp = http()
            .post(format!("{}/api/v1/apply?file={file}", up.control_url()))
            .header("content-type", "application/yaml")
            .body(yaml)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "applying {file}");
    }
    page_with(&up.page_url(), "text-red-500", Duration::from_secs(10)).await;

    let resp = http()
        .get(up.page_url())
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("text-red-500"));

    // Gateway: server + upstream; productpage: server + 2 clients; details: server;
    // reviews: server + client; ratings: server.
    let spans = stored_trace(&up, 9).await;
    let services: BTreeSet<&str> = spans.iter().filter_map(|s| s["service"].as_str()).collect();
    assert_eq!(
        services,
        BTreeSet::from([
            "details.default",
            "istio-ingressgateway.istio-system",
            "productpage.default",
            "ratings.default",
            "reviews.default"
        ]),
        "{spans:#?}"
    );
    assert_eq!(spans.len(), 9, "{spans:#?}");
    let gw_server = one(&spans, "istio-ingressgateway.istio-system", "server");
    let gw_client = one(&spans, "istio-ingressgateway.istio-system", "client");
    assert_eq!((gw_server.len(), gw_client.len()), (1, 1), "{spans:#?}");
    assert_eq!(gw_server[0]["parentSpanId"], PARENT);
    assert_eq!(gw_client[0]["parentSpanId"], gw_server[0]["spanId"]);
    let page = one(&spans, "productpage.default", "server");
    assert_eq!(page[0]["parentSpanId"], gw_client[0]["spanId"]);
    assert_eq!(one(&spans, "productpage.default", "client").len(), 2);
    for s in &spans {
        assert_eq!(s["traceId"], TRACE);
        assert_eq!(s["attributes"]["http.status_code"], 200, "{s:#}");
        assert!(s["attributes"]["node_id"].is_string(), "{s:#}");
    }
    let listed: Value = get_json(format!(
        "{}/api/traces?service=ratings.default&limit=5",
        up.control_url()
    ))
    .await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["traceId"] == TRACE),
        "{listed:#}"
    );
    up.stop().await;
}
