//! The Job controller against the in-memory cluster (a fake clock drives deadlines and TTLs).

mod support_workloads;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use controllers::client::res;
use controllers::daemonset::common::FakeClock;
use controllers::job::{self, TRACKING_FINALIZER, index_of};
use controllers::testing::FakeCluster;
use serde_json::{Value, json};
use support_workloads::*;

fn jobs() -> controllers::client::Resource {
    res("batch", "jobs")
}

/// Creates a Job as the API server would store it: with the generated selector and labels.
async fn create_job(fake: &FakeCluster, name: &str, spec: Value) -> Value {
    let mut j = json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"template": {"metadata": {"labels": {"app": name}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}
    });
    controllers::testing::merge(&mut j, &json!({"spec": spec}));
    let created = fake.client().create(jobs(), Some("default"), j).await.unwrap();
    let uid = created["metadata"]["uid"].as_str().unwrap().to_string();
    let mut j = created;
    j["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    j["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/controller-uid"] = json!(uid);
    j["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"] = json!(name);
    fake.client().update(jobs(), j).await.unwrap()
}

fn start(fake: &FakeCluster, clock: &FakeClock) -> Running {
    Running(vec![tokio::spawn(job::run_with_clock(ctx(fake), Arc::new(clock.clone())))])
}

fn get(fake: &FakeCluster, name: &str) -> Value {
    fake.get(jobs(), &format!("default/{name}")).unwrap_or(Value::Null)
}

fn condition(job: &Value, ty: &str) -> Option<Value> {
    job.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == ty && c["status"] == "True").cloned()
}

fn active_pods(fake: &FakeCluster, uid: &str) -> Vec<Value> {
    owned_pods(fake, uid).into_iter().filter(|p| !is_deleting(p) && !matches!(phase(p), "Succeeded" | "Failed")).collect()
}

fn uid_of(j: &Value) -> String {
    j["metadata"]["uid"].as_str().unwrap().to_string()
}

