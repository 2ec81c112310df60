//! The Deployment controller (apps/v1), following Kubernetes' deployment controller.
//!
//! A deployment owns one ReplicaSet per pod template it has had (`<name>-<pod-template-hash>`,
//! the hash label added to the ReplicaSet's selector and template so their pods never
//! overlap). A sync claims the ReplicaSets its selector matches, then either scales them (when
//! paused, or when `spec.replicas` changed: proportionally across a rollout in progress) or
//! rolls out: RollingUpdate grows the new ReplicaSet and shrinks old ones within
//! `replicas + maxSurge` pods and `replicas - maxUnavailable` available; Recreate scales old
//! ones to zero, waits for their pods to be gone, then scales the new one up. Revisions, the
//! replica annotations, history pruning and the Available/Progressing/ReplicaFailure conditions
//! are kept the way `kubectl rollout status|history|undo` expect.
//!
//! The decisions are the pure functions of [`logic`] (re-exported here); this file reads the
//! caches, applies them and writes back. ReplicaSets are written with the resourceVersion that
//! was read, so a decision made on a stale cache fails with a conflict and is retried instead
//! of being applied.

mod logic;

use std::collections::HashSet;
use std::sync::Arc;

use apimachinery::selector::from_label_selector_object;
use apimachinery::status::ApiError;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;

use crate::client::{Client, DeleteOptions, Resource, res};
use crate::events::Recorder;
use crate::informer::{Change, Informer, key_of};
use crate::queue::WorkQueue;
use crate::replicaset::{
    Claim, adopt, child_mut, claim, generation, min_ready_seconds, namespace_terminating, object_mut, pods_resource, release, replicasets_resource,
    spec_replicas, status_count, with_type_meta,
};
use crate::{Ctx, util};

pub use logic::*;

const WORKERS: usize = 5;
const COMPONENT: &str = "deployment-controller";

pub fn deployments_resource() -> Resource {
    res("apps", "deployments")
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{0}")]
    Other(String),
}

/// A deployment's ReplicaSets during one sync, kept current as the sync writes them, so that
/// later steps of the same sync decide on what was just written.
struct Family {
    rss: Vec<Value>,
    /// Name of the ReplicaSet whose template is the deployment's.
    new: Option<String>,
}

impl Family {
    fn get(&self, name: &str) -> Option<&Value> {
        self.rss.iter().find(|rs| util::name(rs) == name)
    }

    fn new_rs(&self) -> Option<&Value> {
        self.new.as_deref().and_then(|n| self.get(n))
    }

    fn old(&self) -> Vec<&Value> {
        self.rss.iter().filter(|rs| Some(util::name(rs)) != self.new.as_deref()).collect()
    }

    fn all(&self) -> Vec<&Value> {
        let mut all = self.old();
        all.extend(self.new_rs());
        all
    }

    fn active_old_names(&self) -> Vec<String> {
        self.old().into_iter().filter(|rs| spec_replicas(rs) > 0).map(|rs| util::name(rs).to_string()).collect()
    }

    fn put(&mut self, rs: Value) {
        match self.rss.iter_mut().find(|r| util::name(r) == util::name(&rs)) {
            Some(slot) => *slot = rs,
            None => self.rss.push(rs),
        }
    }

    fn remove(&mut self, name: &str) {
        self.rss.retain(|rs| util::name(rs) != name);
    }
}

fn resource_version(o: &Value) -> Value {
    o.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null)
}

fn set_resource_version(d: &mut Value, from: &Value) {
    if let Some(rv) = from.pointer("/metadata/resourceVersion") {
        object_mut(child_mut(d, "metadata")).insert("resourceVersion".into(), rv.clone());
    }
}

fn status_of(d: &Value) -> Value {
    d.get("status").filter(|s| s.is_object()).cloned().unwrap_or_else(|| json!({}))
}

fn is_ref_to(r: &Value, kind: &str) -> bool {
    r.get("kind").and_then(|k| k.as_str()) == Some(kind) && r.get("apiVersion").and_then(|a| a.as_str()).is_none_or(|a| a.starts_with("apps/"))
}

