//! Shared by the workload controller tests: a cluster, a polling wait, and a simulated kubelet.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use controllers::client::{Resource, res};
use controllers::testing::FakeCluster;
use controllers::{Config, Ctx};
use serde_json::{Value, json};

pub fn pods() -> Resource {
    res("", "pods")
}

pub fn ctx(fake: &FakeCluster) -> Arc<Ctx> {
    Ctx::new(fake.client(), Config::default())
}

/// Polls `f` until it holds (panics after 15 s with `what`).
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > Duration::from_secs(15) {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Checks that `f` keeps holding for `d`.
pub async fn stays(what: &str, d: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < d {
        assert!(f(), "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn name(o: &Value) -> &str {
    o.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or("")
}

pub fn key(o: &Value) -> String {
    format!("{}/{}", o.pointer("/metadata/namespace").and_then(|n| n.as_str()).unwrap_or("default"), name(o))
}

pub fn is_deleting(o: &Value) -> bool {
    o.pointer("/metadata/deletionTimestamp").is_some()
}

pub fn phase(p: &Value) -> &str {
    p.pointer("/status/phase").and_then(|s| s.as_str()).unwrap_or("Pending")
}

pub fn is_ready(p: &Value) -> bool {
    p.pointer("/status/conditions").and_then(|c| c.as_array()).is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// Pods whose controller is `owner_uid`.
pub fn owned_pods(fake: &FakeCluster, owner_uid: &str) -> Vec<Value> {
    fake.objects(pods()).into_iter().filter(|p| p.pointer("/metadata/ownerReferences/0/uid").and_then(|u| u.as_str()) == Some(owner_uid)).collect()
}

/// Sets a pod's phase (and Ready condition) as a kubelet would. False if the pod is gone.
pub fn set_pod(fake: &FakeCluster, key: &str, phase: &str, ready: bool) -> bool {
    let Some(mut p) = fake.get(pods(), key) else { return false };
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    p["status"]["phase"] = json!(phase);
    p["status"]["conditions"] = json!([{"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": now}]);
    fake.set(pods(), p);
    true
}

/// A kubelet that starts every pending pod matching `pred` (Running and Ready).
pub fn spawn_kubelet(fake: &FakeCluster, pred: impl Fn(&Value) -> bool + Send + 'static) -> tokio::task::JoinHandle<()> {
    let fake = fake.clone();
    tokio::spawn(async move {
        loop {
            for p in fake.objects(pods()) {
                if phase(&p) == "Pending" && !is_deleting(&p) && pred(&p) {
                    set_pod(&fake, &key(&p), "Running", true);
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

/// A node with labels and taints.
pub fn node(name: &str, labels: Value, taints: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": format!("node-{name}"), "labels": labels},
        "spec": {"taints": taints},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}
    })
}

/// Aborts the controllers of a test when dropped, even when an assertion fails.
pub struct Running(pub Vec<tokio::task::JoinHandle<()>>);

impl Drop for Running {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}
