//! The endpoints and endpointslice controllers: for every Service with a selector, the addresses
//! of the pods it selects, as a core/v1 `Endpoints` of the same name and as
//! `discovery.k8s.io/v1` EndpointSlices owned by the Service.
//!
//! Both are derived from the informer caches by pure functions ([`build_subsets`],
//! [`desired_endpoints`], [`plan_slices`]) and written only when the result differs from what is
//! stored, so re-syncing an unchanged service costs no writes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apimachinery::status::ApiError;
use futures::StreamExt;
use serde_json::{Map, Value, json};

use crate::Ctx;
use crate::client::{DeleteOptions, res};
use crate::informer::{Change, Informer, key_of};
use crate::queue::WorkQueue;
use crate::util;

/// The label naming the service of an EndpointSlice.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming the controller that manages an EndpointSlice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// Our value of [`MANAGED_BY_LABEL`].
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// Set on the Endpoints and slices of headless services.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Set on an Endpoints whose addresses were truncated to [`MAX_ENDPOINTS_ADDRESSES`].
pub const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";
/// Kubernetes caps an Endpoints object at this many addresses (EndpointSlices have no cap).
pub const MAX_ENDPOINTS_ADDRESSES: usize = 1000;
/// Kubernetes' default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(|x| x.as_str()).unwrap_or("")
}

// ------------------------------------------------------------------------------------------
// Selection and ports
// ------------------------------------------------------------------------------------------

/// The service's selector, if it has one (a service without one gets its endpoints from
/// elsewhere). An empty selector selects every pod of the namespace, as in Kubernetes.
pub fn service_selector(svc: &Value) -> Option<BTreeMap<String, String>> {
    let sel = svc.pointer("/spec/selector")?.as_object()?;
    Some(sel.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
}

/// Whether this controller manages the service's endpoints: it has a selector and is not an
/// ExternalName service.
pub fn is_managed_service(svc: &Value) -> bool {
    s(svc, "/spec/type") != "ExternalName" && service_selector(svc).is_some()
}

/// Whether the service selects the pod (same namespace, labels match the selector).
pub fn service_selects(svc: &Value, pod: &Value) -> bool {
    if util::namespace(svc) != util::namespace(pod) {
        return false;
    }
    let Some(sel) = service_selector(svc) else { return false };
    let labels = apimachinery::selector::labels_of(pod);
    sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn is_headless(svc: &Value) -> bool {
    s(svc, "/spec/clusterIP") == "None"
}

/// The container port a service port reaches on a pod: a numeric targetPort as is (the port
/// itself when absent), a named one by the pod's container ports of that name and protocol.
pub fn find_port(pod: &Value, svc_port: &Value) -> Option<i64> {
    let protocol = svc_port.get("protocol").and_then(|p| p.as_str()).unwrap_or("TCP");
    match svc_port.get("targetPort") {
        Some(Value::String(name)) => {
            // Sidecars (restartable init containers) serve ports too.
            let containers = pod.pointer("/spec/containers").and_then(|c| c.as_array()).into_iter().flatten().chain(
                pod.pointer("/spec/initContainers")
                    .and_then(|c| c.as_array())
                    .into_iter()
                    .flatten()
                    .filter(|c| c.get("restartPolicy").and_then(|r| r.as_str()) == Some("Always")),
            );
            for c in containers {
                for p in c.get("ports").and_then(|p| p.as_array()).into_iter().flatten() {
                    let p_protocol = p.get("protocol").and_then(|x| x.as_str()).unwrap_or("TCP");
                    if p.get("name").and_then(|n| n.as_str()) == Some(name.as_str()) && p_protocol == protocol {
                        return p.get("containerPort").and_then(|n| n.as_i64());
                    }
                }
            }
            None
        }
        Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n > 0) => n.as_i64(),
        _ => svc_port.get("port").and_then(|p| p.as_i64()).filter(|p| *p > 0),
    }
}

/// Whether a pod can back a service at all: running or pending (not finished), with an IP, and
/// not terminating unless terminating pods are wanted.
pub fn should_pod_be_in_endpoints(pod: &Value, include_terminating: bool) -> bool {
    if matches!(util::pod_phase(pod), "Succeeded" | "Failed") {
        return false;
    }
    if pod_ips(pod).is_empty() {
        return false;
    }
    include_terminating || !util::is_deleting(pod)
}

fn pod_ips(pod: &Value) -> Vec<String> {
    let mut ips: Vec<String> = pod
        .pointer("/status/podIPs")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("ip").and_then(|x| x.as_str()))
        .filter(|i| !i.is_empty())
        .map(String::from)
        .collect();
    let primary = s(pod, "/status/podIP");
    if !primary.is_empty() && !ips.iter().any(|i| i == primary) {
        ips.insert(0, primary.to_string());
    }
    ips
}

fn is_ipv6(ip: &str) -> bool {
    ip.contains(':')
}

/// The IP families (`IPv4`, `IPv6`) the service's endpoints are published for.
pub fn service_families(svc: &Value) -> Vec<&'static str> {
    let listed: Vec<&'static str> = svc
        .pointer("/spec/ipFamilies")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
        .filter_map(|f| match f.as_str() {
            Some("IPv4") => Some("IPv4"),
            Some("IPv6") => Some("IPv6"),
            _ => None,
        })
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    let cluster_ip = s(svc, "/spec/clusterIP");
    if !cluster_ip.is_empty() && cluster_ip != "None" && is_ipv6(cluster_ip) { vec!["IPv6"] } else { vec!["IPv4"] }
}

fn pod_ip_for(pod: &Value, family: &str) -> Option<String> {
    pod_ips(pod).into_iter().find(|ip| is_ipv6(ip) == (family == "IPv6"))
}

/// A pod's hostname is published only for the service its subdomain names (DNS A records for
/// `<hostname>.<subdomain>` come from these).
fn hostname_for(pod: &Value, svc: &Value) -> Option<String> {
    let hostname = s(pod, "/spec/hostname");
    (!hostname.is_empty() && s(pod, "/spec/subdomain") == util::name(svc) && util::namespace(pod) == util::namespace(svc)).then(|| hostname.to_string())
}

fn target_ref(pod: &Value) -> Value {
    json!({"kind": "Pod", "namespace": util::namespace(pod), "name": util::name(pod), "uid": util::uid(pod)})
}

/// A service port as it appears in Endpoints and slices, resolved for one pod.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct PortKey {
    name: String,
    port: i64,
    protocol: String,
    app_protocol: Option<String>,
}

impl PortKey {
    fn from_value(p: &Value) -> PortKey {
        PortKey {
            name: p.get("name").and_then(|n| n.as_str()).unwrap_or("").to_string(),
            port: p.get("port").and_then(|n| n.as_i64()).unwrap_or(0),
            protocol: p.get("protocol").and_then(|n| n.as_str()).unwrap_or("TCP").to_string(),
            app_protocol: p.get("appProtocol").and_then(|n| n.as_str()).map(String::from),
        }
    }

