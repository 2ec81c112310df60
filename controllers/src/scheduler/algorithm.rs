//! One scheduling decision: the filters (in Kubernetes' default plugin order, so the first one
//! failing names the reason a node is unsuitable), the scores with Kubernetes' default plugin
//! weights and normalizations, and the choice among the best nodes.
//!
//! Everything here is synchronous and reads the [`Cache`]; the only mutation is registering
//! the pod-count queries a pod needs, so it can be table-tested without a cluster.

use std::borrow::Cow;
use std::collections::BTreeMap;

use std::sync::Arc;

use super::cache::{Cache, GroupKind, NO_VALUE, NodeState, QueryId, TermGroup, TopoIndex, fnv};
use super::types::{LABEL_HOSTNAME, LABEL_ZONE, NodeSpec, PodInfo, SpreadConstraint, TAINT_NOT_READY, TAINT_UNSCHEDULABLE, Toleration, tolerated};

/// Which filter failed, as a bit, so unschedulable pods are retried only on cluster events
/// that could help them (Kubernetes' queueing hints, coarsely).
pub const P_NODE: u32 = 1;
pub const P_PORTS: u32 = 2;
pub const P_FIT: u32 = 4;
pub const P_SPREAD: u32 = 8;
pub const P_AFFINITY: u32 = 16;
pub const P_ANTI: u32 = 32;
pub const P_ALL: u32 = 63;

pub const MAX_NODE_SCORE: i64 = 100;

/// Kubernetes' default score plugin weights, in the order of [`Scores`]' fields.
pub const WEIGHT_FIT: i64 = 1;
pub const WEIGHT_BALANCED: i64 = 1;
pub const WEIGHT_TAINT: i64 = 3;
pub const WEIGHT_NODE_AFFINITY: i64 = 2;
pub const WEIGHT_INTER_POD: i64 = 2;
pub const WEIGHT_SPREAD: i64 = 2;

/// `numFeasibleNodesToFind` with the adaptive percentage: all nodes below 100, otherwise
/// (50 − nodes/125)% (at least 5%) and at least 100 nodes.
pub fn num_feasible_nodes_to_find(all: usize) -> usize {
    const MIN_FEASIBLE: usize = 100;
    if all < MIN_FEASIBLE {
        return all;
    }
    let pct = (50i64 - (all / 125) as i64).max(5) as usize;
    (all * pct / 100).max(MIN_FEASIBLE)
}

// -------------------------------------------------------------------------------------------------
// Filters

#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    Unschedulable,
    NotReady,
    Taint { key: String, value: String },
    NodeAffinity,
    Ports,
    Resources(Vec<Cow<'static, str>>),
    SpreadMissingLabel,
    Spread,
    Affinity,
    AntiAffinity,
    ExistingAntiAffinity,
}

impl Failure {
    pub fn reasons(&self) -> Vec<Cow<'static, str>> {
        let s: &'static str = match self {
            Failure::Unschedulable => "node(s) were unschedulable",
            Failure::NotReady => return vec![Cow::Owned(format!("node(s) had untolerated taint {{{TAINT_NOT_READY}: }}"))],
            Failure::Taint { key, value } => return vec![Cow::Owned(format!("node(s) had untolerated taint {{{key}: {value}}}"))],
            Failure::NodeAffinity => "node(s) didn't match Pod's node affinity/selector",
            Failure::Ports => "node(s) didn't have free ports for the requested pod ports",
            Failure::Resources(r) => return r.clone(),
            Failure::SpreadMissingLabel => "node(s) didn't match pod topology spread constraints (missing required label)",
            Failure::Spread => "node(s) didn't match pod topology spread constraints",
            Failure::Affinity => "node(s) didn't match pod affinity rules",
            Failure::AntiAffinity => "node(s) didn't match pod anti-affinity rules",
            Failure::ExistingAntiAffinity => "node(s) didn't satisfy existing pods anti-affinity rules",
        };
        vec![Cow::Borrowed(s)]
    }

    pub fn mask(&self) -> u32 {
        match self {
            Failure::Unschedulable | Failure::NotReady | Failure::Taint { .. } | Failure::NodeAffinity | Failure::SpreadMissingLabel => P_NODE,
            Failure::Ports => P_PORTS,
            Failure::Resources(_) => P_FIT,
            Failure::Spread => P_SPREAD,
            Failure::Affinity => P_AFFINITY,
            Failure::AntiAffinity | Failure::ExistingAntiAffinity => P_ANTI,
        }
    }
}

