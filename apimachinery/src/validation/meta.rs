//! ObjectMeta rules (`ValidateObjectMeta`, `ValidateObjectMetaUpdate` and the label, annotation,
//! owner reference and finalizer checks they use).

use serde_json::Value;

use super::json::J;
use super::names::{is_dns1123_label, is_qualified_name, is_valid_label_value};
use super::path::{Errs, Path, forbidden, invalid, nonnegative, required};

pub(crate) type NameFn = fn(&str, bool) -> Vec<String>;

const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;
const STANDARD_FINALIZERS: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];

/// `ValidateObjectMeta` on `obj.metadata`. A missing name is accepted when `generateName` is
/// set, because the name is generated after validation here; a missing namespace is accepted
/// because the server takes it from the request path.
pub(crate) fn object_meta(obj: &Value, namespaced: bool, name_fn: NameFn) -> Errs {
    meta_at(obj.g("metadata"), namespaced, name_fn, &Path::root("metadata"))
}

pub(crate) fn meta_at(meta: &Value, namespaced: bool, name_fn: NameFn, p: &Path) -> Errs {
    let mut errs = Vec::new();
    let generate_name = meta.g("generateName").s();
    if !generate_name.is_empty() {
        for msg in name_fn(generate_name, true) {
            errs.push(invalid(&p.child("generateName"), generate_name, msg));
        }
    }
    let name = meta.g("name").s();
    if name.is_empty() {
        if generate_name.is_empty() {
            errs.push(required(&p.child("name"), "name or generateName is required"));
        }
    } else {
        for msg in name_fn(name, false) {
            errs.push(invalid(&p.child("name"), name, msg));
        }
    }
    let namespace = meta.g("namespace").s();
    if namespaced && !namespace.is_empty() {
        for msg in is_dns1123_label(namespace) {
            errs.push(invalid(&p.child("namespace"), namespace, msg));
        }
    }
    errs.extend(nonnegative(meta.g("generation"), &p.child("generation")));
    errs.extend(labels(meta.g("labels"), &p.child("labels")));
    errs.extend(annotations(meta.g("annotations"), &p.child("annotations")));
    errs.extend(owner_references(meta.g("ownerReferences"), &p.child("ownerReferences")));
    errs.extend(finalizers(meta.g("finalizers"), &p.child("finalizers")));
    errs
}

/// `ValidateObjectMetaUpdate` plus the Kubernetes finalizer name check.
pub(crate) fn object_meta_update(new: &Value, old: &Value) -> Errs {
    let (nm, om) = (new.g("metadata"), old.g("metadata"));
    let p = Path::root("metadata");
    let mut errs = Vec::new();
    if om.g("deletionTimestamp").present() {
        let old_f: Vec<&str> = om.g("finalizers").arr().iter().map(|v| v.s()).collect();
        let mut extra: Vec<&str> = nm.g("finalizers").arr().iter().map(|v| v.s()).filter(|f| !old_f.contains(f)).collect();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            let list = extra.iter().map(|f| super::go_quote(f)).collect::<Vec<_>>().join(", ");
            errs.push(forbidden(
                &p.child("finalizers"),
                format!("no new finalizers can be added if the object is being deleted, found new finalizers []string{{{list}}}"),
            ));
        }
    }
    for field in ["name", "namespace"] {
        let (n, o) = (nm.g(field).s(), om.g(field).s());
        if n != o {
            errs.push(invalid(&p.child(field), n, "field is immutable"));
        }
    }
    // Server-owned fields: only a value the client actually sent can conflict.
    for field in ["uid", "creationTimestamp", "deletionTimestamp"] {
        let (n, o) = (nm.g(field), om.g(field));
        if n.present() && o.present() && n != o {
            errs.push(invalid(&p.child(field), n.clone(), "field is immutable"));
        }
    }
    errs.extend(labels(nm.g("labels"), &p.child("labels")));
    errs.extend(annotations(nm.g("annotations"), &p.child("annotations")));
    errs.extend(owner_references(nm.g("ownerReferences"), &p.child("ownerReferences")));
    for (i, f) in nm.g("finalizers").arr().iter().enumerate() {
        errs.extend(kube_finalizer_name(f.s(), &p.child("finalizers").index(i)));
    }
    errs
}

/// `ValidateLabels`: errors are reported on the map's path, not per key, as Kubernetes does.
pub(crate) fn labels(labels: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    for (k, v) in labels.entries() {
        errs.extend(label_name(k, p));
        let v = v.s();
        for msg in is_valid_label_value(v) {
            errs.push(invalid(p, v, msg));
        }
    }
    errs
}

/// `ValidateLabelName`.
pub(crate) fn label_name(k: &str, p: &Path) -> Errs {
    is_qualified_name(k).into_iter().map(|msg| invalid(p, k, msg)).collect()
}

