//! The pure parts of the Deployment controller: surge/unavailable arithmetic, revision and
//! replica annotations, template identity, how far each rollout step may go, proportional
//! scaling, conditions and status. No I/O, so every rule is table-tested.

use std::cmp::Ordering;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::replicaset::{condition_type, generation, spec_replicas, status_count};
use crate::util;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// The revision-history annotation is trimmed (oldest first) to stay under this many characters.
pub const MAX_REVISION_HISTORY_CHARS: usize = 2000;
/// The API server's default `progressDeadlineSeconds`; `i32::MAX` means "no deadline".
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i64 = 600;
pub const DEFAULT_REVISION_HISTORY_LIMIT: i64 = 10;

// Condition types and reasons, as kubectl and users match on them.
pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
pub const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
pub const NEW_RS_REASON: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS_REASON: &str = "FoundNewReplicaSet";
pub const RS_UPDATED_REASON: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE_REASON: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT_REASON: &str = "ProgressDeadlineExceeded";
pub const PAUSED_REASON: &str = "DeploymentPaused";
pub const RESUMED_REASON: &str = "DeploymentResumed";
pub const FAILED_RS_CREATE_REASON: &str = "ReplicaSetCreateError";

// ---------------------------------------------------------------------------------------------
// Spec accessors, with the API server's defaults for absent fields.

pub fn replicas(d: &Value) -> i64 {
    spec_replicas(d)
}

pub fn strategy_type(d: &Value) -> &str {
    d.pointer("/spec/strategy/type").and_then(|t| t.as_str()).filter(|t| !t.is_empty()).unwrap_or("RollingUpdate")
}

pub fn is_rolling_update(d: &Value) -> bool {
    strategy_type(d) == "RollingUpdate"
}

pub fn is_paused(d: &Value) -> bool {
    d.pointer("/spec/paused").and_then(|p| p.as_bool()).unwrap_or(false)
}

pub fn progress_deadline_seconds(d: &Value) -> Option<i64> {
    let v = d.pointer("/spec/progressDeadlineSeconds").and_then(|v| v.as_i64()).unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS);
    (v < i32::MAX as i64).then_some(v.max(0))
}

/// When a progress deadline counted from `from` passes (`None`: never, in practice).
fn deadline_after(from: jiff::Timestamp, seconds: i64) -> Option<jiff::Timestamp> {
    from.checked_add(jiff::SignedDuration::from_secs(seconds)).ok()
}

pub fn revision_history_limit(d: &Value) -> Option<i64> {
    let v = d.pointer("/spec/revisionHistoryLimit").and_then(|v| v.as_i64()).unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT);
    (v < i32::MAX as i64).then_some(v.max(0))
}

pub fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.pointer("/metadata/annotations").and_then(|a| a.get(key)).and_then(|v| v.as_str())
}

pub(crate) fn annotations_mut(o: &mut Value) -> &mut Map<String, Value> {
    let meta = crate::replicaset::child_mut(o, "metadata");
    crate::replicaset::object_mut(crate::replicaset::child_mut(meta, "annotations"))
}

// ---------------------------------------------------------------------------------------------
// maxSurge / maxUnavailable.

/// Kubernetes' GetScaledValueFromIntOrPercent: an integer as is, `"N%"` of `total` rounded up
/// or down. Anything else is an error.
pub fn scaled_value(v: &Value, total: i64, round_up: bool) -> Result<i64, String> {
    match v {
        Value::Number(n) => n.as_i64().and_then(|v| i32::try_from(v).ok()).map(i64::from).ok_or_else(|| format!("invalid value {n}")),
        Value::String(s) => {
            let pct: i32 = s
                .strip_suffix('%')
                .ok_or_else(|| format!("invalid value {s:?}: not a percentage"))?
                .trim()
                .parse()
                .map_err(|_| format!("invalid value for IntOrString: {s:?}"))?;
            let scaled = i64::from(pct).saturating_mul(total.clamp(i32::MIN as i64, i32::MAX as i64));
            Ok(if round_up { scaled.div_euclid(100) + i64::from(scaled.rem_euclid(100) != 0) } else { scaled.div_euclid(100) })
        }
        other => Err(format!("invalid value {other}")),
    }
}