    fn to_value(&self, always_name: bool) -> Value {
        let mut m = Map::new();
        if always_name || !self.name.is_empty() {
            m.insert("name".into(), json!(self.name));
        }
        m.insert("port".into(), json!(self.port));
        m.insert("protocol".into(), json!(self.protocol));
        if let Some(a) = &self.app_protocol {
            m.insert("appProtocol".into(), json!(a));
        }
        Value::Object(m)
    }
}

/// The service's ports resolved for one pod; ports the pod does not serve are left out.
fn resolved_ports(svc: &Value, pod: &Value) -> Vec<PortKey> {
    let mut out: Vec<PortKey> = svc
        .pointer("/spec/ports")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            let port = find_port(pod, sp)?;
            Some(PortKey {
                name: sp.get("name").and_then(|n| n.as_str()).unwrap_or("").to_string(),
                port,
                protocol: sp.get("protocol").and_then(|n| n.as_str()).unwrap_or("TCP").to_string(),
                app_protocol: sp.get("appProtocol").and_then(|n| n.as_str()).map(String::from),
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn service_has_ports(svc: &Value) -> bool {
    svc.pointer("/spec/ports").and_then(|p| p.as_array()).is_some_and(|p| !p.is_empty())
}

// ------------------------------------------------------------------------------------------
// Endpoints (core/v1)
// ------------------------------------------------------------------------------------------

/// An EndpointAddress reduced to the fields this controller sets, so stored and computed
/// addresses compare equal however the server spelled them.
fn canonical_address(a: &Value) -> Value {
    let mut m = Map::new();
    m.insert("ip".into(), json!(s(a, "/ip")));
    for f in ["hostname", "nodeName"] {
        let v = s(a, &format!("/{f}"));
        if !v.is_empty() {
            m.insert(f.into(), json!(v));
        }
    }
    if let Some(t) = a.get("targetRef").filter(|t| t.is_object()) {
        let mut r = Map::new();
        for f in ["kind", "namespace", "name", "uid"] {
            let v = s(t, &format!("/{f}"));
            if !v.is_empty() {
                r.insert(f.into(), json!(v));
            }
        }
        m.insert("targetRef".into(), Value::Object(r));
    }
    Value::Object(m)
}

fn address_sort_key(a: &Value) -> (String, String) {
    (s(a, "/ip").to_string(), s(a, "/targetRef/uid").to_string())
}

/// Groups addresses into subsets the way Kubernetes' RepackSubsets does: each port maps to the
/// set of addresses serving it, and ports served by the same set of addresses share a subset.
/// `entries` are (address, ready, ports); an empty port list stands for "no ports" (headless
/// services without ports).
fn repack(entries: Vec<(Value, bool, Vec<PortKey>)>) -> Vec<Value> {
    type AddrKey = (String, String);
    let mut addrs: BTreeMap<AddrKey, (Value, bool)> = BTreeMap::new();
    let mut by_port: BTreeMap<Option<PortKey>, BTreeSet<(AddrKey, bool)>> = BTreeMap::new();
    for (addr, ready, ports) in entries {
        let k = address_sort_key(&addr);
        addrs.insert(k.clone(), (addr, ready));
        if ports.is_empty() {
            by_port.entry(None).or_default().insert((k.clone(), ready));
        }
        for p in ports {
            by_port.entry(Some(p)).or_default().insert((k.clone(), ready));
        }
    }
    let mut by_addrs: BTreeMap<Vec<(AddrKey, bool)>, Vec<PortKey>> = BTreeMap::new();
    for (port, set) in by_port {
        let ports = by_addrs.entry(set.into_iter().collect()).or_default();
        if let Some(p) = port {
            ports.push(p);
        }
    }
    by_addrs
        .into_iter()
        .map(|(set, mut ports)| {
            ports.sort();
            let mut ready = Vec::new();
            let mut not_ready = Vec::new();
            for (k, r) in set {
                if let Some((a, _)) = addrs.get(&k) {
                    if r { ready.push(a.clone()) } else { not_ready.push(a.clone()) }
                }
            }
            subset_value(ready, not_ready, ports.iter().map(|p| p.to_value(false)).collect())
        })
        .collect()
}

fn subset_value(ready: Vec<Value>, not_ready: Vec<Value>, ports: Vec<Value>) -> Value {
    let mut m = Map::new();
    if !ready.is_empty() {
        m.insert("addresses".into(), Value::Array(ready));
    }
    if !not_ready.is_empty() {
        m.insert("notReadyAddresses".into(), Value::Array(not_ready));
    }
    if !ports.is_empty() {
        m.insert("ports".into(), Value::Array(ports));
    }
    Value::Object(m)
}

/// The subsets of the service's Endpoints: ready and not-ready addresses of the selected pods
/// (all counted ready with `publishNotReadyAddresses`), terminating and IP-less pods left out,
/// grouped by the ports they serve. `pods` may include pods the service does not select.
pub fn build_subsets(svc: &Value, pods: &[&Value]) -> Vec<Value> {
    let publish_not_ready = svc.pointer("/spec/publishNotReadyAddresses").and_then(|p| p.as_bool()).unwrap_or(false);
    let family = service_families(svc)[0];
    let has_ports = service_has_ports(svc);
    let mut entries = Vec::new();
    for pod in pods {
        if !service_selects(svc, pod) || !should_pod_be_in_endpoints(pod, publish_not_ready) {
            continue;
        }
        let Some(ip) = pod_ip_for(pod, family) else { continue };
        let ports = if has_ports {
            let ports = resolved_ports(svc, pod);
            if ports.is_empty() {
                continue;
            }
            ports
        } else if is_headless(svc) {
            Vec::new()
        } else {
            continue;
        };
        let mut addr = json!({"ip": ip, "nodeName": s(pod, "/spec/nodeName"), "targetRef": target_ref(pod)});
        if let Some(h) = hostname_for(pod, svc) {
            addr["hostname"] = json!(h);
        }
        let ready = publish_not_ready || util::is_pod_ready(pod);
        entries.push((canonical_address(&addr), ready, ports));
    }
    repack(entries)
}

/// Subsets as stored, reduced to the canonical form [`build_subsets`] produces.
fn canonical_subsets(subsets: Option<&Value>) -> Vec<Value> {
    let mut entries = Vec::new();
    for sub in subsets.and_then(|s| s.as_array()).into_iter().flatten() {
        let ports: Vec<PortKey> = sub.get("ports").and_then(|p| p.as_array()).into_iter().flatten().map(PortKey::from_value).collect();
        for (field, ready) in [("addresses", true), ("notReadyAddresses", false)] {
            for a in sub.get(field).and_then(|a| a.as_array()).into_iter().flatten() {
                entries.push((canonical_address(a), ready, ports.clone()));
            }
        }
    }
    repack(entries)
}

/// Caps the subsets at [`MAX_ENDPOINTS_ADDRESSES`], keeping ready addresses first; true when
/// something was cut.
fn truncate_subsets(subsets: &mut Vec<Value>) -> bool {
    let total: usize = subsets
        .iter()
        .map(|s| ["addresses", "notReadyAddresses"].iter().map(|f| s.get(*f).and_then(|a| a.as_array()).map_or(0, |a| a.len())).sum::<usize>())
        .sum();
    if total <= MAX_ENDPOINTS_ADDRESSES {
        return false;
    }
    let mut budget = MAX_ENDPOINTS_ADDRESSES;
    for field in ["addresses", "notReadyAddresses"] {
        for sub in subsets.iter_mut() {
            if let Some(a) = sub.get_mut(field).and_then(|a| a.as_array_mut()) {
                let keep = a.len().min(budget);
                a.truncate(keep);
                budget -= keep;
            }
        }
    }
    for sub in subsets.iter_mut() {
        if let Some(m) = sub.as_object_mut() {
            m.retain(|k, v| k == "ports" || v.as_array().is_none_or(|a| !a.is_empty()));
        }
    }
    subsets.retain(|s| s.get("addresses").is_some() || s.get("notReadyAddresses").is_some());
    true
}

fn endpoints_labels(svc: &Value) -> Map<String, Value> {
    let mut labels = svc.pointer("/metadata/labels").and_then(|l| l.as_object()).cloned().unwrap_or_default();
    if is_headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), json!(""));
    }
    labels
}