/// Why no node fits, per reason over all nodes (Kubernetes' `FitError`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FitError {
    pub num_nodes: usize,
    pub reasons: BTreeMap<Cow<'static, str>, usize>,
    pub mask: u32,
}

impl FitError {
    /// `0/5 nodes are available: 2 Insufficient cpu, 3 node(s) had untolerated taint {a: b}.`
    /// with the "count reason" strings sorted as strings, as Kubernetes does.
    pub fn message(&self) -> String {
        if self.num_nodes == 0 {
            return "no nodes available to schedule pods".to_string();
        }
        let mut parts: Vec<String> = self.reasons.iter().map(|(r, c)| format!("{c} {r}")).collect();
        parts.sort();
        format!("0/{} nodes are available: {}.", self.num_nodes, parts.join(", "))
    }

    fn add(&mut self, f: &Failure, times: usize) {
        self.mask |= f.mask();
        for r in f.reasons() {
            *self.reasons.entry(r).or_insert(0) += times;
        }
    }
}

/// Tolerates a taint of this key and effect with an empty value (the node-condition taints).
fn tolerates_key_effect(tols: &[Toleration], key: &str, effect: &str) -> bool {
    tols.iter().any(|t| {
        (t.effect.is_empty() || t.effect == effect)
            && (t.key.is_empty() || t.key == key)
            && match t.operator.as_str() {
                "Exists" => true,
                "" | "Equal" => t.value.is_empty(),
                _ => false,
            }
    })
}

/// NodeResourcesFit: the reasons the pod does not fit the node's free resources (empty: fits).
pub fn insufficient_resources(node: &NodeState, spec: &NodeSpec, pod: &PodInfo) -> Vec<Cow<'static, str>> {
    let mut out = Vec::new();
    if node.pod_count + 1 > spec.allowed_pods {
        out.push(Cow::Borrowed("Too many pods"));
    }
    let r = &pod.requests;
    if r.is_zero() {
        return out;
    }
    let a = &spec.allocatable;
    let used = &node.requested;
    if r.milli_cpu > 0 && r.milli_cpu > a.milli_cpu - used.milli_cpu {
        out.push(Cow::Borrowed("Insufficient cpu"));
    }
    if r.memory > 0 && r.memory > a.memory - used.memory {
        out.push(Cow::Borrowed("Insufficient memory"));
    }
    if r.ephemeral_storage > 0 && r.ephemeral_storage > a.ephemeral_storage - used.ephemeral_storage {
        out.push(Cow::Borrowed("Insufficient ephemeral-storage"));
    }
    for (name, want) in &r.scalar {
        if *want > 0 && *want > a.scalar(name) - used.scalar(name) {
            out.push(Cow::Owned(format!("Insufficient {name}")));
        }
    }
    out
}

/// Counts per value of one topology key, indexed by value id.
#[derive(Debug)]
struct KeyCounts {
    key: String,
    topo: Arc<TopoIndex>,
    counts: Vec<i64>,
    /// Some pod was counted (Kubernetes: the pair map is not empty).
    any: bool,
}

impl KeyCounts {
    fn at(&self, slot: u32) -> i64 {
        match self.topo.value_of(slot) {
            NO_VALUE => 0,
            v => self.counts[v as usize],
        }
    }
}

/// Counts per (topology key, value) for the pairs a filter or score looks at.
#[derive(Debug, Default)]
struct TopoCounts(Vec<KeyCounts>);

