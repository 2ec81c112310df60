//! apps/v1: Deployment, ReplicaSet, DaemonSet, StatefulSet, ControllerRevision.

use serde_json::Value;

use super::json::{J, sem_eq};
use super::meta::{self, label_selector, selector_is_empty, selector_matches, selector_parses};
use super::names;
use super::path::{Errs, Path, forbidden, immutable, invalid, nonnegative, not_supported, required};
use super::pod;
use super::workloads::{SELECTOR_MISMATCH, int_or_percent_value, not_more_than_100_percent, positive_int_or_percent, restart_always_and_no_deadline};

/// The selector rules shared by Deployment and ReplicaSet (both say "deployment", as in
/// Kubernetes) and StatefulSet.
fn required_selector(spec: &Value, sp: &Path, kind: &str) -> Errs {
    let sel = spec.g("selector");
    if !sel.present() {
        return vec![required(&sp.child("selector"), "")];
    }
    let mut errs = label_selector(sel, &sp.child("selector"));
    if selector_is_empty(sel) {
        errs.push(invalid(&sp.child("selector"), sel.clone(), format!("empty selector is invalid for {kind}")));
    }
    errs
}

/// `ValidatePodTemplateSpecForReplicaSet`.
fn template_for_replica_set(spec: &Value, sp: &Path) -> Errs {
    let sel = spec.g("selector");
    if !selector_parses(sel) {
        return vec![invalid(&sp.child("selector"), sel.clone(), "invalid label selector")];
    }
    let tpl = spec.g("template");
    let tp = sp.child("template");
    let mut errs = Vec::new();
    let everything = sel.present() && selector_is_empty(sel);
    let labels = tpl.g("metadata").g("labels");
    if !everything && !selector_matches(sel, labels) {
        errs.push(invalid(&tp.child("metadata").child("labels"), labels.clone(), SELECTOR_MISMATCH));
    }
    errs.extend(pod::pod_template_spec(tpl, &tp));
    errs.extend(restart_always_and_no_deadline(tpl, &tp, "ReplicaSet"));
    errs
}

pub(crate) fn deployment(d: &Value) -> Errs {
    let mut errs = meta::object_meta(d, true, names::name_is_dns_subdomain);
    errs.extend(deployment_spec(d));
    errs
}

