//! The graph's arithmetic on hand-written metrics pages.

#![allow(clippy::unwrap_used)]

use super::*;

const PRINCIPAL: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";

/// A productpage page: `calls` (version, code, count) to reviews, and a histogram of
/// `fast` requests under 5 ms and `slow` ones between 250 and 500 ms (version v1).
fn productpage(calls: &[(&str, &str, u32)], fast: u32, slow: u32) -> String {
    let mut text = String::from("# TYPE istio_requests_total counter\n");
    for (version, code, count) in calls {
        text.push_str(&format!(
            "istio_requests_total{{reporter=\"source\",source_workload=\"productpage-v1\",source_principal=\"{PRINCIPAL}\",destination_service_name=\"reviews\",destination_workload=\"reviews-{version}\",destination_version=\"{version}\",response_code=\"{code}\",connection_security_policy=\"unknown\"}} {count}\n"
        ));
    }
    for (le, count) in [
        ("1.0", 0),
        ("5.0", fast),
        ("250.0", fast),
        ("500.0", fast + slow),
        ("+Inf", fast + slow),
    ] {
        text.push_str(&format!(
            "istio_request_duration_milliseconds_bucket{{reporter=\"source\",source_workload=\"productpage-v1\",destination_service_name=\"reviews\",destination_workload=\"reviews-v1\",destination_version=\"v1\",response_code=\"200\",le=\"{le}\"}} {count}\n"
        ));
    }
    text
}

/// A reviews-v1 page: `mtls` requests from productpage over mutual TLS.
fn reviews(mtls: u32) -> String {
    format!(
        "istio_requests_total{{reporter=\"destination\",source_principal=\"{PRINCIPAL}\",destination_workload=\"reviews-v1\",response_code=\"200\",connection_security_policy=\"mutual_tls\"}} {mtls}\n"
    )
}

fn view(name: &str, app: &str, version: &str, mode: Mode) -> WorkloadView {
    let spec: mesh_api::wire::WorkloadSpec = serde_json::from_value(serde_json::json!({
        "name": name, "labels": {"app": app, "version": version}, "mode": mode,
        "admin": "127.0.0.1:15000",
    }))
    .unwrap();
    WorkloadView {
        spec,
        last_seen_ms: 0,
        age_ms: 0,
        registered_at_ms: 0,
    }
}

fn registered() -> Vec<WorkloadView> {
    vec![
        view("productpage-v1", "productpage", "v1", Mode::Sidecar),
        view("reviews-v1", "reviews", "v1", Mode::Sidecar),
        view("reviews-v3", "reviews", "v3", Mode::Sidecar),
    ]
}

fn edge<'a>(graph: &'a Graph, destination: &str) -> &'a GraphEdge {
    graph
        .edges
        .iter()
        .find(|e| e.destination == destination)
        .unwrap()
}

#[test]
fn rates_shares_errors_and_p99_come_from_counter_growth() {
    let t0 = Instant::now();
    let mut scrapes = Scrapes::new();
    let before = productpage(&[("v1", "200", 100), ("v3", "200", 50)], 90, 10);
    scrapes.record("productpage-v1", Ok(sample_of(&before, t0)));
    scrapes.record("reviews-v1", Ok(sample_of(&reviews(100), t0)));
    // Two seconds later: 30 more to v1 (10 of them 503), 10 more to v3; of v1's new
    // requests 29 were fast and 1 slow.
    let t1 = t0 + Duration::from_secs(2);
    let after = productpage(
        &[("v1", "200", 120), ("v1", "503", 10), ("v3", "200", 60)],
        119,
        11,
    );
    scrapes.record("productpage-v1", Ok(sample_of(&after, t1)));
    scrapes.record("reviews-v1", Ok(sample_of(&reviews(130), t1)));

    let graph = scrapes.graph(&registered(), 7);
    assert_eq!(graph.at_ms, 7);
    assert_eq!(graph.window_ms, 2000);
    let v1 = edge(&graph, "reviews-v1");
    assert_eq!(
        (v1.source.as_str(), v1.service.as_str()),
        ("productpage-v1", "reviews")
    );
    assert_eq!(v1.rps, 15.0);
    assert_eq!(v1.error_rate, 0.3333);
    assert_eq!(v1.share, 0.75);
    assert_eq!(v1.health, Health::Failing);
    assert_eq!(v1.mtls, Some(true));
    // 30 new requests, rank 29.7: inside the 250-500 bucket, 70 % of the way.
    assert_eq!(v1.p99_ms, Some(425.0));
    let v3 = edge(&graph, "reviews-v3");
    assert_eq!((v3.rps, v3.share, v3.health), (5.0, 0.25, Health::Healthy));
    assert_eq!(v3.mtls, None, "reviews-v3's proxy is not read");
    let node = |w: &str| graph.nodes.iter().find(|n| n.workload == w).unwrap();
    assert_eq!(node("reviews-v1").rps, 15.0);
    assert_eq!(node("reviews-v3").rps, 5.0);
    assert_eq!(node("productpage-v1").rps, 0.0);
    assert_eq!(node("reviews-v3").version.as_deref(), Some("v3"));
}

