//! What the scheduler needs from Pods and Nodes, read once from their JSON into compact
//! structures so the per-node filter and score loops touch no JSON and allocate nothing.
//!
//! Reading is tolerant: a field of an unexpected shape reads as absent (or, for constraints
//! that could otherwise be silently widened, as a constraint that matches nothing).

use std::collections::BTreeMap;

use apimachinery::selector::{LabelSelector, Requirement, from_label_selector_object, labels_of, nothing};
use apimachinery::validation::Quantity;
use serde_json::Value;

pub const DEFAULT_SCHEDULER: &str = "default-scheduler";
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
pub const LABEL_REGION: &str = "topology.kubernetes.io/region";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(|s| s.as_str()).unwrap_or("")
}

fn arr_at<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr).and_then(|a| a.as_array()).map(|a| a.as_slice()).unwrap_or(&[])
}

fn int_of(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Quantities

fn quantity_of(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => Quantity::parse(s.trim()).ok(),
        Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
        _ => None,
    }
}

/// ceil(q × 10^scale_exp) as an i64, exactly: the float estimate is only a starting point,
/// checked against the exact quantity (Kubernetes rounds requests up: `MilliValue`/`Value`).
fn scaled_ceil(q: &Quantity, suffix: &str, scale: i128) -> i64 {
    if let Some(v) = q.as_i128() {
        return v.saturating_mul(scale).clamp(i64::MIN as i128, i64::MAX as i128) as i64;
    }
    let est = (q.as_f64() * scale as f64).round();
    if !est.is_finite() || est.abs() > 9.0e18 {
        return if est < 0.0 { i64::MIN } else { i64::MAX };
    }
    let mut c = est as i64;
    let at = |n: i64| Quantity::parse(&format!("{n}{suffix}")).ok();
    // Walk to the smallest c with c ≥ q (at most a step or two from the estimate).
    for _ in 0..4 {
        match (at(c), at(c - 1)) {
            (Some(hi), _) if hi < *q => c += 1,
            (_, Some(lo)) if lo >= *q => c -= 1,
            _ => break,
        }
    }
    c
}

pub fn milli_value(q: &Quantity) -> i64 {
    scaled_ceil(q, "m", 1000)
}

pub fn value(q: &Quantity) -> i64 {
    scaled_ceil(q, "", 1)
}

/// Requested or allocatable amounts: cpu in millicores, the rest in units (bytes, counts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Extended resources and hugepages, sorted by name; usually empty.
    pub scalar: Vec<(String, i64)>,
}

impl Resources {
    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar.iter().find(|(n, _)| n == name).map(|(_, v)| *v).unwrap_or(0)
    }

    fn scalar_mut(&mut self, name: &str) -> &mut i64 {
        let pos = match self.scalar.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(p) => p,
            Err(p) => {
                self.scalar.insert(p, (name.to_string(), 0));
                p
            }
        };
        &mut self.scalar[pos].1
    }

    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_add(o.milli_cpu);
        self.memory = self.memory.saturating_add(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_add(o.ephemeral_storage);
        for (n, v) in &o.scalar {
            let s = self.scalar_mut(n);
            *s = s.saturating_add(*v);
        }
    }

    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_sub(o.milli_cpu);
        self.memory = self.memory.saturating_sub(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_sub(o.ephemeral_storage);
        for (n, v) in &o.scalar {
            let s = self.scalar_mut(n);
            *s = s.saturating_sub(*v);
        }
        self.scalar.retain(|(_, v)| *v != 0);
    }

    fn max_with(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        for (n, v) in &o.scalar {
            let s = self.scalar_mut(n);
            *s = (*s).max(*v);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0 && self.memory == 0 && self.ephemeral_storage == 0 && self.scalar.iter().all(|(_, v)| *v == 0)
    }

    fn set(&mut self, name: &str, q: &Quantity) {
        match name {
            "cpu" => self.milli_cpu = milli_value(q),
            "memory" => self.memory = value(q),
            "ephemeral-storage" => self.ephemeral_storage = value(q),
            "pods" => {}
            other => *self.scalar_mut(other) = value(q),
        }
    }

    /// A ResourceList object (`{"cpu": "500m", ...}`); unparsable entries are skipped.
    pub fn from_list(list: Option<&Value>) -> Resources {
        let mut r = Resources::default();
        if let Some(m) = list.and_then(|l| l.as_object()) {
            for (name, q) in m {
                if let Some(q) = quantity_of(q) {
                    r.set(name, &q);
                }
            }
        }
        r
    }
}

