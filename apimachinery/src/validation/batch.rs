//! batch/v1: Job and CronJob.

use serde_json::Value;

use super::cron;
use super::json::{J, sem_eq};
use super::meta::{self, label_selector, selector_matches, selector_parses};
use super::names;
use super::path::{Errs, Path, forbidden, immutable, invalid, nonnegative, not_supported, required};
use super::pod;
use super::workloads::SELECTOR_MISMATCH;

const MAX_INDEXED: i64 = 100_000;

/// The labels the Job registry adds to generated selectors and pod templates.
pub(crate) const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub(crate) const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub(crate) const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
pub(crate) const LEGACY_JOB_NAME_LABEL: &str = "job-name";

pub(crate) fn job_create(job: &Value) -> Errs {
    let mut errs = meta::object_meta(job, true, names::name_is_dns_subdomain);
    errs.extend(generated_selector(job));
    errs.extend(job_spec_with_selector(job.g("spec"), &Path::root("spec")));
    errs
}

/// `validateGeneratedSelector`: unless `manualSelector` is set, the selector and template
/// labels must be the generated ones (uid and name of this Job).
fn generated_selector(job: &Value) -> Errs {
    let spec = job.g("spec");
    let mut errs = Vec::new();
    if spec.g("manualSelector").boolean() == Some(true) || !spec.g("selector").present() {
        return errs;
    }
    let uid = job.g("metadata").g("uid").s();
    let name = job.g("metadata").g("name").s();
    if uid.is_empty() {
        errs.push(required(&Path::new(&["metadata", "uid"]), ""));
    }
    let tm = Path::new(&["spec", "template", "metadata"]);
    let labels = spec.g("template").g("metadata").g("labels");
    for (key, want) in [(LEGACY_CONTROLLER_UID_LABEL, uid), (LEGACY_JOB_NAME_LABEL, name), (CONTROLLER_UID_LABEL, uid), (JOB_NAME_LABEL, name)] {
        match labels.g(key).as_str() {
            None => errs.push(required(&tm.child("labels").key(key), &format!("must be '{want}'"))),
            Some(v) if v != want => errs.push(invalid(&tm.child("labels").key(key), labels.clone(), format!("must be '{want}'"))),
            _ => {}
        }
    }
    let expected = serde_json::json!({
        CONTROLLER_UID_LABEL: uid, JOB_NAME_LABEL: name, LEGACY_CONTROLLER_UID_LABEL: uid, LEGACY_JOB_NAME_LABEL: name,
    });
    if selector_parses(spec.g("selector")) && !selector_matches(spec.g("selector"), &expected) {
        errs.push(invalid(&Path::new(&["spec", "selector"]), spec.g("selector").clone(), "`selector` not auto-generated"));
    }
    errs
}

/// `ValidateJobSpec`: the spec rules plus a selector that selects the template.
fn job_spec_with_selector(spec: &Value, p: &Path) -> Errs {
    let mut errs = job_spec(spec, p);
    let sel = spec.g("selector");
    if !sel.present() {
        errs.push(required(&p.child("selector"), ""));
    } else {
        errs.extend(label_selector(sel, &p.child("selector")));
    }
    let labels = spec.g("template").g("metadata").g("labels");
    if selector_parses(sel) && !selector_matches(sel, labels) {
        errs.push(invalid(&p.child("template").child("metadata").child("labels"), labels.clone(), SELECTOR_MISMATCH));
    }
    errs
}