impl TopoCounts {
    fn entry(&mut self, cache: &mut Cache, key: &str) -> &mut KeyCounts {
        let i = match self.0.iter().position(|k| k.key == key) {
            Some(i) => i,
            None => {
                let topo = cache.topology(key);
                self.0.push(KeyCounts {
                    key: key.to_string(),
                    counts: vec![0; topo.values.len()],
                    topo,
                    any: false,
                });
                self.0.len() - 1
            }
        };
        &mut self.0[i]
    }

    fn get(&self, key: &str) -> Option<&KeyCounts> {
        self.0.iter().find(|k| k.key == key)
    }

    fn at(&self, key: &str, slot: u32) -> i64 {
        self.get(key).map(|k| k.at(slot)).unwrap_or(0)
    }

    fn any(&self) -> bool {
        self.0.iter().any(|k| k.any)
    }

    /// Adds `mult` per pod of a query, to the domain of the node each is on.
    fn add_query(&mut self, cache: &mut Cache, id: QueryId, key: &str, mult: i64) {
        let kc = self.entry(cache, key);
        for (&slot, &c) in cache.query_nodes(id) {
            let v = kc.topo.value_of(slot);
            if v != NO_VALUE {
                kc.counts[v as usize] += mult * c as i64;
                kc.any = true;
            }
        }
    }

    /// Adds the term groups that `pick` selects (weight per pod), by the groups' keys.
    fn add_groups(&mut self, cache: &mut Cache, pick: impl Fn(&TermGroup) -> Option<i64>) {
        let keys: Vec<String> = cache.groups().filter(|g| pick(g).is_some()).map(|g| g.term.topology_key.clone()).collect();
        for k in &keys {
            self.entry(cache, k);
        }
        for g in cache.groups() {
            let Some(w) = pick(g) else { continue };
            let Some(kc) = self.0.iter_mut().find(|k| k.key == g.term.topology_key) else {
                continue;
            };
            for (&slot, &c) in &g.per_node {
                let v = kc.topo.value_of(slot);
                if v != NO_VALUE {
                    kc.counts[v as usize] += w * c as i64;
                    kc.any = true;
                }
            }
        }
    }
}

#[derive(Debug, Default)]
struct AffinityFilter {
    counts: TopoCounts,
    self_match: bool,
}

#[derive(Debug)]
struct SpreadFilter {
    topo: Arc<TopoIndex>,
    max_skew: i64,
    self_match: i64,
    min: i64,
    /// Matching pods by value id of the key, over eligible nodes.
    counts: Vec<i64>,
}

/// What the filters need computed once per pod (Kubernetes' PreFilter state).
#[derive(Debug, Default)]
pub struct PreFilter {
    /// The only candidate nodes when node affinity pins names (DaemonSet pods).
    pinned: Option<Vec<u32>>,
    affinity: Option<AffinityFilter>,
    anti: TopoCounts,
    /// Domains where an existing pod's anti-affinity term matches the pod.
    existing_anti: TopoCounts,
    spread: Vec<SpreadFilter>,
}

fn spec_of(cache: &Cache, slot: u32) -> Option<&NodeSpec> {
    cache.nodes.get(slot as usize).and_then(|n| n.spec.as_deref())
}

/// Matching pods per domain (value id of `c.topology_key`) over the nodes eligible for the
/// constraint, and the global minimum over the eligible domains (Kubernetes' critical path):
/// 0 while there are fewer domains than minDomains.
fn spread_counts(cache: &mut Cache, pod: &PodInfo, c: &SpreadConstraint, keys: &[&str], id: QueryId) -> (Arc<TopoIndex>, Vec<i64>, i64) {
    let topo = cache.topology(&c.topology_key);
    let elig = cache.eligibility(pod, c, keys);
    let mut counts = vec![0i64; topo.values.len()];
    for (&slot, &n) in cache.query_nodes(id) {
        let v = topo.value_of(slot);
        if v != NO_VALUE && elig.eligible(slot) {
            counts[v as usize] += n as i64;
        }
    }
    let min = if elig.domains < c.min_domains.max(0) as usize {
        0
    } else {
        counts.iter().zip(&elig.domain_present).filter(|(_, p)| **p).map(|(n, _)| *n).min().unwrap_or(0)
    };
    (topo, counts, min)
}

