//! End-to-end: the real Bookinfo services behind our sidecars, driven by the routing
//! files we ship (the equivalents of Istio's `samples/bookinfo/networking/`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;
mod trace;

use std::time::Duration;

use support::{Mesh, stars};
use tokio::time::Instant;

#[tokio::test]
async fn without_routing_rules_every_version_serves() {
    let mesh = Mesh::start(&["destination-rule-all.yaml"]).await;
    let mut seen = [false; 3];
    for _ in 0..60 {
        let page = mesh.page().await;
        assert!(
            page.contains("Book Details") && page.contains("PublisherA"),
            "details reachable through the mesh"
        );
        match stars(&page) {
            0 => seen[0] = true,
            9 if page.contains("text-black-500") => seen[1] = true,
            9 if page.contains("text-red-500") => seen[2] = true,
            n => panic!("unexpected star count {n}"),
        }
    }
    assert_eq!(seen, [true; 3], "v1, v2 and v3 all serve without rules");
}

#[tokio::test]
async fn all_v1_never_shows_stars() {
    let mesh = Mesh::start(&["destination-rule-all.yaml", "virtual-service-all-v1.yaml"]).await;
    for _ in 0..20 {
        let page = mesh.page().await;
        assert_eq!(stars(&page), 0);
        assert!(page.contains("reviews-v1-pod"), "served by reviews v1");
    }
}

#[tokio::test]
async fn reviews_test_v2_gives_jason_black_stars_only() {
    let mesh = Mesh::start(&[
        "destination-rule-all.yaml",
        "virtual-service-all-v1.yaml",
        "virtual-service-reviews-test-v2.yaml",
    ])
    .await;
    for _ in 0..5 {
        let jason = mesh.page_as(Some("jason")).await;
        assert_eq!(stars(&jason), 9, "jason is routed to v2");
        assert!(jason.contains("text-black-500"));
        assert_eq!(stars(&mesh.page().await), 0, "anonymous users stay on v1");
        assert_eq!(
            stars(&mesh.page_as(Some("alice")).await),
            0,
            "other users stay on v1"
        );
    }
}

#[tokio::test]
async fn reviews_50_v3_splits_traffic() {
    let mesh = Mesh::start(&[
        "destination-rule-all.yaml",
        "virtual-service-all-v1.yaml",
        "virtual-service-reviews-50-v3.yaml",
    ])
    .await;
    // Each page is a coin toss: 200 of them give 100 ± 7 red; the band is over four
    // standard deviations wide, so the test fails by chance about once in 30,000 runs
    // (±10 of 100 failed one run in twenty).
    let mut red = 0;
    for _ in 0..200 {
        let page = mesh.page().await;
        if stars(&page) > 0 {
            assert!(page.contains("text-red-500"), "only v3 has stars");
            red += 1;
        }
    }
    assert!((70..=130).contains(&red), "{red} red pages out of 200");
}

#[tokio::test(start_paused = true)]
async fn ratings_delay_for_jason_breaks_his_page_after_about_6s() {
    let mesh = Mesh::start(&[
        "destination-rule-all.yaml",
        "virtual-service-all-v1.yaml",
        "virtual-service-reviews-test-v2.yaml",
        "virtual-service-ratings-test-delay.yaml",
    ])
    .await;
    let start = Instant::now();
    let jason = mesh.page_as(Some("jason")).await;
    let took = start.elapsed();
    assert!(
        jason.contains("Error fetching product reviews"),
        "productpage gave up on reviews"
    );
    assert!(jason.contains("Sorry, product reviews are currently unavailable for this book."));
    assert!(jason.contains("PublisherA"), "details are unaffected");
    // productpage: 3 s timeout, one retry => about 6 s, not the injected 7 s.
    assert!(
        took >= Duration::from_secs(6) && took < Duration::from_millis(6500),
        "{took:?}"
    );

    let start = Instant::now();
    let other = mesh.page().await;
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "others are not delayed"
    );
    assert!(other.contains("Book Reviews"));
    // reviews-v2's sidecar delayed the ratings call; productpage gave up first, so the
    // cancellation reached it mid-delay: Envoy reports that as code 0 with `DI,DC`.
    let stats = mesh.stats("reviews-v2").await;
    assert!(
        stats.contains(r#"response_code="0",response_flags="DI,DC""#),
        "{stats}"
    );
}

