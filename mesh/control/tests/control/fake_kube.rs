//! A fake Kubernetes API server on 127.0.0.1:0 for the Istio kinds: list, and watch as a
//! stream of JSON lines from a resourceVersion, the way the real one answers. The test
//! drives it: apply/delete objects, stop every watch and hold new ones back
//! ([`FakeKube::pause_watches`]), forget the event history so a resumed watch gets
//! 410 Gone and must list again ([`FakeKube::compact`]), stop serving a kind (a CRD that
//! is not installed). Core Secrets can be read and created one by one (the CA root's),
//! and a create can be made to lose a race ([`FakeKube::race_next_secret_create`]).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

/// `(kind, group, plural)` of each kind served. The test names a kind by its `kind`, or
/// by `Kind.group` where two groups share the name (`Gateway.gateway.networking.k8s.io`).
const KINDS: [(&str, &str, &str); 8] = [
    ("VirtualService", "networking.istio.io", "virtualservices"),
    ("DestinationRule", "networking.istio.io", "destinationrules"),
    ("Gateway", "networking.istio.io", "gateways"),
    ("ServiceEntry", "networking.istio.io", "serviceentries"),
    (
        "PeerAuthentication",
        "security.istio.io",
        "peerauthentications",
    ),
    (
        "AuthorizationPolicy",
        "security.istio.io",
        "authorizationpolicies",
    ),
    ("Gateway", "gateway.networking.k8s.io", "gateways"),
    ("HTTPRoute", "gateway.networking.k8s.io", "httproutes"),
];

#[derive(Default)]
struct Kind {
    served: bool,
    objects: BTreeMap<(String, String), Value>,
    /// `(resourceVersion, event line)` since the last compaction.
    history: Vec<(u64, String)>,
    lists: usize,
}

struct Store {
    /// The last resourceVersion handed out (one counter for every kind, like etcd's).
    version: u64,
    /// Watches from before this version get 410 Gone.
    compacted: u64,
    /// One entry per [`KINDS`] entry, by index.
    kinds: BTreeMap<usize, Kind>,
}

/// Core Secrets by `(namespace, name)`, and one to slip in before the next create.
#[derive(Default)]
struct Secrets {
    objects: BTreeMap<(String, String), Value>,
    racing: Option<Value>,
    creates: usize,
}

struct Inner {
    store: Mutex<Store>,
    secrets: Mutex<Secrets>,
    /// Every event, as `(index into KINDS, event line)`.
    live: broadcast::Sender<(usize, String)>,
    /// Bumped to end every open watch.
    epoch: watch::Sender<u64>,
    /// New watches wait while this is false.
    open: watch::Sender<bool>,
}

pub(crate) struct FakeKube {
    pub(crate) url: String,
    inner: Arc<Inner>,
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    watch: Option<String>,
    #[serde(default, rename = "resourceVersion")]
    resource_version: Option<String>,
}

/// The index of a kind named `Kind` (the first group serving it) or `Kind.group`.
fn index_of(name: &str) -> usize {
    KINDS
        .iter()
        .position(|(k, g, _)| *k == name || format!("{k}.{g}") == name)
        .unwrap_or_else(|| panic!("the fake serves no kind {name}"))
}

