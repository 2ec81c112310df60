//! The scheduler against the in-memory cluster: placements, unschedulable reporting, retries
//! on cluster changes, failed bindings, and a scale run.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apimachinery::status::ApiError;
use async_trait::async_trait;
use controllers::client::{Binding, Client, DeleteOptions, Resource, WatchError, WatchEvent, res};
use controllers::testing::FakeCluster;
use controllers::{Config, Ctx, scheduler};
use futures::stream::BoxStream;
use serde_json::{Value, json};

const ZONE: &str = "topology.kubernetes.io/zone";

fn node(name: &str, cpu: &str, mem: &str, labels: Value, taints: Value) -> Value {
    let mut l = json!({"kubernetes.io/hostname": name});
    if let Some(m) = labels.as_object() {
        for (k, v) in m {
            l[k] = v.clone();
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": l},
        "spec": {"taints": taints},
        "status": {
            "capacity": {"cpu": cpu, "memory": mem, "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": mem, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    })
}

fn pod(name: &str, cpu: &str, mem: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {}},
        "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]},
    })
}

fn node_of(fc: &FakeCluster, key: &str) -> String {
    fc.get(res("", "pods"), key)
        .and_then(|p| p.pointer("/spec/nodeName").and_then(|n| n.as_str()).map(String::from))
        .unwrap_or_default()
}

async fn eventually<F: FnMut() -> bool>(what: &str, timeout: Duration, mut f: F) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Running {
    ctx: Arc<Ctx>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
        self.ctx.informers.stop_all();
    }
}

fn start(client: Arc<dyn Client>) -> Running {
    let ctx = Ctx::new(client, Config::default());
    let task = tokio::spawn(scheduler::run(ctx.clone()));
    Running { ctx, task }
}

