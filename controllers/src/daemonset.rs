//! The DaemonSet controller (apps/v1): one pod per eligible node.
//!
//! A node is eligible when it matches the pod template's `nodeSelector` and required node
//! affinity and the pod (with the tolerations every daemon pod gets) tolerates the node's
//! `NoSchedule`/`NoExecute` taints. As in Kubernetes, a node that only gained an untolerated
//! `NoSchedule` taint keeps its pod (it is then counted as misscheduled); an untolerated
//! `NoExecute` taint, or the node no longer matching, removes it.
//!
//! Daemon pods are created already targeted at their node by a required node affinity
//! `matchFields metadata.name In [node]` (not `spec.nodeName`), so the scheduler binds them
//! and accounts for their resources. Template versions are ControllerRevisions named
//! `<ds>-<hash>`; pods carry the hash in `controller-revision-hash`. Updates follow
//! `updateStrategy`: `RollingUpdate` (maxUnavailable / maxSurge, per node, as Kubernetes'
//! `rollingUpdate`) or `OnDelete`.
//!
//! Deviations: failed daemon pods are replaced without Kubernetes' per-node backoff; pods
//! targeting a node that no longer exists are deleted by this controller (Kubernetes leaves
//! bound ones to pod GC).

pub mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::Ctx;
use crate::client::res;
use crate::events::Recorder;
use crate::informer::{Change, Informer, key_of};
use crate::queue::WorkQueue;
use crate::util;

use common::*;

const API_VERSION: &str = "apps/v1";
const KIND: &str = "DaemonSet";
const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";
const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

pub async fn run(ctx: Arc<Ctx>) {
    run_with_clock(ctx, Arc::new(SystemClock)).await
}

/// [`run`] with an injected clock (tests).
pub async fn run_with_clock(ctx: Arc<Ctx>, clock: Arc<dyn Clock>) {
    let dss = ctx.informers.get(res("apps", "daemonsets"));
    let pods_inf = ctx.informers.get(pods());
    let nodes = ctx.informers.get(res("", "nodes"));
    let revs = ctx.informers.get(res("apps", "controllerrevisions"));
    let queue = WorkQueue::new();
    let mut set = JoinSet::new();

    let lag = |q: &WorkQueue, dss: &Arc<Informer>| {
        let (q, dss) = (q.clone(), dss.clone());
        move || enqueue_all(&q, &dss)
    };
    {
        let q = queue.clone();
        forward_changes(&mut set, &dss, move |c| q.add(c.key.clone()), lag(&queue, &dss));
    }
    for child in [&pods_inf, &revs] {
        let (q, owners) = (queue.clone(), dss.clone());
        forward_changes(
            &mut set,
            child,
            move |c| enqueue_owners(c, KIND, &q, &owners, |ds, o| util::selector_matches(ds.pointer("/spec/selector"), o)),
            lag(&queue, &dss),
        );
    }
    {
        let (q, owners) = (queue.clone(), dss.clone());
        forward_changes(
            &mut set,
            &nodes,
            move |c| {
                if node_change_matters(c) {
                    enqueue_all(&q, &owners)
                }
            },
            lag(&queue, &dss),
        );
    }
    for inf in [&dss, &pods_inf, &nodes, &revs] {
        inf.synced().await;
    }
    enqueue_all(&queue, &dss);

    let ctl = Arc::new(Controller {
        recorder: ctx.recorder("daemonset-controller"),
        timers: Timers::new(clock.clone(), queue.clone()),
        ctx,
        clock,
        expectations: Expectations::default(),
        dss,
        pods: pods_inf,
        nodes,
        revs,
    });
    spawn_workers(
        &mut set,
        2,
        queue,
        "daemonset",
        Arc::new(move |key| {
            let ctl = ctl.clone();
            Box::pin(async move { ctl.sync(&key).await })
        }),
    );
    join_forever(set).await
}

/// Only what eligibility reads: labels, taints (spec), existence.
fn node_change_matters(c: &Change) -> bool {
    match (&c.old, &c.new) {
        (Some(o), Some(n)) => o.pointer("/metadata/labels") != n.pointer("/metadata/labels") || o.get("spec") != n.get("spec"),
        _ => true,
    }
}

struct Controller {
    ctx: Arc<Ctx>,
    clock: Arc<dyn Clock>,
    timers: Timers,
    expectations: Expectations,
    recorder: Recorder,
    dss: Arc<Informer>,
    pods: Arc<Informer>,
    nodes: Arc<Informer>,
    revs: Arc<Informer>,
}

