//! Test harness: an in-memory cluster with the ReplicaSet and Deployment controllers, a fake
//! kubelet that marks pods Running and Ready, and a pod observer that records the cluster's
//! pods after every single change (for invariants that must hold at every step).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apimachinery::status::ApiError;
use async_trait::async_trait;
use controllers::client::{Binding, Client, DeleteOptions, Resource, WatchError, WatchEvent, res};
use controllers::informer::key_of;
use controllers::testing::FakeCluster;
use controllers::{Config, Ctx, deployment, replicaset, util};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub const NS: &str = "default";

pub fn pods() -> Resource {
    res("", "pods")
}
pub fn rss() -> Resource {
    res("apps", "replicasets")
}
pub fn deployments() -> Resource {
    res("apps", "deployments")
}
pub fn events() -> Resource {
    res("", "events")
}

pub struct Env {
    pub fake: FakeCluster,
    pub client: Arc<dyn Client>,
    pub ctx: Arc<Ctx>,
    tasks: Vec<JoinHandle<()>>,
}

impl Env {
    pub fn new() -> Env {
        Env::with_client(FakeCluster::new(), None)
    }

    /// `client` (if any) is what the controllers talk to, wrapping `fake`.
    pub fn with_client(fake: FakeCluster, client: Option<Arc<dyn Client>>) -> Env {
        let client = client.unwrap_or_else(|| fake.client());
        let ctx = Ctx::new(client.clone(), Config::default());
        Env { fake, client, ctx, tasks: Vec::new() }
    }

    pub fn start_replicasets(&mut self) {
        self.tasks.push(tokio::spawn(replicaset::run(self.ctx.clone())));
    }

    pub fn start_deployments(&mut self) {
        self.tasks.push(tokio::spawn(deployment::run(self.ctx.clone())));
    }

    /// A kubelet for every pod: schedules it and, if `ready(pod)`, marks it Running and Ready
    /// after a short random delay (so pods become ready in varied orders).
    pub fn start_kubelet(&mut self, ready: impl Fn(&Value) -> bool + Send + Sync + 'static) {
        let fake = self.fake.clone();
        let ready = Arc::new(ready);
        self.tasks.push(tokio::spawn(async move {
            let client = fake.client();
            let Ok(mut stream) = client.watch(pods(), 0).await else { return };
            while let Some(Ok(ev)) = stream.next().await {
                let WatchEvent::Added(pod) = ev else { continue };
                if !ready(&pod) || util::is_deleting(&pod) {
                    continue;
                }
                let fake = fake.clone();
                let delay = Duration::from_millis(2 + rand::random::<u64>() % 30);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    mark_ready(&fake, &pod);
                });
            }
        }));
    }

    pub async fn create(&self, resource: Resource, obj: Value) -> Value {
        self.fake.client().create(resource, Some(NS), obj).await.expect("create")
    }

    pub async fn patch(&self, resource: Resource, name: &str, patch: Value) -> Value {
        self.fake.client().merge_patch(resource, Some(NS), name, patch).await.expect("patch")
    }

    pub fn get(&self, resource: Resource, name: &str) -> Option<Value> {
        self.fake.get(resource, &format!("{NS}/{name}"))
    }

    pub fn pods(&self) -> Vec<Value> {
        self.fake.objects(pods())
    }

    pub fn rss(&self) -> Vec<Value> {
        self.fake.objects(rss())
    }

    pub fn events(&self, reason: &str) -> Vec<String> {
        self.fake.objects(events()).into_iter().filter(|e| e["reason"] == reason).map(|e| e["message"].as_str().unwrap_or("").to_string()).collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.ctx.informers.stop_all();
    }
}

/// What a kubelet reports once a pod's containers run and pass readiness. Reads and writes
/// without yielding, so on the single-threaded test runtime it cannot resurrect a pod the
/// controllers deleted in between.
pub fn mark_ready(fake: &FakeCluster, pod: &Value) {
    let key = key_of(pod);
    let Some(mut cur) = fake.get(pods(), &key) else { return };
    if util::uid(&cur) != util::uid(pod) || !util::is_pod_active(&cur) {
        return;
    }
    cur["spec"]["nodeName"] = json!(format!("node-{}", rand::random::<u8>() % 3));
    cur["status"]["phase"] = json!("Running");
    cur["status"]["conditions"] = json!([
        {"type": "PodScheduled", "status": "True"},
        {"type": "Ready", "status": "True", "lastTransitionTime": util::timestamp(util::now())},
    ]);
    fake.set(pods(), cur);
}

/// Polls `cond` until it holds or `secs` pass; then panics with `what` and `dump()`.
pub async fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool, dump: impl Fn() -> String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}\n{}", dump());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn label<'a>(o: &'a Value, k: &str) -> &'a str {
    o.pointer("/metadata/labels").and_then(|l| l.get(k)).and_then(|v| v.as_str()).unwrap_or("")
}