/// What to do with a service's Endpoints.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointsAction {
    /// Already as desired.
    Nothing,
    Create(Value),
    /// The current object with new subsets/labels (carrying its resourceVersion).
    Update(Value),
}

/// Compares the Endpoints the service should have with `current` (the stored one, if any).
pub fn desired_endpoints(svc: &Value, pods: &[&Value], current: Option<&Value>) -> EndpointsAction {
    let mut subsets = build_subsets(svc, pods);
    let truncated = truncate_subsets(&mut subsets);
    let labels = endpoints_labels(svc);
    match current {
        Some(cur) => {
            let cur_labels = cur.pointer("/metadata/labels").and_then(|l| l.as_object()).cloned().unwrap_or_default();
            let cur_truncated = cur.pointer(&format!("/metadata/annotations/{}", OVER_CAPACITY_ANNOTATION.replace('/', "~1"))).is_some();
            if canonical_subsets(cur.get("subsets")) == subsets && cur_labels == labels && cur_truncated == truncated {
                return EndpointsAction::Nothing;
            }
            let mut new = cur.clone();
            if !new.is_object() {
                new = json!({});
            }
            new["subsets"] = Value::Array(subsets);
            if !new.get("metadata").is_some_and(|m| m.is_object()) {
                new["metadata"] = json!({});
            }
            new["metadata"]["labels"] = Value::Object(labels);
            let mut annotations = new.pointer("/metadata/annotations").and_then(|a| a.as_object()).cloned().unwrap_or_default();
            if truncated {
                annotations.insert(OVER_CAPACITY_ANNOTATION.into(), json!("truncated"));
            } else {
                annotations.remove(OVER_CAPACITY_ANNOTATION);
            }
            new["metadata"]["annotations"] = Value::Object(annotations);
            EndpointsAction::Update(new)
        }
        None => {
            let mut meta = json!({"name": util::name(svc), "namespace": util::namespace(svc), "labels": labels});
            if truncated {
                meta["annotations"] = json!({OVER_CAPACITY_ANNOTATION: "truncated"});
            }
            EndpointsAction::Create(json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": meta, "subsets": subsets}))
        }
    }
}

// ------------------------------------------------------------------------------------------
// EndpointSlices (discovery.k8s.io/v1)
// ------------------------------------------------------------------------------------------

fn canonical_endpoint(e: &Value) -> Value {
    let mut m = Map::new();
    let addresses: Vec<Value> = e.get("addresses").and_then(|a| a.as_array()).cloned().unwrap_or_default();
    m.insert("addresses".into(), Value::Array(addresses));
    let mut c = Map::new();
    for f in ["ready", "serving", "terminating"] {
        if let Some(b) = e.pointer(&format!("/conditions/{f}")).and_then(|b| b.as_bool()) {
            c.insert(f.into(), json!(b));
        }
    }
    m.insert("conditions".into(), Value::Object(c));
    for f in ["hostname", "nodeName", "zone"] {
        let v = s(e, &format!("/{f}"));
        if !v.is_empty() {
            m.insert(f.into(), json!(v));
        }
    }
    if let Some(t) = e.get("targetRef").filter(|t| t.is_object()) {
        m.insert("targetRef".into(), canonical_address(&json!({"targetRef": t}))["targetRef"].clone());
    }
    Value::Object(m)
}

/// Identifies an endpoint across reconciles: its pod, else its first address.
fn endpoint_key(e: &Value) -> String {
    let uid = s(e, "/targetRef/uid");
    if !uid.is_empty() {
        return format!("uid:{uid}");
    }
    format!("ip:{}", e.pointer("/addresses/0").and_then(|a| a.as_str()).unwrap_or(""))
}

fn ports_key(ports: &[PortKey]) -> String {
    serde_json::to_string(&ports.iter().map(|p| p.to_value(false)).collect::<Vec<_>>()).unwrap_or_default()
}

fn slice_ports(slice: &Value) -> Vec<PortKey> {
    let mut p: Vec<PortKey> = slice.get("ports").and_then(|p| p.as_array()).into_iter().flatten().map(PortKey::from_value).collect();
    p.sort();
    p
}

/// The endpoint of a pod in the service's slices; `zone_of` gives a node's zone when known.
fn pod_endpoint(svc: &Value, pod: &Value, ip: String, zone_of: &dyn Fn(&str) -> Option<String>) -> Value {
    let publish_not_ready = svc.pointer("/spec/publishNotReadyAddresses").and_then(|p| p.as_bool()).unwrap_or(false);
    let serving = util::is_pod_ready(pod);
    let terminating = util::is_deleting(pod);
    // A terminating pod is never "ready" (clients that only read `ready` stop using it), unless
    // the service publishes everything.
    let ready = publish_not_ready || (serving && !terminating);
    let mut e = json!({
        "addresses": [ip],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
        "targetRef": target_ref(pod),
    });
    let node = s(pod, "/spec/nodeName");
    if !node.is_empty() {
        e["nodeName"] = json!(node);
        if let Some(z) = zone_of(node).filter(|z| !z.is_empty()) {
            e["zone"] = json!(z);
        }
    }
    if let Some(h) = hostname_for(pod, svc) {
        e["hostname"] = json!(h);
    }
    canonical_endpoint(&e)
}

fn slice_labels(svc: &Value) -> Map<String, Value> {
    let mut labels: Map<String, Value> = svc
        .pointer("/metadata/labels")
        .and_then(|l| l.as_object())
        .map(|l| l.iter().filter(|(k, _)| *k != SERVICE_NAME_LABEL && *k != MANAGED_BY_LABEL).map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    if is_headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), json!(""));
    }
    labels.insert(SERVICE_NAME_LABEL.into(), json!(util::name(svc)));
    labels.insert(MANAGED_BY_LABEL.into(), json!(CONTROLLER_NAME));
    labels
}

