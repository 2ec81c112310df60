//! The scheduler's view of the cluster, kept incrementally: per-node aggregates (requested
//! resources, pod count, host ports), the pods accounted on each node (bound ones from the
//! informer, and the scheduler's own assumed decisions before their binding is written), and
//! indexes that make pod (anti-)affinity and topology spreading cost proportional to the
//! matching pods rather than to every pod in the cluster:
//!
//! * queries: "pods matching this selector (in these namespaces)" → count per node, registered
//!   the first time a pending pod needs them and updated on every accounted pod change;
//! * term groups: the (anti-)affinity terms of accounted pods, grouped by identical term, with
//!   the nodes their pods are on, for the symmetric checks (existing pods' anti-affinity against
//!   the incoming pod, and existing pods' affinity preferences in scoring).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::types::{HostPort, NodeSpec, NsMatcher, PodAffinityTerm, PodInfo, Resources, SpreadConstraint, tolerated};
use apimachinery::selector::LabelSelector;

/// One node slot. A slot exists for every node name seen, on a Node object or on a pod;
/// `spec` is absent while pods name a node the cache has no Node object for.
#[derive(Debug, Default)]
pub struct NodeState {
    pub name: String,
    /// A hash of the name, for tie-breaking between equally good nodes.
    pub name_hash: u64,
    pub spec: Option<Arc<NodeSpec>>,
    pub requested: Resources,
    pub nonzero_cpu: i64,
    pub nonzero_mem: i64,
    pub pod_count: i64,
    pub ports: Vec<HostPort>,
}

/// A pod counted on a node.
#[derive(Debug)]
pub struct Acct {
    pub info: Arc<PodInfo>,
    pub node: u32,
    /// Placed by this scheduler and not yet seen bound in the informer.
    pub assumed: bool,
    groups: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupKind {
    /// requiredDuringScheduling pod anti-affinity: a filter on incoming pods it matches.
    RequiredAnti,
    /// requiredDuringScheduling pod affinity: scored with hardPodAffinityWeight (1).
    RequiredAffinity,
    /// Preferred affinity (positive weight) or anti-affinity (negative weight).
    Preferred,
}

/// Accounted pods sharing one identical (anti-)affinity term, by node.
#[derive(Debug)]
pub struct TermGroup {
    pub kind: GroupKind,
    pub weight: i64,
    pub term: PodAffinityTerm,
    pub per_node: SlotCounts,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// The pod matches every term (namespaces and selector).
    Terms(Vec<(NsMatcher, LabelSelector)>),
    /// The pod is controlled by this owner uid.
    Owner { namespace: String, uid: String },
}

#[derive(Debug)]
pub struct Query {
    matcher: Matcher,
    /// Terminating pods do not count (topology spreading ignores them).
    exclude_terminating: bool,
    pub per_node: SlotCounts,
    last_used: u64,
}

/// Which nodes count toward one spread constraint's domains, and which domains they form.
#[derive(Debug)]
pub struct Eligibility {
    generation: u64,
    eligible: Vec<bool>,
    /// By value id of the constraint's key ([`TopoIndex`]): some eligible node has it.
    pub domain_present: Vec<bool>,
    pub domains: usize,
}

impl Eligibility {
    pub fn eligible(&self, slot: u32) -> bool {
        self.eligible.get(slot as usize).copied().unwrap_or(false)
    }
}

pub const NO_VALUE: u32 = u32::MAX;

/// A topology key's values numbered, and each node slot's value: counting pods per domain
/// becomes array indexing instead of label lookups and string hashing.
#[derive(Debug)]
pub struct TopoIndex {
    generation: u64,
    slot_value: Vec<u32>,
    pub values: Vec<String>,
}

impl TopoIndex {
    /// The node's value id, or [`NO_VALUE`] when it lacks the key.
    pub fn value_of(&self, slot: u32) -> u32 {
        self.slot_value.get(slot as usize).copied().unwrap_or(NO_VALUE)
    }
}

pub type QueryId = usize;

#[derive(Default)]
pub struct Cache {
    pub nodes: Vec<NodeState>,
    node_index: HashMap<String, u32>,
    order: Vec<u32>,
    order_dirty: bool,
    /// Bumped when the node set or node labels/taints change (invalidates eligibility).
    node_gen: u64,
    pods: HashMap<String, Acct>,
    groups: HashMap<String, TermGroup>,
    queries: Vec<Option<Query>>,
    query_ids: HashMap<String, QueryId>,
    queries_by_ns: HashMap<String, Vec<QueryId>>,
    queries_any_ns: Vec<QueryId>,
    queries_by_owner: HashMap<String, Vec<QueryId>>,
    ns_labels: HashMap<String, BTreeMap<String, String>>,
    eligibility: HashMap<String, Arc<Eligibility>>,
    topology: HashMap<String, Arc<TopoIndex>>,
    tick: u64,
    gc_mark: u64,
}

/// A multiplicative hasher for node slot numbers: the per-node maps are looked up for every
/// candidate node of every pod, where SipHash would dominate.
#[derive(Default, Clone, Copy)]
pub struct SlotHasher(u64);

impl std::hash::Hasher for SlotHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ *b as u64).wrapping_mul(0x517cc1b727220a95);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x517cc1b727220a95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Node slot → count.
pub type SlotCounts = HashMap<u32, u32, std::hash::BuildHasherDefault<SlotHasher>>;

pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn bump(map: &mut SlotCounts, slot: u32, delta: i32) {
    if delta > 0 {
        *map.entry(slot).or_insert(0) += delta as u32;
    } else if let Some(c) = map.get_mut(&slot) {
        *c = c.saturating_sub((-delta) as u32);
        if *c == 0 {
            map.remove(&slot);
        }
    }
}

impl Cache {
    pub fn new() -> Cache {
        Cache {
            order_dirty: true,
            ..Default::default()
        }
    }

    // -----------------------------------------------------------------------------------------
    // Nodes

    pub fn slot(&self, name: &str) -> Option<u32> {
        self.node_index.get(name).copied()
    }

    fn slot_for(&mut self, name: &str) -> u32 {
        if let Some(s) = self.node_index.get(name) {
            return *s;
        }
        let s = self.nodes.len() as u32;
        self.nodes.push(NodeState {
            name: name.to_string(),
            name_hash: fnv(name.as_bytes()),
            ..Default::default()
        });
        self.node_index.insert(name.to_string(), s);
        s
    }

    pub fn node_name(&self, slot: u32) -> &str {
        self.nodes.get(slot as usize).map(|n| n.name.as_str()).unwrap_or("")
    }

    /// Adds or replaces a node; returns whether anything scheduling depends on changed.
    pub fn upsert_node(&mut self, spec: NodeSpec) -> bool {
        let slot = self.slot_for(&spec.name);
        let state = &mut self.nodes[slot as usize];
        match &state.spec {
            Some(old) if **old == spec => false,
            old => {
                let topo_changed = old.as_ref().is_none_or(|o| o.labels != spec.labels || o.taints != spec.taints);
                if old.as_ref().is_none_or(|o| o.zone() != spec.zone()) {
                    self.order_dirty = true;
                }
                if topo_changed {
                    self.node_gen += 1;
                }
                state.spec = Some(Arc::new(spec));
                true
            }
        }
    }

    pub fn remove_node(&mut self, name: &str) -> bool {
        let Some(slot) = self.slot(name) else { return false };
        let state = &mut self.nodes[slot as usize];
        if state.spec.take().is_none() {
            return false;
        }
        self.order_dirty = true;
        self.node_gen += 1;
        true
    }

    /// The nodes to try, zones interleaved (like Kubernetes' node tree) so that stopping after
    /// enough feasible nodes still samples every zone.
    pub fn live_nodes(&mut self) -> &[u32] {
        if self.order_dirty {
            let mut by_zone: BTreeMap<String, Vec<(&str, u32)>> = BTreeMap::new();
            for (i, n) in self.nodes.iter().enumerate() {
                if let Some(s) = &n.spec {
                    by_zone.entry(s.zone()).or_default().push((s.name.as_str(), i as u32));
                }
            }
            let mut zones: Vec<Vec<(&str, u32)>> = by_zone.into_values().collect();
            for z in &mut zones {
                z.sort();
            }
            let mut order = Vec::new();
            let longest = zones.iter().map(|z| z.len()).max().unwrap_or(0);
            for i in 0..longest {
                for z in &zones {
                    if let Some((_, s)) = z.get(i) {
                        order.push(*s);
                    }
                }
            }
            self.order = order;
            self.order_dirty = false;
        }
        &self.order
    }

    /// The order computed by the last [`Cache::live_nodes`] call.
    pub fn order(&self) -> &[u32] {
        &self.order
    }

    pub fn num_live_nodes(&mut self) -> usize {
        self.live_nodes().len()
    }

    pub fn ns_labels(&self, ns: &str) -> Option<&BTreeMap<String, String>> {
        self.ns_labels.get(ns)
    }

