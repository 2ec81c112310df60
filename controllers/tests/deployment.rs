//! The Deployment controller (with the ReplicaSet controller and a fake kubelet) against the
//! in-memory cluster.

mod common;

use std::time::Duration;

use common::*;
use controllers::deployment::{self as dep, POD_TEMPLATE_HASH};
use controllers::testing::FakeCluster;
use controllers::util;
use serde_json::{Value, json};

fn deployment(name: &str, replicas: i64, strategy: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "annotations": {"kubernetes.io/change-cause": "first"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": template(name, "v1"),
        },
    })
}

fn template(app: &str, version: &str) -> Value {
    json!({"metadata": {"labels": {"app": app, "version": version}}, "spec": {"containers": [{"name": "c", "image": format!("img:{version}")}]}})
}

fn rolling(surge: Value, unavailable: Value) -> Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
}

async fn set_version(env: &Env, name: &str, version: &str, cause: &str) {
    env.patch(deployments(), name, json!({"metadata": {"annotations": {"kubernetes.io/change-cause": cause}}, "spec": {"template": template(name, version)}}))
        .await;
}

/// What `kubectl rollout status` waits for.
fn rollout_complete(env: &Env, name: &str) -> bool {
    let Some(d) = env.get(deployments(), name) else { return false };
    let s = &d["status"];
    let n = |f: &str| s[f].as_i64().unwrap_or(0);
    let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
    n("observedGeneration") >= d["metadata"]["generation"].as_i64().unwrap_or(0)
        && n("updatedReplicas") == want
        && n("replicas") == n("updatedReplicas")
        && n("availableReplicas") == n("updatedReplicas")
}

fn owned_rss(env: &Env, name: &str) -> Vec<Value> {
    let Some(d) = env.get(deployments(), name) else { return Vec::new() };
    let mut v: Vec<Value> = env.rss().into_iter().filter(|rs| util::is_controlled_by(rs, &d)).collect();
    v.sort_by_key(|rs| dep::revision(rs).unwrap_or(0));
    v
}

fn rs_for_version(env: &Env, name: &str, version: &str) -> Option<Value> {
    owned_rss(env, name).into_iter().find(|rs| rs.pointer("/spec/template/metadata/labels/version").and_then(|v| v.as_str()) == Some(version))
}

fn spec_of(rs: &Value) -> i64 {
    rs["spec"]["replicas"].as_i64().unwrap_or(-1)
}

fn condition(env: &Env, name: &str, ty: &str) -> Option<Value> {
    let d = env.get(deployments(), name)?;
    d["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == ty).cloned()
}

fn dump(env: &Env) -> impl Fn() -> String + '_ {
    move || {
        let brief = |v: Vec<Value>| -> Vec<Value> {
            v.into_iter()
                .map(|o| json!({"name": o["metadata"]["name"], "labels": o["metadata"]["labels"], "annotations": o["metadata"]["annotations"], "spec.replicas": o["spec"]["replicas"], "status": o["status"], "ready": util::is_pod_ready(&o)}))
                .collect()
        };
        format!("deployments: {:#}\nreplicasets: {:#}\npods: {:#}", json!(env.fake.objects(deployments())), json!(brief(env.rss())), json!(brief(env.pods())))
    }
}

fn env_with_kubelet(ready: impl Fn(&Value) -> bool + Send + Sync + 'static) -> Env {
    let mut env = Env::new();
    env.start_replicasets();
    env.start_deployments();
    env.start_kubelet(ready);
    env
}

fn is_bad(pod: &Value) -> bool {
    pod.pointer("/spec/containers/0/image").and_then(|i| i.as_str()) == Some("img:bad")
}