fn clock() -> FakeClock {
    FakeClock::new(jiff::Timestamp::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_runs_to_completion_respecting_parallelism() {
    let fake = FakeCluster::new();
    let j = create_job(&fake, "work", json!({"completions": 5, "parallelism": 2})).await;
    let uid = uid_of(&j);
    let c = clock();
    let _c = start(&fake, &c);

    let mut finished: BTreeSet<String> = BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while condition(&get(&fake, "work"), "Complete").is_none() {
        let active = active_pods(&fake, &uid);
        let succeeded = owned_pods(&fake, &uid).iter().filter(|p| phase(p) == "Succeeded").count();
        assert!(active.len() <= 2, "{} pods active with parallelism 2", active.len());
        assert!(active.len() + finished.len() <= 5, "more pods than the completions left: {} active, {} done", active.len(), finished.len());
        assert!(succeeded <= 5);
        // The kubelet finishes one pod at a time.
        if let Some(p) = active.first() {
            assert_eq!(p["metadata"]["finalizers"], json!([TRACKING_FINALIZER]));
            assert_eq!(p["metadata"]["labels"]["job-name"], "work");
            assert_eq!(p["metadata"]["labels"]["batch.kubernetes.io/job-name"], "work");
            assert_eq!(p["metadata"]["labels"]["controller-uid"], json!(uid));
            set_pod(&fake, &key(p), "Succeeded", false);
            finished.insert(name(p).to_string());
        }
        assert!(std::time::Instant::now() < deadline, "job did not complete: {:?}", get(&fake, "work")["status"]);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let j = get(&fake, "work");
    assert_eq!(finished.len(), 5);
    assert_eq!(j["status"]["succeeded"], 5);
    assert_eq!(j["status"]["failed"], 0);
    assert_eq!(j["status"]["active"], 0);
    assert!(j["status"]["completionTime"].is_string());
    assert!(j["status"]["startTime"].is_string());
    assert!(condition(&j, "SuccessCriteriaMet").is_some());
    assert_eq!(j["status"]["uncountedTerminatedPods"], json!({}));
    eventually("finalizers released", || owned_pods(&fake, &uid).iter().all(|p| p["metadata"]["finalizers"] == json!([]))).await;

    // Counts survive pod deletion (they are in the status, not recounted from pods).
    for p in owned_pods(&fake, &uid) {
        fake.client().delete(pods(), Some("default"), name(&p), Default::default()).await.unwrap();
    }
    stays("counts kept", Duration::from_millis(200), || get(&fake, "work")["status"]["succeeded"] == 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_indexed_completes_every_index() {
    let fake = FakeCluster::new();
    let j = create_job(&fake, "idx", json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"})).await;
    let uid = uid_of(&j);
    let c = clock();
    let _c = start(&fake, &c);
    eventually("one pod per index", || active_pods(&fake, &uid).len() == 3).await;
    let ix: BTreeSet<i64> = active_pods(&fake, &uid).iter().filter_map(index_of).collect();
    assert_eq!(ix, BTreeSet::from([0, 1, 2]));
    for p in active_pods(&fake, &uid) {
        let i = index_of(&p).unwrap();
        assert_eq!(p["spec"]["hostname"], format!("idx-{i}"));
        assert_eq!(p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"], i.to_string());
    }

    let pod1 = active_pods(&fake, &uid).into_iter().find(|p| index_of(p) == Some(1)).unwrap();
    set_pod(&fake, &key(&pod1), "Failed", false);
    eventually("index 1 replaced", || active_pods(&fake, &uid).iter().any(|p| index_of(p) == Some(1) && name(p) != name(&pod1))).await;
    eventually("failure counted", || get(&fake, "idx")["status"]["failed"] == 1).await;

    let pod0 = active_pods(&fake, &uid).into_iter().find(|p| index_of(p) == Some(0)).unwrap();
    set_pod(&fake, &key(&pod0), "Succeeded", false);
    eventually("index 0 completed", || get(&fake, "idx")["status"]["completedIndexes"] == "0").await;
    stays("a completed index is not rerun", Duration::from_millis(200), || !active_pods(&fake, &uid).iter().any(|p| index_of(p) == Some(0))).await;
    for p in active_pods(&fake, &uid) {
        set_pod(&fake, &key(&p), "Succeeded", false);
    }
    eventually("complete", || condition(&get(&fake, "idx"), "Complete").is_some()).await;
    let j = get(&fake, "idx");
    assert_eq!(j["status"]["completedIndexes"], "0-2");
    assert_eq!(j["status"]["succeeded"], 3);
    assert_eq!(j["status"]["failed"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_backoff_limit_fails_the_job() {
    let fake = FakeCluster::new();
    let j = create_job(&fake, "flaky", json!({"completions": 4, "parallelism": 2, "backoffLimit": 1})).await;
    let uid = uid_of(&j);
    let c = clock();
    let _c = start(&fake, &c);
    eventually("two pods", || active_pods(&fake, &uid).len() == 2).await;
    let first = active_pods(&fake, &uid)[0].clone();
    set_pod(&fake, &key(&first), "Failed", false);
    eventually("replacement after the first failure", || active_pods(&fake, &uid).len() == 2 && get(&fake, "flaky")["status"]["failed"] == 1).await;
    assert!(condition(&get(&fake, "flaky"), "Failed").is_none());
    let second = active_pods(&fake, &uid)[0].clone();
    set_pod(&fake, &key(&second), "Failed", false);
    eventually("failed", || condition(&get(&fake, "flaky"), "Failed").is_some()).await;
    let j = get(&fake, "flaky");
    assert_eq!(condition(&j, "Failed").unwrap()["reason"], "BackoffLimitExceeded");
    assert_eq!(condition(&j, "FailureTarget").unwrap()["reason"], "BackoffLimitExceeded");
    assert!(condition(&j, "Complete").is_none());
    assert!(j["status"].get("completionTime").is_none());
    eventually("no pod left running", || active_pods(&fake, &uid).is_empty()).await;
    // The two failures plus the pod stopped because the Job failed.
    eventually("counts", || get(&fake, "flaky")["status"]["failed"] == 3 && get(&fake, "flaky")["status"]["active"] == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_active_deadline_fails_the_job() {
    let fake = FakeCluster::new();
    let j = create_job(&fake, "slow", json!({"parallelism": 2, "completions": 2, "activeDeadlineSeconds": 30})).await;
    let uid = uid_of(&j);
    let c = clock();
    let _c = start(&fake, &c);
    eventually("running", || active_pods(&fake, &uid).len() == 2).await;
    for p in active_pods(&fake, &uid) {
        set_pod(&fake, &key(&p), "Running", true);
    }
    eventually("ready counted", || get(&fake, "slow")["status"]["ready"] == 2).await;
    c.advance(Duration::from_secs(20));
    stays("within the deadline", Duration::from_millis(200), || condition(&get(&fake, "slow"), "Failed").is_none()).await;
    c.advance(Duration::from_secs(11));
    eventually("deadline exceeded", || condition(&get(&fake, "slow"), "Failed").is_some()).await;
    assert_eq!(condition(&get(&fake, "slow"), "Failed").unwrap()["reason"], "DeadlineExceeded");
    eventually("pods removed", || owned_pods(&fake, &uid).is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_ttl_deletes_the_finished_job() {
    let fake = FakeCluster::new();
    let j = create_job(&fake, "short", json!({"ttlSecondsAfterFinished": 60})).await;
    let uid = uid_of(&j);
    let c = clock();
    let _c = start(&fake, &c);
    eventually("a pod", || active_pods(&fake, &uid).len() == 1).await;
    let p = active_pods(&fake, &uid)[0].clone();
    set_pod(&fake, &key(&p), "Succeeded", false);
    eventually("complete", || condition(&get(&fake, "short"), "Complete").is_some()).await;
    c.advance(Duration::from_secs(59));
    stays("kept until the TTL", Duration::from_millis(200), || fake.get(jobs(), "default/short").is_some()).await;
    c.advance(Duration::from_secs(2));
    eventually("deleted after the TTL", || fake.get(jobs(), "default/short").is_none()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_suspend_and_resume() {
    let fake = FakeCluster::new();
    let j = create_job(&fake, "pausable", json!({"completions": 4, "parallelism": 2})).await;
    let uid = uid_of(&j);
    let c = clock();
    let _c = start(&fake, &c);
    eventually("two pods", || active_pods(&fake, &uid).len() == 2).await;
    let started = get(&fake, "pausable")["status"]["startTime"].clone();
    assert!(started.is_string());

    let mut j = get(&fake, "pausable");
    j["spec"]["suspend"] = json!(true);
    fake.client().update(jobs(), j).await.unwrap();
    eventually("suspended, pods gone", || condition(&get(&fake, "pausable"), "Suspended").is_some() && owned_pods(&fake, &uid).is_empty()).await;
    let j = get(&fake, "pausable");
    assert_eq!(condition(&j, "Suspended").unwrap()["reason"], "JobSuspended");
    assert_eq!(j["status"]["failed"], 0, "pods removed by suspension are not failures");
    assert_eq!(j["status"]["active"], 0);
    stays("nothing runs while suspended", Duration::from_millis(200), || owned_pods(&fake, &uid).is_empty()).await;

    c.advance(Duration::from_secs(5));
    let mut j = get(&fake, "pausable");
    j["spec"]["suspend"] = json!(false);
    fake.client().update(jobs(), j).await.unwrap();
    eventually("resumed", || active_pods(&fake, &uid).len() == 2).await;
    let j = get(&fake, "pausable");
    let suspended = j["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Suspended").cloned().unwrap();
    assert_eq!(suspended["status"], "False");
    assert_eq!(suspended["reason"], "JobResumed");
    assert_ne!(j["status"]["startTime"], started, "resuming restarts the clock of activeDeadlineSeconds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_without_selector_and_deleted_pods() {
    // As FakeCluster stores it, without API defaulting: the controller selects by uid.
    let fake = FakeCluster::new();
    let j = fake
        .client()
        .create(
            jobs(),
            Some("default"),
            json!({"metadata": {"name": "raw", "namespace": "default"}, "spec": {"completions": 2, "template": {"spec": {"containers": []}}}}),
        )
        .await
        .unwrap();
    let uid = uid_of(&j);
    let c = clock();
    let _c = start(&fake, &c);
    eventually("a pod", || active_pods(&fake, &uid).len() == 1).await;
    let p = active_pods(&fake, &uid)[0].clone();
    assert_eq!(p["metadata"]["labels"]["batch.kubernetes.io/controller-uid"], json!(uid));
    // A pod deleted before finishing: held by the finalizer until counted as failed, then
    // replaced.
    fake.client().delete(pods(), Some("default"), name(&p), Default::default()).await.unwrap();
    eventually("counted as failed and replaced", || {
        get(&fake, "raw")["status"]["failed"] == 1 && fake.get(pods(), &key(&p)).is_none() && active_pods(&fake, &uid).len() == 1
    })
    .await;
    // Deleting the Job releases the finalizers of its pods (for the garbage collector).
    let left = active_pods(&fake, &uid)[0].clone();
    fake.client().delete(jobs(), Some("default"), "raw", Default::default()).await.unwrap();
    eventually("stray pod released", || fake.get(pods(), &key(&left)).is_some_and(|p| p["metadata"]["finalizers"] == json!([]))).await;
}
