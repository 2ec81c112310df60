//! Pieces shared by the workload controllers (ReplicationController, ReplicaSet, Deployment,
//! DaemonSet): templates checked against selectors and the int-or-percent fields.

use serde_json::Value;

use super::json::J;
use super::meta;
use super::names::{self, is_valid_percent};
use super::path::{Errs, Path, forbidden, invalid, nonnegative, not_supported, required};
use super::pod;

pub(crate) const SELECTOR_MISMATCH: &str = "`selector` does not match template `labels`";

pub(crate) fn replication_controller(rc: &Value) -> Errs {
    let mut errs = meta::object_meta(rc, true, names::name_is_dns_subdomain);
    errs.extend(replication_controller_spec(rc));
    errs
}

/// `ValidateReplicationControllerSpec`: the selector is a plain map that must select the
/// template's labels.
pub(crate) fn replication_controller_spec(rc: &Value) -> Errs {
    let spec = rc.g("spec");
    let sp = Path::root("spec");
    let mut errs = Vec::new();
    errs.extend(nonnegative(spec.g("minReadySeconds"), &sp.child("minReadySeconds")));
    let selector = spec.g("selector");
    if selector.map_len() == 0 {
        errs.push(required(&sp.child("selector"), ""));
    }
    errs.extend(nonnegative(spec.g("replicas"), &sp.child("replicas")));
    let tpl = spec.g("template");
    let tp = sp.child("template");
    if !tpl.present() {
        errs.push(required(&tp, ""));
        return errs;
    }
    let labels = tpl.g("metadata").g("labels");
    if selector.map_len() > 0 && selector.entries().iter().any(|(k, v)| labels.g(k).as_str() != Some(v.s())) {
        errs.push(invalid(&tp.child("metadata").child("labels"), labels.clone(), SELECTOR_MISMATCH));
    }
    errs.extend(pod::pod_template_spec(tpl, &tp));
    errs.extend(restart_always_and_no_deadline(tpl, &tp, "ReplicationController"));
    errs
}

/// Templates of long-running workloads must restart their pods and may not set a deadline.
pub(crate) fn restart_always_and_no_deadline(tpl: &Value, tp: &Path, kind: &str) -> Errs {
    let mut errs = Vec::new();
    let rp = tpl.g("spec").g("restartPolicy").s();
    if rp != "Always" {
        errs.push(not_supported(&tp.child("spec").child("restartPolicy"), rp, &["Always"]));
    }
    if tpl.g("spec").g("activeDeadlineSeconds").present() {
        errs.push(forbidden(&tp.child("spec").child("activeDeadlineSeconds"), format!("activeDeadlineSeconds in {kind} is not Supported")));
    }
    errs
}

/// `ValidatePositiveIntOrPercent`.
pub(crate) fn positive_int_or_percent(v: &Value, p: &Path) -> Errs {
    match v {
        Value::String(s) => is_valid_percent(s).into_iter().map(|m| invalid(p, s.as_str(), m)).collect(),
        other => nonnegative(other, p).into_iter().collect(),
    }
}

/// `getIntOrPercentValue`: a percentage's number, an integer, or 0.
pub(crate) fn int_or_percent_value(v: &Value) -> i64 {
    match v {
        Value::String(s) => {
            if is_valid_percent(s).is_empty() {
                s[..s.len() - 1].parse().unwrap_or(0)
            } else {
                s.parse().unwrap_or(0)
            }
        }
        other => other.int().unwrap_or(0),
    }
}

/// `IsNotMoreThan100Percent`.
pub(crate) fn not_more_than_100_percent(v: &Value, p: &Path) -> Errs {
    match v {
        Value::String(s) if is_valid_percent(s).is_empty() && int_or_percent_value(v) > 100 => {
            vec![invalid(p, s.as_str(), "must not be greater than 100%")]
        }
        _ => vec![],
    }
}