pub fn pre_filter(cache: &mut Cache, pod: &PodInfo) -> PreFilter {
    let mut pre = PreFilter {
        pinned: pod
            .required_node_affinity
            .as_ref()
            .and_then(|s| s.pinned_names())
            .map(|names| names.iter().filter_map(|n| cache.slot(n)).filter(|s| spec_of(cache, *s).is_some()).collect()),
        ..Default::default()
    };

    if !pod.affinity.is_empty() {
        let id = cache.query_all_terms(&pod.affinity);
        let mut counts = TopoCounts::default();
        for t in &pod.affinity {
            // Only "some pod in the domain" matters: count each distinct key once.
            if counts.get(&t.topology_key).is_none() {
                counts.add_query(cache, id, &t.topology_key, 1);
            }
        }
        let nsl = cache.ns_labels(&pod.namespace);
        let self_match = pod.affinity.iter().all(|t| t.matches_pod(&pod.namespace, &pod.labels, nsl));
        pre.affinity = Some(AffinityFilter { counts, self_match });
    }

    for t in &pod.anti_affinity {
        let id = cache.query_term(t);
        pre.anti.add_query(cache, id, &t.topology_key, 1);
    }

    if cache.has_groups() {
        let nsl = cache.ns_labels(&pod.namespace).cloned();
        pre.existing_anti.add_groups(cache, |g| {
            (g.kind == GroupKind::RequiredAnti && g.term.matches_pod(&pod.namespace, &pod.labels, nsl.as_ref())).then_some(1)
        });
    }

    let hard: Vec<&SpreadConstraint> = pod.spread.iter().filter(|c| c.hard).collect();
    let keys: Vec<&str> = hard.iter().map(|c| c.topology_key.as_str()).collect();
    for c in hard {
        let id = cache.query_spread(&pod.namespace, c);
        let (topo, counts, min) = spread_counts(cache, pod, c, &keys, id);
        pre.spread.push(SpreadFilter {
            topo,
            max_skew: c.max_skew,
            self_match: c.selector.matches(&pod.labels) as i64,
            min,
            counts,
        });
    }
    pre
}

