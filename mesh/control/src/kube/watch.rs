//! A watcher per kind over every namespace, the object set they keep, and the
//! [`KubeSource`] the control plane follows.
//!
//! kube's watcher lists, then watches from the list's resourceVersion, resumes a dropped
//! watch where it stopped, and lists again when the server answers 410 Gone (its history
//! was compacted): a relist replaces the kind's objects whole, so a deletion missed while
//! disconnected is not kept. The source publishes nothing until every kind has been listed
//! once (or is known not to be served), so that a start never pushes VirtualServices
//! without the DestinationRules they route to.

use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ::kube::core::DynamicObject;
use ::kube::runtime::watcher;
use ::kube::{Api, Client};
use futures_util::StreamExt;
use tokio::sync::watch as notify;
use tokio::task::JoinHandle;

use super::SOURCE_NAME;
use super::convert;
use super::kinds::{KINDS, WatchedKind};
use crate::source::{Admission, ConfigSource, NotifyingSource, SourceError, SourceFile};

/// How long a failing watch waits before trying again: `first`, doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// The first wait after a failure.
    pub first: Duration,
    /// The longest wait (a CRD that is not installed is asked for this often).
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

/// `(namespace, name)` of an object within its kind.
type ObjectKey = (String, String);

/// What is known of one kind.
#[derive(Debug, Default)]
struct KindState {
    /// Listed at least once, or known not to be served: the kind may be published.
    listed: bool,
    /// The objects in force.
    objects: BTreeMap<ObjectKey, SourceFile>,
    /// Objects of a list in progress; they replace `objects` when it completes.
    relist: Option<BTreeMap<ObjectKey, SourceFile>>,
}

/// The state the watch tasks write and the source reads.
#[derive(Debug)]
struct Shared {
    /// One entry per [`KINDS`] entry, same order.
    kinds: Mutex<Vec<KindState>>,
    /// Bumped after every change of `kinds`; wakes the source.
    changes: notify::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<KindState>> {
        self.kinds.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `change` on kind `index`; wakes the source when it says something changed.
    fn update(&self, index: usize, change: impl FnOnce(&mut KindState) -> bool) {
        let changed = {
            let mut kinds = self.lock();
            kinds.get_mut(index).is_some_and(change)
        };
        if changed {
            self.changes.send_modify(|generation| *generation += 1);
        }
    }

    fn apply(&self, index: usize, kind: &WatchedKind, event: watcher::Event<DynamicObject>) {
        self.update(index, |state| match event {
            watcher::Event::Init => {
                state.relist = Some(BTreeMap::new());
                false
            }
            watcher::Event::InitApply(object) => {
                if let (Some(relist), Some(key), Some(file)) = (
                    state.relist.as_mut(),
                    convert::key(&object),
                    convert::source_file(kind, &object),
                ) {
                    relist.insert(key, file);
                }
                false
            }
            watcher::Event::InitDone => {
                let listed = state.relist.take().unwrap_or_default();
                let changed = !state.listed || listed != state.objects;
                state.objects = listed;
                state.listed = true;
                changed
            }
            watcher::Event::Apply(object) => {
                let (Some(key), Some(file)) =
                    (convert::key(&object), convert::source_file(kind, &object))
                else {
                    return false;
                };
                // A write that changed nothing the mesh reads (status, labels of
                // kubectl's bookkeeping) is not a change.
                let same = state.objects.get(&key) == Some(&file);
                state.objects.insert(key, file);
                !same
            }
            watcher::Event::Delete(object) => convert::key(&object)
                .and_then(|key| state.objects.remove(&key))
                .is_some(),
        });
    }

    /// The kind is not served (its CRD is not installed, or was removed): it has no
    /// objects, and must not hold back the others.
    fn not_served(&self, index: usize) {
        self.update(index, |state| {
            let changed = !state.listed || !state.objects.is_empty();
            state.listed = true;
            state.objects.clear();
            state.relist = None;
            changed
        });
    }

    /// The first list failed for another reason (the API server unreachable, RBAC): the
    /// other kinds go ahead; this one's objects arrive when a retry succeeds.
    fn first_list_failed(&self, index: usize) {
        self.update(index, |state| {
            let first = !state.listed;
            state.listed = true;
            first
        });
    }
}

/// The Istio objects of the cluster as a [`ConfigSource`]: `poll` answers the complete set
/// (one [`SourceFile`] per object, sorted by kind, namespace and name) after a change.
/// Dropping it stops the watches.
#[derive(Debug)]
pub struct KubeSource {
    shared: Arc<Shared>,
    changes: notify::Receiver<u64>,
    published: Option<u64>,
    tasks: Vec<JoinHandle<()>>,
}

impl KubeSource {
    /// Starts watching every kind of [`KINDS`] in all namespaces. Needs a tokio runtime.
    pub fn start(client: &Client, retry: Retry) -> Self {
        let (sender, changes) = notify::channel(0);
        let shared = Arc::new(Shared {
            kinds: Mutex::new(KINDS.iter().map(|_| KindState::default()).collect()),
            changes: sender,
        });
        let tasks = KINDS
            .iter()
            .enumerate()
            .map(|(index, kind)| {
                let api = Api::<DynamicObject>::all_with(client.clone(), &kind.api_resource());
                tokio::spawn(watch_kind(api, index, *kind, Arc::clone(&shared), retry))
            })
            .collect();
        Self {
            shared,
            changes,
            published: None,
            tasks,
        }
    }
}

impl Drop for KubeSource {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl ConfigSource for KubeSource {
    fn name(&self) -> &str {
        SOURCE_NAME
    }