/// A container's requests, with limits standing in for absent requests as API defaulting
/// would have made them; plus whether cpu/memory were given at all (for non-zero scoring).
fn container_requests(c: &Value) -> (Resources, bool, bool) {
    let requests = c.pointer("/resources/requests").and_then(|r| r.as_object());
    let limits = c.pointer("/resources/limits").and_then(|r| r.as_object());
    let mut r = Resources::default();
    let mut has_cpu = false;
    let mut has_mem = false;
    let mut names: Vec<&String> = requests.map(|m| m.keys().collect()).unwrap_or_default();
    if let Some(l) = limits {
        names.extend(l.keys().filter(|k| requests.is_none_or(|m| !m.contains_key(*k))));
    }
    for name in names {
        let q = requests.and_then(|m| m.get(name)).or_else(|| limits.and_then(|m| m.get(name)));
        if let Some(q) = q.and_then(quantity_of) {
            r.set(name, &q);
            has_cpu |= name == "cpu";
            has_mem |= name == "memory";
        }
    }
    (r, has_cpu, has_mem)
}

/// The pod's effective request (Kubernetes `PodRequests`): the sum of app containers and
/// sidecars (restartable init containers), or the largest init-time need if bigger, plus the
/// pod overhead. Returns (requests, non-zero cpu, non-zero memory), where the non-zero form
/// counts 100m / 200Mi for containers that request nothing, so empty pods still spread.
pub fn pod_requests(spec: &Value) -> (Resources, i64, i64) {
    let nz = |r: &Resources, has_cpu: bool, has_mem: bool| -> (i64, i64) {
        (
            if has_cpu { r.milli_cpu } else { DEFAULT_MILLI_CPU_REQUEST },
            if has_mem { r.memory } else { DEFAULT_MEMORY_REQUEST },
        )
    };
    let mut sum = Resources::default();
    let (mut nz_cpu, mut nz_mem) = (0i64, 0i64);
    for c in arr_at(spec, "/containers") {
        let (r, hc, hm) = container_requests(c);
        let (a, b) = nz(&r, hc, hm);
        nz_cpu += a;
        nz_mem += b;
        sum.add(&r);
    }
    let mut init_max = Resources::default();
    let (mut init_nz_cpu, mut init_nz_mem) = (0i64, 0i64);
    let mut sidecars = Resources::default();
    let (mut side_nz_cpu, mut side_nz_mem) = (0i64, 0i64);
    for c in arr_at(spec, "/initContainers") {
        let (r, hc, hm) = container_requests(c);
        let (a, b) = nz(&r, hc, hm);
        if str_at(c, "/restartPolicy") == "Always" {
            // A sidecar keeps running next to the app containers and the later init containers.
            sum.add(&r);
            nz_cpu += a;
            nz_mem += b;
            sidecars.add(&r);
            side_nz_cpu += a;
            side_nz_mem += b;
            init_max.max_with(&sidecars);
            init_nz_cpu = init_nz_cpu.max(side_nz_cpu);
            init_nz_mem = init_nz_mem.max(side_nz_mem);
        } else {
            let mut during = r.clone();
            during.add(&sidecars);
            init_max.max_with(&during);
            init_nz_cpu = init_nz_cpu.max(a + side_nz_cpu);
            init_nz_mem = init_nz_mem.max(b + side_nz_mem);
        }
    }
    sum.max_with(&init_max);
    nz_cpu = nz_cpu.max(init_nz_cpu);
    nz_mem = nz_mem.max(init_nz_mem);
    let overhead = Resources::from_list(spec.get("overhead"));
    sum.add(&overhead);
    (sum, nz_cpu + overhead.milli_cpu, nz_mem + overhead.memory)
}

