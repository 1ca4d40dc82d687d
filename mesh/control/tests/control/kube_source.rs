//! The Kubernetes source against a fake API server: what `kubectl apply` of a routing file
//! does to the configuration must be exactly what the same file in the config directory
//! does, through adds, edits, deletes, dropped watches and relists; a bad object is
//! reported and left out.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mesh_api::wire::WorkloadSpec;
use mesh_control::kube::{KubeSource, Retry};
use mesh_control::source::DirSource;
use mesh_control::{Control, Settings};
use serde_json::{Value, json};

use crate::fake_kube::FakeKube;
use crate::support::shipped;

/// A sidecar and the ingress gateway: their compiled tables are compared.
const WORKLOADS: [&str; 2] = ["productpage-v1", "istio-ingressgateway"];

const NEGATIVE_WEIGHT: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: details}\nspec:\n  hosts: [details]\n  http:\n  - route:\n    - destination: {host: details, subset: v1}\n      weight: -10\n    - destination: {host: details, subset: v2}\n      weight: 110\n";

/// Short retries: the tests wait for notifications, and a missing CRD is asked for again
/// within milliseconds.
const QUICK: Retry = Retry {
    first: Duration::from_millis(10),
    max: Duration::from_millis(50),
};

fn control() -> Arc<Control> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let control = Control::new(Settings::default()).unwrap();
    for (name, body) in [
        (
            WORKLOADS[0],
            json!({"name": WORKLOADS[0], "namespace": "default", "service": "productpage",
                   "labels": {"app": "productpage", "version": "v1"},
                   "address": "127.0.0.1:15106", "sidecar": true, "mode": "sidecar"}),
        ),
        (
            WORKLOADS[1],
            json!({"name": WORKLOADS[1], "namespace": "istio-system",
                   "labels": {"istio": "ingressgateway"}, "mode": "gateway"}),
        ),
    ] {
        let spec: WorkloadSpec = serde_json::from_value(body).unwrap();
        assert_eq!(control.register(spec).unwrap(), name);
    }
    control
}

/// A control plane following the fake's objects.
fn following(fake: &FakeKube) -> Arc<Control> {
    let control = control();
    let config = kube::Config::new(fake.url.parse().unwrap());
    let client = mesh_control::kube::client_for(config).unwrap();
    control.follow_source(KubeSource::start(&client, QUICK));
    control
}

/// What proxies would get, and the resources in force without where they came from.
fn compiled(control: &Control) -> Value {
    let mut resources: Vec<Value> = control
        .resources(None)
        .into_iter()
        .map(|entry| json!([entry.kind, entry.namespace, entry.name, entry.resource]))
        .collect();
    resources.sort_by_key(ToString::to_string);
    let tables: Vec<Value> = WORKLOADS
        .iter()
        .map(|w| serde_json::to_value(control.proxy_config(w).unwrap().table).unwrap())
        .collect();
    json!({"resources": resources, "tables": tables})
}

/// The routing files a test expects to be in force, by name.
#[derive(Clone)]
struct Files(Vec<(String, String)>);

impl Files {
    /// The files a fresh Bookinfo and the routing labs start with.
    fn base() -> Self {
        Self(
            [
                "bookinfo-gateway.yaml",
                "destination-rule-all.yaml",
                "virtual-service-all-v1.yaml",
            ]
            .into_iter()
            .map(|f| (f.to_owned(), shipped(f)))
            .collect(),
        )
    }

    /// Every object of these files, created as `kubectl apply -f` would.
    fn apply_to(&self, fake: &FakeKube) {
        for (_, text) in &self.0 {
            fake.apply(text);
        }
    }

    /// Plus a shipped file, whose objects replace those of the same name.
    fn with(mut self, file: &str) -> Self {
        let text = shipped(file);
        for line in text.lines().filter(|l| l.starts_with("  name: ")) {
            self = self.without(&line["  name: ".len()..]);
        }
        self.0.push((file.to_owned(), text));
        self
    }

    /// Without the VirtualService `name`.
    fn without(mut self, name: &str) -> Self {
        let named = format!("\n  name: {name}\n");
        for (_, text) in &mut self.0 {
            *text = text
                .split("\n---\n")
                .filter(|doc| !(doc.contains("kind: VirtualService") && doc.contains(&named)))
                .collect::<Vec<_>>()
                .join("\n---\n");
        }
        self
    }

