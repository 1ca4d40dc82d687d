//! The certificate authority: CSRs in, SPIFFE certificates out.

use rcgen::{CertificateParams, KeyPair};
use reqwest::StatusCode;
use serde_json::json;
use x509_parser::pem::parse_x509_pem;

use crate::support::{start, uri_sans};

/// A CSR asking for a name we must not grant.
pub(crate) fn csr() -> String {
    let key = KeyPair::generate().unwrap();
    CertificateParams::new(vec!["evil.example.com".to_owned()])
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap()
}

#[tokio::test]
async fn a_registered_workload_gets_its_spiffe_identity() {
    let server = start().await;
    server.register("reviews-v2", "reviews", "v2", 15306).await;
    let (status, body) = server
        .post_json(
            "/api/v1/certificates",
            &json!({"workload": "reviews-v2", "csr": csr(), "ttl_seconds": 600}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let spiffe = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";
    assert_eq!(body["spiffe_id"], spiffe);
    let chain = body["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 2);
    let (_, root_body) = server.get("/api/v1/ca/root").await;
    assert_eq!(chain[1], root_body["root"]);

    let (_, leaf_pem) = parse_x509_pem(chain[0].as_str().unwrap().as_bytes()).unwrap();
    let leaf = leaf_pem.parse_x509().unwrap();
    let (_, root_pem) = parse_x509_pem(chain[1].as_str().unwrap().as_bytes()).unwrap();
    let root = root_pem.parse_x509().unwrap();
    assert_eq!(
        uri_sans(chain[0].as_str().unwrap()),
        [format!("uri:{spiffe}")]
    );
    leaf.verify_signature(Some(root.public_key())).unwrap();
    assert!(!leaf.is_ca());
    assert!(root.is_ca());
    assert_eq!(leaf.issuer(), root.subject());
    let lifetime = leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
    assert_eq!(lifetime, 600 + 60, "10 min plus the 1 min backdating");
    let expires = body["expires_at_ms"].as_u64().unwrap();
    assert_eq!(
        i64::try_from(expires / 1000).unwrap(),
        leaf.validity().not_after.timestamp()
    );
    // A certificate from another CA does not verify against this root.
    let other = rcgen::generate_simple_self_signed(vec!["x".to_owned()]).unwrap();
    let (_, other_pem) = parse_x509_pem(other.cert.pem().as_bytes()).unwrap();
    let other = other_pem.parse_x509().unwrap();
    assert!(other.verify_signature(Some(root.public_key())).is_err());
}

#[tokio::test]
async fn unknown_workloads_and_garbage_csrs_are_refused() {
    let server = start().await;
    let (status, body) = server
        .post_json(
            "/api/v1/certificates",
            &json!({"workload": "ghost", "csr": csr()}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"].as_str().unwrap().contains("ghost"));

    server.register("ratings-v1", "ratings", "v1", 15406).await;
    let (status, body) = server
        .post_json(
            "/api/v1/certificates",
            &json!({"workload": "ratings-v1", "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().starts_with("invalid CSR"),
        "{body}"
    );
    let (status, _) = server
        .post_json(
            "/api/v1/certificates",
            &json!({"workload": "ratings-v1", "csr": csr(), "ttl_seconds": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
