//! The CA root kept in a Kubernetes Secret (`--ca-secret`), against the fake API server:
//! the first start creates the Secret, the next reads the same root back, a start that
//! loses the create race issues from the winner's root, and a Secret without the key is
//! refused with its name.

use mesh_control::ca::{Ca, RootSource};
use mesh_control::kube::ca_secret::root_source;
use serde_json::json;

use super::fake_kube::FakeKube;

const NS: &str = "istio-system";
const NAME: &str = "mesh-ca-secret";

fn client(fake: &FakeKube) -> kube::Client {
    let config = kube::Config::new(fake.url.parse().unwrap());
    mesh_control::kube::client_for(config).unwrap()
}

/// A Secret value as it is on the wire (base64), by k8s-openapi's own encoding.
fn b64(text: &str) -> serde_json::Value {
    serde_json::to_value(k8s_openapi::ByteString(text.as_bytes().to_vec())).unwrap()
}

async fn root_of(fake: &FakeKube) -> String {
    let source = root_source(&client(fake), NS, NAME, "cluster.local")
        .await
        .unwrap();
    assert!(matches!(source, RootSource::Pem { .. }), "{source:?}");
    Ca::start(&source, "cluster.local")
        .unwrap()
        .root_pem()
        .to_owned()
}

#[tokio::test]
async fn the_first_start_creates_the_secret_and_the_next_reads_the_same_root() {
    let fake = FakeKube::start().await;
    let first = root_of(&fake).await;
    assert_eq!(fake.secret_creates(), 1);
    let stored = fake.secret(NS, NAME).expect("the Secret was created");
    assert_eq!(stored["type"], "Opaque");
    assert_eq!(stored["metadata"]["labels"]["app"], "mesh-control");
    assert_eq!(stored["data"]["root-cert.pem"], b64(&first));
    assert!(stored["data"]["root-key.pem"].is_string());

    // A new pod: same Secret, same root, nothing created.
    let second = root_of(&fake).await;
    assert_eq!(second, first);
    assert_eq!(fake.secret_creates(), 1);
}

#[tokio::test]
async fn a_start_that_loses_the_create_race_uses_the_winners_root() {
    let fake = FakeKube::start().await;
    let winner = Ca::generate("cluster.local").unwrap();
    fake.race_next_secret_create(json!({
        "root-cert.pem": b64(winner.root_pem()),
        "root-key.pem": b64(&winner.key_pem()),
    }));
    let ours = root_of(&fake).await;
    assert_eq!(ours, winner.root_pem());
    assert_eq!(fake.secret_creates(), 0);
}

#[tokio::test]
async fn a_secret_without_the_key_or_with_garbage_is_refused_by_name() {
    let fake = FakeKube::start().await;
    let only_cert = Ca::generate("cluster.local").unwrap();
    fake.put_secret(
        NS,
        NAME,
        json!({"root-cert.pem": b64(only_cert.root_pem())}),
    );
    let error = root_source(&client(&fake), NS, NAME, "cluster.local")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("Secret istio-system/mesh-ca-secret") && error.contains("root-key.pem"),
        "{error}"
    );

    fake.put_secret(
        NS,
        NAME,
        json!({"root-cert.pem": b64("not a certificate"), "root-key.pem": b64("nor a key")}),
    );
    let source = root_source(&client(&fake), NS, NAME, "cluster.local")
        .await
        .unwrap();
    let error = Ca::start(&source, "cluster.local").unwrap_err().to_string();
    assert!(
        error.contains("Secret istio-system/mesh-ca-secret"),
        "{error}"
    );
    // Nothing was overwritten: the operator's Secret is theirs to fix.
    assert_eq!(fake.secret_creates(), 0);
}