/// (maxSurge, maxUnavailable) for `desired` replicas: surge rounded up, unavailable rounded
/// down, absent values defaulted to 25% as the API server would. When both come out zero
/// (validation forbids it explicitly, but rounding down can produce it) unavailable is 1, so a
/// rollout can still make progress. Unparseable values count as zero.
pub fn resolve_fenceposts(max_surge: Option<&Value>, max_unavailable: Option<&Value>, desired: i64) -> (i64, i64) {
    let default = json!("25%");
    let surge = scaled_value(max_surge.filter(|v| !v.is_null()).unwrap_or(&default), desired, true).unwrap_or(0).max(0);
    let mut unavailable = scaled_value(max_unavailable.filter(|v| !v.is_null()).unwrap_or(&default), desired, false).unwrap_or(0).max(0);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

fn fenceposts(d: &Value) -> (i64, i64) {
    resolve_fenceposts(d.pointer("/spec/strategy/rollingUpdate/maxSurge"), d.pointer("/spec/strategy/rollingUpdate/maxUnavailable"), replicas(d))
}

pub fn max_surge(d: &Value) -> i64 {
    if !is_rolling_update(d) {
        return 0;
    }
    fenceposts(d).0
}

pub fn max_unavailable(d: &Value) -> i64 {
    if !is_rolling_update(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

// ---------------------------------------------------------------------------------------------
// Revisions and annotations.

/// The revision annotation of an object: 0 when absent, `None` when unparseable.
pub fn revision(o: &Value) -> Option<i64> {
    match annotation(o, REVISION) {
        None => Some(0),
        Some(s) => s.parse().ok(),
    }
}

pub fn max_revision<'a>(rss: impl IntoIterator<Item = &'a Value>) -> i64 {
    rss.into_iter().filter_map(revision).max().unwrap_or(0).max(0)
}

fn skip_copy(key: &str) -> bool {
    matches!(key, LAST_APPLIED | REVISION | REVISION_HISTORY | DESIRED_REPLICAS | MAX_REPLICAS | ROLLBACK_TO)
}

/// Copies the deployment's annotations (kubernetes.io/change-cause among them) to the
/// ReplicaSet, except the ones that describe the deployment's own state.
fn copy_deployment_annotations(d: &Value, rs: &mut Value) -> bool {
    let Some(src) = d.pointer("/metadata/annotations").and_then(|a| a.as_object()) else { return false };
    let src: Vec<(String, Value)> = src.iter().filter(|(k, v)| !skip_copy(k) && v.is_string()).map(|(k, v)| (k.clone(), v.clone())).collect();
    let dst = annotations_mut(rs);
    let mut changed = false;
    for (k, v) in src {
        if dst.get(&k) != Some(&v) {
            dst.insert(k, v);
            changed = true;
        }
    }
    changed
}

/// Sets the desired-replicas and max-replicas annotations; whether anything changed.
pub fn set_replicas_annotations(rs: &mut Value, desired: i64, max: i64) -> bool {
    let a = annotations_mut(rs);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = json!(v.to_string());
        if a.get(k) != Some(&v) {
            a.insert(k.into(), v);
            changed = true;
        }
    }
    changed
}

pub fn replicas_annotations_need_update(rs: &Value, desired: i64, max: i64) -> bool {
    annotation(rs, DESIRED_REPLICAS) != Some(desired.to_string().as_str()) || annotation(rs, MAX_REPLICAS) != Some(max.to_string().as_str())
}

/// Kubernetes' SetNewReplicaSetAnnotations: copy the deployment's annotations, raise the
/// revision to `new_revision` if it is lower (recording the previous revision in the history
/// when an old ReplicaSet is brought back), and for a ReplicaSet about to be created the
/// replica annotations. Whether anything changed.
pub fn set_new_rs_annotations(d: &Value, rs: &mut Value, new_revision: i64, exists: bool) -> bool {
    let mut changed = copy_deployment_annotations(d, rs);
    let old = annotation(rs, REVISION).map(str::to_string);
    let old_rev = match &old {
        None => 0,
        Some(s) => match s.parse::<i64>() {
            Ok(v) => v,
            // Someone wrote garbage; leave the revision alone rather than guess.
            Err(_) => return changed,
        },
    };
    if old_rev < new_revision {
        annotations_mut(rs).insert(REVISION.into(), json!(new_revision.to_string()));
        changed = true;
        if let Some(old) = old {
            let history = annotation(rs, REVISION_HISTORY).unwrap_or("").to_string();
            let new_history = append_revision_history(&history, &old, MAX_REVISION_HISTORY_CHARS);
            if let Some(h) = new_history {
                annotations_mut(rs).insert(REVISION_HISTORY.into(), json!(h));
            }
        }
    }
    if !exists && set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)) {
        changed = true;
    }
    changed
}

