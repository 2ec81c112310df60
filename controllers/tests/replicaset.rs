//! The ReplicaSet controller against the in-memory cluster.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use controllers::client::DeleteOptions;
use controllers::replicaset::ReplicaSetController;
use controllers::testing::FakeCluster;
use controllers::util;
use serde_json::{Value, json};

fn replicaset(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name, "tier": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
    })
}

/// Active pods controlled by the ReplicaSet `name`.
fn owned_pods(env: &Env, name: &str) -> Vec<Value> {
    let Some(rs) = env.get(rss(), name) else { return Vec::new() };
    env.pods().into_iter().filter(|p| util::is_controlled_by(p, &rs) && util::is_pod_active(p)).collect()
}

fn dump(env: &Env) -> impl Fn() -> String + '_ {
    move || format!("replicasets: {:#}\npods: {:#}", json!(env.rss()), json!(env.pods()))
}

fn status(env: &Env, name: &str, field: &str) -> i64 {
    env.get(rss(), name).and_then(|r| r["status"][field].as_i64()).unwrap_or(-1)
}

#[tokio::test]
async fn rs_creates_missing_pods_and_reports_status() {
    let mut env = Env::new();
    env.start_replicasets();
    env.start_kubelet(|_| true);
    env.create(rss(), replicaset("web", 3)).await;
    wait_for("3 ready pods reported", 10, || status(&env, "web", "availableReplicas") == 3, dump(&env)).await;

    let pods = owned_pods(&env, "web");
    assert_eq!(pods.len(), 3);
    for p in &pods {
        assert!(util::name(p).starts_with("web-"), "generateName: {}", util::name(p));
        assert_eq!(label(p, "tier"), "web", "labels come from the template");
        let r = util::controller_of(p).expect("controller reference");
        assert_eq!((r["kind"].as_str(), r["controller"].as_bool()), (Some("ReplicaSet"), Some(true)));
    }
    let rs = env.get(rss(), "web").expect("rs");
    assert_eq!(rs["status"]["replicas"], 3);
    assert_eq!(rs["status"]["fullyLabeledReplicas"], 3);
    assert_eq!(rs["status"]["readyReplicas"], 3);
    assert_eq!(rs["status"]["observedGeneration"], 1);
    assert_eq!(env.events("SuccessfulCreate").len(), 3);
    assert!(env.events("SuccessfulCreate").iter().all(|m| m.starts_with("Created pod: web-")));

    // Scaling up adds exactly the difference.
    env.patch(rss(), "web", json!({"spec": {"replicas": 5}})).await;
    wait_for("5 available", 10, || status(&env, "web", "availableReplicas") == 5 && status(&env, "web", "observedGeneration") == 2, dump(&env)).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(owned_pods(&env, "web").len(), 5);
    assert_eq!(env.pods().len(), 5, "no extra pods");
}

#[tokio::test]
async fn rs_heals_deleted_and_failed_pods() {
    let mut env = Env::new();
    env.start_replicasets();
    env.start_kubelet(|_| true);
    env.create(rss(), replicaset("web", 3)).await;
    wait_for("3 available", 10, || status(&env, "web", "availableReplicas") == 3, dump(&env)).await;

    let victim = owned_pods(&env, "web")[0].clone();
    env.fake.client().delete(pods(), Some(NS), util::name(&victim), DeleteOptions::default()).await.expect("delete");
    wait_for(
        "a replacement",
        10,
        || owned_pods(&env, "web").len() == 3 && !owned_pods(&env, "web").iter().any(|p| util::uid(p) == util::uid(&victim)),
        dump(&env),
    )
    .await;

    // A failed pod does not count: it is replaced, and left for the pod GC.
    wait_for("3 available again", 10, || status(&env, "web", "availableReplicas") == 3 && owned_pods(&env, "web").iter().all(util::is_pod_ready), dump(&env))
        .await;
    let mut failed = owned_pods(&env, "web")[0].clone();
    failed["status"]["phase"] = json!("Failed");
    env.fake.set(pods(), failed.clone());
    wait_for("a replacement for the failed pod", 10, || owned_pods(&env, "web").len() == 3 && env.pods().len() == 4, dump(&env)).await;
    assert!(env.get(pods(), util::name(&failed)).is_some());
    wait_for("3 available", 10, || status(&env, "web", "availableReplicas") == 3 && status(&env, "web", "replicas") == 3, dump(&env)).await;
}