    fn poll(&mut self) -> Result<Option<Vec<SourceFile>>, SourceError> {
        // Read the generation before the objects: a change racing with us bumps it again
        // and wakes us once more.
        let generation = *self.changes.borrow_and_update();
        if self.published == Some(generation) {
            return Ok(None);
        }
        let kinds = self.shared.lock();
        if !kinds.iter().all(|k| k.listed) {
            return Ok(None);
        }
        let files = kinds
            .iter()
            .flat_map(|k| k.objects.values().cloned())
            .collect();
        drop(kinds);
        self.published = Some(generation);
        Ok(Some(files))
    }

    fn admission(&self) -> Admission {
        Admission::EachFile
    }
}

impl NotifyingSource for KubeSource {
    async fn changed(&mut self) -> bool {
        // The sender lives in `shared`, which we hold: this only fails if it is gone.
        self.changes.changed().await.is_ok()
    }
}

/// Runs kind `index`'s watcher for ever, feeding `shared`, waiting `retry` after errors.
async fn watch_kind(
    api: Api<DynamicObject>,
    index: usize,
    kind: WatchedKind,
    shared: Arc<Shared>,
    retry: Retry,
) {
    let mut events = pin!(watcher(api, watcher::Config::default()));
    let mut wait = retry.first;
    // The last problem logged, so a CRD missing for an hour is one warning, not 120.
    let mut failing: Option<String> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                if failing.take().is_some() {
                    tracing::info!(kind = kind.kind, "watching {} again", kind.plural);
                }
                wait = retry.first;
                shared.apply(index, &kind, event);
            }
            Err(error) => {
                let problem = if is_not_served(&error) {
                    shared.not_served(index);
                    format!(
                        "{}/{} {} are not served by the API server (is the CRD installed? kubectl apply -k k8s/crds); watching for them",
                        kind.group, kind.version, kind.plural
                    )
                } else {
                    if matches!(error, watcher::Error::InitialListFailed(_)) {
                        shared.first_list_failed(index);
                    }
                    format!("cannot watch {}: {error}; retrying", kind.plural)
                };
                if failing.as_deref() == Some(problem.as_str()) {
                    tracing::debug!("{problem}");
                } else {
                    tracing::warn!("{problem}");
                    failing = Some(problem);
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(retry.max);
            }
        }
    }
}

/// A 404 on the list or the watch: the resource type does not exist.
fn is_not_served(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(::kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(::kube::Error::Api(status)) => status.is_not_found(),
        _ => false,
    }
}
