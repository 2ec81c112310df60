//! The CronJob controller (batch/v1): creates Jobs on a schedule.
//!
//! Each run is a Job named `<cronjob>-<scheduled time in minutes since the epoch>` (the name
//! doubles as a lock: a run is never created twice), owned by the CronJob and annotated with
//! `batch.kubernetes.io/cronjob-scheduled-timestamp`. A sync looks for the most recent
//! scheduled time after `lastScheduleTime` (or the creation time), skips it when it is older
//! than `startingDeadlineSeconds`, warns when more than 100 runs were missed, and applies
//! `concurrencyPolicy` (`Allow`, `Forbid`: skip while a run is active — it is retried until
//! the deadline, as in Kubernetes —, `Replace`: delete the active runs first). Finished runs
//! beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit` are deleted, oldest first.
//! The controller wakes at the next scheduled time; it does not poll.
//!
//! Schedules are evaluated in `spec.timeZone` (any IANA name the system's tz database knows),
//! else in the zone of a `CRON_TZ=` prefix, else in UTC (Kubernetes uses the
//! kube-controller-manager's local zone, which in practice is UTC).

pub mod schedule;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::Ctx;
use crate::client::res;
use crate::daemonset::common::*;
use crate::events::Recorder;
use crate::informer::{Informer, key_of};
use crate::queue::WorkQueue;
use crate::util;

pub use schedule::{Parsed, Schedule, parse};

const API_VERSION: &str = "batch/v1";
const KIND: &str = "CronJob";
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

pub async fn run(ctx: Arc<Ctx>) {
    run_with_clock(ctx, Arc::new(SystemClock)).await
}

/// [`run`] with an injected clock (tests): schedules fire when it reaches them.
pub async fn run_with_clock(ctx: Arc<Ctx>, clock: Arc<dyn Clock>) {
    let cronjobs = ctx.informers.get(res("batch", "cronjobs"));
    let jobs = ctx.informers.get(res("batch", "jobs"));
    let queue = WorkQueue::new();
    let mut set = JoinSet::new();
    let lag = |q: &WorkQueue, s: &Arc<Informer>| {
        let (q, s) = (q.clone(), s.clone());
        move || enqueue_all(&q, &s)
    };
    {
        let q = queue.clone();
        forward_changes(&mut set, &cronjobs, move |c| q.add(c.key.clone()), lag(&queue, &cronjobs));
    }
    {
        let q = queue.clone();
        forward_changes(
            &mut set,
            &jobs,
            move |c| {
                // Runs are matched by owner only: a CronJob adopts nothing.
                for o in [c.old.as_deref(), c.new.as_deref()].into_iter().flatten() {
                    if let Some(k) = controller_key(o, KIND) {
                        q.add(k);
                    }
                }
            },
            lag(&queue, &cronjobs),
        );
    }
    cronjobs.synced().await;
    jobs.synced().await;
    enqueue_all(&queue, &cronjobs);
    let ctl = Arc::new(Controller {
        recorder: ctx.recorder("cronjob-controller"),
        timers: Timers::new(clock.clone(), queue.clone()),
        ctx,
        clock,
        expectations: Expectations::default(),
        written: Mutex::default(),
        cronjobs,
        jobs,
    });
    spawn_workers(
        &mut set,
        2,
        queue,
        "cronjob",
        Arc::new(move |key| {
            let ctl = ctl.clone();
            Box::pin(async move { ctl.sync(&key).await })
        }),
    );
    join_forever(set).await
}

struct Controller {
    ctx: Arc<Ctx>,
    clock: Arc<dyn Clock>,
    timers: Timers,
    expectations: Expectations,
    /// resourceVersion of our last status write per CronJob (an older cache must not be
    /// acted on: it would not show the run just recorded).
    written: Mutex<HashMap<String, u64>>,
    recorder: Recorder,
    cronjobs: Arc<Informer>,
    jobs: Arc<Informer>,
}

fn rv_num(o: &Value) -> Option<u64> {
    str_at(o, "/metadata/resourceVersion").and_then(|r| r.parse().ok())
}

