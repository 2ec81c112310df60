//! The Job controller (batch/v1): runs pods to completion.
//!
//! At most `parallelism` pods run at once, never more than the completions still missing
//! (`completions` absent: a work queue, done when one pod succeeded and none is running).
//! `Indexed` jobs give each pod a completion index (annotation and label
//! `batch.kubernetes.io/job-completion-index`, hostname `<job>-<index>`, env
//! `JOB_COMPLETION_INDEX`) and are done when every index in `0..completions` succeeded.
//!
//! Counting survives pod deletion the way Kubernetes does it: pods carry the finalizer
//! `batch.kubernetes.io/job-tracking`; a finished pod's uid is first recorded in
//! `status.uncountedTerminatedPods`, then its finalizer removed, and only once the finalizer is
//! gone is the uid moved into `succeeded`/`failed`. A pod deleted before finishing counts as
//! failed; pods this controller removes itself (excess, suspension) are released first and not
//! counted.
//!
//! Failure: `restartPolicy: Never` pods that fail count toward `backoffLimit`; for
//! `OnFailure` pods the kubelet restarts containers in place, so, like Kubernetes, the
//! container restart counts of the pods still running are added in — approximately: restarts
//! of a pod that is later replaced are forgotten. Exceeding the limit (or
//! `activeDeadlineSeconds`) adds `FailureTarget`, removes the running pods, then `Failed`
//! (reason `BackoffLimitExceeded` / `DeadlineExceeded`). Success adds `SuccessCriteriaMet`,
//! then `Complete` with `completionTime` once no pod is left running (Kubernetes 1.33's two
//! steps). `suspend` removes the running pods and sets `Suspended`; resuming resets
//! `startTime`. `ttlSecondsAfterFinished` deletes the finished Job (background propagation).
//!
//! Not implemented: `podFailurePolicy`, `successPolicy`, `backoffLimitPerIndex`, `managedBy`,
//! and the exponential delay Kubernetes puts between pod failures and their replacements.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::Ctx;
use crate::client::res;
use crate::daemonset::common::*;
use crate::events::Recorder;
use crate::informer::{Change, Informer, key_of};
use crate::queue::WorkQueue;
use crate::util;

const API_VERSION: &str = "batch/v1";
const KIND: &str = "Job";
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
const LEGACY_JOB_NAME_LABEL: &str = "job-name";
const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";

pub async fn run(ctx: Arc<Ctx>) {
    run_with_clock(ctx, Arc::new(SystemClock)).await
}

/// [`run`] with an injected clock (tests): deadlines and TTLs follow it.
pub async fn run_with_clock(ctx: Arc<Ctx>, clock: Arc<dyn Clock>) {
    let jobs = ctx.informers.get(res("batch", "jobs"));
    let pods_inf = ctx.informers.get(pods());
    let queue = WorkQueue::new();
    let mut set = JoinSet::new();
    let lag = |q: &WorkQueue, s: &Arc<Informer>| {
        let (q, s) = (q.clone(), s.clone());
        move || enqueue_all(&q, &s)
    };
    {
        let (q, pods_inf) = (queue.clone(), pods_inf.clone());
        forward_changes(
            &mut set,
            &jobs,
            move |c| {
                q.add(c.key.clone());
                // A deleted Job's pods are stray: release them now, not at their next change.
                if c.new.is_none()
                    && let Some(old) = c.old.as_deref()
                {
                    for p in pods_inf.list_namespace(util::namespace(old)) {
                        if controller_uid(&p) == Some(util::uid(old)) && has_finalizer(&p, TRACKING_FINALIZER) {
                            q.add(format!("pod:{}", key_of(&p)));
                        }
                    }
                }
            },
            lag(&queue, &jobs),
        );
    }
    {
        let (q, owners) = (queue.clone(), jobs.clone());
        forward_changes(
            &mut set,
            &pods_inf,
            move |c| {
                enqueue_owners(c, KIND, &q, &owners, |job, pod| util::selector_matches(Some(&selector_of(job)), pod));
                if let Some(k) = stray_pod_key(c, &owners) {
                    q.add(k);
                }
            },
            lag(&queue, &jobs),
        );
    }
    jobs.synced().await;
    pods_inf.synced().await;
    enqueue_all(&queue, &jobs);
    for p in pods_inf.list() {
        if let Some(k) = stray_pod_key(&Change { key: key_of(&p), old: None, new: Some(p.clone()) }, &jobs) {
            queue.add(k);
        }
    }
    let ctl = Arc::new(Controller {
        recorder: ctx.recorder("job-controller"),
        timers: Timers::new(clock.clone(), queue.clone()),
        ctx,
        clock,
        expectations: Expectations::default(),
        written: Mutex::default(),
        jobs,
        pods: pods_inf,
    });
    spawn_workers(
        &mut set,
        2,
        queue,
        "job",
        Arc::new(move |key| {
            let ctl = ctl.clone();
            Box::pin(async move { ctl.sync(&key).await })
        }),
    );
    join_forever(set).await
}

/// A pod holding the tracking finalizer that no live Job will ever release (its Job is gone,
/// being deleted or replaced, or it was orphaned): queued as `pod:<ns>/<name>`.
fn stray_pod_key(c: &Change, jobs: &Informer) -> Option<String> {
    let p = c.new.as_deref()?;
    if !has_finalizer(p, TRACKING_FINALIZER) {
        return None;
    }
    let owner_alive = match (controller_key(p, KIND), controller_uid(p)) {
        (Some(k), Some(uid)) => jobs.get(&k).is_some_and(|j| util::uid(&j) == uid && !util::is_deleting(&j)),
        _ => false,
    };
    (!owner_alive).then(|| format!("pod:{}", c.key))
}