async fn create(client: &Arc<dyn Client>, p: Value) -> Value {
    client.create(res("", "pods"), Some("default"), p).await.expect("create pod")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn places_pods_reports_unschedulable_and_retries_when_a_node_appears() {
    let fc = FakeCluster::new();
    let client = fc.client();
    let nodes = res("", "nodes");
    let cp_taint = json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]);
    fc.set(nodes, node("cp", "8", "16Gi", json!({ZONE: "a"}), cp_taint));
    fc.set(nodes, node("a1", "2", "4Gi", json!({ZONE: "a"}), json!([])));
    fc.set(nodes, node("b1", "2", "4Gi", json!({ZONE: "b"}), json!([])));
    fc.set(nodes, node("c1", "4", "8Gi", json!({ZONE: "c"}), json!([])));
    // Not ours to schedule: another scheduler's pod, and a pod already bound.
    let mut other = pod("other-scheduler", "100m", "1Mi");
    other["spec"]["schedulerName"] = json!("custom");
    create(&client, other).await;
    let mut pinned = pod("pinned", "100m", "1Mi");
    pinned["spec"]["nodeName"] = json!("b1");
    create(&client, pinned).await;
    let _s = start(client.clone());

    // Only c1 has 3 cpu free (cp is tainted).
    create(&client, pod("big", "3", "1Gi")).await;
    eventually("big bound", Duration::from_secs(10), || !node_of(&fc, "default/big").is_empty()).await;
    assert_eq!(node_of(&fc, "default/big"), "c1");

    // Zone anti-affinity replicas land in distinct zones.
    for i in 0..3 {
        let mut r = pod(&format!("r{i}"), "100m", "64Mi");
        r["metadata"]["labels"] = json!({"app": "r"});
        r["spec"]["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "r"}}, "topologyKey": ZONE}]}});
        create(&client, r).await;
    }
    eventually("replicas bound", Duration::from_secs(10), || {
        (0..3).all(|i| !node_of(&fc, &format!("default/r{i}")).is_empty())
    })
    .await;
    let zones: HashSet<String> = (0..3).map(|i| node_of(&fc, &format!("default/r{i}"))).collect();
    assert_eq!(zones, ["a1", "b1", "c1"].iter().map(|s| s.to_string()).collect());

    // Too big for every node: PodScheduled=False with the reasons, and a FailedScheduling event.
    create(&client, pod("huge", "16", "1Gi")).await;
    let want = "0/4 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 3 Insufficient cpu.";
    let cond = |fc: &FakeCluster| -> Option<Value> {
        let p = fc.get(res("", "pods"), "default/huge")?;
        p.pointer("/status/conditions")?
            .as_array()?
            .iter()
            .find(|c| c["type"] == "PodScheduled")
            .cloned()
    };
    eventually("huge marked unschedulable", Duration::from_secs(10), || cond(&fc).is_some()).await;
    let c = cond(&fc).unwrap();
    assert_eq!(c["status"], "False");
    assert_eq!(c["reason"], "Unschedulable");
    assert_eq!(c["message"], want);
    let events = res("", "events");
    eventually("FailedScheduling event", Duration::from_secs(10), || {
        fc.objects(events)
            .iter()
            .any(|e| e["reason"] == "FailedScheduling" && e["involvedObject"]["name"] == "huge")
    })
    .await;
    let ev = fc
        .objects(events)
        .into_iter()
        .find(|e| e["reason"] == "FailedScheduling" && e["involvedObject"]["name"] == "huge")
        .unwrap();
    assert_eq!(ev["type"], "Warning");
    assert_eq!(ev["message"], want);
    assert_eq!(ev["source"]["component"], "default-scheduler");
    assert!(
        fc.objects(events)
            .iter()
            .any(|e| e["reason"] == "Scheduled" && e["message"] == "Successfully assigned default/big to c1"),
        "a Scheduled event for big"
    );
    // Not retried in a hot loop: one attempt reported, not dozens.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let failed = fc
        .objects(events)
        .iter()
        .filter(|e| e["reason"] == "FailedScheduling" && e["involvedObject"]["name"] == "huge")
        .count();
    assert_eq!(failed, 1);

    // A node that fits appears: the pod is retried and bound there.
    fc.set(nodes, node("huge-node", "32", "64Gi", json!({ZONE: "d"}), json!([])));
    eventually("huge bound after the node appeared", Duration::from_secs(10), || {
        node_of(&fc, "default/huge") == "huge-node"
    })
    .await;

    assert_eq!(node_of(&fc, "default/other-scheduler"), "");
    assert_eq!(node_of(&fc, "default/pinned"), "b1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_pod_frees_room_for_a_waiting_one() {
    let fc = FakeCluster::new();
    let client = fc.client();
    fc.set(res("", "nodes"), node("only", "2", "4Gi", json!({}), json!([])));
    let _s = start(client.clone());
    create(&client, pod("first", "1500m", "1Gi")).await;
    eventually("first bound", Duration::from_secs(10), || node_of(&fc, "default/first") == "only").await;
    create(&client, pod("second", "1500m", "1Gi")).await;
    eventually("second reported unschedulable", Duration::from_secs(10), || {
        fc.get(res("", "pods"), "default/second")
            .and_then(|p| p.pointer("/status/conditions/0/message").and_then(|m| m.as_str()).map(String::from))
            .is_some_and(|m| m == "0/1 nodes are available: 1 Insufficient cpu.")
    })
    .await;
    assert_eq!(node_of(&fc, "default/second"), "");
    client
        .delete(res("", "pods"), Some("default"), "first", DeleteOptions::default())
        .await
        .unwrap();
    eventually("second bound once first is gone", Duration::from_secs(10), || {
        node_of(&fc, "default/second") == "only"
    })
    .await;

    // A pod that finished frees its resources too.
    create(&client, pod("third", "1500m", "1Gi")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node_of(&fc, "default/third"), "");
    let mut done = fc.get(res("", "pods"), "default/second").unwrap();
    done["status"]["phase"] = json!("Succeeded");
    fc.set(res("", "pods"), done);
    eventually("third bound once second finished", Duration::from_secs(10), || {
        node_of(&fc, "default/third") == "only"
    })
    .await;
}

/// A client whose first binding of each listed pod fails, as if the write had conflicted, and
/// whose binding calls take `latency` (a replicated write); it records the batch sizes.
struct FlakyBinds {
    inner: FakeCluster,
    fail_once: Mutex<HashSet<String>>,
    attempts: Mutex<HashMap<String, usize>>,
    latency: Duration,
    batches: Mutex<Vec<usize>>,
}

impl FlakyBinds {
    fn new(inner: FakeCluster, fail_once: &[&str], latency: Duration) -> Arc<FlakyBinds> {
        Arc::new(FlakyBinds {
            inner,
            fail_once: Mutex::new(fail_once.iter().map(|s| s.to_string()).collect()),
            attempts: Mutex::default(),
            latency,
            batches: Mutex::default(),
        })
    }
}

#[async_trait]
impl Client for FlakyBinds {
    async fn list(&self, r: Resource) -> Result<(Vec<Value>, u64), ApiError> {
        self.inner.list(r).await
    }
    async fn watch(&self, r: Resource, rev: u64) -> Result<BoxStream<'static, Result<WatchEvent, WatchError>>, WatchError> {
        self.inner.watch(r, rev).await
    }
    async fn create(&self, r: Resource, ns: Option<&str>, obj: Value) -> Result<Value, ApiError> {
        self.inner.create(r, ns, obj).await
    }
    async fn update(&self, r: Resource, obj: Value) -> Result<Value, ApiError> {
        self.inner.update(r, obj).await
    }
    async fn update_status(&self, r: Resource, obj: Value) -> Result<Value, ApiError> {
        self.inner.update_status(r, obj).await
    }
    async fn merge_patch(&self, r: Resource, ns: Option<&str>, name: &str, patch: Value) -> Result<Value, ApiError> {
        self.inner.merge_patch(r, ns, name, patch).await
    }
    async fn merge_patch_status(&self, r: Resource, ns: Option<&str>, name: &str, patch: Value) -> Result<Value, ApiError> {
        self.inner.merge_patch_status(r, ns, name, patch).await
    }
    async fn delete(&self, r: Resource, ns: Option<&str>, name: &str, opts: DeleteOptions) -> Result<(), ApiError> {
        self.inner.delete(r, ns, name, opts).await
    }
    async fn bind(&self, bindings: Vec<Binding>) -> Vec<Result<(), ApiError>> {
        self.batches.lock().unwrap().push(bindings.len());
        tokio::time::sleep(self.latency).await;
        let mut pass = Vec::new();
        let mut out: Vec<Option<Result<(), ApiError>>> = Vec::new();
        for b in bindings {
            *self.attempts.lock().unwrap().entry(b.name.clone()).or_insert(0) += 1;
            if self.fail_once.lock().unwrap().remove(&b.name) {
                out.push(Some(Err(ApiError::Conflict {
                    group_resource: "pods".into(),
                    name: b.name.clone(),
                    message: "injected".into(),
                })));
            } else {
                out.push(None);
                pass.push(b);
            }
        }
        let mut results = self.inner.bind(pass).await.into_iter();
        out.into_iter().map(|r| r.unwrap_or_else(|| results.next().unwrap_or(Ok(())))).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_binding_is_forgotten_and_retried() {
    let fc = FakeCluster::new();
    let flaky = FlakyBinds::new(fc.clone(), &["flaky"], Duration::ZERO);
    let client: Arc<dyn Client> = flaky.clone();
    // Room for exactly one of the two pods: the failed assumption must be forgotten, or the
    // retry would find the node full of its own ghost.
    fc.set(res("", "nodes"), node("n", "1", "4Gi", json!({}), json!([])));
    let _s = start(client.clone());
    create(&client, pod("flaky", "1", "1Gi")).await;
    eventually("flaky bound on retry", Duration::from_secs(10), || node_of(&fc, "default/flaky") == "n").await;
    assert_eq!(flaky.attempts.lock().unwrap().get("flaky").copied(), Some(2));
    create(&client, pod("late", "1", "1Gi")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(node_of(&fc, "default/late"), "", "the node is full: no double booking");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_are_batched_while_writes_are_slow() {
    let fc = FakeCluster::new();
    let slow = FlakyBinds::new(fc.clone(), &[], Duration::from_millis(30));
    let client: Arc<dyn Client> = slow.clone();
    for i in 0..50 {
        fc.set(res("", "nodes"), node(&format!("n{i}"), "8", "32Gi", json!({}), json!([])));
    }
    let ctx = Ctx::new(
        client.clone(),
        Config {
            bind_batch: 100,
            ..Config::default()
        },
    );
    let s = Running {
        task: tokio::spawn(scheduler::run(ctx.clone())),
        ctx,
    };
    s.ctx.informers.get(res("", "pods")).synced().await;
    for i in 0..2000 {
        create(&client, pod(&format!("p{i}"), "100m", "64Mi")).await;
    }
    eventually("all bound", Duration::from_secs(60), || {
        fc.objects(res("", "pods")).iter().all(|p| p.pointer("/spec/nodeName").is_some())
    })
    .await;
    let batches = slow.batches.lock().unwrap().clone();
    assert_eq!(batches.iter().sum::<usize>(), 2000);
    assert!(batches.iter().all(|b| *b <= 100), "batches never exceed bind_batch: {batches:?}");
    // 2000 pods over 30 ms writes, at most four outstanding: far fewer calls than pods.
    assert!(batches.len() <= 200, "{} binding calls for 2000 pods", batches.len());
    println!("2000 pods bound in {} calls (largest {})", batches.len(), batches.iter().max().unwrap());
}

/// Places `pods` pods on `nodes` nodes and checks no node is over capacity; returns pods/s.
async fn scale(nodes: usize, pods: usize) -> f64 {
    let fc = FakeCluster::new();
    let client = fc.client();
    for i in 0..nodes {
        fc.set(
            res("", "nodes"),
            node(&format!("node-{i:05}"), "4", "16Gi", json!({ZONE: format!("zone-{}", i % 10)}), json!([])),
        );
    }
    let s = start(client.clone());
    // Wait for the scheduler to have the nodes before the burst (as in a running cluster).
    s.ctx.informers.get(res("", "nodes")).synced().await;
    let cpus = ["100m", "200m", "250m", "300m", "500m"];
    let mems = ["128Mi", "256Mi", "512Mi", "1Gi"];
    let t0 = std::time::Instant::now();
    for i in 0..pods {
        let mut p = pod(&format!("p{i:06}"), cpus[i % cpus.len()], mems[(i / 5) % mems.len()]);
        p["metadata"]["labels"] = json!({"app": format!("app-{}", i % 20)});
        p["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("rs-{}", i % 20), "uid": format!("rs-uid-{}", i % 20), "controller": true}]);
        create(&client, p).await;
    }
    let created = t0.elapsed();
    // Count bindings from a watch: listing every pod while polling would compete with the
    // scheduler for the two cores.
    let bound = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut stream = client.watch(res("", "pods"), 0).await.expect("watch pods");
    let counter = bound.clone();
    let watcher = tokio::spawn(async move {
        let mut seen = HashSet::new();
        while let Some(Ok(ev)) = futures::StreamExt::next(&mut stream).await {
            if let WatchEvent::Modified(p) = ev
                && p.pointer("/spec/nodeName").is_some()
                && seen.insert(p["metadata"]["name"].as_str().unwrap_or("").to_string())
            {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    let pods_res = res("", "pods");
    let mut last = (0, std::time::Instant::now());
    loop {
        let n = bound.load(std::sync::atomic::Ordering::Relaxed);
        if n >= pods {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(300), "only {n}/{pods} bound after {:?}", t0.elapsed());
        if n != last.0 {
            last = (n, std::time::Instant::now());
        }
        assert!(last.1.elapsed() < Duration::from_secs(30), "stuck at {n}/{pods}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watcher.abort();
    let elapsed = t0.elapsed();
    let rate = pods as f64 / elapsed.as_secs_f64();
    println!("scheduled {pods} pods on {nodes} nodes in {elapsed:?} (creating them took {created:?}): {rate:.0} pods/s");

    // No node over capacity, and the load is spread.
    let mut per_node: HashMap<String, (i64, i64, usize)> = HashMap::new();
    for p in fc.objects(pods_res) {
        let n = p["spec"]["nodeName"].as_str().unwrap().to_string();
        let r = &p["spec"]["containers"][0]["resources"]["requests"];
        let cpu = apimachinery::validation::Quantity::parse(r["cpu"].as_str().unwrap()).unwrap().as_f64();
        let mem = apimachinery::validation::Quantity::parse(r["memory"].as_str().unwrap()).unwrap().as_f64();
        let e = per_node.entry(n).or_default();
        e.0 += (cpu * 1000.0).round() as i64;
        e.1 += mem as i64;
        e.2 += 1;
    }
    for (n, (cpu, mem, count)) in &per_node {
        assert!(*cpu <= 4000, "{n} has {cpu}m cpu requested");
        assert!(*mem <= 16 << 30, "{n} has {mem} bytes requested");
        assert!(*count <= 110, "{n} has {count} pods");
    }
    let counts: Vec<usize> = per_node.values().map(|v| v.2).collect();
    println!(
        "nodes used: {}, pods per node min {} max {}",
        per_node.len(),
        counts.iter().min().unwrap(),
        counts.iter().max().unwrap()
    );
    assert!(
        per_node.len() as f64 >= nodes as f64 * 0.9,
        "pods should spread over most nodes, used {}",
        per_node.len()
    );
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_1000_nodes_10000_pods() {
    let rate = scale(1000, 10_000).await;
    assert!(rate > 500.0, "{rate:.0} pods/s is too slow");
}

/// The benchmark's size; run with `cargo test -p controllers --test scheduler -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn scale_5000_nodes_50000_pods() {
    scale(5000, 50_000).await;
}