/// The revision-history annotation after recording `old`: oldest entries dropped to fit
/// `limit` characters; `None` if even that cannot fit it.
pub fn append_revision_history(history: &str, old: &str, limit: usize) -> Option<String> {
    if history.is_empty() {
        return Some(old.to_string());
    }
    let entries: Vec<&str> = history.split(',').collect();
    let mut total = history.len() + old.len() + 1;
    let mut start = 0;
    while total > limit && start < entries.len() {
        total -= entries[start].len() + 1;
        start += 1;
    }
    if total > limit {
        return None;
    }
    let mut kept: Vec<&str> = entries[start..].to_vec();
    kept.push(old);
    Some(kept.join(","))
}

// ---------------------------------------------------------------------------------------------
// Templates and ReplicaSet identity.

/// A JSON value with object keys sorted recursively: two templates that differ only in key
/// order (after a round trip through some client) hash the same.
pub fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), canonical(&m[k]))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Drops nulls, empty strings, zeros, empty lists and empty objects: the values Kubernetes
/// omits or treats as unset, so two objects that mean the same compare equal however they
/// were serialized.
pub fn prune(v: &Value) -> Value {
    fn empty(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::Array(a) => a.is_empty(),
            Value::Object(m) => m.is_empty(),
            Value::Bool(_) => false,
        }
    }
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), prune(v))).filter(|(_, v)| !empty(v)).collect()),
        Value::Array(a) => Value::Array(a.iter().map(prune).collect()),
        other => other.clone(),
    }
}

fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t.pointer_mut("/metadata/labels").and_then(|l| l.as_object_mut()) {
        labels.remove(POD_TEMPLATE_HASH);
    }
    prune(&t)
}

/// Whether two pod templates are the same apart from the pod-template-hash label (Kubernetes'
/// EqualIgnoreHash): how a deployment recognizes the ReplicaSet of its current template,
/// including an old one brought back by `kubectl rollout undo`.
pub fn equal_ignore_hash(a: &Value, b: &Value) -> bool {
    without_hash(a) == without_hash(b)
}

/// The pod-template-hash of a template; a collision count (after a name clash with a foreign
/// ReplicaSet) perturbs it.
pub fn template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let t = canonical(template);
    match collision_count {
        None => util::hash_of(&t),
        Some(n) => util::hash_of(&json!({"collisionCount": n, "template": t})),
    }
}

pub fn collision_count(d: &Value) -> Option<i64> {
    d.pointer("/status/collisionCount").and_then(|c| c.as_i64())
}

/// The ReplicaSet a deployment creates for its current template (without replicas and
/// annotations, which depend on the other ReplicaSets).
pub fn new_replica_set(d: &Value, hash: &str) -> Value {
    let mut template = d.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    {
        let meta = crate::replicaset::child_mut(&mut template, "metadata");
        let labels = crate::replicaset::object_mut(crate::replicaset::child_mut(meta, "labels"));
        labels.insert(POD_TEMPLATE_HASH.into(), json!(hash));
    }
    let mut selector = d.pointer("/spec/selector").cloned().unwrap_or_else(|| json!({}));
    crate::replicaset::object_mut(crate::replicaset::child_mut(&mut selector, "matchLabels")).insert(POD_TEMPLATE_HASH.into(), json!(hash));
    let labels = template.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({}));
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{}-{}", util::name(d), hash),
            "namespace": util::namespace(d),
            "labels": labels,
            "ownerReferences": [util::controller_ref(d)],
        },
        "spec": {
            "replicas": 0,
            "minReadySeconds": crate::replicaset::min_ready_seconds(d),
            "selector": selector,
            "template": template,
        },
    })
}