/// The Job's selector; the API server generates one from the uid unless `manualSelector`,
/// so a Job read without one (tests, or before defaulting) selects by uid.
pub fn selector_of(job: &Value) -> Value {
    match job.pointer("/spec/selector") {
        Some(s) if !s.is_null() => s.clone(),
        _ => json!({"matchLabels": {CONTROLLER_UID_LABEL: util::uid(job)}}),
    }
}

struct Controller {
    ctx: Arc<Ctx>,
    clock: Arc<dyn Clock>,
    timers: Timers,
    expectations: Expectations,
    /// resourceVersion of our last status write per Job: a cache older than that would recount.
    written: Mutex<HashMap<String, u64>>,
    recorder: Recorder,
    jobs: Arc<Informer>,
    pods: Arc<Informer>,
}

fn rv_num(o: &Value) -> Option<u64> {
    str_at(o, "/metadata/resourceVersion").and_then(|r| r.parse().ok())
}

impl Controller {
    async fn sync(&self, key: &str) -> SyncResult {
        let client = self.ctx.client.as_ref();
        if let Some(pod_key) = key.strip_prefix("pod:") {
            let Some(p) = self.pods.get(pod_key) else { return Ok(()) };
            if stray_pod_key(&Change { key: pod_key.to_string(), old: None, new: Some(p.clone()) }, &self.jobs).is_some() {
                remove_finalizer(client, pods(), &p, TRACKING_FINALIZER).await?;
            }
            return Ok(());
        }
        let Some(job) = self.jobs.get(key) else {
            self.expectations.forget(key);
            self.written.lock().expect("written lock").remove(key);
            return Ok(());
        };
        if util::is_deleting(&job) {
            // Its pods are stray now; the pod keys release them.
            return Ok(());
        }
        {
            let mut w = self.written.lock().expect("written lock");
            if let Some(&mine) = w.get(key) {
                match rv_num(&job) {
                    Some(seen) if seen < mine => return Ok(()),
                    _ => {
                        w.remove(key);
                    }
                }
            }
        }
        if !self.expectations.satisfied(key, &self.pods) {
            return Ok(());
        }
        let selector = selector_of(&job);
        let oref = owner_ref(&job, API_VERSION, KIND);
        let owned = claim_and_patch(client, pods(), &self.pods, &job, &oref, |p| util::selector_matches(Some(&selector), p), &[TRACKING_FINALIZER]).await?;
        let refs: Vec<&Value> = owned.iter().map(|p| p.as_ref()).collect();
        let now = self.clock.now();
        let p = plan(&job, &refs, now);

        if p.delete_job {
            delete_exact(client, res("batch", "jobs"), util::namespace(&job), util::name(&job), util::uid(&job), Some("Background")).await?;
            return Ok(());
        }
        // The status (with the uids about to be released) must be stored before any
        // finalizer goes, or a crash in between would lose those pods from the counts.
        if let Some(written) = write_status(client, res("batch", "jobs"), &job, p.status.clone()).await?
            && let Some(rv) = rv_num(&written)
        {
            self.written.lock().expect("written lock").insert(key.to_string(), rv);
        }
        let by_name: HashMap<&str, &Value> = refs.iter().map(|p| (util::name(p), *p)).collect();
        let mut first_err: Option<SyncError> = None;
        let mut released: HashSet<&str> = HashSet::new();
        for name in &p.release {
            let Some(pod) = by_name.get(name.as_str()) else { continue };
            match remove_finalizer(client, pods(), pod, TRACKING_FINALIZER).await {
                Ok(()) => {
                    released.insert(name.as_str());
                }
                Err(e) => {
                    first_err.get_or_insert(e.into());
                }
            }
        }
        let ns = util::namespace(&job);
        for d in &p.delete {
            let Some(pod) = by_name.get(d.as_str()) else { continue };
            // Pods the Job removes itself are not counted: their finalizer goes first.
            if !released.contains(d.as_str())
                && let Err(e) = remove_finalizer(client, pods(), pod, TRACKING_FINALIZER).await
            {
                first_err.get_or_insert(e.into());
                continue;
            }
            match delete_exact(client, pods(), ns, d, util::uid(pod), None).await {
                Ok(()) => {
                    self.expectations.expect_delete(key, format!("{ns}/{d}"), util::uid(pod).to_string());
                    self.recorder.event(&job, "Normal", "SuccessfulDelete", &format!("Deleted pod: {d}")).await;
                }
                Err(e) => {
                    first_err.get_or_insert(e.into());
                }
            }
        }
        for index in &p.create {
            match client.create(pods(), ns_opt(&job), new_pod(&job, *index)).await {
                Ok(created) => {
                    self.expectations.expect_create(key, key_of(&created));
                    self.recorder.event(&job, "Normal", "SuccessfulCreate", &format!("Created pod: {}", util::name(&created))).await;
                }
                Err(e) => {
                    self.recorder.event(&job, "Warning", "FailedCreate", &format!("Error creating: {e}")).await;
                    first_err.get_or_insert(e.into());
                }
            }
        }
        for (ty, reason, msg) in &p.events {
            self.recorder.event(&job, ty, reason, msg).await;
        }
        if let Some(t) = p.requeue_at {
            self.timers.at(key, t);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Spec

/// A Job's spec with Kubernetes' defaults applied.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub parallelism: i64,
    pub completions: Option<i64>,
    pub backoff_limit: i64,
    pub indexed: bool,
    pub suspend: bool,
    pub active_deadline_seconds: Option<i64>,
    pub ttl_seconds_after_finished: Option<i64>,
    /// `podReplacementPolicy: Failed`: a replacement waits until the old pod is fully gone.
    pub replace_only_failed: bool,
    pub restart_on_failure: bool,
}

pub fn spec_of(job: &Value) -> JobSpec {
    let parallelism = i64_at(job, "/spec/parallelism");
    let mut completions = i64_at(job, "/spec/completions");
    if completions.is_none() && parallelism.is_none() {
        completions = Some(1);
    }
    let has_failure_policy = job.pointer("/spec/podFailurePolicy").is_some_and(|p| !p.is_null());
    let replacement = str_at(job, "/spec/podReplacementPolicy").unwrap_or(if has_failure_policy { "Failed" } else { "TerminatingOrFailed" });
    JobSpec {
        parallelism: parallelism.unwrap_or(1).max(0),
        completions: completions.map(|c| c.max(0)),
        backoff_limit: i64_at(job, "/spec/backoffLimit").unwrap_or(6).max(0),
        indexed: str_at(job, "/spec/completionMode") == Some("Indexed") && completions.is_some(),
        suspend: bool_at(job, "/spec/suspend").unwrap_or(false),
        active_deadline_seconds: i64_at(job, "/spec/activeDeadlineSeconds"),
        ttl_seconds_after_finished: i64_at(job, "/spec/ttlSecondsAfterFinished"),
        replace_only_failed: replacement == "Failed",
        restart_on_failure: str_at(job, "/spec/template/spec/restartPolicy") == Some("OnFailure"),
    }
}

// ---------------------------------------------------------------------------------------------
// Indexes

/// A pod's completion index (annotation, else label).
pub fn index_of(p: &Value) -> Option<i64> {
    let key = COMPLETION_INDEX.replace('/', "~1");
    let s = str_at(p, &format!("/metadata/annotations/{key}")).or_else(|| str_at(p, &format!("/metadata/labels/{key}")))?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `status.completedIndexes` ("1,3-5,7").
pub fn parse_indexes(s: &str) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<i64>(), b.trim().parse::<i64>())
                    && a <= b
                    && b - a < 1_000_000
                {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(a) = part.parse::<i64>() {
                    out.insert(a);
                }
            }
        }
    }
    out
}

