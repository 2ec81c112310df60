//! The StatefulSet controller (apps/v1): pods with stable identities `<sts>-<ordinal>`.
//!
//! Each pod gets `hostname` = its name, `subdomain` = `serviceName`, the labels
//! `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`, and one
//! PersistentVolumeClaim per `volumeClaimTemplates` entry, named `<claim>-<sts>-<ordinal>`
//! (created before the pod, never deleted by this controller unless the retention policy asks).
//!
//! `OrderedReady` (the default) creates ordinal N only once 0..N-1 are Running and Ready, and
//! deletes one pod at a time from the highest ordinal, only while every other pod is healthy.
//! `Parallel` creates and deletes without waiting. Template versions are ControllerRevisions
//! `<sts>-<hash>`; pods carry the revision name in `controller-revision-hash`. `RollingUpdate`
//! replaces pods from the highest ordinal down to `partition`, one at a time, waiting for each
//! replacement to be healthy; pods below `partition` are (re)created at the current revision.
//! `OnDelete` only uses the new revision for pods that get recreated.
//!
//! Deviations: `maxUnavailable` for rolling updates (alpha in Kubernetes) is not implemented;
//! existing pods whose `hostname`/`subdomain` differ are not rewritten (those fields are
//! immutable on a pod); like Kubernetes, `currentRevision` advances only under `RollingUpdate`.

use std::collections::HashSet;
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::Ctx;
use crate::client::res;
use crate::daemonset::common::*;
use crate::events::Recorder;
use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::util;

const API_VERSION: &str = "apps/v1";
const KIND: &str = "StatefulSet";
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

pub async fn run(ctx: Arc<Ctx>) {
    run_with_clock(ctx, Arc::new(SystemClock)).await
}

/// [`run`] with an injected clock (tests).
pub async fn run_with_clock(ctx: Arc<Ctx>, clock: Arc<dyn Clock>) {
    let sets = ctx.informers.get(res("apps", "statefulsets"));
    let pods_inf = ctx.informers.get(pods());
    let pvcs = ctx.informers.get(res("", "persistentvolumeclaims"));
    let revs = ctx.informers.get(res("apps", "controllerrevisions"));
    let queue = WorkQueue::new();
    let mut set = JoinSet::new();
    let lag = |q: &WorkQueue, s: &Arc<Informer>| {
        let (q, s) = (q.clone(), s.clone());
        move || enqueue_all(&q, &s)
    };
    {
        let q = queue.clone();
        forward_changes(&mut set, &sets, move |c| q.add(c.key.clone()), lag(&queue, &sets));
    }
    {
        let (q, owners) = (queue.clone(), sets.clone());
        forward_changes(&mut set, &pods_inf, move |c| enqueue_owners(c, KIND, &q, &owners, |s, p| is_member(s, p) && selects(s, p)), lag(&queue, &sets));
    }
    {
        let (q, owners) = (queue.clone(), sets.clone());
        forward_changes(&mut set, &revs, move |c| enqueue_owners(c, KIND, &q, &owners, selects), lag(&queue, &sets));
    }
    for inf in [&sets, &pods_inf, &pvcs, &revs] {
        inf.synced().await;
    }
    enqueue_all(&queue, &sets);
    let ctl = Arc::new(Controller {
        recorder: ctx.recorder("statefulset-controller"),
        timers: Timers::new(clock.clone(), queue.clone()),
        ctx,
        clock,
        sets,
        pods: pods_inf,
        pvcs,
        revs,
    });
    spawn_workers(
        &mut set,
        2,
        queue,
        "statefulset",
        Arc::new(move |key| {
            let ctl = ctl.clone();
            Box::pin(async move { ctl.sync(&key).await })
        }),
    );
    join_forever(set).await
}

fn selects(sts: &Value, o: &Value) -> bool {
    util::selector_matches(sts.pointer("/spec/selector"), o)
}

