//! The CronJob controller against the in-memory cluster, with a fake clock.

mod support_workloads;

use std::sync::Arc;
use std::time::Duration;

use controllers::client::res;
use controllers::cronjob::{self, SCHEDULED_TIMESTAMP_ANNOTATION, job_name};
use controllers::daemonset::common::FakeClock;
use controllers::testing::FakeCluster;
use jiff::Timestamp;
use serde_json::{Value, json};
use support_workloads::*;

fn cronjobs() -> controllers::client::Resource {
    res("batch", "cronjobs")
}

fn jobs() -> controllers::client::Resource {
    res("batch", "jobs")
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Stores a CronJob created at 10:00:00 (`set`, so the test chooses its creation time).
fn put_cronjob(fake: &FakeCluster, spec: Value) {
    let mut cj = json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "tick", "namespace": "default", "uid": "cj-uid", "generation": 1, "creationTimestamp": "2030-01-01T10:00:00Z"},
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {"metadata": {"labels": {"app": "tick"}}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}
        }
    });
    controllers::testing::merge(&mut cj, &json!({"spec": spec}));
    fake.set(cronjobs(), cj);
}

fn start(fake: &FakeCluster, clock: &FakeClock) -> Running {
    Running(vec![tokio::spawn(cronjob::run_with_clock(ctx(fake), Arc::new(clock.clone())))])
}

fn job_names(fake: &FakeCluster) -> Vec<String> {
    let mut v: Vec<String> = fake.objects(jobs()).iter().map(|j| name(j).to_string()).collect();
    v.sort();
    v
}

fn run_name(at: &str) -> String {
    job_name("tick", ts(at))
}

fn cj_status(fake: &FakeCluster) -> Value {
    fake.get(cronjobs(), "default/tick").map(|c| c["status"].clone()).unwrap_or(Value::Null)
}

fn active_names(fake: &FakeCluster) -> Vec<String> {
    cj_status(fake)["active"].as_array().map(|a| a.iter().filter_map(|r| r["name"].as_str().map(String::from)).collect()).unwrap_or_default()
}

