//! Helpers shared by the endpoints, garbage collector, node lifecycle and service account tests.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use controllers::client::{Client, Resource, WatchEvent};
use controllers::testing::FakeCluster;
use controllers::{Config, Ctx};
use futures::StreamExt;
use serde_json::Value;

/// A fake cluster and a controller running against it (aborted when dropped).
pub struct Harness {
    pub fake: FakeCluster,
    pub client: Arc<dyn Client>,
    pub ctx: Arc<Ctx>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Harness {
    pub fn new(config: Config) -> Harness {
        let fake = FakeCluster::new();
        let client = fake.client();
        let ctx = Ctx::new(client.clone(), config);
        Harness { fake, client, ctx, tasks: Vec::new() }
    }

    pub fn start<F, Fut>(&mut self, run: F)
    where
        F: FnOnce(Arc<Ctx>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(tokio::spawn(run(self.ctx.clone())));
    }

    pub async fn create(&self, resource: Resource, ns: Option<&str>, obj: Value) -> Value {
        self.client.create(resource, ns, obj).await.expect("create")
    }

    /// The revision the fake is at now.
    pub async fn rev(&self, resource: Resource) -> u64 {
        self.client.list(resource).await.expect("list").1
    }

    /// Every change to `resource` after `rev` made so far.
    pub async fn events_since(&self, resource: Resource, rev: u64) -> Vec<WatchEvent> {
        let mut stream = self.client.watch(resource, rev).await.expect("watch");
        let mut out = Vec::new();
        while let Ok(Some(Ok(ev))) = tokio::time::timeout(Duration::from_millis(50), stream.next()).await {
            out.push(ev);
        }
        out
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.ctx.informers.stop_all();
    }
}

/// Polls `f` until it returns Some, failing the test after `timeout`.
pub async fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn rv(o: &Value) -> u64 {
    o.pointer("/metadata/resourceVersion").and_then(|r| r.as_str()).and_then(|r| r.parse().ok()).unwrap_or(0)
}

pub fn deleted_rv(events: &[WatchEvent], name: &str) -> Option<u64> {
    events.iter().find_map(|e| match e {
        WatchEvent::Deleted(o) if o.pointer("/metadata/name").and_then(|n| n.as_str()) == Some(name) => Some(rv(o)),
        _ => None,
    })
}