struct Controller {
    ctx: Arc<Ctx>,
    clock: Arc<dyn Clock>,
    timers: Timers,
    recorder: Recorder,
    sets: Arc<Informer>,
    pods: Arc<Informer>,
    pvcs: Arc<Informer>,
    revs: Arc<Informer>,
}

impl Controller {
    async fn sync(&self, key: &str) -> SyncResult {
        let Some(sts) = self.sets.get(key) else { return Ok(()) };
        if util::is_deleting(&sts) {
            return Ok(());
        }
        let client = self.ctx.client.as_ref();
        let oref = owner_ref(&sts, API_VERSION, KIND);
        let owned_pods = claim_and_patch(client, pods(), &self.pods, &sts, &oref, |p| is_member(&sts, p) && selects(&sts, p), &[]).await?;
        let owned_revs = claim_and_patch(client, res("apps", "controllerrevisions"), &self.revs, &sts, &oref, |r| selects(&sts, r), &[]).await?;
        let revisions =
            sync_revisions(client, &sts, res("apps", "statefulsets"), &oref, owned_revs.iter().map(|r| (**r).clone()).collect(), &self.revs).await?;
        let update_template = revision_template(&revisions.update).unwrap_or_else(|| sts.pointer("/spec/template").cloned().unwrap_or(json!({})));
        let update = Rev { name: util::name(&revisions.update), template: &update_template };
        let current_rev = str_at(&sts, "/status/currentRevision").and_then(|n| revisions.all.iter().find(|r| util::name(r) == n));
        let current_template = current_rev.and_then(revision_template);
        let current = match (current_rev, &current_template) {
            (Some(r), Some(t)) => Rev { name: util::name(r), template: t },
            _ => Rev { name: update.name, template: &update_template },
        };

        let claims: HashSet<String> = self.pvcs.list_namespace(util::namespace(&sts)).iter().map(|c| util::name(c).to_string()).collect();
        let pod_refs: Vec<&Value> = owned_pods.iter().map(|p| p.as_ref()).collect();
        let p = plan(&sts, &pod_refs, &claims, &current, &update, self.clock.now());

        let pvc_res = res("", "persistentvolumeclaims");
        let ns = util::namespace(&sts);
        for a in &p.actions {
            match a {
                Action::CreateClaim(c) => match client.create(pvc_res, ns_opt(&sts), c.clone()).await {
                    Ok(_) => {}
                    Err(e) if is_already_exists(&e) => {}
                    Err(e) => {
                        self.recorder
                            .event(&sts, "Warning", "FailedCreate", &format!("create Claim {} for StatefulSet {} failed: {e}", util::name(c), util::name(&sts)))
                            .await;
                        return Err(e.into());
                    }
                },
                Action::CreatePod(pod) => match client.create(pods(), ns_opt(&sts), pod.clone()).await {
                    Ok(_) => {
                        self.recorder
                            .event(
                                &sts,
                                "Normal",
                                "SuccessfulCreate",
                                &format!("create Pod {} in StatefulSet {} successful", util::name(pod), util::name(&sts)),
                            )
                            .await
                    }
                    // The cache has not shown it yet; the pod event will requeue.
                    Err(e) if is_already_exists(&e) => {}
                    Err(e) => {
                        self.recorder
                            .event(&sts, "Warning", "FailedCreate", &format!("create Pod {} in StatefulSet {} failed: {e}", util::name(pod), util::name(&sts)))
                            .await;
                        return Err(e.into());
                    }
                },
                Action::DeletePod { name, uid } => {
                    delete_exact(client, pods(), ns, name, uid, None).await?;
                    self.recorder.event(&sts, "Normal", "SuccessfulDelete", &format!("delete Pod {name} in StatefulSet {} successful", util::name(&sts))).await;
                }
                Action::PatchPod { name, patch } => match client.merge_patch(pods(), ns_opt(&sts), name, patch.clone()).await {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(e.into()),
                },
                Action::OwnClaim { claim, owner } => {
                    let Some(c) = self.pvcs.get(&format!("{ns}/{claim}")) else { continue };
                    let mut refs: Vec<Value> = c.pointer("/metadata/ownerReferences").and_then(|r| r.as_array()).cloned().unwrap_or_default();
                    if refs.iter().any(|r| r.get("uid") == owner.get("uid")) {
                        continue;
                    }
                    refs.push(owner.clone());
                    let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": c.pointer("/metadata/resourceVersion")}});
                    match client.merge_patch(pvc_res, ns_opt(&sts), claim, patch).await {
                        Ok(_) => {}
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }

        write_status(client, res("apps", "statefulsets"), &sts, p.status.clone()).await?;

        let mut keep: HashSet<String> = HashSet::from([update.name.to_string(), current.name.to_string()]);
        for pod in &pod_refs {
            if let Some(r) = str_at(pod, "/metadata/labels/controller-revision-hash") {
                keep.insert(r.to_string());
            }
        }
        let limit = i64_at(&sts, "/spec/revisionHistoryLimit").unwrap_or(10);
        cleanup_revisions(client, &revisions.all, &keep, limit).await?;
        if let Some(t) = p.requeue_at {
            self.timers.at(key, t);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Identity

/// The ordinal in a pod name `<sts>-<ordinal>`.
pub fn ordinal_of(sts_name: &str, pod_name: &str) -> Option<i64> {
    let rest = pod_name.strip_prefix(sts_name)?.strip_prefix('-')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) || (rest.len() > 1 && rest.starts_with('0')) {
        return None;
    }
    rest.parse().ok()
}

/// Whether a pod's name makes it one of the set's (Kubernetes' `isMemberOf`).
pub fn is_member(sts: &Value, pod: &Value) -> bool {
    ordinal_of(util::name(sts), util::name(pod)).is_some()
}

pub fn claim_name(template_name: &str, sts_name: &str, ordinal: i64) -> String {
    format!("{template_name}-{sts_name}-{ordinal}")
}

/// A revision: its name and the pod template it stores.
#[derive(Debug, Clone, Copy)]
pub struct Rev<'a> {
    pub name: &'a str,
    pub template: &'a Value,
}

fn claim_templates(sts: &Value) -> &[Value] {
    sts.pointer("/spec/volumeClaimTemplates").and_then(|v| v.as_array()).map(|a| a.as_slice()).unwrap_or(&[])
}

fn retention(sts: &Value, which: &str) -> String {
    str_at(sts, &format!("/spec/persistentVolumeClaimRetentionPolicy/{which}")).unwrap_or("Retain").to_string()
}

fn plain_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": util::name(owner), "uid": util::uid(owner)})
}

/// The claims of one ordinal (from `volumeClaimTemplates`).
pub fn claims_for(sts: &Value, ordinal: i64) -> Vec<Value> {
    let name = util::name(sts);
    let selector_labels: Vec<(&str, String)> = obj_at(sts, "/spec/selector/matchLabels")
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v.to_string()))).collect())
        .unwrap_or_default();
    claim_templates(sts)
        .iter()
        .filter_map(|t| {
            let tname = str_at(t, "/metadata/name")?;
            let mut meta = json!({
                "name": claim_name(tname, name, ordinal),
                "namespace": util::namespace(sts),
                "labels": merged_labels(t.pointer("/metadata/labels"), &selector_labels),
            });
            if let Some(a) = t.pointer("/metadata/annotations").filter(|a| a.is_object()) {
                meta["annotations"] = a.clone();
            }
            if retention(sts, "whenDeleted") == "Delete" {
                meta["ownerReferences"] = json!([plain_ref(sts, API_VERSION, KIND)]);
            }
            Some(json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": meta,
                "spec": t.get("spec").cloned().unwrap_or_else(|| json!({})),
            }))
        })
        .collect()
}