/// Every filter, in Kubernetes' default order; the first failure decides the node's reason.
pub fn filter_node(pod: &PodInfo, pre: &PreFilter, slot: u32, node: &NodeState) -> Option<Failure> {
    let Some(spec) = node.spec.as_deref() else {
        return Some(Failure::NodeAffinity);
    };
    // NodeUnschedulable (and readiness, which Kubernetes expresses as the not-ready taint).
    if spec.unschedulable && !tolerates_key_effect(&pod.tolerations, TAINT_UNSCHEDULABLE, "NoSchedule") {
        return Some(Failure::Unschedulable);
    }
    if !spec.ready && !tolerates_key_effect(&pod.tolerations, TAINT_NOT_READY, "NoSchedule") {
        return Some(Failure::NotReady);
    }
    // TaintToleration
    for t in &spec.taints {
        if (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerated(&pod.tolerations, t) {
            return Some(Failure::Taint {
                key: t.key.clone(),
                value: t.value.clone(),
            });
        }
    }
    // NodeAffinity
    if !pod.matches_node_affinity(spec) {
        return Some(Failure::NodeAffinity);
    }
    // NodePorts
    if pod.host_ports.iter().any(|want| node.ports.iter().any(|used| used.conflicts(want))) {
        return Some(Failure::Ports);
    }
    // NodeResourcesFit
    let missing = insufficient_resources(node, spec, pod);
    if !missing.is_empty() {
        return Some(Failure::Resources(missing));
    }
    // PodTopologySpread
    for sf in &pre.spread {
        let v = sf.topo.value_of(slot);
        if v == NO_VALUE {
            return Some(Failure::SpreadMissingLabel);
        }
        let matched = sf.counts[v as usize];
        if matched + sf.self_match - sf.min > sf.max_skew {
            return Some(Failure::Spread);
        }
    }
    // InterPodAffinity
    if let Some(a) = &pre.affinity {
        let mut pods_exist = true;
        for t in &pod.affinity {
            let Some(kc) = a.counts.get(&t.topology_key) else {
                return Some(Failure::Affinity);
            };
            if kc.topo.value_of(slot) == NO_VALUE {
                return Some(Failure::Affinity);
            }
            if kc.at(slot) <= 0 {
                pods_exist = false;
            }
        }
        // The first pod of a group that has affinity to itself may go anywhere its terms'
        // topology keys exist, or it could never be scheduled.
        if !(pods_exist || (!a.counts.any() && a.self_match)) {
            return Some(Failure::Affinity);
        }
    }
    if pre.anti.any() && pod.anti_affinity.iter().any(|t| pre.anti.at(&t.topology_key, slot) > 0) {
        return Some(Failure::AntiAffinity);
    }
    if pre.existing_anti.0.iter().any(|kc| kc.at(slot) > 0) {
        return Some(Failure::ExistingAntiAffinity);
    }
    None
}

/// Filters nodes from the rotating start until enough are feasible; the reasons cover every
/// node when none is.
pub fn find_feasible(cache: &mut Cache, pod: &PodInfo, pre: &PreFilter, next_start: &mut usize) -> (Vec<u32>, FitError) {
    cache.live_nodes();
    let all = cache.order();
    let mut diag = FitError {
        num_nodes: all.len(),
        ..Default::default()
    };
    let mut feasible = Vec::new();
    let candidates: &[u32] = match &pre.pinned {
        Some(p) => {
            let others = all.len().saturating_sub(p.len());
            if others > 0 {
                diag.mask |= P_NODE;
                *diag
                    .reasons
                    .entry(Cow::Borrowed("node(s) didn't satisfy plugin(s) [NodeAffinity]"))
                    .or_insert(0) += others;
            }
            p
        }
        None => all,
    };
    let n = candidates.len();
    if n == 0 {
        return (feasible, diag);
    }
    let want = num_feasible_nodes_to_find(n);
    let start = if pre.pinned.is_some() { 0 } else { *next_start % n };
    let mut processed = 0;
    for i in 0..n {
        let slot = candidates[(start + i) % n];
        processed += 1;
        match filter_node(pod, pre, slot, &cache.nodes[slot as usize]) {
            None => {
                feasible.push(slot);
                if feasible.len() >= want {
                    break;
                }
            }
            Some(f) => diag.add(&f, 1),
        }
    }
    if pre.pinned.is_none() {
        *next_start = (start + processed) % n;
    }
    (feasible, diag)
}

// -------------------------------------------------------------------------------------------------
// Scores

/// Normalized (0..=100) plugin scores of one node, before weighting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scores {
    pub fit: i64,
    pub balanced: i64,
    pub taint: i64,
    pub node_affinity: i64,
    pub inter_pod: i64,
    pub spread: i64,
}

impl Scores {
    pub fn total(&self) -> i64 {
        self.fit * WEIGHT_FIT
            + self.balanced * WEIGHT_BALANCED
            + self.taint * WEIGHT_TAINT
            + self.node_affinity * WEIGHT_NODE_AFFINITY
            + self.inter_pod * WEIGHT_INTER_POD
            + self.spread * WEIGHT_SPREAD
    }
}