impl Controller {
    async fn sync(&self, key: &str) -> SyncResult {
        let Some(cj) = self.cronjobs.get(key) else {
            self.expectations.forget(key);
            self.written.lock().expect("written lock").remove(key);
            return Ok(());
        };
        {
            let mut w = self.written.lock().expect("written lock");
            if let Some(&mine) = w.get(key) {
                match rv_num(&cj) {
                    Some(seen) if seen < mine => return Ok(()),
                    _ => {
                        w.remove(key);
                    }
                }
            }
        }
        if !self.expectations.satisfied(key, &self.jobs) {
            return Ok(());
        }
        let client = self.ctx.client.as_ref();
        let all = self.jobs.list_namespace(util::namespace(&cj));
        let owned: Vec<&Value> = all.iter().map(|j| j.as_ref()).filter(|j| controller_uid(j) == Some(util::uid(&cj))).collect();
        let now = self.clock.now();
        let mut p = plan(&cj, &owned, now);

        let ns = util::namespace(&cj);
        for (name, uid) in &p.delete {
            delete_exact(client, res("batch", "jobs"), ns, name, uid, Some("Background")).await?;
            self.recorder.event(&cj, "Normal", "SuccessfulDelete", &format!("Deleted job {name}")).await;
        }
        let mut create_err = None;
        if let Some((job, scheduled)) = p.create.take() {
            match client.create(res("batch", "jobs"), ns_opt(&cj), job).await {
                Ok(created) => {
                    self.expectations.expect_create(key, key_of(&created));
                    let mut active: Vec<Value> = p.status.get("active").and_then(|a| a.as_array()).cloned().unwrap_or_default();
                    active.push(job_ref(&created));
                    p.status["active"] = json!(active);
                    p.status["lastScheduleTime"] = json!(fmt_time(scheduled));
                    self.recorder.event(&cj, "Normal", "SuccessfulCreate", &format!("Created job {}", util::name(&created))).await;
                }
                // Created by an earlier sync whose status write was lost; the job cache will
                // bring it into `active`.
                Err(e) if is_already_exists(&e) => p.status["lastScheduleTime"] = json!(fmt_time(scheduled)),
                Err(e) => {
                    self.recorder.event(&cj, "Warning", "FailedCreate", &format!("Error creating job: {e}")).await;
                    create_err = Some(SyncError::from(e));
                }
            }
        }
        if let Some(written) = write_status(client, res("batch", "cronjobs"), &cj, p.status.clone()).await?
            && let Some(rv) = rv_num(&written)
        {
            self.written.lock().expect("written lock").insert(key.to_string(), rv);
        }
        for (ty, reason, msg) in &p.events {
            self.recorder.event(&cj, ty, reason, msg).await;
        }
        if let Some(t) = p.requeue_at {
            self.timers.at(key, t);
        }
        match create_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// How a run ended, if it did.
pub fn job_finished(job: &Value) -> Option<&'static str> {
    if condition_true(job, "Complete") {
        Some("Complete")
    } else if condition_true(job, "Failed") {
        Some("Failed")
    } else {
        None
    }
}

pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

fn job_ref(job: &Value) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": "Job",
        "name": util::name(job),
        "namespace": util::namespace(job),
        "uid": util::uid(job),
        "resourceVersion": job.pointer("/metadata/resourceVersion"),
    })
}

/// RFC 3339 in the schedule's zone (`Z` for UTC), as Go's `time.RFC3339`.
fn rfc3339_in(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    if z.offset().seconds() == 0 { z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string() } else { z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string() }
}

/// The Job of the run scheduled at `scheduled`.
pub fn new_job(cj: &Value, scheduled: Timestamp, tz: &TimeZone) -> Value {
    let tpl = cj.pointer("/spec/jobTemplate").cloned().unwrap_or_else(|| json!({}));
    let mut annotations = tpl.pointer("/metadata/annotations").and_then(|a| a.as_object()).cloned().unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP_ANNOTATION.to_string(), json!(rfc3339_in(scheduled, tz)));
    let mut meta = json!({
        "name": job_name(util::name(cj), scheduled),
        "namespace": util::namespace(cj),
        "annotations": annotations,
        "ownerReferences": [owner_ref(cj, API_VERSION, KIND)],
    });
    if let Some(l) = tpl.pointer("/metadata/labels").filter(|l| l.is_object()) {
        meta["labels"] = l.clone();
    }
    json!({"apiVersion": API_VERSION, "kind": "Job", "metadata": meta, "spec": tpl.get("spec").cloned().unwrap_or_else(|| json!({}))})
}

