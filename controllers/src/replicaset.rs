//! The ReplicaSet controller (apps/v1): keeps `spec.replicas` active pods matching the
//! selector, as Kubernetes' replicaset controller does.
//!
//! A sync claims the pods of the ReplicaSet's namespace (adopting matching orphans, releasing
//! owned pods that no longer match), creates or deletes the difference, and writes the status.
//! Writes are tracked with [`Expectations`] so that a sync running before the informer has seen
//! earlier creations or deletions does not act on them twice; creations go out in slow-start
//! batches (1, 2, 4, ...) so a failing template produces one error, not hundreds.

mod expectations;
mod ranking;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use apimachinery::selector::{LabelSelector, from_label_selector_object, labels_of};
use apimachinery::status::ApiError;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;

use crate::client::{Client, DeleteOptions, Resource, res};
use crate::events::Recorder;
use crate::informer::{Change, Informer, key_of};
use crate::queue::WorkQueue;
use crate::{Ctx, util};

pub use expectations::{EXPECTATIONS_TTL, Expectations};
pub use ranking::{POD_DELETION_COST, deletion_cost, deletion_order, pods_to_delete};

/// At most this many pods are created or deleted by one sync (Kubernetes' burstReplicas).
pub const BURST_REPLICAS: usize = 500;
/// The first slow-start batch; each later batch doubles.
pub const SLOW_START_INITIAL_BATCH: usize = 1;
const WORKERS: usize = 5;
const COMPONENT: &str = "replicaset-controller";

pub fn pods_resource() -> Resource {
    res("", "pods")
}

pub fn replicasets_resource() -> Resource {
    res("apps", "replicasets")
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Api(#[from] ApiError),
}

// ---------------------------------------------------------------------------------------------
// Helpers shared with the Deployment controller.

/// Kubernetes counts in int32: values outside (which validation rejects) are clamped, so sums
/// and products of them cannot overflow.
fn int32(v: i64) -> i64 {
    v.clamp(i32::MIN as i64, i32::MAX as i64)
}

/// `spec.replicas`, defaulted to 1 as the API server does; negative values (invalid) count as 0.
pub fn spec_replicas(o: &Value) -> i64 {
    match o.pointer("/spec/replicas") {
        None | Some(Value::Null) => 1,
        Some(v) => int32(v.as_i64().unwrap_or(1)).max(0),
    }
}

/// An integer field of `status`, 0 when absent.
pub fn status_count(o: &Value, field: &str) -> i64 {
    int32(o.get("status").and_then(|s| s.get(field)).and_then(|v| v.as_i64()).unwrap_or(0))
}

pub fn generation(o: &Value) -> i64 {
    o.pointer("/metadata/generation").and_then(|g| g.as_i64()).unwrap_or(0)
}

/// Objects from a list carry no `apiVersion`/`kind`; owner references and events need them.
pub fn with_type_meta(obj: &Value, api_version: &str, kind: &str) -> Value {
    let mut o = obj.clone();
    if let Value::Object(m) = &mut o {
        if m.get("apiVersion").and_then(|v| v.as_str()).is_none_or(|s| s.is_empty()) {
            m.insert("apiVersion".into(), json!(api_version));
        }
        if m.get("kind").and_then(|v| v.as_str()).is_none_or(|s| s.is_empty()) {
            m.insert("kind".into(), json!(kind));
        }
    }
    o
}

/// A mutable object at `v`, replacing whatever else is there.
pub(crate) fn object_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// A mutable object under `key` of `v`, created (or replacing a non-object) as needed.
pub(crate) fn child_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    let child = object_mut(v).entry(key.to_string()).or_insert_with(|| json!({}));
    object_mut(child);
    child
}

/// A merge patch turning object `old` into `new` at the top level: keys of `old` missing from
/// `new` become null so the patch removes them.
pub fn replacing_patch(old: Option<&Value>, new: &Value) -> Value {
    let mut patch = new.clone();
    if let (Some(Value::Object(old)), Value::Object(p)) = (old, &mut patch) {
        for k in old.keys() {
            if !p.contains_key(k) {
                p.insert(k.clone(), Value::Null);
            }
        }
    }
    patch
}

