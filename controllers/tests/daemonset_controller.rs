//! The DaemonSet controller against the in-memory cluster.

mod support_workloads;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use controllers::client::res;
use controllers::daemonset::{self, common::SystemClock, target_node};
use controllers::testing::FakeCluster;
use serde_json::{Value, json};
use support_workloads::*;

fn ds_res() -> controllers::client::Resource {
    res("apps", "daemonsets")
}

async fn create_ds(fake: &FakeCluster, spec: Value) -> Value {
    let mut ds = json!({
        "metadata": {"name": "agent", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "agent", "image": "agent:1"}]}}
        }
    });
    controllers::testing::merge(&mut ds, &json!({"spec": spec}));
    fake.client().create(ds_res(), Some("default"), ds).await.unwrap()
}

fn start(fake: &FakeCluster) -> Running {
    Running(vec![tokio::spawn(daemonset::run_with_clock(ctx(fake), Arc::new(SystemClock)))])
}

/// Live daemon pods by target node.
fn placement(fake: &FakeCluster, uid: &str) -> Vec<String> {
    let mut v: Vec<String> = owned_pods(fake, uid).iter().filter(|p| !is_deleting(p)).filter_map(|p| target_node(p).map(String::from)).collect();
    v.sort();
    v
}

fn status(fake: &FakeCluster, field: &str) -> i64 {
    fake.get(ds_res(), "default/agent").and_then(|d| d.pointer(&format!("/status/{field}")).and_then(|v| v.as_i64())).unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_places_one_pod_per_eligible_node() {
    let fake = FakeCluster::new();
    let nodes = res("", "nodes");
    fake.set(nodes, node("n1", json!({}), json!([])));
    fake.set(nodes, node("n2", json!({"disk": "ssd"}), json!([])));
    fake.set(nodes, node("n3", json!({"disk": "ssd"}), json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])));
    // Daemon pods tolerate node problems.
    fake.set(nodes, node("n4", json!({"disk": "ssd"}), json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}])));
    fake.set(nodes, node("n5", json!({"disk": "ssd"}), json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}])));
    let ds = create_ds(&fake, json!({"template": {"spec": {"nodeSelector": {"disk": "ssd"}}}})).await;
    let uid = ds["metadata"]["uid"].as_str().unwrap().to_string();
    let _c = start(&fake);

    eventually("pods on n2, n4, n5", || placement(&fake, &uid) == ["n2", "n4", "n5"]).await;
    stays("no duplicates, nothing on n1/n3", Duration::from_millis(300), || owned_pods(&fake, &uid).len() == 3).await;
    for p in owned_pods(&fake, &uid) {
        assert!(p.pointer("/spec/nodeName").is_none(), "the scheduler binds daemon pods");
        let field = &p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchFields"][0];
        assert_eq!(field["key"], "metadata.name");
        assert_eq!(p["metadata"]["labels"]["app"], "agent");
        assert!(p["metadata"]["labels"]["controller-revision-hash"].is_string());
        assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
    }
    let revs = fake.objects(res("apps", "controllerrevisions"));
    assert_eq!(revs.len(), 1);
    assert!(name(&revs[0]).starts_with("agent-"));

    eventually("status scheduled", || status(&fake, "desiredNumberScheduled") == 3 && status(&fake, "currentNumberScheduled") == 3).await;
    assert_eq!(status(&fake, "numberReady"), 0);
    assert_eq!(status(&fake, "numberUnavailable"), 3);
    for p in owned_pods(&fake, &uid) {
        set_pod(&fake, &key(&p), "Running", true);
    }
    eventually("status ready", || status(&fake, "numberReady") == 3 && status(&fake, "numberAvailable") == 3 && status(&fake, "numberUnavailable") == 0).await;
    assert_eq!(status(&fake, "updatedNumberScheduled"), 3);
    assert_eq!(status(&fake, "numberMisscheduled"), 0);
    assert_eq!(status(&fake, "observedGeneration"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_follows_nodes() {
    let fake = FakeCluster::new();
    let nodes = res("", "nodes");
    fake.set(nodes, node("n1", json!({"role": "edge"}), json!([])));
    let ds = create_ds(&fake, json!({"template": {"spec": {"nodeSelector": {"role": "edge"}}}})).await;
    let uid = ds["metadata"]["uid"].as_str().unwrap().to_string();
    let _c = start(&fake);
    eventually("pod on n1", || placement(&fake, &uid) == ["n1"]).await;

    fake.set(nodes, node("n2", json!({"role": "edge"}), json!([])));
    eventually("a node appears: pod on n2", || placement(&fake, &uid) == ["n1", "n2"]).await;

    fake.set(nodes, node("n1", json!({"role": "core"}), json!([])));
    eventually("n1 stops matching: its pod goes", || placement(&fake, &uid) == ["n2"]).await;

    // A NoSchedule taint keeps the running pod (misscheduled); NoExecute evicts it.
    fake.set(nodes, node("n2", json!({"role": "edge"}), json!([{"key": "maintenance", "effect": "NoSchedule"}])));
    eventually("misscheduled counted", || status(&fake, "numberMisscheduled") == 1).await;
    assert_eq!(placement(&fake, &uid), ["n2"]);
    fake.set(nodes, node("n2", json!({"role": "edge"}), json!([{"key": "maintenance", "effect": "NoExecute"}])));
    eventually("NoExecute evicts", || placement(&fake, &uid).is_empty()).await;

    fake.set(nodes, node("n3", json!({"role": "edge"}), json!([])));
    eventually("pod on n3", || placement(&fake, &uid) == ["n3"]).await;
    fake.client().delete(nodes, None, "n3", Default::default()).await.unwrap();
    eventually("node deleted: its pod goes", || placement(&fake, &uid).is_empty()).await;
    eventually("status", || status(&fake, "desiredNumberScheduled") == 0 && status(&fake, "currentNumberScheduled") == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_replaces_failed_pods_and_adopts_orphans() {
    let fake = FakeCluster::new();
    let nodes = res("", "nodes");
    fake.set(nodes, node("n1", json!({}), json!([])));
    fake.set(nodes, node("n2", json!({}), json!([])));
    // An orphan matching the selector, already on n2: adopted instead of duplicated.
    let orphan = json!({"metadata": {"name": "orphan", "namespace": "default", "labels": {"app": "agent"}},
        "spec": {"nodeName": "n2", "containers": [{"name": "agent", "image": "agent:1"}]}});
    fake.client().create(pods(), Some("default"), orphan).await.unwrap();
    // OnDelete: an adopted pod lacks the revision label and a rolling update would replace it.
    let ds = create_ds(&fake, json!({"updateStrategy": {"type": "OnDelete"}})).await;
    let uid = ds["metadata"]["uid"].as_str().unwrap().to_string();
    let _c = start(&fake);
    eventually("one pod per node, orphan adopted", || placement(&fake, &uid) == ["n1", "n2"]).await;
    assert!(owned_pods(&fake, &uid).iter().any(|p| name(p) == "orphan"));

    let on_n1 = owned_pods(&fake, &uid).into_iter().find(|p| target_node(p) == Some("n1")).unwrap();
    set_pod(&fake, &key(&on_n1), "Failed", false);
    eventually("failed pod replaced", || {
        let now = owned_pods(&fake, &uid);
        !now.iter().any(|p| name(p) == name(&on_n1)) && now.iter().any(|p| target_node(p) == Some("n1"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_rolling_update_respects_max_unavailable() {
    let fake = FakeCluster::new();
    let nodes = res("", "nodes");
    for i in 1..=5 {
        fake.set(nodes, node(&format!("n{i}"), json!({}), json!([])));
    }
    let ds = create_ds(&fake, json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}})).await;
    let uid = ds["metadata"]["uid"].as_str().unwrap().to_string();
    let _c = start(&fake);
    let kubelet = spawn_kubelet(&fake, |_| true);
    let _k = Running(vec![kubelet]);
    eventually("all ready", || status(&fake, "numberAvailable") == 5).await;
    let old_hash = owned_pods(&fake, &uid)[0]["metadata"]["labels"]["controller-revision-hash"].as_str().unwrap().to_string();

    let mut ds = fake.get(ds_res(), "default/agent").unwrap();
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:2");
    fake.client().update(ds_res(), ds).await.unwrap();

    // Sample continuously: never more than 2 nodes without a ready daemon pod.
    let mut worst = 0;
    let mut saw_new = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let live: Vec<Value> = owned_pods(&fake, &uid).into_iter().filter(|p| !is_deleting(p)).collect();
        let ready_nodes: BTreeSet<String> = live.iter().filter(|p| is_ready(p)).filter_map(|p| target_node(p).map(String::from)).collect();
        worst = worst.max(5 - ready_nodes.len());
        let updated = live.iter().filter(|p| p["metadata"]["labels"]["controller-revision-hash"].as_str() != Some(old_hash.as_str())).count();
        saw_new |= updated > 0;
        if updated == 5 && live.len() == 5 && live.iter().all(is_ready) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "rollout did not finish: {updated} updated of {}", live.len());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(saw_new);
    assert!(worst <= 2, "{worst} nodes were unavailable at once (maxUnavailable 2)");
    for p in owned_pods(&fake, &uid) {
        assert_eq!(p["spec"]["containers"][0]["image"], "agent:2");
    }
    eventually("status updated", || {
        status(&fake, "updatedNumberScheduled") == 5 && status(&fake, "numberAvailable") == 5 && status(&fake, "observedGeneration") == 2
    })
    .await;
    assert_eq!(fake.objects(res("apps", "controllerrevisions")).len(), 2, "both revisions kept (limit 10)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_surge_update_and_on_delete() {
    let fake = FakeCluster::new();
    let nodes = res("", "nodes");
    for i in 1..=3 {
        fake.set(nodes, node(&format!("n{i}"), json!({}), json!([])));
    }
    let ds = create_ds(&fake, json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}})).await;
    let uid = ds["metadata"]["uid"].as_str().unwrap().to_string();
    let _c = start(&fake);
    let _k = Running(vec![spawn_kubelet(&fake, |_| true)]);
    eventually("all ready", || status(&fake, "numberAvailable") == 3).await;

    let mut ds = fake.get(ds_res(), "default/agent").unwrap();
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:2");
    fake.client().update(ds_res(), ds).await.unwrap();
    // Surging: a node's old pod goes only after its new one is ready, so every node always has
    // a ready pod, and at most one node runs two.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let live: Vec<Value> = owned_pods(&fake, &uid).into_iter().filter(|p| !is_deleting(p)).collect();
        let ready_nodes: BTreeSet<String> = live.iter().filter(|p| is_ready(p)).filter_map(|p| target_node(p).map(String::from)).collect();
        assert_eq!(ready_nodes.len(), 3, "a node lost its daemon during a surge update");
        assert!(live.len() <= 4, "more than maxSurge extra pods: {}", live.len());
        if live.len() == 3 && live.iter().all(|p| p["spec"]["containers"][0]["image"] == "agent:2" && is_ready(p)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "surge rollout did not finish");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    // OnDelete: a template change replaces nothing until a pod is deleted.
    let mut ds = fake.get(ds_res(), "default/agent").unwrap();
    ds["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:3");
    fake.client().update(ds_res(), ds).await.unwrap();
    eventually("new revision observed", || status(&fake, "observedGeneration") == 3).await;
    stays("OnDelete keeps old pods", Duration::from_millis(300), || owned_pods(&fake, &uid).iter().all(|p| p["spec"]["containers"][0]["image"] == "agent:2"))
        .await;
    let victim = owned_pods(&fake, &uid).into_iter().next().unwrap();
    let victim_node = target_node(&victim).unwrap().to_string();
    fake.client().delete(pods(), Some("default"), name(&victim), Default::default()).await.unwrap();
    eventually("deleted pod recreated at the new revision", || {
        owned_pods(&fake, &uid).iter().any(|p| target_node(p) == Some(victim_node.as_str()) && p["spec"]["containers"][0]["image"] == "agent:3")
    })
    .await;
    assert_eq!(owned_pods(&fake, &uid).iter().filter(|p| p["spec"]["containers"][0]["image"] == "agent:2").count(), 2);
}