    /// Returns whether the labels changed. Queries that select namespaces by label are dropped
    /// (they are rebuilt on next use) since their counts depend on these labels.
    pub fn set_namespace(&mut self, ns: &str, labels: Option<BTreeMap<String, String>>) -> bool {
        let changed = match &labels {
            Some(l) => self.ns_labels.get(ns) != Some(l),
            None => self.ns_labels.contains_key(ns),
        };
        match labels {
            Some(l) => {
                self.ns_labels.insert(ns.to_string(), l);
            }
            None => {
                self.ns_labels.remove(ns);
            }
        }
        if changed {
            let ids: Vec<QueryId> = self.queries_any_ns.clone();
            for id in ids {
                self.drop_query(id);
            }
        }
        changed
    }

    // -----------------------------------------------------------------------------------------
    // Pods

    pub fn acct(&self, key: &str) -> Option<&Acct> {
        self.pods.get(key)
    }

    pub fn num_pods(&self) -> usize {
        self.pods.len()
    }

    pub fn assumed_keys(&self) -> Vec<String> {
        self.pods.iter().filter(|(_, a)| a.assumed).map(|(k, _)| k.clone()).collect()
    }

    pub fn pod_keys(&self) -> Vec<String> {
        self.pods.keys().cloned().collect()
    }

    /// Counts a pod on a node (replacing any previous accounting of the same key).
    pub fn add_pod(&mut self, info: Arc<PodInfo>, node_name: &str, assumed: bool) {
        self.remove_pod(&info.key);
        let slot = self.slot_for(node_name);
        let n = &mut self.nodes[slot as usize];
        n.requested.add(&info.requests);
        n.nonzero_cpu += info.nonzero_cpu;
        n.nonzero_mem += info.nonzero_mem;
        n.pod_count += 1;
        n.ports.extend(info.host_ports.iter().cloned());
        self.update_queries(&info, slot, 1);
        let groups = self.group_keys(&info);
        for (gk, kind, weight, term) in &groups {
            let g = self.groups.entry(gk.clone()).or_insert_with(|| TermGroup {
                kind: *kind,
                weight: *weight,
                term: term.clone(),
                per_node: SlotCounts::default(),
            });
            bump(&mut g.per_node, slot, 1);
        }
        let key = info.key.clone();
        self.pods.insert(
            key,
            Acct {
                info,
                node: slot,
                assumed,
                groups: groups.into_iter().map(|g| g.0).collect(),
            },
        );
    }

    /// Stops counting a pod; returns it and the node slot it was on.
    pub fn remove_pod(&mut self, key: &str) -> Option<(Arc<PodInfo>, u32, bool)> {
        let acct = self.pods.remove(key)?;
        let slot = acct.node;
        let info = acct.info;
        let n = &mut self.nodes[slot as usize];
        n.requested.sub(&info.requests);
        n.nonzero_cpu -= info.nonzero_cpu;
        n.nonzero_mem -= info.nonzero_mem;
        n.pod_count -= 1;
        for hp in &info.host_ports {
            if let Some(pos) = n.ports.iter().position(|p| p == hp) {
                n.ports.swap_remove(pos);
            }
        }
        self.update_queries(&info, slot, -1);
        for gk in &acct.groups {
            if let Some(g) = self.groups.get_mut(gk) {
                bump(&mut g.per_node, slot, -1);
                if g.per_node.is_empty() {
                    self.groups.remove(gk);
                }
            }
        }
        Some((info, slot, acct.assumed))
    }

    /// The informer shows the assumed pod bound: it is no longer an assumption.
    pub fn confirm(&mut self, key: &str) {
        if let Some(a) = self.pods.get_mut(key) {
            a.assumed = false;
        }
    }

    fn group_keys(&self, info: &PodInfo) -> Vec<(String, GroupKind, i64, PodAffinityTerm)> {
        let mut out = Vec::new();
        let ns = &info.namespace;
        for t in &info.anti_affinity {
            out.push((format!("RA|{ns}|{}", t.canon), GroupKind::RequiredAnti, 0, t.clone()));
        }
        for t in &info.affinity {
            out.push((format!("RF|{ns}|{}", t.canon), GroupKind::RequiredAffinity, 1, t.clone()));
        }
        for (w, t) in &info.preferred_affinity {
            out.push((format!("P|{w}|{ns}|{}", t.canon), GroupKind::Preferred, *w, t.clone()));
        }
        for (w, t) in &info.preferred_anti_affinity {
            out.push((format!("P|-{w}|{ns}|{}", t.canon), GroupKind::Preferred, -*w, t.clone()));
        }
        out
    }