/// The index of the kind of an object with `apiVersion` and `kind`.
fn index_of_type(api_version: &str, kind: &str) -> usize {
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    index_of(&format!("{kind}.{group}"))
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

impl FakeKube {
    pub(crate) async fn start() -> Self {
        let store = Store {
            version: 1,
            compacted: 0,
            kinds: KINDS
                .iter()
                .enumerate()
                .map(|(index, _)| {
                    (
                        index,
                        Kind {
                            served: true,
                            ..Kind::default()
                        },
                    )
                })
                .collect(),
        };
        let inner = Arc::new(Inner {
            store: Mutex::new(store),
            secrets: Mutex::new(Secrets::default()),
            live: broadcast::channel(1024).0,
            epoch: watch::channel(0).0,
            open: watch::channel(true).0,
        });
        let router = Router::new()
            .route("/apis/{group}/{version}/{plural}", get(serve))
            .route(
                "/api/v1/namespaces/{namespace}/secrets/{name}",
                get(get_secret),
            )
            .route(
                "/api/v1/namespaces/{namespace}/secrets",
                axum::routing::post(create_secret),
            )
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, inner }
    }

    /// Stores a Secret as `kubectl apply` would (`data` values base64, as on the wire).
    pub(crate) fn put_secret(&self, namespace: &str, name: &str, data: Value) {
        let object = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
            "type": "Opaque", "data": data});
        let mut secrets = self.inner.secrets.lock().unwrap();
        secrets
            .objects
            .insert((namespace.to_owned(), name.to_owned()), object);
    }

    /// The Secret `namespace`/`name`, if any.
    pub(crate) fn secret(&self, namespace: &str, name: &str) -> Option<Value> {
        let secrets = self.inner.secrets.lock().unwrap();
        secrets
            .objects
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// How many Secret creates succeeded.
    pub(crate) fn secret_creates(&self) -> usize {
        self.inner.secrets.lock().unwrap().creates
    }

    /// The next Secret create finds `data` stored under its name by someone else first,
    /// and gets 409 AlreadyExists, as a second control plane starting at once would.
    pub(crate) fn race_next_secret_create(&self, data: Value) {
        self.inner.secrets.lock().unwrap().racing = Some(data);
    }

    /// What `kubectl apply -f` does with a YAML text: creates or replaces each object,
    /// with the fields the API server adds (which the control plane must ignore).
    pub(crate) fn apply(&self, yaml: &str) {
        use serde::Deserialize as _;
        for document in serde_norway::Deserializer::from_str(yaml) {
            let mut object: Value = Value::deserialize(document).unwrap();
            if object.is_null() {
                continue;
            }
            let index = index_of_type(
                object["apiVersion"].as_str().unwrap(),
                object["kind"].as_str().unwrap(),
            );
            let metadata = object["metadata"].as_object_mut().unwrap();
            metadata
                .entry("namespace")
                .or_insert_with(|| json!("default"));
            let key = (
                metadata["namespace"].as_str().unwrap().to_owned(),
                metadata["name"].as_str().unwrap().to_owned(),
            );
            metadata.insert("uid".into(), json!(format!("uid-{}-{}", key.0, key.1)));
            metadata.insert(
                "managedFields".into(),
                json!([{"manager": "kubectl-client-side-apply", "operation": "Update"}]),
            );
            let copy = object.to_string();
            object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
                json!(copy);
            object["status"] = json!({});
            self.change(index, key, Some(object));
        }
    }

    /// `kubectl delete`.
    pub(crate) fn delete(&self, kind: &str, namespace: &str, name: &str) {
        self.change(
            index_of(kind),
            (namespace.to_owned(), name.to_owned()),
            None,
        );
    }

    fn change(&self, index: usize, key: (String, String), object: Option<Value>) {
        let mut store = self.inner.store.lock().unwrap();
        store.version += 1;
        let version = store.version;
        let entry = store.kinds.get_mut(&index).unwrap();
        let (kind, mut object) = match object {
            Some(object) => {
                let kind = if entry.objects.contains_key(&key) {
                    "MODIFIED"
                } else {
                    "ADDED"
                };
                (kind, object)
            }
            None => (
                "DELETED",
                entry
                    .objects
                    .remove(&key)
                    .unwrap_or_else(|| panic!("delete of unknown {key:?}")),
            ),
        };
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        if kind != "DELETED" {
            entry.objects.insert(key, object.clone());
        }
        let line = json!({"type": kind, "object": object}).to_string();
        entry.history.push((version, line.clone()));
        // Sent under the lock: a watch that starts now sees it once, in history or live.
        let _ = self.inner.live.send((index, line));
    }

    /// Serve or stop serving a kind (install or remove its CRD).
    pub(crate) fn set_served(&self, kind: &str, served: bool) {
        let mut store = self.inner.store.lock().unwrap();
        store.kinds.get_mut(&index_of(kind)).unwrap().served = served;
    }

    /// Ends every open watch and holds new ones back until [`FakeKube::resume_watches`].
    pub(crate) fn pause_watches(&self) {
        self.inner.open.send_replace(false);
        self.inner.epoch.send_modify(|e| *e += 1);
    }

    pub(crate) fn resume_watches(&self) {
        self.inner.open.send_replace(true);
    }

    /// Forgets the event history: a watch from an older resourceVersion gets 410 Gone.
    pub(crate) fn compact(&self) {
        let mut store = self.inner.store.lock().unwrap();
        store.compacted = store.version;
        for kind in store.kinds.values_mut() {
            kind.history.clear();
        }
    }

    /// How many times `kind` was listed.
    pub(crate) fn lists(&self, kind: &str) -> usize {
        self.inner.store.lock().unwrap().kinds[&index_of(kind)].lists
    }
}

