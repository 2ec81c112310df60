//! The node lifecycle controller: node health from kubelet heartbeats, condition taints, and
//! taint-based eviction.
//!
//! * Health: a kubelet heartbeats by renewing its Lease in `kube-node-lease` and by posting the
//!   Ready condition's `lastHeartbeatTime`. When neither changed for
//!   `node_monitor_grace_period` (measured on this controller's clock from when a change was
//!   last *seen*, so skew between node and master clocks does not matter), the node's Ready and
//!   pressure conditions become Unknown.
//! * Taints: Ready=False → `node.kubernetes.io/not-ready`, Ready=Unknown →
//!   `node.kubernetes.io/unreachable`, each NoSchedule and NoExecute (the latter with
//!   `timeAdded`); pressure conditions and `spec.unschedulable` get their NoSchedule taints.
//!   Taints go away when the condition does.
//! * Eviction (the taint manager): a pod on a node with a NoExecute taint it does not tolerate is
//!   deleted at once; one tolerating it for `tolerationSeconds` is deleted that long after the
//!   taint's `timeAdded`; one tolerating it without a limit stays.
//! * Pods on a node that stops being Ready get their Ready condition set False, so endpoints
//!   stop sending them traffic before they are evicted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apimachinery::status::ApiError;
use futures::StreamExt;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::Ctx;
use crate::client::{DeleteOptions, res};
use crate::informer::{Change, Informer, key_of};
use crate::queue::WorkQueue;
use crate::util;

pub const LEASE_NAMESPACE: &str = "kube-node-lease";
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const TAINT_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// The conditions a silent node has marked Unknown.
pub const MONITORED_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// The (key, effect) pairs this controller owns on nodes; every other taint is left alone.
const MANAGED_TAINTS: [(&str, &str); 9] = [
    (TAINT_NOT_READY, "NoSchedule"),
    (TAINT_NOT_READY, "NoExecute"),
    (TAINT_UNREACHABLE, "NoSchedule"),
    (TAINT_UNREACHABLE, "NoExecute"),
    (TAINT_MEMORY_PRESSURE, "NoSchedule"),
    (TAINT_DISK_PRESSURE, "NoSchedule"),
    (TAINT_PID_PRESSURE, "NoSchedule"),
    (TAINT_NETWORK_UNAVAILABLE, "NoSchedule"),
    (TAINT_UNSCHEDULABLE, "NoSchedule"),
];

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(|x| x.as_str()).unwrap_or("")
}

fn conditions(o: &Value) -> Vec<Value> {
    o.pointer("/status/conditions").and_then(|c| c.as_array()).cloned().unwrap_or_default()
}

fn condition<'a>(o: &'a Value, ty: &str) -> Option<&'a Value> {
    o.pointer("/status/conditions").and_then(|c| c.as_array())?.iter().find(|c| c.get("type").and_then(|t| t.as_str()) == Some(ty))
}

/// The status of the node's Ready condition (`True`, `False`, `Unknown`), if it has one.
pub fn ready_status(node: &Value) -> Option<&str> {
    condition(node, "Ready").and_then(|c| c.get("status")).and_then(|s| s.as_str())
}

// ------------------------------------------------------------------------------------------
// Health and taints (pure)
// ------------------------------------------------------------------------------------------

/// The node's conditions once its kubelet went silent: the monitored conditions Unknown (added
/// when the kubelet never posted them), everything else as it was. `None` when already so.
pub fn unknown_conditions(node: &Value, now: Timestamp) -> Option<Vec<Value>> {
    let mut conds = conditions(node);
    let now_s = util::timestamp(now);
    let mut changed = false;
    for ty in MONITORED_CONDITIONS {
        match conds.iter_mut().find(|c| c.get("type").and_then(|t| t.as_str()) == Some(ty)) {
            Some(c) if c.get("status").and_then(|s| s.as_str()) == Some("Unknown") => {}
            Some(c) => {
                // lastHeartbeatTime stays: it tells when the kubelet was last heard from.
                c["status"] = json!("Unknown");
                c["reason"] = json!("NodeStatusUnknown");
                c["message"] = json!("Kubelet stopped posting node status.");
                c["lastTransitionTime"] = json!(now_s);
                changed = true;
            }
            None => {
                let created = node.pointer("/metadata/creationTimestamp").cloned().unwrap_or_else(|| json!(now_s));
                conds.push(json!({
                    "type": ty, "status": "Unknown", "reason": "NodeStatusNeverUpdated", "message": "Kubelet never posted node status.",
                    "lastHeartbeatTime": created, "lastTransitionTime": now_s,
                }));
                changed = true;
            }
        }
    }
    changed.then_some(conds)
}