#[tokio::test]
async fn deployment_creates_its_replica_set_and_completes() {
    let env = env_with_kubelet(|_| true);
    env.create(deployments(), deployment("web", 3, rolling(json!("25%"), json!("25%")))).await;
    wait_for("rollout", 10, || rollout_complete(&env, "web"), dump(&env)).await;

    let rss = owned_rss(&env, "web");
    assert_eq!(rss.len(), 1);
    let rs = &rss[0];
    let hash = label(rs, POD_TEMPLATE_HASH).to_string();
    assert!(!hash.is_empty());
    assert_eq!(util::name(rs), format!("web-{hash}"));
    assert_eq!(rs["spec"]["selector"]["matchLabels"], json!({"app": "web", POD_TEMPLATE_HASH: hash}));
    assert_eq!(rs["spec"]["template"]["metadata"]["labels"][POD_TEMPLATE_HASH], json!(hash));
    assert_eq!(dep::annotation(rs, dep::REVISION), Some("1"));
    assert_eq!(dep::annotation(rs, dep::DESIRED_REPLICAS), Some("3"));
    assert_eq!(dep::annotation(rs, dep::MAX_REPLICAS), Some("4"));
    assert_eq!(dep::annotation(rs, dep::CHANGE_CAUSE), Some("first"));
    assert!(env.pods().iter().all(|p| label(p, POD_TEMPLATE_HASH) == hash));

    let d = env.get(deployments(), "web").expect("deployment");
    assert_eq!(dep::annotation(&d, dep::REVISION), Some("1"));
    let s = &d["status"];
    assert_eq!(
        (s["replicas"].as_i64(), s["updatedReplicas"].as_i64(), s["readyReplicas"].as_i64(), s["availableReplicas"].as_i64()),
        (Some(3), Some(3), Some(3), Some(3))
    );
    assert_eq!(s["unavailableReplicas"].as_i64().unwrap_or(0), 0);
    assert_eq!(s["observedGeneration"], d["metadata"]["generation"]);
    let avail = condition(&env, "web", "Available").expect("Available");
    assert_eq!((avail["status"].as_str(), avail["reason"].as_str()), (Some("True"), Some("MinimumReplicasAvailable")));
    wait_for(
        "Progressing: NewReplicaSetAvailable",
        10,
        || condition(&env, "web", "Progressing").is_some_and(|c| c["reason"] == "NewReplicaSetAvailable"),
        dump(&env),
    )
    .await;
    assert_eq!(env.events("ScalingReplicaSet"), vec![format!("Scaled up replica set web-{hash} to 3 from 0")]);
}

/// Rolls `web` from v1 to v2 under the given strategy and checks, at every single pod change,
/// that there are never more than `replicas + surge` pods nor fewer than
/// `replicas - unavailable` ready ones.
async fn check_rolling_bounds(replicas: i64, surge: Value, unavailable: Value, want_surge: usize, want_unavailable: usize) {
    check_rolling_bounds_with(replicas, surge, unavailable, want_surge, want_unavailable, 0).await
}

