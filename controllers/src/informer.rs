//! Informers: an in-memory cache of every object of one resource, kept current by a watch from
//! the revision of an initial list (relisting when the watch falls off compacted history), and
//! a broadcast of every change to the controllers that care.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::client::{Client, Resource, WatchError, WatchEvent};

/// `namespace/name` (or `name` for cluster-scoped objects).
pub fn key_of(obj: &Value) -> String {
    let name = obj.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or("");
    match obj.pointer("/metadata/namespace").and_then(|n| n.as_str()).filter(|s| !s.is_empty()) {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// A change to one object: `old` absent for additions, `new` absent for deletions.
#[derive(Debug, Clone)]
pub struct Change {
    pub key: String,
    pub old: Option<Arc<Value>>,
    pub new: Option<Arc<Value>>,
}

pub struct Informer {
    pub resource: Resource,
    store: RwLock<BTreeMap<String, Arc<Value>>>,
    changes: broadcast::Sender<Change>,
    synced: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Informer {
    /// Starts the list+watch loop; the informer is usable at once and `synced()` resolves after
    /// the first list.
    pub fn start(client: Arc<dyn Client>, resource: Resource) -> Arc<Informer> {
        let (changes, _) = broadcast::channel(65536);
        let (synced, _) = watch::channel(false);
        let inf = Arc::new(Informer { resource, store: RwLock::new(BTreeMap::new()), changes, synced, task: Mutex::new(None) });
        let weak = Arc::downgrade(&inf);
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let Some(inf) = weak.upgrade() else { return };
                match inf.list_and_watch(client.as_ref()).await {
                    Ok(()) => backoff = Duration::from_millis(100),
                    Err(e) => {
                        tracing::debug!(resource = %inf.resource.gvr(), error = %e, "informer restarting");
                        drop(inf);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
        *inf.task.lock().expect("informer task lock") = Some(task);
        inf
    }

    /// Stops the list+watch loop (the cache stays as it was).
    pub fn stop(&self) {
        if let Some(t) = self.task.lock().expect("informer task lock").take() {
            t.abort();
        }
    }

    async fn list_and_watch(&self, client: &dyn Client) -> Result<(), WatchError> {
        let (items, rev) = client.list(self.resource).await.map_err(|e| WatchError::Other(e.to_string()))?;
        let fresh: BTreeMap<String, Arc<Value>> = items.into_iter().map(|o| (key_of(&o), Arc::new(o))).collect();
        // Reconcile the cache with the fresh list, telling subscribers what changed.
        let mut notes = Vec::new();
        {
            let mut store = self.store.write().expect("informer lock");
            for (k, old) in store.iter() {
                if !fresh.contains_key(k) {
                    notes.push(Change { key: k.clone(), old: Some(old.clone()), new: None });
                }
            }
            for (k, new) in &fresh {
                match store.get(k) {
                    Some(old) if rv(old) == rv(new) => {}
                    old => notes.push(Change { key: k.clone(), old: old.cloned(), new: Some(new.clone()) }),
                }
            }
            *store = fresh;
        }
        for n in notes {
            let _ = self.changes.send(n);
        }
        self.synced.send_replace(true);
        let mut stream = client.watch(self.resource, rev).await?;
        while let Some(ev) = stream.next().await {
            let ev = ev?;
            let (obj, deleted) = match ev {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => (o, false),
                WatchEvent::Deleted(o) => (o, true),
            };
            let key = key_of(&obj);
            let new = Arc::new(obj);
            let old = {
                let mut store = self.store.write().expect("informer lock");
                if deleted { store.remove(&key) } else { store.insert(key.clone(), new.clone()) }
            };
            let _ = self.changes.send(Change { key, old, new: if deleted { None } else { Some(new) } });
        }
        Err(WatchError::Other("watch ended".into()))
    }

    /// Waits for the first list to be in the cache.
    pub async fn synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.store.read().expect("informer lock").get(key).cloned()
    }

    pub fn list(&self) -> Vec<Arc<Value>> {
        self.store.read().expect("informer lock").values().cloned().collect()
    }

    /// Objects of one namespace.
    pub fn list_namespace(&self, ns: &str) -> Vec<Arc<Value>> {
        let prefix = format!("{ns}/");
        self.store.read().expect("informer lock").range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix)).map(|(_, v)| v.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.store.read().expect("informer lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn rv(o: &Value) -> Option<&str> {
    o.pointer("/metadata/resourceVersion").and_then(|r| r.as_str())
}

/// One informer per resource, shared by every controller of a master.
#[derive(Clone)]
pub struct Informers {
    client: Arc<dyn Client>,
    by_resource: Arc<Mutex<HashMap<String, Arc<Informer>>>>,
}

impl Informers {
    pub fn new(client: Arc<dyn Client>) -> Informers {
        Informers { client, by_resource: Arc::default() }
    }

    pub fn get(&self, resource: Resource) -> Arc<Informer> {
        let mut map = self.by_resource.lock().expect("informers lock");
        map.entry(resource.gvr()).or_insert_with(|| Informer::start(self.client.clone(), resource)).clone()
    }

    /// Stops every informer (leadership lost).
    pub fn stop_all(&self) {
        for inf in self.by_resource.lock().expect("informers lock").values() {
            inf.stop();
        }
    }
}