/// What a controller does with one candidate object (Kubernetes' ControllerRefManager).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours and still selected.
    Owned,
    /// An orphan we select: take ownership.
    Adopt,
    /// Ours but no longer selected: give it up.
    Release,
    /// Someone else's, or not ours to touch now.
    Ignore,
}

/// The claim decision for `obj` by `controller`, given whether the selector matches `obj`.
/// A controller being deleted keeps what it owns but neither adopts nor releases, so the
/// garbage collector sees a stable set of dependents.
pub fn claim(controller: &Value, obj: &Value, selected: bool) -> Claim {
    let ours = util::uid(controller);
    match util::controller_of(obj) {
        Some(r) => {
            if ours.is_empty() || r.get("uid").and_then(|u| u.as_str()) != Some(ours) {
                Claim::Ignore
            } else if selected {
                Claim::Owned
            } else if util::is_deleting(controller) {
                Claim::Ignore
            } else {
                Claim::Release
            }
        }
        None => {
            let adoptable = !ours.is_empty()
                && !util::is_deleting(controller)
                && selected
                && !util::is_deleting(obj)
                && util::namespace(controller) == util::namespace(obj);
            if adoptable { Claim::Adopt } else { Claim::Ignore }
        }
    }
}

fn owner_refs(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/ownerReferences").and_then(|r| r.as_array()).cloned().unwrap_or_default()
}