/// `validateJobSpec` (also used for CronJob job templates).
fn job_spec(spec: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    for field in ["parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"] {
        errs.extend(nonnegative(spec.g(field), &p.child(field)));
    }
    let indexed = spec.g("completionMode").as_str() == Some("Indexed");
    if spec.g("backoffLimitPerIndex").present() {
        errs.extend(nonnegative(spec.g("backoffLimitPerIndex"), &p.child("backoffLimitPerIndex")));
        if !indexed {
            errs.push(forbidden(&p.child("backoffLimitPerIndex"), "requires indexed completion mode"));
        }
    }
    if spec.g("maxFailedIndexes").present() {
        errs.extend(nonnegative(spec.g("maxFailedIndexes"), &p.child("maxFailedIndexes")));
        if !spec.g("backoffLimitPerIndex").present() {
            errs.push(required(&p.child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"));
        }
    }
    if let Some(mode) = spec.g("completionMode").as_str() {
        if mode != "NonIndexed" && mode != "Indexed" {
            errs.push(not_supported(&p.child("completionMode"), mode, &["NonIndexed", "Indexed"]));
        }
        if indexed {
            match spec.g("completions").int() {
                None => errs.push(required(&p.child("completions"), "when completion mode is Indexed")),
                Some(c) if c > MAX_INDEXED => errs.push(invalid(
                    &p.child("completions"),
                    c,
                    format!("must be less than or equal to {MAX_INDEXED} when completion mode is Indexed"),
                )),
                _ => {}
            }
            if let Some(par) = spec.g("parallelism").int()
                && par > MAX_INDEXED
            {
                errs.push(invalid(&p.child("parallelism"), par, format!("must be less than or equal to {MAX_INDEXED} when completion mode is Indexed")));
            }
        }
    }
    let has_failure_policy = spec.g("podFailurePolicy").present();
    if let Some(prp) = spec.g("podReplacementPolicy").as_str() {
        let pp = p.child("podReplacementPolicy");
        if has_failure_policy {
            if prp != "Failed" {
                errs.push(not_supported(&pp, prp, &["Failed"]));
            }
        } else if prp != "Failed" && prp != "TerminatingOrFailed" {
            errs.push(not_supported(&pp, prp, &["Failed", "TerminatingOrFailed"]));
        }
    }
    let tpl = spec.g("template");
    let tp = p.child("template");
    errs.extend(pod::pod_template_spec(tpl, &tp));
    let rp = tpl.g("spec").g("restartPolicy").s();
    let rpp = tp.child("spec").child("restartPolicy");
    if rp != "OnFailure" && rp != "Never" {
        errs.push(not_supported(&rpp, rp, &["OnFailure", "Never"]));
    } else if has_failure_policy && rp != "Never" {
        errs.push(invalid(&rpp, rp, "only \"Never\" is supported when podFailurePolicy is specified"));
    }
    errs
}

/// `ValidateJobUpdate`. The pod template is kept immutable (Kubernetes lets a suspended Job that
/// never started change its scheduling directives; that exception is not modelled).
pub(crate) fn job_update(new: &Value, old: &Value) -> Errs {
    let (ns, os) = (new.g("spec"), old.g("spec"));
    let sp = Path::root("spec");
    let mut errs = job_spec_with_selector(ns, &sp);
    // Elastic Indexed Jobs may scale completions together with parallelism.
    let elastic = ns.g("completionMode").as_str() == Some("Indexed")
        && ns.g("completions").int().is_some()
        && ns.g("completions").int() == ns.g("parallelism").int()
        && os.g("completions").int() == os.g("parallelism").int();
    if !elastic {
        errs.extend(immutable(ns.g("completions"), os.g("completions"), &sp.child("completions")));
    }
    for field in ["selector", "template", "completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"] {
        errs.extend(immutable(ns.g(field), os.g(field), &sp.child(field)));
    }
    errs
}

/// `ValidateCronJobCreate` / `ValidateCronJobUpdate` (without the metadata update rules).
pub(crate) fn cron_job(cj: &Value, old: Option<&Value>) -> Errs {
    let mut errs = if old.is_none() { meta::object_meta(cj, true, names::name_is_dns_subdomain) } else { Vec::new() };
    let spec = cj.g("spec");
    let old_spec = old.map(|o| o.g("spec"));
    let sp = Path::root("spec");
    let schedule = spec.g("schedule").s();
    if schedule.is_empty() {
        errs.push(required(&sp.child("schedule"), ""));
    } else {
        let allow_tz = old_spec.is_some_and(|o| o.g("schedule").s().contains("TZ"));
        errs.extend(cron::schedule_format(schedule, allow_tz, spec.g("timeZone").present(), &sp.child("schedule")));
    }
    errs.extend(nonnegative(spec.g("startingDeadlineSeconds"), &sp.child("startingDeadlineSeconds")));
    if old_spec.is_none_or(|o| !sem_eq(o.g("timeZone"), spec.g("timeZone"))) {
        errs.extend(cron::time_zone(spec.g("timeZone"), &sp.child("timeZone")));
    }
    match spec.g("concurrencyPolicy").s() {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(required(&sp.child("concurrencyPolicy"), "")),
        other => errs.push(not_supported(&sp.child("concurrencyPolicy"), other, &["Allow", "Forbid", "Replace"])),
    }
    let jt = spec.g("jobTemplate");
    let jp = sp.child("jobTemplate").child("spec");
    errs.extend(job_spec(jt.g("spec"), &jp));
    if jt.g("spec").g("selector").present() {
        errs.push(invalid(&jp.child("selector"), jt.g("spec").g("selector").clone(), "`selector` will be auto-generated"));
    }
    if jt.g("spec").g("manualSelector").boolean() == Some(true) {
        errs.push(not_supported(&jp.child("manualSelector"), true, &["nil", "false"]));
    }
    for field in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        errs.extend(nonnegative(spec.g(field), &sp.child(field)));
    }
    let name = cj.g("metadata").g("name").s();
    // Jobs are named "<cronjob>-<11 characters>" and must fit in 63.
    if old.is_none() && name.len() > 52 {
        errs.push(invalid(&Path::new(&["metadata", "name"]), name, "must be no more than 52 characters"));
    }
    errs
}