/// The pod of one ordinal, from a revision's template.
pub fn new_pod(sts: &Value, rev: &Rev, ordinal: i64) -> Value {
    let set_name = util::name(sts);
    let name = format!("{set_name}-{ordinal}");
    let labels = merged_labels(
        rev.template.pointer("/metadata/labels"),
        &[(POD_NAME_LABEL, name.clone()), (POD_INDEX_LABEL, ordinal.to_string()), (REVISION_HASH_LABEL, rev.name.to_string())],
    );
    let mut spec = rev.template.get("spec").filter(|s| s.is_object()).cloned().unwrap_or_else(|| json!({}));
    set_field(&mut spec, "hostname", json!(name));
    if let Some(svc) = str_at(sts, "/spec/serviceName").filter(|s| !s.is_empty()) {
        set_field(&mut spec, "subdomain", json!(svc));
    }
    let templates = claim_templates(sts);
    if !templates.is_empty() {
        let mut volumes: Vec<Value> = spec.get("volumes").and_then(|v| v.as_array()).cloned().unwrap_or_default();
        for t in templates {
            let Some(tname) = str_at(t, "/metadata/name") else { continue };
            volumes.retain(|v| v.get("name").and_then(|n| n.as_str()) != Some(tname));
            volumes.push(json!({"name": tname, "persistentVolumeClaim": {"claimName": claim_name(tname, set_name, ordinal)}}));
        }
        set_field(&mut spec, "volumes", json!(volumes));
    }
    let mut meta = json!({
        "name": name,
        "namespace": util::namespace(sts),
        "labels": labels,
        "ownerReferences": [owner_ref(sts, API_VERSION, KIND)],
    });
    if let Some(a) = rev.template.pointer("/metadata/annotations").filter(|a| a.is_object()) {
        meta["annotations"] = a.clone();
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

// ---------------------------------------------------------------------------------------------
// Planning

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    CreateClaim(Value),
    CreatePod(Value),
    DeletePod {
        name: String,
        uid: String,
    },
    /// Fixes a pod's identity labels.
    PatchPod {
        name: String,
        patch: Value,
    },
    /// Adds `owner` (a pod being scaled away) to a claim's ownerReferences, so the garbage
    /// collector deletes the claim with it (`whenScaled: Delete`).
    OwnClaim {
        claim: String,
        owner: Value,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// In order.
    pub actions: Vec<Action>,
    pub status: Value,
    pub requeue_at: Option<Timestamp>,
}

fn healthy(p: &Value) -> bool {
    running_and_ready(p) && !util::is_deleting(p)
}

fn revision_of(p: &Value) -> &str {
    str_at(p, "/metadata/labels/controller-revision-hash").unwrap_or("")
}

/// Computes the actions and status of one sync from the set, the pods it owns, the names of the
/// claims that exist in its namespace, and its current and update revisions.
pub fn plan(sts: &Value, pods: &[&Value], claims: &HashSet<String>, current: &Rev, update: &Rev, now: Timestamp) -> Plan {
    let set_name = util::name(sts);
    let replicas = i64_at(sts, "/spec/replicas").unwrap_or(1).max(0);
    let start = i64_at(sts, "/spec/ordinals/start").unwrap_or(0).max(0);
    let monotonic = str_at(sts, "/spec/podManagementPolicy").unwrap_or("OrderedReady") != "Parallel";
    let rolling = str_at(sts, "/spec/updateStrategy/type").unwrap_or("RollingUpdate") == "RollingUpdate";
    let partition = if rolling { i64_at(sts, "/spec/updateStrategy/rollingUpdate/partition").unwrap_or(0).max(0) } else { 0 };
    let min_ready = i64_at(sts, "/spec/minReadySeconds").unwrap_or(0);
    let available = |p: &Value| running_and_ready(p) && util::is_pod_available(p, min_ready, now);

    let mut slots: Vec<Option<&Value>> = vec![None; replicas as usize];
    let mut condemned: Vec<(i64, &Value)> = Vec::new();
    for p in pods {
        let Some(ord) = ordinal_of(set_name, util::name(p)) else { continue };
        if ord >= start && ord < start + replicas {
            slots[(ord - start) as usize] = Some(p);
        } else {
            condemned.push((ord, p));
        }
    }
    condemned.sort_by_key(|c| std::cmp::Reverse(c.0));

    let mut out = Plan::default();

    // Status from the pods as they are (the next sync sees the effect of this one).
    let (mut count, mut ready, mut avail, mut cur, mut upd) = (0i64, 0i64, 0i64, 0i64, 0i64);
    for p in slots.iter().flatten().copied().chain(condemned.iter().map(|(_, p)| *p)) {
        count += 1;
        if running_and_ready(p) {
            ready += 1;
            if available(p) {
                avail += 1;
            } else if let Some(t) = available_at(p, min_ready) {
                out.requeue_at = Some(out.requeue_at.map_or(t, |r| r.min(t)));
            }
        }
        if !util::is_deleting(p) {
            if revision_of(p) == current.name {
                cur += 1;
            }
            if revision_of(p) == update.name {
                upd += 1;
            }
        }
    }
    let (mut cur_name, mut cur_count) = (current.name, cur);
    if rolling && upd == count && ready == count {
        cur_name = update.name;
        cur_count = upd;
    }
    let mut status = json!({
        "observedGeneration": generation(sts),
        "replicas": count,
        "readyReplicas": ready,
        "currentReplicas": cur_count,
        "updatedReplicas": upd,
        "availableReplicas": avail,
        "currentRevision": cur_name,
        "updateRevision": update.name,
        "collisionCount": i64_at(sts, "/status/collisionCount").unwrap_or(0),
    });
    if let Some(c) = sts.pointer("/status/conditions") {
        status["conditions"] = c.clone();
    }
    out.status = status;

    let pod_for = |ord: i64| {
        // Below the partition, pods are (re)created at the current revision.
        let rev = if rolling && ord - start < partition { current } else { update };
        new_pod(sts, rev, ord)
    };
    let missing_claims =
        |ord: i64| -> Vec<Action> { claims_for(sts, ord).into_iter().filter(|c| !claims.contains(util::name(c))).map(Action::CreateClaim).collect() };

    // Replicas, in ordinal order.
    let mut wait = false;
    for (i, slot) in slots.iter().enumerate() {
        let ord = start + i as i64;
        let Some(p) = slot else {
            out.actions.extend(missing_claims(ord));
            out.actions.push(Action::CreatePod(pod_for(ord)));
            if monotonic {
                wait = true;
                break;
            }
            continue;
        };
        if matches!(util::pod_phase(p), "Failed" | "Succeeded") {
            // Recreated once the old pod is gone.
            if !util::is_deleting(p) {
                out.actions.push(Action::DeletePod { name: util::name(p).to_string(), uid: util::uid(p).to_string() });
            }
            if monotonic {
                wait = true;
                break;
            }
            continue;
        }
        if util::is_deleting(p) {
            if monotonic {
                wait = true;
                break;
            }
            continue;
        }
        let name = util::name(p);
        let ord_s = ord.to_string();
        if str_at(p, &format!("/metadata/labels/{}", POD_NAME_LABEL.replace('/', "~1"))) != Some(name)
            || str_at(p, &format!("/metadata/labels/{}", POD_INDEX_LABEL.replace('/', "~1"))) != Some(ord_s.as_str())
        {
            out.actions
                .push(Action::PatchPod { name: name.to_string(), patch: json!({"metadata": {"labels": {POD_NAME_LABEL: name, POD_INDEX_LABEL: ord_s}}}) });
        }
        out.actions.extend(missing_claims(ord));
        if monotonic && !available(p) {
            wait = true;
            break;
        }
    }

    // Scale down: highest ordinal first; ordered sets one at a time and only when healthy.
    if !wait {
        let first_unhealthy = condemned.iter().rev().find(|(_, p)| !healthy(p)).map(|(_, p)| util::uid(p));
        for (ord, p) in &condemned {
            if util::is_deleting(p) {
                if monotonic {
                    wait = true;
                    break;
                }
                continue;
            }
            if monotonic && !healthy(p) && first_unhealthy != Some(util::uid(p)) {
                wait = true;
                break;
            }
            if retention(sts, "whenScaled") == "Delete" {
                for c in claims_for(sts, *ord) {
                    out.actions.push(Action::OwnClaim { claim: util::name(&c).to_string(), owner: plain_ref(p, "v1", "Pod") });
                }
            }
            out.actions.push(Action::DeletePod { name: util::name(p).to_string(), uid: util::uid(p).to_string() });
            if monotonic {
                wait = true;
                break;
            }
        }
    }

    // Rolling update: the highest ordinal not at the update revision, down to the partition,
    // one at a time, each replacement healthy before the next.
    if !wait && rolling {
        for slot in slots.iter().skip(partition.min(replicas) as usize).rev() {
            let Some(p) = slot else { continue };
            if revision_of(p) != update.name && !util::is_deleting(p) {
                out.actions.push(Action::DeletePod { name: util::name(p).to_string(), uid: util::uid(p).to_string() });
                break;
            }
            if !healthy(p) {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts(extra: Value) -> Value {
        let mut s = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default", "uid": "sts-uid", "generation": 2},
            "spec": {
                "replicas": 3,
                "serviceName": "web-svc",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
            }
        });
        crate::testing::merge(&mut s, &json!({"spec": extra}));
        s
    }

    fn pod(ord: i64, rev: &str, state: &str) -> Value {
        let name = format!("web-{ord}");
        let mut p = json!({"metadata": {"name": name, "namespace": "default", "uid": format!("u-{name}"),
            "labels": {"app": "web", POD_NAME_LABEL: name, POD_INDEX_LABEL: ord.to_string(), "controller-revision-hash": rev}},
            "status": {"phase": "Pending"}});
        match state {
            "ready" => p["status"] = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}),
            "running" => p["status"] = json!({"phase": "Running"}),
            "failed" => p["status"] = json!({"phase": "Failed"}),
            "deleting" => p["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z"),
            _ => {}
        }
        p
    }

    fn summary(p: &Plan) -> Vec<String> {
        p.actions
            .iter()
            .map(|a| match a {
                Action::CreateClaim(c) => format!("claim {}", util::name(c)),
                Action::CreatePod(pod) => format!("create {}@{}", util::name(pod), revision_of(pod)),
                Action::DeletePod { name, .. } => format!("delete {name}"),
                Action::PatchPod { name, .. } => format!("patch {name}"),
                Action::OwnClaim { claim, .. } => format!("own {claim}"),
            })
            .collect()
    }

    #[test]
    fn ordinals() {
        let cases = [("web-0", Some(0)), ("web-12", Some(12)), ("web-01", None), ("web-", None), ("web-x", None), ("webby-1", None), ("web-1-2", None)];
        for (name, want) in cases {
            assert_eq!(ordinal_of("web", name), want, "{name}");
        }
    }

    #[test]
    fn plan_table() {
        let t = json!({"metadata": {"labels": {"app": "web"}}, "spec": {}});
        let t_old = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"old": true}});
        let cur = Rev { name: "web-r1", template: &t_old };
        let upd = Rev { name: "web-r2", template: &t };
        let same = Rev { name: "web-r2", template: &t };
        let now: Timestamp = "2024-06-01T00:00:00Z".parse().unwrap();
        struct Case {
            name: &'static str,
            spec: Value,
            pods: Vec<Value>,
            current: bool,
            want: Vec<&'static str>,
        }
        let cases = vec![
            Case { name: "ordered: creates ordinal 0 only", spec: json!({}), pods: vec![], current: false, want: vec!["create web-0@web-r2"] },
            Case { name: "ordered: waits for 0 to be ready", spec: json!({}), pods: vec![pod(0, "web-r2", "running")], current: false, want: vec![] },
            Case {
                name: "ordered: creates 1 once 0 is ready",
                spec: json!({}),
                pods: vec![pod(0, "web-r2", "ready")],
                current: false,
                want: vec!["create web-1@web-r2"],
            },
            Case {
                name: "parallel: creates all",
                spec: json!({"podManagementPolicy": "Parallel"}),
                pods: vec![],
                current: false,
                want: vec!["create web-0@web-r2", "create web-1@web-r2", "create web-2@web-r2"],
            },
            Case {
                name: "ordered: failed pod is deleted and the rest waits",
                spec: json!({}),
                pods: vec![pod(0, "web-r2", "failed"), pod(1, "web-r2", "ready")],
                current: false,
                want: vec!["delete web-0"],
            },
            Case {
                name: "ordered scale down: highest first, one at a time",
                spec: json!({"replicas": 1}),
                pods: vec![pod(0, "web-r2", "ready"), pod(1, "web-r2", "ready"), pod(2, "web-r2", "ready")],
                current: false,
                want: vec!["delete web-2"],
            },
            Case {
                name: "ordered scale down waits for a terminating pod",
                spec: json!({"replicas": 1}),
                pods: vec![pod(0, "web-r2", "ready"), pod(1, "web-r2", "ready"), pod(2, "web-r2", "deleting")],
                current: false,
                want: vec![],
            },
            Case {
                name: "parallel scale down deletes all condemned",
                spec: json!({"replicas": 1, "podManagementPolicy": "Parallel"}),
                pods: vec![pod(0, "web-r2", "ready"), pod(1, "web-r2", "ready"), pod(2, "web-r2", "running")],
                current: false,
                want: vec!["delete web-2", "delete web-1"],
            },
            Case {
                name: "claims come before their pod",
                spec: json!({"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]}),
                pods: vec![],
                current: false,
                want: vec!["claim data-web-0", "create web-0@web-r2"],
            },
            Case {
                name: "rolling update: highest ordinal first",
                spec: json!({}),
                pods: vec![pod(0, "web-r1", "ready"), pod(1, "web-r1", "ready"), pod(2, "web-r1", "ready")],
                current: true,
                want: vec!["delete web-2"],
            },
            Case {
                name: "rolling update: waits for the replacement",
                spec: json!({}),
                pods: vec![pod(0, "web-r1", "ready"), pod(1, "web-r1", "ready"), pod(2, "web-r2", "running")],
                current: true,
                want: vec![],
            },
            Case {
                name: "rolling update: next one once healthy",
                spec: json!({}),
                pods: vec![pod(0, "web-r1", "ready"), pod(1, "web-r1", "ready"), pod(2, "web-r2", "ready")],
                current: true,
                want: vec!["delete web-1"],
            },
            Case {
                name: "partition stops the rollout",
                spec: json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
                pods: vec![pod(0, "web-r1", "ready"), pod(1, "web-r1", "ready"), pod(2, "web-r2", "ready")],
                current: true,
                want: vec![],
            },
            Case {
                name: "below the partition pods are recreated at the current revision",
                spec: json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
                pods: vec![pod(0, "web-r1", "ready")],
                current: true,
                want: vec!["create web-1@web-r1"],
            },
            Case {
                name: "OnDelete leaves old pods",
                spec: json!({"updateStrategy": {"type": "OnDelete"}}),
                pods: vec![pod(0, "web-r1", "ready"), pod(1, "web-r1", "ready"), pod(2, "web-r1", "ready")],
                current: true,
                want: vec![],
            },
            Case {
                name: "OnDelete recreates at the update revision",
                spec: json!({"updateStrategy": {"type": "OnDelete"}}),
                pods: vec![pod(0, "web-r1", "ready")],
                current: true,
                want: vec!["create web-1@web-r2"],
            },
            Case {
                name: "ordinals.start",
                spec: json!({"ordinals": {"start": 5}, "replicas": 2}),
                pods: vec![pod(5, "web-r2", "ready"), pod(0, "web-r2", "ready")],
                current: false,
                want: vec!["create web-6@web-r2"],
            },
        ];
        for c in cases {
            let s = sts(c.spec);
            let refs: Vec<&Value> = c.pods.iter().collect();
            let p = plan(&s, &refs, &HashSet::new(), if c.current { &cur } else { &same }, &upd, now);
            assert_eq!(summary(&p), c.want, "{}", c.name);
        }
    }

    #[test]
    fn status_counts_and_completes_rollout() {
        let t = json!({});
        let cur = Rev { name: "web-r1", template: &t };
        let upd = Rev { name: "web-r2", template: &t };
        let now: Timestamp = "2024-06-01T00:00:00Z".parse().unwrap();
        let s = sts(json!({}));
        let pods = [pod(0, "web-r1", "ready"), pod(1, "web-r2", "ready"), pod(2, "web-r2", "running")];
        let refs: Vec<&Value> = pods.iter().collect();
        let p = plan(&s, &refs, &HashSet::new(), &cur, &upd, now);
        assert_eq!(p.status["replicas"], 3);
        assert_eq!(p.status["readyReplicas"], 2);
        assert_eq!(p.status["currentReplicas"], 1);
        assert_eq!(p.status["updatedReplicas"], 2);
        assert_eq!(p.status["currentRevision"], "web-r1");
        assert_eq!(p.status["updateRevision"], "web-r2");
        assert_eq!(p.status["observedGeneration"], 2);
        let pods = [pod(0, "web-r2", "ready"), pod(1, "web-r2", "ready"), pod(2, "web-r2", "ready")];
        let refs: Vec<&Value> = pods.iter().collect();
        let p = plan(&s, &refs, &HashSet::new(), &cur, &upd, now);
        assert_eq!(p.status["currentRevision"], "web-r2");
        assert_eq!(p.status["currentReplicas"], 3);
    }

    #[test]
    fn pod_identity_and_storage() {
        let s = sts(
            json!({"volumeClaimTemplates": [{"metadata": {"name": "data", "labels": {"tier": "db"}}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}],
                           "template": {"spec": {"volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "emptyDir": {}}]}}}),
        );
        let t = s.pointer("/spec/template").cloned().unwrap();
        let p = new_pod(&s, &Rev { name: "web-abc", template: &t }, 4);
        assert_eq!(util::name(&p), "web-4");
        assert_eq!(p.pointer("/spec/hostname"), Some(&json!("web-4")));
        assert_eq!(p.pointer("/spec/subdomain"), Some(&json!("web-svc")));
        assert_eq!(p.pointer("/metadata/labels/statefulset.kubernetes.io~1pod-name"), Some(&json!("web-4")));
        assert_eq!(p.pointer("/metadata/labels/apps.kubernetes.io~1pod-index"), Some(&json!("4")));
        assert_eq!(p.pointer("/metadata/labels/controller-revision-hash"), Some(&json!("web-abc")));
        let vols = p.pointer("/spec/volumes").and_then(|v| v.as_array()).unwrap();
        assert_eq!(vols.len(), 2);
        assert!(vols.iter().any(|v| v["name"] == "data" && v["persistentVolumeClaim"]["claimName"] == "data-web-4"));
        let claims = claims_for(&s, 4);
        assert_eq!(claims.len(), 1);
        assert_eq!(util::name(&claims[0]), "data-web-4");
        assert_eq!(claims[0].pointer("/metadata/labels/tier"), Some(&json!("db")));
        assert_eq!(claims[0].pointer("/metadata/labels/app"), Some(&json!("web")));
        assert!(claims[0].pointer("/metadata/ownerReferences").is_none());
    }
}
