//! The remaining groups: Events (core and events.k8s.io), HorizontalPodAutoscaler, Lease,
//! EndpointSlice, RBAC, PodDisruptionBudget and PriorityClass.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::core::non_special_ip;
use super::json::{J, sem_eq};
use super::meta::{self, label_selector, labels};
use super::names::{self, is_dns1123_subdomain, is_qualified_name, is_valid_path_segment_name, parse_ip};
use super::path::{Errs, Path, duplicate, forbidden, immutable, invalid, not_supported, required, too_many};
use super::pod::{dns_label, parse_quantity, preemption_policy};
use super::workloads::{not_more_than_100_percent, positive_int_or_percent};

// ---------------------------------------------------------------------------------------------
// Events

/// core/v1 Event: only the legacy rules apply to this API version, in Kubernetes too.
pub(crate) fn core_event(ev: &Value, old: Option<&Value>) -> Errs {
    let mut errs = Vec::new();
    if old.is_none() && ev.g("metadata").g("name").s().is_empty() && ev.g("metadata").g("generateName").s().is_empty() {
        errs.push(required(&Path::new(&["metadata", "name"]), "name or generateName is required"));
    }
    errs.extend(legacy_event(ev, "reportingComponent"));
    errs
}

/// events.k8s.io/v1 Event, validated (as Kubernetes does) on the core representation, so
/// error paths use the core field names (`involvedObject`, `message`, ...).
pub(crate) fn events_event(ev: &Value, old: Option<&Value>) -> Errs {
    let core = to_core_event(ev);
    let mut errs = legacy_event(&core, "reportingController");
    match old {
        None => {
            errs.extend(meta::object_meta(&core, true, names::name_is_dns_subdomain));
            errs.extend(event_series(&core));
            if !core.g("eventTime").present() {
                errs.push(required(&Path::root("eventTime"), ""));
            }
            let t = core.g("type").s();
            if t != "Normal" && t != "Warning" {
                errs.push(invalid(&Path::root("type"), "", format!("has invalid value: {t}")));
            }
            for field in ["firstTimestamp", "lastTimestamp", "count"] {
                if !core.g(field).is_empty_value() {
                    errs.push(invalid(&Path::root(field), "", "needs to be unset"));
                }
            }
            let src = core.g("source");
            if !src.g("component").s().is_empty() || !src.g("host").s().is_empty() {
                errs.push(invalid(&Path::root("source"), "", "needs to be unset"));
            }
        }
        Some(old) => {
            let old_core = to_core_event(old);
            errs.extend(event_series(&core));
            for field in [
                "involvedObject",
                "reason",
                "message",
                "source",
                "firstTimestamp",
                "lastTimestamp",
                "count",
                "action",
                "related",
                "reportingController",
                "reportingInstance",
                "type",
            ] {
                errs.extend(immutable(core.g(field), old_core.g(field), &Path::root(field)));
            }
        }
    }
    errs
}

fn to_core_event(ev: &Value) -> Value {
    const RENAMES: [(&str, &str); 6] = [
        ("regarding", "involvedObject"),
        ("note", "message"),
        ("deprecatedSource", "source"),
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
    ];
    let mut m = Map::new();
    for (k, v) in ev.entries() {
        let name = RENAMES.iter().find(|(from, _)| from == k).map(|(_, to)| *to).unwrap_or(k.as_str());
        m.insert(name.to_string(), v.clone());
    }
    Value::Object(m)
}

fn event_series(ev: &Value) -> Errs {
    let s = ev.g("series");
    let mut errs = Vec::new();
    if s.present() {
        if s.g("count").int().unwrap_or(0) < 2 {
            errs.push(invalid(&Path::root("series.count"), "", "should be at least 2"));
        }
        if !s.g("lastObservedTime").present() {
            errs.push(required(&Path::root("series.lastObservedTime"), ""));
        }
    }
    errs
}