pub struct DeploymentController {
    client: Arc<dyn Client>,
    deployments: Arc<Informer>,
    rss: Arc<Informer>,
    pods: Arc<Informer>,
    pub queue: WorkQueue,
    recorder: Recorder,
}

/// Runs the Deployment controller until aborted.
pub async fn run(ctx: Arc<Ctx>) {
    DeploymentController::new(&ctx).run().await
}

impl DeploymentController {
    pub fn new(ctx: &Ctx) -> Arc<DeploymentController> {
        Arc::new(DeploymentController {
            client: ctx.client.clone(),
            deployments: ctx.informers.get(deployments_resource()),
            rss: ctx.informers.get(replicasets_resource()),
            pods: ctx.informers.get(pods_resource()),
            queue: WorkQueue::new(),
            recorder: ctx.recorder(COMPONENT),
        })
    }

    /// Waits for the caches, then handles changes and syncs queued deployments until aborted
    /// (the workers are aborted with it).
    pub async fn run(self: Arc<Self>) {
        let mut d_rx = self.deployments.subscribe();
        let mut rs_rx = self.rss.subscribe();
        let mut pod_rx = self.pods.subscribe();
        self.deployments.synced().await;
        self.rss.synced().await;
        self.pods.synced().await;
        self.enqueue_all();
        let mut workers = JoinSet::new();
        for _ in 0..WORKERS {
            let c = self.clone();
            workers.spawn(async move { c.worker().await });
        }
        loop {
            tokio::select! {
                r = d_rx.recv() => match r {
                    Ok(ch) => self.queue.add(ch.key),
                    Err(RecvError::Lagged(_)) => self.enqueue_all(),
                    Err(RecvError::Closed) => break,
                },
                r = rs_rx.recv() => match r {
                    Ok(ch) => self.on_rs_change(ch),
                    Err(RecvError::Lagged(_)) => self.enqueue_all(),
                    Err(RecvError::Closed) => break,
                },
                r = pod_rx.recv() => match r {
                    Ok(ch) => self.on_pod_change(ch),
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
                    tracing::debug!(deployment = %key, error = %e, "sync failed; retrying");
                    self.queue.add_rate_limited(key.clone());
                }
            }
            self.queue.done(&key);
        }
    }

    fn enqueue_all(&self) {
        for d in self.deployments.list() {
            self.queue.add(key_of(&d));
        }
    }

    /// The deployment a ReplicaSet's controller reference points to, if it still is that object.
    fn resolve(&self, ns: &str, r: &Value) -> Option<String> {
        if !is_ref_to(r, "Deployment") {
            return None;
        }
        let key = format!("{ns}/{}", r.get("name").and_then(|n| n.as_str())?);
        let d = self.deployments.get(&key)?;
        (r.get("uid").and_then(|u| u.as_str()) == Some(util::uid(&d))).then_some(key)
    }

    /// Deployments whose selector matches an orphan ReplicaSet: they may want to adopt it.
    fn selecting(&self, rs: &Value) -> Vec<String> {
        self.deployments
            .list_namespace(util::namespace(rs))
            .iter()
            .filter(|d| util::selector_matches(d.pointer("/spec/selector"), rs))
            .map(|d| key_of(d))
            .collect()
    }