/// NodeResourcesFit, LeastAllocated over cpu and memory (weights 1), with the non-zero
/// requests so that pods requesting nothing still spread.
pub fn least_allocated(node: &NodeState, spec: &NodeSpec, pod: &PodInfo) -> i64 {
    let mut total = 0;
    let mut weights = 0;
    for (req, alloc) in [
        (node.nonzero_cpu + pod.nonzero_cpu, spec.allocatable.milli_cpu),
        (node.nonzero_mem + pod.nonzero_mem, spec.allocatable.memory),
    ] {
        if alloc <= 0 {
            continue;
        }
        total += if req > alloc {
            0
        } else {
            ((alloc - req) as i128 * MAX_NODE_SCORE as i128 / alloc as i128) as i64
        };
        weights += 1;
    }
    if weights == 0 { 0 } else { total / weights }
}

/// NodeResourcesBalancedAllocation: 100 × (1 − std-dev of the cpu and memory fractions),
/// skipped (0 everywhere) for pods requesting neither.
pub fn balanced_allocation(node: &NodeState, spec: &NodeSpec, pod: &PodInfo) -> i64 {
    if pod.requests.milli_cpu == 0 && pod.requests.memory == 0 {
        return 0;
    }
    let mut fr = [0f64; 2];
    let mut n = 0;
    for (req, alloc) in [
        (node.requested.milli_cpu + pod.requests.milli_cpu, spec.allocatable.milli_cpu),
        (node.requested.memory + pod.requests.memory, spec.allocatable.memory),
    ] {
        if alloc <= 0 {
            continue;
        }
        fr[n] = (req as f64 / alloc as f64).min(1.0);
        n += 1;
    }
    let std = if n == 2 { ((fr[0] - fr[1]) / 2.0).abs() } else { 0.0 };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

/// TaintToleration's raw score: PreferNoSchedule taints the pod does not tolerate.
pub fn intolerable_prefer_no_schedule(spec: &NodeSpec, pod: &PodInfo) -> i64 {
    spec.taints
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule")
        .filter(|t| {
            !pod.tolerations
                .iter()
                .filter(|tol| tol.effect.is_empty() || tol.effect == "PreferNoSchedule")
                .any(|tol| tol.tolerates(t))
        })
        .count() as i64
}

/// NodeAffinity's raw score: the weights of the preferred terms the node matches.
pub fn preferred_node_affinity(spec: &NodeSpec, pod: &PodInfo) -> i64 {
    pod.preferred_node_affinity.iter().filter(|(_, t)| t.matches(spec)).map(|(w, _)| *w).sum()
}

/// `DefaultNormalizeScore`: scales to 0..=100 by the maximum, optionally reversed.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0).max(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

struct SpreadScoreConstraint {
    hostname: bool,
    max_skew: i64,
    id: QueryId,
    topo: Arc<TopoIndex>,
    /// By value id, over eligible nodes (unused for the hostname key: per-node counts).
    counts: Vec<i64>,
}

/// What scoring needs computed once per pod (Kubernetes' PreScore state).
#[derive(Default)]
pub struct ScorePlan {
    inter_pod: TopoCounts,
    spread: Vec<SpreadScoreConstraint>,
    spread_require_all: bool,
}

pub fn pre_score(cache: &mut Cache, pod: &PodInfo) -> ScorePlan {
    let mut plan = ScorePlan::default();

    for (w, t) in &pod.preferred_affinity {
        let id = cache.query_term(t);
        plan.inter_pod.add_query(cache, id, &t.topology_key, *w);
    }
    for (w, t) in &pod.preferred_anti_affinity {
        let id = cache.query_term(t);
        plan.inter_pod.add_query(cache, id, &t.topology_key, -*w);
    }
    if cache.has_groups() {
        // Existing pods' required affinity (hardPodAffinityWeight 1) and preferences.
        let nsl = cache.ns_labels(&pod.namespace).cloned();
        plan.inter_pod.add_groups(cache, |g| {
            (g.kind != GroupKind::RequiredAnti && g.term.matches_pod(&pod.namespace, &pod.labels, nsl.as_ref())).then_some(g.weight)
        });
    }

    // Soft spread constraints; a pod without any constraint gets Kubernetes' system default
    // ones (hostname skew 3, zone skew 5) over the pods of its ReplicaSet/StatefulSet.
    let explicit = !pod.spread.is_empty();
    let soft: Vec<SpreadConstraint> = if explicit {
        pod.spread.iter().filter(|c| !c.hard).cloned().collect()
    } else if pod.spread_owner.is_some() {
        [(LABEL_HOSTNAME, 3), (LABEL_ZONE, 5)]
            .into_iter()
            .map(|(k, skew)| SpreadConstraint {
                max_skew: skew,
                topology_key: k.to_string(),
                hard: false,
                selector: Default::default(),
                min_domains: 1,
                honor_affinity: true,
                honor_taints: false,
                canon: String::new(),
            })
            .collect()
    } else {
        Vec::new()
    };
    plan.spread_require_all = explicit;
    let all_keys: Vec<&str> = soft.iter().map(|c| c.topology_key.as_str()).collect();
    for c in &soft {
        let id = match (&pod.spread_owner, explicit) {
            (Some(owner), false) => cache.query_owner(&pod.namespace, owner),
            _ => cache.query_spread(&pod.namespace, c),
        };
        let own = [c.topology_key.as_str()];
        let keys: &[&str] = if explicit { &all_keys } else { &own };
        let hostname = c.topology_key == LABEL_HOSTNAME;
        let (topo, counts) = if hostname {
            (cache.topology(&c.topology_key), Vec::new())
        } else {
            let (topo, counts, _) = spread_counts(cache, pod, c, keys, id);
            (topo, counts)
        };
        plan.spread.push(SpreadScoreConstraint {
            hostname,
            max_skew: c.max_skew,
            id,
            topo,
            counts,
        });
    }
    plan
}

/// Normalized plugin scores of each feasible node.
pub fn score_nodes(cache: &Cache, pod: &PodInfo, plan: &ScorePlan, feasible: &[u32]) -> Vec<Scores> {
    let nodes: Vec<(&NodeState, &NodeSpec)> = feasible
        .iter()
        .filter_map(|s| cache.nodes.get(*s as usize))
        .filter_map(|n| n.spec.as_deref().map(|s| (n, s)))
        .collect();
    let mut out: Vec<Scores> = nodes
        .iter()
        .map(|(n, s)| Scores {
            fit: least_allocated(n, s, pod),
            balanced: balanced_allocation(n, s, pod),
            ..Default::default()
        })
        .collect();

    let mut taint: Vec<i64> = nodes.iter().map(|(_, s)| intolerable_prefer_no_schedule(s, pod)).collect();
    default_normalize(&mut taint, true);

    let mut node_aff: Vec<i64> = vec![0; nodes.len()];
    if !pod.preferred_node_affinity.is_empty() {
        node_aff = nodes.iter().map(|(_, s)| preferred_node_affinity(s, pod)).collect();
        default_normalize(&mut node_aff, false);
    }

    let mut inter: Vec<i64> = vec![0; nodes.len()];
    if plan.inter_pod.any() {
        let raw: Vec<i64> = feasible.iter().map(|slot| plan.inter_pod.0.iter().map(|kc| kc.at(*slot)).sum()).collect();
        let (min, max) = raw.iter().fold((0i64, 0i64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        if max > min {
            inter = raw
                .iter()
                .map(|v| (MAX_NODE_SCORE as f64 * ((v - min) as f64 / (max - min) as f64)) as i64)
                .collect();
        }
    }

    let spread = spread_scores(cache, plan, feasible);

    for (i, s) in out.iter_mut().enumerate() {
        s.taint = taint[i];
        s.node_affinity = node_aff[i];
        s.inter_pod = inter[i];
        s.spread = spread[i];
    }
    out
}

fn spread_scores(cache: &Cache, plan: &ScorePlan, feasible: &[u32]) -> Vec<i64> {
    if plan.spread.is_empty() {
        return vec![0; feasible.len()];
    }
    let ignored: Vec<bool> = feasible
        .iter()
        .map(|slot| plan.spread_require_all && plan.spread.iter().any(|c| c.topo.value_of(*slot) == NO_VALUE))
        .collect();
    let scored = ignored.iter().filter(|i| !**i).count();
    // Weight each constraint by ln(number of its domains among the candidates + 2), so that
    // small topologies are not watered down by big ones.
    let weights: Vec<f64> = plan
        .spread
        .iter()
        .map(|c| {
            let size = if c.hostname {
                scored
            } else {
                let mut seen = vec![false; c.topo.values.len()];
                for (slot, ig) in feasible.iter().zip(&ignored) {
                    let v = c.topo.value_of(*slot);
                    if !*ig && v != NO_VALUE {
                        seen[v as usize] = true;
                    }
                }
                seen.iter().filter(|s| **s).count()
            };
            ((size + 2) as f64).ln()
        })
        .collect();
    let raw: Vec<Option<i64>> = feasible
        .iter()
        .zip(&ignored)
        .map(|(slot, ig)| {
            if *ig {
                return None;
            }
            let mut score = 0f64;
            for (c, w) in plan.spread.iter().zip(&weights) {
                let v = c.topo.value_of(*slot);
                if v == NO_VALUE {
                    continue;
                }
                let cnt = if c.hostname {
                    cache.query_nodes(c.id).get(slot).copied().unwrap_or(0) as i64
                } else {
                    c.counts[v as usize]
                };
                score += cnt as f64 * w + (c.max_skew - 1) as f64;
            }
            Some(score.round() as i64)
        })
        .collect();
    let min = raw.iter().flatten().copied().min().unwrap_or(0);
    let max = raw.iter().flatten().copied().max().unwrap_or(0);
    raw.iter()
        .map(|r| match r {
            None => 0,
            Some(_) if max == 0 => MAX_NODE_SCORE,
            Some(s) => MAX_NODE_SCORE * (max + min - s) / max,
        })
        .collect()
}

/// A stable per-(pod, node) hash: ties between equally good nodes go to different nodes for
/// different pods, yet the same pod and cluster always give the same choice.
pub fn tie_hash(pod_hash: u64, node_hash: u64) -> u64 {
    let mut h = pod_hash ^ node_hash.wrapping_mul(0x9e3779b97f4a7c15);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ceb9fe1a85ec53);
    h ^ (h >> 33)
}

/// The best-scoring node, ties broken by [`tie_hash`].
pub fn select_host(cache: &Cache, pod: &PodInfo, feasible: &[u32], totals: &[i64]) -> Option<u32> {
    let best = totals.iter().copied().max()?;
    let pod_hash = fnv(pod.uid.as_bytes());
    feasible
        .iter()
        .zip(totals)
        .filter(|(_, t)| **t == best)
        .map(|(s, _)| *s)
        .min_by_key(|s| tie_hash(pod_hash, cache.nodes.get(*s as usize).map(|n| n.name_hash).unwrap_or(0)))
}

/// Chooses a node for the pod, or says why none fits.
pub fn schedule(cache: &mut Cache, pod: &PodInfo, next_start: &mut usize) -> Result<u32, FitError> {
    if cache.num_live_nodes() == 0 {
        return Err(FitError {
            mask: P_ALL,
            ..Default::default()
        });
    }
    let pre = pre_filter(cache, pod);
    let (feasible, diag) = find_feasible(cache, pod, &pre, next_start);
    match feasible.len() {
        0 => Err(diag),
        1 => Ok(feasible[0]),
        _ => {
            let plan = pre_score(cache, pod);
            let totals: Vec<i64> = score_nodes(cache, pod, &plan, &feasible).iter().map(|s| s.total()).collect();
            select_host(cache, pod, &feasible, &totals).ok_or(diag)
        }
    }
}