/// The same, with pod deletions taking `delete_delay_ms` to happen: the ReplicaSet
/// controller lags behind the specs the deployment controller sets.
async fn check_rolling_bounds_with(replicas: i64, surge: Value, unavailable: Value, want_surge: usize, want_unavailable: usize, delete_delay_ms: u64) {
    let fake = FakeCluster::new();
    let faulty = Faulty::new(fake.clone());
    faulty.pod_delete_delay_ms.store(delete_delay_ms, std::sync::atomic::Ordering::SeqCst);
    let mut env = Env::with_client(fake, Some(faulty));
    env.start_replicasets();
    env.start_deployments();
    env.start_kubelet(|_| true);
    env.create(deployments(), deployment("web", replicas, rolling(surge.clone(), unavailable.clone()))).await;
    wait_for("initial rollout", 10, || rollout_complete(&env, "web") && env.pods().len() == replicas as usize, dump(&env)).await;

    let observer = Observer::start(&env.fake, "web").await;
    set_version(&env, "web", "v2", "second").await;
    wait_for(
        "rollout to v2",
        20,
        || rollout_complete(&env, "web") && env.pods().iter().all(|p| label(p, "version") == "v2") && env.pods().len() == replicas as usize,
        dump(&env),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let snaps = observer.snapshots();
    let case = format!("replicas {replicas}, surge {surge}, unavailable {unavailable}");
    assert!(snaps.len() > 2 * replicas as usize, "{case}: every step observed ({} snapshots)", snaps.len());
    let max_total = replicas as usize + want_surge;
    let min_ready = replicas as usize - want_unavailable;
    for (i, s) in snaps.iter().enumerate() {
        assert!(s.total <= max_total, "{case}: step {i}: {} pods > {max_total}: {s:?}", s.total);
        assert!(s.ready >= min_ready, "{case}: step {i}: {} ready < {min_ready}: {s:?}", s.ready);
    }
    // With only one kind of slack the controller has to use it all to make progress at the
    // pace it does (with both, which is reached first depends on timing).
    if want_unavailable == 0 {
        assert!(snaps.iter().any(|s| s.total == max_total), "{case}: surge never used");
    }
    if want_surge == 0 {
        assert!(snaps.iter().any(|s| s.ready == min_ready), "{case}: unavailability never used");
    }
    let rss = owned_rss(&env, "web");
    assert_eq!(rss.len(), 2, "{case}: the old ReplicaSet is kept for history");
    assert_eq!((spec_of(&rss[0]), spec_of(&rss[1])), (0, replicas), "{case}");
    assert_eq!(dep::annotation(&rss[1], dep::REVISION), Some("2"));
    assert_eq!(dep::annotation(&rss[1], dep::CHANGE_CAUSE), Some("second"));
    let d = env.get(deployments(), "web").expect("deployment");
    assert_eq!(dep::annotation(&d, dep::REVISION), Some("2"));
    let scaled = env.events("ScalingReplicaSet");
    assert!(scaled.iter().any(|m| m.starts_with(&format!("Scaled down replica set {} to 0 from", util::name(&rss[0])))), "{case}: {scaled:?}");
}

#[tokio::test]
async fn rolling_update_bounds_surge_1_unavailable_1() {
    check_rolling_bounds(4, json!(1), json!(1), 1, 1).await;
}

#[tokio::test]
async fn rolling_update_bounds_surge_only() {
    check_rolling_bounds(3, json!(2), json!(0), 2, 0).await;
}

#[tokio::test]
async fn rolling_update_bounds_unavailable_only() {
    check_rolling_bounds(5, json!(0), json!(2), 0, 2).await;
}

#[tokio::test]
async fn rolling_update_bounds_percentages() {
    // 10 replicas: 25% surge rounds up to 3, 25% unavailable rounds down to 2.
    check_rolling_bounds(10, json!("25%"), json!("25%"), 3, 2).await;
}

#[tokio::test]
async fn rolling_update_bounds_hold_when_pod_deletion_lags() {
    // Old pods outlive their ReplicaSet's scale-down by 50 ms: the new ReplicaSet must not
    // grow into the room they have not yet left, nor old ones shrink on stale availability.
    check_rolling_bounds_with(4, json!(1), json!(1), 1, 1, 50).await;
    check_rolling_bounds_with(3, json!(2), json!(0), 2, 0, 50).await;
    check_rolling_bounds_with(5, json!(0), json!(2), 0, 2, 50).await;
}

#[tokio::test]
async fn recreate_never_runs_old_and_new_pods_together() {
    let env = env_with_kubelet(|_| true);
    env.create(deployments(), deployment("web", 3, json!({"type": "Recreate"}))).await;
    wait_for("initial rollout", 10, || rollout_complete(&env, "web"), dump(&env)).await;
    let observer = Observer::start(&env.fake, "web").await;
    set_version(&env, "web", "v2", "second").await;
    wait_for(
        "rollout to v2",
        10,
        || rollout_complete(&env, "web") && env.pods().iter().all(|p| label(p, "version") == "v2") && env.pods().len() == 3,
        dump(&env),
    )
    .await;
    let snaps = observer.snapshots();
    for (i, s) in snaps.iter().enumerate() {
        assert!(
            s.by_version.get("v1").copied().unwrap_or(0) == 0 || s.by_version.get("v2").copied().unwrap_or(0) == 0,
            "step {i}: old and new together: {s:?}"
        );
    }
    assert!(snaps.iter().any(|s| s.total == 0), "all old pods went before new ones came");
    let rss = owned_rss(&env, "web");
    assert_eq!(rss.iter().map(spec_of).collect::<Vec<_>>(), vec![0, 3]);
}

#[tokio::test]
async fn rollback_reuses_the_old_replica_set_with_a_new_revision() {
    let env = env_with_kubelet(|_| true);
    env.create(deployments(), deployment("web", 2, rolling(json!(1), json!(0)))).await;
    wait_for("v1", 10, || rollout_complete(&env, "web"), dump(&env)).await;
    set_version(&env, "web", "v2", "second").await;
    wait_for("v2", 10, || rollout_complete(&env, "web") && env.pods().iter().all(|p| label(p, "version") == "v2"), dump(&env)).await;
    let v1 = rs_for_version(&env, "web", "v1").expect("v1 replica set");
    assert_eq!(dep::annotation(&v1, dep::REVISION), Some("1"));

    // What `kubectl rollout undo` does: the deployment gets the old ReplicaSet's template
    // without the pod-template-hash label, and its annotations (change-cause).
    let mut t = v1["spec"]["template"].clone();
    t["metadata"]["labels"].as_object_mut().expect("labels").remove(POD_TEMPLATE_HASH);
    env.patch(
        deployments(),
        "web",
        json!({"metadata": {"annotations": {"kubernetes.io/change-cause": dep::annotation(&v1, dep::CHANGE_CAUSE)}}, "spec": {"template": t}}),
    )
    .await;
    wait_for("back on v1", 10, || rollout_complete(&env, "web") && env.pods().iter().all(|p| label(p, "version") == "v1") && env.pods().len() == 2, dump(&env))
        .await;

    let rss = owned_rss(&env, "web");
    assert_eq!(rss.len(), 2, "no new ReplicaSet: the old one is reused");
    let back = rs_for_version(&env, "web", "v1").expect("v1");
    assert_eq!(util::uid(&back), util::uid(&v1));
    assert_eq!(dep::annotation(&back, dep::REVISION), Some("3"));
    assert_eq!(dep::annotation(&back, dep::REVISION_HISTORY), Some("1"));
    assert_eq!(dep::annotation(&back, dep::CHANGE_CAUSE), Some("first"));
    assert_eq!(spec_of(&back), 2);
    assert_eq!(spec_of(&rs_for_version(&env, "web", "v2").expect("v2")), 0);
    let d = env.get(deployments(), "web").expect("deployment");
    assert_eq!(dep::annotation(&d, dep::REVISION), Some("3"));
}

#[tokio::test]
async fn pause_stops_the_rollout_and_resume_continues() {
    let env = env_with_kubelet(|_| true);
    env.create(deployments(), deployment("web", 2, rolling(json!(1), json!(0)))).await;
    wait_for("v1", 10, || rollout_complete(&env, "web"), dump(&env)).await;

    env.patch(deployments(), "web", json!({"spec": {"paused": true}})).await;
    wait_for(
        "paused condition",
        10,
        || condition(&env, "web", "Progressing").is_some_and(|c| c["reason"] == "DeploymentPaused" && c["status"] == "Unknown"),
        dump(&env),
    )
    .await;
    set_version(&env, "web", "v2", "second").await;
    // Scaling still applies while paused, to the current ReplicaSet.
    env.patch(deployments(), "web", json!({"spec": {"replicas": 3}})).await;
    wait_for("scaled while paused", 10, || env.pods().iter().filter(|p| util::is_pod_ready(p)).count() == 3, dump(&env)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(owned_rss(&env, "web").len(), 1, "no rollout while paused");
    assert!(env.pods().iter().all(|p| label(p, "version") == "v1"));
    let d = env.get(deployments(), "web").expect("deployment");
    assert_eq!(d["status"]["observedGeneration"], d["metadata"]["generation"], "the paused spec is observed");
    assert_eq!(d["status"]["updatedReplicas"].as_i64().unwrap_or(0), 0);

    env.patch(deployments(), "web", json!({"spec": {"paused": false}})).await;
    wait_for(
        "resumed rollout",
        10,
        || rollout_complete(&env, "web") && env.pods().iter().all(|p| label(p, "version") == "v2") && env.pods().len() == 3,
        dump(&env),
    )
    .await;
    wait_for("complete condition", 10, || condition(&env, "web", "Progressing").is_some_and(|c| c["reason"] == "NewReplicaSetAvailable"), dump(&env)).await;
}

#[tokio::test]
async fn revision_history_limit_prunes_old_replica_sets() {
    let env = env_with_kubelet(|_| true);
    let mut d = deployment("web", 1, rolling(json!(1), json!(0)));
    d["spec"]["revisionHistoryLimit"] = json!(1);
    env.create(deployments(), d).await;
    wait_for("v1", 10, || rollout_complete(&env, "web"), dump(&env)).await;
    for v in ["v2", "v3", "v4"] {
        set_version(&env, "web", v, v).await;
        wait_for(v, 10, || rollout_complete(&env, "web") && env.pods().iter().all(|p| label(p, "version") == v), dump(&env)).await;
    }
    wait_for("pruned to one old ReplicaSet", 10, || owned_rss(&env, "web").len() == 2, dump(&env)).await;
    let rss = owned_rss(&env, "web");
    let versions: Vec<&str> = rss.iter().map(|rs| rs.pointer("/spec/template/metadata/labels/version").and_then(|v| v.as_str()).unwrap_or("")).collect();
    assert_eq!(versions, vec!["v3", "v4"], "the newest old revision is kept");
    assert_eq!(rss.iter().map(|rs| dep::annotation(rs, dep::REVISION).unwrap_or("")).collect::<Vec<_>>(), vec!["3", "4"]);
    assert_eq!(env.rss().len(), 2);
}

#[tokio::test]
async fn proportional_scaling_mid_rollout() {
    // v2 pods never become ready, so the rollout stalls half way; then the deployment grows.
    let env = env_with_kubelet(|p| !is_bad(p));
    env.create(deployments(), deployment("web", 10, rolling(json!(3), json!(2)))).await;
    wait_for("v1", 10, || rollout_complete(&env, "web"), dump(&env)).await;
    env.patch(deployments(), "web", json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "img:bad"}]}}}})).await;
    let sizes = |env: &Env| owned_rss(env, "web").iter().map(spec_of).collect::<Vec<_>>();
    wait_for("stalled at 8 old / 5 new", 10, || sizes(&env) == vec![8, 5] && env.pods().len() == 13, dump(&env)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sizes(&env), vec![8, 5], "the rollout stays stalled");

    env.patch(deployments(), "web", json!({"spec": {"replicas": 15}})).await;
    wait_for("old 11 / new 7", 10, || sizes(&env) == vec![11, 7] && env.pods().len() == 18, dump(&env)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sizes(&env), vec![11, 7], "stays proportional");
    for rs in owned_rss(&env, "web") {
        assert_eq!((dep::annotation(&rs, dep::DESIRED_REPLICAS), dep::annotation(&rs, dep::MAX_REPLICAS)), (Some("15"), Some("18")));
    }
}