    /// What a control plane reading these files from its config directory compiles.
    fn compiled(&self) -> Value {
        static DIRS: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mesh-control-kube-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in &self.0 {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let control = control();
        control.load_source(&mut DirSource::new(&dir)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        compiled(&control)
    }
}

/// Waits until `done` holds: on the control plane's change notification, in rounds of at
/// most 250 ms (a rejected change bumps no version), 20 s in all.
async fn until(control: &Control, what: &str, mut done: impl FnMut(&Control) -> bool) {
    for _ in 0..80 {
        let held = control.version().to_string();
        if done(control) {
            return;
        }
        control
            .poll(WORKLOADS[0], Some(&held), Some(Duration::from_millis(250)))
            .await
            .unwrap();
    }
    panic!(
        "{what}: not reached; resources: {:?}",
        control.resources(None)
    );
}

/// Waits until the control plane compiles what `files` compile to.
async fn until_like(control: &Control, what: &str, files: &Files) {
    let expected = files.compiled();
    until(control, what, |c| compiled(c) == expected).await;
}

/// A fake cluster holding the base files, and a control plane following it.
async fn started() -> (FakeKube, Arc<Control>) {
    let fake = FakeKube::start().await;
    Files::base().apply_to(&fake);
    let control = following(&fake);
    until_like(&control, "initial list", &Files::base()).await;
    (fake, control)
}

#[tokio::test]
async fn kubectl_apply_and_delete_route_like_the_same_files() {
    let (fake, control) = started().await;
    let entries = control.resources(None);
    assert!(
        entries.iter().all(|e| e.source == "kubernetes"),
        "{entries:?}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e.file == "VirtualService default/reviews"),
        "{entries:?}"
    );

    // kubectl apply -f virtual-service-reviews-test-v2.yaml: an edit of VirtualService reviews.
    fake.apply(&shipped("virtual-service-reviews-test-v2.yaml"));
    let files = Files::base().with("virtual-service-reviews-test-v2.yaml");
    until_like(&control, "modified", &files).await;

    // A new object and a deletion.
    fake.apply(&shipped("virtual-service-ratings-test-delay.yaml"));
    fake.delete("VirtualService", "default", "details");
    let files = files
        .with("virtual-service-ratings-test-delay.yaml")
        .without("details");
    until_like(&control, "added and deleted", &files).await;
    assert!(
        control.config_errors().is_empty(),
        "{:?}",
        control.config_errors()
    );
}

#[tokio::test]
async fn a_dropped_watch_resumes_and_a_compacted_one_relists() {
    let (fake, control) = started().await;
    let lists = fake.lists("VirtualService");

    // The watch drops; a change made meanwhile arrives when it resumes (from history).
    fake.pause_watches();
    fake.apply(&shipped("virtual-service-reviews-test-v2.yaml"));
    fake.resume_watches();
    let files = Files::base().with("virtual-service-reviews-test-v2.yaml");
    until_like(&control, "resumed watch", &files).await;
    assert_eq!(
        fake.lists("VirtualService"),
        lists,
        "a resumed watch does not list"
    );

    // The watch drops and the history is compacted: the resumed watch gets 410 Gone, the
    // watcher lists again and notices a deletion it never got an event for.
    fake.pause_watches();
    fake.delete("VirtualService", "default", "reviews");
    fake.compact();
    fake.resume_watches();
    until_like(&control, "relisted", &files.without("reviews")).await;
    assert!(
        fake.lists("VirtualService") > lists,
        "410 Gone makes it list"
    );
}

#[tokio::test]
async fn an_invalid_object_is_reported_and_left_out_and_the_rest_applies() {
    let (fake, control) = started().await;

    // A bad edit of VirtualService details is left out (the cluster holds only the bad
    // version, so there is no good one to keep); the other edit applies.
    fake.apply(NEGATIVE_WEIGHT);
    fake.apply(&shipped("virtual-service-reviews-test-v2.yaml"));
    let files = Files::base()
        .with("virtual-service-reviews-test-v2.yaml")
        .without("details");
    until_like(&control, "bad object left out", &files).await;
    let errors = control.config_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0].change,
        "kubernetes VirtualService default/details"
    );
    assert!(
        errors[0].errors[0].starts_with("VirtualService default/details: "),
        "{errors:?}"
    );
    assert!(errors[0].error.contains("weight"), "{errors:?}");
    let metrics = control.metrics_text().unwrap();
    assert!(
        metrics.contains("mesh_control_config_errors_total 1"),
        "{metrics}"
    );

