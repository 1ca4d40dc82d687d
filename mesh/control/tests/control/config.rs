//! Configuration: apply, validation, delete, the watched directory.

use std::time::Duration;

use reqwest::StatusCode;

use crate::support::{shipped, start};

const NEGATIVE_WEIGHT: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: -20
    - destination: {host: reviews, subset: v3}
      weight: 120
";

#[tokio::test]
async fn applied_resources_are_listed() {
    let server = start().await;
    let before = server.version();
    let body = server.apply("virtual-service-all-v1.yaml").await;
    let applied: Vec<&str> = body["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        applied,
        [
            "VirtualService default/productpage",
            "VirtualService default/reviews",
            "VirtualService default/ratings",
            "VirtualService default/details"
        ]
    );
    assert_eq!(body["version"], before + 1);
    assert!(body["warnings"].as_array().unwrap().is_empty());

    let (status, list) = server.get("/api/v1/resources?kind=VirtualService").await;
    assert_eq!(status, StatusCode::OK);
    let reviews = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "reviews")
        .unwrap();
    assert_eq!(reviews["kind"], "VirtualService");
    assert_eq!(reviews["namespace"], "default");
    assert_eq!(reviews["source"], "api");
    assert_eq!(
        reviews["resource"]["spec"]["http"][0]["route"][0]["destination"]["subset"],
        "v1"
    );
    let (_, rules) = server.get("/api/v1/resources?kind=DestinationRule").await;
    assert!(rules.as_array().unwrap().is_empty());
    let (status, body) = server.get("/api/v1/resources?kind=Deployment").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().starts_with("kind:"));
}

#[tokio::test]
async fn an_invalid_change_is_rejected_whole_and_nothing_changes() {
    let server = start().await;
    server.apply("virtual-service-all-v1.yaml").await;
    let version = server.version();
    let (_, before) = server.get("/api/v1/resources").await;

    let (status, body) = server
        .post("/api/v1/apply?file=bad.yaml", NEGATIVE_WEIGHT)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let errors: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        errors.iter().any(|e| e.starts_with(
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].route[0].weight:"
        )),
        "{errors:?}"
    );
    assert!(body["error"].as_str().unwrap().contains("bad.yaml"));
    assert_eq!(server.version(), version);
    let (_, after) = server.get("/api/v1/resources").await;
    assert_eq!(before, after);
    let (_, recent) = server.get("/api/v1/config-errors").await;
    assert_eq!(recent.as_array().unwrap().len(), 1);

    // Not YAML at all, and YAML without any mesh resource.
    let (status, body) = server.post("/api/v1/apply?file=x.yaml", "a: [b").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("x.yaml"), "{body}");
    let (status, body) = server
        .post(
            "/api/v1/apply?file=svc.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\n",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no mesh resources")
    );
    assert_eq!(server.version(), version);
}

#[tokio::test]
async fn delete_removes_and_reports_missing() {
    let server = start().await;
    server.apply("destination-rule-all.yaml").await;
    let version = server.version();
    let (status, body) = server
        .post(
            "/api/v1/delete?file=destination-rule-all.yaml",
            shipped("destination-rule-all.yaml"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["deleted"].as_array().unwrap().len(), 4);
    assert_eq!(body["version"], version + 1);
    let (_, list) = server.get("/api/v1/resources").await;
    assert!(list.as_array().unwrap().is_empty());

    let (status, body) = server
        .post(
            "/api/v1/delete?file=destination-rule-all.yaml",
            shipped("destination-rule-all.yaml"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["deleted"].as_array().unwrap().is_empty());
    assert_eq!(body["missing"].as_array().unwrap().len(), 4);
    assert_eq!(body["version"], version + 1);
}

#[tokio::test]
async fn config_dir_changes_apply_live_and_bad_edits_are_kept_out() {
    let dir = std::env::temp_dir().join(format!("mesh-control-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("destination-rule-all.yaml"),
        shipped("destination-rule-all.yaml"),
    )
    .unwrap();
    let server = start().await;
    let mut source = mesh_control::source::DirSource::new(&dir);
    server.control.load_source(&mut source).unwrap();
    server
        .control
        .watch_source(Box::new(source), Duration::from_millis(20));
    let (_, list) = server.get("/api/v1/resources").await;
    assert_eq!(list.as_array().unwrap().len(), 4);
    assert_eq!(list[0]["source"], "config-dir");

    let version = server.version();
    std::fs::write(
        dir.join("virtual-service-all-v1.yaml"),
        shipped("virtual-service-all-v1.yaml"),
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.version() == version {
        assert!(
            tokio::time::Instant::now() < deadline,
            "change not picked up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, list) = server.get("/api/v1/resources?kind=VirtualService").await;
    assert_eq!(list.as_array().unwrap().len(), 4);
    assert_eq!(list[0]["file"], "virtual-service-all-v1.yaml");

    // A broken edit: rejected, remembered, the last good set stays.
    let version = server.version();
    std::fs::write(dir.join("zz-bad.yaml"), NEGATIVE_WEIGHT).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, errors) = server.get("/api/v1/config-errors").await;
        if let Some(first) = errors.as_array().unwrap().first() {
            assert_eq!(first["change"], "config-dir");
            assert!(
                first["errors"][0]
                    .as_str()
                    .unwrap()
                    .starts_with("zz-bad.yaml")
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "error not recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.version(), version);
    let (_, list) = server.get("/api/v1/resources?kind=VirtualService").await;
    assert_eq!(list.as_array().unwrap().len(), 4);
    std::fs::remove_dir_all(&dir).unwrap();
}