impl Controller {
    async fn sync(&self, key: &str) -> SyncResult {
        let Some(ds) = self.dss.get(key) else {
            self.expectations.forget(key);
            return Ok(());
        };
        if util::is_deleting(&ds) {
            return Ok(());
        }
        let client = self.ctx.client.as_ref();
        let selector = ds.pointer("/spec/selector").cloned();
        let oref = owner_ref(&ds, API_VERSION, KIND);
        let matches = |o: &Value| util::selector_matches(selector.as_ref(), o);
        let owned_pods = claim_and_patch(client, pods(), &self.pods, &ds, &oref, matches, &[]).await?;
        let owned_revs = claim_and_patch(client, res("apps", "controllerrevisions"), &self.revs, &ds, &oref, matches, &[]).await?;
        let revisions = sync_revisions(client, &ds, res("apps", "daemonsets"), &oref, owned_revs.iter().map(|r| (**r).clone()).collect(), &self.revs).await?;
        let hash = revision_hash_of(&revisions.update);

        if !self.expectations.satisfied(key, &self.pods) {
            // The pod events that satisfy them requeue this key.
            return Ok(());
        }
        let nodes = self.nodes.list();
        let node_refs: Vec<&Value> = nodes.iter().map(|n| n.as_ref()).collect();
        let pod_refs: Vec<&Value> = owned_pods.iter().map(|p| p.as_ref()).collect();
        let now = self.clock.now();
        let p = plan(&ds, &node_refs, &pod_refs, &hash, now);

        let mut first_err: Option<SyncError> = None;
        for (name, uid) in &p.delete {
            match delete_exact(client, pods(), util::namespace(&ds), name, uid, None).await {
                Ok(()) => {
                    self.expectations.expect_delete(key, format!("{}/{}", util::namespace(&ds), name), uid.clone());
                    self.recorder.event(&ds, "Normal", "SuccessfulDelete", &format!("Deleted pod: {name}")).await;
                }
                Err(e) => {
                    self.recorder.event(&ds, "Warning", "FailedDelete", &format!("Error deleting pod {name}: {e}")).await;
                    first_err.get_or_insert(e.into());
                }
            }
        }
        for node in &p.create_on {
            let pod = new_pod(&ds, node, &hash);
            match client.create(pods(), ns_opt(&ds), pod).await {
                Ok(created) => {
                    self.expectations.expect_create(key, key_of(&created));
                    self.recorder.event(&ds, "Normal", "SuccessfulCreate", &format!("Created pod: {}", util::name(&created))).await;
                }
                Err(e) => {
                    self.recorder.event(&ds, "Warning", "FailedCreate", &format!("Error creating pod on node {node}: {e}")).await;
                    first_err.get_or_insert(e.into());
                }
            }
        }

        let live: HashSet<&str> = pod_refs.iter().filter_map(|p| str_at(p, "/metadata/labels/controller-revision-hash")).collect();
        let mut keep: HashSet<String> = HashSet::from([util::name(&revisions.update).to_string()]);
        for r in &revisions.all {
            if live.contains(revision_hash_of(r).as_str()) {
                keep.insert(util::name(r).to_string());
            }
        }
        let limit = i64_at(&ds, "/spec/revisionHistoryLimit").unwrap_or(10);
        cleanup_revisions(client, &revisions.all, &keep, limit).await?;

        write_status(client, res("apps", "daemonsets"), &ds, p.status).await?;
        if let Some(t) = p.requeue_at {
            self.timers.at(key, t);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn revision_hash_of(rev: &Value) -> String {
    match str_at(rev, "/metadata/labels/controller-revision-hash") {
        Some(h) => h.to_string(),
        None => util::name(rev).rsplit('-').next().unwrap_or("").to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Eligibility

/// Whether a daemon pod should be created on a node, and whether an existing one may stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeFit {
    pub should_run: bool,
    pub should_continue_running: bool,
}

/// The tolerations Kubernetes adds to every daemon pod (`AddOrUpdateDaemonPodTolerations`):
/// node problems must not evict or block a node's own daemons.
pub fn daemon_tolerations(host_network: bool) -> Vec<Value> {
    let mut t = vec![
        json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}),
        json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}),
        json!({"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"}),
        json!({"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"}),
        json!({"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"}),
        json!({"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}),
    ];
    if host_network {
        t.push(json!({"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"}));
    }
    t
}

/// A pod spec with the daemon tolerations added (replacing same key+effect ones, which the
/// daemon versions supersede: they have no tolerationSeconds).
pub fn with_daemon_tolerations(spec: &Value) -> Value {
    let mut spec = if spec.is_object() { spec.clone() } else { json!({}) };
    let host_network = spec.get("hostNetwork").and_then(|h| h.as_bool()) == Some(true);
    let mut tols: Vec<Value> = spec.get("tolerations").and_then(|t| t.as_array()).cloned().unwrap_or_default();
    for add in daemon_tolerations(host_network) {
        tols.retain(|t| !(t.get("key") == add.get("key") && t.get("effect") == add.get("effect") && t.get("operator") == add.get("operator")));
        tols.push(add);
    }
    set_field(&mut spec, "tolerations", json!(tols));
    spec
}

/// Whether a toleration tolerates a taint (Kubernetes' `ToleratesTaint`).
pub fn tolerates(tol: &Value, taint: &Value) -> bool {
    let s = |v: &Value, k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let (t_effect, t_key, t_op, t_value) = (s(tol, "effect"), s(tol, "key"), s(tol, "operator"), s(tol, "value"));
    if !t_effect.is_empty() && t_effect != s(taint, "effect") {
        return false;
    }
    if !t_key.is_empty() && t_key != s(taint, "key") {
        return false;
    }
    match t_op.as_str() {
        "Exists" => true,
        "" | "Equal" => !t_key.is_empty() && t_value == s(taint, "value"),
        _ => false,
    }
}

fn requirement_matches(req: &Value, value: Option<&str>) -> bool {
    let op = req.get("operator").and_then(|o| o.as_str()).unwrap_or("");
    let values: Vec<&str> = req.get("values").and_then(|v| v.as_array()).map(|a| a.iter().filter_map(|x| x.as_str()).collect()).unwrap_or_default();
    let num = |s: &str| s.trim().parse::<i64>().ok();
    match op {
        "In" => value.is_some_and(|v| values.contains(&v)),
        "NotIn" => value.is_none_or(|v| !values.contains(&v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => matches!((value.and_then(num), values.first().and_then(|v| num(v))), (Some(a), Some(b)) if a > b),
        "Lt" => matches!((value.and_then(num), values.first().and_then(|v| num(v))), (Some(a), Some(b)) if a < b),
        _ => false,
    }
}

/// One `NodeSelectorTerm`: all its expressions (labels) and fields (only `metadata.name`)
/// match. An empty term matches nothing, as in Kubernetes.
pub fn node_selector_term_matches(term: &Value, node: &Value) -> bool {
    let exprs = term.get("matchExpressions").and_then(|e| e.as_array()).map(|a| a.as_slice()).unwrap_or(&[]);
    let fields = term.get("matchFields").and_then(|e| e.as_array()).map(|a| a.as_slice()).unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = apimachinery::selector::labels_of(node);
    exprs.iter().all(|e| {
        let key = e.get("key").and_then(|k| k.as_str()).unwrap_or("");
        requirement_matches(e, labels.get(key).map(|s| s.as_str()))
    }) && fields.iter().all(|f| match f.get("key").and_then(|k| k.as_str()) {
        Some("metadata.name") => requirement_matches(f, Some(util::name(node))),
        _ => false,
    })
}

/// `nodeSelector` and required node affinity of a pod spec, against a node.
pub fn node_affinity_matches(spec: &Value, node: &Value) -> bool {
    let labels = apimachinery::selector::labels_of(node);
    if let Some(sel) = spec.get("nodeSelector").and_then(|s| s.as_object())
        && !sel.iter().all(|(k, v)| v.as_str().is_some_and(|v| labels.get(k).map(|s| s.as_str()) == Some(v)))
    {
        return false;
    }
    match spec.pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution") {
        Some(req) if !req.is_null() => {
            let terms = req.get("nodeSelectorTerms").and_then(|t| t.as_array()).map(|a| a.as_slice()).unwrap_or(&[]);
            terms.iter().any(|t| node_selector_term_matches(t, node))
        }
        _ => true,
    }
}

/// Kubernetes' `NodeShouldRunDaemonPod`, for a pod spec that already carries the daemon
/// tolerations.
pub fn node_should_run(node: &Value, spec: &Value) -> NodeFit {
    let no = NodeFit { should_run: false, should_continue_running: false };
    if let Some(n) = spec.get("nodeName").and_then(|n| n.as_str()).filter(|n| !n.is_empty())
        && n != util::name(node)
    {
        return no;
    }
    if !node_affinity_matches(spec, node) {
        return no;
    }
    let tols = spec.get("tolerations").and_then(|t| t.as_array()).map(|a| a.as_slice()).unwrap_or(&[]);
    let mut fit = NodeFit { should_run: true, should_continue_running: true };
    for taint in node.pointer("/spec/taints").and_then(|t| t.as_array()).map(|a| a.as_slice()).unwrap_or(&[]) {
        let effect = taint.get("effect").and_then(|e| e.as_str()).unwrap_or("");
        if !matches!(effect, "NoSchedule" | "NoExecute") || tols.iter().any(|t| tolerates(t, taint)) {
            continue;
        }
        fit.should_run = false;
        if effect == "NoExecute" {
            fit.should_continue_running = false;
        }
    }
    fit
}

/// The node a daemon pod is bound or targeted to.
pub fn target_node(pod: &Value) -> Option<&str> {
    if let Some(n) = str_at(pod, "/spec/nodeName").filter(|n| !n.is_empty()) {
        return Some(n);
    }
    let terms = pod.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")?.as_array()?;
    terms.iter().find_map(|t| {
        t.get("matchFields")?.as_array()?.iter().find_map(|f| {
            let values = f.get("values")?.as_array()?;
            (f.get("key")?.as_str()? == "metadata.name" && f.get("operator")?.as_str()? == "In" && values.len() == 1).then(|| values[0].as_str()).flatten()
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Pods

fn template_generation(ds: &Value) -> Option<String> {
    str_at(ds, &format!("/metadata/annotations/{}", TEMPLATE_GENERATION_ANNOTATION.replace('/', "~1"))).map(String::from)
}

/// The daemon pod for `node`, from the DaemonSet's template at revision `hash`.
pub fn new_pod(ds: &Value, node: &str, hash: &str) -> Value {
    let template = ds.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    let mut extra = vec![(REVISION_HASH_LABEL, hash.to_string())];
    if let Some(g) = template_generation(ds) {
        extra.push((TEMPLATE_GENERATION_LABEL, g));
    }
    let labels = merged_labels(template.pointer("/metadata/labels"), &extra);
    let mut spec = with_daemon_tolerations(template.get("spec").unwrap_or(&Value::Null));
    let term = json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]});
    let affinity = child_obj(&mut spec, "affinity");
    set_field(child_obj(affinity, "nodeAffinity"), "requiredDuringSchedulingIgnoredDuringExecution", term);
    let mut meta = json!({
        "generateName": format!("{}-", util::name(ds)),
        "namespace": util::namespace(ds),
        "labels": labels,
        "ownerReferences": [owner_ref(ds, API_VERSION, KIND)],
    });
    if let Some(a) = template.pointer("/metadata/annotations").filter(|a| a.is_object()) {
        meta["annotations"] = a.clone();
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

// ---------------------------------------------------------------------------------------------
// Planning

/// What one sync does.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Nodes to create a daemon pod on.
    pub create_on: Vec<String>,
    /// Pods to delete: (name, uid).
    pub delete: Vec<(String, String)>,
    pub status: Value,
    /// When a pod becomes available (minReadySeconds) and the status should be recomputed.
    pub requeue_at: Option<Timestamp>,
}

/// Scheduled pods first, then oldest, then by name (Kubernetes' `podByCreationTimestampAndPhase`).
fn sort_pods(pods: &mut [&Value]) {
    pods.sort_by(|a, b| {
        let sa = str_at(a, "/spec/nodeName").is_some_and(|n| !n.is_empty());
        let sb = str_at(b, "/spec/nodeName").is_some_and(|n| !n.is_empty());
        sb.cmp(&sa).then_with(|| creation(a).cmp(&creation(b))).then_with(|| util::name(a).cmp(util::name(b)))
    });
}

/// The DaemonSet's `(maxSurge, maxUnavailable)` for `desired` nodes, `None` for `OnDelete`.
fn rolling_limits(ds: &Value, desired: i64) -> Option<(i64, i64)> {
    let strategy = str_at(ds, "/spec/updateStrategy/type").unwrap_or("RollingUpdate");
    if strategy != "RollingUpdate" {
        return None;
    }
    let ru = ds.pointer("/spec/updateStrategy/rollingUpdate");
    let surge = scaled_int_or_percent(ru.and_then(|r| r.get("maxSurge")), desired, true, 0).max(0);
    let mut unavailable = scaled_int_or_percent(ru.and_then(|r| r.get("maxUnavailable")), desired, true, 1).max(0);
    if desired > 0 && surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Some((surge, unavailable))
}

/// Computes the pods to create and delete and the status, from the DaemonSet, every node, the
/// pods it owns and the hash of its current revision.
pub fn plan(ds: &Value, nodes: &[&Value], pods: &[&Value], hash: &str, now: Timestamp) -> Plan {
    let spec = with_daemon_tolerations(ds.pointer("/spec/template/spec").unwrap_or(&Value::Null));
    let min_ready = i64_at(ds, "/spec/minReadySeconds").unwrap_or(0);
    let generation = template_generation(ds);
    let is_updated = |p: &Value| {
        str_at(p, "/metadata/labels/controller-revision-hash") == Some(hash)
            || generation.as_deref().is_some_and(|g| str_at(p, &format!("/metadata/labels/{TEMPLATE_GENERATION_LABEL}")) == Some(g))
    };
    let available = |p: &Value| util::is_pod_available(p, min_ready, now);

    let mut by_node: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for p in pods {
        if let Some(n) = target_node(p) {
            by_node.entry(n).or_default().push(p);
        }
    }
    let mut nodes: Vec<&Value> = nodes.to_vec();
    nodes.sort_by(|a, b| util::name(a).cmp(util::name(b)));
    let fits: Vec<(&str, NodeFit)> = nodes.iter().map(|n| (util::name(n), node_should_run(n, &spec))).collect();
    let desired = fits.iter().filter(|(_, f)| f.should_run).count() as i64;
    let limits = rolling_limits(ds, desired);
    let allows_surge = limits.is_some_and(|(s, _)| s > 0);

    let mut out = Plan::default();
    let delete = |p: &Value, out: &mut Plan| {
        if !util::is_deleting(p) && !out.delete.iter().any(|(_, u)| u == util::uid(p)) {
            out.delete.push((util::name(p).to_string(), util::uid(p).to_string()));
        }
    };

    // Pods targeting nodes that are gone.
    let known: HashSet<&str> = fits.iter().map(|(n, _)| *n).collect();
    for (n, ps) in &by_node {
        if !known.contains(n) {
            for p in ps {
                delete(p, &mut out);
            }
        }
    }

    // The manage loop: at most one daemon pod per eligible node (two while surging).
    for (name, fit) in &fits {
        let on_node = by_node.get(name).cloned().unwrap_or_default();
        if on_node.is_empty() {
            if fit.should_run {
                out.create_on.push(name.to_string());
            }
            continue;
        }
        if !fit.should_continue_running {
            for p in &on_node {
                delete(p, &mut out);
            }
            continue;
        }
        let mut running = Vec::new();
        for p in on_node {
            if util::is_deleting(p) {
                continue;
            }
            if matches!(util::pod_phase(p), "Failed" | "Succeeded") {
                delete(p, &mut out);
            } else {
                running.push(p);
            }
        }
        sort_pods(&mut running);
        if !allows_surge {
            for p in running.iter().skip(1) {
                delete(p, &mut out);
            }
        } else {
            let (mut new, old): (Vec<&Value>, Vec<&Value>) = running.iter().partition(|p| is_updated(p));
            // Keep the oldest available new pod (else the oldest new one) and the oldest old one.
            new.sort_by_key(|p| !available(p));
            for p in new.iter().skip(1).chain(old.iter().skip(1)) {
                delete(p, &mut out);
            }
            if let (Some(n), Some(o)) = (new.first(), old.first())
                && available(n)
            {
                delete(o, &mut out);
            }
        }
    }

    // The rolling update runs only once the manage loop has nothing left to do, so its
    // unavailability arithmetic sees settled nodes.
    if out.create_on.is_empty()
        && out.delete.is_empty()
        && let Some((max_surge, max_unavailable)) = limits
    {
        let find = |ps: &[&Value]| -> Option<(Option<Value>, Option<Value>)> {
            let (mut new, mut old) = (None, None);
            for p in ps.iter().filter(|p| !util::is_deleting(p)) {
                let slot = if is_updated(p) { &mut new } else { &mut old };
                if slot.is_some() {
                    return None;
                }
                *slot = Some((*p).clone());
            }
            Some((new, old))
        };
        let desired_nodes: Vec<&str> = fits.iter().filter(|(_, f)| f.should_run).map(|(n, _)| *n).collect();
        if max_surge == 0 {
            let mut unavailable = 0;
            let mut allowed = Vec::new();
            let mut candidates = Vec::new();
            for n in &desired_nodes {
                let ps = by_node.get(n).cloned().unwrap_or_default();
                match find(&ps) {
                    None | Some((None, None)) | Some((Some(_), Some(_))) => unavailable += 1,
                    Some((Some(new), None)) => {
                        if !available(&new) {
                            unavailable += 1
                        }
                    }
                    Some((None, Some(old))) => {
                        if !available(&old) {
                            allowed.push(old);
                            unavailable += 1;
                        } else if unavailable < max_unavailable {
                            candidates.push(old);
                        }
                    }
                }
            }
            let room = (max_unavailable - unavailable).clamp(0, candidates.len() as i64) as usize;
            for p in allowed.iter().chain(candidates.iter().take(room)) {
                delete(p, &mut out);
            }
        } else {
            let mut surging = 0;
            let mut allowed = Vec::new();
            let mut candidates = Vec::new();
            for n in &desired_nodes {
                let ps = by_node.get(n).cloned().unwrap_or_default();
                match find(&ps) {
                    None => surging += 1,
                    Some((_, None)) => {}
                    Some((None, Some(old))) => {
                        if !available(&old) {
                            allowed.push(n.to_string());
                        } else if surging < max_surge {
                            candidates.push(n.to_string());
                        }
                    }
                    Some((Some(new), Some(old))) => {
                        if available(&new) {
                            delete(&old, &mut out);
                        } else {
                            surging += 1;
                        }
                    }
                }
            }
            let room = (max_surge - surging).clamp(0, candidates.len() as i64) as usize;
            out.create_on.extend(allowed.into_iter().chain(candidates.into_iter().take(room)));
        }
    }

    // Status, from the pods as they are now (the next sync sees the effect of this one).
    let (mut current, mut misscheduled, mut ready, mut avail, mut updated) = (0i64, 0i64, 0i64, 0i64, 0i64);
    for (name, fit) in &fits {
        let mut ps: Vec<&Value> = by_node.get(name).map(|v| v.iter().copied().filter(|p| !util::is_deleting(p)).collect()).unwrap_or_default();
        if !fit.should_run {
            if !ps.is_empty() {
                misscheduled += 1;
            }
            continue;
        }
        if ps.is_empty() {
            continue;
        }
        current += 1;
        sort_pods(&mut ps);
        let p = ps[0];
        if util::is_pod_ready(p) {
            ready += 1;
            if available(p) {
                avail += 1;
            } else if let Some(t) = available_at(p, min_ready) {
                out.requeue_at = Some(out.requeue_at.map_or(t, |r| r.min(t)));
            }
        }
        if is_updated(p) {
            updated += 1;
        }
    }
    let mut status = json!({
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "desiredNumberScheduled": desired,
        "numberReady": ready,
        "observedGeneration": generation_of(ds),
        "updatedNumberScheduled": updated,
        "numberAvailable": avail,
        "numberUnavailable": (desired - avail).max(0),
    });
    for keep in ["collisionCount", "conditions"] {
        if let Some(v) = ds.pointer(&format!("/status/{keep}")) {
            status[keep] = v.clone();
        }
    }
    out.status = status;
    out
}

fn generation_of(o: &Value) -> i64 {
    common::generation(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, labels: Value, taints: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels, "uid": format!("n-{name}")}, "spec": {"taints": taints}})
    }

    fn ds(extra_spec: Value) -> Value {
        let mut d = json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "default", "uid": "ds-uid", "generation": 1},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
            }
        });
        crate::testing::merge(&mut d, &json!({"spec": extra_spec}));
        d
    }

    fn pod(name: &str, node: &str, hash: &str, ready: bool, created: &str) -> Value {
        let mut p = json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("u-{name}"), "creationTimestamp": created,
                         "labels": {"app": "agent", "controller-revision-hash": hash}},
            "spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}}},
            "status": {"phase": "Pending"}
        });
        if ready {
            p["status"] = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]});
        }
        p
    }

    fn now() -> Timestamp {
        "2024-06-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn tolerations_table() {
        let taint = json!({"key": "k", "value": "v", "effect": "NoSchedule"});
        let cases = [
            (json!({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}), true),
            (json!({"key": "k", "value": "v"}), true),
            (json!({"key": "k", "value": "w"}), false),
            (json!({"key": "k", "operator": "Exists"}), true),
            (json!({"operator": "Exists"}), true),
            (json!({"operator": "Exists", "effect": "NoExecute"}), false),
            (json!({"key": "other", "operator": "Exists"}), false),
            (json!({"value": "v"}), false),
        ];
        for (tol, want) in cases {
            assert_eq!(tolerates(&tol, &taint), want, "{tol}");
        }
    }

    #[test]
    fn node_eligibility_table() {
        let base = json!({"containers": []});
        let sel = json!({"nodeSelector": {"disk": "ssd"}});
        let aff = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]},
            {"matchExpressions": [{"key": "cpu", "operator": "Gt", "values": ["8"]}]}
        ]}}}});
        let yes = NodeFit { should_run: true, should_continue_running: true };
        let no = NodeFit { should_run: false, should_continue_running: false };
        let stay = NodeFit { should_run: false, should_continue_running: true };
        let cases = [
            ("plain node", base.clone(), node("n", json!({}), json!([])), yes),
            ("selector matches", sel.clone(), node("n", json!({"disk": "ssd"}), json!([])), yes),
            ("selector misses", sel.clone(), node("n", json!({"disk": "hdd"}), json!([])), no),
            ("affinity first term", aff.clone(), node("n", json!({"zone": "b"}), json!([])), yes),
            ("affinity second term", aff.clone(), node("n", json!({"cpu": "16"}), json!([])), yes),
            ("affinity misses", aff.clone(), node("n", json!({"zone": "c", "cpu": "4"}), json!([])), no),
            ("NoSchedule taint", base.clone(), node("n", json!({}), json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])), stay),
            ("NoExecute taint", base.clone(), node("n", json!({}), json!([{"key": "dedicated", "effect": "NoExecute"}])), no),
            ("PreferNoSchedule ignored", base.clone(), node("n", json!({}), json!([{"key": "x", "effect": "PreferNoSchedule"}])), yes),
            ("not-ready tolerated", base.clone(), node("n", json!({}), json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}])), yes),
            ("unschedulable tolerated", base.clone(), node("n", json!({}), json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}])), yes),
            (
                "network-unavailable not tolerated without hostNetwork",
                base.clone(),
                node("n", json!({}), json!([{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}])),
                stay,
            ),
            (
                "network-unavailable tolerated with hostNetwork",
                json!({"hostNetwork": true}),
                node("n", json!({}), json!([{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}])),
                yes,
            ),
            (
                "own toleration",
                json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}]}),
                node("n", json!({}), json!([{"key": "dedicated", "effect": "NoExecute"}])),
                yes,
            ),
            ("nodeName elsewhere", json!({"nodeName": "other"}), node("n", json!({}), json!([])), no),
        ];
        for (what, spec, n, want) in cases {
            assert_eq!(node_should_run(&n, &with_daemon_tolerations(&spec)), want, "{what}");
        }
    }

    #[test]
    fn new_pod_targets_its_node() {
        let d = ds(
            json!({"template": {"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Exists"}]}]}}}}}}),
        );
        let p = new_pod(&d, "node-1", "abc");
        assert_eq!(target_node(&p), Some("node-1"));
        assert!(p.pointer("/spec/nodeName").is_none());
        assert_eq!(p.pointer("/metadata/labels/controller-revision-hash"), Some(&json!("abc")));
        assert_eq!(p.pointer("/metadata/labels/app"), Some(&json!("agent")));
        assert_eq!(p.pointer("/metadata/ownerReferences/0/kind"), Some(&json!("DaemonSet")));
        assert_eq!(p.pointer("/metadata/ownerReferences/0/controller"), Some(&json!(true)));
        let tols = p.pointer("/spec/tolerations").and_then(|t| t.as_array()).unwrap();
        assert!(tols.iter().any(|t| t["key"] == "node.kubernetes.io/unreachable" && t.get("tolerationSeconds").is_none()));
    }

    #[test]
    fn plan_places_one_pod_per_eligible_node() {
        let d = ds(json!({}));
        let n1 = node("n1", json!({}), json!([]));
        let n2 = node("n2", json!({}), json!([{"key": "x", "effect": "NoSchedule"}]));
        let n3 = node("n3", json!({}), json!([]));
        let p3 = pod("a-3", "n3", "h1", true, "2024-01-01T00:00:00Z");
        let p3dup = pod("a-3b", "n3", "h1", true, "2024-01-02T00:00:00Z");
        let gone = pod("a-9", "n9", "h1", true, "2024-01-01T00:00:00Z");
        let p = plan(&d, &[&n1, &n2, &n3], &[&p3, &p3dup, &gone], "h1", now());
        assert_eq!(p.create_on, ["n1"]);
        let deleted: Vec<&str> = p.delete.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(deleted, ["a-9", "a-3b"]);
        assert_eq!(p.status["desiredNumberScheduled"], 2);
        assert_eq!(p.status["currentNumberScheduled"], 1);
        assert_eq!(p.status["numberReady"], 1);
        assert_eq!(p.status["numberUnavailable"], 1);
    }

    #[test]
    fn plan_replaces_failed_pods_and_evicts_from_noexecute_nodes() {
        let d = ds(json!({}));
        let n1 = node("n1", json!({}), json!([]));
        let n2 = node("n2", json!({}), json!([{"key": "x", "effect": "NoExecute"}]));
        let mut failed = pod("a-1", "n1", "h1", false, "2024-01-01T00:00:00Z");
        failed["status"]["phase"] = json!("Failed");
        let evicted = pod("a-2", "n2", "h1", true, "2024-01-01T00:00:00Z");
        let p = plan(&d, &[&n1, &n2], &[&failed, &evicted], "h1", now());
        assert!(p.create_on.is_empty(), "a failed pod is replaced only once it is gone");
        let deleted: Vec<&str> = p.delete.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(deleted, ["a-1", "a-2"]);
        assert_eq!(p.status["numberMisscheduled"], 1);
    }

    #[test]
    fn rolling_update_table() {
        let nodes: Vec<Value> = (1..=4).map(|i| node(&format!("n{i}"), json!({}), json!([]))).collect();
        let nrefs: Vec<&Value> = nodes.iter().collect();
        let old: Vec<Value> = (1..=4).map(|i| pod(&format!("old-{i}"), &format!("n{i}"), "h1", true, "2024-01-01T00:00:00Z")).collect();
        struct Case {
            name: &'static str,
            strategy: Value,
            pods: Vec<Value>,
            want_delete: usize,
            want_create: usize,
        }
        let mut one_new_unready = old.clone();
        one_new_unready[0] = pod("new-1", "n1", "h2", false, "2024-01-03T00:00:00Z");
        let mut one_old_unready = old.clone();
        one_old_unready[3] = pod("old-4", "n4", "h1", false, "2024-01-01T00:00:00Z");
        let mut surged = old.clone();
        surged.push(pod("new-1", "n1", "h2", true, "2024-01-03T00:00:00Z"));
        let cases = vec![
            Case { name: "default maxUnavailable=1", strategy: json!({}), pods: old.clone(), want_delete: 1, want_create: 0 },
            Case { name: "maxUnavailable=2", strategy: json!({"rollingUpdate": {"maxUnavailable": 2}}), pods: old.clone(), want_delete: 2, want_create: 0 },
            Case {
                name: "maxUnavailable=50%",
                strategy: json!({"rollingUpdate": {"maxUnavailable": "50%"}}),
                pods: old.clone(),
                want_delete: 2,
                want_create: 0,
            },
            Case { name: "an unready new pod blocks", strategy: json!({}), pods: one_new_unready, want_delete: 0, want_create: 0 },
            Case { name: "unavailable old pods are always replaced", strategy: json!({}), pods: one_old_unready, want_delete: 1, want_create: 0 },
            Case { name: "OnDelete does nothing", strategy: json!({"type": "OnDelete"}), pods: old.clone(), want_delete: 0, want_create: 0 },
            Case {
                name: "maxSurge=1 creates first",
                strategy: json!({"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
                pods: old.clone(),
                want_delete: 0,
                want_create: 1,
            },
            Case {
                name: "surge: an available new pod retires the old one",
                strategy: json!({"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
                pods: surged,
                want_delete: 1,
                want_create: 0,
            },
        ];
        for c in cases {
            let d = ds(json!({"updateStrategy": c.strategy}));
            let prefs: Vec<&Value> = c.pods.iter().collect();
            let p = plan(&d, &nrefs, &prefs, "h2", now());
            assert_eq!((p.delete.len(), p.create_on.len()), (c.want_delete, c.want_create), "{}: {:?} {:?}", c.name, p.delete, p.create_on);
        }
    }

    #[test]
    fn min_ready_seconds_requeues_until_available() {
        let d = ds(json!({"minReadySeconds": 30}));
        let n1 = node("n1", json!({}), json!([]));
        let mut p1 = pod("a-1", "n1", "h1", true, "2024-01-01T00:00:00Z");
        p1["status"]["conditions"][0]["lastTransitionTime"] = json!("2024-06-01T00:00:00Z");
        let p = plan(&d, &[&n1], &[&p1], "h1", now());
        assert_eq!(p.status["numberReady"], 1);
        assert_eq!(p.status["numberAvailable"], 0);
        assert_eq!(p.requeue_at, Some("2024-06-01T00:00:30Z".parse().unwrap()));
    }
}
