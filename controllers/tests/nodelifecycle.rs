mod netgc_support;

use std::time::Duration;

use controllers::client::res;
use controllers::nodelifecycle::{self, TAINT_NOT_READY, TAINT_UNREACHABLE};
use controllers::testing::FakeCluster;
use controllers::Config;
use netgc_support::{Harness, wait_for};
use serde_json::{Value, json};
use tokio::time::Instant;

fn config(default_toleration_seconds: i64) -> Config {
    Config { node_monitor_grace_period: Duration::from_secs(2), node_monitor_period: Duration::from_millis(200), default_toleration_seconds, ..Config::default() }
}

fn micro_now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

fn node(name: &str, ready: &str) -> Value {
    let now = micro_now();
    json!({"metadata": {"name": name}, "spec": {}, "status": {"conditions": [
        {"type": "Ready", "status": ready, "reason": "KubeletReady", "lastHeartbeatTime": now, "lastTransitionTime": now},
        {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": now},
        {"type": "DiskPressure", "status": "False", "lastHeartbeatTime": now},
        {"type": "PIDPressure", "status": "False", "lastHeartbeatTime": now},
    ]}})
}

fn pod(name: &str, node: &str, tolerations: Value) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {"nodeName": node, "tolerations": tolerations, "containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    })
}

fn toleration(key: &str, secs: Option<i64>) -> Value {
    let mut t = json!({"key": key, "operator": "Exists", "effect": "NoExecute"});
    if let Some(s) = secs {
        t["tolerationSeconds"] = json!(s);
    }
    t
}

/// A kubelet renewing its node's lease until aborted.
fn heartbeat(fake: &FakeCluster, node: &str) -> tokio::task::JoinHandle<()> {
    let (fake, node) = (fake.clone(), node.to_string());
    tokio::spawn(async move {
        loop {
            fake.set(
                res("coordination.k8s.io", "leases"),
                json!({"metadata": {"name": node, "namespace": "kube-node-lease"}, "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": micro_now()}}),
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}

fn taints(n: &Value) -> Vec<(String, String)> {
    let mut t: Vec<(String, String)> = n["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| (t["key"].as_str().unwrap_or("").to_string(), t["effect"].as_str().unwrap_or("").to_string()))
        .collect();
    t.sort();
    t
}

fn cond<'a>(o: &'a Value, ty: &str) -> &'a Value {
    o["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == ty)).unwrap_or(&Value::Null)
}

fn events(fake: &FakeCluster, reason: &str) -> Vec<Value> {
    fake.objects(res("", "events")).into_iter().filter(|e| e["reason"] == reason).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_node_is_marked_unknown_tainted_and_drained() {
    let mut h = Harness::new(config(300));
    let (nodes, pods) = (res("", "nodes"), res("", "pods"));
    h.create(nodes, None, node("n1", "True")).await;
    h.create(nodes, None, node("n2", "True")).await;
    let hb1 = heartbeat(&h.fake, "n1");
    let _hb2 = heartbeat(&h.fake, "n2");
    h.create(pods, Some("default"), pod("intolerant", "n1", json!([]))).await;
    h.create(pods, Some("default"), pod("patient", "n1", json!([toleration(TAINT_UNREACHABLE, Some(4))]))).await;
    h.create(pods, Some("default"), pod("forever", "n1", json!([toleration(TAINT_UNREACHABLE, None)]))).await;
    h.create(pods, Some("default"), pod("elsewhere", "n2", json!([]))).await;
    h.start(nodelifecycle::run);

    // Heartbeating: nothing happens, even past the grace period.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let n1 = h.fake.get(nodes, "n1").expect("n1");
    assert_eq!(cond(&n1, "Ready")["status"], "True");
    assert!(taints(&n1).is_empty());

    // The kubelet of n1 stops.
    hb1.abort();
    let stopped = Instant::now();
    let n1 = wait_for("n1 to become Unknown", Duration::from_secs(5), || h.fake.get(nodes, "n1").filter(|n| cond(n, "Ready")["status"] == "Unknown")).await;
    let took = stopped.elapsed();
    assert!(took >= Duration::from_millis(1700), "not before the grace period: {took:?}");
    assert!(took <= Duration::from_millis(2000 + 200 + 800), "within grace + period: {took:?}");
    for ty in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        let c = cond(&n1, ty);
        assert_eq!(c["status"], "Unknown", "{ty}");
        assert_eq!(c["reason"], "NodeStatusUnknown", "{ty}");
        assert_eq!(c["message"], "Kubelet stopped posting node status.", "{ty}");
    }
    let n1 = wait_for("n1 tainted", Duration::from_secs(2), || h.fake.get(nodes, "n1").filter(|n| !taints(n).is_empty())).await;
    let tainted = Instant::now();
    assert_eq!(taints(&n1), vec![(TAINT_UNREACHABLE.into(), "NoExecute".into()), (TAINT_UNREACHABLE.into(), "NoSchedule".into())]);
    let no_execute = n1["spec"]["taints"].as_array().and_then(|t| t.iter().find(|t| t["effect"] == "NoExecute")).cloned().unwrap_or_default();
    assert!(no_execute["timeAdded"].as_str().is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()), "{no_execute}");

    // No toleration: evicted at once. With one: not before its seconds. Forever: stays.
    wait_for("the intolerant pod evicted", Duration::from_secs(1), || h.fake.get(pods, "default/intolerant").is_none().then_some(())).await;
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(tainted.elapsed())).await;
    assert!(h.fake.get(pods, "default/patient").is_some(), "evicted before its tolerationSeconds");
    wait_for("the patient pod evicted", Duration::from_secs(5), || h.fake.get(pods, "default/patient").is_none().then_some(())).await;
    let evicted_after = tainted.elapsed();
    assert!(evicted_after >= Duration::from_millis(2900) && evicted_after <= Duration::from_millis(5500), "{evicted_after:?}");
    let forever = h.fake.get(pods, "default/forever").expect("a pod tolerating forever stays");
    assert_eq!(cond(&forever, "Ready")["status"], "False", "pods of an unreachable node are not ready");
    let elsewhere = h.fake.get(pods, "default/elsewhere").expect("pods of healthy nodes stay");
    assert_eq!(cond(&elsewhere, "Ready")["status"], "True");
    assert!(taints(&h.fake.get(nodes, "n2").expect("n2")).is_empty());

    assert!(events(&h.fake, "NodeNotReady").iter().any(|e| e["involvedObject"]["name"] == "n1"));
    let evictions: Vec<String> = events(&h.fake, "TaintManagerEviction").iter().map(|e| e["involvedObject"]["name"].as_str().unwrap_or("").to_string()).collect();
    assert!(evictions.contains(&"intolerant".to_string()) && evictions.contains(&"patient".to_string()), "{evictions:?}");

    // The kubelet comes back: Ready again, untainted.
    let _hb1 = heartbeat(&h.fake, "n1");
    let mut back = h.fake.get(nodes, "n1").expect("n1");
    back["status"] = node("n1", "True")["status"].clone();
    h.fake.set(nodes, back);
    wait_for("n1 untainted", Duration::from_secs(3), || h.fake.get(nodes, "n1").filter(|n| taints(n).is_empty())).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let n1 = h.fake.get(nodes, "n1").expect("n1");
    assert_eq!(cond(&n1, "Ready")["status"], "True", "a heartbeating node stays ready");
    assert!(taints(&n1).is_empty());
    assert!(h.fake.get(pods, "default/forever").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_node_with_default_tolerations() {
    // The API server gives every pod 300 s for not-ready/unreachable; the controller setting
    // shortens that default to 1 s here.
    let mut h = Harness::new(config(1));
    let (nodes, pods) = (res("", "nodes"), res("", "pods"));
    let defaults = json!([toleration(TAINT_NOT_READY, Some(300)), toleration(TAINT_UNREACHABLE, Some(300))]);
    h.create(nodes, None, node("n1", "False")).await;
    let _hb = heartbeat(&h.fake, "n1");
    h.create(pods, Some("default"), pod("defaulted", "n1", defaults)).await;
    h.create(pods, Some("default"), pod("daemon", "n1", json!([{"operator": "Exists"}]))).await;
    h.start(nodelifecycle::run);

    let n1 = wait_for("not-ready taints", Duration::from_secs(2), || h.fake.get(nodes, "n1").filter(|n| !taints(n).is_empty())).await;
    let tainted = Instant::now();
    assert_eq!(taints(&n1), vec![(TAINT_NOT_READY.into(), "NoExecute".into()), (TAINT_NOT_READY.into(), "NoSchedule".into())]);
    assert_eq!(cond(&n1, "Ready")["status"], "False", "the kubelet's condition is its own");
    wait_for("the defaulted pod evicted", Duration::from_secs(4), || h.fake.get(pods, "default/defaulted").is_none().then_some(())).await;
    assert!(tainted.elapsed() <= Duration::from_millis(2500), "{:?}", tainted.elapsed());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(h.fake.get(pods, "default/daemon").is_some(), "tolerating everything: stays");

    // Ready again.
    let mut ready = h.fake.get(nodes, "n1").expect("n1");
    ready["status"] = node("n1", "True")["status"].clone();
    h.fake.set(nodes, ready);
    wait_for("taints removed", Duration::from_secs(2), || h.fake.get(nodes, "n1").filter(|n| taints(n).is_empty())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_that_never_heartbeats() {
    let mut h = Harness::new(config(300));
    let nodes = res("", "nodes");
    // Registered without status and without a lease.
    h.create(nodes, None, json!({"metadata": {"name": "ghost"}, "spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}})).await;
    h.start(nodelifecycle::run);
    let n = wait_for("ghost Unknown", Duration::from_secs(5), || h.fake.get(nodes, "ghost").filter(|n| cond(n, "Ready")["status"] == "Unknown")).await;
    assert_eq!(cond(&n, "Ready")["reason"], "NodeStatusNeverUpdated");
    let n = wait_for("ghost tainted", Duration::from_secs(2), || h.fake.get(nodes, "ghost").filter(|n| taints(n).len() == 3)).await;
    assert!(taints(&n).contains(&("dedicated".into(), "NoSchedule".into())), "user taints kept");
}