fn service_owner_ref(svc: &Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "name": util::name(svc), "uid": util::uid(svc), "controller": true, "blockOwnerDeletion": true})
}

/// Whether a slice is one of ours for the named service.
pub fn is_managed_slice_of(slice: &Value, namespace: &str, service: &str) -> bool {
    util::namespace(slice) == namespace
        && slice.pointer(&format!("/metadata/labels/{}", SERVICE_NAME_LABEL.replace('/', "~1"))).and_then(|v| v.as_str()) == Some(service)
        && slice.pointer(&format!("/metadata/labels/{}", MANAGED_BY_LABEL.replace('/', "~1"))).and_then(|v| v.as_str()) == Some(CONTROLLER_NAME)
}

fn owned_by(slice: &Value, svc: &Value) -> bool {
    slice
        .pointer("/metadata/ownerReferences")
        .and_then(|r| r.as_array())
        .is_some_and(|refs| refs.iter().any(|r| r.get("uid").and_then(|u| u.as_str()) == Some(util::uid(svc)) && r.get("kind").and_then(|k| k.as_str()) == Some("Service")))
}

/// The writes that bring a service's slices to the desired state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlicePlan {
    /// New slices (with `generateName`).
    pub create: Vec<Value>,
    /// Existing slices with new content (carrying their resourceVersion).
    pub update: Vec<Value>,
    /// Existing slices to delete.
    pub delete: Vec<Value>,
}

impl SlicePlan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// What a slice's content is compared on.
fn slice_fingerprint(slice: &Value) -> Value {
    let eps: Vec<Value> = slice.get("endpoints").and_then(|e| e.as_array()).into_iter().flatten().map(canonical_endpoint).collect();
    let owners: Vec<Value> = slice
        .pointer("/metadata/ownerReferences")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .map(|r| json!([r.get("uid"), r.get("controller").and_then(|c| c.as_bool()).unwrap_or(false)]))
        .collect();
    json!({
        "labels": slice.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
        "owners": owners,
        "addressType": slice.get("addressType"),
        "ports": ports_key(&slice_ports(slice)),
        "endpoints": eps,
    })
}

struct Working<'a> {
    existing: &'a Value,
    ports: Vec<PortKey>,
    endpoints: Vec<Value>,
    changed: bool,
}

/// Plans the service's EndpointSlices from its pods and the slices that exist (any slices may be
/// passed; only ours for this service are considered). Endpoints stay in the slice they are
/// in; new ones fill slices with room (those being rewritten anyway first), then reuse slices
/// whose ports are no longer wanted, then go to new slices of at most
/// [`MAX_ENDPOINTS_PER_SLICE`]. A service without endpoints keeps one empty placeholder slice.
pub fn plan_slices(svc: &Value, pods: &[&Value], zone_of: &dyn Fn(&str) -> Option<String>, existing: &[&Value]) -> SlicePlan {
    let mut plan = SlicePlan::default();
    let ns = util::namespace(svc);
    let name = util::name(svc);
    let mine: Vec<&Value> = existing.iter().copied().filter(|sl| is_managed_slice_of(sl, ns, name)).collect();
    let families = service_families(svc);
    let labels = slice_labels(svc);
    let owner = service_owner_ref(svc);
    let has_ports = service_has_ports(svc);

    let mut sorted_pods: Vec<&Value> = pods.iter().copied().filter(|p| service_selects(svc, p)).collect();
    sorted_pods.sort_by(|a, b| util::name(a).cmp(util::name(b)));

    for sl in &mine {
        let fam = s(sl, "/addressType");
        if !owned_by(sl, svc) || !families.contains(&fam) {
            plan.delete.push((*sl).clone());
        }
    }

    for family in families {
        // Desired endpoints grouped by the ports they serve, in a stable order.
        let mut desired: BTreeMap<String, (Vec<PortKey>, Vec<(String, Value)>)> = BTreeMap::new();
        for pod in &sorted_pods {
            if !should_pod_be_in_endpoints(pod, true) {
                continue;
            }
            let Some(ip) = pod_ip_for(pod, family) else { continue };
            let ports = if has_ports { resolved_ports(svc, pod) } else { Vec::new() };
            let e = pod_endpoint(svc, pod, ip, zone_of);
            let entry = desired.entry(ports_key(&ports)).or_insert_with(|| (ports, Vec::new()));
            entry.1.push((endpoint_key(&e), e));
        }
        let total: usize = desired.values().map(|(_, eps)| eps.len()).sum();
        let mut pool: HashMap<String, HashMap<String, Value>> =
            desired.iter().map(|(k, (_, eps))| (k.clone(), eps.iter().cloned().collect())).collect();

        let mut candidates: Vec<&Value> = mine.iter().copied().filter(|sl| owned_by(sl, svc) && s(sl, "/addressType") == family).collect();
        candidates.sort_by(|a, b| util::name(a).cmp(util::name(b)));

        let mut matched: BTreeMap<String, Vec<Working>> = BTreeMap::new();
        let mut unmatched: Vec<&Value> = Vec::new();
        for sl in candidates {
            let ports = slice_ports(sl);
            let key = ports_key(&ports);
            let old: Vec<Value> = sl.get("endpoints").and_then(|e| e.as_array()).into_iter().flatten().map(canonical_endpoint).collect();
            match pool.get_mut(&key) {
                Some(avail) => {
                    let kept: Vec<Value> = old.iter().filter_map(|e| avail.remove(&endpoint_key(e))).collect();
                    let changed = kept != old;
                    matched.entry(key).or_default().push(Working { existing: sl, ports, endpoints: kept, changed });
                }
                None => unmatched.push(sl),
            }
        }

        let mut recycled: Vec<Working> = Vec::new();
        let mut unmatched = unmatched.into_iter();
        for (key, (ports, eps)) in &desired {
            let avail = pool.get_mut(key);
            let mut remaining: Vec<Value> = match avail {
                Some(avail) => eps.iter().filter(|(k, _)| avail.remove(k).is_some()).map(|(_, e)| e.clone()).collect(),
                None => Vec::new(),
            };
            if remaining.is_empty() {
                continue;
            }
            let slices = matched.entry(key.clone()).or_default();
            // Slices being rewritten anyway take new endpoints first: fewer writes.
            let mut order: Vec<usize> = (0..slices.len()).collect();
            order.sort_by_key(|i| !slices[*i].changed);
            for i in order {
                let w = &mut slices[i];
                let room = MAX_ENDPOINTS_PER_SLICE.saturating_sub(w.endpoints.len()).min(remaining.len());
                if room > 0 {
                    w.endpoints.extend(remaining.drain(..room));
                    w.changed = true;
                }
            }
            while !remaining.is_empty() {
                let n = remaining.len().min(MAX_ENDPOINTS_PER_SLICE);
                let chunk: Vec<Value> = remaining.drain(..n).collect();
                match unmatched.next() {
                    Some(sl) => recycled.push(Working { existing: sl, ports: ports.clone(), endpoints: chunk, changed: true }),
                    None => plan.create.push(new_slice(svc, family, ports, chunk, &labels, &owner)),
                }
            }
        }

        let mut kept: Vec<Working> = matched.into_values().flatten().chain(recycled).collect();
        let mut leftovers: Vec<&Value> = unmatched.collect();
        if total == 0 {
            // Exactly one slice stays, as a placeholder telling consumers the service has no
            // endpoints (rather than not having been processed).
            let mut all: Vec<&Value> = kept.drain(..).map(|w| w.existing).chain(leftovers.drain(..)).collect();
            all.sort_by_key(|sl| (sl.get("endpoints").and_then(|e| e.as_array()).is_some_and(|e| !e.is_empty()), util::name(sl).to_string()));
            let mut all = all.into_iter();
            match all.next() {
                Some(sl) => kept.push(Working { existing: sl, ports: Vec::new(), endpoints: Vec::new(), changed: true }),
                None => plan.create.push(new_slice(svc, family, &[], Vec::new(), &labels, &owner)),
            }
            leftovers.extend(all);
        }
        for sl in leftovers {
            plan.delete.push(sl.clone());
        }
        for w in kept {
            if w.endpoints.is_empty() && total > 0 {
                plan.delete.push(w.existing.clone());
                continue;
            }
            let mut new = w.existing.clone();
            new["endpoints"] = Value::Array(w.endpoints);
            new["ports"] = Value::Array(w.ports.iter().map(|p| p.to_value(true)).collect());
            new["addressType"] = json!(family);
            new["metadata"]["labels"] = Value::Object(labels.clone());
            new["metadata"]["ownerReferences"] = json!([owner.clone()]);
            if slice_fingerprint(&new) != slice_fingerprint(w.existing) {
                plan.update.push(new);
            }
        }
    }
    plan
}