/// `ValidateAnnotations`: keys are qualified names (case-insensitive), 256 KiB in total.
pub(crate) fn annotations(ann: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, v) in ann.entries() {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(invalid(p, k.as_str(), msg));
        }
        total += k.len() + v.s().len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(super::path::too_long(p, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

fn owner_references(refs: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    for r in refs.arr() {
        let api_version = r.g("apiVersion").s();
        let version = api_version.rsplit_once('/').map(|(_, v)| v).unwrap_or(api_version);
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        if version.is_empty() {
            errs.push(invalid(&p.child("apiVersion"), api_version, "version must not be empty"));
        }
        let kind = r.g("kind").s();
        if kind.is_empty() {
            errs.push(invalid(&p.child("kind"), kind, "kind must not be empty"));
        }
        if r.g("name").s().is_empty() {
            errs.push(invalid(&p.child("name"), "", "name must not be empty"));
        }
        if r.g("uid").s().is_empty() {
            errs.push(invalid(&p.child("uid"), "", "uid must not be empty"));
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(invalid(p, r.clone(), "/v1, Kind=Event is disallowed from being an owner"));
        }
        if r.g("controller").boolean() == Some(true) {
            let cur = format!("{}/{}", kind, r.g("name").s());
            match &first_controller {
                Some(first) => errs.push(invalid(
                    p,
                    refs.clone(),
                    format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {cur}"),
                )),
                None => first_controller = Some(cur),
            }
        }
    }
    errs
}

/// `ValidateFinalizers` plus `validateKubeFinalizerName` for each entry.
fn finalizers(list: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    let names: Vec<&str> = list.arr().iter().map(|v| v.s()).collect();
    for f in &names {
        for msg in is_qualified_name(f) {
            errs.push(invalid(p, *f, msg));
        }
    }
    if names.contains(&"orphan") && names.contains(&"foregroundDeletion") {
        errs.push(invalid(p, list.clone(), "finalizer orphan and foregroundDeletion cannot be both set"));
    }
    for (i, f) in names.iter().enumerate() {
        errs.extend(kube_finalizer_name(f, &p.index(i)));
    }
    errs
}

/// A finalizer without a '/' must be one of the standard Kubernetes ones.
pub(crate) fn kube_finalizer_name(f: &str, p: &Path) -> Errs {
    if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f) {
        vec![invalid(p, f, "name is neither a standard finalizer name nor is it fully qualified")]
    } else {
        Vec::new()
    }
}

/// `ValidateLabelSelector` (strict: label values in `In`/`NotIn` must be valid).
pub(crate) fn label_selector(sel: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    if !sel.present() {
        return errs;
    }
    errs.extend(labels(sel.g("matchLabels"), &p.child("matchLabels")));
    for (i, expr) in sel.g("matchExpressions").arr().iter().enumerate() {
        let ep = p.child("matchExpressions").index(i);
        let values = expr.g("values").arr();
        let op = expr.g("operator").s();
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(required(&ep.child("values"), "must be specified when `operator` is 'In' or 'NotIn'"));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(forbidden(&ep.child("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
                }
            }
            _ => errs.push(invalid(&ep.child("operator"), op, "not a valid selector operator")),
        }
        errs.extend(label_name(expr.g("key").s(), &ep.child("key")));
        for (vi, v) in values.iter().enumerate() {
            for msg in is_valid_label_value(v.s()) {
                errs.push(invalid(&ep.child("values").index(vi), v.s(), msg));
            }
        }
    }
    errs
}

/// Whether a `metav1.LabelSelector` selects `labels` (`LabelSelectorAsSelector(...).Matches`).
/// A missing selector selects nothing; an empty one selects everything.
pub(crate) fn selector_matches(sel: &Value, labels: &Value) -> bool {
    if !sel.present() {
        return false;
    }
    for (k, v) in sel.g("matchLabels").entries() {
        if labels.g(k).as_str() != Some(v.s()) {
            return false;
        }
    }
    for expr in sel.g("matchExpressions").arr() {
        let key = expr.g("key").s();
        let have = labels.g(key).as_str();
        let values: Vec<&str> = expr.g("values").arr().iter().map(|v| v.s()).collect();
        let ok = match expr.g("operator").s() {
            "In" => have.is_some_and(|h| values.contains(&h)),
            "NotIn" => have.is_none_or(|h| !values.contains(&h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether a selector has no requirements at all.
pub(crate) fn selector_is_empty(sel: &Value) -> bool {
    sel.g("matchLabels").map_len() == 0 && sel.g("matchExpressions").arr().is_empty()
}

/// Whether `LabelSelectorAsSelector` would accept the selector (valid operators, keys and values).
pub(crate) fn selector_parses(sel: &Value) -> bool {
    if !sel.present() {
        return true;
    }
    let labels_ok = sel
        .g("matchLabels")
        .entries()
        .iter()
        .all(|(k, v)| is_qualified_name(k).is_empty() && is_valid_label_value(v.s()).is_empty());
    labels_ok
        && sel.g("matchExpressions").arr().iter().all(|e| {
            let n = e.g("values").arr().len();
            let op_ok = match e.g("operator").s() {
                "In" | "NotIn" => n > 0,
                "Exists" | "DoesNotExist" => n == 0,
                _ => false,
            };
            op_ok
                && is_qualified_name(e.g("key").s()).is_empty()
                && e.g("values").arr().iter().all(|v| is_valid_label_value(v.s()).is_empty())
        })
}