fn created_at(o: &Value) -> Option<jiff::Timestamp> {
    o.pointer("/metadata/creationTimestamp").and_then(|t| t.as_str()).and_then(|t| t.parse().ok())
}

/// Oldest first; ties (same second) by name.
pub fn by_creation(a: &Value, b: &Value) -> Ordering {
    created_at(a).cmp(&created_at(b)).then_with(|| util::name(a).cmp(util::name(b)))
}

/// Lowest revision first, then oldest.
pub fn by_revision(a: &Value, b: &Value) -> Ordering {
    let (ra, rb) = (revision(a).unwrap_or(0), revision(b).unwrap_or(0));
    ra.cmp(&rb).then_with(|| by_creation(a, b))
}

/// The oldest ReplicaSet whose template is the deployment's: its "new" ReplicaSet.
pub fn find_new_rs<'a>(d: &Value, rss: &[&'a Value]) -> Option<&'a Value> {
    let template = d.pointer("/spec/template").unwrap_or(&Value::Null);
    let mut sorted = rss.to_vec();
    sorted.sort_by(|a, b| by_creation(a, b));
    sorted.into_iter().find(|rs| equal_ignore_hash(rs.pointer("/spec/template").unwrap_or(&Value::Null), template))
}

// ---------------------------------------------------------------------------------------------
// How far a rollout step may go.

/// Pods a ReplicaSet may have right now: its spec, or more while a scale-down is still being
/// carried out (the ReplicaSet controller reports the pods it has not yet deleted). Counting
/// only the spec, as Kubernetes does, lets the new ReplicaSet grow before the old one has
/// actually shrunk, briefly exceeding `replicas + maxSurge` pods.
pub fn pods_upper_bound(rs: &Value) -> i64 {
    spec_replicas(rs).max(status_count(rs, "replicas"))
}

/// Available pods a ReplicaSet will still have once its spec is carried out: a ReplicaSet
/// scaled down deletes its unavailable pods first, so at most `spec` available ones remain.
/// Using the raw status right after a scale-down would count pods about to be deleted and let
/// old ReplicaSets shrink below `replicas - maxUnavailable` available.
pub fn available_estimate(rs: &Value) -> i64 {
    status_count(rs, "availableReplicas").min(spec_replicas(rs))
}

/// Kubernetes' NewRSNewReplicas: how big the new ReplicaSet may be now.
pub fn new_rs_new_replicas(d: &Value, all: &[&Value], new_rs: &Value) -> i64 {
    let current = spec_replicas(new_rs);
    if !is_rolling_update(d) {
        return replicas(d);
    }
    let surge = max_surge(d);
    let pods: i64 = all.iter().map(|rs| pods_upper_bound(rs)).sum();
    let max_total = replicas(d) + surge;
    if pods >= max_total {
        return current;
    }
    let up = (max_total - pods).min(replicas(d) - current);
    current + up.max(0)
}

/// Kubernetes' reconcileOldReplicaSets bound: how many old replicas may go now without
/// dropping below `replicas - maxUnavailable` (counting the new ReplicaSet's unavailable pods
/// as already missing).
pub fn max_scaled_down(d: &Value, all: &[&Value], new_rs: &Value) -> i64 {
    let all_pods: i64 = all.iter().map(|rs| spec_replicas(rs)).sum();
    let min_available = replicas(d) - max_unavailable(d);
    let new_unavailable = spec_replicas(new_rs) - available_estimate(new_rs);
    all_pods - min_available - new_unavailable
}