fn new_slice(svc: &Value, family: &str, ports: &[PortKey], endpoints: Vec<Value>, labels: &Map<String, Value>, owner: &Value) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": format!("{}-", util::name(svc)),
            "namespace": util::namespace(svc),
            "labels": labels,
            "ownerReferences": [owner],
        },
        "addressType": family,
        "endpoints": endpoints,
        "ports": ports.iter().map(|p| p.to_value(true)).collect::<Vec<_>>(),
    })
}

// ------------------------------------------------------------------------------------------
// The controller
// ------------------------------------------------------------------------------------------

/// What we wrote to a slice and have not yet seen in the cache. Without it a reconcile running
/// on a cache that lags our own writes would create a second slice for the same endpoints.
#[derive(Debug, Clone)]
enum Expect {
    AtLeast(u64),
    Gone,
}

/// How long an unmet expectation is waited for: past it, something else changed the slice (it
/// was deleted, say) and the cache is trusted again.
const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Tracker {
    by_service: Mutex<HashMap<String, HashMap<String, (Expect, tokio::time::Instant)>>>,
}

impl Tracker {
    /// Whether the cache reflects everything written for the service; forgets what it does.
    fn caught_up(&self, service: &str, slices: &Informer, ns: &str) -> bool {
        let mut all = self.by_service.lock().expect("tracker lock");
        let Some(exp) = all.get_mut(service) else { return true };
        exp.retain(|name, (e, since)| {
            if since.elapsed() > EXPECTATION_TIMEOUT {
                return false;
            }
            let cur = slices.get(&format!("{ns}/{name}"));
            let satisfied = match e {
                Expect::AtLeast(rv) => cur.as_ref().is_some_and(|c| rv_num(c).is_none_or(|r| r >= *rv)),
                Expect::Gone => cur.is_none(),
            };
            !satisfied
        });
        let ok = exp.is_empty();
        if ok {
            all.remove(service);
        }
        ok
    }

    fn expect(&self, service: &str, slice: &str, e: Expect) {
        self.by_service.lock().expect("tracker lock").entry(service.to_string()).or_default().insert(slice.to_string(), (e, tokio::time::Instant::now()));
    }

    fn forget(&self, service: &str) {
        self.by_service.lock().expect("tracker lock").remove(service);
    }
}

fn rv_num(o: &Value) -> Option<u64> {
    o.pointer("/metadata/resourceVersion").and_then(|r| r.as_str()).and_then(|r| r.parse().ok())
}

struct Controller {
    ctx: Arc<Ctx>,
    services: Arc<Informer>,
    pods: Arc<Informer>,
    nodes: Arc<Informer>,
    endpoints: Arc<Informer>,
    slices: Arc<Informer>,
    tracker: Tracker,
}

#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("slice cache is behind our writes")]
    Stale,
}

const WORKERS: usize = 4;

pub async fn run(ctx: Arc<Ctx>) {
    let c = Arc::new(Controller {
        services: ctx.informers.get(res("", "services")),
        pods: ctx.informers.get(res("", "pods")),
        nodes: ctx.informers.get(res("", "nodes")),
        endpoints: ctx.informers.get(res("", "endpoints")),
        slices: ctx.informers.get(res("discovery.k8s.io", "endpointslices")),
        tracker: Tracker::default(),
        ctx,
    });
    let mut svc_changes = changes(&c.services);
    let mut pod_changes = changes(&c.pods);
    let mut node_changes = changes(&c.nodes);
    let mut ep_changes = changes(&c.endpoints);
    let mut slice_changes = changes(&c.slices);
    for inf in [&c.services, &c.pods, &c.nodes, &c.endpoints, &c.slices] {
        inf.synced().await;
    }

    let queue = WorkQueue::new();
    let enqueue_all = |q: &WorkQueue| {
        for svc in c.services.list() {
            q.add(key_of(&svc));
        }
    };
    enqueue_all(&queue);
    // Endpoints left behind by services deleted while no controller ran.
    for ep in c.endpoints.list() {
        queue.add(key_of(&ep));
    }

    let intake = async {
        loop {
            tokio::select! {
                ch = svc_changes.next() => match ch {
                    Some(Some(ch)) => queue.add(ch.key),
                    Some(None) => enqueue_all(&queue),
                    None => return,
                },
                ch = pod_changes.next() => match ch {
                    Some(Some(ch)) => {
                        for svc in c.services_of_pod(ch.old.as_deref(), ch.new.as_deref()) {
                            queue.add(svc);
                        }
                    }
                    Some(None) => enqueue_all(&queue),
                    None => return,
                },
                ch = node_changes.next() => match ch {
                    Some(Some(ch)) => {
                        let zone = |n: &Option<Arc<Value>>| n.as_ref().map(|n| s(n, &format!("/metadata/labels/{}", ZONE_LABEL.replace('/', "~1"))).to_string());
                        // Nodes change at every heartbeat; only a zone change matters here.
                        if zone(&ch.old) != zone(&ch.new) {
                            enqueue_all(&queue);
                        }
                    }
                    Some(None) => enqueue_all(&queue),
                    None => return,
                },
                ch = ep_changes.next() => match ch {
                    Some(Some(ch)) => if ch.new.is_none() { queue.add(ch.key) },
                    Some(None) => enqueue_all(&queue),
                    None => return,
                },
                ch = slice_changes.next() => match ch {
                    Some(Some(ch)) => {
                        if let Some(sl) = ch.new.as_deref().or(ch.old.as_deref())
                            && s(sl, &format!("/metadata/labels/{}", MANAGED_BY_LABEL.replace('/', "~1"))) == CONTROLLER_NAME
                        {
                            let svc = s(sl, &format!("/metadata/labels/{}", SERVICE_NAME_LABEL.replace('/', "~1")));
                            if !svc.is_empty() {
                                queue.add(format!("{}/{svc}", util::namespace(sl)));
                            }
                        }
                    }
                    Some(None) => enqueue_all(&queue),
                    None => return,
                },
            }
        }
    };
    let workers = futures::future::join_all((0..WORKERS).map(|_| async {
        loop {
            let key = queue.next().await;
            match c.sync(&key).await {
                Ok(()) => queue.forget(&key),
                Err(SyncError::Stale) => queue.add_after(key.clone(), Duration::from_millis(50)),
                Err(e) => {
                    tracing::debug!(service = %key, error = %e, "endpoints sync failed");
                    queue.add_rate_limited(key.clone());
                }
            }
            queue.done(&key);
        }
    }));
    tokio::join!(intake, workers);
}