fn cond_true(node: &Value, ty: &str) -> bool {
    condition(node, ty).and_then(|c| c.get("status")).and_then(|s| s.as_str()) == Some("True")
}

/// The node's taints as they should be given its conditions: managed taints added or removed,
/// taints already present kept as they are (with their `timeAdded`), others untouched. `None`
/// when nothing changes.
pub fn desired_taints(node: &Value, now: Timestamp) -> Option<Vec<Value>> {
    let mut want: Vec<(&str, &str)> = Vec::new();
    match ready_status(node) {
        Some("False") => want.extend([(TAINT_NOT_READY, "NoSchedule"), (TAINT_NOT_READY, "NoExecute")]),
        Some("Unknown") => want.extend([(TAINT_UNREACHABLE, "NoSchedule"), (TAINT_UNREACHABLE, "NoExecute")]),
        _ => {}
    }
    for (ty, key) in [("MemoryPressure", TAINT_MEMORY_PRESSURE), ("DiskPressure", TAINT_DISK_PRESSURE), ("PIDPressure", TAINT_PID_PRESSURE), ("NetworkUnavailable", TAINT_NETWORK_UNAVAILABLE)] {
        if cond_true(node, ty) {
            want.push((key, "NoSchedule"));
        }
    }
    if node.pointer("/spec/unschedulable").and_then(|u| u.as_bool()) == Some(true) {
        want.push((TAINT_UNSCHEDULABLE, "NoSchedule"));
    }
    let current: Vec<Value> = node.pointer("/spec/taints").and_then(|t| t.as_array()).cloned().unwrap_or_default();
    let pair = |t: &Value| (s(t, "/key").to_string(), s(t, "/effect").to_string());
    let mut out: Vec<Value> = current
        .iter()
        .filter(|t| {
            let (k, e) = pair(t);
            let managed = MANAGED_TAINTS.iter().any(|(mk, me)| *mk == k && *me == e);
            !managed || want.iter().any(|(wk, we)| *wk == k && *we == e)
        })
        .cloned()
        .collect();
    for (k, e) in want {
        if !out.iter().any(|t| pair(t) == (k.to_string(), e.to_string())) {
            let mut t = json!({"key": k, "effect": e});
            if e == "NoExecute" {
                t["timeAdded"] = json!(util::timestamp(now));
            }
            out.push(t);
        }
    }
    (out != current).then_some(out)
}

// ------------------------------------------------------------------------------------------
// Tolerations and eviction (pure)
// ------------------------------------------------------------------------------------------

/// Whether a toleration tolerates a taint (Kubernetes' `ToleratesTaint`).
pub fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let t_effect = s(toleration, "/effect");
    if !t_effect.is_empty() && t_effect != s(taint, "/effect") {
        return false;
    }
    let t_key = s(toleration, "/key");
    if !t_key.is_empty() && t_key != s(taint, "/key") {
        return false;
    }
    match s(toleration, "/operator") {
        "" | "Equal" => s(toleration, "/value") == s(taint, "/value"),
        "Exists" => true,
        _ => false,
    }
}

/// How long the pod tolerates a NoExecute taint: `None` not at all, `Some(None)` forever,
/// `Some(Some(secs))` for that long (≤ 0: not at all, but only after being told so). The first
/// tolerating toleration decides, as in Kubernetes. The toleration the API server adds by
/// default (not-ready/unreachable, Exists, 300 s) lasts `default_toleration_seconds` instead, so
/// the cluster-wide default is a controller setting.
pub fn toleration_seconds(tolerations: &[Value], taint: &Value, default_toleration_seconds: i64) -> Option<Option<i64>> {
    let t = tolerations.iter().find(|t| tolerates(t, taint))?;
    let secs = t.get("tolerationSeconds").and_then(|x| x.as_i64());
    let is_admission_default = matches!(s(t, "/key"), TAINT_NOT_READY | TAINT_UNREACHABLE) && s(t, "/operator") == "Exists" && s(t, "/effect") == "NoExecute" && secs == Some(300);
    Some(if is_admission_default { Some(default_toleration_seconds) } else { secs })
}