/// The schedule and zone of a CronJob.
pub fn schedule_of(cj: &Value) -> Result<(Schedule, TimeZone), (&'static str, String)> {
    let spec = str_at(cj, "/spec/schedule").unwrap_or("");
    let parsed = parse(spec).map_err(|e| ("UnparseableSchedule", format!("unparseable schedule: {spec:?} : {e}")))?;
    let zone = str_at(cj, "/spec/timeZone").map(String::from).or(parsed.time_zone);
    let tz = match zone.as_deref() {
        None | Some("") | Some("UTC") | Some("Etc/UTC") => TimeZone::UTC,
        Some(name) => TimeZone::get(name).map_err(|e| ("UnknownTimeZone", format!("invalid timeZone: {name:?}: {e}")))?,
    };
    Ok((parsed.schedule, tz))
}

/// What one sync does: delete `delete` (Replace, history), create `create` (whose reference
/// and scheduled time the executor adds to `status`), write `status`, wake at `requeue_at`.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub status: Value,
    /// Jobs to delete: (name, uid).
    pub delete: Vec<(String, String)>,
    /// A Job to create and the time it was scheduled for.
    pub create: Option<(Value, Timestamp)>,
    pub requeue_at: Option<Timestamp>,
    pub events: Vec<(&'static str, &'static str, String)>,
}

fn finish_time(job: &Value) -> Option<Timestamp> {
    parse_time(job.pointer("/status/completionTime")).or_else(|| condition(job, "Complete").and_then(|c| parse_time(c.get("lastTransitionTime"))))
}

fn start_key(job: &Value) -> (Option<Timestamp>, Option<Timestamp>, String) {
    (parse_time(job.pointer("/status/startTime")).or_else(|| creation(job)), creation(job), util::name(job).to_string())
}