/// `legacyValidateEvent`. The namespace checks need `metadata.namespace`, which the server sets
/// from the request path; they are skipped while it is still empty.
fn legacy_event(ev: &Value, reporting_controller_field: &str) -> Errs {
    let mut errs = Vec::new();
    let ns = ev.g("metadata").g("namespace").s();
    let involved_ns = ev.g("involvedObject").g("namespace").s();
    let ip = Path::new(&["involvedObject", "namespace"]);
    let mismatch = "does not match event.namespace";
    if !ev.g("eventTime").present() {
        if !ns.is_empty() {
            if involved_ns.is_empty() {
                if ns != "default" {
                    errs.push(invalid(&ip, involved_ns, mismatch));
                }
            } else if ns != involved_ns {
                errs.push(invalid(&ip, involved_ns, mismatch));
            }
        }
    } else {
        if involved_ns.is_empty() && !ns.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(invalid(&ip, involved_ns, mismatch));
        }
        let rc = ev.g("reportingController").s();
        let rcp = Path::root(reporting_controller_field);
        if rc.is_empty() {
            errs.push(required(&rcp, ""));
        }
        errs.extend(is_qualified_name(rc).into_iter().map(|m| invalid(&rcp, rc, m)));
        for (field, limit) in [("reportingInstance", 128), ("action", 128), ("reason", 128)] {
            let v = ev.g(field).s();
            if v.is_empty() {
                errs.push(required(&Path::root(field), ""));
            }
            if v.len() > limit {
                errs.push(invalid(&Path::root(field), "", format!("can have at most {limit} characters")));
            }
        }
        if ev.g("message").s().len() > 1024 {
            errs.push(invalid(&Path::root("message"), "", "can have at most 1024 characters"));
        }
    }
    if !ns.is_empty() {
        errs.extend(is_dns1123_subdomain(ns).into_iter().map(|m| invalid(&Path::root("namespace"), ns, m)));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// HorizontalPodAutoscaler (autoscaling/v2)

pub(crate) fn hpa(h: &Value) -> Errs {
    let mut errs = meta::object_meta(h, true, names::name_is_dns_subdomain);
    errs.extend(hpa_spec(h));
    errs
}

pub(crate) fn hpa_spec(h: &Value) -> Errs {
    let spec = h.g("spec");
    let sp = Path::root("spec");
    let mut errs = Vec::new();
    let min = spec.g("minReplicas").int();
    if let Some(m) = min
        && m < 1
    {
        errs.push(invalid(&sp.child("minReplicas"), m, "must be greater than or equal to 1"));
    }
    let max = spec.g("maxReplicas").int().unwrap_or(0);
    if max < 1 {
        errs.push(invalid(&sp.child("maxReplicas"), max, "must be greater than 0"));
    }
    if let Some(m) = min
        && max < m
    {
        errs.push(invalid(&sp.child("maxReplicas"), max, "must be greater than or equal to `minReplicas`"));
    }
    let r = spec.g("scaleTargetRef");
    let rp = sp.child("scaleTargetRef");
    for field in ["kind", "name"] {
        let v = r.g(field).s();
        if v.is_empty() {
            errs.push(required(&rp.child(field), ""));
        } else {
            errs.extend(is_valid_path_segment_name(v).into_iter().map(|m| invalid(&rp.child(field), v, m)));
        }
    }
    for (i, m) in spec.g("metrics").arr().iter().enumerate() {
        errs.extend(metric_spec(m, &sp.child("metrics").index(i)));
    }
    let b = spec.g("behavior");
    if b.present() {
        for dir in ["scaleUp", "scaleDown"] {
            errs.extend(scaling_rules(b.g(dir), &sp.child("behavior").child(dir)));
        }
    }
    errs
}

const METRIC_TYPES: [&str; 5] = ["ContainerResource", "External", "Object", "Pods", "Resource"];

fn metric_spec(m: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    let t = m.g("type").s();
    if t.is_empty() {
        errs.push(required(&p.child("type"), "must specify a metric source type"));
    }
    let expected = match t {
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "External" => "external",
        "ContainerResource" => "containerResource",
        other => {
            errs.push(not_supported(&p.child("type"), other, &METRIC_TYPES));
            ""
        }
    };
    if !expected.is_empty() && !m.g(expected).present() {
        errs.push(required(&p.child(expected), "must populate information for the given metric source"));
    }
    for typ in ["object", "pods", "resource", "external", "containerResource"] {
        let src = m.g(typ);
        if !src.present() {
            continue;
        }
        if typ != expected {
            errs.push(forbidden(&p.child(typ), "must populate the given metric source only"));
            continue;
        }
        let sp = p.child(typ);
        if typ == "resource" || typ == "containerResource" {
            if src.g("name").s().is_empty() {
                errs.push(required(&sp.child("name"), "must specify a resource name"));
            }
            if typ == "containerResource" && src.g("container").s().is_empty() {
                errs.push(required(&sp.child("container"), "must specify a container"));
            }
            let target = src.g("target");
            errs.extend(metric_target(target, &sp.child("target")));
            let (au, av) = (target.g("averageUtilization").present(), target.g("averageValue").present());
            if !au && !av {
                errs.push(required(&sp.child("target").child("averageUtilization"), "must set either a target raw value or a target utilization"));
            }
            if au && av {
                errs.push(forbidden(&sp.child("target").child("averageValue"), "may not set both a target raw value and a target utilization"));
            }
        } else {
            if src.g("metric").g("name").s().is_empty() {
                errs.push(required(&sp.child("metric").child("name"), "must specify a metric name"));
            }
            errs.extend(metric_target(src.g("target"), &sp.child("target")));
        }
    }
    errs
}

fn metric_target(t: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    let ty = t.g("type").s();
    if ty.is_empty() {
        errs.push(required(&p.child("type"), "must specify a metric target type"));
    }
    if !["Utilization", "Value", "AverageValue"].contains(&ty) {
        errs.push(invalid(&p.child("type"), ty, "must be either Utilization, Value, or AverageValue"));
    }
    for field in ["value", "averageValue"] {
        let v = t.g(field);
        if v.present()
            && let Some(q) = parse_quantity(v, &p.child(field), &mut errs)
            && q.sign() != 1
        {
            errs.push(invalid(&p.child(field), q.canonical(), "must be positive"));
        }
    }
    if let Some(u) = t.g("averageUtilization").int()
        && u < 1
    {
        errs.push(invalid(&p.child("averageUtilization"), u, "must be greater than 0"));
    }
    errs
}

fn scaling_rules(rules: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    if !rules.present() {
        return errs;
    }
    if let Some(w) = rules.g("stabilizationWindowSeconds").int() {
        if w < 0 {
            errs.push(invalid(&p.child("stabilizationWindowSeconds"), w, "must be greater than or equal to zero"));
        }
        if w > 3600 {
            errs.push(invalid(&p.child("stabilizationWindowSeconds"), w, "must be less than or equal to 3600"));
        }
    }
    if let Some(sp) = rules.g("selectPolicy").as_str()
        && !["Disabled", "Max", "Min"].contains(&sp)
    {
        errs.push(not_supported(&p.child("selectPolicy"), sp, &["Disabled", "Max", "Min"]));
    }
    let pp = p.child("policies");
    if rules.g("policies").arr().is_empty() {
        errs.push(required(&pp, "must specify at least one Policy"));
    }
    for (i, pol) in rules.g("policies").arr().iter().enumerate() {
        let ip = pp.index(i);
        let t = pol.g("type").s();
        if t != "Pods" && t != "Percent" {
            errs.push(not_supported(&ip.child("type"), t, &["Percent", "Pods"]));
        }
        let v = pol.g("value").int().unwrap_or(0);
        if v <= 0 {
            errs.push(invalid(&ip.child("value"), v, "must be greater than zero"));
        }
        let period = pol.g("periodSeconds").int().unwrap_or(0);
        if period <= 0 {
            errs.push(invalid(&ip.child("periodSeconds"), period, "must be greater than zero"));
        }
        if period > 1800 {
            errs.push(invalid(&ip.child("periodSeconds"), period, "must be less than or equal to 1800"));
        }
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Lease

pub(crate) fn lease(l: &Value) -> Errs {
    let mut errs = meta::object_meta(l, true, names::name_is_dns_subdomain);
    errs.extend(lease_spec(l));
    errs
}

pub(crate) fn lease_spec(l: &Value) -> Errs {
    let spec = l.g("spec");
    let sp = Path::root("spec");
    let mut errs = Vec::new();
    if let Some(d) = spec.g("leaseDurationSeconds").int()
        && d <= 0
    {
        errs.push(invalid(&sp.child("leaseDurationSeconds"), d, "must be greater than 0"));
    }
    if let Some(t) = spec.g("leaseTransitions").int()
        && t < 0
    {
        errs.push(invalid(&sp.child("leaseTransitions"), t, "must be greater than or equal to 0"));
    }
    let strategy = spec.g("strategy").s();
    if spec.g("strategy").present() {
        let stp = sp.child("strategy").child("strategy");
        if !strategy.contains('/') {
            if strategy != "OldestEmulationVersion" {
                errs.push(not_supported(&stp, strategy, &["OldestEmulationVersion"]));
            }
        } else {
            errs.extend(is_qualified_name(strategy).into_iter().map(|m| invalid(&stp, strategy, m)));
        }
    }
    if !spec.g("preferredHolder").s().is_empty() && strategy.is_empty() {
        errs.push(forbidden(&sp.child("preferredHolder"), "may only be specified if `strategy` is defined"));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// EndpointSlice

pub(crate) fn endpoint_slice(es: &Value, old: Option<&Value>) -> Errs {
    let mut errs = meta::object_meta(es, true, names::name_is_dns_subdomain);
    let at = es.g("addressType").s();
    match at {
        "" => errs.push(required(&Path::root("addressType"), "")),
        "IPv4" | "IPv6" | "FQDN" => {}
        other => errs.push(not_supported(&Path::root("addressType"), other, &["FQDN", "IPv4", "IPv6"])),
    }
    let ep = Path::root("endpoints");
    let endpoints = es.g("endpoints").arr();
    if endpoints.len() > 1000 {
        errs.push(too_many(&ep, endpoints.len(), 1000));
    } else {
        for (i, e) in endpoints.iter().enumerate() {
            let ip = ep.index(i);
            let ap = ip.child("addresses");
            let addrs = e.g("addresses").arr();
            if addrs.is_empty() {
                errs.push(required(&ap, "must contain at least 1 address"));
            } else if addrs.len() > 100 {
                errs.push(too_many(&ap, addrs.len(), 100));
            }
            for (j, a) in addrs.iter().enumerate() {
                let a = a.s();
                let aip = ap.index(j);
                match at {
                    "IPv4" | "IPv6" => match parse_ip(a) {
                        Some(addr) if addr.is_ipv4() == (at == "IPv4") => errs.extend(non_special_ip(a, addr, &aip)),
                        _ => errs.push(invalid(&aip, a, format!("must be a valid {at} address"))),
                    },
                    "FQDN" => errs.extend(fqdn(a, &aip)),
                    _ => {}
                }
            }
            if let Some(node) = e.g("nodeName").as_str() {
                errs.extend(is_dns1123_subdomain(node).into_iter().map(|m| invalid(&ip.child("nodeName"), node, m)));
            }
            let topo = e.g("deprecatedTopology");
            if topo.map_len() > 16 {
                errs.push(too_many(&ip.child("deprecatedTopology"), topo.map_len(), 16));
            }
            errs.extend(labels(topo, &ip.child("deprecatedTopology")));
            if let Some(h) = e.g("hostname").as_str() {
                errs.extend(dns_label(h, &ip.child("hostname")));
            }
        }
    }
    let pp = Path::root("ports");
    let ports = es.g("ports").arr();
    if ports.len() > 20000 {
        errs.push(too_many(&pp, ports.len(), 20000));
    } else {
        let mut names_seen = HashSet::new();
        for (i, port) in ports.iter().enumerate() {
            let ip = pp.index(i);
            let name = port.g("name").s();
            if !name.is_empty() {
                errs.extend(dns_label(name, &ip.child("name")));
            }
            if !names_seen.insert(name) {
                errs.push(duplicate(&ip.child("name"), name));
            }
            match port.g("protocol").as_str() {
                None => errs.push(required(&ip.child("protocol"), "")),
                Some("TCP" | "UDP" | "SCTP") => {}
                Some(other) => errs.push(not_supported(&ip.child("protocol"), other, &["SCTP", "TCP", "UDP"])),
            }
            if let Some(ap) = port.g("appProtocol").as_str() {
                errs.extend(is_qualified_name(ap).into_iter().map(|m| invalid(&ip.child("appProtocol"), ap, m)));
            }
        }
    }
    if let Some(old) = old {
        errs.extend(immutable(es.g("addressType"), old.g("addressType"), &Path::root("addressType")));
    }
    errs
}

fn fqdn(name: &str, p: &Path) -> Errs {
    if name.is_empty() {
        return vec![required(p, "")];
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let msgs = is_dns1123_subdomain(name);
    if !msgs.is_empty() {
        return vec![invalid(p, name, msgs.join(","))];
    }
    if name.split('.').count() < 2 {
        return vec![invalid(p, name, "should be a domain with at least two segments separated by dots")];
    }
    vec![]
}

// ---------------------------------------------------------------------------------------------
// RBAC

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

pub(crate) fn role(r: &Value, namespaced: bool) -> Errs {
    let mut errs = meta::object_meta(r, namespaced, names::name_is_path_segment);
    errs.extend(role_rules(r, namespaced));
    errs
}

/// The policy rules (and a ClusterRole's aggregation rule).
pub(crate) fn role_rules(r: &Value, namespaced: bool) -> Errs {
    let mut errs = Vec::new();
    for (i, rule) in r.g("rules").arr().iter().enumerate() {
        let p = Path::root("rules").index(i);
        if rule.g("verbs").arr().is_empty() {
            errs.push(required(&p.child("verbs"), "verbs must contain at least one value"));
        }
        if !rule.g("nonResourceURLs").arr().is_empty() {
            let urls = rule.g("nonResourceURLs").clone();
            if namespaced {
                errs.push(invalid(&p.child("nonResourceURLs"), urls.clone(), "namespaced rules cannot apply to non-resource URLs"));
            }
            if ["apiGroups", "resources", "resourceNames"].iter().any(|f| !rule.g(f).arr().is_empty()) {
                errs.push(invalid(&p.child("nonResourceURLs"), urls, "rules cannot apply to both regular resources and non-resource URLs"));
            }
            continue;
        }
        if rule.g("apiGroups").arr().is_empty() {
            errs.push(required(&p.child("apiGroups"), "resource rules must supply at least one api group"));
        }
        if rule.g("resources").arr().is_empty() {
            errs.push(required(&p.child("resources"), "resource rules must supply at least one resource"));
        }
    }
    let agg = r.g("aggregationRule");
    if !namespaced && agg.present() {
        let sp = Path::new(&["aggregationRule", "clusterRoleSelectors"]);
        let sels = agg.g("clusterRoleSelectors").arr();
        if sels.is_empty() {
            errs.push(required(&sp, "at least one clusterRoleSelector required if aggregationRule is non-nil"));
        }
        for (i, s) in sels.iter().enumerate() {
            errs.extend(label_selector(s, &sp.index(i)));
        }
    }
    errs
}

pub(crate) fn role_binding(b: &Value, namespaced: bool) -> Errs {
    let mut errs = meta::object_meta(b, namespaced, names::name_is_path_segment);
    let rr = b.g("roleRef");
    let rp = Path::root("roleRef");
    let group = rr.g("apiGroup").s();
    if group != RBAC_GROUP {
        errs.push(not_supported(&rp.child("apiGroup"), group, &[RBAC_GROUP]));
    }
    let kind = rr.g("kind").s();
    let kinds: &[&str] = if namespaced { &["Role", "ClusterRole"] } else { &["ClusterRole"] };
    if !kinds.contains(&kind) {
        errs.push(not_supported(&rp.child("kind"), kind, kinds));
    }
    let name = rr.g("name").s();
    if name.is_empty() {
        errs.push(required(&rp.child("name"), ""));
    } else {
        errs.extend(is_valid_path_segment_name(name).into_iter().map(|m| invalid(&rp.child("name"), name, m)));
    }
    for (i, s) in b.g("subjects").arr().iter().enumerate() {
        let sp = Path::root("subjects").index(i);
        let sname = s.g("name").s();
        if sname.is_empty() {
            errs.push(required(&sp.child("name"), ""));
        }
        let sgroup = s.g("apiGroup").s();
        match s.g("kind").s() {
            "ServiceAccount" => {
                if !sname.is_empty() {
                    errs.extend(is_dns1123_subdomain(sname).into_iter().map(|m| invalid(&sp.child("name"), sname, m)));
                }
                if !sgroup.is_empty() {
                    errs.push(not_supported(&sp.child("apiGroup"), sgroup, &[""]));
                }
                if !namespaced && s.g("namespace").s().is_empty() {
                    errs.push(required(&sp.child("namespace"), ""));
                }
            }
            "User" | "Group" => {
                if sgroup != RBAC_GROUP {
                    errs.push(not_supported(&sp.child("apiGroup"), sgroup, &[RBAC_GROUP]));
                }
            }
            other => errs.push(not_supported(&sp.child("kind"), other, &["ServiceAccount", "User", "Group"])),
        }
    }
    errs
}

/// `ValidateRoleBindingUpdate`: the role a binding grants never changes.
pub(crate) fn role_binding_update(new: &Value, old: &Value, namespaced: bool) -> Errs {
    let mut errs = role_binding(new, namespaced);
    if !sem_eq(new.g("roleRef"), old.g("roleRef")) {
        errs.push(invalid(&Path::root("roleRef"), new.g("roleRef").clone(), "cannot change roleRef"));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// PodDisruptionBudget, PriorityClass

pub(crate) fn pdb(p: &Value) -> Errs {
    let mut errs = meta::object_meta(p, true, names::name_is_dns_subdomain);
    errs.extend(pdb_spec(p));
    errs
}

pub(crate) fn pdb_spec(pdb: &Value) -> Errs {
    let spec = pdb.g("spec");
    let sp = Path::root("spec");
    let mut errs = Vec::new();
    let (min, max) = (spec.g("minAvailable"), spec.g("maxUnavailable"));
    if min.present() && max.present() {
        errs.push(invalid(&sp, spec.clone(), "minAvailable and maxUnavailable cannot be both set"));
    }
    for (v, field) in [(min, "minAvailable"), (max, "maxUnavailable")] {
        if v.present() {
            errs.extend(positive_int_or_percent(v, &sp.child(field)));
            errs.extend(not_more_than_100_percent(v, &sp.child(field)));
        }
    }
    errs.extend(label_selector(spec.g("selector"), &sp.child("selector")));
    if let Some(pol) = spec.g("unhealthyPodEvictionPolicy").as_str()
        && pol != "AlwaysAllow"
        && pol != "IfHealthyBudget"
    {
        errs.push(not_supported(&sp.child("unhealthyPodEvictionPolicy"), pol, &["AlwaysAllow", "IfHealthyBudget"]));
    }
    errs
}

const HIGHEST_USER_PRIORITY: i64 = 1_000_000_000;
const SYSTEM_CLASSES: [(&str, i64); 2] = [("system-node-critical", 2_000_001_000), ("system-cluster-critical", 2_000_000_000)];

pub(crate) fn priority_class(pc: &Value) -> Errs {
    let mut errs = meta::object_meta(pc, false, names::name_is_dns_subdomain);
    let name = pc.g("metadata").g("name").s();
    let value = pc.g("value").int().unwrap_or(0);
    let global = pc.g("globalDefault").boolean().unwrap_or(false);
    if name.starts_with("system-") {
        let err = match SYSTEM_CLASSES.iter().find(|(n, _)| *n == name) {
            None => Some(format!("{name} is not a known system priority class")),
            Some((_, v)) if *v != value => Some(format!("value of {name} PriorityClass must be {v}")),
            Some(_) if global => Some(format!("globalDefault of {name} PriorityClass must be false")),
            Some(_) => None,
        };
        if let Some(e) = err {
            errs.push(forbidden(
                &Path::new(&["metadata", "name"]),
                format!("priority class names with 'system-' prefix are reserved for system use only. error: {e}"),
            ));
        }
    } else if value > HIGHEST_USER_PRIORITY {
        errs.push(forbidden(&Path::root("value"), format!("maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}")));
    }
    if let Some(pp) = pc.g("preemptionPolicy").as_str() {
        errs.extend(preemption_policy(pp, &Path::root("preemptionPolicy")));
    }
    errs
}

/// `ValidatePriorityClassUpdate`: value and preemption policy are fixed.
pub(crate) fn priority_class_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Vec::new();
    if new.g("value").int() != old.g("value").int() {
        errs.push(forbidden(&Path::root("value"), "may not be changed in an update."));
    }
    errs.extend(immutable(new.g("preemptionPolicy"), old.g("preemptionPolicy"), &Path::root("preemptionPolicy")));
    errs
}