    // Other changes do not report it again; fixing it brings it in.
    fake.apply(&shipped("virtual-service-ratings-test-delay.yaml"));
    let files = files.with("virtual-service-ratings-test-delay.yaml");
    until_like(&control, "another edit", &files).await;
    assert_eq!(control.config_errors().len(), 1);
    fake.apply(&shipped("virtual-service-details-v2.yaml"));
    until_like(
        &control,
        "fixed",
        &files.with("virtual-service-details-v2.yaml"),
    )
    .await;
    assert_eq!(control.config_errors().len(), 1);
}

#[tokio::test]
async fn a_change_the_whole_configuration_rejects_keeps_the_last_good_one() {
    let (fake, control) = started().await;
    // Routed to through the API, not the cluster: a DestinationRule without subset v3
    // breaks that route, and leaving out a Kubernetes object cannot fix it.
    control
        .apply(
            "reviews-v3.yaml",
            &shipped("virtual-service-reviews-v3.yaml"),
        )
        .unwrap();
    let good = compiled(&control);
    let version = control.version();
    fake.apply(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets:\n  - {name: v1, labels: {version: v1}}\n",
    );
    until(&control, "rejected", |c| !c.config_errors().is_empty()).await;
    let errors = control.config_errors();
    assert_eq!(errors[0].change, "kubernetes", "{errors:?}");
    assert!(errors[0].error.contains("\"v3\""), "{errors:?}");
    assert_eq!(control.version(), version, "nothing was pushed");
    assert_eq!(compiled(&control), good);
}

#[tokio::test]
async fn a_kind_that_is_not_served_does_not_hold_back_the_others_and_is_asked_for_again() {
    let fake = FakeKube::start().await;
    fake.set_served("PeerAuthentication", false);
    Files::base().apply_to(&fake);
    let control = following(&fake);
    until_like(&control, "without PeerAuthentication", &Files::base()).await;

    // The CRD gets installed and an object created: a retry finds it.
    fake.set_served("PeerAuthentication", true);
    let strict = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec:\n  mtls: {mode: STRICT}\n";
    fake.apply(strict);
    let mut files = Files::base();
    files
        .0
        .push(("peer-authentication.yaml".to_owned(), strict.to_owned()));
    until_like(&control, "PeerAuthentication served", &files).await;
}

#[tokio::test]
async fn gateway_api_objects_route_like_the_same_files() {
    let fake = FakeKube::start().await;
    let files = Files(
        ["bookinfo-gateway.yaml", "route-reviews-90-10.yaml"]
            .into_iter()
            .map(|f| (f.to_owned(), shipped(&format!("gateway-api/{f}"))))
            .collect(),
    );
    files.apply_to(&fake);
    // The same name in both groups: Istio's Gateway beside the Gateway API's.
    fake.apply(&shipped("bookinfo-gateway.yaml"));
    let files = Files(
        files
            .0
            .into_iter()
            .chain([(
                "istio-gateway.yaml".to_owned(),
                shipped("bookinfo-gateway.yaml"),
            )])
            .collect(),
    );
    let control = following(&fake);
    until_like(&control, "Gateway API objects listed", &files).await;
    let entries = control.resources(None);
    for (kind, file) in [
        (
            "Gateway.gateway.networking.k8s.io",
            "Gateway.gateway.networking.k8s.io default/bookinfo-gateway",
        ),
        ("Gateway", "Gateway default/bookinfo-gateway"),
        ("HTTPRoute", "HTTPRoute default/reviews"),
    ] {
        assert!(
            entries
                .iter()
                .any(|e| serde_json::to_value(e.kind).unwrap() == kind && e.file == file),
            "no {kind} from {file}: {entries:?}"
        );
    }

    // kubectl delete httproute reviews: the 90/10 split is gone.
    fake.delete("HTTPRoute", "default", "reviews");
    let files = Files(
        files
            .0
            .into_iter()
            .filter(|(name, _)| name != "route-reviews-90-10.yaml")
            .collect(),
    );
    until_like(&control, "HTTPRoute deleted", &files).await;
    assert!(
        control.config_errors().is_empty(),
        "{:?}",
        control.config_errors()
    );
}