    pub fn groups(&self) -> impl Iterator<Item = &TermGroup> {
        self.groups.values()
    }

    pub fn has_groups(&self) -> bool {
        !self.groups.is_empty()
    }

    // -----------------------------------------------------------------------------------------
    // Queries

    fn matches(&self, q: &Query, info: &PodInfo) -> bool {
        if q.exclude_terminating && info.deleting {
            return false;
        }
        match &q.matcher {
            Matcher::Terms(terms) => {
                let nsl = self.ns_labels.get(&info.namespace);
                terms.iter().all(|(ns, sel)| ns.matches(&info.namespace, nsl) && sel.matches(&info.labels))
            }
            Matcher::Owner { namespace, uid } => info.namespace == *namespace && info.spread_owner.as_deref() == Some(uid.as_str()),
        }
    }

    fn update_queries(&mut self, info: &PodInfo, slot: u32, delta: i32) {
        if self.queries_by_ns.is_empty() && self.queries_any_ns.is_empty() && self.queries_by_owner.is_empty() {
            return;
        }
        let mut ids: Vec<QueryId> = Vec::new();
        if let Some(v) = self.queries_by_ns.get(&info.namespace) {
            ids.extend_from_slice(v);
        }
        ids.extend_from_slice(&self.queries_any_ns);
        if let Some(uid) = &info.spread_owner
            && let Some(v) = self.queries_by_owner.get(uid)
        {
            ids.extend_from_slice(v);
        }
        for id in ids {
            let hit = match self.queries.get(id).and_then(|q| q.as_ref()) {
                Some(q) => self.matches(q, info),
                None => false,
            };
            if hit && let Some(Some(q)) = self.queries.get_mut(id) {
                bump(&mut q.per_node, slot, delta);
            }
        }
    }

    fn register(&mut self, key: String, matcher: Matcher, exclude_terminating: bool) -> QueryId {
        self.tick += 1;
        if let Some(id) = self.query_ids.get(&key) {
            if let Some(Some(q)) = self.queries.get_mut(*id) {
                q.last_used = self.tick;
            }
            return *id;
        }
        let mut q = Query {
            matcher,
            exclude_terminating,
            per_node: SlotCounts::default(),
            last_used: self.tick,
        };
        for a in self.pods.values() {
            if self.matches(&q, &a.info) {
                bump(&mut q.per_node, a.node, 1);
            }
        }
        let id = match self.queries.iter().position(|q| q.is_none()) {
            Some(free) => free,
            None => {
                self.queries.push(None);
                self.queries.len() - 1
            }
        };
        match &q.matcher {
            Matcher::Owner { uid, .. } => self.queries_by_owner.entry(uid.clone()).or_default().push(id),
            Matcher::Terms(terms) => {
                // A query can skip pods of other namespaces only if every term names its
                // namespaces explicitly and they share one.
                let single = terms.iter().all(|(ns, _)| !ns.uses_selector() && ns.names.len() == 1) && terms.windows(2).all(|w| w[0].0.names == w[1].0.names);
                match terms.first() {
                    Some((ns, _)) if single => self.queries_by_ns.entry(ns.names[0].clone()).or_default().push(id),
                    _ => self.queries_any_ns.push(id),
                }
            }
        }
        self.queries[id] = Some(q);
        self.query_ids.insert(key, id);
        id
    }

    fn drop_query(&mut self, id: QueryId) {
        let Some(q) = self.queries.get_mut(id).and_then(|q| q.take()) else { return };
        self.query_ids.retain(|_, v| *v != id);
        match q.matcher {
            Matcher::Owner { uid, .. } => {
                if let Some(v) = self.queries_by_owner.get_mut(&uid) {
                    v.retain(|x| *x != id);
                    if v.is_empty() {
                        self.queries_by_owner.remove(&uid);
                    }
                }
            }
            Matcher::Terms(_) => {
                self.queries_any_ns.retain(|x| *x != id);
                self.queries_by_ns.retain(|_, v| {
                    v.retain(|x| *x != id);
                    !v.is_empty()
                });
            }
        }
    }

    /// Pods matching every one of `terms` (affinity terms are satisfied by a pod matching all).
    pub fn query_all_terms(&mut self, terms: &[PodAffinityTerm]) -> QueryId {
        let key = format!("A|{}", terms.iter().map(|t| t.canon.as_str()).collect::<Vec<_>>().join("&"));
        let m = Matcher::Terms(terms.iter().map(|t| (t.namespaces.clone(), t.selector.clone())).collect());
        self.register(key, m, false)
    }