/// When a pod must leave its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    Never,
    Now,
    At(Timestamp),
}

/// When the pod is evicted from a node with these taints: at once if some NoExecute taint is not
/// tolerated, else at the earliest (taint added + tolerationSeconds) over its NoExecute taints.
/// `added_at` gives a taint's `timeAdded` (or when it was first seen).
pub fn eviction_for(pod: &Value, taints: &[Value], added_at: &dyn Fn(&Value) -> Timestamp, default_toleration_seconds: i64) -> Eviction {
    let tolerations: Vec<Value> = pod.pointer("/spec/tolerations").and_then(|t| t.as_array()).cloned().unwrap_or_default();
    let mut earliest: Option<Timestamp> = None;
    for taint in taints.iter().filter(|t| s(t, "/effect") == "NoExecute") {
        match toleration_seconds(&tolerations, taint, default_toleration_seconds) {
            None => return Eviction::Now,
            Some(None) => {}
            Some(Some(secs)) if secs <= 0 => return Eviction::Now,
            Some(Some(secs)) => {
                let at = added_at(taint).checked_add(jiff::SignedDuration::from_secs(secs)).unwrap_or(Timestamp::MAX);
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
            }
        }
    }
    earliest.map_or(Eviction::Never, Eviction::At)
}

/// The pod's conditions with Ready set False; `None` when it has no Ready condition or it is
/// already False.
pub fn pod_not_ready_conditions(pod: &Value, now: Timestamp) -> Option<Vec<Value>> {
    let mut conds = conditions(pod);
    let c = conds.iter_mut().find(|c| c.get("type").and_then(|t| t.as_str()) == Some("Ready"))?;
    if c.get("status").and_then(|s| s.as_str()) == Some("False") {
        return None;
    }
    c["status"] = json!("False");
    c["lastTransitionTime"] = json!(util::timestamp(now));
    Some(conds)
}

// ------------------------------------------------------------------------------------------
// The controller
// ------------------------------------------------------------------------------------------

/// What the monitor remembers of a node between passes.
struct Health {
    /// When a heartbeat change was last seen (this controller's clock).
    probe: tokio::time::Instant,
    lease_renew: String,
    ready_heartbeat: String,
    /// The Ready status seen last pass (None: first pass).
    ready: Option<String>,
    /// Its pods still need their Ready condition set False.
    mark_pods: bool,
}

struct Controller {
    ctx: Arc<Ctx>,
    nodes: Arc<Informer>,
    leases: Arc<Informer>,
    pods: Arc<Informer>,
    recorder: crate::events::Recorder,
    evictions: WorkQueue,
    /// First sighting of NoExecute taints that carry no `timeAdded`.
    first_seen: std::sync::Mutex<HashMap<String, Timestamp>>,
}

const EVICTION_WORKERS: usize = 2;

pub async fn run(ctx: Arc<Ctx>) {
    let c = Controller {
        nodes: ctx.informers.get(res("", "nodes")),
        leases: ctx.informers.get(res("coordination.k8s.io", "leases")),
        pods: ctx.informers.get(res("", "pods")),
        recorder: ctx.recorder("node-controller"),
        evictions: WorkQueue::new(),
        first_seen: Default::default(),
        ctx,
    };
    let mut node_changes = changes(&c.nodes);
    let mut pod_changes = changes(&c.pods);
    for inf in [&c.nodes, &c.leases, &c.pods] {
        inf.synced().await;
    }
    for n in c.nodes.list() {
        c.evictions.add(format!("node/{}", util::name(&n)));
    }

    let monitor = async {
        let mut health: HashMap<String, Health> = HashMap::new();
        let mut tick = tokio::time::interval(c.ctx.config.node_monitor_period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            c.monitor_pass(&mut health).await;
        }
    };
    let intake = async {
        loop {
            tokio::select! {
                ch = node_changes.next() => match ch {
                    Some(Some(ch)) => {
                        let no_execute = |n: &Option<Arc<Value>>| n.as_ref().map(|n| no_execute_taints(n)).unwrap_or_default();
                        if ch.new.is_some() && (ch.old.is_none() || no_execute(&ch.old) != no_execute(&ch.new)) {
                            c.evictions.add(format!("node/{}", ch.key));
                        }
                    }
                    Some(None) => for n in c.nodes.list() { c.evictions.add(format!("node/{}", util::name(&n))) },
                    None => return,
                },
                ch = pod_changes.next() => match ch {
                    Some(Some(Change { new: Some(pod), key, .. })) => {
                        let node = s(&pod, "/spec/nodeName");
                        if !node.is_empty() && c.nodes.get(node).is_some_and(|n| !no_execute_taints(&n).is_empty()) {
                            c.evictions.add(format!("pod/{key}"));
                        }
                    }
                    Some(Some(_)) => {}
                    Some(None) => for n in c.nodes.list() { c.evictions.add(format!("node/{}", util::name(&n))) },
                    None => return,
                },
            }
        }
    };
    let workers = futures::future::join_all((0..EVICTION_WORKERS).map(|_| async {
        loop {
            let key = c.evictions.next().await;
            let r = match key.split_once('/') {
                Some(("node", name)) => c.evict_from_node(name).await,
                Some(("pod", pod)) => c.evict_pod(pod).await,
                _ => Ok(()),
            };
            match r {
                Ok(()) => c.evictions.forget(&key),
                Err(e) => {
                    tracing::debug!(key = %key, error = %e, "taint eviction failed");
                    c.evictions.add_rate_limited(key.clone());
                }
            }
            c.evictions.done(&key);
        }
    }));
    tokio::join!(monitor, intake, workers);
}