/// Formats indexes as Kubernetes does: ascending, consecutive runs as `first-last`.
pub fn format_indexes(ix: &BTreeSet<i64>) -> String {
    let mut parts = Vec::new();
    let mut it = ix.iter().copied().peekable();
    while let Some(first) = it.next() {
        let mut last = first;
        while it.peek() == Some(&(last + 1)) {
            last += 1;
            it.next();
        }
        parts.push(if last > first { format!("{first}-{last}") } else { first.to_string() });
    }
    parts.join(",")
}

// ---------------------------------------------------------------------------------------------
// Pods

/// A pod for the Job (index `Some` for Indexed jobs).
pub fn new_pod(job: &Value, index: Option<i64>) -> Value {
    let name = util::name(job);
    let uid = util::uid(job);
    let template = job.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    let mut labels = template.pointer("/metadata/labels").and_then(|l| l.as_object()).cloned().unwrap_or_default();
    for (k, v) in [(CONTROLLER_UID_LABEL, uid), (JOB_NAME_LABEL, name), (LEGACY_CONTROLLER_UID_LABEL, uid), (LEGACY_JOB_NAME_LABEL, name)] {
        labels.entry(k.to_string()).or_insert_with(|| json!(v));
    }
    let mut annotations = template.pointer("/metadata/annotations").and_then(|l| l.as_object()).cloned().unwrap_or_default();
    let mut spec = template.get("spec").filter(|s| s.is_object()).cloned().unwrap_or_else(|| json!({}));
    let generate_name = match index {
        Some(ix) => {
            labels.insert(COMPLETION_INDEX.to_string(), json!(ix.to_string()));
            annotations.insert(COMPLETION_INDEX.to_string(), json!(ix.to_string()));
            if spec.get("hostname").and_then(|h| h.as_str()).is_none_or(|h| h.is_empty()) {
                set_field(&mut spec, "hostname", json!(format!("{name}-{ix}")));
            }
            for list in ["containers", "initContainers"] {
                if let Some(cs) = spec.get_mut(list).and_then(|c| c.as_array_mut()) {
                    for c in cs {
                        let env = c.as_object_mut().map(|m| m.entry("env").or_insert_with(|| json!([])));
                        if let Some(env) = env.and_then(|e| e.as_array_mut())
                            && !env.iter().any(|e| e.get("name").and_then(|n| n.as_str()) == Some("JOB_COMPLETION_INDEX"))
                        {
                            env.push(json!({"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {"fieldPath": format!("metadata.annotations['{COMPLETION_INDEX}']")}}}));
                        }
                    }
                }
            }
            format!("{name}-{ix}-")
        }
        None => format!("{name}-"),
    };
    let mut meta = json!({
        "generateName": generate_name,
        "namespace": util::namespace(job),
        "labels": labels,
        "finalizers": [TRACKING_FINALIZER],
        "ownerReferences": [owner_ref(job, API_VERSION, KIND)],
    });
    if !annotations.is_empty() {
        meta["annotations"] = Value::Object(annotations);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

/// Kubernetes' `ActivePods` order: the least progressed pod first (unscheduled, pending,
/// unready, newest), i.e. the cheapest to remove.
fn least_progressed_first(a: &&Value, b: &&Value) -> Ordering {
    let scheduled = |p: &Value| str_at(p, "/spec/nodeName").is_some_and(|n| !n.is_empty());
    let phase_rank = |p: &Value| match util::pod_phase(p) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    };
    scheduled(a)
        .cmp(&scheduled(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| util::is_pod_ready(a).cmp(&util::is_pod_ready(b)))
        .then_with(|| creation(b).cmp(&creation(a)))
        .then_with(|| util::name(a).cmp(util::name(b)))
}

fn restart_count(p: &Value) -> i64 {
    ["initContainerStatuses", "containerStatuses"]
        .iter()
        .flat_map(|l| p.pointer(&format!("/status/{l}")).and_then(|s| s.as_array()).cloned().unwrap_or_default())
        .map(|c| c.get("restartCount").and_then(|r| r.as_i64()).unwrap_or(0))
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Planning

/// What one sync does, in this order: delete the Job (TTL), write `status`, remove the tracking
/// finalizer from `release`, delete `delete` (finalizer removed first), create `create`.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub delete_job: bool,
    pub status: Value,
    /// Pod names whose tracking finalizer to remove (their uids are in `status`).
    pub release: Vec<String>,
    /// Pod names to delete.
    pub delete: Vec<String>,
    /// Pods to create: their completion index (`None` for NonIndexed).
    pub create: Vec<Option<i64>>,
    pub requeue_at: Option<Timestamp>,
    /// (type, reason, message).
    pub events: Vec<(&'static str, &'static str, String)>,
}

fn new_condition(ty: &str, status: &str, reason: &str, message: &str, now: Timestamp) -> Value {
    let t = fmt_time(now);
    json!({"type": ty, "status": status, "lastProbeTime": t, "lastTransitionTime": t, "reason": reason, "message": message})
}

/// Sets a condition, keeping its transition time when the status does not change.
fn set_condition(conds: &mut Vec<Value>, ty: &str, status: &str, reason: &str, message: &str, now: Timestamp) -> bool {
    if let Some(c) = conds.iter_mut().find(|c| c.get("type").and_then(|t| t.as_str()) == Some(ty)) {
        if c.get("status").and_then(|s| s.as_str()) == Some(status) {
            return false;
        }
        *c = new_condition(ty, status, reason, message, now);
        return true;
    }
    conds.push(new_condition(ty, status, reason, message, now));
    true
}

fn cond_true<'a>(conds: &'a [Value], ty: &str) -> Option<&'a Value> {
    conds.iter().find(|c| c.get("type").and_then(|t| t.as_str()) == Some(ty) && c.get("status").and_then(|s| s.as_str()) == Some("True"))
}

fn uid_set(job: &Value, which: &str) -> BTreeSet<String> {
    job.pointer(&format!("/status/uncountedTerminatedPods/{which}"))
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|u| u.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// Computes one sync of a Job from the Job and the pods it owns.
pub fn plan(job: &Value, pods: &[&Value], now: Timestamp) -> Plan {
    let s = spec_of(job);
    let mut out = Plan::default();
    let old_status = job.get("status").filter(|s| s.is_object()).cloned().unwrap_or_else(|| json!({}));
    let mut conds: Vec<Value> = old_status.get("conditions").and_then(|c| c.as_array()).cloned().unwrap_or_default();

    // A finished Job only waits for its TTL; its pods need no tracking any more.
    let finished = cond_true(&conds, "Complete").or_else(|| cond_true(&conds, "Failed")).cloned();
    if let Some(fin) = finished {
        out.status = old_status;
        out.release = pods.iter().filter(|p| has_finalizer(p, TRACKING_FINALIZER)).map(|p| util::name(p).to_string()).collect();
        if let Some(ttl) = s.ttl_seconds_after_finished {
            let at = parse_time(fin.get("lastTransitionTime")).or_else(|| parse_time(job.pointer("/status/completionTime"))).unwrap_or(now);
            let expire = at + SignedDuration::from_secs(ttl.max(0));
            if now >= expire {
                out.delete_job = true;
            } else {
                out.requeue_at = Some(expire);
            }
        }
        return out;
    }

    let mut succeeded = i64_at(job, "/status/succeeded").unwrap_or(0);
    let mut failed = i64_at(job, "/status/failed").unwrap_or(0);
    let mut unc_s = uid_set(job, "succeeded");
    let mut unc_f = uid_set(job, "failed");
    let by_uid: HashMap<&str, &Value> = pods.iter().map(|p| (util::uid(p), *p)).collect();
    let tracked = |uid: &str| by_uid.get(uid).is_some_and(|p| has_finalizer(p, TRACKING_FINALIZER));

    // Uids whose finalizer is gone are counted for good.
    let before = unc_s.len();
    unc_s.retain(|u| tracked(u));
    succeeded += (before - unc_s.len()) as i64;
    let before = unc_f.len();
    unc_f.retain(|u| tracked(u));
    failed += (before - unc_f.len()) as i64;

    let completions = s.completions.unwrap_or(0);
    let valid_index = |p: &Value| index_of(p).filter(|ix| *ix >= 0 && *ix < completions);
    let mut completed: BTreeSet<i64> = if s.indexed {
        parse_indexes(str_at(job, "/status/completedIndexes").unwrap_or("")).into_iter().filter(|ix| *ix < completions).collect()
    } else {
        BTreeSet::new()
    };
    let mut release: BTreeSet<String> = BTreeSet::new();

    // Newly finished pods: record their uids; their finalizers go once that is stored.
    for p in pods.iter().filter(|p| has_finalizer(p, TRACKING_FINALIZER)) {
        let uid = util::uid(p).to_string();
        if unc_s.contains(&uid) || unc_f.contains(&uid) {
            release.insert(util::name(p).to_string());
            continue;
        }
        match util::pod_phase(p) {
            "Succeeded" => {
                if s.indexed
                    && let Some(ix) = valid_index(p)
                {
                    completed.insert(ix);
                }
                unc_s.insert(uid);
            }
            "Failed" => {
                unc_f.insert(uid);
            }
            _ if util::is_deleting(p) => {
                unc_f.insert(uid);
            }
            _ => continue,
        }
        release.insert(util::name(p).to_string());
    }
    let succeeded_total = if s.indexed { completed.len() as i64 } else { succeeded + unc_s.len() as i64 };
    let failed_total = failed + unc_f.len() as i64;
    let active: Vec<&Value> = pods.iter().copied().filter(|p| util::is_pod_active(p)).collect();
    let terminating = pods.iter().filter(|p| util::is_deleting(p) && !matches!(util::pod_phase(p), "Succeeded" | "Failed")).count() as i64;

    let mut start_time = parse_time(job.pointer("/status/startTime"));
    let mut completion_time = parse_time(job.pointer("/status/completionTime"));
    let mut delete: Vec<&Value> = Vec::new();

    // Has the Job reached its end?
    let mut target = cond_true(&conds, "FailureTarget").or_else(|| cond_true(&conds, "SuccessCriteriaMet")).cloned();
    if target.is_none() {
        let restarts: i64 = if s.restart_on_failure {
            active.iter().filter(|p| matches!(util::pod_phase(p), "Running" | "Pending")).map(|p| restart_count(p)).sum()
        } else {
            0
        };
        let past_on_failure = s.restart_on_failure && if s.backoff_limit == 0 { restarts > 0 } else { restarts >= s.backoff_limit };
        let deadline = match (s.active_deadline_seconds, start_time) {
            (Some(ads), Some(st)) if !s.suspend => Some(st + SignedDuration::from_secs(ads.max(0))),
            _ => None,
        };
        let success = match (s.indexed, s.completions) {
            (true, Some(c)) => completed.len() as i64 >= c,
            (false, Some(c)) => succeeded_total >= c,
            (_, None) => succeeded_total > 0 && active.is_empty(),
        };
        let t = if failed_total > s.backoff_limit || past_on_failure {
            Some(("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"))
        } else if deadline.is_some_and(|d| now >= d) {
            Some(("FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline"))
        } else if success {
            Some(("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"))
        } else {
            if let Some(d) = deadline {
                out.requeue_at = Some(d);
            }
            None
        };
        if let Some((ty, reason, message)) = t {
            set_condition(&mut conds, ty, "True", reason, message, now);
            if ty == "FailureTarget" {
                out.events.push(("Warning", reason, message.to_string()));
            }
            target = Some(new_condition(ty, "True", reason, message, now));
        }
    }

    if let Some(target) = &target {
        // Whatever still runs is stopped, and counts as failed.
        for p in &active {
            if has_finalizer(p, TRACKING_FINALIZER) && !unc_s.contains(util::uid(p)) {
                unc_f.insert(util::uid(p).to_string());
                release.insert(util::name(p).to_string());
            }
            delete.push(p);
        }
        let settled =
            unc_s.is_empty() && unc_f.is_empty() && active.is_empty() && terminating == 0 && !pods.iter().any(|p| has_finalizer(p, TRACKING_FINALIZER));
        if settled {
            let success = target.get("type").and_then(|t| t.as_str()) == Some("SuccessCriteriaMet");
            let reason = target.get("reason").and_then(|r| r.as_str()).unwrap_or("");
            let message = target.get("message").and_then(|r| r.as_str()).unwrap_or("");
            let ty = if success { "Complete" } else { "Failed" };
            set_condition(&mut conds, ty, "True", reason, message, now);
            if success {
                completion_time = Some(now);
                out.events.push(("Normal", "Completed", "Job completed".to_string()));
            }
            if let Some(ttl) = s.ttl_seconds_after_finished {
                out.requeue_at = Some(now + SignedDuration::from_secs(ttl.max(0)));
            }
        }
    } else if s.suspend {
        if set_condition(&mut conds, "Suspended", "True", "JobSuspended", "Job suspended", now) {
            out.events.push(("Normal", "Suspended", "Job suspended".to_string()));
        }
        delete.extend(active.iter().copied());
    } else {
        if start_time.is_none() {
            start_time = Some(now);
        }
        if cond_true(&conds, "Suspended").is_some() {
            set_condition(&mut conds, "Suspended", "False", "JobResumed", "Job resumed", now);
            out.events.push(("Normal", "Resumed", "Job resumed".to_string()));
            // activeDeadlineSeconds counts continuous activity.
            start_time = Some(now);
            if let Some(ads) = s.active_deadline_seconds {
                out.requeue_at = Some(now + SignedDuration::from_secs(ads.max(0)));
            }
        }
        manage(&s, &active, terminating, pods, &completed, succeeded_total, &mut delete, &mut out.create);
    }

    let deleted: HashSet<&str> = delete.iter().map(|p| util::uid(p)).collect();
    let still_active: Vec<&&Value> = active.iter().filter(|p| !deleted.contains(util::uid(p))).collect();
    let mut status = json!({
        "active": still_active.len() as i64 + out.create.len() as i64,
        "ready": still_active.iter().filter(|p| util::is_pod_ready(p)).count(),
        "terminating": terminating + deleted.len() as i64,
        "succeeded": succeeded,
        "failed": failed,
        "uncountedTerminatedPods": {},
    });
    if !unc_s.is_empty() {
        status["uncountedTerminatedPods"]["succeeded"] = json!(unc_s);
    }
    if !unc_f.is_empty() {
        status["uncountedTerminatedPods"]["failed"] = json!(unc_f);
    }
    if s.indexed {
        status["completedIndexes"] = json!(format_indexes(&completed));
    }
    if let Some(t) = start_time {
        status["startTime"] = json!(fmt_time(t));
    }
    if let Some(t) = completion_time {
        status["completionTime"] = json!(fmt_time(t));
    }
    if !conds.is_empty() {
        status["conditions"] = json!(conds);
    }
    out.status = status;
    out.release = release.into_iter().collect();
    out.delete = delete.iter().map(|p| util::name(p).to_string()).collect();
    out
}

/// Kubernetes' `MaxPodCreateDeletePerSync`: a huge `parallelism` ramps up over several syncs
/// (each creation's watch event triggers the next) instead of in one burst.
const MAX_CREATES_PER_SYNC: usize = 500;

/// Scales active pods toward `min(parallelism, remaining completions)`.
#[allow(clippy::too_many_arguments)]
fn manage<'a>(
    s: &JobSpec,
    active: &[&'a Value],
    terminating: i64,
    pods: &[&'a Value],
    completed: &BTreeSet<i64>,
    succeeded_total: i64,
    delete: &mut Vec<&'a Value>,
    create: &mut Vec<Option<i64>>,
) {
    if !s.indexed {
        let want = match s.completions {
            Some(c) => (c - succeeded_total).clamp(0, s.parallelism),
            // A work queue: once one pod succeeded, let the running ones finish, start none.
            None if succeeded_total > 0 => active.len() as i64,
            None => s.parallelism,
        };
        let have = active.len() as i64;
        if have > want {
            let mut sorted = active.to_vec();
            sorted.sort_by(least_progressed_first);
            delete.extend(sorted.into_iter().take((have - want) as usize));
        } else {
            let blocked = if s.replace_only_failed { terminating } else { 0 };
            let n = (want - have - blocked).clamp(0, MAX_CREATES_PER_SYNC as i64);
            create.extend(std::iter::repeat_n(None, n as usize));
        }
        return;
    }
    let completions = s.completions.unwrap_or(0);
    let mut by_index: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for p in active {
        match index_of(p).filter(|ix| *ix >= 0 && *ix < completions && !completed.contains(ix)) {
            Some(ix) => by_index.entry(ix).or_default().push(p),
            // Out of range, unreadable, or already done.
            None => delete.push(p),
        }
    }
    for ps in by_index.values_mut() {
        ps.sort_by(least_progressed_first);
        let keep = ps.pop();
        delete.append(ps);
        ps.extend(keep);
    }
    let want = (completions - completed.len() as i64).clamp(0, s.parallelism);
    let have = by_index.len() as i64;
    if have > want {
        let excess: Vec<i64> = by_index.keys().rev().take((have - want) as usize).copied().collect();
        for ix in excess {
            delete.extend(by_index.remove(&ix).unwrap_or_default());
        }
        return;
    }
    let terminating_ix: BTreeSet<i64> = if s.replace_only_failed {
        pods.iter().filter(|p| util::is_deleting(p) && !matches!(util::pod_phase(p), "Succeeded" | "Failed")).filter_map(|p| index_of(p)).collect()
    } else {
        BTreeSet::new()
    };
    let missing = (0..completions).filter(|ix| !completed.contains(ix) && !by_index.contains_key(ix) && !terminating_ix.contains(ix));
    create.extend(missing.take(((want - have) as usize).min(MAX_CREATES_PER_SYNC)).map(Some));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(spec: Value, status: Value) -> Value {
        let mut j = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": "job-uid"},
            "spec": {"template": {"metadata": {"labels": {"app": "pi"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "perl"}]}}},
            "status": status,
        });
        crate::testing::merge(&mut j, &json!({"spec": spec}));
        j
    }

    fn pod(name: &str, phase: &str, index: Option<i64>) -> Value {
        let mut p = json!({"metadata": {"name": name, "namespace": "default", "uid": format!("u-{name}"), "finalizers": [TRACKING_FINALIZER],
            "creationTimestamp": "2024-01-01T00:00:00Z", "labels": {CONTROLLER_UID_LABEL: "job-uid"}},
            "status": {"phase": phase}});
        if let Some(ix) = index {
            p["metadata"]["annotations"] = json!({COMPLETION_INDEX: ix.to_string()});
        }
        p
    }

    fn now() -> Timestamp {
        "2024-06-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn indexes_round_trip() {
        let cases = [("", vec![]), ("1", vec![1]), ("1,3-5,7", vec![1, 3, 4, 5, 7]), ("0-1", vec![0, 1]), ("2,0", vec![0, 2])];
        for (s, want) in cases {
            let got = parse_indexes(s);
            assert_eq!(got.iter().copied().collect::<Vec<_>>(), want, "{s}");
        }
        assert_eq!(format_indexes(&[1, 3, 4, 5, 7].into_iter().collect()), "1,3-5,7");
        assert_eq!(format_indexes(&[0, 1].into_iter().collect()), "0-1");
    }

    #[test]
    fn defaults() {
        let s = spec_of(&json!({"spec": {}}));
        assert_eq!((s.parallelism, s.completions, s.backoff_limit, s.indexed, s.replace_only_failed), (1, Some(1), 6, false, false));
        let s = spec_of(&json!({"spec": {"parallelism": 3}}));
        assert_eq!((s.parallelism, s.completions), (3, None));
    }

    #[test]
    fn plan_table() {
        struct Case {
            name: &'static str,
            spec: Value,
            status: Value,
            pods: Vec<Value>,
            creates: usize,
            deletes: Vec<&'static str>,
            release: Vec<&'static str>,
            check: fn(&Value),
        }
        let nothing: fn(&Value) = |_| {};
        let cases = vec![
            Case {
                name: "starts parallelism pods",
                spec: json!({"completions": 5, "parallelism": 2}),
                status: json!({}),
                pods: vec![],
                creates: 2,
                deletes: vec![],
                release: vec![],
                check: |s| {
                    assert_eq!(s["active"], 2);
                    assert!(s.get("startTime").is_some());
                },
            },
            Case {
                name: "never more than the remaining completions",
                spec: json!({"completions": 3, "parallelism": 3}),
                status: json!({"succeeded": 2}),
                pods: vec![],
                creates: 1,
                deletes: vec![],
                release: vec![],
                check: nothing,
            },
            Case {
                name: "a success is recorded as uncounted and released",
                spec: json!({"completions": 3, "parallelism": 1}),
                status: json!({}),
                pods: vec![pod("a", "Succeeded", None)],
                creates: 1,
                deletes: vec![],
                release: vec!["a"],
                check: |s| {
                    assert_eq!(s["succeeded"], 0);
                    assert_eq!(s["uncountedTerminatedPods"]["succeeded"], json!(["u-a"]));
                },
            },
            Case {
                name: "a released uid is counted",
                spec: json!({"completions": 3, "parallelism": 1}),
                status: json!({"uncountedTerminatedPods": {"succeeded": ["u-a"]}}),
                pods: vec![],
                creates: 1,
                deletes: vec![],
                release: vec![],
                check: |s| {
                    assert_eq!(s["succeeded"], 1);
                    assert_eq!(s["uncountedTerminatedPods"], json!({}));
                },
            },
            Case {
                name: "excess pods are deleted, least progressed first",
                spec: json!({"completions": 5, "parallelism": 1}),
                status: json!({}),
                pods: vec![pod("running", "Running", None), pod("pending", "Pending", None)],
                creates: 0,
                deletes: vec!["pending"],
                release: vec![],
                check: nothing,
            },
            Case {
                name: "backoff limit exceeded",
                spec: json!({"completions": 5, "parallelism": 2, "backoffLimit": 1}),
                status: json!({"failed": 1}),
                pods: vec![pod("f", "Failed", None), pod("r", "Running", None)],
                creates: 0,
                deletes: vec!["r"],
                release: vec!["f", "r"],
                check: |s| {
                    let c = &s["conditions"][0];
                    assert_eq!((c["type"].as_str(), c["reason"].as_str()), (Some("FailureTarget"), Some("BackoffLimitExceeded")));
                    assert_eq!(s["uncountedTerminatedPods"]["failed"], json!(["u-f", "u-r"]));
                },
            },
            Case {
                name: "OnFailure restarts count toward the limit",
                spec: json!({"backoffLimit": 2, "template": {"spec": {"restartPolicy": "OnFailure"}}}),
                status: json!({}),
                pods: vec![{
                    let mut p = pod("r", "Running", None);
                    p["status"]["containerStatuses"] = json!([{"name": "c", "restartCount": 2}]);
                    p
                }],
                creates: 0,
                deletes: vec!["r"],
                release: vec!["r"],
                check: |s| assert_eq!(s["conditions"][0]["reason"], "BackoffLimitExceeded"),
            },
            Case {
                name: "deadline exceeded",
                spec: json!({"activeDeadlineSeconds": 10}),
                status: json!({"startTime": "2024-05-31T23:59:00Z"}),
                pods: vec![pod("r", "Running", None)],
                creates: 0,
                deletes: vec!["r"],
                release: vec!["r"],
                check: |s| assert_eq!(s["conditions"][0]["reason"], "DeadlineExceeded"),
            },
            Case {
                name: "success then complete once settled",
                spec: json!({"completions": 1}),
                status: json!({"succeeded": 1, "conditions": [{"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "m"}]}),
                pods: vec![],
                creates: 0,
                deletes: vec![],
                release: vec![],
                check: |s| {
                    assert_eq!(s["conditions"][1]["type"], "Complete");
                    assert!(s.get("completionTime").is_some());
                    assert_eq!(s["active"], 0);
                },
            },
            Case {
                name: "work queue: done when one succeeded and none runs",
                spec: json!({"parallelism": 2}),
                status: json!({"succeeded": 1}),
                pods: vec![],
                creates: 0,
                deletes: vec![],
                release: vec![],
                check: |s| assert_eq!(s["conditions"][0]["type"], "SuccessCriteriaMet"),
            },
            Case {
                name: "work queue: no new pods after a success",
                spec: json!({"parallelism": 3}),
                status: json!({"succeeded": 1}),
                pods: vec![pod("r", "Running", None)],
                creates: 0,
                deletes: vec![],
                release: vec![],
                check: |s| assert!(s.get("conditions").is_none()),
            },
            Case {
                name: "suspend deletes running pods",
                spec: json!({"suspend": true, "parallelism": 2, "completions": 4}),
                status: json!({"startTime": "2024-05-31T23:59:00Z"}),
                pods: vec![pod("a", "Running", None), pod("b", "Pending", None)],
                creates: 0,
                deletes: vec!["a", "b"],
                release: vec![],
                check: |s| {
                    assert_eq!(s["conditions"][0]["type"], "Suspended");
                    assert_eq!(s["conditions"][0]["status"], "True");
                    assert_eq!(s["active"], 0);
                },
            },
            Case {
                name: "a deleted unfinished pod counts as failed and is replaced",
                spec: json!({"completions": 2}),
                status: json!({}),
                pods: vec![{
                    let mut p = pod("d", "Running", None);
                    p["metadata"]["deletionTimestamp"] = json!("2024-05-31T23:59:00Z");
                    p
                }],
                creates: 1,
                deletes: vec![],
                release: vec!["d"],
                check: |s| {
                    assert_eq!(s["uncountedTerminatedPods"]["failed"], json!(["u-d"]));
                    assert_eq!(s["terminating"], 1);
                },
            },
            Case {
                name: "podReplacementPolicy Failed waits for terminating pods",
                spec: json!({"completions": 2, "podReplacementPolicy": "Failed"}),
                status: json!({}),
                pods: vec![{
                    let mut p = pod("d", "Running", None);
                    p["metadata"]["deletionTimestamp"] = json!("2024-05-31T23:59:00Z");
                    p
                }],
                creates: 0,
                deletes: vec![],
                release: vec!["d"],
                check: nothing,
            },
            Case {
                name: "indexed: creates the lowest missing indexes",
                spec: json!({"completions": 4, "parallelism": 2, "completionMode": "Indexed"}),
                status: json!({"completedIndexes": "0"}),
                pods: vec![pod("i2", "Running", Some(2))],
                creates: 1,
                deletes: vec![],
                release: vec![],
                check: |s| assert_eq!(s["completedIndexes"], "0"),
            },
            Case {
                name: "indexed: duplicates and completed indexes are removed",
                spec: json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"}),
                status: json!({"completedIndexes": "0"}),
                pods: vec![pod("i0", "Running", Some(0)), pod("i1a", "Running", Some(1)), pod("i1b", "Pending", Some(1)), pod("i9", "Running", Some(9))],
                creates: 1,
                deletes: vec!["i0", "i9", "i1b"],
                release: vec![],
                check: nothing,
            },
            Case {
                name: "indexed: success of every index",
                spec: json!({"completions": 2, "parallelism": 2, "completionMode": "Indexed"}),
                status: json!({"completedIndexes": "0"}),
                pods: vec![pod("i1", "Succeeded", Some(1))],
                creates: 0,
                deletes: vec![],
                release: vec!["i1"],
                check: |s| {
                    assert_eq!(s["completedIndexes"], "0-1");
                    assert_eq!(s["conditions"][0]["type"], "SuccessCriteriaMet");
                },
            },
        ];
        for c in cases {
            let j = job(c.spec, c.status);
            let refs: Vec<&Value> = c.pods.iter().collect();
            let p = plan(&j, &refs, now());
            assert_eq!(p.create.len(), c.creates, "{}: creates", c.name);
            assert_eq!(p.delete, c.deletes, "{}: deletes", c.name);
            assert_eq!(p.release, c.release, "{}: release", c.name);
            (c.check)(&p.status);
        }
    }

    #[test]
    fn finished_jobs_wait_for_their_ttl() {
        let status = json!({"conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": "2024-05-31T23:59:30Z"}]});
        let j = job(json!({"ttlSecondsAfterFinished": 60}), status.clone());
        let p = plan(&j, &[], now());
        assert!(!p.delete_job);
        assert_eq!(p.requeue_at, Some("2024-06-01T00:00:30Z".parse().unwrap()));
        let j = job(json!({"ttlSecondsAfterFinished": 10}), status);
        assert!(plan(&j, &[], now()).delete_job);
    }

    #[test]
    fn indexed_pod_shape() {
        let j = job(json!({"completionMode": "Indexed", "completions": 3}), json!({}));
        let p = new_pod(&j, Some(2));
        assert_eq!(p.pointer("/metadata/generateName"), Some(&json!("pi-2-")));
        assert_eq!(p.pointer("/spec/hostname"), Some(&json!("pi-2")));
        assert_eq!(index_of(&p), Some(2));
        assert_eq!(p.pointer("/metadata/labels/batch.kubernetes.io~1job-completion-index"), Some(&json!("2")));
        assert_eq!(p.pointer("/metadata/labels/job-name"), Some(&json!("pi")));
        assert_eq!(p.pointer("/metadata/labels/batch.kubernetes.io~1controller-uid"), Some(&json!("job-uid")));
        assert_eq!(p.pointer("/metadata/finalizers/0"), Some(&json!(TRACKING_FINALIZER)));
        assert_eq!(p.pointer("/spec/containers/0/env/0/name"), Some(&json!("JOB_COMPLETION_INDEX")));
    }
}