/// Kubernetes' cleanupUnhealthyReplicas: scale old ReplicaSets (oldest first) down by their
/// unavailable replicas, up to `max_cleanup` in all. Removing pods that serve nothing cannot
/// hurt availability and unblocks rollouts stuck behind crash-looping old pods.
/// Returns (ReplicaSet name, new size).
pub fn cleanup_unhealthy_plan(old: &[&Value], max_cleanup: i64) -> Vec<(String, i64)> {
    let mut sorted = old.to_vec();
    sorted.sort_by(|a, b| by_creation(a, b));
    let mut total = 0;
    let mut plan = Vec::new();
    for rs in sorted {
        if total >= max_cleanup {
            break;
        }
        let spec = spec_replicas(rs);
        let unhealthy = spec - available_estimate(rs);
        if spec == 0 || unhealthy <= 0 {
            continue;
        }
        let n = (max_cleanup - total).min(unhealthy);
        plan.push((util::name(rs).to_string(), spec - n));
        total += n;
    }
    plan
}

/// Kubernetes' scaleDownOldReplicaSetsForRollingUpdate: scale old ReplicaSets (oldest first)
/// down by as many replicas as are available beyond `replicas - maxUnavailable`.
/// `all` is the active old ReplicaSets and the new one.
pub fn scale_down_old_plan(d: &Value, all: &[&Value], old: &[&Value]) -> Vec<(String, i64)> {
    let min_available = replicas(d) - max_unavailable(d);
    let available: i64 = all.iter().map(|rs| available_estimate(rs)).sum();
    if available <= min_available {
        return Vec::new();
    }
    let budget = available - min_available;
    let mut sorted = old.to_vec();
    sorted.sort_by(|a, b| by_creation(a, b));
    let mut total = 0;
    let mut plan = Vec::new();
    for rs in sorted {
        if total >= budget {
            break;
        }
        let spec = spec_replicas(rs);
        if spec == 0 {
            continue;
        }
        let n = spec.min(budget - total);
        plan.push((util::name(rs).to_string(), spec - n));
        total += n;
    }
    plan
}

/// Whether any active ReplicaSet was sized for a different `spec.replicas` than the current one.
pub fn is_scaling_event(d: &Value, all: &[&Value]) -> bool {
    all.iter().filter(|rs| spec_replicas(rs) > 0).filter_map(|rs| annotation(rs, DESIRED_REPLICAS)?.parse::<i64>().ok()).any(|desired| desired != replicas(d))
}

/// The new ReplicaSet runs everything: old ones can go to zero at once.
pub fn is_saturated(d: &Value, rs: Option<&Value>) -> bool {
    let Some(rs) = rs else { return false };
    let Some(desired) = annotation(rs, DESIRED_REPLICAS).and_then(|s| s.parse::<i64>().ok()) else { return false };
    let want = replicas(d);
    spec_replicas(rs) == want && desired == want && status_count(rs, "availableReplicas") == want
}