async fn serve(
    State(inner): State<Arc<Inner>>,
    Path((group, version, plural)): Path<(String, String, String)>,
    Query(params): Query<Params>,
) -> Response {
    let known = KINDS
        .iter()
        .position(|(_, g, p)| *g == group && *p == plural && version == "v1");
    let Some(index) = known else {
        return not_found();
    };
    let kind = KINDS[index].0;
    if params.watch.as_deref() == Some("true") {
        let from = params
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        return watch_from(inner, index, from).await;
    }
    let mut store = inner.store.lock().unwrap();
    let version = store.version;
    let entry = store.kinds.get_mut(&index).unwrap();
    if !entry.served {
        return not_found();
    }
    entry.lists += 1;
    let items: Vec<Value> = entry.objects.values().cloned().collect();
    let body = json!({
        "apiVersion": format!("{group}/v1"), "kind": format!("{kind}List"),
        "metadata": {"resourceVersion": version.to_string()}, "items": items,
    });
    json_response(StatusCode::OK, body.to_string())
}

async fn get_secret(
    State(inner): State<Arc<Inner>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let secrets = inner.secrets.lock().unwrap();
    match secrets.objects.get(&(namespace, name.clone())) {
        Some(object) => json_response(StatusCode::OK, object.to_string()),
        None => {
            let body = status(404, "NotFound", &format!("secrets \"{name}\" not found"));
            json_response(StatusCode::NOT_FOUND, body.to_string())
        }
    }
}

async fn create_secret(
    State(inner): State<Arc<Inner>>,
    Path(namespace): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(mut object) = serde_json::from_slice::<Value>(&body) else {
        let body = status(400, "BadRequest", "the body is not a JSON object");
        return json_response(StatusCode::BAD_REQUEST, body.to_string());
    };
    let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let key = (namespace.clone(), name.clone());
    let mut secrets = inner.secrets.lock().unwrap();
    if let Some(data) = secrets.racing.take() {
        let other = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
            "type": "Opaque", "data": data});
        secrets.objects.insert(key.clone(), other);
    }
    if secrets.objects.contains_key(&key) {
        let body = status(
            409,
            "AlreadyExists",
            &format!("secrets \"{name}\" already exists"),
        );
        return json_response(StatusCode::CONFLICT, body.to_string());
    }
    object["metadata"]["resourceVersion"] = json!("1");
    secrets.objects.insert(key, object.clone());
    secrets.creates += 1;
    json_response(StatusCode::CREATED, object.to_string())
}

fn not_found() -> Response {
    let body = status(
        404,
        "NotFound",
        "the server could not find the requested resource",
    );
    json_response(StatusCode::NOT_FOUND, body.to_string())
}

fn json_response(code: StatusCode, body: String) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn watch_from(inner: Arc<Inner>, index: usize, from: u64) -> Response {
    let mut open = inner.open.subscribe();
    let _ = open.wait_for(|open| *open).await;
    let (lines, rx) = mpsc::unbounded_channel::<String>();
    {
        let store = inner.store.lock().unwrap();
        let entry = &store.kinds[&index];
        if !entry.served {
            return not_found();
        }
        if from < store.compacted {
            let gone = status(410, "Expired", "too old resource version");
            let _ = lines.send(json!({"type": "ERROR", "object": gone}).to_string());
        } else {
            for (_, line) in entry.history.iter().filter(|(v, _)| *v > from) {
                let _ = lines.send(line.clone());
            }
            let mut live = inner.live.subscribe();
            let mut epoch = inner.epoch.subscribe();
            let mine = *epoch.borrow_and_update();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        biased;
                        _ = epoch.changed() => return,
                        event = live.recv() => match event {
                            // An event sent after the watch was ended is not for it.
                            Ok(_) if *epoch.borrow() != mine => return,
                            Ok((i, line)) if i == index => {
                                if lines.send(line).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => return,
                        },
                    }
                }
            });
        }
    }
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        let line = rx.recv().await?;
        Some((Ok::<_, Infallible>(Bytes::from(line + "\n")), rx))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response()
}