    fn on_rs_change(&self, ch: Change) {
        match (ch.old.as_deref(), ch.new.as_deref()) {
            (None, Some(rs)) => {
                if let Some(r) = util::controller_of(rs) {
                    if let Some(key) = self.resolve(util::namespace(rs), r) {
                        self.queue.add(key);
                    }
                    return;
                }
                for key in self.selecting(rs) {
                    self.queue.add(key);
                }
            }
            (Some(old), Some(cur)) => {
                let rv = |o: &Value| o.pointer("/metadata/resourceVersion").cloned();
                if rv(old) == rv(cur) {
                    return;
                }
                let ns = util::namespace(cur);
                let (old_ref, cur_ref) = (util::controller_of(old), util::controller_of(cur));
                let ref_changed = old_ref != cur_ref;
                if ref_changed && let Some(key) = old_ref.and_then(|r| self.resolve(ns, r)) {
                    self.queue.add(key);
                }
                if let Some(r) = cur_ref {
                    if let Some(key) = self.resolve(ns, r) {
                        self.queue.add(key);
                    }
                    return;
                }
                let labels_changed = old.pointer("/metadata/labels") != cur.pointer("/metadata/labels");
                if labels_changed || ref_changed {
                    for key in self.selecting(cur) {
                        self.queue.add(key);
                    }
                }
            }
            (Some(rs), None) => {
                if let Some(key) = util::controller_of(rs).and_then(|r| self.resolve(util::namespace(rs), r)) {
                    self.queue.add(key);
                }
            }
            (None, None) => {}
        }
    }

    /// A Recreate rollout waits for the old pods to be gone: look again when one goes.
    fn on_pod_change(&self, ch: Change) {
        let (Some(pod), None) = (ch.old.as_deref(), ch.new.as_deref()) else { return };
        let ns = util::namespace(pod);
        let Some(rs_ref) = util::controller_of(pod).filter(|r| is_ref_to(r, "ReplicaSet")) else { return };
        let Some(rs) = rs_ref.get("name").and_then(|n| n.as_str()).and_then(|n| self.rss.get(&format!("{ns}/{n}"))) else { return };
        if rs_ref.get("uid").and_then(|u| u.as_str()) != Some(util::uid(&rs)) {
            return;
        }
        let Some(key) = util::controller_of(&rs).and_then(|r| self.resolve(ns, r)) else { return };
        if self.deployments.get(&key).is_some_and(|d| strategy_type(&d) == "Recreate") {
            self.queue.add(key);
        }
    }

    /// Reconciles one deployment (`namespace/name`).
    pub async fn sync(&self, key: &str) -> Result<(), Error> {
        let Some(cached) = self.deployments.get(key) else { return Ok(()) };
        let mut d = with_type_meta(&cached, "apps/v1", "Deployment");
        let selects_all = d.pointer("/spec/selector").is_none_or(|s| prune(s) == json!({}) || !s.is_object());
        if selects_all {
            self.recorder.event(&d, "Warning", "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.").await;
            if status_count(&d, "observedGeneration") < generation(&d) {
                let mut status = status_of(&d);
                status["observedGeneration"] = json!(generation(&d));
                self.write_status(&mut d, status).await?;
            }
            return Ok(());
        }
        let mut fam = Family { rss: self.claim_replica_sets(&d).await?, new: None };
        if util::is_deleting(&d) {
            self.sync_revision(&mut d, &mut fam, false).await?;
            return self.sync_deployment_status(&mut d, &fam).await;
        }
        self.check_paused_conditions(&mut d).await?;
        if is_paused(&d) {
            return self.sync_scale(&mut d, &mut fam).await;
        }
        self.sync_revision(&mut d, &mut fam, false).await?;
        if is_scaling_event(&d, &fam.all()) {
            return self.sync_scale(&mut d, &mut fam).await;
        }
        match strategy_type(&d) {
            "Recreate" => self.rollout_recreate(key, &mut d, &mut fam).await,
            "RollingUpdate" => self.rollout_rolling(key, &mut d, &mut fam).await,
            other => Err(Error::Other(format!("unexpected deployment strategy type: {other}"))),
        }
    }