#[tokio::test]
async fn progress_deadline_exceeded_when_pods_never_become_ready() {
    let env = env_with_kubelet(|p| !is_bad(p));
    let mut d = deployment("web", 2, rolling(json!(1), json!(0)));
    d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("img:bad");
    d["spec"]["progressDeadlineSeconds"] = json!(1);
    env.create(deployments(), d).await;
    wait_for("ProgressDeadlineExceeded", 10, || condition(&env, "web", "Progressing").is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded"), dump(&env))
        .await;
    let c = condition(&env, "web", "Progressing").expect("Progressing");
    assert_eq!(c["status"], "False");
    assert!(c["message"].as_str().unwrap_or("").contains("has timed out progressing"));
    let a = condition(&env, "web", "Available").expect("Available");
    assert_eq!((a["status"].as_str(), a["reason"].as_str()), (Some("False"), Some("MinimumReplicasUnavailable")));
    let d = env.get(deployments(), "web").expect("deployment");
    assert_eq!(d["status"]["unavailableReplicas"], 2);
}

#[tokio::test]
async fn deployment_adopts_a_matching_orphan_replica_set() {
    let env = env_with_kubelet(|_| true);
    // A ReplicaSet left behind (say, by `kubectl delete deployment --cascade=orphan`) with the
    // deployment's template.
    let mut t = template("web", "v1");
    t["metadata"]["labels"][POD_TEMPLATE_HASH] = json!("manual");
    env.create(
        rss(),
        json!({
            "metadata": {"name": "web-manual", "labels": {"app": "web", POD_TEMPLATE_HASH: "manual"}, "annotations": {dep::REVISION: "4"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web", POD_TEMPLATE_HASH: "manual"}}, "template": t},
        }),
    )
    .await;
    wait_for("orphan's pod", 10, || env.pods().iter().any(util::is_pod_ready), dump(&env)).await;
    env.create(deployments(), deployment("web", 3, rolling(json!(1), json!(1)))).await;
    wait_for("rollout", 10, || rollout_complete(&env, "web"), dump(&env)).await;
    let rss = owned_rss(&env, "web");
    assert_eq!(rss.len(), 1, "adopted and used as the new ReplicaSet: {rss:#?}");
    assert_eq!(util::name(&rss[0]), "web-manual");
    assert_eq!(spec_of(&rss[0]), 3);
    assert_eq!(dep::annotation(&rss[0], dep::REVISION), Some("4"));
    assert_eq!(env.rss().len(), 1);
}

#[tokio::test]
async fn rollout_restart_rolls_every_pod() {
    // `kubectl rollout restart` sets a template annotation: a new template, a new ReplicaSet.
    let env = env_with_kubelet(|_| true);
    env.create(deployments(), deployment("web", 2, rolling(json!("25%"), json!("25%")))).await;
    wait_for("v1", 10, || rollout_complete(&env, "web"), dump(&env)).await;
    let before: Vec<String> = env.pods().iter().map(|p| util::uid(p).to_string()).collect();
    env.patch(
        deployments(),
        "web",
        json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}}}}}),
    )
    .await;
    wait_for(
        "restarted",
        10,
        || rollout_complete(&env, "web") && env.pods().len() == 2 && env.pods().iter().all(|p| !before.contains(&util::uid(p).to_string())),
        dump(&env),
    )
    .await;
    assert_eq!(owned_rss(&env, "web").len(), 2);
}

