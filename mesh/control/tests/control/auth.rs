//! Identities cannot be borrowed: registrations and certificates need the workload's own
//! credential (a tokens file, or Kubernetes' TokenReview against a fake API server here),
//! and the mutating API needs the admin token once one is configured.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::http::StatusCode as AxumStatus;
use mesh_control::auth::{AdminToken, Auth, TokenReviewer, WorkloadTokens};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::ca::csr;
use crate::support::{Server, start_secured, uri_sans};

const PRODUCTPAGE: &str = "productpage-token-0123456789";
const REVIEWS: &str = "reviews-v1-token-0123456789";
const ADMIN: &str = "admin-token-0123456789abcdef";

fn tokens() -> WorkloadTokens {
    WorkloadTokens::parse(&format!(
        "- token: {PRODUCTPAGE}\n  namespace: default\n  serviceAccount: bookinfo-productpage\n  workload: productpage-v1\n\
         - token: {REVIEWS}\n  namespace: default\n  serviceAccount: bookinfo-reviews\n  workload: reviews-v1\n"
    ))
    .unwrap()
}

fn workload(name: &str, service: &str, port: u16) -> Value {
    json!({
        "name": name, "namespace": "default", "service": service,
        "serviceAccount": format!("bookinfo-{service}"),
        "labels": {"app": service, "version": "v1"},
        "address": format!("127.0.0.1:{port}"),
    })
}

async fn register(server: &Server, token: Option<&str>, spec: &Value) -> (StatusCode, Value) {
    server
        .call_as(token, Method::POST, "/api/v1/workloads", spec.to_string())
        .await
}

async fn certificate(server: &Server, token: Option<&str>, name: &str) -> (StatusCode, Value) {
    let request = json!({"workload": name, "csr": csr()});
    server
        .call_as(
            token,
            Method::POST,
            "/api/v1/certificates",
            request.to_string(),
        )
        .await
}

#[tokio::test]
async fn a_workload_cannot_borrow_another_identity() {
    let server = start_secured(Auth::open().with_tokens(tokens())).await;
    let productpage = workload("productpage-v1", "productpage", 15106);

    // Without a credential: 401, whatever is claimed.
    let (status, body) = register(&server, None, &productpage).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = register(&server, Some("made-up-token-0123456789"), &productpage).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Reviews' token cannot register as productpage, under its name or another.
    let (status, body) = register(&server, Some(REVIEWS), &productpage).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("the credential is for default/bookinfo-reviews"),
        "{body}"
    );
    let mut renamed = productpage.clone();
    renamed["name"] = json!("reviews-v1");
    let (status, _) = register(&server, Some(REVIEWS), &renamed).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "reviews-v1 under productpage's account"
    );
    // Nor take over productpage's name with its own account (the traffic would follow).
    let (status, _) = register(&server, Some(PRODUCTPAGE), &productpage).await;
    assert_eq!(status, StatusCode::OK);
    let hijack = workload("productpage-v1", "reviews", 15126);
    let (status, _) = register(&server, Some(REVIEWS), &hijack).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // And gets no certificate for it.
    let (status, _) = certificate(&server, None, "productpage-v1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = certificate(&server, Some(REVIEWS), "productpage-v1").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Productpage's own token gets productpage's identity, and nothing else holds it.
    let (status, body) = certificate(&server, Some(PRODUCTPAGE), "productpage-v1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let spiffe = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";
    assert_eq!(body["spiffe_id"], spiffe);
    assert_eq!(
        uri_sans(body["chain"][0].as_str().unwrap()),
        [format!("uri:{spiffe}")]
    );
    let (_, listed) = server.get("/api/v1/workloads").await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["productpage-v1"]);
}