    pub fn query_term(&mut self, term: &PodAffinityTerm) -> QueryId {
        let key = format!("T|{}", term.canon);
        self.register(key, Matcher::Terms(vec![(term.namespaces.clone(), term.selector.clone())]), false)
    }

    pub fn query_spread(&mut self, namespace: &str, c: &SpreadConstraint) -> QueryId {
        let key = format!("S|{namespace}|{}", c.canon);
        let ns = NsMatcher {
            names: vec![namespace.to_string()],
            selector: None,
        };
        self.register(key, Matcher::Terms(vec![(ns, c.selector.clone())]), true)
    }

    pub fn query_owner(&mut self, namespace: &str, uid: &str) -> QueryId {
        let key = format!("O|{namespace}|{uid}");
        self.register(
            key,
            Matcher::Owner {
                namespace: namespace.to_string(),
                uid: uid.to_string(),
            },
            true,
        )
    }

    pub fn query_nodes(&self, id: QueryId) -> &SlotCounts {
        static EMPTY: std::sync::OnceLock<SlotCounts> = std::sync::OnceLock::new();
        self.queries
            .get(id)
            .and_then(|q| q.as_ref())
            .map(|q| &q.per_node)
            .unwrap_or_else(|| EMPTY.get_or_init(SlotCounts::default))
    }

    /// Forgets queries no pending pod used since the previous call, and eligibilities of a past
    /// node generation; call it every few minutes.
    pub fn gc(&mut self) {
        let mark = self.gc_mark;
        let old: Vec<QueryId> = self
            .queries
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.as_ref().filter(|q| q.last_used <= mark).map(|_| i))
            .collect();
        for id in old {
            self.drop_query(id);
        }
        self.gc_mark = self.tick;
        let g = self.node_gen;
        self.eligibility.retain(|_, e| e.generation == g);
        self.topology.retain(|_, t| t.generation == g);
    }

    pub fn num_queries(&self) -> usize {
        self.query_ids.len()
    }

    // -----------------------------------------------------------------------------------------
    // Spread eligibility

    /// The values of a topology key over the current nodes.
    pub fn topology(&mut self, key: &str) -> Arc<TopoIndex> {
        let generation = self.node_gen;
        if let Some(t) = self.topology.get(key).filter(|t| t.generation == generation) {
            return t.clone();
        }
        let mut ids: HashMap<&str, u32> = HashMap::new();
        let mut values = Vec::new();
        let mut slot_value = vec![NO_VALUE; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(v) = n.spec.as_ref().and_then(|s| s.labels.get(key)) {
                slot_value[i] = *ids.entry(v.as_str()).or_insert_with(|| {
                    values.push(v.clone());
                    (values.len() - 1) as u32
                });
            }
        }
        let t = Arc::new(TopoIndex {
            generation,
            slot_value,
            values,
        });
        self.topology.insert(key.to_string(), t.clone());
        t
    }

    /// The nodes counted for a spread constraint: they have every key in `keys`, and pass the
    /// pod's node affinity / tolerate its taints when the constraint's policies say so.
    pub fn eligibility(&mut self, pod: &PodInfo, c: &SpreadConstraint, keys: &[&str]) -> Arc<Eligibility> {
        let aff = if c.honor_affinity { pod.node_affinity_sig.as_str() } else { "" };
        let taints = if c.honor_taints { format!("{:?}", pod.tolerations) } else { String::new() };
        let key = format!("{aff}|{taints}|{keys:?}|{}", c.topology_key);
        let generation = self.node_gen;
        if let Some(e) = self.eligibility.get(&key).filter(|e| e.generation == generation) {
            return e.clone();
        }
        if self.eligibility.len() > 4096 {
            self.eligibility.clear();
        }
        let topo = self.topology(&c.topology_key);
        let mut eligible = vec![false; self.nodes.len()];
        let mut domain_present = vec![false; topo.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            let Some(spec) = &n.spec else { continue };
            let v = topo.value_of(i as u32);
            if v == NO_VALUE || !keys.iter().all(|k| spec.labels.contains_key(*k)) {
                continue;
            }
            if c.honor_affinity && !pod.matches_node_affinity(spec) {
                continue;
            }
            if c.honor_taints
                && spec
                    .taints
                    .iter()
                    .any(|t| (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerated(&pod.tolerations, t))
            {
                continue;
            }
            eligible[i] = true;
            domain_present[v as usize] = true;
        }
        let domains = domain_present.iter().filter(|p| **p).count();
        let e = Arc::new(Eligibility {
            generation,
            eligible,
            domain_present,
            domains,
        });
        self.eligibility.insert(key, e.clone());
        e
    }
}