/// Adds `owner_ref` to `obj`'s ownerReferences, conditionally on the revision we read, so an
/// object claimed by someone else meanwhile is not double-owned. `Ok(None)` if it is gone.
pub async fn adopt(client: &dyn Client, resource: Resource, obj: &Value, owner_ref: Value) -> Result<Option<Value>, ApiError> {
    let mut refs = owner_refs(obj);
    refs.retain(|r| r.get("uid") != owner_ref.get("uid"));
    refs.push(owner_ref);
    let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": obj.pointer("/metadata/resourceVersion")}});
    let ns = Some(util::namespace(obj)).filter(|n| !n.is_empty());
    match client.merge_patch(resource, ns, util::name(obj), patch).await {
        Ok(v) => Ok(Some(v)),
        Err(ApiError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes the ownerReference with `owner_uid` from `obj`. A vanished object is not an error.
pub async fn release(client: &dyn Client, resource: Resource, obj: &Value, owner_uid: &str) -> Result<(), ApiError> {
    let mut refs = owner_refs(obj);
    refs.retain(|r| r.get("uid").and_then(|u| u.as_str()) != Some(owner_uid));
    let refs = if refs.is_empty() { Value::Null } else { Value::Array(refs) };
    let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": obj.pointer("/metadata/resourceVersion")}});
    let ns = Some(util::namespace(obj)).filter(|n| !n.is_empty());
    match client.merge_patch(resource, ns, util::name(obj), patch).await {
        Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// An API error saying the namespace is being deleted: creating in it is pointless, not a
/// failure to report.
pub fn namespace_terminating(e: &ApiError) -> bool {
    matches!(e, ApiError::Forbidden(m) if m.contains("being terminated"))
}

/// Batch sizes for creating `count` objects: `initial`, then doubling, never past the total.
pub fn slow_start_batches(count: usize, initial: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut remaining = count;
    let mut batch = initial.max(1).min(remaining);
    while batch > 0 {
        out.push(batch);
        remaining -= batch;
        batch = (2 * batch).min(remaining);
    }
    out
}

/// Runs `f` `count` times in slow-start batches, stopping after the first batch with an error.
/// Returns how many calls succeeded and the first error.
pub async fn slow_start<F, Fut, E>(count: usize, initial: usize, f: F) -> (usize, Option<E>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut ok = 0;
    for batch in slow_start_batches(count, initial) {
        let mut first_err = None;
        for r in futures::future::join_all((0..batch).map(|_| f())).await {
            match r {
                Ok(()) => ok += 1,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if first_err.is_some() {
            return (ok, first_err);
        }
    }
    (ok, None)
}

// ---------------------------------------------------------------------------------------------
// Pure pieces of a ReplicaSet sync.

/// The pod a ReplicaSet creates: its template, named `<rs>-<random>`, controlled by it.
pub fn pod_from_template(rs: &Value) -> Value {
    let rs = with_type_meta(rs, "apps/v1", "ReplicaSet");
    let template = rs.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    let mut meta = Map::new();
    meta.insert("generateName".into(), json!(format!("{}-", util::name(&rs))));
    meta.insert("namespace".into(), json!(util::namespace(&rs)));
    for field in ["labels", "annotations", "finalizers"] {
        if let Some(v) = template.pointer(&format!("/metadata/{field}")).filter(|v| !v.is_null()) {
            meta.insert(field.into(), v.clone());
        }
    }
    meta.insert("ownerReferences".into(), json!([util::controller_ref(&rs)]));
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    })
}

fn template_labels(rs: &Value) -> BTreeMap<String, String> {
    rs.pointer("/spec/template/metadata/labels")
        .and_then(|l| l.as_object())
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default()
}

pub fn min_ready_seconds(o: &Value) -> i64 {
    int32(o.pointer("/spec/minReadySeconds").and_then(|m| m.as_i64()).unwrap_or(0)).max(0)
}

pub fn conditions(o: &Value) -> Vec<Value> {
    o.pointer("/status/conditions").and_then(|c| c.as_array()).cloned().unwrap_or_default()
}

pub fn condition_type(c: &Value) -> &str {
    c.get("type").and_then(|t| t.as_str()).unwrap_or("")
}

/// The status a ReplicaSet should report for its claimed active `pods`, given the error (if
/// any) of this sync's creations or deletions.
pub fn calculate_status(rs: &Value, pods: &[&Value], manage_error: Option<&str>, now: jiff::Timestamp) -> Value {
    let want = template_labels(rs);
    let min_ready = min_ready_seconds(rs);
    let fully_labeled = pods.iter().filter(|p| {
        let have = labels_of(p);
        want.iter().all(|(k, v)| have.get(k) == Some(v))
    });
    let ready = pods.iter().filter(|p| util::is_pod_ready(p)).count();
    let available = pods.iter().filter(|p| util::is_pod_available(p, min_ready, now)).count();

    let mut conds = conditions(rs);
    let has_failure = conds.iter().any(|c| condition_type(c) == "ReplicaFailure");
    match manage_error {
        Some(msg) if !has_failure => {
            let diff = pods.len() as i64 - spec_replicas(rs);
            let reason = match diff.signum() {
                -1 => "FailedCreate",
                1 => "FailedDelete",
                _ => "",
            };
            conds.push(json!({
                "type": "ReplicaFailure",
                "status": "True",
                "lastTransitionTime": util::timestamp(now),
                "reason": reason,
                "message": msg,
            }));
        }
        None if has_failure => conds.retain(|c| condition_type(c) != "ReplicaFailure"),
        _ => {}
    }

    let mut status = json!({
        "replicas": pods.len(),
        "fullyLabeledReplicas": fully_labeled.count(),
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": generation(rs),
    });
    if !conds.is_empty() {
        status["conditions"] = Value::Array(conds);
    }
    status
}

/// Whether `new` differs from what `rs` reports (so a write is needed).
pub fn status_changed(rs: &Value, new: &Value) -> bool {
    let counts = ["replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas"];
    let new_count = |f: &str| new.get(f).and_then(|v| v.as_i64()).unwrap_or(0);
    counts.iter().any(|f| status_count(rs, f) != new_count(f))
        || status_count(rs, "observedGeneration") != generation(rs)
        || conditions(rs) != new.get("conditions").and_then(|c| c.as_array()).cloned().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The controller.

pub struct ReplicaSetController {
    client: Arc<dyn Client>,
    pods: Arc<Informer>,
    rss: Arc<Informer>,
    pub queue: WorkQueue,
    pub expectations: Expectations,
    recorder: Recorder,
}

/// Runs the ReplicaSet controller until aborted.
pub async fn run(ctx: Arc<Ctx>) {
    ReplicaSetController::new(&ctx).run().await
}

fn is_rs_ref(r: &Value) -> bool {
    r.get("kind").and_then(|k| k.as_str()) == Some("ReplicaSet") && r.get("apiVersion").and_then(|a| a.as_str()).is_none_or(|a| a.starts_with("apps/"))
}

impl ReplicaSetController {
    pub fn new(ctx: &Ctx) -> Arc<ReplicaSetController> {
        Arc::new(ReplicaSetController {
            client: ctx.client.clone(),
            pods: ctx.informers.get(pods_resource()),
            rss: ctx.informers.get(replicasets_resource()),
            queue: WorkQueue::new(),
            expectations: Expectations::new(),
            recorder: ctx.recorder(COMPONENT),
        })
    }

    /// Waits for the caches, then handles changes and syncs queued ReplicaSets until aborted
    /// (the workers are aborted with it).
    pub async fn run(self: Arc<Self>) {
        let mut pod_rx = self.pods.subscribe();
        let mut rs_rx = self.rss.subscribe();
        self.pods.synced().await;
        self.rss.synced().await;
        self.enqueue_all();
        let mut workers = JoinSet::new();
        for _ in 0..WORKERS {
            let c = self.clone();
            workers.spawn(async move { c.worker().await });
        }
        loop {
            tokio::select! {
                r = pod_rx.recv() => match r {
                    Ok(ch) => self.on_pod_change(ch),
                    // Missed changes: every ReplicaSet may be affected.
                    Err(RecvError::Lagged(_)) => self.enqueue_all(),
                    Err(RecvError::Closed) => break,
                },
                r = rs_rx.recv() => match r {
                    Ok(ch) => self.on_rs_change(ch),
                    Err(RecvError::Lagged(_)) => self.enqueue_all(),
                    Err(RecvError::Closed) => break,
                },
            }
        }
    }

    async fn worker(self: Arc<Self>) {
        loop {
            let key = self.queue.next().await;
            match self.sync(&key).await {
                Ok(()) => self.queue.forget(&key),
                Err(e) => {
                    tracing::debug!(replicaset = %key, error = %e, "sync failed; retrying");
                    self.queue.add_rate_limited(key.clone());
                }
            }
            self.queue.done(&key);
        }
    }

    fn enqueue_all(&self) {
        for rs in self.rss.list() {
            self.queue.add(key_of(&rs));
        }
    }

    /// The ReplicaSet a controller reference points to, if it still is that object.
    fn resolve(&self, ns: &str, r: &Value) -> Option<(String, Arc<Value>)> {
        if !is_rs_ref(r) {
            return None;
        }
        let key = format!("{ns}/{}", r.get("name").and_then(|n| n.as_str())?);
        let rs = self.rss.get(&key)?;
        (r.get("uid").and_then(|u| u.as_str()) == Some(util::uid(&rs))).then_some((key, rs))
    }

    /// ReplicaSets whose selector matches an orphan pod: they may want to adopt it.
    fn selecting(&self, pod: &Value) -> Vec<String> {
        self.rss
            .list_namespace(util::namespace(pod))
            .iter()
            .filter(|rs| util::selector_matches(rs.pointer("/spec/selector"), pod))
            .map(|rs| key_of(rs))
            .collect()
    }

    fn on_rs_change(&self, ch: Change) {
        match (&ch.old, &ch.new) {
            (_, None) => self.expectations.delete(&ch.key),
            (Some(old), Some(new)) if util::uid(old) != util::uid(new) => self.expectations.delete(&ch.key),
            _ => {}
        }
        self.queue.add(ch.key);
    }

    fn on_pod_change(&self, ch: Change) {
        match (ch.old.as_deref(), ch.new.as_deref()) {
            (None, Some(new)) => self.pod_added(new),
            (Some(old), Some(new)) => self.pod_updated(old, new),
            (Some(old), None) => self.pod_deleted(old),
            (None, None) => {}
        }
    }

    fn pod_added(&self, pod: &Value) {
        if util::is_deleting(pod) {
            // Seen for the first time already terminating (e.g. after a relist): it is a
            // deletion to observe, not a creation.
            self.pod_deleted(pod);
            return;
        }
        if let Some(r) = util::controller_of(pod) {
            if let Some((key, _)) = self.resolve(util::namespace(pod), r) {
                self.expectations.creation_observed(&key);
                self.queue.add(key);
            }
            return;
        }
        for key in self.selecting(pod) {
            self.queue.add(key);
        }
    }

    fn pod_updated(&self, old: &Value, cur: &Value) {
        let rv = |p: &Value| p.pointer("/metadata/resourceVersion").cloned();
        if rv(old) == rv(cur) {
            return;
        }
        let labels_changed = labels_of(old) != labels_of(cur);
        if util::is_deleting(cur) {
            // A pod with a deletionTimestamp is as good as gone for counting replicas; waiting
            // for the final delete would stall replacements by the grace period.
            self.pod_deleted(cur);
            if labels_changed {
                self.pod_deleted(old);
            }
            return;
        }
        let ns = util::namespace(cur);
        let (old_ref, cur_ref) = (util::controller_of(old), util::controller_of(cur));
        let ref_changed = old_ref != cur_ref;
        if ref_changed
            && let Some(r) = old_ref
            && let Some((key, _)) = self.resolve(ns, r)
        {
            self.queue.add(key);
        }
        if let Some(r) = cur_ref {
            if let Some((key, rs)) = self.resolve(ns, r) {
                let min_ready = min_ready_seconds(&rs);
                if min_ready > 0 && !util::is_pod_ready(old) && util::is_pod_ready(cur) {
                    // It becomes available only later; look again then.
                    self.queue.add_after(key.clone(), Duration::from_secs(min_ready as u64 + 1));
                }
                self.queue.add(key);
            }
            return;
        }
        if labels_changed || ref_changed {
            for key in self.selecting(cur) {
                self.queue.add(key);
            }
        }
    }

    fn pod_deleted(&self, pod: &Value) {
        let Some(r) = util::controller_of(pod) else { return };
        if let Some((key, _)) = self.resolve(util::namespace(pod), r) {
            self.expectations.deletion_observed(&key, &key_of(pod));
            self.queue.add(key);
        }
    }

    /// Active pods in the namespace of every ReplicaSet controlled by the same owner as `rs`
    /// (its Deployment's other ReplicaSets), for spreading deletions across nodes.
    fn related_pods(&self, rs: &Value) -> Vec<Arc<Value>> {
        let Some(owner) = util::controller_of(rs).and_then(|r| r.get("uid")).and_then(|u| u.as_str()) else { return Vec::new() };
        let ns = util::namespace(rs);
        let siblings: Vec<Arc<Value>> = self
            .rss
            .list_namespace(ns)
            .into_iter()
            .filter(|o| util::controller_of(o).and_then(|r| r.get("uid")).and_then(|u| u.as_str()) == Some(owner))
            .collect();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for pod in self.pods.list_namespace(ns) {
            if siblings.iter().any(|s| util::selector_matches(s.pointer("/spec/selector"), &pod)) && seen.insert(util::uid(&pod).to_string()) {
                out.push(pod);
            }
        }
        out
    }

    /// Reconciles one ReplicaSet (`namespace/name`).
    pub async fn sync(&self, key: &str) -> Result<(), Error> {
        let Some(cached) = self.rss.get(key) else {
            self.expectations.delete(key);
            return Ok(());
        };
        let rs = with_type_meta(&cached, "apps/v1", "ReplicaSet");
        let needs_sync = self.expectations.satisfied(key);
        let selector = match from_label_selector_object(rs.pointer("/spec/selector")) {
            Ok(s) => s,
            Err(e) => {
                // Validation keeps bad selectors out; retrying would not fix one.
                tracing::warn!(replicaset = %key, error = %e, "invalid selector");
                return Ok(());
            }
        };
        let active: Vec<Arc<Value>> = self.pods.list_namespace(util::namespace(&rs)).into_iter().filter(|p| util::is_pod_active(p)).collect();
        let owned = self.claim_pods(&rs, &selector, active).await?;
        let owned_refs: Vec<&Value> = owned.iter().map(|p| p.as_ref()).collect();

        let manage_error = if needs_sync && !util::is_deleting(&rs) { self.manage_replicas(&rs, key, &owned_refs).await.err() } else { None };

        let now = util::now();
        let status = calculate_status(&rs, &owned_refs, manage_error.as_ref().map(|e| e.to_string()).as_deref(), now);
        if status_changed(&rs, &status) {
            let patch = json!({"status": replacing_patch(rs.get("status"), &status)});
            self.client.merge_patch_status(replicasets_resource(), Some(util::namespace(&rs)), util::name(&rs), patch).await?;
        }
        let min_ready = min_ready_seconds(&rs);
        let want = spec_replicas(&rs);
        if manage_error.is_none() && min_ready > 0 && status_count(&status, "readyReplicas") == want && status_count(&status, "availableReplicas") != want {
            self.queue.add_after(key.to_string(), Duration::from_secs(min_ready as u64));
        }
        match manage_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn claim_pods(&self, rs: &Value, selector: &LabelSelector, pods: Vec<Arc<Value>>) -> Result<Vec<Arc<Value>>, Error> {
        let mut owned = Vec::new();
        let mut first_err = None;
        for pod in pods {
            let selected = !selector.is_empty() && selector.matches_object(&pod);
            let result = match claim(rs, &pod, selected) {
                Claim::Owned => {
                    owned.push(pod);
                    Ok(())
                }
                Claim::Adopt => match adopt(self.client.as_ref(), pods_resource(), &pod, util::controller_ref(rs)).await {
                    Ok(Some(adopted)) => {
                        owned.push(Arc::new(adopted));
                        Ok(())
                    }
                    Ok(None) => Ok(()),
                    Err(e) => Err(e),
                },
                Claim::Release => release(self.client.as_ref(), pods_resource(), &pod, util::uid(rs)).await,
                Claim::Ignore => Ok(()),
            };
            if let Err(e) = result {
                first_err.get_or_insert(e);
            }
        }
        // A failed claim leaves the set of pods uncertain: counting without it could create or
        // delete the wrong number.
        match first_err {
            Some(e) => Err(e.into()),
            None => Ok(owned),
        }
    }

    async fn manage_replicas(&self, rs: &Value, key: &str, pods: &[&Value]) -> Result<(), Error> {
        let want = spec_replicas(rs) as usize;
        let have = pods.len();
        if have < want {
            let n = (want - have).min(BURST_REPLICAS);
            self.expectations.expect_creations(key, n);
            let pod = pod_from_template(rs);
            let (created, err) = slow_start(n, SLOW_START_INITIAL_BATCH, || self.create_pod(rs, pod.clone())).await;
            // Creations that failed or were never attempted will never be observed.
            for _ in created..n {
                self.expectations.creation_observed(key);
            }
            return err.map_or(Ok(()), Err);
        }
        if have > want {
            let n = (have - want).min(BURST_REPLICAS);
            let related = self.related_pods(rs);
            let related: Vec<&Value> = related.iter().map(|p| p.as_ref()).collect();
            let victims = pods_to_delete(pods, &related, n, util::now());
            let victim_keys: Vec<String> = victims.iter().map(|p| key_of(p)).collect();
            self.expectations.expect_deletions(key, &victim_keys);
            let results = futures::future::join_all(victims.iter().map(|p| self.delete_pod(rs, p))).await;
            let mut first_err = None;
            for (pod_key, r) in victim_keys.iter().zip(results) {
                if let Err(e) = r {
                    // This deletion will not be observed (or already was).
                    self.expectations.deletion_observed(key, pod_key);
                    if !matches!(e, ApiError::NotFound { .. }) {
                        first_err.get_or_insert(e);
                    }
                }
            }
            return first_err.map_or(Ok(()), |e| Err(e.into()));
        }
        Ok(())
    }

    async fn create_pod(&self, rs: &Value, pod: Value) -> Result<(), Error> {
        match self.client.create(pods_resource(), Some(util::namespace(rs)), pod).await {
            Ok(created) => {
                self.recorder.event(rs, "Normal", "SuccessfulCreate", &format!("Created pod: {}", util::name(&created))).await;
                Ok(())
            }
            Err(e) if namespace_terminating(&e) => Ok(()),
            Err(e) => {
                self.recorder.event(rs, "Warning", "FailedCreate", &format!("Error creating: {e}")).await;
                Err(e.into())
            }
        }
    }

    async fn delete_pod(&self, rs: &Value, pod: &Value) -> Result<(), ApiError> {
        let opts = DeleteOptions { uid: Some(util::uid(pod).to_string()).filter(|u| !u.is_empty()), ..Default::default() };
        match self.client.delete(pods_resource(), Some(util::namespace(pod)), util::name(pod), opts).await {
            Ok(()) => {
                self.recorder.event(rs, "Normal", "SuccessfulDelete", &format!("Deleted pod: {}", util::name(pod))).await;
                Ok(())
            }
            // A uid mismatch means our pod is gone and another took its name.
            Err(ApiError::NotFound { .. } | ApiError::Conflict { .. }) => {
                Err(ApiError::NotFound { group_resource: "pods".into(), name: util::name(pod).into() })
            }
            Err(e) => {
                self.recorder.event(rs, "Warning", "FailedDelete", &format!("Error deleting: {e}")).await;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(replicas: Option<i64>) -> Value {
        let mut v = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web", "namespace": "ns", "uid": "rs-uid", "generation": 3},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}, "annotations": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
        });
        if let Some(r) = replicas {
            v["spec"]["replicas"] = json!(r);
        }
        v
    }

    fn pod(name: &str, labels: Value, ready: bool, owner: Option<&str>) -> Value {
        let mut p = json!({"metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": labels}, "status": {"phase": "Running"}});
        if ready {
            p["status"]["conditions"] = json!([{"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]);
        }
        if let Some(o) = owner {
            p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": o, "controller": true}]);
        }
        p
    }

    #[test]
    fn slow_start_batches_table() {
        let cases: &[(usize, usize, &[usize])] = &[
            (0, 1, &[]),
            (1, 1, &[1]),
            (2, 1, &[1, 1]),
            (3, 1, &[1, 2]),
            (10, 1, &[1, 2, 4, 3]),
            (16, 1, &[1, 2, 4, 8, 1]),
            (5, 0, &[1, 2, 2]),
            (7, 4, &[4, 3]),
        ];
        for (count, initial, want) in cases {
            assert_eq!(slow_start_batches(*count, *initial), want.to_vec(), "count {count} initial {initial}");
        }
    }

    #[tokio::test]
    async fn slow_start_stops_after_a_failing_batch() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let (ok, err) = slow_start(20, 1, || {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { if n >= 2 { Err("quota") } else { Ok(()) } }
        })
        .await;
        // Batches 1 and 2: the first call succeeds, then one of the two in batch 2 fails.
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(ok, 2);
        assert_eq!(err, Some("quota"));
    }

    #[test]
    fn spec_replicas_defaults() {
        assert_eq!(spec_replicas(&rs(None)), 1);
        assert_eq!(spec_replicas(&rs(Some(0))), 0);
        assert_eq!(spec_replicas(&rs(Some(-3))), 0);
        assert_eq!(spec_replicas(&json!({"spec": {"replicas": "x"}})), 1);
    }

    #[test]
    fn claim_table() {
        let ours = rs(Some(1));
        let mut deleting = ours.clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2020-01-01T00:00:00Z");
        let orphan = pod("a", json!({"app": "web"}), false, None);
        let mut orphan_deleting = orphan.clone();
        orphan_deleting["metadata"]["deletionTimestamp"] = json!("2020-01-01T00:00:00Z");
        let mut orphan_elsewhere = orphan.clone();
        orphan_elsewhere["metadata"]["namespace"] = json!("other");
        let owned = pod("b", json!({"app": "web"}), false, Some("rs-uid"));
        let foreign = pod("c", json!({"app": "web"}), false, Some("someone-else"));
        let cases = [
            ("orphan selected", &ours, &orphan, true, Claim::Adopt),
            ("orphan not selected", &ours, &orphan, false, Claim::Ignore),
            ("orphan being deleted", &ours, &orphan_deleting, true, Claim::Ignore),
            ("orphan in another namespace", &ours, &orphan_elsewhere, true, Claim::Ignore),
            ("controller being deleted does not adopt", &deleting, &orphan, true, Claim::Ignore),
            ("owned and selected", &ours, &owned, true, Claim::Owned),
            ("owned, no longer selected", &ours, &owned, false, Claim::Release),
            ("owned while being deleted keeps", &deleting, &owned, true, Claim::Owned),
            ("owned while being deleted does not release", &deleting, &owned, false, Claim::Ignore),
            ("someone else's", &ours, &foreign, true, Claim::Ignore),
        ];
        for (name, c, o, sel, want) in cases {
            assert_eq!(claim(c, o, sel), want, "{name}");
        }
    }

    #[test]
    fn pod_from_template_shape() {
        let p = pod_from_template(&rs(Some(2)));
        assert_eq!(p["metadata"]["generateName"], "web-");
        assert_eq!(p["metadata"]["namespace"], "ns");
        assert_eq!(p["metadata"]["labels"], json!({"app": "web", "tier": "fe"}));
        assert_eq!(p["metadata"]["annotations"], json!({"a": "b"}));
        assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], "rs-uid");
        assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
        assert_eq!(p["spec"]["containers"][0]["image"], "nginx");
        // Odd shapes give a pod anyway, never a panic.
        let odd = pod_from_template(&json!({"metadata": 5, "spec": {"template": "x"}}));
        assert_eq!(odd["kind"], "Pod");
    }

    #[test]
    fn status_table() {
        let now = jiff::Timestamp::now();
        let ready_full = pod("a", json!({"app": "web", "tier": "fe"}), true, Some("rs-uid"));
        let ready_partial = pod("b", json!({"app": "web"}), true, Some("rs-uid"));
        let unready = pod("c", json!({"app": "web", "tier": "fe"}), false, Some("rs-uid"));
        let s = calculate_status(&rs(Some(3)), &[&ready_full, &ready_partial, &unready], None, now);
        assert_eq!(s["replicas"], 3);
        assert_eq!(s["fullyLabeledReplicas"], 2);
        assert_eq!(s["readyReplicas"], 2);
        assert_eq!(s["availableReplicas"], 2);
        assert_eq!(s["observedGeneration"], 3);
        assert!(s.get("conditions").is_none());

        // minReadySeconds: ready since 2020 is long enough; a pod ready just now is not.
        let mut slow = rs(Some(2));
        slow["spec"]["minReadySeconds"] = json!(30);
        let mut fresh = ready_full.clone();
        fresh["status"]["conditions"][0]["lastTransitionTime"] = json!(util::timestamp(now));
        let s = calculate_status(&slow, &[&ready_full, &fresh], None, now);
        assert_eq!((s["readyReplicas"].as_i64(), s["availableReplicas"].as_i64()), (Some(2), Some(1)));

        // A create error adds ReplicaFailure/FailedCreate; a clean sync removes it.
        let failing = rs(Some(3));
        let s = calculate_status(&failing, &[&ready_full], Some("quota exceeded"), now);
        assert_eq!(s["conditions"][0]["type"], "ReplicaFailure");
        assert_eq!(s["conditions"][0]["reason"], "FailedCreate");
        assert_eq!(s["conditions"][0]["message"], "quota exceeded");
        let mut with_failure = failing.clone();
        with_failure["status"] = s.clone();
        let again = calculate_status(&with_failure, &[&ready_full], Some("other error"), now);
        assert_eq!(again["conditions"], s["conditions"], "an existing failure condition is kept as is");
        let healed = calculate_status(&with_failure, &[&ready_full], None, now);
        assert!(healed.get("conditions").is_none());
        let s = calculate_status(&rs(Some(0)), &[&ready_full], Some("nope"), now);
        assert_eq!(s["conditions"][0]["reason"], "FailedDelete");
    }

    #[test]
    fn status_change_detection() {
        let now = jiff::Timestamp::now();
        let mut r = rs(Some(1));
        let p = pod("a", json!({"app": "web", "tier": "fe"}), true, Some("rs-uid"));
        let s = calculate_status(&r, &[&p], None, now);
        assert!(status_changed(&r, &s), "no status yet");
        r["status"] = s.clone();
        assert!(!status_changed(&r, &s));
        r["metadata"]["generation"] = json!(4);
        assert!(status_changed(&r, &calculate_status(&r, &[&p], None, now)), "a new generation must be observed");
    }

    #[test]
    fn replacing_patch_nulls_removed_keys() {
        let old = json!({"replicas": 1, "conditions": [1]});
        let new = json!({"replicas": 2});
        assert_eq!(replacing_patch(Some(&old), &new), json!({"replicas": 2, "conditions": null}));
        assert_eq!(replacing_patch(None, &new), new);
    }
}
