//! Ratings POSTed to v1 and the fault variants, kept in process memory.
//!
//! The original keeps them in an array that grows forever; a demo left running under a
//! load generator that POSTs would eventually run out of memory. We keep at most
//! [`MAX_IDS`] products and forget the oldest one first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use serde_json::Value;

use crate::id::ProductId;

/// How many products can have POSTed ratings at once. With bodies capped at 64 KiB this
/// bounds the store at about 64 MiB in the worst case.
pub const MAX_IDS: usize = 1000;

/// POSTed ratings by product id.
#[derive(Debug)]
pub struct RatingsStore {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    ratings: HashMap<ProductId, Value>,
    /// Ids in the order they were first stored, oldest first, for eviction.
    order: VecDeque<ProductId>,
}

impl Default for RatingsStore {
    fn default() -> Self {
        Self::with_capacity(MAX_IDS)
    }
}

impl RatingsStore {
    /// A store that keeps at most `capacity` ids (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::default(),
        }
    }

    /// The ratings last POSTed for `id`.
    pub fn get(&self, id: &ProductId) -> Option<Value> {
        self.lock().ratings.get(id).cloned()
    }

    /// Stores `ratings` for `id`, replacing earlier ones and evicting the oldest id when full.
    pub fn put(&self, id: ProductId, ratings: Value) {
        let mut inner = self.lock();
        if let Some(slot) = inner.ratings.get_mut(&id) {
            *slot = ratings;
            return;
        }
        while inner.order.len() >= self.capacity {
            if let Some(oldest) = inner.order.pop_front() {
                inner.ratings.remove(&oldest);
            }
        }
        inner.order.push_back(id.clone());
        inner.ratings.insert(id, ratings);
    }

    /// How many ids have stored ratings.
    pub fn len(&self) -> usize {
        self.lock().ratings.len()
    }

    /// Whether nothing has been stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The critical sections cannot leave the maps inconsistent, so a panic elsewhere
        // while holding the lock is no reason to stop serving.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn id(n: u32) -> ProductId {
        ProductId::parse_int(&n.to_string()).unwrap()
    }

    #[test]
    fn replaces_and_evicts_the_oldest_id() {
        let store = RatingsStore::with_capacity(2);
        assert!(store.is_empty());
        store.put(id(1), json!(1));
        store.put(id(2), json!(2));
        store.put(id(1), json!("one"));
        assert_eq!(store.get(&id(1)), Some(json!("one")));
        store.put(id(3), json!(3));
        assert_eq!(store.len(), 2);
        assert_eq!(
            store.get(&id(1)),
            None,
            "the oldest id goes first, even if updated since"
        );
        assert_eq!(store.get(&id(2)), Some(json!(2)));
        assert_eq!(store.get(&id(3)), Some(json!(3)));
    }
}