#[tokio::test]
async fn hash_collision_bumps_collision_count() {
    let env = env_with_kubelet(|_| true);
    // Someone else's ReplicaSet already has the name the deployment's would get.
    let hash = dep::template_hash(&template("web", "v1"), None);
    env.create(
        rss(),
        json!({
            "metadata": {"name": format!("web-{hash}"), "labels": {"app": "other"}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "other"}}, "template": template("other", "v1")},
        }),
    )
    .await;
    env.create(deployments(), deployment("web", 2, rolling(json!(1), json!(0)))).await;
    wait_for("rollout", 10, || rollout_complete(&env, "web"), dump(&env)).await;
    let d = env.get(deployments(), "web").expect("deployment");
    assert_eq!(d["status"]["collisionCount"], 1);
    let owned = owned_rss(&env, "web");
    assert_eq!(owned.len(), 1);
    assert_eq!(util::name(&owned[0]), format!("web-{}", dep::template_hash(&template("web", "v1"), Some(1))));
    let foreign = env.get(rss(), &format!("web-{hash}")).expect("foreign");
    assert_eq!(controller_uid(&foreign), None, "the foreign ReplicaSet is left alone");
    assert_eq!(foreign["spec"]["replicas"], 0);
}

#[tokio::test]
async fn min_ready_seconds_delays_availability_and_completion() {
    let env = env_with_kubelet(|_| true);
    let mut d = deployment("web", 2, rolling(json!(1), json!(0)));
    d["spec"]["minReadySeconds"] = json!(1);
    env.create(deployments(), d).await;
    let status = |env: &Env, f: &str| env.get(deployments(), "web").and_then(|d| d["status"][f].as_i64()).unwrap_or(0);
    wait_for("ready but not yet available", 10, || status(&env, "readyReplicas") == 2 && status(&env, "availableReplicas") < 2, dump(&env)).await;
    assert!(!rollout_complete(&env, "web"));
    wait_for("rollout", 10, || rollout_complete(&env, "web"), dump(&env)).await;
    assert_eq!(owned_rss(&env, "web")[0]["spec"]["minReadySeconds"], 1);
    // A change of minReadySeconds alone reaches the ReplicaSet without a new rollout.
    env.patch(deployments(), "web", json!({"spec": {"minReadySeconds": 0}})).await;
    wait_for("minReadySeconds propagated", 10, || owned_rss(&env, "web").first().is_some_and(|rs| rs["spec"]["minReadySeconds"] == 0), dump(&env)).await;
    assert_eq!(owned_rss(&env, "web").len(), 1);
}