fn no_execute_taints(node: &Value) -> Vec<Value> {
    node.pointer("/spec/taints").and_then(|t| t.as_array()).into_iter().flatten().filter(|t| s(t, "/effect") == "NoExecute").cloned().collect()
}

impl Controller {
    async fn monitor_pass(&self, health: &mut HashMap<String, Health>) {
        let now = tokio::time::Instant::now();
        let grace = self.ctx.config.node_monitor_grace_period;
        let nodes = self.nodes.list();
        health.retain(|name, _| nodes.iter().any(|n| util::name(n) == name));
        for node in nodes {
            let name = util::name(&node).to_string();
            let lease_renew = self.leases.get(&format!("{LEASE_NAMESPACE}/{name}")).map(|l| s(&l, "/spec/renewTime").to_string()).unwrap_or_default();
            let ready_heartbeat = condition(&node, "Ready").map(|c| s(c, "/lastHeartbeatTime").to_string()).unwrap_or_default();
            let h = health.entry(name.clone()).or_insert_with(|| Health { probe: now, lease_renew: lease_renew.clone(), ready_heartbeat: ready_heartbeat.clone(), ready: None, mark_pods: false });
            if h.lease_renew != lease_renew || h.ready_heartbeat != ready_heartbeat {
                h.probe = now;
                h.lease_renew = lease_renew;
                h.ready_heartbeat = ready_heartbeat;
            }
            if let Err(e) = self.check_node(&node, h, now.duration_since(h.probe) > grace).await {
                tracing::debug!(node = %name, error = %e, "node health update failed");
            }
        }
    }

    async fn check_node(&self, node: &Value, h: &mut Health, silent: bool) -> Result<(), ApiError> {
        let nodes = res("", "nodes");
        let name = util::name(node);
        let mut node = node.clone();
        if silent && let Some(conds) = unknown_conditions(&node, util::now()) {
            tracing::info!(node = %name, "node stopped posting status: marking it Unknown");
            let patch = json!({"metadata": {"resourceVersion": node.pointer("/metadata/resourceVersion")}, "status": {"conditions": conds}});
            node = self.ctx.client.merge_patch_status(nodes, None, name, patch).await?;
        }
        if let Some(taints) = desired_taints(&node, util::now()) {
            let taints = if taints.is_empty() { Value::Null } else { Value::Array(taints) };
            let patch = json!({"metadata": {"resourceVersion": node.pointer("/metadata/resourceVersion")}, "spec": {"taints": taints}});
            node = self.ctx.client.merge_patch(nodes, None, name, patch).await?;
        }

        let ready = ready_status(&node).unwrap_or("Unknown").to_string();
        let prev = h.ready.replace(ready.clone());
        match prev.as_deref() {
            Some("True") if ready != "True" => {
                self.recorder.event(&node, "Normal", "NodeNotReady", &format!("Node {name} status is now: NodeNotReady")).await;
                h.mark_pods = true;
            }
            Some(p) if p != "True" && ready == "True" => {
                self.recorder.event(&node, "Normal", "NodeReady", &format!("Node {name} status is now: NodeReady")).await;
            }
            // First sight of a silent node: the previous leader may not have got to its pods.
            None if ready == "Unknown" => h.mark_pods = true,
            _ => {}
        }
        if ready == "True" {
            h.mark_pods = false;
        } else if h.mark_pods {
            h.mark_pods = !self.mark_pods_not_ready(name).await;
        }
        Ok(())
    }