/// Computes one sync from the CronJob and the Jobs it owns.
pub fn plan(cj: &Value, jobs: &[&Value], now: Timestamp) -> Plan {
    let mut out = Plan::default();
    let by_uid: HashMap<&str, &Value> = jobs.iter().map(|j| (util::uid(j), *j)).collect();

    // Active runs: those still running, plus any unfinished run the list missed (created just
    // before a lost status write).
    let mut active: Vec<Value> = Vec::new();
    let mut last_successful = parse_time(cj.pointer("/status/lastSuccessfulTime"));
    for r in cj.pointer("/status/active").and_then(|a| a.as_array()).map(|a| a.as_slice()).unwrap_or(&[]) {
        let uid = r.get("uid").and_then(|u| u.as_str()).unwrap_or("");
        match by_uid.get(uid) {
            Some(j) if job_finished(j).is_none() => active.push(r.clone()),
            Some(j) => {
                let how = job_finished(j).unwrap_or("");
                out.events.push(("Normal", "SawCompletedJob", format!("Saw completed job: {}, condition: {how}", util::name(j))));
            }
            None => {}
        }
    }
    for j in jobs {
        if job_finished(j).is_none() && !util::is_deleting(j) && !active.iter().any(|r| r.get("uid").and_then(|u| u.as_str()) == Some(util::uid(j))) {
            active.push(job_ref(j));
        }
        if job_finished(j) == Some("Complete")
            && let Some(t) = finish_time(j)
        {
            last_successful = Some(last_successful.map_or(t, |l| l.max(t)));
        }
    }

    // History: the oldest finished runs beyond the limits go.
    for (kind, ptr, default) in [("Complete", "/spec/successfulJobsHistoryLimit", 3), ("Failed", "/spec/failedJobsHistoryLimit", 1)] {
        let limit = i64_at(cj, ptr).unwrap_or(default).max(0) as usize;
        let mut done: Vec<&Value> = jobs.iter().copied().filter(|j| job_finished(j) == Some(kind) && !util::is_deleting(j)).collect();
        if done.len() > limit {
            done.sort_by_key(|j| start_key(j));
            for j in &done[..done.len() - limit] {
                out.delete.push((util::name(j).to_string(), util::uid(j).to_string()));
            }
        }
    }

    let set_status = |out: &mut Plan, active: &[Value]| {
        let mut status = json!({});
        if !active.is_empty() {
            status["active"] = json!(active);
        }
        if let Some(t) = cj.pointer("/status/lastScheduleTime") {
            status["lastScheduleTime"] = t.clone();
        }
        if let Some(t) = last_successful {
            status["lastSuccessfulTime"] = json!(fmt_time(t));
        }
        out.status = status;
    };
    set_status(&mut out, &active);

    if util::is_deleting(cj) {
        return out;
    }
    let (sched, tz) = match schedule_of(cj) {
        Ok(s) => s,
        Err((reason, msg)) => {
            out.events.push(("Warning", reason, msg));
            return out;
        }
    };
    if bool_at(cj, "/spec/suspend").unwrap_or(false) {
        return out;
    }

    let last_schedule = parse_time(cj.pointer("/status/lastScheduleTime"));
    let mut earliest = last_schedule.or_else(|| creation(cj)).unwrap_or(now);
    let deadline = i64_at(cj, "/spec/startingDeadlineSeconds");
    if let Some(d) = deadline {
        let floor = now - jiff::SignedDuration::from_secs(d.max(0));
        earliest = earliest.max(floor);
    }
    let (scheduled, missed) = sched.most_recent(earliest, now, &tz);
    out.requeue_at = sched.next_after(now, &tz);
    if missed > 100 {
        out.events.push((
            "Warning",
            "TooManyMissedTimes",
            "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".to_string(),
        ));
    }
    let Some(scheduled) = scheduled else { return out };
    if let Some(d) = deadline
        && scheduled + jiff::SignedDuration::from_secs(d.max(0)) < now
    {
        out.events.push(("Warning", "MissSchedule", format!("Missed scheduled time to start a job: {}", fmt_time(scheduled))));
        return out;
    }
    let name = job_name(util::name(cj), scheduled);
    if last_schedule == Some(scheduled)
        || active.iter().any(|r| r.get("name").and_then(|n| n.as_str()) == Some(name.as_str()))
        || jobs.iter().any(|j| util::name(j) == name)
    {
        return out;
    }
    match str_at(cj, "/spec/concurrencyPolicy").unwrap_or("Allow") {
        "Forbid" if !active.is_empty() => {
            out.events.push(("Normal", "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid".to_string()));
            return out;
        }
        "Replace" => {
            let listed: HashSet<&str> = out.delete.iter().map(|(_, u)| u.as_str()).collect();
            let replaced: Vec<(String, String)> = active
                .iter()
                .filter_map(|r| Some((r.get("name")?.as_str()?.to_string(), r.get("uid")?.as_str()?.to_string())))
                .filter(|(_, u)| !listed.contains(u.as_str()))
                .collect();
            out.delete.extend(replaced);
            active.clear();
            set_status(&mut out, &active);
        }
        _ => {}
    }
    out.create = Some((new_job(cj, scheduled, &tz), scheduled));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn cj(spec: Value, status: Value) -> Value {
        let mut c = json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "tick", "namespace": "default", "uid": "cj-uid", "creationTimestamp": "2024-03-10T09:00:30Z"},
            "spec": {"schedule": "*/10 * * * *", "jobTemplate": {"metadata": {"labels": {"team": "a"}}, "spec": {"template": {"spec": {"containers": []}}}}},
            "status": status,
        });
        crate::testing::merge(&mut c, &json!({"spec": spec}));
        c
    }

    fn job(name: &str, state: Option<&str>, start: &str) -> Value {
        let mut j = json!({"metadata": {"name": name, "namespace": "default", "uid": format!("u-{name}"), "creationTimestamp": start,
            "ownerReferences": [{"uid": "cj-uid", "controller": true, "kind": "CronJob", "name": "tick"}]},
            "status": {"startTime": start}});
        if let Some(s) = state {
            j["status"]["conditions"] = json!([{"type": s, "status": "True", "lastTransitionTime": start}]);
            if s == "Complete" {
                j["status"]["completionTime"] = json!(start);
            }
        }
        j
    }

    #[test]
    fn job_names_and_shape() {
        let t = ts("2024-03-10T10:00:00Z");
        assert_eq!(job_name("tick", t), format!("tick-{}", t.as_second() / 60));
        let c = cj(json!({"timeZone": "Asia/Tokyo"}), json!({}));
        let (_, tz) = schedule_of(&c).unwrap();
        let j = new_job(&c, t, &tz);
        assert_eq!(j.pointer("/metadata/annotations/batch.kubernetes.io~1cronjob-scheduled-timestamp"), Some(&json!("2024-03-10T19:00:00+09:00")));
        assert_eq!(j.pointer("/metadata/labels/team"), Some(&json!("a")));
        assert_eq!(j.pointer("/metadata/ownerReferences/0/kind"), Some(&json!("CronJob")));
        let j = new_job(&cj(json!({}), json!({})), t, &TimeZone::UTC);
        assert_eq!(j.pointer("/metadata/annotations/batch.kubernetes.io~1cronjob-scheduled-timestamp"), Some(&json!("2024-03-10T10:00:00Z")));
    }

    #[test]
    fn plan_table() {
        struct Case {
            name: &'static str,
            spec: Value,
            status: Value,
            jobs: Vec<Value>,
            now: &'static str,
            create: Option<&'static str>,
            delete: Vec<&'static str>,
            requeue: Option<&'static str>,
        }
        let t10 = ts("2024-03-10T10:00:00Z");
        let name10: &'static str = Box::leak(job_name("tick", t10).into_boxed_str());
        let active_ref = json!([{"name": "old", "uid": "u-old", "kind": "Job"}]);
        let cases = vec![
            Case {
                name: "before the first run",
                spec: json!({}),
                status: json!({}),
                jobs: vec![],
                now: "2024-03-10T09:05:00Z",
                create: None,
                delete: vec![],
                requeue: Some("2024-03-10T09:10:00Z"),
            },
            Case {
                name: "at the scheduled time",
                spec: json!({}),
                status: json!({"lastScheduleTime": "2024-03-10T09:50:00Z"}),
                jobs: vec![],
                now: "2024-03-10T10:00:00Z",
                create: Some(name10),
                delete: vec![],
                requeue: Some("2024-03-10T10:10:00Z"),
            },
            Case {
                name: "already ran",
                spec: json!({}),
                status: json!({"lastScheduleTime": "2024-03-10T10:00:00Z"}),
                jobs: vec![],
                now: "2024-03-10T10:05:00Z",
                create: None,
                delete: vec![],
                requeue: Some("2024-03-10T10:10:00Z"),
            },
            Case {
                name: "missed runs: only the most recent",
                spec: json!({}),
                status: json!({"lastScheduleTime": "2024-03-10T09:00:00Z"}),
                jobs: vec![],
                now: "2024-03-10T10:01:00Z",
                create: Some(name10),
                delete: vec![],
                requeue: Some("2024-03-10T10:10:00Z"),
            },
            Case {
                name: "too late for the starting deadline",
                spec: json!({"startingDeadlineSeconds": 30}),
                status: json!({"lastScheduleTime": "2024-03-10T09:50:00Z"}),
                jobs: vec![],
                now: "2024-03-10T10:01:00Z",
                create: None,
                delete: vec![],
                requeue: Some("2024-03-10T10:10:00Z"),
            },
            Case {
                name: "within the starting deadline",
                spec: json!({"startingDeadlineSeconds": 120}),
                status: json!({"lastScheduleTime": "2024-03-10T09:50:00Z"}),
                jobs: vec![],
                now: "2024-03-10T10:01:00Z",
                create: Some(name10),
                delete: vec![],
                requeue: Some("2024-03-10T10:10:00Z"),
            },
            Case {
                name: "forbid skips while active",
                spec: json!({"concurrencyPolicy": "Forbid"}),
                status: json!({"lastScheduleTime": "2024-03-10T09:50:00Z", "active": active_ref.clone()}),
                jobs: vec![job("old", None, "2024-03-10T09:50:00Z")],
                now: "2024-03-10T10:00:00Z",
                create: None,
                delete: vec![],
                requeue: Some("2024-03-10T10:10:00Z"),
            },
            Case {
                name: "forbid runs once the active run finished",
                spec: json!({"concurrencyPolicy": "Forbid"}),
                status: json!({"lastScheduleTime": "2024-03-10T09:50:00Z", "active": active_ref.clone()}),
                jobs: vec![job("old", Some("Complete"), "2024-03-10T09:50:00Z")],
                now: "2024-03-10T10:00:00Z",
                create: Some(name10),
                delete: vec![],
                requeue: Some("2024-03-10T10:10:00Z"),
            },
            Case {
                name: "replace deletes the active run",
                spec: json!({"concurrencyPolicy": "Replace"}),
                status: json!({"lastScheduleTime": "2024-03-10T09:50:00Z", "active": active_ref.clone()}),
                jobs: vec![job("old", None, "2024-03-10T09:50:00Z")],
                now: "2024-03-10T10:00:00Z",
                create: Some(name10),
                delete: vec!["old"],
                requeue: Some("2024-03-10T10:10:00Z"),
            },
            Case {
                name: "allow runs concurrently",
                spec: json!({}),
                status: json!({"lastScheduleTime": "2024-03-10T09:50:00Z", "active": active_ref.clone()}),
                jobs: vec![job("old", None, "2024-03-10T09:50:00Z")],
                now: "2024-03-10T10:00:00Z",
                create: Some(name10),
                delete: vec![],
                requeue: Some("2024-03-10T10:10:00Z"),
            },
            Case {
                name: "suspended",
                spec: json!({"suspend": true}),
                status: json!({}),
                jobs: vec![],
                now: "2024-03-10T10:00:00Z",
                create: None,
                delete: vec![],
                requeue: None,
            },
            Case {
                name: "history limits prune the oldest",
                spec: json!({"successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 1}),
                status: json!({"lastScheduleTime": "2024-03-10T09:50:00Z"}),
                jobs: vec![
                    job("s1", Some("Complete"), "2024-03-10T09:10:00Z"),
                    job("s3", Some("Complete"), "2024-03-10T09:30:00Z"),
                    job("s2", Some("Complete"), "2024-03-10T09:20:00Z"),
                    job("f1", Some("Failed"), "2024-03-10T09:15:00Z"),
                    job("f2", Some("Failed"), "2024-03-10T09:25:00Z"),
                ],
                now: "2024-03-10T09:55:00Z",
                create: None,
                delete: vec!["s1", "s2", "f1"],
                requeue: Some("2024-03-10T10:00:00Z"),
            },
            Case {
                name: "bad schedule",
                spec: json!({"schedule": "61 * * * *"}),
                status: json!({}),
                jobs: vec![],
                now: "2024-03-10T10:00:00Z",
                create: None,
                delete: vec![],
                requeue: None,
            },
        ];
        for c in cases {
            let cron = cj(c.spec, c.status);
            let refs: Vec<&Value> = c.jobs.iter().collect();
            let p = plan(&cron, &refs, ts(c.now));
            assert_eq!(p.create.as_ref().map(|(j, _)| util::name(j).to_string()).as_deref(), c.create, "{}: create", c.name);
            assert_eq!(p.delete.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), c.delete, "{}: delete", c.name);
            assert_eq!(p.requeue_at, c.requeue.map(ts), "{}: requeue", c.name);
        }
    }

    #[test]
    fn status_tracks_runs() {
        let c = cj(
            json!({}),
            json!({"active": [{"name": "done", "uid": "u-done"}, {"name": "gone", "uid": "u-gone"}], "lastScheduleTime": "2024-03-10T09:50:00Z"}),
        );
        let jobs = [job("done", Some("Complete"), "2024-03-10T09:40:00Z"), job("running", None, "2024-03-10T09:50:00Z")];
        let refs: Vec<&Value> = jobs.iter().collect();
        let p = plan(&c, &refs, ts("2024-03-10T09:55:00Z"));
        let active: Vec<&str> = p.status["active"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(active, ["running"]);
        assert_eq!(p.status["lastSuccessfulTime"], "2024-03-10T09:40:00Z");
        assert_eq!(p.status["lastScheduleTime"], "2024-03-10T09:50:00Z");
        assert!(p.events.iter().any(|(_, r, _)| *r == "SawCompletedJob"));
    }

    #[test]
    fn too_many_missed_runs_warn_and_take_the_latest() {
        let c = cj(json!({"schedule": "* * * * *"}), json!({"lastScheduleTime": "2024-03-01T00:00:00Z"}));
        let p = plan(&c, &[], ts("2024-03-10T10:00:30Z"));
        assert_eq!(p.create.as_ref().map(|(_, t)| *t), Some(ts("2024-03-10T10:00:00Z")));
        assert!(p.events.iter().any(|(_, r, _)| *r == "TooManyMissedTimes"));
    }
}