impl Controller {
    /// Services (keys) selecting the pod before or after a change.
    fn services_of_pod(&self, old: Option<&Value>, new: Option<&Value>) -> Vec<String> {
        let Some(ns) = new.or(old).map(util::namespace) else { return Vec::new() };
        self.services
            .list_namespace(ns)
            .into_iter()
            .filter(|svc| old.is_some_and(|p| service_selects(svc, p)) || new.is_some_and(|p| service_selects(svc, p)))
            .map(|svc| key_of(&svc))
            .collect()
    }

    async fn sync(&self, key: &str) -> Result<(), SyncError> {
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        let Some(svc) = self.services.get(key) else {
            self.service_gone(ns, name).await?;
            return Ok(());
        };
        if !is_managed_service(&svc) {
            // The Endpoints of such services are the user's; slices labelled as ours are stale.
            return self.delete_slices(key, ns, name).await;
        }
        let pods: Vec<Arc<Value>> = self.pods.list_namespace(ns).into_iter().filter(|p| service_selects(&svc, p)).collect();
        let pod_refs: Vec<&Value> = pods.iter().map(|p| p.as_ref()).collect();

        let current = self.endpoints.get(key);
        match desired_endpoints(&svc, &pod_refs, current.as_deref()) {
            EndpointsAction::Nothing => {}
            EndpointsAction::Create(obj) => {
                self.ctx.client.create(res("", "endpoints"), Some(ns), obj).await?;
            }
            EndpointsAction::Update(obj) => {
                self.ctx.client.update(res("", "endpoints"), obj).await?;
            }
        }

        if util::is_deleting(&svc) {
            return Ok(());
        }
        if !self.tracker.caught_up(key, &self.slices, ns) {
            return Err(SyncError::Stale);
        }
        let existing: Vec<Arc<Value>> = self.slices.list_namespace(ns).into_iter().filter(|sl| is_managed_slice_of(sl, ns, name)).collect();
        let existing_refs: Vec<&Value> = existing.iter().map(|e| e.as_ref()).collect();
        let nodes = &self.nodes;
        let zone_of = |node: &str| nodes.get(node).map(|n| s(&n, &format!("/metadata/labels/{}", ZONE_LABEL.replace('/', "~1"))).to_string());
        let plan = plan_slices(&svc, &pod_refs, &zone_of, &existing_refs);
        self.apply(key, ns, plan).await
    }