#[tokio::test]
async fn odd_shapes_never_panic() {
    let env = Env::new();
    let odd_deployments = [
        json!({"metadata": {"name": "a", "namespace": NS}, "spec": "x"}),
        json!({"metadata": {"name": "b", "namespace": NS, "annotations": 5}, "spec": {"replicas": "three", "selector": {"matchLabels": {"app": "b"}}, "template": 5, "strategy": {"type": "Weird"}}}),
        json!({"metadata": {"name": "c", "namespace": NS}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "c"}}, "template": {"metadata": {"labels": "x"}, "spec": []}, "strategy": {"rollingUpdate": {"maxSurge": {"a": 1}, "maxUnavailable": "many"}}}, "status": "bad"}),
        json!({"metadata": {"name": "d", "namespace": NS}, "spec": {"replicas": 9_000_000_000_i64, "progressDeadlineSeconds": i64::MAX, "selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}}}}, "status": {"conditions": "x", "collisionCount": i64::MAX}}),
        json!({"metadata": {"name": "e", "namespace": NS}, "spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "Sideways"}]}}}),
    ];
    for d in odd_deployments {
        env.fake.set(deployments(), d);
    }
    env.fake.set(rss(), json!({"metadata": {"name": "c-1", "namespace": NS, "labels": {"app": "c"}, "annotations": {dep::REVISION: "99999999999999999999", dep::DESIRED_REPLICAS: []}}, "spec": {"selector": 7, "template": "t", "replicas": -4}, "status": {"conditions": "x", "replicas": "y"}}));
    env.fake.set(rss(), json!({"metadata": {"name": "d-1", "namespace": NS, "labels": {"app": "d"}, "annotations": {dep::REVISION: "9223372036854775807", dep::MAX_REPLICAS: "0"}}, "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}}}, "replicas": 3}}));
    env.fake
        .set(pods(), json!({"metadata": {"name": "p", "namespace": NS, "labels": {"app": "c"}, "ownerReferences": "y"}, "status": 3, "spec": {"nodeName": 4}}));

    let dc = controllers::deployment::DeploymentController::new(&env.ctx);
    let rc = controllers::replicaset::ReplicaSetController::new(&env.ctx);
    for inf in [env.ctx.informers.get(deployments()), env.ctx.informers.get(rss()), env.ctx.informers.get(pods())] {
        inf.synced().await;
    }
    // A few rounds, so later syncs see what earlier ones wrote.
    for _ in 0..3 {
        for k in ["a", "b", "c", "d", "e"] {
            let _ = dc.sync(&format!("{NS}/{k}")).await;
        }
        for k in ["c-1", "d-1"] {
            let _ = rc.sync(&format!("{NS}/{k}")).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
