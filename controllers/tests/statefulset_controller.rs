//! The StatefulSet controller against the in-memory cluster.

mod support_workloads;

use std::sync::Arc;
use std::time::Duration;

use controllers::client::res;
use controllers::daemonset::common::SystemClock;
use controllers::statefulset;
use controllers::testing::FakeCluster;
use serde_json::{Value, json};
use support_workloads::*;

fn sts_res() -> controllers::client::Resource {
    res("apps", "statefulsets")
}

async fn create_sts(fake: &FakeCluster, spec: Value) -> Value {
    let mut sts = json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "serviceName": "web-svc",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}}
        }
    });
    controllers::testing::merge(&mut sts, &json!({"spec": spec}));
    fake.client().create(sts_res(), Some("default"), sts).await.unwrap()
}

fn start(fake: &FakeCluster) -> Running {
    Running(vec![tokio::spawn(statefulset::run_with_clock(ctx(fake), Arc::new(SystemClock)))])
}

fn pod_names(fake: &FakeCluster) -> Vec<String> {
    let mut v: Vec<String> = fake.objects(pods()).iter().filter(|p| !is_deleting(p)).map(|p| name(p).to_string()).collect();
    v.sort();
    v
}

fn status(fake: &FakeCluster, field: &str) -> Value {
    fake.get(sts_res(), "default/web").and_then(|d| d.pointer(&format!("/status/{field}")).cloned()).unwrap_or(Value::Null)
}