// ---------------------------------------------------------------------------------------------
// Taints and tolerations

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Toleration {
    pub key: String,
    pub operator: String,
    pub value: String,
    pub effect: String,
}

impl Toleration {
    /// `Toleration.ToleratesTaint`: an empty effect matches every effect, an empty key with
    /// Exists matches every taint; tolerationSeconds only matters for eviction, not here.
    pub fn tolerates(&self, t: &Taint) -> bool {
        if !self.effect.is_empty() && self.effect != t.effect {
            return false;
        }
        if !self.key.is_empty() && self.key != t.key {
            return false;
        }
        match self.operator.as_str() {
            "" | "Equal" => self.value == t.value,
            "Exists" => true,
            _ => false,
        }
    }
}

pub fn tolerated(tolerations: &[Toleration], t: &Taint) -> bool {
    tolerations.iter().any(|tol| tol.tolerates(t))
}

fn parse_taints(v: &[Value]) -> Vec<Taint> {
    v.iter()
        .map(|t| Taint {
            key: str_at(t, "/key").to_string(),
            value: str_at(t, "/value").to_string(),
            effect: str_at(t, "/effect").to_string(),
        })
        .collect()
}

fn parse_tolerations(v: &[Value]) -> Vec<Toleration> {
    v.iter()
        .map(|t| Toleration {
            key: str_at(t, "/key").to_string(),
            operator: str_at(t, "/operator").to_string(),
            value: str_at(t, "/value").to_string(),
            effect: str_at(t, "/effect").to_string(),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Node selectors (node affinity)

#[derive(Clone, Debug, PartialEq)]
pub enum NodeOp {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
    /// An operator or value Kubernetes would reject: the term it is in matches nothing.
    Invalid,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodeReq {
    pub key: String,
    pub op: NodeOp,
}

impl NodeReq {
    fn parse(r: &Value) -> NodeReq {
        let key = str_at(r, "/key").to_string();
        let values: Vec<String> = arr_at(r, "/values").iter().filter_map(|v| v.as_str().map(String::from)).collect();
        let one_int = || if values.len() == 1 { values[0].trim().parse::<i64>().ok() } else { None };
        let op = match str_at(r, "/operator") {
            "In" => NodeOp::In(values.clone()),
            "NotIn" => NodeOp::NotIn(values.clone()),
            "Exists" => NodeOp::Exists,
            "DoesNotExist" => NodeOp::DoesNotExist,
            "Gt" => one_int().map(NodeOp::Gt).unwrap_or(NodeOp::Invalid),
            "Lt" => one_int().map(NodeOp::Lt).unwrap_or(NodeOp::Invalid),
            _ => NodeOp::Invalid,
        };
        NodeReq { key, op }
    }

    fn matches_value(&self, v: Option<&str>) -> bool {
        match &self.op {
            NodeOp::In(vals) => v.is_some_and(|v| vals.iter().any(|x| x == v)),
            NodeOp::NotIn(vals) => v.is_none_or(|v| !vals.iter().any(|x| x == v)),
            NodeOp::Exists => v.is_some(),
            NodeOp::DoesNotExist => v.is_none(),
            NodeOp::Gt(n) => v.and_then(|v| v.trim().parse::<i64>().ok()).is_some_and(|x| x > *n),
            NodeOp::Lt(n) => v.and_then(|v| v.trim().parse::<i64>().ok()).is_some_and(|x| x < *n),
            NodeOp::Invalid => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct NodeSelectorTerm {
    pub exprs: Vec<NodeReq>,
    /// Only `metadata.name` with In/NotIn is meaningful, as in Kubernetes.
    pub fields: Vec<NodeReq>,
}

impl NodeSelectorTerm {
    pub fn parse(t: &Value) -> NodeSelectorTerm {
        NodeSelectorTerm {
            exprs: arr_at(t, "/matchExpressions").iter().map(NodeReq::parse).collect(),
            fields: arr_at(t, "/matchFields").iter().map(NodeReq::parse).collect(),
        }
    }

    /// An empty term matches no node (Kubernetes: "a null or empty term matches no objects").
    pub fn matches(&self, node: &NodeSpec) -> bool {
        if self.exprs.is_empty() && self.fields.is_empty() {
            return false;
        }
        self.exprs.iter().all(|r| r.matches_value(node.labels.get(&r.key).map(|s| s.as_str())))
            && self
                .fields
                .iter()
                .all(|r| r.key == "metadata.name" && matches!(r.op, NodeOp::In(_) | NodeOp::NotIn(_)) && r.matches_value(Some(&node.name)))
    }

    /// The node names this term can only match (`matchFields metadata.name In`), if it pins any.
    fn pinned_names(&self) -> Option<Vec<String>> {
        let mut out: Option<Vec<String>> = None;
        for f in &self.fields {
            if let (true, NodeOp::In(vals)) = (f.key == "metadata.name", &f.op) {
                out = Some(match out {
                    None => vals.clone(),
                    Some(prev) => prev.into_iter().filter(|v| vals.contains(v)).collect(),
                });
            }
        }
        out
    }
}

/// Required node affinity: the terms are ORed.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct NodeSelector {
    pub terms: Vec<NodeSelectorTerm>,
}

impl NodeSelector {
    pub fn matches(&self, node: &NodeSpec) -> bool {
        self.terms.iter().any(|t| t.matches(node))
    }

    /// The only node names this selector can match when every term pins names (DaemonSet
    /// pods), so the filter can skip the rest of the cluster.
    pub fn pinned_names(&self) -> Option<Vec<String>> {
        if self.terms.is_empty() {
            return None;
        }
        let mut all = Vec::new();
        for t in &self.terms {
            all.extend(t.pinned_names()?);
        }
        all.sort();
        all.dedup();
        Some(all)
    }
}

// ---------------------------------------------------------------------------------------------
// Pod (anti-)affinity terms and spread constraints

/// Which namespaces a pod affinity term looks at.
#[derive(Clone, Debug, PartialEq)]
pub struct NsMatcher {
    pub names: Vec<String>,
    /// `namespaceSelector`; `{}` selects every namespace.
    pub selector: Option<LabelSelector>,
}

impl NsMatcher {
    pub fn matches(&self, ns: &str, ns_labels: Option<&BTreeMap<String, String>>) -> bool {
        if self.names.iter().any(|n| n == ns) {
            return true;
        }
        match &self.selector {
            Some(sel) if sel.is_empty() => true,
            Some(sel) => ns_labels.is_some_and(|l| sel.matches(l)),
            None => false,
        }
    }

    pub fn uses_selector(&self) -> bool {
        self.selector.is_some()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PodAffinityTerm {
    pub namespaces: NsMatcher,
    pub selector: LabelSelector,
    pub topology_key: String,
    /// A canonical rendering (namespaces, selector, key), to share work between identical terms.
    pub canon: String,
}

impl PodAffinityTerm {
    /// `owner_ns`/`owner_labels`: the pod the term belongs to (default namespace, and the
    /// values `matchLabelKeys`/`mismatchLabelKeys` take).
    pub fn parse(t: &Value, owner_ns: &str, owner_labels: &BTreeMap<String, String>) -> PodAffinityTerm {
        let mut selector = from_label_selector_object(t.get("labelSelector")).unwrap_or_else(|_| nothing());
        for k in arr_at(t, "/matchLabelKeys").iter().filter_map(|k| k.as_str()) {
            if let Some(v) = owner_labels.get(k) {
                selector.requirements.push(Requirement::In(k.to_string(), vec![v.clone()]));
            }
        }
        for k in arr_at(t, "/mismatchLabelKeys").iter().filter_map(|k| k.as_str()) {
            if let Some(v) = owner_labels.get(k) {
                selector.requirements.push(Requirement::NotIn(k.to_string(), vec![v.clone()]));
            }
        }
        let mut names: Vec<String> = arr_at(t, "/namespaces").iter().filter_map(|n| n.as_str().map(String::from)).collect();
        let ns_selector = match t.get("namespaceSelector") {
            None | Some(Value::Null) => None,
            Some(s) => Some(from_label_selector_object(Some(s)).unwrap_or_else(|_| nothing())),
        };
        if names.is_empty() && ns_selector.is_none() {
            names.push(owner_ns.to_string());
        }
        names.sort();
        names.dedup();
        let topology_key = str_at(t, "/topologyKey").to_string();
        let canon = format!("{names:?}|{ns_selector:?}|{:?}|{topology_key}", selector.requirements);
        PodAffinityTerm {
            namespaces: NsMatcher { names, selector: ns_selector },
            selector,
            topology_key,
            canon,
        }
    }

    pub fn matches_pod(&self, pod_ns: &str, pod_labels: &BTreeMap<String, String>, ns_labels: Option<&BTreeMap<String, String>>) -> bool {
        self.namespaces.matches(pod_ns, ns_labels) && self.selector.matches(pod_labels)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpreadConstraint {
    pub max_skew: i64,
    pub topology_key: String,
    /// whenUnsatisfiable: DoNotSchedule (a filter) or ScheduleAnyway (a score).
    pub hard: bool,
    pub selector: LabelSelector,
    pub min_domains: i64,
    pub honor_affinity: bool,
    pub honor_taints: bool,
    pub canon: String,
}

impl SpreadConstraint {
    fn parse(c: &Value, labels: &BTreeMap<String, String>) -> SpreadConstraint {
        let mut selector = from_label_selector_object(c.get("labelSelector")).unwrap_or_else(|_| nothing());
        for k in arr_at(c, "/matchLabelKeys").iter().filter_map(|k| k.as_str()) {
            if let Some(v) = labels.get(k) {
                selector.requirements.push(Requirement::In(k.to_string(), vec![v.clone()]));
            }
        }
        let canon = format!("{:?}", selector.requirements);
        SpreadConstraint {
            max_skew: int_of(c.get("maxSkew")).unwrap_or(1).max(1),
            topology_key: str_at(c, "/topologyKey").to_string(),
            hard: str_at(c, "/whenUnsatisfiable") != "ScheduleAnyway",
            selector,
            min_domains: int_of(c.get("minDomains")).unwrap_or(1).max(1),
            honor_affinity: str_at(c, "/nodeAffinityPolicy") != "Ignore",
            honor_taints: str_at(c, "/nodeTaintsPolicy") == "Honor",
            canon,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub protocol: String,
    pub ip: String,
    pub port: i64,
}

impl HostPort {
    /// Same protocol and port, and the addresses overlap (0.0.0.0 overlaps everything).
    pub fn conflicts(&self, o: &HostPort) -> bool {
        self.port == o.port && self.protocol == o.protocol && (self.ip == o.ip || self.ip == "0.0.0.0" || o.ip == "0.0.0.0")
    }
}

// ---------------------------------------------------------------------------------------------
// Pods

#[derive(Clone, Debug)]
pub struct PodInfo {
    pub key: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub node_name: String,
    pub scheduler_name: String,
    pub priority: i64,
    pub terminal: bool,
    pub deleting: bool,
    pub gated: bool,
    pub requests: Resources,
    pub nonzero_cpu: i64,
    pub nonzero_mem: i64,
    pub host_ports: Vec<HostPort>,
    pub node_selector: Vec<(String, String)>,
    pub required_node_affinity: Option<NodeSelector>,
    pub preferred_node_affinity: Vec<(i64, NodeSelectorTerm)>,
    pub tolerations: Vec<Toleration>,
    pub affinity: Vec<PodAffinityTerm>,
    pub anti_affinity: Vec<PodAffinityTerm>,
    pub preferred_affinity: Vec<(i64, PodAffinityTerm)>,
    pub preferred_anti_affinity: Vec<(i64, PodAffinityTerm)>,
    pub spread: Vec<SpreadConstraint>,
    /// The controller owning the pod when it is a ReplicaSet, ReplicationController or
    /// StatefulSet: the pods Kubernetes' default spreading spreads apart.
    pub spread_owner: Option<String>,
    /// A canonical rendering of nodeSelector + required node affinity (cache key).
    pub node_affinity_sig: String,
}

impl PodInfo {
    pub fn parse(p: &Value) -> PodInfo {
        let namespace = str_at(p, "/metadata/namespace").to_string();
        let name = str_at(p, "/metadata/name").to_string();
        let key = if namespace.is_empty() { name.clone() } else { format!("{namespace}/{name}") };
        let labels = labels_of(p);
        let null = Value::Null;
        let spec = p.get("spec").unwrap_or(&null);
        let (requests, nonzero_cpu, nonzero_mem) = pod_requests(spec);

        let host_network = spec.get("hostNetwork").and_then(|h| h.as_bool()).unwrap_or(false);
        let mut host_ports = Vec::new();
        for c in arr_at(spec, "/containers")
            .iter()
            .chain(arr_at(spec, "/initContainers").iter().filter(|c| str_at(c, "/restartPolicy") == "Always"))
        {
            for port in arr_at(c, "/ports") {
                let mut hp = int_of(port.get("hostPort")).unwrap_or(0);
                if hp <= 0 && host_network {
                    hp = int_of(port.get("containerPort")).unwrap_or(0);
                }
                if hp <= 0 {
                    continue;
                }
                let protocol = match str_at(port, "/protocol") {
                    "" => "TCP",
                    p => p,
                };
                let ip = match str_at(port, "/hostIP") {
                    "" => "0.0.0.0",
                    ip => ip,
                };
                host_ports.push(HostPort {
                    protocol: protocol.to_string(),
                    ip: ip.to_string(),
                    port: hp,
                });
            }
        }

        let mut node_selector: Vec<(String, String)> = spec
            .get("nodeSelector")
            .and_then(|s| s.as_object())
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
            .unwrap_or_default();
        node_selector.sort();

        let na = spec.pointer("/affinity/nodeAffinity");
        let required_node_affinity = na
            .and_then(|a| a.get("requiredDuringSchedulingIgnoredDuringExecution"))
            .filter(|r| !r.is_null())
            .map(|r| NodeSelector {
                terms: arr_at(r, "/nodeSelectorTerms").iter().map(NodeSelectorTerm::parse).collect(),
            });
        let preferred_node_affinity = na
            .map(|a| arr_at(a, "/preferredDuringSchedulingIgnoredDuringExecution"))
            .unwrap_or(&[])
            .iter()
            .map(|t| {
                (
                    int_of(t.get("weight")).unwrap_or(0),
                    t.get("preference").map(NodeSelectorTerm::parse).unwrap_or_default(),
                )
            })
            .filter(|(w, _)| *w != 0)
            .collect();

        let terms = |ptr: &str| -> Vec<PodAffinityTerm> { arr_at(spec, ptr).iter().map(|t| PodAffinityTerm::parse(t, &namespace, &labels)).collect() };
        let weighted = |ptr: &str| -> Vec<(i64, PodAffinityTerm)> {
            arr_at(spec, ptr)
                .iter()
                .map(|t| {
                    (
                        int_of(t.get("weight")).unwrap_or(0),
                        PodAffinityTerm::parse(t.get("podAffinityTerm").unwrap_or(&Value::Null), &namespace, &labels),
                    )
                })
                .filter(|(w, _)| *w != 0)
                .collect()
        };
        let affinity = terms("/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution");
        let anti_affinity = terms("/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution");
        let preferred_affinity = weighted("/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution");
        let preferred_anti_affinity = weighted("/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution");
        let spread = arr_at(spec, "/topologySpreadConstraints")
            .iter()
            .map(|c| SpreadConstraint::parse(c, &labels))
            .collect();

        let spread_owner = arr_at(p, "/metadata/ownerReferences")
            .iter()
            .find(|r| r.get("controller").and_then(|c| c.as_bool()) == Some(true))
            .filter(|r| matches!(str_at(r, "/kind"), "ReplicaSet" | "ReplicationController" | "StatefulSet"))
            .map(|r| str_at(r, "/uid").to_string())
            .filter(|u| !u.is_empty());

        let node_affinity_sig = format!("{node_selector:?}|{required_node_affinity:?}");
        let phase = str_at(p, "/status/phase");
        PodInfo {
            namespace: namespace.clone(),
            name,
            key,
            uid: str_at(p, "/metadata/uid").to_string(),
            node_name: str_at(spec, "/nodeName").to_string(),
            scheduler_name: str_at(spec, "/schedulerName").to_string(),
            priority: int_of(spec.get("priority")).unwrap_or(0),
            terminal: matches!(phase, "Succeeded" | "Failed"),
            deleting: p.pointer("/metadata/deletionTimestamp").is_some_and(|d| !d.is_null()),
            gated: !arr_at(spec, "/schedulingGates").is_empty(),
            requests,
            nonzero_cpu,
            nonzero_mem,
            host_ports,
            node_selector,
            required_node_affinity,
            preferred_node_affinity,
            tolerations: parse_tolerations(arr_at(spec, "/tolerations")),
            affinity,
            anti_affinity,
            preferred_affinity,
            preferred_anti_affinity,
            spread,
            spread_owner,
            node_affinity_sig,
            labels,
        }
    }

    /// Whether this scheduler should place the pod now.
    pub fn wants_scheduling(&self) -> bool {
        self.node_name.is_empty() && is_our_scheduler(&self.scheduler_name) && !self.terminal && !self.deleting && !self.gated
    }

    /// nodeSelector and required node affinity both hold.
    pub fn matches_node_affinity(&self, node: &NodeSpec) -> bool {
        self.node_selector.iter().all(|(k, v)| node.labels.get(k) == Some(v)) && self.required_node_affinity.as_ref().is_none_or(|s| s.matches(node))
    }

    pub fn has_pod_affinity_terms(&self) -> bool {
        !self.affinity.is_empty() || !self.anti_affinity.is_empty() || !self.preferred_affinity.is_empty() || !self.preferred_anti_affinity.is_empty()
    }
}

pub fn is_our_scheduler(name: &str) -> bool {
    name.is_empty() || name == DEFAULT_SCHEDULER
}

/// The few fields that decide whether a pod is ours to schedule, without reading the rest.
pub fn wants_scheduling(p: &Value) -> bool {
    str_at(p, "/spec/nodeName").is_empty()
        && is_our_scheduler(str_at(p, "/spec/schedulerName"))
        && !matches!(str_at(p, "/status/phase"), "Succeeded" | "Failed")
        && p.pointer("/metadata/deletionTimestamp").is_none_or(|d| d.is_null())
        && arr_at(p, "/spec/schedulingGates").is_empty()
}

pub fn pod_priority(p: &Value) -> i64 {
    int_of(p.pointer("/spec/priority")).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Nodes

#[derive(Clone, Debug, PartialEq)]
pub struct NodeSpec {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub ready: bool,
    pub allocatable: Resources,
    pub allowed_pods: i64,
}

impl NodeSpec {
    pub fn parse(n: &Value) -> NodeSpec {
        let alloc = n
            .pointer("/status/allocatable")
            .filter(|a| a.as_object().is_some_and(|m| !m.is_empty()))
            .or_else(|| n.pointer("/status/capacity"));
        let allowed_pods = alloc.and_then(|a| a.get("pods")).and_then(quantity_of).map(|q| value(&q)).unwrap_or(0);
        let ready = arr_at(n, "/status/conditions")
            .iter()
            .any(|c| str_at(c, "/type") == "Ready" && str_at(c, "/status") == "True");
        NodeSpec {
            name: str_at(n, "/metadata/name").to_string(),
            labels: labels_of(n),
            taints: parse_taints(arr_at(n, "/spec/taints")),
            unschedulable: n.pointer("/spec/unschedulable").and_then(|u| u.as_bool()).unwrap_or(false),
            ready,
            allocatable: Resources::from_list(alloc),
            allowed_pods,
        }
    }

    /// The zone a node is in, for interleaving zones in the order nodes are tried.
    pub fn zone(&self) -> String {
        let region = self.labels.get(LABEL_REGION).map(|s| s.as_str()).unwrap_or("");
        let zone = self.labels.get(LABEL_ZONE).map(|s| s.as_str()).unwrap_or("");
        if region.is_empty() && zone.is_empty() {
            String::new()
        } else {
            format!("{region}\x00{zone}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_round_up_like_kubernetes() {
        let cases = [
            ("100m", 100, 1),
            ("1", 1000, 1),
            ("0.5", 500, 1),
            ("1.5", 1500, 2),
            ("2500u", 3, 1),
            ("1n", 1, 1),
            ("1Gi", 1073741824000, 1073741824),
            ("1.5Gi", 1610612736000, 1610612736),
            ("129M", 129000000000, 129000000),
            ("0.1", 100, 1),
        ];
        for (s, milli, val) in cases {
            let q = Quantity::parse(s).unwrap();
            assert_eq!(milli_value(&q), milli, "milli {s}");
            assert_eq!(value(&q), val, "value {s}");
        }
    }

    #[test]
    fn init_containers_sidecars_and_overhead() {
        let c = |cpu: &str, mem: &str| json!({"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}});
        let cases: Vec<(Value, i64, i64)> = vec![
            // (spec, cpu millis, memory bytes)
            (json!({"containers": [c("100m", "1Mi"), c("200m", "2Mi")]}), 300, 3 << 20),
            // An init container bigger than the app sum decides.
            (json!({"containers": [c("100m", "1Mi")], "initContainers": [c("1", "1Mi")]}), 1000, 1 << 20),
            // Smaller init containers do not add to the app sum.
            (
                json!({"containers": [c("500m", "4Mi")], "initContainers": [c("200m", "8Mi"), c("300m", "1Mi")]}),
                500,
                8 << 20,
            ),
            // A sidecar adds to the app containers and to later init containers.
            (
                json!({"containers": [c("100m", "1Mi")], "initContainers": [
                    {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "200m", "memory": "1Mi"}}},
                    c("250m", "1Mi")]}),
                450,
                2 << 20,
            ),
            // Overhead is added on top.
            (
                json!({"containers": [c("100m", "1Mi")], "overhead": {"cpu": "50m", "memory": "1Mi"}}),
                150,
                2 << 20,
            ),
            // Limits stand in for absent requests.
            (json!({"containers": [{"name": "l", "resources": {"limits": {"cpu": "300m"}}}]}), 300, 0),
        ];
        for (i, (spec, cpu, mem)) in cases.into_iter().enumerate() {
            let (r, _, _) = pod_requests(&spec);
            assert_eq!((r.milli_cpu, r.memory), (cpu, mem), "case {i}");
        }
        let (_, nzc, nzm) = pod_requests(&json!({"containers": [{"name": "x"}]}));
        assert_eq!((nzc, nzm), (DEFAULT_MILLI_CPU_REQUEST, DEFAULT_MEMORY_REQUEST));
    }

    #[test]
    fn tolerations_table() {
        let taint = |k: &str, v: &str, e: &str| Taint {
            key: k.into(),
            value: v.into(),
            effect: e.into(),
        };
        let tol = |k: &str, op: &str, v: &str, e: &str| Toleration {
            key: k.into(),
            operator: op.into(),
            value: v.into(),
            effect: e.into(),
        };
        let t = taint("dedicated", "gpu", "NoSchedule");
        let cases = [
            (tol("dedicated", "Equal", "gpu", "NoSchedule"), true),
            (tol("dedicated", "", "gpu", "NoSchedule"), true),
            (tol("dedicated", "Equal", "cpu", "NoSchedule"), false),
            (tol("dedicated", "Exists", "", "NoSchedule"), true),
            (tol("dedicated", "Exists", "", ""), true),
            (tol("dedicated", "Exists", "", "NoExecute"), false),
            (tol("", "Exists", "", ""), true),
            (tol("", "Exists", "", "NoSchedule"), true),
            (tol("other", "Exists", "", ""), false),
            (tol("dedicated", "Bogus", "gpu", ""), false),
        ];
        for (i, (tol, want)) in cases.iter().enumerate() {
            assert_eq!(tol.tolerates(&t), *want, "case {i}: {tol:?}");
        }
    }

    #[test]
    fn odd_shapes_do_not_panic() {
        for v in [
            json!(null),
            json!(5),
            json!({"spec": 3}),
            json!({"spec": {"containers": "x", "affinity": [1]}, "metadata": {"labels": 7}}),
        ] {
            let p = PodInfo::parse(&v);
            assert!(p.requests.is_zero());
            let _ = NodeSpec::parse(&v);
        }
        let p = PodInfo::parse(&json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "lots"}}}]}}));
        assert_eq!(p.requests.milli_cpu, 0);
    }
}
