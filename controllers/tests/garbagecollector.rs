mod netgc_support;

use std::time::Duration;

use controllers::client::{Client, DeleteOptions, res};
use controllers::{Config, garbagecollector};
use netgc_support::{Harness, deleted_rv, wait_for};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(5);

fn owned_by(owner: &Value, block: bool) -> Value {
    json!({"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": block})
}

fn pod(name: &str, owners: Vec<Value>) -> Value {
    json!({"metadata": {"name": name, "ownerReferences": owners}, "spec": {"containers": [{"name": "c", "image": "x"}]}})
}

async fn delete(c: &dyn Client, r: controllers::client::Resource, ns: Option<&str>, name: &str, propagation: Option<&str>) {
    c.delete(r, ns, name, DeleteOptions { propagation: propagation.map(String::from), ..Default::default() }).await.expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_deletion_of_dependents() {
    let mut h = Harness::new(Config::default());
    let (rs, pods, cms) = (res("apps", "replicasets"), res("", "pods"), res("", "configmaps"));
    let web = h.create(rs, Some("default"), json!({"metadata": {"name": "web"}})).await;
    let other = h.create(rs, Some("default"), json!({"metadata": {"name": "other"}})).await;
    h.create(pods, Some("default"), pod("web-1", vec![owned_by(&web, true)])).await;
    h.create(pods, Some("default"), pod("web-2", vec![owned_by(&web, false)])).await;
    h.create(pods, Some("default"), pod("other-1", vec![owned_by(&other, true)])).await;
    h.create(pods, Some("default"), pod("loner", vec![])).await;
    // Another kind of dependent, and an owner with the same name in another namespace.
    h.create(cms, Some("default"), json!({"metadata": {"name": "web-config", "ownerReferences": [owned_by(&web, false)]}})).await;
    let web_elsewhere = h.create(rs, Some("elsewhere"), json!({"metadata": {"name": "web"}})).await;
    h.create(pods, Some("elsewhere"), pod("web-1", vec![owned_by(&web_elsewhere, true)])).await;
    h.start(garbagecollector::run);

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.fake.objects(pods).len(), 5, "nothing is collected while owners exist");

    delete(h.client.as_ref(), rs, Some("default"), "web", None).await;
    wait_for("web's dependents to go", T, || {
        (h.fake.get(pods, "default/web-1").is_none() && h.fake.get(pods, "default/web-2").is_none() && h.fake.get(cms, "default/web-config").is_none()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.fake.get(pods, "default/other-1").is_some());
    assert!(h.fake.get(pods, "default/loner").is_some());
    assert!(h.fake.get(pods, "elsewhere/web-1").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_of_missing_or_replaced_owners() {
    let mut h = Harness::new(Config::default());
    let (rs, pods) = (res("apps", "replicasets"), res("", "pods"));
    let web = h.create(rs, Some("default"), json!({"metadata": {"name": "web"}})).await;
    let keep = h.create(rs, Some("default"), json!({"metadata": {"name": "keep"}})).await;
    let mut stale = owned_by(&web, true);
    stale["uid"] = json!("uid-of-an-earlier-web");
    // Names an owner that exists, but another incarnation of it.
    h.create(pods, Some("default"), pod("stale", vec![stale.clone()])).await;
    // One owner gone, one present: only the reference goes.
    h.create(pods, Some("default"), pod("two-owners", vec![stale, owned_by(&keep, false)])).await;
    // Owners of kinds the server does not serve prove nothing.
    h.create(pods, Some("default"), pod("unknown-kind", vec![json!({"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "w-uid"})])).await;
    h.create(pods, Some("default"), pod("fine", vec![owned_by(&web, true)])).await;
    h.start(garbagecollector::run);

    wait_for("the stale dependent to go", T, || h.fake.get(pods, "default/stale").is_none().then_some(())).await;
    let two = wait_for("the dangling reference to go", T, || {
        h.fake.get(pods, "default/two-owners").filter(|p| p["metadata"]["ownerReferences"].as_array().is_some_and(|r| r.len() == 1))
    })
    .await;
    assert_eq!(two["metadata"]["ownerReferences"][0]["uid"], keep["metadata"]["uid"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.fake.get(pods, "default/fine").is_some());
    assert!(h.fake.get(pods, "default/unknown-kind").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_scoped_owner() {
    let mut h = Harness::new(Config::default());
    let (nodes, leases) = (res("", "nodes"), res("coordination.k8s.io", "leases"));
    let n1 = h.create(nodes, None, json!({"metadata": {"name": "n1"}})).await;
    let n2 = h.create(nodes, None, json!({"metadata": {"name": "n2"}})).await;
    h.create(leases, Some("kube-node-lease"), json!({"metadata": {"name": "n1", "ownerReferences": [owned_by(&n1, false)]}})).await;
    h.create(leases, Some("kube-node-lease"), json!({"metadata": {"name": "n2", "ownerReferences": [owned_by(&n2, false)]}})).await;
    h.start(garbagecollector::run);
    delete(h.client.as_ref(), nodes, None, "n1", None).await;
    wait_for("n1's lease to go", T, || h.fake.get(leases, "kube-node-lease/n1").is_none().then_some(())).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(h.fake.get(leases, "kube-node-lease/n2").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_removes_dependents_first() {
    let mut h = Harness::new(Config::default());
    let (deploys, rs, pods) = (res("apps", "deployments"), res("apps", "replicasets"), res("", "pods"));
    let d = h.create(deploys, Some("default"), json!({"metadata": {"name": "web"}})).await;
    let r = h.create(rs, Some("default"), json!({"metadata": {"name": "web-abc", "ownerReferences": [owned_by(&d, true)]}})).await;
    // One pod is held by a finalizer (as a kubelet holds a terminating pod) to watch the owners wait.
    let mut held = pod("web-abc-1", vec![owned_by(&r, true)]);
    held["metadata"]["finalizers"] = json!(["test/hold"]);
    h.create(pods, Some("default"), held).await;
    h.create(pods, Some("default"), pod("web-abc-2", vec![owned_by(&r, true)])).await;
    // Not blocking: deleted too, but not waited for.
    h.create(pods, Some("default"), pod("web-abc-3", vec![owned_by(&r, false)])).await;
    h.start(garbagecollector::run);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = h.rev(pods).await;

    delete(h.client.as_ref(), deploys, Some("default"), "web", Some("Foreground")).await;
    wait_for("the free pods to go", T, || (h.fake.get(pods, "default/web-abc-2").is_none() && h.fake.get(pods, "default/web-abc-3").is_none()).then_some(())).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = h.fake.get(pods, "default/web-abc-1").expect("held pod");
    assert!(held["metadata"]["deletionTimestamp"].is_string(), "the held pod is being deleted");
    let r_now = h.fake.get(rs, "default/web-abc").expect("the ReplicaSet waits for its pods");
    assert!(r_now["metadata"]["finalizers"].as_array().is_some_and(|f| f.contains(&json!("foregroundDeletion"))), "{r_now}");
    let d_now = h.fake.get(deploys, "default/web").expect("the Deployment waits for its ReplicaSet");
    assert!(d_now["metadata"]["deletionTimestamp"].is_string());

    // Release the pod: everything goes, dependents first.
    let mut held = held;
    held["metadata"]["finalizers"] = json!(null);
    h.client.update(pods, held).await.expect("release");
    wait_for("the Deployment to go", T, || h.fake.get(deploys, "default/web").is_none().then_some(())).await;
    let pod_events = h.events_since(pods, start).await;
    let rs_events = h.events_since(rs, start).await;
    let d_events = h.events_since(deploys, start).await;
    let p1 = deleted_rv(&pod_events, "web-abc-1").expect("pod 1 deleted");
    let p2 = deleted_rv(&pod_events, "web-abc-2").expect("pod 2 deleted");
    let rs_gone = deleted_rv(&rs_events, "web-abc").expect("rs deleted");
    let d_gone = deleted_rv(&d_events, "web").expect("deployment deleted");
    assert!(p1 < rs_gone && p2 < rs_gone, "pods ({p1}, {p2}) before their ReplicaSet ({rs_gone})");
    assert!(rs_gone < d_gone, "ReplicaSet ({rs_gone}) before its Deployment ({d_gone})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_deletion_keeps_dependents() {
    let mut h = Harness::new(Config::default());
    let (rs, pods) = (res("apps", "replicasets"), res("", "pods"));
    let web = h.create(rs, Some("default"), json!({"metadata": {"name": "web"}})).await;
    let other = h.create(rs, Some("default"), json!({"metadata": {"name": "other"}})).await;
    h.create(pods, Some("default"), pod("web-1", vec![owned_by(&web, true)])).await;
    // Keeps its other owner.
    let mut shared = owned_by(&other, false);
    shared["controller"] = json!(false);
    h.create(pods, Some("default"), pod("web-2", vec![owned_by(&web, true), shared.clone()])).await;
    h.start(garbagecollector::run);
    tokio::time::sleep(Duration::from_millis(200)).await;

    delete(h.client.as_ref(), rs, Some("default"), "web", Some("Orphan")).await;
    wait_for("the ReplicaSet to go", T, || h.fake.get(rs, "default/web").is_none().then_some(())).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let p1 = h.fake.get(pods, "default/web-1").expect("orphaned pod kept");
    assert!(p1["metadata"].get("ownerReferences").is_none_or(|r| r.as_array().is_some_and(|a| a.is_empty())), "{p1}");
    let p2 = h.fake.get(pods, "default/web-2").expect("orphaned pod kept");
    assert_eq!(p2["metadata"]["ownerReferences"], json!([shared]));
}