fn deployment_spec(d: &Value) -> Errs {
    let spec = d.g("spec");
    let sp = Path::root("spec");
    let mut errs = Vec::new();
    errs.extend(nonnegative(spec.g("replicas"), &sp.child("replicas")));
    errs.extend(required_selector(spec, &sp, "deployment"));
    errs.extend(template_for_replica_set(spec, &sp));
    let strategy = spec.g("strategy");
    let stp = sp.child("strategy");
    match strategy.g("type").s() {
        "Recreate" => {
            if strategy.g("rollingUpdate").present() {
                errs.push(forbidden(&stp.child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"));
            }
        }
        "RollingUpdate" => {
            let ru = strategy.g("rollingUpdate");
            let rp = stp.child("rollingUpdate");
            if !ru.present() {
                errs.push(required(&rp, "this should be defaulted and never be nil"));
            } else {
                let (mu, ms) = (ru.g("maxUnavailable"), ru.g("maxSurge"));
                errs.extend(positive_int_or_percent(mu, &rp.child("maxUnavailable")));
                errs.extend(positive_int_or_percent(ms, &rp.child("maxSurge")));
                if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                    errs.push(invalid(&rp.child("maxUnavailable"), mu.clone(), "may not be 0 when `maxSurge` is 0"));
                }
                errs.extend(not_more_than_100_percent(mu, &rp.child("maxUnavailable")));
            }
        }
        _ => errs.push(not_supported(&stp, strategy.clone(), &["Recreate", "RollingUpdate"])),
    }
    errs.extend(nonnegative(spec.g("minReadySeconds"), &sp.child("minReadySeconds")));
    errs.extend(nonnegative(spec.g("revisionHistoryLimit"), &sp.child("revisionHistoryLimit")));
    if let Some(pds) = spec.g("progressDeadlineSeconds").int() {
        errs.extend(nonnegative(spec.g("progressDeadlineSeconds"), &sp.child("progressDeadlineSeconds")));
        if pds <= spec.g("minReadySeconds").int().unwrap_or(0) {
            errs.push(invalid(&sp.child("progressDeadlineSeconds"), pds, "must be greater than minReadySeconds"));
        }
    }
    errs
}

/// apps/v1 selectors never change (the registry strategies enforce it for every kind).
fn selector_immutable(new: &Value, old: &Value) -> Errs {
    immutable(new.g("spec").g("selector"), old.g("spec").g("selector"), &Path::new(&["spec", "selector"])).into_iter().collect()
}

pub(crate) fn deployment_update(new: &Value, old: &Value) -> Errs {
    let mut errs = deployment_spec(new);
    errs.extend(selector_immutable(new, old));
    errs
}

pub(crate) fn replica_set(rs: &Value) -> Errs {
    let mut errs = meta::object_meta(rs, true, names::name_is_dns_subdomain);
    errs.extend(replica_set_spec(rs));
    errs
}

fn replica_set_spec(rs: &Value) -> Errs {
    let spec = rs.g("spec");
    let sp = Path::root("spec");
    let mut errs = Vec::new();
    errs.extend(nonnegative(spec.g("replicas"), &sp.child("replicas")));
    errs.extend(nonnegative(spec.g("minReadySeconds"), &sp.child("minReadySeconds")));
    errs.extend(required_selector(spec, &sp, "deployment"));
    errs.extend(template_for_replica_set(spec, &sp));
    errs
}

pub(crate) fn replica_set_update(new: &Value, old: &Value) -> Errs {
    let mut errs = replica_set_spec(new);
    errs.extend(selector_immutable(new, old));
    errs
}

pub(crate) fn daemon_set(ds: &Value) -> Errs {
    let mut errs = meta::object_meta(ds, true, names::name_is_dns_subdomain);
    errs.extend(daemon_set_spec(ds));
    errs
}

fn daemon_set_spec(ds: &Value) -> Errs {
    let spec = ds.g("spec");
    let sp = Path::root("spec");
    let sel = spec.g("selector");
    let mut errs = label_selector(sel, &sp.child("selector"));
    let tpl = spec.g("template");
    let tp = sp.child("template");
    let labels = tpl.g("metadata").g("labels");
    if selector_parses(sel) && !selector_matches(sel, labels) {
        errs.push(invalid(&tp.child("metadata").child("labels"), labels.clone(), SELECTOR_MISMATCH));
    }
    if sel.present() && selector_is_empty(sel) {
        errs.push(invalid(&sp.child("selector"), sel.clone(), "empty selector is invalid for daemonset"));
    }
    errs.extend(pod::pod_template_spec(tpl, &tp));
    errs.extend(restart_always_and_no_deadline(tpl, &tp, "DaemonSet"));
    errs.extend(nonnegative(spec.g("minReadySeconds"), &sp.child("minReadySeconds")));
    errs.extend(nonnegative(spec.g("templateGeneration"), &sp.child("templateGeneration")));
    let us = spec.g("updateStrategy");
    let up = sp.child("updateStrategy");
    match us.g("type").s() {
        "OnDelete" => {}
        "RollingUpdate" => {
            let ru = us.g("rollingUpdate");
            let rp = up.child("rollingUpdate");
            if !ru.present() {
                errs.push(required(&rp, ""));
            } else {
                let (mu, ms) = (ru.g("maxUnavailable"), ru.g("maxSurge"));
                errs.extend(positive_int_or_percent(mu, &rp.child("maxUnavailable")));
                errs.extend(positive_int_or_percent(ms, &rp.child("maxSurge")));
                errs.extend(not_more_than_100_percent(mu, &rp.child("maxUnavailable")));
                errs.extend(not_more_than_100_percent(ms, &rp.child("maxSurge")));
                let (has_u, has_s) = (int_or_percent_value(mu) != 0, int_or_percent_value(ms) != 0);
                if has_u && has_s {
                    errs.push(invalid(&rp.child("maxSurge"), ms.clone(), "may not be set when maxUnavailable is non-zero"));
                } else if !has_u && !has_s {
                    errs.push(required(&rp.child("maxUnavailable"), "cannot be 0 when maxSurge is 0"));
                }
            }
        }
        _ => errs.push(not_supported(&up, us.clone(), &["RollingUpdate", "OnDelete"])),
    }
    errs.extend(nonnegative(spec.g("revisionHistoryLimit"), &sp.child("revisionHistoryLimit")));
    errs
}

pub(crate) fn daemon_set_update(new: &Value, old: &Value) -> Errs {
    let mut errs = daemon_set_spec(new);
    errs.extend(selector_immutable(new, old));
    errs
}

/// StatefulSet names become pod host names, so they are DNS labels.
pub(crate) fn stateful_set(sts: &Value) -> Errs {
    let mut errs = meta::object_meta(sts, true, names::name_is_dns_label);
    errs.extend(stateful_set_spec(sts));
    errs
}

/// `ValidateStatefulSetSpec`. As in Kubernetes, the pod template's spec is not validated as a
/// PodSpec: its volume mounts may name volumeClaimTemplates, which are not pod volumes.
fn stateful_set_spec(sts: &Value) -> Errs {
    let spec = sts.g("spec");
    let sp = Path::root("spec");
    let mut errs = Vec::new();
    match spec.g("podManagementPolicy").s() {
        "" => errs.push(required(&sp.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(invalid(&sp.child("podManagementPolicy"), other, "must be 'OrderedReady' or 'Parallel'")),
    }
    let us = spec.g("updateStrategy");
    let up = sp.child("updateStrategy");
    let ru = us.g("rollingUpdate");
    match us.g("type").s() {
        "" => errs.push(required(&up, "")),
        "OnDelete" => {
            if ru.present() {
                errs.push(invalid(&up.child("rollingUpdate"), ru.clone(), "only allowed for updateStrategy 'RollingUpdate'"));
            }
        }
        "RollingUpdate" => {
            if ru.present() {
                let rp = up.child("rollingUpdate");
                errs.extend(nonnegative(ru.g("partition"), &rp.child("partition")));
                let mu = ru.g("maxUnavailable");
                if mu.present() {
                    errs.extend(positive_int_or_percent(mu, &rp.child("maxUnavailable")));
                    if int_or_percent_value(mu) == 0 {
                        errs.push(invalid(&rp.child("maxUnavailable"), mu.clone(), "cannot be 0"));
                    }
                    errs.extend(not_more_than_100_percent(mu, &rp.child("maxUnavailable")));
                }
            }
        }
        _ => errs.push(invalid(&up, us.clone(), "must be 'RollingUpdate' or 'OnDelete'")),
    }
    let policy = spec.g("persistentVolumeClaimRetentionPolicy");
    if policy.present() {
        for field in ["whenDeleted", "whenScaled"] {
            let v = policy.g(field).s();
            if v != "Retain" && v != "Delete" {
                errs.push(not_supported(&sp.child("persistentVolumeClaimRetentionPolicy").child(field), v, &["Retain", "Delete"]));
            }
        }
    }
    errs.extend(nonnegative(spec.g("replicas"), &sp.child("replicas")));
    errs.extend(nonnegative(spec.g("minReadySeconds"), &sp.child("minReadySeconds")));
    if spec.g("ordinals").present() {
        errs.extend(nonnegative(spec.g("ordinals").g("start"), &sp.child("ordinals.start")));
    }
    errs.extend(required_selector(spec, &sp, "statefulset"));
    let sel = spec.g("selector");
    let tpl = spec.g("template");
    let tp = sp.child("template");
    if !selector_parses(sel) {
        errs.push(invalid(&sp.child("selector"), sel.clone(), ""));
    } else {
        let labels = tpl.g("metadata").g("labels");
        let everything = sel.present() && selector_is_empty(sel);
        if !everything && !selector_matches(sel, labels) {
            errs.push(invalid(&tp.child("metadata").child("labels"), labels.clone(), SELECTOR_MISMATCH));
        }
        errs.extend(meta::labels(labels, &tp.child("labels")));
        errs.extend(meta::annotations(tpl.g("metadata").g("annotations"), &tp.child("annotations")));
    }
    errs.extend(restart_always_and_no_deadline(tpl, &tp, "StatefulSet"));
    errs
}

pub(crate) fn stateful_set_update(new: &Value, old: &Value) -> Errs {
    let mut errs = stateful_set_spec(new);
    let mut n = new.g("spec").clone();
    let o = old.g("spec");
    if let Some(m) = n.as_object_mut() {
        for field in ["replicas", "template", "updateStrategy", "minReadySeconds", "ordinals", "persistentVolumeClaimRetentionPolicy"] {
            m.insert(field.into(), o.g(field).clone());
        }
    }
    if !sem_eq(&n, o) {
        errs.push(forbidden(
            &Path::root("spec"),
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
    errs
}

pub(crate) fn controller_revision(cr: &Value) -> Errs {
    let mut errs = meta::object_meta(cr, true, names::name_is_dns_subdomain);
    if !cr.g("data").present() {
        errs.push(required(&Path::root("data"), "data is mandatory"));
    }
    errs.extend(nonnegative(cr.g("revision"), &Path::root("revision")));
    errs
}

pub(crate) fn controller_revision_update(new: &Value, old: &Value) -> Errs {
    let mut errs = controller_revision(new);
    errs.extend(immutable(new.g("data"), old.g("data"), &Path::root("data")));
    errs
}