    async fn apply(&self, key: &str, ns: &str, plan: SlicePlan) -> Result<(), SyncError> {
        let slices = res("discovery.k8s.io", "endpointslices");
        let mut first_err = None;
        // Creations and updates before deletions: consumers never see fewer endpoints than exist.
        for obj in plan.create {
            match self.ctx.client.create(slices, Some(ns), obj).await {
                Ok(created) => self.tracker.expect(key, util::name(&created), Expect::AtLeast(rv_num(&created).unwrap_or(0))),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        for obj in plan.update {
            match self.ctx.client.update(slices, obj).await {
                Ok(updated) => self.tracker.expect(key, util::name(&updated), Expect::AtLeast(rv_num(&updated).unwrap_or(0))),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        for obj in plan.delete {
            let opts = DeleteOptions { uid: Some(util::uid(&obj).to_string()), ..Default::default() };
            match self.ctx.client.delete(slices, Some(ns), util::name(&obj), opts).await {
                Ok(()) | Err(ApiError::NotFound { .. }) => self.tracker.expect(key, util::name(&obj), Expect::Gone),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    async fn service_gone(&self, ns: &str, name: &str) -> Result<(), SyncError> {
        let key = format!("{ns}/{name}");
        if self.endpoints.get(&key).is_some() {
            match self.ctx.client.delete(res("", "endpoints"), Some(ns), name, DeleteOptions::default()).await {
                Ok(()) | Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // The garbage collector would get to the slices too (they are owned by the service); doing
        // it here takes the endpoints out of service at once.
        self.delete_slices(&key, ns, name).await?;
        self.tracker.forget(&key);
        Ok(())
    }

    async fn delete_slices(&self, key: &str, ns: &str, name: &str) -> Result<(), SyncError> {
        let doomed: Vec<Value> = self
            .slices
            .list_namespace(ns)
            .into_iter()
            .filter(|sl| is_managed_slice_of(sl, ns, name))
            .map(|sl| (*sl).clone())
            .collect();
        if doomed.is_empty() {
            return Ok(());
        }
        self.apply(key, ns, SlicePlan { delete: doomed, ..Default::default() }).await
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

    fn svc(spec: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"app": "web"}}, "spec": spec})
    }

    fn pod(name: &str, ip: &str, ready: bool, ports: &[(&str, i64)]) -> Value {
        let ports: Vec<Value> = ports.iter().map(|(n, p)| json!({"name": n, "containerPort": p})).collect();
        json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": ports}]},
            "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        })
    }

    fn addr(name: &str, ip: &str) -> Value {
        json!({"ip": ip, "nodeName": "n1", "targetRef": {"kind": "Pod", "namespace": "ns", "name": name, "uid": format!("uid-{name}")}})
    }

    #[test]
    fn find_port_cases() {
        let p = pod("a", "10.0.0.1", true, &[("http", 8080), ("metrics", 9090)]);
        let udp = json!({"spec": {"containers": [{"ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"}]}]}});
        let sidecar = json!({"spec": {"containers": [], "initContainers": [
            {"name": "s", "restartPolicy": "Always", "ports": [{"name": "proxy", "containerPort": 15001}]},
            {"name": "i", "ports": [{"name": "init", "containerPort": 1}]}]}});
        let cases: Vec<(&str, &Value, Value, Option<i64>)> = vec![
            ("numeric target", &p, json!({"port": 80, "targetPort": 8081}), Some(8081)),
            ("no target: the port", &p, json!({"port": 80}), Some(80)),
            ("named target", &p, json!({"port": 80, "targetPort": "metrics"}), Some(9090)),
            ("unknown name", &p, json!({"port": 80, "targetPort": "nope"}), None),
            ("named, protocol mismatch", &udp, json!({"port": 53, "targetPort": "dns"}), None),
            ("named, protocol match", &udp, json!({"port": 53, "targetPort": "dns", "protocol": "UDP"}), Some(53)),
            ("sidecar port", &sidecar, json!({"port": 1, "targetPort": "proxy"}), Some(15001)),
            ("plain init container port", &sidecar, json!({"port": 1, "targetPort": "init"}), None),
            ("garbage", &p, json!({"targetPort": [1]}), None),
        ];
        for (name, pod, port, want) in cases {
            assert_eq!(find_port(pod, &port), want, "{name}");
        }
    }

    #[test]
    fn build_subsets_cases() {
        let http = svc(json!({"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}));
        let port = |p: i64| json!({"name": "http", "port": p, "protocol": "TCP"});
        let mut terminating = pod("t", "10.0.0.9", true, &[("http", 8080)]);
        terminating["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        let mut finished = pod("f", "10.0.0.8", false, &[("http", 8080)]);
        finished["status"]["phase"] = json!("Succeeded");
        let mut other = pod("o", "10.0.0.7", true, &[("http", 8080)]);
        other["metadata"]["labels"]["app"] = json!("db");
        let mut publish = http.clone();
        publish["spec"]["publishNotReadyAddresses"] = json!(true);
        let headless = svc(json!({"selector": {"app": "web"}, "clusterIP": "None"}));
        let mut named = pod("h", "10.0.0.5", true, &[]);
        named["spec"]["hostname"] = json!("h0");
        named["spec"]["subdomain"] = json!("web");

        let cases: Vec<(&str, &Value, Vec<Value>, Vec<Value>)> = vec![
            (
                "ready and not ready in one subset",
                &http,
                vec![pod("b", "10.0.0.2", false, &[("http", 8080)]), pod("a", "10.0.0.1", true, &[("http", 8080)])],
                vec![json!({"addresses": [addr("a", "10.0.0.1")], "notReadyAddresses": [addr("b", "10.0.0.2")], "ports": [port(8080)]})],
            ),
            (
                "same port name, different numbers: two subsets",
                &http,
                vec![pod("a", "10.0.0.1", true, &[("http", 8080)]), pod("b", "10.0.0.2", true, &[("http", 9090)])],
                vec![json!({"addresses": [addr("a", "10.0.0.1")], "ports": [port(8080)]}), json!({"addresses": [addr("b", "10.0.0.2")], "ports": [port(9090)]})],
            ),
            (
                "no IP, unresolvable port, terminating, finished, unselected: left out",
                &http,
                vec![pod("n", "", true, &[("http", 8080)]), pod("u", "10.0.0.3", true, &[("other", 1)]), terminating.clone(), finished, other],
                vec![],
            ),
            (
                "publishNotReadyAddresses: everything ready, terminating kept",
                &publish,
                vec![pod("b", "10.0.0.2", false, &[("http", 8080)]), terminating],
                vec![json!({"addresses": [addr("b", "10.0.0.2"), addr("t", "10.0.0.9")], "ports": [port(8080)]})],
            ),
            (
                "headless without ports, hostname for its subdomain",
                &headless,
                vec![named],
                vec![json!({"addresses": [{"ip": "10.0.0.5", "hostname": "h0", "nodeName": "n1", "targetRef": {"kind": "Pod", "namespace": "ns", "name": "h", "uid": "uid-h"}}]})],
            ),
        ];
        for (name, svc, pods, want) in cases {
            let refs: Vec<&Value> = pods.iter().collect();
            assert_eq!(build_subsets(svc, &refs), want, "{name}");
        }
    }

    #[test]
    fn subsets_repack_ports_by_address_sets() {
        // Pod a serves both ports, pod b only one: the shared port lists both addresses.
        let s = svc(json!({"selector": {"app": "web"}, "ports": [
            {"name": "http", "port": 80, "targetPort": "http"}, {"name": "m", "port": 81, "targetPort": "m"}]}));
        let a = pod("a", "10.0.0.1", true, &[("http", 8080), ("m", 9090)]);
        let b = pod("b", "10.0.0.2", true, &[("http", 8080)]);
        let got = build_subsets(&s, &[&a, &b]);
        assert_eq!(
            got,
            vec![
                json!({"addresses": [addr("a", "10.0.0.1")], "ports": [{"name": "m", "port": 9090, "protocol": "TCP"}]}),
                json!({"addresses": [addr("a", "10.0.0.1"), addr("b", "10.0.0.2")], "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}),
            ]
        );
    }

    #[test]
    fn desired_endpoints_only_changes_when_needed() {
        let s = svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
        let a = pod("a", "10.0.0.1", true, &[]);
        let EndpointsAction::Create(created) = desired_endpoints(&s, &[&a], None) else { panic!("expected a creation") };
        assert_eq!(created["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(created["subsets"][0]["ports"], json!([{"port": 80, "protocol": "TCP"}]));
        // As the server might return it: reordered, defaults spelled out, resourceVersion added.
        let mut stored = created.clone();
        stored["metadata"]["resourceVersion"] = json!("7");
        stored["subsets"][0]["addresses"][0]["targetRef"]["resourceVersion"] = json!("3");
        assert_eq!(desired_endpoints(&s, &[&a], Some(&stored)), EndpointsAction::Nothing);
        let b = pod("b", "10.0.0.2", false, &[]);
        let EndpointsAction::Update(updated) = desired_endpoints(&s, &[&a, &b], Some(&stored)) else { panic!("expected an update") };
        assert_eq!(updated["metadata"]["resourceVersion"], json!("7"));
        assert_eq!(updated["subsets"][0]["notReadyAddresses"], json!([addr("b", "10.0.0.2")]));
        let mut relabelled = s.clone();
        relabelled["metadata"]["labels"] = json!({"app": "web", "tier": "front"});
        assert!(matches!(desired_endpoints(&relabelled, &[&a], Some(&stored)), EndpointsAction::Update(_)));
    }

    #[test]
    fn endpoints_are_capped() {
        let s = svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
        let pods: Vec<Value> = (0..1100).map(|i| pod(&format!("p{i:04}"), &format!("10.1.{}.{}", i / 256, i % 256), i % 2 == 0, &[])).collect();
        let refs: Vec<&Value> = pods.iter().collect();
        let EndpointsAction::Create(ep) = desired_endpoints(&s, &refs, None) else { panic!("expected a creation") };
        let ready = ep["subsets"][0]["addresses"].as_array().map_or(0, |a| a.len());
        let not_ready = ep["subsets"][0]["notReadyAddresses"].as_array().map_or(0, |a| a.len());
        assert_eq!((ready, not_ready), (550, 450), "ready addresses are kept first");
        assert_eq!(ep["metadata"]["annotations"][OVER_CAPACITY_ANNOTATION], json!("truncated"));
    }

    fn stored(mut slice: Value, name: &str) -> Value {
        slice["metadata"]["name"] = json!(name);
        slice["metadata"]["uid"] = json!(format!("uid-{name}"));
        slice["metadata"]["resourceVersion"] = json!("1");
        slice
    }

    #[test]
    fn plan_slices_cases() {
        let s = svc(json!({"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}));
        let no_zone = |_: &str| None;
        let a = pod("a", "10.0.0.1", true, &[("http", 8080)]);
        let b = pod("b", "10.0.0.2", false, &[("http", 8080)]);
        let c = pod("c", "10.0.0.3", true, &[("http", 9090)]);

        // Nothing yet: one slice per port set.
        let plan = plan_slices(&s, &[&a, &b, &c], &no_zone, &[]);
        assert_eq!((plan.create.len(), plan.update.len(), plan.delete.len()), (2, 0, 0));
        let first = &plan.create[0];
        assert_eq!(first["metadata"]["generateName"], json!("web-"));
        assert_eq!(first["metadata"]["labels"][SERVICE_NAME_LABEL], json!("web"));
        assert_eq!(first["metadata"]["labels"][MANAGED_BY_LABEL], json!(CONTROLLER_NAME));
        assert_eq!(first["metadata"]["labels"]["app"], json!("web"));
        assert_eq!(first["metadata"]["ownerReferences"][0]["uid"], json!("svc-uid"));
        assert_eq!(first["metadata"]["ownerReferences"][0]["controller"], json!(true));
        assert_eq!(first["addressType"], json!("IPv4"));
        assert_eq!(first["ports"], json!([{"name": "http", "port": 8080, "protocol": "TCP"}]));
        assert_eq!(first["endpoints"][1]["conditions"], json!({"ready": false, "serving": false, "terminating": false}));

        // Stored as planned: nothing to do.
        let s1 = stored(plan.create[0].clone(), "web-1");
        let s2 = stored(plan.create[1].clone(), "web-2");
        assert!(plan_slices(&s, &[&a, &b, &c], &no_zone, &[&s1, &s2]).is_empty());

        // b goes: its slice is updated in place; c moves to 8080 and joins s1, s2 is dropped.
        let mut c2 = c.clone();
        c2["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(8080);
        let plan = plan_slices(&s, &[&a, &c2], &no_zone, &[&s1, &s2]);
        assert_eq!(plan.create, Vec::<Value>::new());
        assert_eq!(plan.update.len(), 1);
        assert_eq!(plan.update[0]["metadata"]["name"], json!("web-1"));
        let ips: Vec<&Value> = plan.update[0]["endpoints"].as_array().into_iter().flatten().map(|e| &e["addresses"][0]).collect();
        assert_eq!(ips, vec![&json!("10.0.0.1"), &json!("10.0.0.3")]);
        assert_eq!(plan.delete.iter().map(|d| util::name(d)).collect::<Vec<_>>(), vec!["web-2"]);

        // Ports changed for everyone: the old slice is rewritten rather than replaced.
        let mut s8 = s.clone();
        s8["spec"]["ports"][0]["targetPort"] = json!(7000);
        let plan = plan_slices(&s8, &[&a], &no_zone, &[&s1]);
        assert_eq!((plan.create.len(), plan.update.len(), plan.delete.len()), (0, 1, 0));
        assert_eq!(plan.update[0]["ports"][0]["port"], json!(7000));

        // No pods: one placeholder remains.
        let plan = plan_slices(&s, &[], &no_zone, &[&s1, &s2]);
        assert_eq!(plan.update.len(), 1);
        assert_eq!(plan.update[0]["endpoints"], json!([]));
        assert_eq!(plan.delete.len(), 1);
        let empty = plan_slices(&s, &[], &no_zone, &[]);
        assert_eq!(empty.create.len(), 1);
        assert_eq!(empty.create[0]["endpoints"], json!([]));

        // Slices of another incarnation of the service, or another family, go.
        let mut foreign = s1.clone();
        foreign["metadata"]["ownerReferences"][0]["uid"] = json!("old-uid");
        let plan = plan_slices(&s, &[&a], &no_zone, &[&foreign]);
        assert_eq!((plan.create.len(), plan.delete.len()), (1, 1));
    }

    #[test]
    fn plan_slices_chunks_and_zones() {
        let s = svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
        let pods: Vec<Value> = (0..250).map(|i| pod(&format!("p{i:03}"), &format!("10.2.0.{i}"), true, &[])).collect();
        let refs: Vec<&Value> = pods.iter().collect();
        let zone = |n: &str| (n == "n1").then(|| "zone-a".to_string());
        let plan = plan_slices(&s, &refs, &zone, &[]);
        let sizes: Vec<usize> = plan.create.iter().map(|sl| sl["endpoints"].as_array().map_or(0, |e| e.len())).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        assert_eq!(plan.create[0]["endpoints"][0]["zone"], json!("zone-a"));
        assert_eq!(plan.create[0]["endpoints"][0]["nodeName"], json!("n1"));

        // One more pod goes to the slice with room, not to a new slice.
        let stored: Vec<Value> = plan.create.iter().enumerate().map(|(i, sl)| super::tests::stored(sl.clone(), &format!("web-{i}"))).collect();
        let stored_refs: Vec<&Value> = stored.iter().collect();
        let extra = pod("p999", "10.2.1.1", true, &[]);
        let mut more = refs.clone();
        more.push(&extra);
        let plan = plan_slices(&s, &more, &zone, &stored_refs);
        assert_eq!((plan.create.len(), plan.update.len(), plan.delete.len()), (0, 1, 0));
        assert_eq!(plan.update[0]["metadata"]["name"], json!("web-2"));
    }

    #[test]
    fn terminating_pods_in_slices() {
        let s = svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
        let mut t = pod("t", "10.0.0.9", true, &[]);
        t["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        let plan = plan_slices(&s, &[&t], &|_| None, &[]);
        assert_eq!(plan.create[0]["endpoints"][0]["conditions"], json!({"ready": false, "serving": true, "terminating": true}));
    }
}