#[tokio::test]
async fn rs_adopts_orphans_and_releases_relabeled_pods() {
    let mut env = Env::new();
    // An orphan that matches, and one that does not.
    let orphan = env.create(pods(), json!({"metadata": {"name": "orphan", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}})).await;
    env.create(pods(), json!({"metadata": {"name": "stranger", "labels": {"app": "other"}}, "spec": {"containers": [{"name": "c"}]}})).await;
    env.start_replicasets();
    env.start_kubelet(|_| true);
    env.create(rss(), replicaset("web", 2)).await;
    wait_for("2 pods", 10, || owned_pods(&env, "web").len() == 2 && status(&env, "web", "replicas") == 2, dump(&env)).await;
    let rs = env.get(rss(), "web").expect("rs");
    assert!(util::is_controlled_by(&env.get(pods(), "orphan").expect("orphan"), &rs), "the matching orphan is adopted");
    assert_eq!(controller_uid(&env.get(pods(), "stranger").expect("stranger")), None, "a non-matching pod is left alone");
    assert_eq!(env.pods().len(), 3, "the orphan counts: only one pod created");
    assert_eq!(util::uid(&env.get(pods(), "orphan").expect("orphan")), util::uid(&orphan));

    // Relabel an owned pod out of the selector: it is released and replaced.
    env.patch(pods(), "orphan", json!({"metadata": {"labels": {"app": "elsewhere"}}})).await;
    wait_for(
        "release and replacement",
        10,
        || controller_uid(&env.get(pods(), "orphan").expect("orphan")).is_none() && owned_pods(&env, "web").len() == 2,
        dump(&env),
    )
    .await;
    assert!(env.get(pods(), "orphan").expect("orphan")["metadata"].get("ownerReferences").is_none());
    assert_eq!(env.pods().len(), 4);
}

fn pod_state(name: &str, node: Option<&str>, phase: &str, ready_secs_ago: Option<i64>) -> Value {
    let now = util::now();
    let mut p = json!({
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "web", "tier": "web"}},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "False"}]},
    });
    if let Some(n) = node {
        p["spec"]["nodeName"] = json!(n);
    }
    if let Some(ago) = ready_secs_ago {
        p["status"]["conditions"] =
            json!([{"type": "Ready", "status": "True", "lastTransitionTime": util::timestamp(now - jiff::SignedDuration::from_secs(ago))}]);
    }
    p
}

#[tokio::test]
async fn rs_scale_down_prefers_unscheduled_and_not_ready() {
    let mut env = Env::new();
    // Four orphans in different states; the ReplicaSet adopts them all, then is scaled down.
    let states = [
        pod_state("long-ready", Some("n1"), "Running", Some(100_000)),
        pod_state("just-ready", Some("n2"), "Running", Some(2)),
        pod_state("not-ready", Some("n3"), "Running", None),
        pod_state("unscheduled", None, "Pending", None),
    ];
    for s in &states {
        let created = env.create(pods(), s.clone()).await;
        let mut with_status = created.clone();
        with_status["status"] = s["status"].clone();
        env.fake.set(pods(), with_status);
    }
    env.start_replicasets();
    env.create(rss(), replicaset("web", 4)).await;
    wait_for("all adopted", 10, || owned_pods(&env, "web").len() == 4 && status(&env, "web", "replicas") == 4, dump(&env)).await;
    assert_eq!(env.pods().len(), 4);

    let remaining = |env: &Env| {
        let mut n: Vec<String> = owned_pods(env, "web").iter().map(|p| util::name(p).to_string()).collect();
        n.sort();
        n
    };
    env.patch(rss(), "web", json!({"spec": {"replicas": 3}})).await;
    wait_for("3 left", 10, || owned_pods(&env, "web").len() == 3, dump(&env)).await;
    assert_eq!(remaining(&env), vec!["just-ready", "long-ready", "not-ready"], "unscheduled goes first");
    env.patch(rss(), "web", json!({"spec": {"replicas": 2}})).await;
    wait_for("2 left", 10, || owned_pods(&env, "web").len() == 2, dump(&env)).await;
    assert_eq!(remaining(&env), vec!["just-ready", "long-ready"], "then not ready");
    env.patch(rss(), "web", json!({"spec": {"replicas": 1}})).await;
    wait_for("1 left", 10, || owned_pods(&env, "web").len() == 1, dump(&env)).await;
    assert_eq!(remaining(&env), vec!["long-ready"], "then the more recently ready");
    let mut deleted = env.events("SuccessfulDelete");
    deleted.sort();
    assert_eq!(deleted, vec!["Deleted pod: just-ready", "Deleted pod: not-ready", "Deleted pod: unscheduled"]);
}