/// The only active ReplicaSet, or if none is active the newest one (the new ReplicaSet first).
pub fn find_active_or_latest<'a>(new_rs: Option<&'a Value>, old: &[&'a Value]) -> Option<&'a Value> {
    let mut old_sorted = old.to_vec();
    old_sorted.sort_by(|a, b| by_creation(b, a));
    let active: Vec<&Value> = old_sorted.iter().copied().chain(new_rs).filter(|rs| spec_replicas(rs) > 0).collect();
    match active.len() {
        0 => new_rs.or(old_sorted.first().copied()),
        1 => Some(active[0]),
        _ => None,
    }
}

/// Kubernetes' getReplicaSetFraction: how much this ReplicaSet should grow (or shrink) when
/// the deployment's size changed, in proportion to its share of the previous maximum.
fn rs_fraction(rs: &Value, d: &Value) -> i64 {
    if replicas(d) == 0 {
        return -spec_replicas(rs);
    }
    let max_now = replicas(d) + max_surge(d);
    let before = match annotation(rs, MAX_REPLICAS).and_then(|s| s.parse::<i64>().ok()) {
        Some(v) if v != 0 => v,
        // Older controllers did not record it: assume the deployment's last known size.
        _ => status_count(d, "replicas"),
    };
    if before <= 0 {
        return 0;
    }
    let size = (spec_replicas(rs) * max_now) as f64 / before as f64;
    size.round() as i64 - spec_replicas(rs)
}

fn rs_proportion(rs: &Value, d: &Value, to_add: i64, added: i64) -> i64 {
    if spec_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = rs_fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 { fraction.min(allowed) } else { fraction.max(allowed) }
}

/// Kubernetes' scale(): the sizes the ReplicaSets should get when the deployment is scaled
/// (or paused): one active ReplicaSet takes everything; a saturated new ReplicaSet means old
/// ones go to zero; otherwise, during a rolling update, the difference is spread over the
/// active ReplicaSets in proportion to their size, leftovers to the largest.
pub fn scale_plan(d: &Value, new_rs: Option<&Value>, old: &[&Value]) -> Vec<(String, i64)> {
    if let Some(rs) = find_active_or_latest(new_rs, old) {
        return vec![(util::name(rs).to_string(), replicas(d))];
    }
    if is_saturated(d, new_rs) {
        return old.iter().filter(|rs| spec_replicas(rs) > 0).map(|rs| (util::name(rs).to_string(), 0)).collect();
    }
    if !is_rolling_update(d) {
        return Vec::new();
    }
    let mut active: Vec<&Value> = old.iter().copied().chain(new_rs).filter(|rs| spec_replicas(rs) > 0).collect();
    let current: i64 = active.iter().map(|rs| spec_replicas(rs)).sum();
    let allowed = if replicas(d) > 0 { replicas(d) + max_surge(d) } else { 0 };
    let to_add = allowed - current;
    // Larger first; among equals, newer first when growing and older first when shrinking.
    match to_add.cmp(&0) {
        Ordering::Greater => active.sort_by(|a, b| spec_replicas(b).cmp(&spec_replicas(a)).then_with(|| by_creation(b, a))),
        Ordering::Less => active.sort_by(|a, b| spec_replicas(b).cmp(&spec_replicas(a)).then_with(|| by_creation(a, b))),
        Ordering::Equal => {}
    }
    let mut added = 0;
    let mut sizes: Vec<(String, i64)> = Vec::new();
    for rs in &active {
        let p = if to_add != 0 { rs_proportion(rs, d, to_add, added) } else { 0 };
        sizes.push((util::name(rs).to_string(), spec_replicas(rs) + p));
        added += p;
    }
    if to_add != 0
        && let Some(first) = sizes.first_mut()
    {
        first.1 = (first.1 + to_add - added).max(0);
    }
    sizes
}

// ---------------------------------------------------------------------------------------------
// Conditions.

pub fn new_condition(ty: &str, status: &str, reason: &str, message: &str, now: jiff::Timestamp) -> Value {
    let t = util::timestamp(now);
    json!({"type": ty, "status": status, "lastUpdateTime": t, "lastTransitionTime": t, "reason": reason, "message": message})
}

pub fn get_condition<'a>(status: &'a Value, ty: &str) -> Option<&'a Value> {
    status.get("conditions").and_then(|c| c.as_array()).and_then(|cs| cs.iter().find(|c| condition_type(c) == ty))
}

pub fn cond_str<'a>(c: &'a Value, field: &str) -> &'a str {
    c.get(field).and_then(|v| v.as_str()).unwrap_or("")
}

/// Kubernetes' SetDeploymentCondition: no change if status and reason are the same (the
/// message and times of the first report stay); the transition time survives a change of
/// reason only.
pub fn set_condition(status: &mut Value, mut cond: Value) {
    if !cond.is_object() {
        return;
    }
    let ty = condition_type(&cond).to_string();
    if let Some(cur) = get_condition(status, &ty) {
        if cond_str(cur, "status") == cond_str(&cond, "status") && cond_str(cur, "reason") == cond_str(&cond, "reason") {
            return;
        }
        if cond_str(cur, "status") == cond_str(&cond, "status")
            && let Some(t) = cur.get("lastTransitionTime")
        {
            cond["lastTransitionTime"] = t.clone();
        }
    }
    remove_condition(status, &ty);
    let conds = crate::replicaset::object_mut(status).entry("conditions").or_insert_with(|| json!([]));
    if !conds.is_array() {
        *conds = json!([]);
    }
    if let Value::Array(a) = conds {
        a.push(cond);
    }
}