#[test]
fn one_sample_gives_no_rate_and_a_restart_counts_from_zero() {
    let t0 = Instant::now();
    let mut scrapes = Scrapes::new();
    scrapes.record(
        "productpage-v1",
        Ok(sample_of(&productpage(&[("v1", "200", 500)], 500, 0), t0)),
    );
    let graph = scrapes.graph(&registered(), 0);
    assert_eq!(graph.window_ms, 0);
    assert!(graph.edges.is_empty());
    assert_eq!(
        graph.nodes.len(),
        3,
        "registered workloads show without traffic"
    );
    // The proxy restarted: its counters start again at 4.
    let t1 = t0 + Duration::from_secs(1);
    scrapes.record(
        "productpage-v1",
        Ok(sample_of(&productpage(&[("v1", "200", 4)], 4, 0), t1)),
    );
    let graph = scrapes.graph(&registered(), 0);
    assert_eq!(edge(&graph, "reviews-v1").rps, 4.0);
}

#[test]
fn the_window_slides_and_a_failed_scrape_drops_stale_samples() {
    let t0 = Instant::now();
    let mut scrapes = Scrapes::new();
    for s in 0..10u32 {
        let page = productpage(&[("v1", "200", s * 10)], s * 10, 0);
        scrapes.record(
            "productpage-v1",
            Ok(sample_of(&page, t0 + Duration::from_secs(s.into()))),
        );
    }
    let graph = scrapes.graph(&registered(), 0);
    assert_eq!(graph.window_ms, 5000, "about WINDOW of samples kept");
    assert_eq!(edge(&graph, "reviews-v1").rps, 10.0);
    scrapes.record("productpage-v1", Err("connection refused".to_owned()));
    let graph = scrapes.graph(&registered(), 0);
    assert!(graph.edges.is_empty());
    assert_eq!(
        graph.unreachable,
        [ScrapeProblem {
            workload: "productpage-v1".to_owned(),
            error: "connection refused".to_owned()
        }]
    );
    scrapes.retain(&[]);
    assert!(scrapes.graph(&[], 0).unreachable.is_empty());
}

#[test]
fn plain_text_calls_are_not_mtls_and_idle_edges_have_no_verdict() {
    let t0 = Instant::now();
    let mut scrapes = Scrapes::new();
    scrapes.record(
        "productpage-v1",
        Ok(sample_of(&productpage(&[("v1", "200", 1)], 1, 0), t0)),
    );
    scrapes.record("reviews-v1", Ok(sample_of("", t0)));
    let t1 = t0 + Duration::from_secs(1);
    scrapes.record(
        "productpage-v1",
        Ok(sample_of(&productpage(&[("v1", "200", 3)], 3, 0), t1)),
    );
    scrapes.record("reviews-v1", Ok(sample_of("", t1)));
    assert_eq!(
        edge(&scrapes.graph(&registered(), 0), "reviews-v1").mtls,
        Some(false)
    );
    let t2 = t1 + Duration::from_secs(1);
    for t in [t2, t2 + Duration::from_secs(5)] {
        scrapes.record(
            "productpage-v1",
            Ok(sample_of(&productpage(&[("v1", "200", 3)], 3, 0), t)),
        );
        scrapes.record("reviews-v1", Ok(sample_of("", t)));
    }
    let idle = scrapes.graph(&registered(), 0);
    let idle = edge(&idle, "reviews-v1");
    assert_eq!(
        (idle.rps, idle.mtls, idle.health),
        (0.0, None, Health::Idle)
    );
    assert_eq!(idle.p99_ms, None);
}

#[test]
fn quantiles_interpolate_like_prometheus() {
    assert_eq!(quantile(0.99, &[]), None);
    assert_eq!(quantile(0.99, &[(1.0, 0.0), (f64::INFINITY, 0.0)]), None);
    assert_eq!(
        quantile(0.5, &[(10.0, 10.0), (f64::INFINITY, 10.0)]),
        Some(5.0)
    );
    assert_eq!(
        quantile(0.99, &[(10.0, 1.0), (f64::INFINITY, 10.0)]),
        Some(10.0),
        "in +Inf: the largest finite bound"
    );
}

#[test]
fn targets_are_bounded_and_need_an_admin_address() {
    let mut many: Vec<WorkloadView> = (0..100)
        .map(|i| view(&format!("w{i:03}"), "w", "v1", Mode::Sidecar))
        .collect();
    many[0].spec.admin = None;
    let targets = targets(&many);
    assert_eq!(targets.len(), MAX_SCRAPED);
    assert_eq!(targets[0].0, "w001");
}

#[test]
fn scraping_runs_only_while_the_graph_is_watched() {
    let t0 = Instant::now();
    let mut scrapes = Scrapes::new();
    assert!(!scrapes.wanted(t0));
    scrapes.want(t0);
    assert!(scrapes.wanted(t0 + Duration::from_secs(29)));
    assert!(!scrapes.wanted(t0 + IDLE_AFTER));
}