/// Marks a run finished, as the Job controller would.
fn finish(fake: &FakeCluster, job: &str, how: &str, at: &str) {
    let mut j = fake.get(jobs(), &format!("default/{job}")).unwrap();
    j["status"] = json!({"startTime": at, "conditions": [{"type": how, "status": "True", "lastTransitionTime": at}]});
    if how == "Complete" {
        j["status"]["completionTime"] = json!(at);
    }
    fake.set(jobs(), j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_creates_job_at_scheduled_time() {
    let fake = FakeCluster::new();
    put_cronjob(&fake, json!({}));
    let clock = FakeClock::new(ts("2030-01-01T10:03:00Z"));
    let _c = start(&fake, &clock);
    stays("nothing before 10:05", Duration::from_millis(300), || job_names(&fake).is_empty()).await;

    clock.set(ts("2030-01-01T10:05:00Z"));
    let first = run_name("2030-01-01T10:05:00Z");
    eventually("the 10:05 run", || job_names(&fake) == [first.clone()]).await;
    let j = fake.get(jobs(), &format!("default/{first}")).unwrap();
    assert_eq!(j["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION], "2030-01-01T10:05:00Z");
    assert_eq!(j["metadata"]["labels"]["app"], "tick");
    assert_eq!(j["metadata"]["ownerReferences"][0]["uid"], "cj-uid");
    assert_eq!(j["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(j["spec"]["template"]["spec"]["containers"][0]["image"], "busybox");
    eventually("status", || cj_status(&fake)["lastScheduleTime"] == "2030-01-01T10:05:00Z" && active_names(&fake) == [first.clone()]).await;

    // Wakes up by itself at the next time (a timer, not a poll: only the clock moves).
    clock.set(ts("2030-01-01T10:07:00Z"));
    stays("nothing at 10:07", Duration::from_millis(200), || job_names(&fake).len() == 1).await;
    clock.set(ts("2030-01-01T10:10:00Z"));
    let second = run_name("2030-01-01T10:10:00Z");
    eventually("the 10:10 run (Allow: concurrently)", || job_names(&fake).len() == 2 && job_names(&fake).contains(&second)).await;
    eventually("both active", || active_names(&fake).len() == 2).await;

    finish(&fake, &first, "Complete", "2030-01-01T10:11:00Z");
    eventually("finished run leaves active, lastSuccessfulTime set", || {
        active_names(&fake) == [second.clone()] && cj_status(&fake)["lastSuccessfulTime"] == "2030-01-01T10:11:00Z"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_forbid_skips_while_active() {
    let fake = FakeCluster::new();
    put_cronjob(&fake, json!({"concurrencyPolicy": "Forbid"}));
    let clock = FakeClock::new(ts("2030-01-01T10:05:00Z"));
    let _c = start(&fake, &clock);
    let first = run_name("2030-01-01T10:05:00Z");
    eventually("the 10:05 run", || job_names(&fake) == [first.clone()] && active_names(&fake) == [first.clone()]).await;

    clock.set(ts("2030-01-01T10:10:00Z"));
    stays("10:10 skipped while 10:05 runs", Duration::from_millis(300), || job_names(&fake) == [first.clone()]).await;
    assert_eq!(cj_status(&fake)["lastScheduleTime"], "2030-01-01T10:05:00Z");

    // As in Kubernetes, the skipped time still runs once the previous run ends (no deadline).
    finish(&fake, &first, "Complete", "2030-01-01T10:11:00Z");
    clock.set(ts("2030-01-01T10:11:00Z"));
    let late = run_name("2030-01-01T10:10:00Z");
    eventually("the 10:10 run starts late", || job_names(&fake).contains(&late)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_forbid_with_deadline_drops_the_missed_run() {
    let fake = FakeCluster::new();
    put_cronjob(&fake, json!({"concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 30}));
    let clock = FakeClock::new(ts("2030-01-01T10:05:10Z"));
    let _c = start(&fake, &clock);
    let first = run_name("2030-01-01T10:05:00Z");
    eventually("the 10:05 run (within its deadline)", || job_names(&fake) == [first.clone()]).await;
    clock.set(ts("2030-01-01T10:10:00Z"));
    stays("10:10 skipped", Duration::from_millis(200), || job_names(&fake).len() == 1).await;
    clock.set(ts("2030-01-01T10:11:00Z"));
    finish(&fake, &first, "Complete", "2030-01-01T10:11:00Z");
    stays("too late for 10:10", Duration::from_millis(300), || job_names(&fake).len() == 1).await;
    clock.set(ts("2030-01-01T10:15:00Z"));
    eventually("the 10:15 run", || job_names(&fake).contains(&run_name("2030-01-01T10:15:00Z"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_replace_replaces_the_active_job() {
    let fake = FakeCluster::new();
    put_cronjob(&fake, json!({"concurrencyPolicy": "Replace"}));
    let clock = FakeClock::new(ts("2030-01-01T10:05:00Z"));
    let _c = start(&fake, &clock);
    let first = run_name("2030-01-01T10:05:00Z");
    eventually("the 10:05 run", || job_names(&fake) == [first.clone()] && active_names(&fake) == [first.clone()]).await;
    clock.set(ts("2030-01-01T10:10:00Z"));
    let second = run_name("2030-01-01T10:10:00Z");
    eventually("10:05 replaced by 10:10", || job_names(&fake) == [second.clone()] && active_names(&fake) == [second.clone()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_history_limits_prune_the_oldest() {
    let fake = FakeCluster::new();
    put_cronjob(&fake, json!({"successfulJobsHistoryLimit": 2, "failedJobsHistoryLimit": 1}));
    let clock = FakeClock::new(ts("2030-01-01T10:00:00Z"));
    let _c = start(&fake, &clock);
    let times =
        ["2030-01-01T10:05:00Z", "2030-01-01T10:10:00Z", "2030-01-01T10:15:00Z", "2030-01-01T10:20:00Z", "2030-01-01T10:25:00Z", "2030-01-01T10:30:00Z"];
    // Four successes, then two failures.
    for (i, t) in times.iter().enumerate() {
        clock.set(ts(t));
        let run = run_name(t);
        eventually(&format!("run at {t}"), || fake.get(jobs(), &format!("default/{run}")).is_some()).await;
        finish(&fake, &run, if i < 4 { "Complete" } else { "Failed" }, t);
    }
    let want: Vec<String> = [times[2], times[3], times[5]].iter().map(|t| run_name(t)).collect();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    eventually("two newest successes and the newest failure kept", || job_names(&fake) == want_sorted).await;
    eventually("no active runs", || active_names(&fake).is_empty()).await;
    assert_eq!(cj_status(&fake)["lastSuccessfulTime"], times[3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_suspend_and_time_zone() {
    let fake = FakeCluster::new();
    // 09:00 in Tokyo is 00:00 UTC.
    put_cronjob(&fake, json!({"schedule": "0 9 * * *", "timeZone": "Asia/Tokyo", "suspend": true}));
    let clock = FakeClock::new(ts("2030-01-02T00:00:00Z"));
    let _c = start(&fake, &clock);
    stays("suspended", Duration::from_millis(300), || job_names(&fake).is_empty()).await;
    let mut cj = fake.get(cronjobs(), "default/tick").unwrap();
    cj["spec"]["suspend"] = json!(false);
    fake.client().update(cronjobs(), cj).await.unwrap();
    let run = run_name("2030-01-02T00:00:00Z");
    eventually("the missed 09:00 JST run starts on resume", || job_names(&fake) == [run.clone()]).await;
    let j = fake.get(jobs(), &format!("default/{run}")).unwrap();
    assert_eq!(j["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION], "2030-01-02T09:00:00+09:00");
}
