//! Workload identities without sockets: SPIFFE IDs, the CSR flow, chain checks and the
//! renewal schedule.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::time::{Duration, SystemTime};

use mesh_identity::{Identity, IdentityError, LocalCa, SpiffeId, peer_spiffe_id};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn sa(name: &str) -> SpiffeId {
    SpiffeId::new("cluster.local", "default", name).unwrap()
}

#[test]
fn renewal_is_due_at_half_life() {
    let ca = LocalCa::new("cluster.local").unwrap();
    // Whole seconds: certificates carry second precision.
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    let identity = ca
        .issue_between(&sa("bookinfo-ratings"), start, start + DAY)
        .unwrap();
    assert_eq!(identity.not_before(), start);
    assert_eq!(identity.expires_at(), start + DAY);
    assert_eq!(identity.renew_at(), start + DAY / 2);
    assert!(!identity.needs_renewal(start + DAY / 2 - Duration::from_secs(1)));
    assert!(identity.needs_renewal(start + DAY / 2));
    assert!(!identity.is_expired(start + DAY));
    assert!(identity.is_expired(start + DAY + Duration::from_secs(1)));

    // A fresh 24 h certificate from now is not due yet; one issued 13 h ago is.
    let fresh = ca.issue(&sa("bookinfo-ratings"), DAY).unwrap();
    assert!(!fresh.needs_renewal(SystemTime::now()));
    let now = SystemTime::now();
    let older = ca
        .issue_between(
            &sa("bookinfo-ratings"),
            now - Duration::from_secs(13 * 3600),
            now + Duration::from_secs(11 * 3600),
        )
        .unwrap();
    assert!(older.needs_renewal(now));
}

#[test]
fn csr_flow_takes_the_identity_from_the_ca_not_the_request() {
    let ca = LocalCa::new("cluster.local").unwrap();
    let asked = sa("bookinfo-productpage");
    let (key, csr) = Identity::csr(&asked).unwrap();
    assert!(
        csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
        "{csr}"
    );
    // The CA knows this workload is reviews and signs that, whatever the CSR says.
    let granted = sa("bookinfo-reviews");
    let chain = ca.sign_csr(&csr, &granted, DAY).unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1], ca.root_pem());
    let identity = Identity::from_signed(key, &chain, ca.root_pem()).unwrap();
    assert_eq!(identity.spiffe_id(), &granted);
    assert_eq!(identity.chain().len(), 2);
    assert_eq!(identity.root(), ca.root());
    assert_eq!(peer_spiffe_id(identity.chain()), Some(granted.to_string()));
}

#[test]
fn from_signed_refuses_mismatched_or_broken_inputs() {
    let ca = LocalCa::new("cluster.local").unwrap();
    let (key, csr) = Identity::csr(&sa("bookinfo-details")).unwrap();
    let chain = ca.sign_csr(&csr, &sa("bookinfo-details"), DAY).unwrap();

    // A chain for another key.
    let (other_key, _) = Identity::csr(&sa("bookinfo-details")).unwrap();
    let error = Identity::from_signed(other_key, &chain, ca.root_pem()).unwrap_err();
    assert!(matches!(error, IdentityError::Rustls(_)), "{error}");

    // A chain checked against another root.
    let other = LocalCa::new("cluster.local").unwrap();
    let (key2, csr2) = Identity::csr(&sa("bookinfo-details")).unwrap();
    let chain2 = ca.sign_csr(&csr2, &sa("bookinfo-details"), DAY).unwrap();
    let error = Identity::from_signed(key2, &chain2[..1], other.root_pem()).unwrap_err();
    assert!(
        error.to_string().contains("invalid peer certificate"),
        "{error}"
    );

    // Garbage.
    let error = Identity::from_signed(key, &["not a pem"], ca.root_pem()).unwrap_err();
    assert!(
        error.to_string().contains("certificate chain PEM"),
        "{error}"
    );
    let (key3, _) = Identity::csr(&sa("bookinfo-details")).unwrap();
    let error = Identity::from_signed(key3, &chain, "").unwrap_err();
    assert!(
        error.to_string().contains("root certificate PEM"),
        "{error}"
    );
    let (key4, _) = Identity::csr(&sa("bookinfo-details")).unwrap();
    let empty: [&str; 0] = [];
    assert!(Identity::from_signed(key4, &empty, ca.root_pem()).is_err());
    assert!(
        ca.sign_csr(
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            &sa("x"),
            DAY
        )
        .is_err()
    );
}

#[test]
fn spiffe_ids_parse_strictly() {
    let id = SpiffeId::parse("spiffe://cluster.local/ns/default/sa/bookinfo-reviews").unwrap();
    assert_eq!(id.trust_domain(), "cluster.local");
    assert_eq!(id.namespace(), "default");
    assert_eq!(id.service_account(), "bookinfo-reviews");
    assert_eq!(
        id.principal(),
        "cluster.local/ns/default/sa/bookinfo-reviews"
    );
    assert_eq!(
        id.to_string(),
        "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    );
    for bad in [
        "cluster.local/ns/default/sa/reviews",
        "spiffe://cluster.local/ns/default",
        "spiffe://cluster.local/ns//sa/reviews",
        "spiffe://cluster.local/sa/reviews/ns/default",
        "spiffe://cluster.local/ns/default/sa/reviews/extra",
        "spiffe://cluster local/ns/default/sa/reviews",
        "",
    ] {
        let error = SpiffeId::parse(bad).unwrap_err();
        assert!(
            error.to_string().contains("invalid SPIFFE ID"),
            "{bad}: {error}"
        );
    }
}
