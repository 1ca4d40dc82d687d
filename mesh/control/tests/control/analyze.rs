//! `GET` and `POST /api/v1/analyze`: findings about the configuration in force, and about
//! it with files applied on top, which changes nothing.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::start;

const TEAM_B: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews-team-b}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n";

#[tokio::test]
async fn a_second_virtual_service_is_found_before_and_after_it_is_applied() {
    let server = start().await;
    server.apply("destination-rule-all.yaml").await;
    server.apply("virtual-service-reviews-v3.yaml").await;
    server.register("reviews-v1", "reviews", "v1", 15206).await;
    server.register("reviews-v2", "reviews", "v2", 15216).await;
    server.register("reviews-v3", "reviews", "v3", 15226).await;
    server.register("ratings-v1", "ratings", "v1", 15406).await;

    // What is in force: nothing to say about reviews.
    let (status, now) = server.get("/api/v1/analyze").await;
    assert_eq!(status, StatusCode::OK, "{now}");
    let about_reviews = |v: &serde_json::Value| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["resource"].as_str().unwrap().contains("reviews"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(about_reviews(&now).is_empty(), "{now}");

    // Team B's file, considered: an IST0109 on it, and nothing applied.
    let version = server.version();
    let (status, what_if) = server
        .post_json(
            "/api/v1/analyze",
            &json!({"files": [{"name": "team-b.yaml", "text": TEAM_B}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{what_if}");
    let found = about_reviews(&what_if);
    assert_eq!(found.len(), 1, "{what_if}");
    assert_eq!(found[0]["level"], "Error");
    assert_eq!(found[0]["code"], "IST0109");
    assert_eq!(
        found[0]["resource"],
        "VirtualService default/reviews-team-b"
    );
    assert_eq!(found[0]["file"], "team-b.yaml");
    assert_eq!(server.version(), version, "analysis changes nothing");
    let (_, listed) = server.get("/api/v1/resources?kind=VirtualService").await;
    assert!(!listed.to_string().contains("reviews-team-b"), "{listed}");

    // A file that would be rejected is a 400 naming the problem, as apply answers it.
    let (status, bad) = server
        .post_json(
            "/api/v1/analyze",
            &json!({"files": [{"name": "bad.yaml", "text": "kind: VirtualService\nspec: ["}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("bad.yaml"), "{bad}");
    let (status, junk) = server
        .post_json("/api/v1/analyze", &json!({"file": 1}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{junk}");
    assert!(
        junk["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `file`"),
        "{junk}"
    );
}