#[tokio::test]
async fn rs_expectations_prevent_double_creation() {
    let env = Env::new();
    env.create(rss(), replicaset("web", 3)).await;
    let c = ReplicaSetController::new(&env.ctx);
    let pod_informer = env.ctx.informers.get(pods());
    let rs_informer = env.ctx.informers.get(rss());
    pod_informer.synced().await;
    rs_informer.synced().await;
    wait_for("rs in cache", 5, || rs_informer.len() == 1, String::new).await;

    c.sync("default/web").await.expect("sync");
    assert_eq!(env.pods().len(), 3);
    assert_eq!(c.expectations.pending("default/web"), Some((3, 0)));
    // Nothing has yielded to the informer yet: its cache does not show the new pods, and a
    // sync that trusted it would create three more.
    assert_eq!(pod_informer.len(), 0, "precondition: the cache lags");
    c.sync("default/web").await.expect("second sync");
    assert_eq!(env.pods().len(), 3, "expectations held back the second sync");

    // Once the cache shows the pods (the handlers are not running here, so note them by
    // hand), a sync finds nothing to do.
    wait_for("cache catches up", 5, || pod_informer.len() == 3, String::new).await;
    for _ in 0..3 {
        c.expectations.creation_observed("default/web");
    }
    assert!(c.expectations.satisfied("default/web"));
    c.sync("default/web").await.expect("third sync");
    assert_eq!(env.pods().len(), 3);
}

#[tokio::test]
async fn rs_create_errors_slow_start_and_report_replica_failure() {
    let fake = FakeCluster::new();
    let quota = Faulty::new(fake.clone());
    quota.refuse_pod_creates.store(true, Ordering::SeqCst);
    let mut env = Env::with_client(fake, Some(quota.clone()));
    env.start_replicasets();
    env.create(rss(), replicaset("web", 20)).await;
    let failure = |env: &Env| {
        env.get(rss(), "web").and_then(|r| r["status"]["conditions"].as_array().cloned()).and_then(|cs| cs.into_iter().find(|c| c["type"] == "ReplicaFailure"))
    };
    wait_for("ReplicaFailure", 10, || failure(&env).is_some(), dump(&env)).await;
    let cond = failure(&env).expect("condition");
    assert_eq!((cond["status"].as_str(), cond["reason"].as_str()), (Some("True"), Some("FailedCreate")));
    assert!(cond["message"].as_str().unwrap_or("").contains("exceeded quota"), "{cond}");
    // The first batch is a single pod: a refusal stops the sync after one attempt, not twenty
    // (retries with backoff may have made a few more by now, one attempt each).
    let attempts = quota.pod_create_attempts.load(Ordering::SeqCst);
    let failed = env.events("FailedCreate");
    assert!((1..=4).contains(&attempts), "{attempts} attempts");
    assert_eq!(failed.len(), attempts, "one FailedCreate event per attempt");
    assert!(failed.iter().all(|m| m.starts_with("Error creating: ")));

    // The quota is lifted: the retry (with backoff) creates everything and clears the failure.
    quota.refuse_pod_creates.store(false, Ordering::SeqCst);
    wait_for(
        "20 pods and no failure",
        10,
        || owned_pods(&env, "web").len() == 20 && failure(&env).is_none() && status(&env, "web", "replicas") == 20,
        dump(&env),
    )
    .await;
    assert_eq!(env.pods().len(), 20);
}

#[tokio::test]
async fn rs_min_ready_seconds_delays_availability() {
    let mut env = Env::new();
    env.start_replicasets();
    env.start_kubelet(|_| true);
    let mut rs = replicaset("web", 2);
    rs["spec"]["minReadySeconds"] = json!(1);
    env.create(rss(), rs).await;
    wait_for("2 ready", 10, || status(&env, "web", "readyReplicas") == 2, dump(&env)).await;
    assert!(status(&env, "web", "availableReplicas") < 2, "ready pods are not available before minReadySeconds");
    wait_for("2 available", 10, || status(&env, "web", "availableReplicas") == 2, dump(&env)).await;
}

#[tokio::test]
async fn rs_being_deleted_does_not_adopt() {
    let mut env = Env::new();
    env.start_replicasets();
    let mut rs = replicaset("web", 1);
    rs["metadata"]["finalizers"] = json!(["test/hold"]);
    env.create(rss(), rs).await;
    wait_for("1 pod", 10, || owned_pods(&env, "web").len() == 1, dump(&env)).await;
    env.fake.client().delete(rss(), Some(NS), "web", DeleteOptions::default()).await.expect("delete");
    env.create(pods(), json!({"metadata": {"name": "orphan", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}})).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(controller_uid(&env.get(pods(), "orphan").expect("orphan")), None);
    assert_eq!(env.pods().len(), 2, "nothing created or deleted while being deleted");
}