    /// The ReplicaSets of the deployment's namespace it owns, after adopting matching orphans
    /// and releasing owned ones it no longer selects.
    async fn claim_replica_sets(&self, d: &Value) -> Result<Vec<Value>, Error> {
        let selector = from_label_selector_object(d.pointer("/spec/selector")).map_err(Error::Other)?;
        let mut owned = Vec::new();
        let mut first_err = None;
        for rs in self.rss.list_namespace(util::namespace(d)) {
            let selected = !selector.is_empty() && selector.matches_object(&rs);
            let r = match claim(d, &rs, selected) {
                Claim::Owned => {
                    owned.push((*rs).clone());
                    Ok(())
                }
                Claim::Adopt => adopt(self.client.as_ref(), replicasets_resource(), &rs, util::controller_ref(d)).await.map(|adopted| owned.extend(adopted)),
                Claim::Release => release(self.client.as_ref(), replicasets_resource(), &rs, util::uid(d)).await,
                Claim::Ignore => Ok(()),
            };
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e.into()),
            None => Ok(owned),
        }
    }

    /// Replaces the deployment's status, conditionally on the revision read: a status computed
    /// from a stale deployment must not overwrite a newer one (it could, say, lose a
    /// collisionCount bump).
    async fn write_status(&self, d: &mut Value, status: Value) -> Result<(), Error> {
        let mut obj = d.clone();
        object_mut(&mut obj).insert("status".into(), status.clone());
        let written = self.client.update_status(deployments_resource(), obj).await?;
        object_mut(d).insert("status".into(), status);
        set_resource_version(d, &written);
        Ok(())
    }

    /// Records the new ReplicaSet's revision on the deployment (what `kubectl describe` and
    /// `kubectl rollout undo` read).
    async fn set_deployment_revision(&self, d: &mut Value, revision: &str) -> Result<(), Error> {
        if annotation(d, REVISION) == Some(revision) {
            return Ok(());
        }
        let patch = json!({"metadata": {"annotations": {REVISION: revision}, "resourceVersion": resource_version(d)}});
        let written = self.client.merge_patch(deployments_resource(), Some(util::namespace(d)), util::name(d), patch).await?;
        logic::annotations_mut(d).insert(REVISION.into(), json!(revision));
        set_resource_version(d, &written);
        Ok(())
    }

    /// Kubernetes' getAllReplicaSetsAndSyncRevision: finds (or, with `create`, creates) the
    /// ReplicaSet of the current template and brings its annotations and revision up to date.
    async fn sync_revision(&self, d: &mut Value, fam: &mut Family, create: bool) -> Result<(), Error> {
        let existing = {
            let all: Vec<&Value> = fam.rss.iter().collect();
            find_new_rs(d, &all).cloned()
        };
        let new_revision = {
            let existing_name = existing.as_ref().map(|rs| util::name(rs).to_string());
            max_revision(fam.rss.iter().filter(|rs| Some(util::name(rs)) != existing_name.as_deref())).saturating_add(1)
        };
        let Some(existing) = existing else {
            fam.new = None;
            return if create { self.create_new_rs(d, fam, new_revision).await } else { Ok(()) };
        };
        let name = util::name(&existing).to_string();
        fam.new = Some(name.clone());
        let mut copy = existing.clone();
        let annotations_changed = set_new_rs_annotations(d, &mut copy, new_revision, true);
        if annotations_changed || min_ready_seconds(&copy) != min_ready_seconds(d) {
            object_mut(child_mut(&mut copy, "spec")).insert("minReadySeconds".into(), json!(min_ready_seconds(d)));
            let updated = self.client.update(replicasets_resource(), copy).await?;
            fam.put(updated);
            return Ok(());
        }
        if let Some(rev) = annotation(&copy, REVISION).map(str::to_string) {
            self.set_deployment_revision(d, &rev).await?;
        }
        let status = status_of(d);
        if progress_deadline_seconds(d).is_some() && get_condition(&status, PROGRESSING).is_none() {
            // A deployment that never had a Progressing condition starts being watched for
            // progress from now.
            let mut status = status;
            set_condition(&mut status, new_condition(PROGRESSING, "True", FOUND_NEW_RS_REASON, &format!("Found new replica set {name:?}"), util::now()));
            self.write_status(d, status).await?;
        }
        Ok(())
    }

    async fn create_new_rs(&self, d: &mut Value, fam: &mut Family, new_revision: i64) -> Result<(), Error> {
        let template = d.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
        let hash = template_hash(&template, collision_count(d));
        let mut rs = new_replica_set(d, &hash);
        let size = {
            let mut all: Vec<&Value> = fam.rss.iter().collect();
            all.push(&rs);
            new_rs_new_replicas(d, &all, &rs)
        };
        object_mut(child_mut(&mut rs, "spec")).insert("replicas".into(), json!(size));
        set_new_rs_annotations(d, &mut rs, new_revision, false);
        let name = util::name(&rs).to_string();
        let ns = util::namespace(d).to_string();
        let has_deadline = progress_deadline_seconds(d).is_some();
        let (created, already_existed) = match self.client.create(replicasets_resource(), Some(&ns), rs).await {
            Ok(created) => (created, false),
            Err(e @ ApiError::AlreadyExists { .. }) => match self.rss.get(&format!("{ns}/{name}")) {
                Some(found) if util::is_controlled_by(&found, d) && equal_ignore_hash(found.pointer("/spec/template").unwrap_or(&Value::Null), &template) => {
                    // Ours, created by an earlier sync the cache had not shown us yet.
                    ((*found).clone(), true)
                }
                Some(_) => {
                    // Someone else's ReplicaSet has our name: perturb the hash and try again.
                    let mut status = status_of(d);
                    status["collisionCount"] = json!(collision_count(d).unwrap_or(0).saturating_add(1));
                    self.write_status(d, status).await?;
                    return Err(Error::Other(format!("replica set {name} already exists with another template; collisionCount raised")));
                }
                None => return Err(e.into()),
            },
            Err(e) if namespace_terminating(&e) => return Err(e.into()),
            Err(e) => {
                let msg = format!("Failed to create new replica set {name:?}: {e}");
                if has_deadline {
                    let mut status = status_of(d);
                    set_condition(&mut status, new_condition(PROGRESSING, "False", FAILED_RS_CREATE_REASON, &msg, util::now()));
                    // The creation error is the one worth reporting.
                    let _ = self.write_status(d, status).await;
                }
                self.recorder.event(d, "Warning", FAILED_RS_CREATE_REASON, &msg).await;
                return Err(e.into());
            }
        };
        if !already_existed && size > 0 {
            self.recorder.event(d, "Normal", "ScalingReplicaSet", &format!("Scaled up replica set {name} to {size} from 0")).await;
        }
        fam.put(created);
        fam.new = Some(name.clone());
        self.set_deployment_revision(d, &new_revision.to_string()).await?;
        if !already_existed && has_deadline {
            let mut status = status_of(d);
            set_condition(&mut status, new_condition(PROGRESSING, "True", NEW_RS_REASON, &format!("Created new replica set {name:?}"), util::now()));
            self.write_status(d, status).await?;
        }
        Ok(())
    }

    /// Kubernetes' scaleReplicaSet: sets the size and the replica annotations; an event when
    /// the size changed. Whether the size changed.
    async fn scale_rs(&self, d: &Value, fam: &mut Family, name: &str, size: i64) -> Result<bool, Error> {
        let Some(rs) = fam.get(name).cloned() else { return Ok(false) };
        let before = spec_replicas(&rs);
        let (desired, max) = (replicas(d), replicas(d) + max_surge(d));
        let resize = before != size;
        if !resize && !replicas_annotations_need_update(&rs, desired, max) {
            return Ok(false);
        }
        let mut copy = rs;
        object_mut(child_mut(&mut copy, "spec")).insert("replicas".into(), json!(size));
        set_replicas_annotations(&mut copy, desired, max);
        let updated = self.client.update(replicasets_resource(), copy).await?;
        fam.put(updated);
        if resize {
            let op = if size > before { "up" } else { "down" };
            self.recorder.event(d, "Normal", "ScalingReplicaSet", &format!("Scaled {op} replica set {name} to {size} from {before}")).await;
        }
        Ok(resize)
    }

    /// Kubernetes' scaleReplicaSetAndRecordEvent: nothing at all when the size is right.
    async fn scale_and_record(&self, d: &Value, fam: &mut Family, name: &str, size: i64) -> Result<bool, Error> {
        match fam.get(name) {
            Some(rs) if spec_replicas(rs) != size => self.scale_rs(d, fam, name, size).await,
            _ => Ok(false),
        }
    }

    /// Paused, or `spec.replicas` changed: resize without rolling out.
    async fn sync_scale(&self, d: &mut Value, fam: &mut Family) -> Result<(), Error> {
        self.sync_revision(d, fam, false).await?;
        let plan = scale_plan(d, fam.new_rs(), &fam.old());
        for (name, size) in plan {
            self.scale_rs(d, fam, &name, size).await?;
        }
        if is_paused(d) {
            self.cleanup(d, fam).await?;
        }
        self.sync_deployment_status(d, fam).await
    }

    async fn sync_deployment_status(&self, d: &mut Value, fam: &Family) -> Result<(), Error> {
        let status = calculate_status(d, &fam.all(), fam.new_rs(), util::now());
        if status_equal(d.get("status"), &status) {
            return Ok(());
        }
        self.write_status(d, status).await
    }

    async fn sync_rollout_status(&self, key: &str, d: &mut Value, fam: &Family) -> Result<(), Error> {
        let now = util::now();
        let status = rollout_status(d, &fam.all(), fam.new_rs(), now);
        if status_equal(d.get("status"), &status) {
            if let Some(after) = progress_recheck_after(d, &status, now) {
                self.queue.add_after(key.to_string(), after);
            }
            return Ok(());
        }
        self.write_status(d, status).await
    }

    /// Pausing and resuming show in the Progressing condition (Unknown), so the time spent
    /// paused never counts against the progress deadline.
    async fn check_paused_conditions(&self, d: &mut Value) -> Result<(), Error> {
        if progress_deadline_seconds(d).is_none() {
            return Ok(());
        }
        let mut status = status_of(d);
        let reason = get_condition(&status, PROGRESSING).map(|c| cond_str(c, "reason").to_string());
        if reason.as_deref() == Some(TIMED_OUT_REASON) {
            return Ok(());
        }
        let paused_reported = reason.as_deref() == Some(PAUSED_REASON);
        let cond = match (is_paused(d), paused_reported) {
            (true, false) => new_condition(PROGRESSING, "Unknown", PAUSED_REASON, "Deployment is paused", util::now()),
            (false, true) => new_condition(PROGRESSING, "Unknown", RESUMED_REASON, "Deployment is resumed", util::now()),
            _ => return Ok(()),
        };
        set_condition(&mut status, cond);
        self.write_status(d, status).await
    }

    async fn rollout_rolling(&self, key: &str, d: &mut Value, fam: &mut Family) -> Result<(), Error> {
        self.sync_revision(d, fam, true).await?;
        if self.reconcile_new(d, fam).await? || self.reconcile_old(d, fam).await? {
            return self.sync_rollout_status(key, d, fam).await;
        }
        if deployment_complete(d, &status_of(d)) {
            self.cleanup(d, fam).await?;
        }
        self.sync_rollout_status(key, d, fam).await
    }

    async fn reconcile_new(&self, d: &Value, fam: &mut Family) -> Result<bool, Error> {
        let Some(new) = fam.new_rs() else { return Ok(false) };
        let (current, want) = (spec_replicas(new), replicas(d));
        if current == want {
            return Ok(false);
        }
        let target = if current > want { want } else { new_rs_new_replicas(d, &fam.all(), new) };
        let name = util::name(new).to_string();
        self.scale_and_record(d, fam, &name, target).await
    }

    async fn reconcile_old(&self, d: &Value, fam: &mut Family) -> Result<bool, Error> {
        let Some(new) = fam.new_rs().cloned() else { return Ok(false) };
        let old_names = fam.active_old_names();
        if old_names.is_empty() {
            return Ok(false);
        }
        let max_down = max_scaled_down(d, &fam.all(), &new);
        if max_down <= 0 {
            return Ok(false);
        }
        let mut scaled_down = 0;
        let cleanup = {
            let old: Vec<&Value> = old_names.iter().filter_map(|n| fam.get(n)).collect();
            cleanup_unhealthy_plan(&old, max_down)
        };
        for (name, size) in cleanup {
            let before = fam.get(&name).map(spec_replicas).unwrap_or(size);
            if self.scale_and_record(d, fam, &name, size).await? {
                scaled_down += before - size;
            }
        }
        let plan = {
            let old: Vec<&Value> = old_names.iter().filter_map(|n| fam.get(n)).collect();
            let mut all = old.clone();
            all.extend(fam.new_rs());
            scale_down_old_plan(d, &all, &old)
        };
        for (name, size) in plan {
            let before = fam.get(&name).map(spec_replicas).unwrap_or(size);
            if self.scale_and_record(d, fam, &name, size).await? {
                scaled_down += before - size;
            }
        }
        Ok(scaled_down > 0)
    }

    async fn rollout_recreate(&self, key: &str, d: &mut Value, fam: &mut Family) -> Result<(), Error> {
        // The new ReplicaSet is only created once the old pods are gone, so it never starts
        // pods next to them.
        self.sync_revision(d, fam, false).await?;
        let mut scaled = false;
        for name in fam.active_old_names() {
            scaled |= self.scale_and_record(d, fam, &name, 0).await?;
        }
        if scaled || self.old_pods_running(d, fam) {
            return self.sync_rollout_status(key, d, fam).await;
        }
        if fam.new.is_none() {
            self.sync_revision(d, fam, true).await?;
        }
        if let Some(name) = fam.new.clone() {
            self.scale_and_record(d, fam, &name, replicas(d)).await?;
        }
        if deployment_complete(d, &status_of(d)) {
            self.cleanup(d, fam).await?;
        }
        self.sync_rollout_status(key, d, fam).await
    }

    /// Old ReplicaSets still report pods, or pods of theirs that are not finished still exist
    /// (terminating ones included: they may still be running).
    fn old_pods_running(&self, d: &Value, fam: &Family) -> bool {
        let old = fam.old();
        if old.iter().map(|rs| status_count(rs, "replicas")).sum::<i64>() > 0 {
            return true;
        }
        let old_uids: HashSet<&str> = old.iter().map(|rs| util::uid(rs)).collect();
        self.pods.list_namespace(util::namespace(d)).iter().any(|p| {
            util::selector_matches(d.pointer("/spec/selector"), p)
                && util::controller_of(p).and_then(|r| r.get("uid")).and_then(|u| u.as_str()).is_some_and(|u| old_uids.contains(u))
                && !matches!(util::pod_phase(p), "Succeeded" | "Failed")
        })
    }

    /// Deletes the oldest old ReplicaSets beyond revisionHistoryLimit, only those fully scaled
    /// down (and seen so by the ReplicaSet controller).
    async fn cleanup(&self, d: &Value, fam: &mut Family) -> Result<(), Error> {
        let Some(limit) = revision_history_limit(d) else { return Ok(()) };
        let mut cleanable: Vec<Value> = fam.old().into_iter().filter(|rs| !util::is_deleting(rs)).cloned().collect();
        let excess = cleanable.len() as i64 - limit;
        if excess <= 0 {
            return Ok(());
        }
        cleanable.sort_by(by_revision);
        for rs in cleanable.iter().take(excess as usize) {
            if status_count(rs, "replicas") != 0 || spec_replicas(rs) != 0 || generation(rs) > status_count(rs, "observedGeneration") || util::is_deleting(rs) {
                continue;
            }
            let opts = DeleteOptions { uid: Some(util::uid(rs).to_string()).filter(|u| !u.is_empty()), ..Default::default() };
            match self.client.delete(replicasets_resource(), Some(util::namespace(rs)), util::name(rs), opts).await {
                Ok(()) | Err(ApiError::NotFound { .. }) => fam.remove(util::name(rs)),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
