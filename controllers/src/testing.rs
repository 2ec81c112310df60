//! An in-memory cluster implementing [`Client`], for controller tests: objects with revisions,
//! conditional updates, watches with history, finalizers, bindings. It does no defaulting or
//! validation beyond what the tests need.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use apimachinery::status::ApiError;
use async_trait::async_trait;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::client::{Binding, Client, DeleteOptions, Resource, WatchError, WatchEvent, res};
use crate::informer::key_of;

#[derive(Clone, Debug)]
struct Logged {
    rev: u64,
    gvr: String,
    event: WatchEvent,
}

#[derive(Default)]
struct State {
    rev: u64,
    objects: BTreeMap<(String, String), Value>,
    log: Vec<Logged>,
}

/// The in-memory cluster. Cheap to clone (shared state).
#[derive(Clone)]
pub struct FakeCluster {
    state: Arc<Mutex<State>>,
    tx: broadcast::Sender<Logged>,
}

impl Default for FakeCluster {
    fn default() -> Self {
        FakeCluster::new()
    }
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl FakeCluster {
    pub fn new() -> FakeCluster {
        let (tx, _) = broadcast::channel(1 << 16);
        FakeCluster { state: Arc::default(), tx }
    }

    pub fn client(&self) -> Arc<dyn Client> {
        Arc::new(self.clone())
    }

    /// Every object of a resource, sorted by key.
    pub fn objects(&self, resource: Resource) -> Vec<Value> {
        let s = self.state.lock().expect("fake lock");
        s.objects.iter().filter(|((g, _), _)| *g == resource.gvr()).map(|(_, v)| v.clone()).collect()
    }

    pub fn get(&self, resource: Resource, key: &str) -> Option<Value> {
        self.state.lock().expect("fake lock").objects.get(&(resource.gvr(), key.to_string())).cloned()
    }

    fn commit(&self, s: &mut State, resource: Resource, event: WatchEvent) {
        let l = Logged { rev: s.rev, gvr: resource.gvr(), event };
        s.log.push(l.clone());
        let _ = self.tx.send(l);
    }

    fn put(&self, resource: Resource, mut obj: Value, created: bool) -> Value {
        let mut s = self.state.lock().expect("fake lock");
        s.rev += 1;
        obj["metadata"]["resourceVersion"] = json!(s.rev.to_string());
        let key = (resource.gvr(), key_of(&obj));
        s.objects.insert(key, obj.clone());
        let ev = if created { WatchEvent::Added(obj.clone()) } else { WatchEvent::Modified(obj.clone()) };
        self.commit(&mut s, resource, ev);
        obj
    }

    fn remove(&self, resource: Resource, key: &str) -> Option<Value> {
        let mut s = self.state.lock().expect("fake lock");
        let obj = s.objects.remove(&(resource.gvr(), key.to_string()))?;
        s.rev += 1;
        let mut last = obj.clone();
        last["metadata"]["resourceVersion"] = json!(s.rev.to_string());
        self.commit(&mut s, resource, WatchEvent::Deleted(last));
        Some(obj)
    }

    fn not_found(resource: Resource, name: &str) -> ApiError {
        ApiError::NotFound { group_resource: resource.group_resource(), name: name.to_string() }
    }

    fn conflict(resource: Resource, name: &str) -> ApiError {
        ApiError::Conflict { group_resource: resource.group_resource(), name: name.to_string(), message: "the object has been modified".into() }
    }

    fn key(namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
            _ => name.to_string(),
        }
    }

    /// Replaces an object as a kubelet or a test would, ignoring revisions.
    pub fn set(&self, resource: Resource, obj: Value) -> Value {
        let exists = self.get(resource, &key_of(&obj)).is_some();
        self.put(resource, obj, !exists)
    }
}

fn rv_of(v: &Value) -> Option<&str> {
    v.pointer("/metadata/resourceVersion").and_then(|r| r.as_str()).filter(|s| !s.is_empty())
}