pub fn remove_condition(status: &mut Value, ty: &str) {
    if let Some(Value::Array(a)) = status.get_mut("conditions") {
        a.retain(|c| condition_type(c) != ty);
    }
}

// ---------------------------------------------------------------------------------------------
// Status.

fn sum(rss: &[&Value], field: &str) -> i64 {
    rss.iter().map(|rs| status_count(rs, field)).sum()
}

/// Kubernetes' calculateStatus: counts from the ReplicaSets' statuses, and the Available
/// condition.
pub fn calculate_status(d: &Value, all: &[&Value], new_rs: Option<&Value>, now: jiff::Timestamp) -> Value {
    let available = sum(all, "availableReplicas");
    let total: i64 = all.iter().map(|rs| spec_replicas(rs)).sum();
    let mut status = json!({
        "observedGeneration": generation(d),
        "replicas": sum(all, "replicas"),
        "updatedReplicas": new_rs.map(|rs| status_count(rs, "replicas")).unwrap_or(0),
        "readyReplicas": sum(all, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": (total - available).max(0),
    });
    if let Some(c) = collision_count(d) {
        status["collisionCount"] = json!(c);
    }
    if let Some(conds) = d.pointer("/status/conditions").filter(|c| c.is_array()) {
        status["conditions"] = conds.clone();
    }
    let cond = if available >= replicas(d) - max_unavailable(d) {
        new_condition(AVAILABLE, "True", MINIMUM_REPLICAS_AVAILABLE, "Deployment has minimum availability.", now)
    } else {
        new_condition(AVAILABLE, "False", MINIMUM_REPLICAS_UNAVAILABLE, "Deployment does not have minimum availability.", now)
    };
    set_condition(&mut status, cond);
    status
}

/// Everything is updated, available and nothing old is left, for the current generation.
pub fn deployment_complete(d: &Value, status: &Value) -> bool {
    let want = replicas(d);
    let n = |f: &str| status.get(f).and_then(|v| v.as_i64()).unwrap_or(0);
    n("updatedReplicas") == want && n("replicas") == want && n("availableReplicas") == want && n("observedGeneration") >= generation(d)
}

/// Some step forward since the status `d` reports: more updated, fewer old, more ready or
/// more available replicas.
pub fn deployment_progressing(d: &Value, new: &Value) -> bool {
    let old = d.get("status").cloned().unwrap_or(Value::Null);
    let n = |s: &Value, f: &str| s.get(f).and_then(|v| v.as_i64()).unwrap_or(0).clamp(i32::MIN as i64, i32::MAX as i64);
    let old_old = n(&old, "replicas") - n(&old, "updatedReplicas");
    let new_old = n(new, "replicas") - n(new, "updatedReplicas");
    n(new, "updatedReplicas") > n(&old, "updatedReplicas")
        || new_old < old_old
        || n(new, "readyReplicas") > n(&old, "readyReplicas")
        || n(new, "availableReplicas") > n(&old, "availableReplicas")
}

fn parse_time(v: Option<&Value>) -> Option<jiff::Timestamp> {
    v.and_then(|t| t.as_str()).and_then(|t| t.parse().ok())
}

/// No progress reported for longer than progressDeadlineSeconds.
pub fn deployment_timed_out(d: &Value, new: &Value, now: jiff::Timestamp) -> bool {
    let Some(deadline) = progress_deadline_seconds(d) else { return false };
    let Some(cond) = get_condition(new, PROGRESSING) else { return false };
    match cond_str(cond, "reason") {
        NEW_RS_AVAILABLE_REASON => false,
        TIMED_OUT_REASON => true,
        _ => match parse_time(cond.get("lastUpdateTime")) {
            Some(from) => deadline_after(from, deadline).is_some_and(|t| t < now),
            None => false,
        },
    }
}

/// Kubernetes' syncRolloutStatus without the write: the status including the Progressing
/// condition (created, progressing, complete, timed out) and ReplicaSet failures.
pub fn rollout_status(d: &Value, all: &[&Value], new_rs: Option<&Value>, now: jiff::Timestamp) -> Value {
    let mut status = calculate_status(d, all, new_rs, now);
    let has_deadline = progress_deadline_seconds(d).is_some();
    if !has_deadline {
        remove_condition(&mut status, PROGRESSING);
    }
    let current = d.get("status").and_then(|s| get_condition(s, PROGRESSING)).cloned();
    let n = |f: &str| status.get(f).and_then(|v| v.as_i64()).unwrap_or(0);
    let complete_before = n("replicas") == n("updatedReplicas") && current.as_ref().is_some_and(|c| cond_str(c, "reason") == NEW_RS_AVAILABLE_REASON);
    if has_deadline && !complete_before {
        let subject = match new_rs {
            Some(rs) => format!("ReplicaSet {:?}", util::name(rs)),
            None => format!("Deployment {:?}", util::name(d)),
        };
        if deployment_complete(d, &status) {
            set_condition(&mut status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE_REASON, &format!("{subject} has successfully progressed."), now));
        } else if deployment_progressing(d, &status) {
            // Progress refreshes lastUpdateTime (which the deadline counts from) even when the
            // reason stays the same, so replace rather than set.
            let mut cond = new_condition(PROGRESSING, "True", RS_UPDATED_REASON, &format!("{subject} is progressing."), now);
            if let Some(cur) = &current {
                if cond_str(cur, "status") == "True"
                    && let Some(t) = cur.get("lastTransitionTime")
                {
                    cond["lastTransitionTime"] = t.clone();
                }
                remove_condition(&mut status, PROGRESSING);
            }
            set_condition(&mut status, cond);
        } else if deployment_timed_out(d, &status, now) {
            set_condition(&mut status, new_condition(PROGRESSING, "False", TIMED_OUT_REASON, &format!("{subject} has timed out progressing."), now));
        }
    }
    match replica_failure(all, new_rs) {
        Some(c) => set_condition(&mut status, c),
        None => remove_condition(&mut status, REPLICA_FAILURE),
    }
    status
}

