//! The other core/v1 kinds: Service, Namespace, Node, ConfigMap, Secret, Endpoints,
//! PersistentVolumeClaim, PersistentVolume, LimitRange, ResourceQuota.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use super::json::{J, diff, sem_eq};
use super::meta::{self, label_name, labels, label_selector};
use super::names::{self, INVALID_CIDR, INVALID_IP, is_config_map_key, is_dns1123_subdomain, is_qualified_name, is_valid_label_value, parse_ip};
use super::path::{Errs, Path, duplicate, forbidden, immutable, invalid, not_supported, required, too_long};
use super::pod::{self, dns_label, dns_subdomain, parse_quantity, port_num_or_name, protocol, resource_quantity_value};
use super::quantity::{self, Quantity};
use super::{ErrorType, FieldError};

const MAX_SECRET_SIZE: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Service

/// `ValidateService`, plus `ValidateServiceUpdate`'s cluster IP and family rules when `old` is
/// given, and the node port range check of the port allocator.
pub(crate) fn service(svc: &Value, old: Option<&Value>) -> Errs {
    let mut errs = Vec::new();
    if let Some(old) = old {
        errs.extend(service_update_rules(svc, old));
    }
    errs.extend(meta::object_meta(svc, true, names::name_is_dns1035_label));
    let spec = svc.g("spec");
    let sp = Path::root("spec");
    let t = spec.g("type").s();
    let headless = is_headless(spec);
    let ports = spec.g("ports").arr();
    if ports.is_empty() && !headless && t != "ExternalName" {
        errs.push(required(&sp.child("ports"), ""));
    }
    match t {
        "LoadBalancer" | "NodePort" if headless => {
            errs.push(invalid(&sp.child("clusterIPs").index(0), "None", format!("may not be set to 'None' for {t} services")));
        }
        "ExternalName" => {
            if !spec.g("clusterIPs").arr().is_empty() {
                errs.push(forbidden(&sp.child("clusterIPs"), "may not be set for ExternalName services"));
            }
            if !spec.g("ipFamilies").arr().is_empty() {
                errs.push(forbidden(&sp.child("ipFamilies"), "may not be set for ExternalName services"));
            }
            if spec.g("ipFamilyPolicy").present() {
                errs.push(forbidden(&sp.child("ipFamilyPolicy"), "may not be set for ExternalName services"));
            }
            let name = spec.g("externalName").s();
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                errs.push(required(&sp.child("externalName"), ""));
            } else {
                errs.extend(dns_subdomain(cname, &sp.child("externalName")));
            }
        }
        _ => {}
    }
    let mut port_names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        errs.extend(service_port(port, ports.len() > 1, &mut port_names, &sp.child("ports").index(i)));
    }
    if spec.g("selector").present() {
        errs.extend(labels(spec.g("selector"), &sp.child("selector")));
    }
    let affinity = spec.g("sessionAffinity").s();
    match affinity {
        "" => errs.push(required(&sp.child("sessionAffinity"), "")),
        "ClientIP" | "None" => {}
        other => errs.push(not_supported(&sp.child("sessionAffinity"), other, &["ClientIP", "None"])),
    }
    let cfg = spec.g("sessionAffinityConfig");
    let cp = sp.child("sessionAffinityConfig");
    if affinity == "ClientIP" {
        let when = "when session affinity type is ClientIP";
        if !cfg.present() {
            errs.push(required(&cp, when));
        } else if !cfg.g("clientIP").present() {
            errs.push(required(&cp.child("clientIP"), when));
        } else if let Some(t) = cfg.g("clientIP").g("timeoutSeconds").int() {
            if t <= 0 || t > 86400 {
                errs.push(invalid(&cp.child("clientIP").child("timeoutSeconds"), t, "must be greater than 0 and less than 86400"));
            }
        } else {
            errs.push(required(&cp.child("clientIP").child("timeoutSeconds"), when));
        }
    } else if affinity == "None" && cfg.present() {
        errs.push(forbidden(&cp, "must not be set when session affinity is None"));
    }
    errs.extend(cluster_ips_related(spec, &sp));
    for (i, ip) in spec.g("externalIPs").arr().iter().enumerate() {
        let ip_p = sp.child("externalIPs").index(i);
        match parse_ip(ip.s()) {
            None => errs.push(invalid(&ip_p, ip.s(), INVALID_IP)),
            Some(addr) => errs.extend(non_special_ip(ip.s(), addr, &ip_p)),
        }
    }
    match t {
        "" => errs.push(required(&sp.child("type"), "")),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName" => {}
        other => errs.push(not_supported(&sp.child("type"), other, &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"])),
    }
    if t == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if port.g("nodePort").int().unwrap_or(0) != 0 {
                errs.push(forbidden(&sp.child("ports").index(i).child("nodePort"), "may not be used when `type` is 'ClusterIP'"));
            }
        }
    }
    let mut node_ports = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let np = port.g("nodePort").int().unwrap_or(0);
        if np != 0 && !node_ports.insert((port.g("protocol").s(), np)) {
            errs.push(duplicate(&sp.child("ports").index(i).child("nodePort"), np));
        }
    }
    let mut seen = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let key = (port.g("protocol").s(), port.g("port").int().unwrap_or(0));
        if !seen.insert(key) {
            errs.push(duplicate(&sp.child("ports").index(i), json!({"port": key.1, "protocol": key.0})));
        }
    }
    let ranges = spec.g("loadBalancerSourceRanges").arr();
    if !ranges.is_empty() {
        // Kubernetes names this path with a capital L.
        let rp = sp.child("LoadBalancerSourceRanges");
        if t != "LoadBalancer" {
            errs.push(forbidden(&rp, "may only be used when `type` is 'LoadBalancer'"));
        }
        for (i, r) in ranges.iter().enumerate() {
            let v = r.s().trim();
            if !names::is_valid_cidr(v) {
                errs.push(invalid(&rp.index(i), v, INVALID_CIDR));
            }
        }
    }
    let alloc = spec.g("allocateLoadBalancerNodePorts");
    if alloc.present() && t != "LoadBalancer" {
        errs.push(forbidden(&sp.child("allocateLoadBalancerNodePorts"), "may only be used when `type` is 'LoadBalancer'"));
    }
    if t == "LoadBalancer" && !alloc.present() {
        errs.push(required(&Path::root("allocateLoadBalancerNodePorts"), ""));
    }
    if let Some(class) = spec.g("loadBalancerClass").as_str() {
        if t == "LoadBalancer" {
            errs.extend(is_qualified_name(class).into_iter().map(|m| invalid(&sp.child("loadBalancerClass"), class, m)));
        } else {
            errs.push(forbidden(&sp.child("loadBalancerClass"), "may only be used when `type` is 'LoadBalancer'"));
        }
    }
    let etp = spec.g("externalTrafficPolicy").s();
    let externally_accessible = t == "LoadBalancer" || t == "NodePort" || (t == "ClusterIP" && !spec.g("externalIPs").arr().is_empty());
    if !externally_accessible {
        if !etp.is_empty() {
            errs.push(invalid(&sp.child("externalTrafficPolicy"), etp, "may only be set for externally-accessible services"));
        }
    } else if etp.is_empty() {
        errs.push(required(&sp.child("externalTrafficPolicy"), ""));
    } else if etp != "Cluster" && etp != "Local" {
        errs.push(not_supported(&sp.child("externalTrafficPolicy"), etp, &["Cluster", "Local"]));
    }
    let hc = spec.g("healthCheckNodePort").int().unwrap_or(0);
    if !(t == "LoadBalancer" && etp == "Local") {
        if hc != 0 {
            errs.push(invalid(&sp.child("healthCheckNodePort"), hc, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"));
        }
    } else if hc != 0 {
        errs.extend(names::is_valid_port_num(hc).into_iter().map(|m| invalid(&sp.child("healthCheckNodePort"), hc, m)));
    }
    match spec.g("internalTrafficPolicy").as_str() {
        None if matches!(t, "NodePort" | "LoadBalancer" | "ClusterIP") => errs.push(required(&sp.child("internalTrafficPolicy"), "")),
        Some(itp) if itp != "Cluster" && itp != "Local" => {
            errs.push(not_supported(&sp.child("internalTrafficPolicy"), itp, &["Cluster", "Local"]))
        }
        _ => {}
    }
    if let Some(td) = spec.g("trafficDistribution").as_str()
        && td != "PreferClose"
    {
        errs.push(not_supported(&sp.child("trafficDistribution"), td, &["PreferClose"]));
    }
    // The node port allocator's range check (default --service-node-port-range).
    for (i, port) in ports.iter().enumerate() {
        let np = port.g("nodePort").int().unwrap_or(0);
        if np != 0 && t != "ClusterIP" && !(30000..=32767).contains(&np) {
            errs.push(invalid(
                &sp.child("ports").index(i).child("nodePort"),
                np,
                "provided port is not in the valid range. The range of valid ports is 30000-32767",
            ));
        }
    }
    errs
}

fn is_headless(spec: &Value) -> bool {
    let ips = spec.g("clusterIPs").arr();
    ips.len() == 1 && ips[0].s() == "None"
}

fn service_port<'a>(port: &'a Value, require_name: bool, names_seen: &mut HashSet<&'a str>, p: &Path) -> Errs {
    let mut errs = Vec::new();
    let name = port.g("name").s();
    if require_name && name.is_empty() {
        errs.push(required(&p.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(dns_label(name, &p.child("name")));
        if !names_seen.insert(name) {
            errs.push(duplicate(&p.child("name"), name));
        }
    }
    let num = port.g("port").int().unwrap_or(0);
    errs.extend(names::is_valid_port_num(num).into_iter().map(|m| invalid(&p.child("port"), num, m)));
    errs.extend(protocol(port.g("protocol").s(), &p.child("protocol")));
    errs.extend(port_num_or_name(port.g("targetPort"), &p.child("targetPort")));
    if let Some(ap) = port.g("appProtocol").as_str() {
        errs.extend(is_qualified_name(ap).into_iter().map(|m| invalid(&p.child("appProtocol"), ap, m)));
    }
    errs
}

fn ip_strings(v: &Value) -> Vec<&str> {
    v.arr().iter().map(|x| x.s()).collect()
}

fn cluster_ips_related(spec: &Value, sp: &Path) -> Errs {
    let mut errs = Vec::new();
    if spec.g("type").s() == "ExternalName" {
        return errs;
    }
    let cip = spec.g("clusterIP").s();
    let ips = ip_strings(spec.g("clusterIPs"));
    let ips_p = sp.child("clusterIPs");
    let list = spec.g("clusterIPs").clone();
    if !cip.is_empty() {
        if ips.is_empty() {
            errs.push(required(&ips_p, ""));
        } else if ips[0] != cip {
            errs.push(invalid(&ips_p, list.clone(), "first value must match `clusterIP`"));
        }
    } else if !ips.is_empty() {
        errs.push(invalid(&ips_p, list.clone(), "must be empty when `clusterIP` is not specified"));
    }
    let families = ip_strings(spec.g("ipFamilies"));
    let mut seen = HashSet::new();
    for (i, f) in families.iter().enumerate() {
        if *f != "IPv4" && *f != "IPv6" {
            errs.push(not_supported(&sp.child("ipFamilies").index(i), *f, &["IPv4", "IPv6"]));
        }
        if !seen.insert(*f) {
            errs.push(duplicate(&sp.child("ipFamilies").index(i), *f));
        }
    }
    if let Some(pol) = spec.g("ipFamilyPolicy").as_str()
        && !["PreferDualStack", "RequireDualStack", "SingleStack"].contains(&pol)
    {
        errs.push(not_supported(&sp.child("ipFamilyPolicy"), pol, &["PreferDualStack", "RequireDualStack", "SingleStack"]));
    }
    let mut bad = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && *ip == "None" {
            if ips.len() > 1 {
                bad = true;
                errs.push(invalid(&ips_p, list.clone(), "'None' must be the first and only value"));
            }
            continue;
        }
        if parse_ip(ip).is_none() {
            bad = true;
            errs.push(invalid(&ips_p.index(i), *ip, INVALID_IP));
        }
    }
    if ips.len() > 2 {
        errs.push(invalid(&ips_p, list.clone(), "may only hold up to 2 values"));
    }
    if bad {
        return errs;
    }
    if ips.len() > 1 {
        let v4 = ips.iter().filter(|ip| parse_ip(ip).is_some_and(|a| a.is_ipv4())).count();
        if v4 != 1 || ips.len() != 2 {
            errs.push(invalid(&ips_p, list.clone(), "may specify no more than one IP for each IP family"));
        }
    }
    if !is_headless(spec) {
        for (i, ip) in ips.iter().enumerate() {
            let Some(fam) = families.get(i) else { break };
            let is_v6 = parse_ip(ip).is_some_and(|a| a.is_ipv6());
            if *fam == "IPv4" && is_v6 {
                errs.push(invalid(&ips_p.index(i), *ip, format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`")));
            }
            if *fam == "IPv6" && !is_v6 {
                errs.push(invalid(&ips_p.index(i), *ip, format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`")));
            }
        }
    }
    errs
}

/// `ValidateNonSpecialIP` (Endpoints, EndpointSlices, external IPs).
pub(crate) fn non_special_ip(raw: &str, ip: std::net::IpAddr, p: &Path) -> Errs {
    use std::net::IpAddr;
    let mut errs = Vec::new();
    if ip.is_unspecified() {
        errs.push(invalid(p, raw, format!("may not be unspecified ({raw})")));
    }
    if ip.is_loopback() {
        errs.push(invalid(p, raw, "may not be in the loopback range (127.0.0.0/8, ::1/128)"));
    }
    let (link_local, ll_multicast) = match ip {
        IpAddr::V4(v4) => (v4.is_link_local(), v4.octets()[..3] == [224, 0, 0]),
        IpAddr::V6(v6) => ((v6.segments()[0] & 0xffc0) == 0xfe80, (v6.segments()[0] & 0xff0f) == 0xff02),
    };
    if link_local {
        errs.push(invalid(p, raw, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"));
    }
    if ll_multicast {
        errs.push(invalid(p, raw, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"));
    }
    errs
}

fn service_update_rules(new: &Value, old: &Value) -> Errs {
    let mut errs = Vec::new();
    let (ns, os) = (new.g("spec"), old.g("spec"));
    let (nt, ot) = (ns.g("type").s(), os.g("type").s());
    let ips_p = Path::new(&["spec", "clusterIPs"]);
    let fam_p = Path::new(&["spec", "ipFamilies"]);
    if nt != "ExternalName" && ot != "ExternalName" {
        let (n_head, o_head) = (is_headless(ns), is_headless(os));
        let (nips, oips) = (ip_strings(ns.g("clusterIPs")), ip_strings(os.g("clusterIPs")));
        let list = ns.g("clusterIPs").clone();
        if !(n_head && o_head) {
            match oips.len().cmp(&nips.len()) {
                Ordering::Equal => {
                    for (i, ip) in oips.iter().enumerate() {
                        if *ip != nips[i] {
                            errs.push(invalid(&ips_p.index(i), list.clone(), "may not change once set"));
                        }
                    }
                }
                Ordering::Greater => {
                    if nips.is_empty() {
                        errs.push(invalid(&ips_p.index(0), list.clone(), "primary clusterIP can not be unset"));
                    }
                    if !oips.is_empty() && !nips.is_empty() && nips[0] != oips[0] {
                        errs.push(invalid(&ips_p.index(0), list.clone(), "may not change once set"));
                    }
                    if nips.len() == 1 && ns.g("ipFamilyPolicy").as_str() != Some("SingleStack") {
                        errs.push(invalid(
                            &Path::new(&["spec", "ipFamilyPolicy"]),
                            ns.g("ipFamilyPolicy").clone(),
                            "must be set to 'SingleStack' when releasing the secondary clusterIP",
                        ));
                    }
                }
                Ordering::Less => {
                    if !oips.is_empty() && nips[0] != oips[0] {
                        errs.push(invalid(&ips_p.index(0), list.clone(), "may not change once set"));
                    }
                }
            }
        }
        if n_head == o_head && !n_head {
            let (nf, of) = (ip_strings(ns.g("ipFamilies")), ip_strings(os.g("ipFamilies")));
            let flist = ns.g("ipFamilies").clone();
            match of.len().cmp(&nf.len()) {
                Ordering::Equal => {
                    for (i, f) in of.iter().enumerate() {
                        if *f != nf[i] {
                            errs.push(invalid(&fam_p.index(0), flist.clone(), "may not change once set"));
                        }
                    }
                }
                Ordering::Greater => {
                    if nips.is_empty() {
                        errs.push(invalid(&fam_p.index(0), flist.clone(), "primary ipFamily can not be unset"));
                    }
                    if !nf.is_empty() && nf[0] != of[0] {
                        errs.push(invalid(&fam_p.index(0), list.clone(), "may not change once set"));
                    }
                    if nf.len() == 1 && ns.g("ipFamilyPolicy").as_str() != Some("SingleStack") {
                        errs.push(invalid(
                            &Path::new(&["spec", "ipFamilyPolicy"]),
                            ns.g("ipFamilyPolicy").clone(),
                            "must be set to 'SingleStack' when releasing the secondary ipFamily",
                        ));
                    }
                }
                Ordering::Less => {
                    if !of.is_empty() && !nf.is_empty() && nf[0] != of[0] {
                        errs.push(invalid(&fam_p.index(0), list.clone(), "may not change once set"));
                    }
                }
            }
        }
    }
    if nt == "LoadBalancer" && ot == "LoadBalancer" && ns.g("loadBalancerClass") != os.g("loadBalancerClass") {
        errs.push(invalid(&Path::new(&["spec", "loadBalancerClass"]), ns.g("loadBalancerClass").clone(), "may not change once set"));
    }
    let needs_hc = |s: &Value| s.g("type").s() == "LoadBalancer" && s.g("externalTrafficPolicy").s() == "Local";
    if needs_hc(ns) && needs_hc(os) && ns.g("healthCheckNodePort").int() != os.g("healthCheckNodePort").int() {
        errs.push(forbidden(&Path::new(&["spec", "healthCheckNodePort"]), "field is immutable"));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Namespace, Node

pub(crate) fn namespace(ns: &Value) -> Errs {
    let mut errs = meta::object_meta(ns, false, names::name_is_dns_label);
    errs.extend(namespace_update(ns));
    errs
}

/// The spec rules, which Kubernetes also checks when finalizing.
pub(crate) fn namespace_update(ns: &Value) -> Errs {
    let p = Path::new(&["spec", "finalizers"]);
    let mut errs = Vec::new();
    for f in ns.g("spec").g("finalizers").arr() {
        errs.extend(is_qualified_name(f.s()).into_iter().map(|m| invalid(&p, f.s(), m)));
        errs.extend(meta::kube_finalizer_name(f.s(), &p));
    }
    errs
}

pub(crate) fn node(node: &Value) -> Errs {
    let mut errs = meta::object_meta(node, false, names::name_is_dns_subdomain);
    errs.extend(node_common(node));
    let cidrs = node.g("spec").g("podCIDRs").arr();
    let cp = Path::new(&["spec", "podCIDRs"]);
    for (i, c) in cidrs.iter().enumerate() {
        if !names::is_valid_cidr(c.s()) {
            errs.push(invalid(&cp.index(i), c.s(), INVALID_CIDR));
        }
    }
    if cidrs.len() > 1 {
        let v4 = cidrs.iter().filter(|c| c.s().split('/').next().and_then(parse_ip).is_some_and(|ip| ip.is_ipv4())).count();
        if v4 != 1 || cidrs.len() > 2 {
            errs.push(invalid(&cp, node.g("spec").g("podCIDRs").clone(), "may specify no more than one CIDR for each IP family"));
        }
        let mut seen = HashSet::new();
        for (i, c) in cidrs.iter().enumerate() {
            if !seen.insert(c.s()) {
                errs.push(duplicate(&cp.index(i), c.s()));
            }
        }
    }
    errs
}

fn node_common(node: &Value) -> Errs {
    let mut errs = Vec::new();
    // Kubernetes reports spec.taints under metadata.taints.
    let tp = Path::new(&["metadata", "taints"]);
    let mut unique = HashSet::new();
    for (i, t) in node.g("spec").g("taints").arr().iter().enumerate() {
        let ip = tp.index(i);
        errs.extend(label_name(t.g("key").s(), &ip.child("key")));
        let v = t.g("value").s();
        let msgs = is_valid_label_value(v);
        if !msgs.is_empty() {
            errs.push(invalid(&ip.child("value"), v, msgs.join(";")));
        }
        let effect = t.g("effect").s();
        if effect.is_empty() {
            errs.push(required(&ip.child("effect"), ""));
        } else {
            errs.extend(pod::taint_effect(effect, &ip.child("effect")));
        }
        if !unique.insert((effect, t.g("key").s())) {
            errs.push(FieldError::new(ErrorType::Duplicate, ip.as_str(), Some(t.clone()), "taints must be unique by key and effect pair"));
        }
    }
    for section in ["capacity", "allocatable"] {
        for (k, v) in node.g("status").g(section).entries() {
            let p = Path::new(&["status", section, k]);
            if let Some(q) = parse_quantity(v, &p, &mut errs) {
                errs.extend(resource_quantity_value(k, &q, &p));
            }
        }
    }
    errs
}

pub(crate) fn node_update(new: &Value, old: &Value) -> Errs {
    let mut errs = node_common(new);
    let mut seen = Vec::new();
    for (i, a) in new.g("status").g("addresses").arr().iter().enumerate() {
        if seen.contains(&a) {
            errs.push(duplicate(&Path::new(&["status", "addresses"]).index(i), a.clone()));
        }
        seen.push(a);
    }
    let (ncidr, ocidr) = (ip_strings(new.g("spec").g("podCIDRs")), ip_strings(old.g("spec").g("podCIDRs")));
    let msg = "node updates may not change podCIDR except from \"\" to valid";
    if !ocidr.is_empty() {
        if ocidr.len() != ncidr.len() {
            errs.push(forbidden(&Path::new(&["spec", "podCIDRs"]), msg));
        } else {
            for (o, n) in ocidr.iter().zip(&ncidr) {
                if o != n {
                    errs.push(forbidden(&Path::new(&["spec", "podCIDRs"]), msg));
                }
            }
        }
    }
    let (npid, opid) = (new.g("spec").g("providerID").s(), old.g("spec").g("providerID").s());
    if !opid.is_empty() && opid != npid {
        errs.push(forbidden(&Path::new(&["spec", "providerID"]), "node updates may not change providerID except from \"\" to valid"));
    }
    if new.g("spec").g("externalID").s() != old.g("spec").g("externalID").s() {
        errs.push(forbidden(&Path::new(&["spec", "externalID"]), "may not be updated"));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// ConfigMap, Secret

/// The decoded length of base64 text (Secret data and ConfigMap binaryData).
fn base64_len(s: &str) -> usize {
    let t = s.trim_end_matches('=');
    t.len() * 3 / 4
}

pub(crate) fn config_map(cm: &Value) -> Errs {
    let mut errs = meta::object_meta(cm, true, names::name_is_dns_subdomain);
    let mut total = 0;
    let binary = cm.g("binaryData");
    for (k, v) in cm.g("data").entries() {
        let p = Path::root("data").key(k);
        errs.extend(is_config_map_key(k).into_iter().map(|m| invalid(&p, k.as_str(), m)));
        if binary.g(k).present() {
            errs.push(invalid(&p, k.as_str(), "duplicate of key present in binaryData"));
        }
        total += v.s().len();
    }
    for (k, v) in binary.entries() {
        let p = Path::root("binaryData").key(k);
        errs.extend(is_config_map_key(k).into_iter().map(|m| invalid(&p, k.as_str(), m)));
        total += base64_len(v.s());
    }
    if total > MAX_SECRET_SIZE {
        errs.push(too_long(&Path::root(""), MAX_SECRET_SIZE));
    }
    errs
}

pub(crate) fn config_map_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Vec::new();
    if old.g("immutable").boolean() == Some(true) {
        if new.g("immutable").boolean() != Some(true) {
            errs.push(forbidden(&Path::root("immutable"), "field is immutable when `immutable` is set"));
        }
        for field in ["data", "binaryData"] {
            if !sem_eq(new.g(field), old.g(field)) {
                errs.push(forbidden(&Path::root(field), "field is immutable when `immutable` is set"));
            }
        }
    }
    errs.extend(config_map(new));
    errs
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = T.iter().position(|&t| t == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

pub(crate) fn secret(s: &Value) -> Errs {
    let mut errs = meta::object_meta(s, true, names::name_is_dns_subdomain);
    let dp = Path::root("data");
    let data = s.g("data");
    let mut total = 0;
    for (k, v) in data.entries() {
        errs.extend(is_config_map_key(k).into_iter().map(|m| invalid(&dp.key(k), k.as_str(), m)));
        total += base64_len(v.s());
    }
    if total > MAX_SECRET_SIZE {
        errs.push(too_long(&dp, MAX_SECRET_SIZE));
    }
    let has = |k: &str| data.g(k).present();
    match s.g("type").s() {
        "kubernetes.io/service-account-token" if s.g("metadata").g("annotations").g("kubernetes.io/service-account.name").s().is_empty() => {
            errs.push(required(&Path::new(&["metadata", "annotations"]).key("kubernetes.io/service-account.name"), ""));
        }
        "kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson" => {
            let key = if s.g("type").s() == "kubernetes.io/dockercfg" { ".dockercfg" } else { ".dockerconfigjson" };
            if !has(key) {
                errs.push(required(&dp.key(key), ""));
            } else {
                let bytes = base64_decode(data.g(key).s()).unwrap_or_default();
                if let Err(e) = serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes) {
                    errs.push(invalid(&dp.key(key), "<secret contents redacted>", e.to_string()));
                }
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(required(&dp.key("username"), ""));
            errs.push(required(&dp.key("password"), ""));
        }
        "kubernetes.io/ssh-auth" if data.g("ssh-privatekey").s().is_empty() => {
            errs.push(required(&dp.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !has(key) {
                    errs.push(required(&dp.key(key), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

pub(crate) fn secret_update(new: &Value, old: &Value) -> Errs {
    let mut errs = Vec::new();
    errs.extend(immutable(new.g("type"), old.g("type"), &Path::root("type")));
    if old.g("immutable").boolean() == Some(true) {
        if new.g("immutable").boolean() != Some(true) {
            errs.push(forbidden(&Path::root("immutable"), "field is immutable when `immutable` is set"));
        }
        if !sem_eq(new.g("data"), old.g("data")) {
            errs.push(forbidden(&Path::root("data"), "field is immutable when `immutable` is set"));
        }
    }
    errs.extend(secret(new));
    errs
}

// ---------------------------------------------------------------------------------------------
// Endpoints

pub(crate) fn endpoints(ep: &Value) -> Errs {
    let mut errs = meta::object_meta(ep, true, names::name_is_dns_subdomain);
    errs.extend(endpoints_spec(ep));
    errs
}

pub(crate) fn endpoints_spec(ep: &Value) -> Errs {
    let mut errs = Vec::new();
    for (i, ss) in ep.g("subsets").arr().iter().enumerate() {
        let sp = Path::root("subsets").index(i);
        if ss.g("addresses").arr().is_empty() && ss.g("notReadyAddresses").arr().is_empty() {
            errs.push(required(&sp, "must specify `addresses` or `notReadyAddresses`"));
        }
        for list in ["addresses", "notReadyAddresses"] {
            for (j, a) in ss.g(list).arr().iter().enumerate() {
                let ap = sp.child(list).index(j);
                let ip = a.g("ip").s();
                let parsed = parse_ip(ip);
                if parsed.is_none() {
                    errs.push(invalid(&ap.child("ip"), ip, INVALID_IP));
                }
                let host = a.g("hostname").s();
                if !host.is_empty() {
                    errs.extend(dns_label(host, &ap.child("hostname")));
                }
                if let Some(node) = a.g("nodeName").as_str() {
                    errs.extend(is_dns1123_subdomain(node).into_iter().map(|m| invalid(&ap.child("nodeName"), node, m)));
                }
                match parsed {
                    Some(addr) => errs.extend(non_special_ip(ip, addr, &ap.child("ip"))),
                    None => errs.push(invalid(&ap.child("ip"), ip, "must be a valid IP address")),
                }
            }
        }
        let ports = ss.g("ports").arr();
        for (j, port) in ports.iter().enumerate() {
            let pp = sp.child("ports").index(j);
            let name = port.g("name").s();
            if ports.len() > 1 && name.is_empty() {
                errs.push(required(&pp.child("name"), ""));
            } else if !name.is_empty() {
                errs.extend(dns_label(name, &pp.child("name")));
            }
            let num = port.g("port").int().unwrap_or(0);
            errs.extend(names::is_valid_port_num(num).into_iter().map(|m| invalid(&pp.child("port"), num, m)));
            errs.extend(protocol(port.g("protocol").s(), &pp.child("protocol")));
            if let Some(ap) = port.g("appProtocol").as_str() {
                errs.extend(is_qualified_name(ap).into_iter().map(|m| invalid(&pp.child("appProtocol"), ap, m)));
            }
        }
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Persistent volumes and claims

const ACCESS_MODES: [&str; 4] = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];

fn access_modes(spec: &Value, p: &Path, required_detail: &str) -> Errs {
    let mut errs = Vec::new();
    let modes = spec.g("accessModes").arr();
    if modes.is_empty() {
        errs.push(required(&p.child("accessModes"), required_detail));
    }
    let (mut rwop, mut other) = (false, false);
    for m in modes {
        let m = m.s();
        if !ACCESS_MODES.contains(&m) {
            errs.push(not_supported(&p.child("accessModes"), m, &ACCESS_MODES));
        } else if m == "ReadWriteOncePod" {
            rwop = true;
        } else {
            other = true;
        }
    }
    if rwop && other {
        errs.push(forbidden(&p.child("accessModes"), "may not use ReadWriteOncePod with other access modes"));
    }
    errs
}

fn volume_mode(spec: &Value, p: &Path) -> Errs {
    match spec.g("volumeMode").as_str() {
        Some(m) if m != "Block" && m != "Filesystem" => vec![not_supported(&p.child("volumeMode"), m, &["Block", "Filesystem"])],
        _ => vec![],
    }
}

/// `ValidatePersistentVolumeClaimSpec`.
pub(crate) fn pvc_spec(spec: &Value, p: &Path) -> Errs {
    let mut errs = access_modes(spec, p, "at least 1 access mode is required");
    errs.extend(label_selector(spec.g("selector"), &p.child("selector")));
    let sp = p.child("resources").key("storage");
    let storage = spec.g("resources").g("requests").g("storage");
    if !storage.present() {
        errs.push(required(&sp, ""));
    } else if let Some(q) = parse_quantity(storage, &sp, &mut errs)
        && q.sign() <= 0
    {
        errs.push(invalid(&sp, q.canonical(), "must be greater than zero"));
    }
    if let Some(sc) = spec.g("storageClassName").as_str()
        && !sc.is_empty()
    {
        errs.extend(is_dns1123_subdomain(sc).into_iter().map(|m| invalid(&p.child("storageClassName"), sc, m)));
    }
    errs.extend(volume_mode(spec, p));
    for field in ["dataSource", "dataSourceRef"] {
        let ds = spec.g(field);
        if !ds.present() {
            continue;
        }
        let dp = p.child(field);
        if ds.g("name").s().is_empty() {
            errs.push(required(&dp.child("name"), ""));
        }
        let kind = ds.g("kind").s();
        if kind.is_empty() {
            errs.push(required(&dp.child("kind"), ""));
        }
        let group = ds.g("apiGroup").s();
        if group.is_empty() && kind != "PersistentVolumeClaim" {
            errs.push(invalid(&dp, kind, "must be 'PersistentVolumeClaim' when referencing the default apiGroup"));
        }
        if !group.is_empty() {
            errs.extend(is_dns1123_subdomain(group).into_iter().map(|m| invalid(&dp.child("apiGroup"), group, m)));
        }
    }
    errs
}

pub(crate) fn pvc(pvc: &Value) -> Errs {
    let mut errs = meta::object_meta(pvc, true, names::name_is_dns_subdomain);
    errs.extend(pvc_spec(pvc.g("spec"), &Path::root("spec")));
    errs
}

/// `ValidatePersistentVolumeClaimUpdate`: the spec is fixed except the bound volume name (once),
/// and the storage request of a bound claim, which may not shrink below the capacity.
pub(crate) fn pvc_update(new: &Value, old: &Value) -> Errs {
    let mut errs = pvc(new);
    let (ns, os) = (new.g("spec"), old.g("spec"));
    let mut n2 = ns.clone();
    let mut o2 = os.clone();
    if os.g("volumeName").s().is_empty()
        && let Some(m) = o2.as_object_mut()
    {
        m.insert("volumeName".into(), ns.g("volumeName").clone());
    }
    let bound = new.g("status").g("phase").s() == "Bound";
    if bound && let Some(req) = n2.pointer_mut("/resources/requests").and_then(|r| r.as_object_mut()) {
        req.insert("storage".into(), os.g("resources").g("requests").g("storage").clone());
    }
    if bound && let Some(m) = n2.as_object_mut() {
        m.insert("volumeAttributesClassName".into(), os.g("volumeAttributesClassName").clone());
    }
    // The beta storage-class annotation upgrades to the field once.
    let old_ann = old.g("metadata").g("annotations").g("volume.beta.kubernetes.io/storage-class");
    if old_ann.present() && !os.g("storageClassName").present() && ns.g("storageClassName").as_str() == old_ann.as_str()
        && let Some(m) = n2.as_object_mut()
    {
        m.remove("storageClassName");
    }
    if !sem_eq(&n2, &o2) {
        errs.push(forbidden(
            &Path::root("spec"),
            format!(
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{}",
                diff(&o2, &n2)
            ),
        ));
    }
    let size = |v: &Value| quantity::from_json(v.g("resources").g("requests").g("storage")).ok();
    if let (Some(new_size), Some(old_size)) = (size(ns), size(os))
        && new_size.cmp(&old_size) == Ordering::Less
    {
        let status = quantity::from_json(old.g("status").g("capacity").g("storage")).ok();
        if status.is_none_or(|s| new_size.cmp(&s) != Ordering::Greater) {
            errs.push(forbidden(&Path::new(&["spec", "resources", "requests", "storage"]), "field can not be less than status.capacity"));
        }
    }
    errs.extend(immutable(ns.g("volumeMode"), os.g("volumeMode"), &Path::root("volumeMode")));
    errs
}

const PV_SOURCES: &[(&str, &str)] = &[
    ("hostPath", "hostPath"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("nfs", "nfs"),
    ("rbd", "rbd"),
    ("quobyte", "quobyte"),
    ("cephfs", "cephFS"),
    ("iscsi", "iscsi"),
    ("cinder", "cinder"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("scaleIO", "scaleIO"),
    ("local", "local"),
    ("storageos", "storageos"),
    ("csi", "csi"),
];

pub(crate) fn pv(pv: &Value) -> Errs {
    let mut errs = meta::object_meta(pv, false, names::name_is_dns_subdomain);
    let spec = pv.g("spec");
    let p = Path::root("spec");
    errs.extend(access_modes(spec, &p, ""));
    let cap = spec.g("capacity");
    if cap.map_len() == 0 {
        errs.push(required(&p.child("capacity"), ""));
    }
    if !cap.g("storage").present() || cap.map_len() > 1 {
        errs.push(not_supported(&p.child("capacity"), cap.clone(), &["storage"]));
    }
    for (k, v) in cap.entries() {
        let kp = p.child("capacity").key(k);
        if let Some(q) = parse_quantity(v, &kp, &mut errs)
            && q.sign() <= 0
        {
            errs.push(invalid(&kp, q.canonical(), "must be greater than zero"));
        }
    }
    let policy = spec.g("persistentVolumeReclaimPolicy").s();
    if !policy.is_empty() && !["Delete", "Recycle", "Retain"].contains(&policy) {
        errs.push(not_supported(&p.child("persistentVolumeReclaimPolicy"), policy, &["Delete", "Recycle", "Retain"]));
    }
    let na = spec.g("nodeAffinity");
    if na.present() {
        if na.g("required").present() {
            errs.extend(pod::node_selector(na.g("required"), &p.child("nodeAffinity").child("required"), false));
        } else {
            errs.push(required(&p.child("nodeAffinity").child("required"), "must specify required node constraints"));
        }
    }
    let mut n = 0;
    for &(key, err_name) in PV_SOURCES {
        let src = spec.g(key);
        if !src.present() {
            continue;
        }
        if n > 0 && key != "flexVolume" {
            errs.push(forbidden(&p.child(err_name), "may not specify more than 1 volume type"));
            continue;
        }
        n += 1;
        let sp = p.child(key);
        match key {
            "hostPath" | "local" => {
                let path = src.g("path").s();
                if path.is_empty() {
                    errs.push(required(&sp.child("path"), ""));
                } else if path.split('/').any(|s| s == "..") {
                    errs.push(invalid(&sp.child("path"), path, "must not contain '..'"));
                }
                if key == "local" && !na.present() {
                    errs.push(required(&p.child("nodeAffinity"), "Local volume requires node affinity"));
                }
            }
            "nfs" => {
                for f in ["server", "path"] {
                    if src.g(f).s().is_empty() {
                        errs.push(required(&sp.child(f), ""));
                    }
                }
                if !src.g("path").s().starts_with('/') {
                    errs.push(invalid(&sp.child("path"), src.g("path").s(), "must be an absolute path"));
                }
            }
            "csi" => {
                errs.extend(pod::csi_driver_name(src.g("driver").s(), &sp.child("driver")));
                if src.g("volumeHandle").s().is_empty() {
                    errs.push(required(&sp.child("volumeHandle"), ""));
                }
            }
            _ => {}
        }
    }
    if n == 0 {
        errs.push(required(&p, "must specify a volume type"));
    }
    let sc = spec.g("storageClassName").s();
    if !sc.is_empty() {
        errs.extend(is_dns1123_subdomain(sc).into_iter().map(|m| invalid(&p.child("storageClassName"), sc, m)));
    }
    errs.extend(volume_mode(spec, &p));
    errs
}

pub(crate) fn pv_update(new: &Value, old: &Value) -> Errs {
    let mut errs = pv(new);
    let source = |spec: &Value| -> Value {
        let mut m = serde_json::Map::new();
        for &(key, _) in PV_SOURCES {
            if spec.g(key).present() {
                m.insert(key.to_string(), spec.g(key).clone());
            }
        }
        Value::Object(m)
    };
    let (ns, os) = (source(new.g("spec")), source(old.g("spec")));
    let mut ns2 = ns.clone();
    // A CSI controllerExpandSecretRef may be added later.
    if os.g("csi").present() && !os.g("csi").g("controllerExpandSecretRef").present()
        && let Some(csi) = ns2.get_mut("csi").and_then(|c| c.as_object_mut())
    {
        csi.remove("controllerExpandSecretRef");
    }
    if !sem_eq(&ns2, &os) {
        errs.push(forbidden(
            &Path::new(&["spec", "persistentvolumesource"]),
            format!("spec.persistentvolumesource is immutable after creation\n{}", diff(&os, &ns2)),
        ));
    }
    errs.extend(immutable(new.g("spec").g("volumeMode"), old.g("spec").g("volumeMode"), &Path::root("volumeMode")));
    let ona = old.g("spec").g("nodeAffinity");
    if ona.present() && !sem_eq(new.g("spec").g("nodeAffinity"), ona) {
        errs.push(invalid(
            &Path::root("nodeAffinity"),
            new.g("spec").g("nodeAffinity").clone(),
            "field is immutable, except for updating from beta label to GA",
        ));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// LimitRange, ResourceQuota

pub(crate) fn limit_range(lr: &Value) -> Errs {
    let mut errs = meta::object_meta(lr, true, names::name_is_dns_subdomain);
    errs.extend(limit_range_spec(lr));
    errs
}

pub(crate) fn limit_range_spec(lr: &Value) -> Errs {
    let mut errs = Vec::new();
    let lp = Path::new(&["spec", "limits"]);
    let mut types = HashSet::new();
    for (i, limit) in lr.g("spec").g("limits").arr().iter().enumerate() {
        let ip = lp.index(i);
        let t = limit.g("type").s();
        let tmsgs = is_qualified_name(t);
        if !tmsgs.is_empty() {
            errs.extend(tmsgs.into_iter().map(|m| invalid(&ip.child("type"), t, m)));
        } else if !t.contains('/') && !["Pod", "Container", "PersistentVolumeClaim"].contains(&t) {
            errs.push(invalid(&ip.child("type"), t, "must be a standard limit type or fully qualified"));
        }
        if !types.insert(t) {
            errs.push(duplicate(&ip.child("type"), t));
        }
        let container_like = t == "Pod" || t == "Container";
        let mut sections: BTreeMap<&str, BTreeMap<String, Quantity>> = BTreeMap::new();
        let mut fields = vec!["max", "min"];
        if t == "Pod" {
            for f in ["default", "defaultRequest"] {
                if limit.g(f).map_len() > 0 {
                    errs.push(forbidden(&ip.child(f), "may not be specified when `type` is 'Pod'"));
                }
            }
        } else {
            fields.extend(["default", "defaultRequest"]);
        }
        fields.push("maxLimitRequestRatio");
        for f in fields {
            for (k, v) in limit.g(f).entries() {
                let kp = ip.child(f).key(k);
                let nerrs = pod::resource_name(k, &kp, pod::is_standard_resource);
                errs.extend(nerrs);
                if container_like && !k.contains('/') && !["cpu", "memory", "ephemeral-storage"].contains(&k.as_str()) && !k.starts_with("hugepages-") {
                    errs.push(invalid(&kp, k.as_str(), "must be a standard resource for containers"));
                }
                if let Some(q) = parse_quantity(v, &kp, &mut errs) {
                    sections.entry(f).or_default().insert(k.clone(), q);
                }
            }
        }
        if t == "PersistentVolumeClaim" && !limit.g("min").g("storage").present() && !limit.g("max").g("storage").present() {
            errs.push(required(&ip.child("limits"), "either minimum or maximum storage value is required, but neither was provided"));
        }
        let get = |f: &str, k: &str| sections.get(f).and_then(|m| m.get(k)).copied();
        let keys: std::collections::BTreeSet<String> = sections.values().flat_map(|m| m.keys().cloned()).collect();
        for k in keys {
            let (min, max, def, def_req, ratio) = (get("min", &k), get("max", &k), get("default", &k), get("defaultRequest", &k), get("maxLimitRequestRatio", &k));
            let gt = |a: Option<Quantity>, b: Option<Quantity>| matches!((a, b), (Some(a), Some(b)) if a.cmp(&b) == Ordering::Greater);
            if gt(min, max) {
                errs.push(invalid(&ip.child("min").key(&k), min.unwrap().canonical(), format!("min value {} is greater than max value {}", min.unwrap(), max.unwrap())));
            }
            if gt(min, def_req) {
                errs.push(invalid(&ip.child("defaultRequest").key(&k), def_req.unwrap().canonical(), format!("min value {} is greater than default request value {}", min.unwrap(), def_req.unwrap())));
            }
            if gt(def_req, max) {
                errs.push(invalid(&ip.child("defaultRequest").key(&k), def_req.unwrap().canonical(), format!("default request value {} is greater than max value {}", def_req.unwrap(), max.unwrap())));
            }
            if gt(def_req, def) {
                errs.push(invalid(&ip.child("defaultRequest").key(&k), def_req.unwrap().canonical(), format!("default request value {} is greater than default limit value {}", def_req.unwrap(), def.unwrap())));
            }
            if gt(min, def) {
                errs.push(invalid(&ip.child("default").key(&k), min.unwrap().canonical(), format!("min value {} is greater than default value {}", min.unwrap(), def.unwrap())));
            }
            if gt(def, max) {
                errs.push(invalid(&ip.child("default").key(&k), max.unwrap().canonical(), format!("default value {} is greater than max value {}", def.unwrap(), max.unwrap())));
            }
            if let Some(r) = ratio
                && r.cmp(&Quantity::from_int(1)) == Ordering::Less
            {
                errs.push(invalid(&ip.child("maxLimitRequestRatio").key(&k), r.canonical(), format!("ratio {r} is less than 1")));
            }
        }
    }
    errs
}

fn is_standard_quota_resource(name: &str) -> bool {
    const QUOTA: [&str; 19] = [
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.storage",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
    ];
    QUOTA.contains(&name) || name.starts_with("requests.hugepages-")
}

fn quota_resources(section: &Value, p: &Path) -> Errs {
    let mut errs = Vec::new();
    for (k, v) in section.entries() {
        let kp = p.key(k);
        errs.extend(pod::resource_name(k, &kp, pod::is_standard_resource));
        if !k.contains('/') && !is_standard_quota_resource(k) {
            errs.push(invalid(&kp, k.as_str(), "must be a standard resource for quota"));
        }
        if let Some(q) = parse_quantity(v, &kp, &mut errs) {
            errs.extend(resource_quantity_value(k, &q, &kp));
        }
    }
    errs
}

pub(crate) fn resource_quota(rq: &Value) -> Errs {
    let mut errs = meta::object_meta(rq, true, names::name_is_dns_subdomain);
    errs.extend(resource_quota_spec(rq));
    errs.extend(quota_resources(rq.g("status").g("hard"), &Path::new(&["status", "hard"])));
    errs.extend(quota_resources(rq.g("status").g("used"), &Path::new(&["status", "used"])));
    errs
}

const QUOTA_SCOPES: [&str; 7] =
    ["Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass", "CrossNamespacePodAffinity", "VolumeAttributesClass"];

fn resource_quota_spec(rq: &Value) -> Errs {
    let spec = rq.g("spec");
    let sp = Path::root("spec");
    let mut errs = quota_resources(spec.g("hard"), &sp.child("hard"));
    let scopes: Vec<&str> = spec.g("scopes").arr().iter().map(|s| s.s()).collect();
    for s in &scopes {
        if !QUOTA_SCOPES.contains(s) {
            errs.push(invalid(&sp.child("scopes"), spec.g("scopes").clone(), "unsupported scope"));
        }
    }
    let conflicting = |a: &str, b: &str| scopes.contains(&a) && scopes.contains(&b);
    for (a, b) in [("BestEffort", "NotBestEffort"), ("Terminating", "NotTerminating")] {
        if conflicting(a, b) {
            errs.push(invalid(&sp.child("scopes"), spec.g("scopes").clone(), "conflicting scopes"));
        }
    }
    let sel = spec.g("scopeSelector");
    for e in sel.g("matchExpressions").arr() {
        let mp = sp.child("scopeSelector").child("matchExpressions");
        let scope = e.g("scopeName").s();
        if !QUOTA_SCOPES.contains(&scope) {
            errs.push(invalid(&mp.child("scopeName"), scope, "unsupported scope"));
        }
        let op = e.g("operator").s();
        let n = e.g("values").arr().len();
        match op {
            "In" | "NotIn" if n == 0 => {
                errs.push(required(&mp.child("values"), "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"))
            }
            "Exists" | "DoesNotExist" if n != 0 => errs.push(invalid(
                &mp.child("values"),
                e.g("values").clone(),
                "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errs.push(invalid(&mp.child("operator"), other, "not a valid selector operator")),
        }
    }
    errs
}

pub(crate) fn resource_quota_update(new: &Value, old: &Value) -> Errs {
    let mut errs = resource_quota_spec(new);
    let set = |v: &Value| v.g("spec").g("scopes").arr().iter().map(|s| s.s().to_string()).collect::<HashSet<_>>();
    if set(new) != set(old) {
        errs.push(invalid(&Path::new(&["spec", "scopes"]), new.g("spec").g("scopes").clone(), "field is immutable"));
    }
    errs
}