#[async_trait]
impl Client for FakeCluster {
    async fn list(&self, resource: Resource) -> Result<(Vec<Value>, u64), ApiError> {
        let s = self.state.lock().expect("fake lock");
        let items = s.objects.iter().filter(|((g, _), _)| *g == resource.gvr()).map(|(_, v)| v.clone()).collect();
        Ok((items, s.rev))
    }

    async fn watch(&self, resource: Resource, rev: u64) -> Result<BoxStream<'static, Result<WatchEvent, WatchError>>, WatchError> {
        let rx = self.tx.subscribe();
        let backlog: Vec<Logged> = self.state.lock().expect("fake lock").log.iter().filter(|l| l.rev > rev).cloned().collect();
        let gvr = resource.gvr();
        let last = backlog.last().map(|l| l.rev).unwrap_or(rev);
        let g2 = gvr.clone();
        let replay = futures::stream::iter(backlog.into_iter().filter(move |l| l.gvr == g2).map(|l| Ok(l.event)));
        let live = futures::stream::unfold((rx, last, gvr), |(mut rx, last, gvr)| async move {
            loop {
                match rx.recv().await {
                    Ok(l) if l.rev > last && l.gvr == gvr => return Some((Ok(l.event), (rx, l.rev, gvr))),
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => return Some((Err(WatchError::Gone), (rx, last, gvr))),
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(Box::pin(futures::StreamExt::chain(replay, live)))
    }

    async fn create(&self, resource: Resource, namespace: Option<&str>, mut obj: Value) -> Result<Value, ApiError> {
        if obj.pointer("/metadata/name").and_then(|n| n.as_str()).is_none_or(|n| n.is_empty()) {
            let prefix = obj.pointer("/metadata/generateName").and_then(|n| n.as_str()).unwrap_or("").to_string();
            if prefix.is_empty() {
                return Err(ApiError::BadRequest("name or generateName is required".into()));
            }
            obj["metadata"]["name"] = json!(format!("{prefix}{:05x}", rand::random::<u32>() & 0xfffff));
        }
        if resource.namespaced {
            obj["metadata"]["namespace"] = json!(namespace.unwrap_or("default"));
        }
        let key = key_of(&obj);
        if self.get(resource, &key).is_some() {
            let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
            return Err(ApiError::AlreadyExists { group: resource.group.into(), resource: resource.plural.into(), name });
        }
        obj["apiVersion"] = json!(resource.api_version());
        obj["kind"] = json!(resource.kind);
        obj["metadata"]["uid"] = json!(format!("uid-{:016x}", rand::random::<u64>()));
        obj["metadata"]["creationTimestamp"] = json!(now());
        obj["metadata"]["generation"] = json!(1);
        if resource.plural == "pods" && obj.pointer("/status/phase").is_none() {
            obj["status"] = json!({"phase": "Pending"});
        }
        Ok(self.put(resource, obj, true))
    }

    async fn update(&self, resource: Resource, obj: Value) -> Result<Value, ApiError> {
        let key = key_of(&obj);
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let cur = self.get(resource, &key).ok_or_else(|| Self::not_found(resource, &name))?;
        if let Some(rv) = rv_of(&obj)
            && Some(rv) != rv_of(&cur)
        {
            return Err(Self::conflict(resource, &name));
        }
        let mut new = obj.clone();
        new["metadata"]["uid"] = cur["metadata"]["uid"].clone();
        new["metadata"]["creationTimestamp"] = cur["metadata"]["creationTimestamp"].clone();
        let generation = cur.pointer("/metadata/generation").and_then(|g| g.as_i64()).unwrap_or(1);
        new["metadata"]["generation"] = json!(if new.get("spec") != cur.get("spec") { generation + 1 } else { generation });
        if resource.has_status {
            new["status"] = cur.get("status").cloned().unwrap_or(Value::Null);
        }
        let deleting = new.pointer("/metadata/deletionTimestamp").is_some();
        let no_finalizers = new.pointer("/metadata/finalizers").and_then(|f| f.as_array()).is_none_or(|a| a.is_empty());
        if deleting && no_finalizers {
            self.remove(resource, &key);
            return Ok(new);
        }
        Ok(self.put(resource, new, false))
    }

    async fn update_status(&self, resource: Resource, obj: Value) -> Result<Value, ApiError> {
        let key = key_of(&obj);
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let cur = self.get(resource, &key).ok_or_else(|| Self::not_found(resource, &name))?;
        if let Some(rv) = rv_of(&obj)
            && Some(rv) != rv_of(&cur)
        {
            return Err(Self::conflict(resource, &name));
        }
        let mut new = cur.clone();
        new["status"] = obj.get("status").cloned().unwrap_or(Value::Null);
        Ok(self.put(resource, new, false))
    }

    async fn merge_patch(&self, resource: Resource, namespace: Option<&str>, name: &str, patch: Value) -> Result<Value, ApiError> {
        let cur = self.get(resource, &Self::key(namespace, name)).ok_or_else(|| Self::not_found(resource, name))?;
        let mut new = cur.clone();
        merge(&mut new, &patch);
        if rv_of(&patch).is_none() {
            new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"].clone();
        }
        let mut new = new;
        if resource.has_status {
            // The main resource cannot change status.
            new["status"] = cur.get("status").cloned().unwrap_or(Value::Null);
        }
        self.update(resource, new).await
    }

    async fn merge_patch_status(&self, resource: Resource, namespace: Option<&str>, name: &str, patch: Value) -> Result<Value, ApiError> {
        let cur = self.get(resource, &Self::key(namespace, name)).ok_or_else(|| Self::not_found(resource, name))?;
        let mut new = cur.clone();
        merge(&mut new, &patch);
        new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"].clone();
        self.update_status(resource, new).await
    }

    async fn delete(&self, resource: Resource, namespace: Option<&str>, name: &str, opts: DeleteOptions) -> Result<(), ApiError> {
        let key = Self::key(namespace, name);
        let cur = self.get(resource, &key).ok_or_else(|| Self::not_found(resource, name))?;
        if let Some(uid) = &opts.uid
            && cur.pointer("/metadata/uid").and_then(|u| u.as_str()) != Some(uid.as_str())
        {
            return Err(Self::conflict(resource, name));
        }
        let mut finalizers: Vec<Value> = cur.pointer("/metadata/finalizers").and_then(|f| f.as_array()).cloned().unwrap_or_default();
        match opts.propagation.as_deref() {
            Some("Foreground") => finalizers.push(json!("foregroundDeletion")),
            Some("Orphan") => finalizers.push(json!("orphan")),
            _ => {}
        }
        if finalizers.is_empty() {
            self.remove(resource, &key);
        } else if cur.pointer("/metadata/deletionTimestamp").is_none() {
            let mut new = cur;
            new["metadata"]["deletionTimestamp"] = json!(now());
            new["metadata"]["finalizers"] = json!(finalizers);
            self.put(resource, new, false);
        }
        Ok(())
    }

    async fn bind(&self, bindings: Vec<Binding>) -> Vec<Result<(), ApiError>> {
        let pods = res("", "pods");
        let mut out = Vec::new();
        for b in bindings {
            let key = format!("{}/{}", b.namespace, b.name);
            let r = match self.get(pods, &key) {
                None => Err(Self::not_found(pods, &b.name)),
                Some(p) if p.pointer("/metadata/uid").and_then(|u| u.as_str()) != Some(b.uid.as_str()) => Err(Self::conflict(pods, &b.name)),
                Some(p) if p.pointer("/spec/nodeName").and_then(|n| n.as_str()).is_some_and(|n| !n.is_empty()) => Err(Self::conflict(pods, &b.name)),
                Some(mut p) => {
                    p["spec"]["nodeName"] = json!(b.node);
                    let conds = p["status"]["conditions"].as_array().cloned().unwrap_or_default();
                    let mut conds: Vec<Value> = conds.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
                    conds.push(json!({"type": "PodScheduled", "status": "True"}));
                    p["status"]["conditions"] = json!(conds);
                    self.put(pods, p, false);
                    Ok(())
                }
            };
            out.push(r);
        }
        out
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}