#[tokio::test]
async fn ratings_abort_for_jason_shows_ratings_unavailable() {
    let mesh = Mesh::start(&[
        "destination-rule-all.yaml",
        "virtual-service-all-v1.yaml",
        "virtual-service-reviews-test-v2.yaml",
        "virtual-service-ratings-test-abort.yaml",
    ])
    .await;
    let jason = mesh.page_as(Some("jason")).await;
    assert!(
        jason.contains("Ratings service is currently unavailable"),
        "{jason}"
    );
    assert_eq!(stars(&jason), 0);
    let anonymous = mesh.page().await;
    assert!(!anonymous.contains("Ratings service is currently unavailable"));
    let stats = mesh.stats("reviews-v2").await;
    assert!(
        stats.contains(r#"response_code="500""#) && stats.contains(r#"response_flags="FI""#),
        "{stats}"
    );
    // 500 is not retried by Istio's default policy: exactly one aborted call per review page.
}

#[tokio::test]
async fn fault_injection_details_gives_555_and_the_details_error() {
    let mesh = Mesh::start(&[
        "destination-rule-all.yaml",
        "fault-injection-details-v1.yaml",
    ])
    .await;
    let page = mesh.page().await;
    assert!(page.contains("Error fetching product details"));
    assert!(page.contains("Sorry, product details are currently unavailable for this book."));
}

#[tokio::test]
async fn routing_changes_apply_live() {
    let mesh = Mesh::start(&["destination-rule-all.yaml", "virtual-service-all-v1.yaml"]).await;
    assert_eq!(stars(&mesh.page().await), 0);
    mesh.apply(&[
        "destination-rule-all.yaml",
        "virtual-service-reviews-v3.yaml",
    ])
    .await;
    for _ in 0..5 {
        let page = mesh.page().await;
        assert_eq!(stars(&page), 9);
        assert!(page.contains("text-red-500"));
    }
}

#[tokio::test]
async fn an_invalid_change_is_rejected_and_traffic_keeps_flowing() {
    let mesh = Mesh::start(&["destination-rule-all.yaml", "virtual-service-all-v1.yaml"]).await;
    let versions: Vec<String> = mesh
        .sidecars
        .values()
        .map(|s| s.state.store.load().version.clone())
        .collect();
    let bad = mesh.dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: -5\n",
    )
    .unwrap();
    support::write_configs(
        &mesh.dir,
        &mesh.workloads,
        &[support::shipped("destination-rule-all.yaml"), bad],
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let now: Vec<String> = mesh
        .sidecars
        .values()
        .map(|s| s.state.store.load().version.clone())
        .collect();
    assert_eq!(now, versions, "the invalid configuration was not applied");
    for _ in 0..5 {
        assert_eq!(stars(&mesh.page().await), 0, "all-v1 still in force");
    }
}

#[tokio::test]
async fn metrics_count_the_requests_sent() {
    let mesh = Mesh::start(&["destination-rule-all.yaml", "virtual-service-all-v1.yaml"]).await;
    for _ in 0..7 {
        mesh.page().await;
    }
    let outbound = mesh.stats("productpage-v1").await;
    let line = |text: &str, service: &str, reporter: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("istio_requests_total{")
                    && l.contains(&format!(r#"reporter="{reporter}""#))
                    && l.contains(service)
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
    };
    let reviews = r#"destination_service="reviews.default.svc.cluster.local""#;
    assert_eq!(line(&outbound, reviews, "source"), Some(7), "{outbound}");
    assert!(outbound.contains(r#"destination_version="v1""#));
    assert!(outbound.contains(r#"source_workload="productpage-v1""#));
    let inbound = mesh.stats("reviews-v1").await;
    assert_eq!(line(&inbound, reviews, "destination"), Some(7), "{inbound}");
    let productpage = mesh.stats("productpage-v1").await;
    assert_eq!(
        line(
            &productpage,
            r#"destination_service="productpage.default.svc.cluster.local""#,
            "destination"
        ),
        Some(7)
    );
}

#[tokio::test(start_paused = true)]
async fn route_timeout_gives_504_ut_and_productpage_retries_once() {
    // The request-timeouts task: reviews → v2 with a 0.5 s route timeout, ratings delayed
    // 2 s for everyone. The sidecar answers 504 UT after 0.5 s, productpage retries once.
    let dir = support::scratch();
    let rules = dir.join("timeouts.yaml");
    std::fs::write(
        &rules,
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v2}\n    timeout: 0.5s\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ratings}\nspec:\n  hosts: [ratings]\n  http:\n  - fault:\n      delay: {percentage: {value: 100}, fixedDelay: 2s}\n    route:\n    - destination: {host: ratings, subset: v1}\n",
    )
    .unwrap();
    let rules = rules.display().to_string();
    let mesh = Mesh::start(&["destination-rule-all.yaml", &rules]).await;
    let start = Instant::now();
    let page = mesh.page().await;
    let took = start.elapsed();
    assert!(page.contains("Sorry, product reviews are currently unavailable for this book."));
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(1200),
        "{took:?}"
    );
    let stats = mesh.stats("productpage-v1").await;
    let ut = stats
        .lines()
        .find(|l| {
            l.starts_with("istio_requests_total{")
                && l.contains(r#"response_code="504",response_flags="UT""#)
        })
        .unwrap_or_else(|| panic!("{stats}"));
    assert!(
        ut.ends_with(" 2"),
        "two attempts by productpage, each cut at 0.5 s: {ut}"
    );
}