/// The ReplicaFailure condition of the new ReplicaSet, else of any old one, as a deployment
/// condition.
fn replica_failure(all: &[&Value], new_rs: Option<&Value>) -> Option<Value> {
    let from = |rs: &Value| -> Option<Value> {
        let c = crate::replicaset::conditions(rs).into_iter().find(|c| condition_type(c) == REPLICA_FAILURE)?;
        Some(json!({
            "type": REPLICA_FAILURE,
            "status": cond_str(&c, "status"),
            "lastUpdateTime": c.get("lastTransitionTime"),
            "lastTransitionTime": c.get("lastTransitionTime"),
            "reason": cond_str(&c, "reason"),
            "message": cond_str(&c, "message"),
        }))
    };
    new_rs.and_then(from).or_else(|| all.iter().find_map(|rs| from(rs)))
}

/// When to look again at a deployment whose rollout shows no progress, so it times out on
/// time instead of at the next unrelated event.
pub fn progress_recheck_after(d: &Value, new: &Value, now: jiff::Timestamp) -> Option<Duration> {
    let deadline = progress_deadline_seconds(d)?;
    let cur = d.get("status").and_then(|s| get_condition(s, PROGRESSING))?;
    if deployment_complete(d, new) || cond_str(cur, "reason") == TIMED_OUT_REASON {
        return None;
    }
    let from = parse_time(cur.get("lastUpdateTime"))?;
    let left = deadline_after(from, deadline)?.duration_since(now);
    // The deadline check is strict and times have one-second resolution: one more second makes
    // sure the deadline has passed when we look.
    let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
    Some(left + Duration::from_secs(1))
}

/// Whether two statuses say the same (however zeros and empties were serialized).
pub fn status_equal(a: Option<&Value>, b: &Value) -> bool {
    let norm = |v: Option<&Value>| v.filter(|v| v.is_object()).map(prune).unwrap_or_else(|| json!({}));
    norm(a) == norm(Some(b))
}