    /// Sets Ready=False on the node's pods; true when all succeeded.
    async fn mark_pods_not_ready(&self, node: &str) -> bool {
        let mut ok = true;
        for pod in self.pods.list().into_iter().filter(|p| s(p, "/spec/nodeName") == node) {
            let Some(conds) = pod_not_ready_conditions(&pod, util::now()) else { continue };
            let patch = json!({"metadata": {"resourceVersion": pod.pointer("/metadata/resourceVersion")}, "status": {"conditions": conds}});
            match self.ctx.client.merge_patch_status(res("", "pods"), Some(util::namespace(&pod)), util::name(&pod), patch).await {
                Ok(_) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => {
                    tracing::debug!(pod = %key_of(&pod), error = %e, "marking a pod not ready");
                    ok = false;
                }
            }
        }
        ok
    }

    fn added_at(&self, node: &str, taint: &Value) -> Timestamp {
        if let Ok(t) = s(taint, "/timeAdded").parse::<Timestamp>() {
            return t;
        }
        let key = format!("{node}\u{0}{}\u{0}{}\u{0}{}", s(taint, "/key"), s(taint, "/value"), s(taint, "/effect"));
        *self.first_seen.lock().expect("first_seen lock").entry(key).or_insert_with(util::now)
    }

    async fn evict_from_node(&self, node: &str) -> Result<(), ApiError> {
        let Some(n) = self.nodes.get(node) else { return Ok(()) };
        if no_execute_taints(&n).is_empty() {
            self.first_seen.lock().expect("first_seen lock").retain(|k, _| !k.starts_with(&format!("{node}\u{0}")));
            return Ok(());
        }
        let mut first_err = None;
        for pod in self.pods.list().into_iter().filter(|p| s(p, "/spec/nodeName") == node) {
            if let Err(e) = self.evict_pod(&key_of(&pod)).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    async fn evict_pod(&self, key: &str) -> Result<(), ApiError> {
        let Some(pod) = self.pods.get(key) else { return Ok(()) };
        if util::is_deleting(&pod) || matches!(util::pod_phase(&pod), "Succeeded" | "Failed") {
            return Ok(());
        }
        let node_name = s(&pod, "/spec/nodeName");
        let Some(node) = self.nodes.get(node_name) else { return Ok(()) };
        let taints = no_execute_taints(&node);
        let added_at = |t: &Value| self.added_at(node_name, t);
        let when = eviction_for(&pod, &taints, &added_at, self.ctx.config.default_toleration_seconds);
        let now = util::now();
        match when {
            Eviction::Never => Ok(()),
            Eviction::At(t) if t > now => {
                let wait = Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO);
                // Re-decided when it fires: the taint may be gone by then.
                self.evictions.add_after(format!("pod/{key}"), wait + Duration::from_millis(10));
                Ok(())
            }
            Eviction::Now | Eviction::At(_) => {
                tracing::info!(pod = %key, node = %node_name, "evicting a pod from a tainted node");
                self.recorder.event(&pod, "Normal", "TaintManagerEviction", &format!("Marking for deletion Pod {key}")).await;
                let opts = DeleteOptions { uid: Some(util::uid(&pod).to_string()), ..Default::default() };
                match self.ctx.client.delete(res("", "pods"), Some(util::namespace(&pod)), util::name(&pod), opts).await {
                    Ok(()) | Err(ApiError::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

/// The changes of an informer as a stream; `None` items mean changes were missed (lagged).
fn changes(inf: &Informer) -> std::pin::Pin<Box<dyn futures::Stream<Item = Option<Change>> + Send>> {
    let rx = inf.subscribe();
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(c) => Some((Some(c), rx)),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some((None, rx)),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn tolerates_cases() {
        let taint = json!({"key": "k", "value": "v", "effect": "NoExecute"});
        let cases = [
            ("exists, any key", json!({"operator": "Exists"}), true),
            ("exists, same key", json!({"key": "k", "operator": "Exists"}), true),
            ("exists, other key", json!({"key": "x", "operator": "Exists"}), false),
            ("equal, same value", json!({"key": "k", "operator": "Equal", "value": "v"}), true),
            ("default operator is Equal", json!({"key": "k", "value": "v"}), true),
            ("equal, other value", json!({"key": "k", "value": "w"}), false),
            ("other effect", json!({"key": "k", "operator": "Exists", "effect": "NoSchedule"}), false),
            ("same effect", json!({"key": "k", "operator": "Exists", "effect": "NoExecute"}), true),
            ("bad operator", json!({"key": "k", "operator": "Gt"}), false),
        ];
        for (name, t, want) in cases {
            assert_eq!(tolerates(&t, &taint), want, "{name}");
        }
    }

    #[test]
    fn eviction_cases() {
        let added = ts("2024-01-01T00:00:00Z");
        let at = |secs: i64| Eviction::At(added.checked_add(jiff::SignedDuration::from_secs(secs)).expect("time"));
        let unreachable = json!({"key": TAINT_UNREACHABLE, "effect": "NoExecute", "timeAdded": "2024-01-01T00:00:00Z"});
        let not_ready = json!({"key": TAINT_NOT_READY, "effect": "NoExecute", "timeAdded": "2024-01-01T00:00:00Z"});
        let no_schedule = json!({"key": "x", "effect": "NoSchedule"});
        let pod = |tols: Value| json!({"spec": {"tolerations": tols}});
        let tol = |key: &str, secs: Option<i64>| {
            let mut t = json!({"key": key, "operator": "Exists", "effect": "NoExecute"});
            if let Some(s) = secs {
                t["tolerationSeconds"] = json!(s);
            }
            t
        };
        let cases: Vec<(&str, Value, Vec<Value>, i64, Eviction)> = vec![
            ("no NoExecute taints", pod(json!([])), vec![no_schedule.clone()], 300, Eviction::Never),
            ("no tolerations: at once", pod(json!(null)), vec![unreachable.clone()], 300, Eviction::Now),
            ("tolerated for 30s", pod(json!([tol(TAINT_UNREACHABLE, Some(30))])), vec![unreachable.clone()], 300, at(30)),
            ("tolerated forever", pod(json!([tol(TAINT_UNREACHABLE, None)])), vec![unreachable.clone()], 300, Eviction::Never),
            ("tolerationSeconds 0: at once", pod(json!([tol(TAINT_UNREACHABLE, Some(0))])), vec![unreachable.clone()], 300, Eviction::Now),
            ("one taint not tolerated: at once", pod(json!([tol(TAINT_UNREACHABLE, None)])), vec![unreachable.clone(), not_ready.clone()], 300, Eviction::Now),
            ("earliest of two", pod(json!([tol(TAINT_UNREACHABLE, Some(50)), tol(TAINT_NOT_READY, Some(20))])), vec![unreachable.clone(), not_ready.clone()], 300, at(20)),
            ("wildcard toleration", pod(json!([{"operator": "Exists"}])), vec![unreachable.clone()], 300, Eviction::Never),
            ("the admission default follows the setting", pod(json!([tol(TAINT_UNREACHABLE, Some(300))])), vec![unreachable.clone()], 5, at(5)),
            ("a non-default 300 is kept", pod(json!([tol(TAINT_NOT_READY, Some(300))])), vec![unreachable.clone()], 5, Eviction::Now),
        ];
        for (name, pod, taints, default_secs, want) in cases {
            let added_at = |t: &Value| s(t, "/timeAdded").parse::<Timestamp>().unwrap_or(added);
            assert_eq!(eviction_for(&pod, &taints, &added_at, default_secs), want, "{name}");
        }
    }

    #[test]
    fn desired_taints_cases() {
        let now = ts("2024-01-01T00:00:00Z");
        let node = |ready: Option<&str>, extra: Value, taints: Value| {
            let mut conds = vec![];
            if let Some(r) = ready {
                conds.push(json!({"type": "Ready", "status": r}));
            }
            if let Some(a) = extra.as_array() {
                conds.extend(a.iter().cloned());
            }
            json!({"metadata": {"name": "n"}, "spec": {"taints": taints}, "status": {"conditions": conds}})
        };
        let t = |k: &str, e: &str| json!({"key": k, "effect": e});
        let tx = |k: &str| json!({"key": k, "effect": "NoExecute", "timeAdded": "2024-01-01T00:00:00Z"});
        let user = json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"});
        let cases: Vec<(&str, Value, Option<Vec<Value>>)> = vec![
            ("ready, untainted", node(Some("True"), json!([]), json!(null)), None),
            ("not ready", node(Some("False"), json!([]), json!(null)), Some(vec![t(TAINT_NOT_READY, "NoSchedule"), tx(TAINT_NOT_READY)])),
            ("unknown, user taint kept", node(Some("Unknown"), json!([]), json!([user.clone()])), Some(vec![user.clone(), t(TAINT_UNREACHABLE, "NoSchedule"), tx(TAINT_UNREACHABLE)])),
            (
                "unknown becomes not ready",
                node(Some("False"), json!([]), json!([t(TAINT_UNREACHABLE, "NoSchedule"), tx(TAINT_UNREACHABLE)])),
                Some(vec![t(TAINT_NOT_READY, "NoSchedule"), tx(TAINT_NOT_READY)]),
            ),
            ("already tainted: timeAdded kept", node(Some("Unknown"), json!([]), json!([t(TAINT_UNREACHABLE, "NoSchedule"), {"key": TAINT_UNREACHABLE, "effect": "NoExecute", "timeAdded": "2020-01-01T00:00:00Z"}])), None),
            ("recovered", node(Some("True"), json!([]), json!([user.clone(), t(TAINT_UNREACHABLE, "NoSchedule"), tx(TAINT_UNREACHABLE)])), Some(vec![user.clone()])),
            ("memory pressure", node(Some("True"), json!([{"type": "MemoryPressure", "status": "True"}]), json!(null)), Some(vec![t(TAINT_MEMORY_PRESSURE, "NoSchedule")])),
            ("no Ready condition yet", node(None, json!([]), json!(null)), None),
            ("unmanaged effect of a managed key kept", node(Some("True"), json!([]), json!([t(TAINT_MEMORY_PRESSURE, "NoExecute")])), None),
        ];
        for (name, n, want) in cases {
            assert_eq!(desired_taints(&n, now), want, "{name}");
        }
        let mut cordoned = node(Some("True"), json!([]), json!(null));
        cordoned["spec"]["unschedulable"] = json!(true);
        assert_eq!(desired_taints(&cordoned, now), Some(vec![t(TAINT_UNSCHEDULABLE, "NoSchedule")]));
    }

    #[test]
    fn unknown_conditions_cases() {
        let now = ts("2024-01-01T00:01:00Z");
        let node = json!({"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"}, "status": {"conditions": [
            {"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-01-01T00:00:10Z"},
            {"type": "MemoryPressure", "status": "False"},
            {"type": "NetworkUnavailable", "status": "False"},
        ]}});
        let conds = unknown_conditions(&node, now).expect("changes");
        let by_type = |t: &str| conds.iter().find(|c| c["type"] == t).cloned().expect("condition");
        assert_eq!(by_type("Ready")["status"], "Unknown");
        assert_eq!(by_type("Ready")["reason"], "NodeStatusUnknown");
        assert_eq!(by_type("Ready")["message"], "Kubelet stopped posting node status.");
        assert_eq!(by_type("Ready")["lastHeartbeatTime"], "2024-01-01T00:00:10Z");
        assert_eq!(by_type("Ready")["lastTransitionTime"], "2024-01-01T00:01:00Z");
        assert_eq!(by_type("MemoryPressure")["status"], "Unknown");
        assert_eq!(by_type("DiskPressure")["reason"], "NodeStatusNeverUpdated");
        assert_eq!(by_type("PIDPressure")["status"], "Unknown");
        assert_eq!(by_type("NetworkUnavailable")["status"], "False", "not a monitored condition");
        let mut again = node.clone();
        again["status"]["conditions"] = json!(conds);
        assert_eq!(unknown_conditions(&again, now), None);
    }

    #[test]
    fn pod_not_ready_cases() {
        let now = ts("2024-01-01T00:00:00Z");
        let ready = json!({"status": {"conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]}});
        let conds = pod_not_ready_conditions(&ready, now).expect("changes");
        assert_eq!(conds[1], json!({"type": "Ready", "status": "False", "lastTransitionTime": "2024-01-01T00:00:00Z"}));
        assert_eq!(conds[0]["status"], "True");
        assert_eq!(pod_not_ready_conditions(&json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}), now), None);
        assert_eq!(pod_not_ready_conditions(&json!({"status": {}}), now), None);
    }
}