pub fn controller_uid(o: &Value) -> Option<String> {
    util::controller_of(o).and_then(|r| r["uid"].as_str()).map(String::from)
}

/// One observed cluster state: pods of an app, by version, and how many are Ready.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub total: usize,
    pub ready: usize,
    pub by_version: BTreeMap<String, usize>,
}

/// Records a [`Snapshot`] of the pods labelled `app=<app>` after every change to any pod, from
/// the current revision on: the watch delivers each change in order, so every intermediate
/// state is seen.
pub struct Observer {
    pub snapshots: Arc<Mutex<Vec<Snapshot>>>,
    task: JoinHandle<()>,
}

impl Observer {
    pub async fn start(fake: &FakeCluster, app: &str) -> Observer {
        let client = fake.client();
        let (items, rev) = client.list(pods()).await.expect("list");
        let mut state: BTreeMap<String, Value> = items.into_iter().map(|p| (key_of(&p), p)).collect();
        let snapshots = Arc::new(Mutex::new(Vec::new()));
        let app = app.to_string();
        let snap = move |state: &BTreeMap<String, Value>| {
            let mut s = Snapshot::default();
            for p in state.values().filter(|p| label(p, "app") == app) {
                s.total += 1;
                if util::is_pod_ready(p) && !util::is_deleting(p) {
                    s.ready += 1;
                }
                *s.by_version.entry(label(p, "version").to_string()).or_default() += 1;
            }
            s
        };
        snapshots.lock().expect("lock").push(snap(&state));
        let mut stream = client.watch(pods(), rev).await.expect("watch");
        let out = snapshots.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(ev)) = stream.next().await {
                match ev {
                    WatchEvent::Added(p) | WatchEvent::Modified(p) => {
                        state.insert(key_of(&p), p);
                    }
                    WatchEvent::Deleted(p) => {
                        state.remove(&key_of(&p));
                    }
                }
                out.lock().expect("lock").push(snap(&state));
            }
        });
        Observer { snapshots, task }
    }

    pub fn snapshots(&self) -> Vec<Snapshot> {
        self.snapshots.lock().expect("lock").clone()
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The controllers' view of the cluster with faults: pod creations refused (as by a quota)
/// and pod deletions that take a while to happen (as over a slow network).
pub struct Faulty {
    pub inner: FakeCluster,
    pub refuse_pod_creates: AtomicBool,
    pub pod_create_attempts: AtomicUsize,
    pub pod_delete_delay_ms: AtomicU64,
}

impl Faulty {
    pub fn new(inner: FakeCluster) -> Arc<Faulty> {
        Arc::new(Faulty { inner, refuse_pod_creates: AtomicBool::new(false), pod_create_attempts: AtomicUsize::new(0), pod_delete_delay_ms: AtomicU64::new(0) })
    }
}

#[async_trait]
impl Client for Faulty {
    async fn list(&self, r: Resource) -> Result<(Vec<Value>, u64), ApiError> {
        self.inner.list(r).await
    }
    async fn watch(&self, r: Resource, rev: u64) -> Result<BoxStream<'static, Result<WatchEvent, WatchError>>, WatchError> {
        self.inner.watch(r, rev).await
    }
    async fn create(&self, r: Resource, ns: Option<&str>, obj: Value) -> Result<Value, ApiError> {
        if r.plural == "pods" {
            self.pod_create_attempts.fetch_add(1, Ordering::SeqCst);
            if self.refuse_pod_creates.load(Ordering::SeqCst) {
                return Err(ApiError::Forbidden("pods \"web\" is forbidden: exceeded quota: compute".into()));
            }
        }
        self.inner.create(r, ns, obj).await
    }
    async fn update(&self, r: Resource, obj: Value) -> Result<Value, ApiError> {
        self.inner.update(r, obj).await
    }
    async fn update_status(&self, r: Resource, obj: Value) -> Result<Value, ApiError> {
        self.inner.update_status(r, obj).await
    }
    async fn merge_patch(&self, r: Resource, ns: Option<&str>, name: &str, p: Value) -> Result<Value, ApiError> {
        self.inner.merge_patch(r, ns, name, p).await
    }
    async fn merge_patch_status(&self, r: Resource, ns: Option<&str>, name: &str, p: Value) -> Result<Value, ApiError> {
        self.inner.merge_patch_status(r, ns, name, p).await
    }
    async fn delete(&self, r: Resource, ns: Option<&str>, name: &str, o: DeleteOptions) -> Result<(), ApiError> {
        let delay = self.pod_delete_delay_ms.load(Ordering::SeqCst);
        if r.plural == "pods" && delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.inner.delete(r, ns, name, o).await
    }
    async fn bind(&self, b: Vec<Binding>) -> Vec<Result<(), ApiError>> {
        self.inner.bind(b).await
    }
}
