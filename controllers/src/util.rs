//! Helpers every controller needs: owner references, pod readiness, label selection.

use serde_json::{Value, json};

pub fn name(o: &Value) -> &str {
    o.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or("")
}

pub fn namespace(o: &Value) -> &str {
    o.pointer("/metadata/namespace").and_then(|n| n.as_str()).unwrap_or("")
}

pub fn uid(o: &Value) -> &str {
    o.pointer("/metadata/uid").and_then(|n| n.as_str()).unwrap_or("")
}

pub fn is_deleting(o: &Value) -> bool {
    o.pointer("/metadata/deletionTimestamp").is_some_and(|d| !d.is_null())
}

/// An ownerReference to `owner` marking it as the controller.
pub fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner.get("apiVersion"),
        "kind": owner.get("kind"),
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// The ownerReference with `controller: true`, if any.
pub fn controller_of(o: &Value) -> Option<&Value> {
    o.pointer("/metadata/ownerReferences")
        .and_then(|r| r.as_array())
        .and_then(|refs| refs.iter().find(|r| r.get("controller").and_then(|c| c.as_bool()) == Some(true)))
}

pub fn is_controlled_by(o: &Value, owner: &Value) -> bool {
    controller_of(o).and_then(|r| r.get("uid")).and_then(|u| u.as_str()) == Some(uid(owner))
}

pub fn pod_phase(p: &Value) -> &str {
    p.pointer("/status/phase").and_then(|s| s.as_str()).unwrap_or("Pending")
}

/// Not finished and not being deleted: counts toward a controller's replicas.
pub fn is_pod_active(p: &Value) -> bool {
    !matches!(pod_phase(p), "Succeeded" | "Failed") && !is_deleting(p)
}

fn condition<'a>(o: &'a Value, ty: &str) -> Option<&'a Value> {
    o.pointer("/status/conditions").and_then(|c| c.as_array()).and_then(|cs| cs.iter().find(|c| c.get("type").and_then(|t| t.as_str()) == Some(ty)))
}

/// The `Ready` condition is True.
pub fn is_pod_ready(p: &Value) -> bool {
    condition(p, "Ready").and_then(|c| c.get("status")).and_then(|s| s.as_str()) == Some("True")
}

/// Ready for at least `min_ready_seconds` (by the Ready condition's lastTransitionTime).
pub fn is_pod_available(p: &Value, min_ready_seconds: i64, now: jiff::Timestamp) -> bool {
    if !is_pod_ready(p) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    let since = condition(p, "Ready")
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(|t| t.as_str())
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    match since {
        Some(t) => now.duration_since(t).as_secs() >= min_ready_seconds,
        None => false,
    }
}

/// Whether the object's labels match a LabelSelector object (`matchLabels` / `matchExpressions`).
pub fn selector_matches(selector: Option<&Value>, obj: &Value) -> bool {
    match apimachinery::selector::from_label_selector_object(selector) {
        Ok(sel) => !sel.is_empty() && sel.matches_object(obj),
        Err(_) => false,
    }
}

pub fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

pub fn timestamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A stable short hash of a JSON value (for pod-template-hash and controller revisions), in
/// Kubernetes' "safe" alphabet.
pub fn hash_of(v: &Value) -> String {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    let mut h: u32 = 0x811c9dc5;
    for b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = h as u64;
    let mut out = String::new();
    while n > 0 || out.is_empty() {
        out.push(ALPHABET[(n % ALPHABET.len() as u64) as usize] as char);
        n /= ALPHABET.len() as u64;
    }
    out
}