#[tokio::test]
async fn a_certificate_cannot_be_renewed_as_another_workload() {
    let server = start_secured(Auth::open().with_tokens(tokens())).await;
    let (status, _) = register(
        &server,
        Some(PRODUCTPAGE),
        &workload("productpage-v1", "productpage", 15106),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = register(
        &server,
        Some(REVIEWS),
        &workload("reviews-v1", "reviews", 15126),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Each renews its own, as often as it likes.
    for _ in 0..2 {
        let (status, body) = certificate(&server, Some(REVIEWS), "reviews-v1").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["spiffe_id"],
            "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
        );
    }
    // Renewing under the other's name is refused: the credential decides, not the name.
    let (status, body) = certificate(&server, Some(REVIEWS), "productpage-v1").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = certificate(&server, Some(PRODUCTPAGE), "reviews-v1").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn with_an_admin_token_the_mutating_api_needs_it() {
    let auth = Auth::open()
        .with_tokens(tokens())
        .with_admin(AdminToken::new(ADMIN).unwrap());
    let server = start_secured(auth).await;
    let vs = crate::support::shipped("virtual-service-all-v1.yaml");
    let fault = json!({"service": "ratings", "abort": {"httpStatus": 500, "percentage": 100}, "ttlSeconds": 60});
    for (method, path, body) in [
        (Method::POST, "/api/v1/apply?file=vs.yaml", vs.clone()),
        (Method::POST, "/api/v1/delete?file=vs.yaml", vs.clone()),
        (Method::POST, "/api/v1/faults", fault.to_string()),
        (Method::DELETE, "/api/v1/faults", String::new()),
        (Method::DELETE, "/api/v1/faults/f-1", String::new()),
        (Method::POST, "/api/v1/experiments", "{}".to_owned()),
        (
            Method::DELETE,
            "/api/v1/workloads/productpage-v1",
            String::new(),
        ),
    ] {
        for token in [
            None,
            Some(PRODUCTPAGE),
            Some("wrong-admin-token-0123456789"),
        ] {
            let (status, body) = server
                .call_as(token, method.clone(), path, body.clone())
                .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {token:?}: {body}"
            );
        }
    }
    let (status, body) = server
        .call_as(Some(ADMIN), Method::POST, "/api/v1/apply?file=vs.yaml", vs)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .call_as(
            Some(ADMIN),
            Method::POST,
            "/api/v1/faults",
            fault.to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Reads stay open.
    for path in [
        "/api/v1/resources",
        "/api/v1/faults",
        "/api/v1/workloads",
        "/api/v1/ca/root",
    ] {
        let (status, _) = server.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    // The registration still takes the workload's credential, not the admin token.
    let productpage = workload("productpage-v1", "productpage", 15106);
    let (status, _) = register(&server, Some(ADMIN), &productpage).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = register(&server, Some(PRODUCTPAGE), &productpage).await;
    assert_eq!(status, StatusCode::OK);
    // A workload may leave (a proxy shutting down), but not make another one leave.
    let path = "/api/v1/workloads/productpage-v1";
    let (status, _) = server
        .call_as(Some(REVIEWS), Method::DELETE, path, "")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .call_as(Some(PRODUCTPAGE), Method::DELETE, path, "")
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// A fake Kubernetes API server answering TokenReviews the way kube-apiserver does for
/// the tokens it knows; counts the reviews it answered.
async fn fake_api_server() -> (String, Arc<AtomicUsize>) {
    let reviews = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&reviews);
    let app = axum::Router::new().route(
        "/apis/authentication.k8s.io/v1/tokenreviews",
        axum::routing::post(move |Json(review): Json<Value>| {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let token = review["spec"]["token"].as_str().unwrap_or_default();
                let asked: Vec<String> =
                    serde_json::from_value(review["spec"]["audiences"].clone()).unwrap_or_default();
                let user = |sa: &str, audiences: Vec<String>| {
                    json!({"authenticated": true, "audiences": audiences,
                           "user": {"username": format!("system:serviceaccount:default:{sa}")}})
                };
                let status = match token {
                    "k8s-productpage" => user("bookinfo-productpage", asked.clone()),
                    "k8s-reviews" => user("bookinfo-reviews", asked.clone()),
                    // A token for the API server itself, from a server that does not check
                    // audiences: only the audience in the answer tells.
                    "k8s-api-audience" => user(
                        "bookinfo-productpage",
                        vec!["https://kubernetes.default.svc".to_owned()],
                    ),
                    "k8s-broken" => {
                        return (
                            AxumStatus::INTERNAL_SERVER_ERROR,
                            Json(json!({
                                "kind": "Status", "apiVersion": "v1", "status": "Failure",
                                "message": "etcd is down", "reason": "InternalError", "code": 500
                            })),
                        );
                    }
                    _ => json!({"authenticated": false, "error": "token has expired"}),
                };
                (
                    AxumStatus::CREATED,
                    Json(json!({
                        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                        "metadata": {}, "spec": review["spec"], "status": status,
                    })),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, reviews)
}

#[tokio::test]
async fn kubernetes_token_review_decides_the_identity() {
    let (url, reviews) = fake_api_server().await;
    let config = kube::Config::new(url.parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let server =
        start_secured(Auth::open().with_token_review(TokenReviewer::new(client, "mesh-control")))
            .await;
    let productpage = workload("productpage-v1", "productpage", 15106);

    // Another service account's token: no registration and no certificate as this one.
    let (status, body) = register(&server, Some("k8s-reviews"), &productpage).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = register(&server, Some("k8s-productpage"), &productpage).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = certificate(&server, Some("k8s-reviews"), "productpage-v1").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = certificate(&server, Some("k8s-productpage"), "productpage-v1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["spiffe_id"],
        "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
    );

    // Unauthenticated, or meant for another audience: 401.
    let (status, body) = certificate(&server, Some("k8s-expired"), "productpage-v1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("token has expired"),
        "{body}"
    );
    let (status, body) = certificate(&server, Some("k8s-api-audience"), "productpage-v1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("audience"),
        "{body}"
    );
    let (status, _) = certificate(&server, None, "productpage-v1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // An API server in trouble is not a refused token: 503, and not remembered.
    let (status, body) = certificate(&server, Some("k8s-broken"), "productpage-v1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");

    // Answers are cached: asking again with known tokens does not review them again.
    let before = reviews.load(Ordering::SeqCst);
    let (status, _) = certificate(&server, Some("k8s-productpage"), "productpage-v1").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = certificate(&server, Some("k8s-expired"), "productpage-v1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(reviews.load(Ordering::SeqCst), before);
    let (status, _) = certificate(&server, Some("k8s-broken"), "productpage-v1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reviews.load(Ordering::SeqCst), before + 1);
}