fn revision_of(fake: &FakeCluster, pod: &str) -> String {
    fake.get(pods(), &format!("default/{pod}")).and_then(|p| p["metadata"]["labels"]["controller-revision-hash"].as_str().map(String::from)).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_creates_in_order_and_scales_down_in_reverse() {
    let fake = FakeCluster::new();
    let sts = create_sts(
        &fake,
        json!({"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}),
    )
    .await;
    let _c = start(&fake);

    for i in 0..3 {
        let want: Vec<String> = (0..=i).map(|j| format!("web-{j}")).collect();
        eventually(&format!("web-{i} created"), || pod_names(&fake) == want).await;
        // The next ordinal waits for this one to be Running and Ready.
        stays(&format!("no web-{} before web-{i} is ready", i + 1), Duration::from_millis(250), || pod_names(&fake) == want).await;
        set_pod(&fake, &format!("default/web-{i}"), "Running", false);
        stays("running but not ready is not enough", Duration::from_millis(150), || pod_names(&fake) == want).await;
        set_pod(&fake, &format!("default/web-{i}"), "Running", true);
    }
    eventually("all ready", || status(&fake, "readyReplicas") == json!(3) && status(&fake, "replicas") == json!(3)).await;

    let p1 = fake.get(pods(), "default/web-1").unwrap();
    assert_eq!(p1["spec"]["hostname"], "web-1");
    assert_eq!(p1["spec"]["subdomain"], "web-svc");
    assert_eq!(p1["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"], "web-1");
    assert_eq!(p1["metadata"]["labels"]["apps.kubernetes.io/pod-index"], "1");
    assert_eq!(p1["metadata"]["ownerReferences"][0]["uid"], sts["metadata"]["uid"]);
    let vol = p1["spec"]["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "data").cloned().unwrap();
    assert_eq!(vol["persistentVolumeClaim"]["claimName"], "data-web-1");
    let mut claims: Vec<String> = fake.objects(res("", "persistentvolumeclaims")).iter().map(|c| name(c).to_string()).collect();
    claims.sort();
    assert_eq!(claims, ["data-web-0", "data-web-1", "data-web-2"]);
    let claim = fake.get(res("", "persistentvolumeclaims"), "default/data-web-0").unwrap();
    assert_eq!(claim["metadata"]["labels"]["app"], "web");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "1Gi");
    let rev = status(&fake, "updateRevision");
    assert_eq!(status(&fake, "currentRevision"), rev);
    assert_eq!(revision_of(&fake, "web-0"), rev.as_str().unwrap());

    // Scale down: web-2 goes first, web-1 only after.
    let mut s = fake.get(sts_res(), "default/web").unwrap();
    s["spec"]["replicas"] = json!(1);
    fake.client().update(sts_res(), s).await.unwrap();
    let mut seen = Vec::new();
    eventually("scaled down to web-0", || {
        let names = pod_names(&fake);
        if seen.last() != Some(&names) {
            seen.push(names.clone());
        }
        names == ["web-0"]
    })
    .await;
    assert!(seen.iter().all(|s| s.len() != 2 || s == &["web-0", "web-1"]), "web-1 went before web-2: {seen:?}");
    eventually("status", || status(&fake, "replicas") == json!(1) && status(&fake, "readyReplicas") == json!(1)).await;
    assert_eq!(fake.objects(res("", "persistentvolumeclaims")).len(), 3, "claims are retained");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_ordered_scale_down_waits_for_each_deletion() {
    let fake = FakeCluster::new();
    create_sts(&fake, json!({"replicas": 3})).await;
    let _c = start(&fake);
    let k = spawn_kubelet(&fake, |_| true);
    eventually("three ready", || status(&fake, "readyReplicas") == json!(3)).await;
    k.abort();
    // A finalizer keeps web-2 terminating: web-1 must wait for it.
    let mut p2 = fake.get(pods(), "default/web-2").unwrap();
    p2["metadata"]["finalizers"] = json!(["test/hold"]);
    fake.set(pods(), p2);
    let mut s = fake.get(sts_res(), "default/web").unwrap();
    s["spec"]["replicas"] = json!(1);
    fake.client().update(sts_res(), s).await.unwrap();
    eventually("web-2 terminating", || fake.get(pods(), "default/web-2").is_some_and(|p| is_deleting(&p))).await;
    stays("web-1 waits", Duration::from_millis(300), || fake.get(pods(), "default/web-1").is_some_and(|p| !is_deleting(&p))).await;
    let mut p2 = fake.get(pods(), "default/web-2").unwrap();
    p2["metadata"]["finalizers"] = json!([]);
    fake.client().update(pods(), p2).await.unwrap();
    eventually("web-1 deleted after web-2 is gone", || pod_names(&fake) == ["web-0"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_parallel_creates_all() {
    let fake = FakeCluster::new();
    create_sts(&fake, json!({"podManagementPolicy": "Parallel", "replicas": 4})).await;
    let _c = start(&fake);
    eventually("all four at once, none ready", || pod_names(&fake) == ["web-0", "web-1", "web-2", "web-3"]).await;
    assert!(fake.objects(pods()).iter().all(|p| !is_ready(p)));
    let mut s = fake.get(sts_res(), "default/web").unwrap();
    s["spec"]["replicas"] = json!(2);
    fake.client().update(sts_res(), s).await.unwrap();
    eventually("parallel scale down without readiness", || pod_names(&fake) == ["web-0", "web-1"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_partitioned_rolling_update() {
    let fake = FakeCluster::new();
    create_sts(&fake, json!({"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}})).await;
    let _c = start(&fake);
    let _k = Running(vec![spawn_kubelet(&fake, |_| true)]);
    eventually("three ready", || status(&fake, "readyReplicas") == json!(3)).await;
    let old = status(&fake, "currentRevision").as_str().unwrap().to_string();

    let mut s = fake.get(sts_res(), "default/web").unwrap();
    s["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    fake.client().update(sts_res(), s).await.unwrap();
    eventually("new update revision", || status(&fake, "updateRevision").as_str().is_some_and(|r| r != old)).await;
    let new = status(&fake, "updateRevision").as_str().unwrap().to_string();

    // Highest ordinal first, down to the partition.
    let mut order = Vec::new();
    eventually("web-2 and web-1 updated", || {
        for n in ["web-2", "web-1"] {
            if revision_of(&fake, n) == new && !order.contains(&n) {
                order.push(n);
            }
        }
        order.len() == 2 && status(&fake, "updatedReplicas") == json!(2) && status(&fake, "readyReplicas") == json!(3)
    })
    .await;
    assert_eq!(order, ["web-2", "web-1"]);
    stays("web-0 stays below the partition", Duration::from_millis(300), || revision_of(&fake, "web-0") == old).await;
    assert_eq!(status(&fake, "currentRevision"), json!(old));
    assert_eq!(status(&fake, "currentReplicas"), json!(1));
    assert_eq!(fake.get(pods(), "default/web-2").unwrap()["spec"]["containers"][0]["image"], "nginx:2");
    assert_eq!(fake.get(pods(), "default/web-0").unwrap()["spec"]["containers"][0]["image"], "nginx:1");

    // Below the partition, a deleted pod comes back at the current (old) revision.
    fake.client().delete(pods(), Some("default"), "web-0", Default::default()).await.unwrap();
    eventually("web-0 recreated at the old revision", || revision_of(&fake, "web-0") == old && fake.get(pods(), "default/web-0").is_some_and(|p| is_ready(&p)))
        .await;
    assert_eq!(fake.get(pods(), "default/web-0").unwrap()["spec"]["containers"][0]["image"], "nginx:1");

    let mut s = fake.get(sts_res(), "default/web").unwrap();
    s["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(0);
    fake.client().update(sts_res(), s).await.unwrap();
    eventually("rollout completes", || {
        status(&fake, "currentRevision") == json!(new) && status(&fake, "updatedReplicas") == json!(3) && status(&fake, "currentReplicas") == json!(3)
    })
    .await;
    assert_eq!(revision_of(&fake, "web-0"), new);
    let revs = fake.objects(res("apps", "controllerrevisions"));
    assert_eq!(revs.len(), 2);
    assert!(revs.iter().all(|r| r["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"));
}
