//! The garbage collector: objects whose owners (`metadata.ownerReferences`) are all gone are
//! deleted; an owner deleted in the foreground (`foregroundDeletion` finalizer) is kept until its
//! blocking dependents are gone; an owner deleted with the orphan policy (`orphan` finalizer)
//! first has its references removed from its dependents.
//!
//! It watches every resource the registry serves and keeps a graph of who owns whom (owner uid
//! → dependents). The caches can lag the store, and an informer of one resource can be ahead of
//! another's, so an owner missing from the cache is confirmed missing by a fresh list before any
//! of its dependents is deleted: a dependent is never deleted while an owner with the uid it
//! names exists.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apimachinery::registry::{self, ResourceInfo};
use apimachinery::status::ApiError;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::Ctx;
use crate::client::{DeleteOptions, Resource};
use crate::informer::{Change, Informer, key_of};
use crate::queue::WorkQueue;
use crate::util;

pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
pub const ORPHAN_FINALIZER: &str = "orphan";
/// How often the whole graph is rebuilt from the caches and dangling references re-checked.
pub const RESCAN_PERIOD: Duration = Duration::from_secs(30);
const WORKERS: usize = 4;

/// One entry of `metadata.ownerReferences`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub block_owner_deletion: bool,
}

/// The object's owner references (entries without a uid are ignored: they name nothing).
pub fn owner_refs(obj: &Value) -> Vec<OwnerRef> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let g = |f: &str| r.get(f).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let uid = g("uid");
            (!uid.is_empty()).then(|| OwnerRef {
                api_version: g("apiVersion"),
                kind: g("kind"),
                name: g("name"),
                uid,
                block_owner_deletion: r.get("blockOwnerDeletion").and_then(|b| b.as_bool()).unwrap_or(false),
            })
        })
        .collect()
}

fn has_finalizer(obj: &Value, f: &str) -> bool {
    obj.pointer("/metadata/finalizers").and_then(|a| a.as_array()).is_some_and(|a| a.iter().any(|x| x.as_str() == Some(f)))
}

/// Being deleted and waiting for its blocking dependents to go first.
pub fn is_deleting_dependents(obj: &Value) -> bool {
    util::is_deleting(obj) && has_finalizer(obj, FOREGROUND_FINALIZER)
}

/// Being deleted and waiting for its dependents to be orphaned.
pub fn is_orphaning(obj: &Value) -> bool {
    util::is_deleting(obj) && has_finalizer(obj, ORPHAN_FINALIZER)
}

/// Where an owner reference points.
#[derive(Debug, Clone)]
pub enum OwnerLocation {
    /// The owner is the object of `resource` at `key` (`namespace/name`, or `name` when
    /// cluster-scoped), if that object has the referenced uid.
    At { resource: Resource, key: String },
    /// A cluster-scoped dependent naming a namespaced owner: no such owner can exist.
    Invalid,
    /// A kind this server does not serve: nothing can be concluded.
    UnknownKind,
}

impl PartialEq for OwnerLocation {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (OwnerLocation::At { resource: a, key: k }, OwnerLocation::At { resource: b, key: l }) => a.gvr() == b.gvr() && k == l,
            (OwnerLocation::Invalid, OwnerLocation::Invalid) | (OwnerLocation::UnknownKind, OwnerLocation::UnknownKind) => true,
            _ => false,
        }
    }
}

/// Resolves an owner reference of `dependent`: owners are looked up in the dependent's own
/// namespace (cross-namespace ownership does not exist) or cluster-wide.
pub fn resolve_owner(dependent: &Value, dependent_namespaced: bool, r: &OwnerRef) -> OwnerLocation {
    let (group, version) = registry::split_api_version(&r.api_version);
    let resource = registry::find_kind(&r.api_version, &r.kind)
        // Any served version of the group and kind names the same objects.
        .or_else(|| registry::resources().iter().find(|x| x.group == group && x.kind == r.kind && !version.is_empty()));
    let Some(resource) = resource else { return OwnerLocation::UnknownKind };
    if !resource.namespaced {
        return OwnerLocation::At { resource, key: r.name.clone() };
    }
    if !dependent_namespaced {
        return OwnerLocation::Invalid;
    }
    OwnerLocation::At { resource, key: format!("{}/{}", util::namespace(dependent), r.name) }
}

/// What is known of an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    Present,
    /// Present, being deleted in the foreground: its dependents must go.
    DeletingDependents,
    /// Confirmed gone (or impossible).
    Absent,
    /// Its kind is not served: treated as present, since nothing proves it gone.
    Unresolvable,
}

/// What to do with a dependent that is not itself being deleted.
#[derive(Debug, Clone, PartialEq)]
pub enum DependentAction {
    Keep,
    /// Some owners remain: drop the references (by uid) to the owners that are gone or deleting.
    RemoveOwnerRefs(Vec<String>),
    /// No owner remains. `unblock` lists owner uids whose references must first get
    /// `blockOwnerDeletion: false`: the dependent is deleted in the foreground and one of its own
    /// dependents is too, which smells of an ownership cycle that would otherwise deadlock.
    Delete { propagation: &'static str, unblock: Vec<String> },
}

/// What a dependent has of dependents of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnDependents {
    None,
    Some,
    /// Some, and one of them is being deleted in the foreground.
    SomeDeletingDependents,
}

/// Decides a dependent's fate from the state of each of its owners.
pub fn plan_dependent(dependent: &Value, owners: &[(OwnerRef, OwnerState)], own: OwnDependents) -> DependentAction {
    if owners.is_empty() {
        return DependentAction::Keep;
    }
    let solid = owners.iter().any(|(_, s)| matches!(s, OwnerState::Present | OwnerState::Unresolvable));
    let waiting: Vec<&OwnerRef> = owners.iter().filter(|(_, s)| *s == OwnerState::DeletingDependents).map(|(r, _)| r).collect();
    if solid {
        let drop: Vec<String> = owners.iter().filter(|(_, s)| matches!(s, OwnerState::Absent | OwnerState::DeletingDependents)).map(|(r, _)| r.uid.clone()).collect();
        return if drop.is_empty() { DependentAction::Keep } else { DependentAction::RemoveOwnerRefs(drop) };
    }
    let propagation = if has_finalizer(dependent, ORPHAN_FINALIZER) {
        "Orphan"
    } else if has_finalizer(dependent, FOREGROUND_FINALIZER) || (!waiting.is_empty() && own != OwnDependents::None) {
        // Its own dependents go first, as its owner asked.
        "Foreground"
    } else {
        "Background"
    };
    let unblock = if own == OwnDependents::SomeDeletingDependents && !waiting.is_empty() {
        waiting.iter().filter(|r| r.block_owner_deletion).map(|r| r.uid.clone()).collect()
    } else {
        Vec::new()
    };
    DependentAction::Delete { propagation, unblock }
}

// ------------------------------------------------------------------------------------------
// The graph
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct GNode {
    /// Index into `registry::resources()`.
    res: usize,
    key: String,
    owners: Vec<OwnerRef>,
    deleting_dependents: bool,
    orphaning: bool,
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, GNode>,
    /// Owner uid → dependent uids (owners need not be in `nodes`).
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    fn upsert(&mut self, res: usize, obj: &Value) -> Option<GNode> {
        let uid = util::uid(obj).to_string();
        let node = GNode { res, key: key_of(obj), owners: owner_refs(obj), deleting_dependents: is_deleting_dependents(obj), orphaning: is_orphaning(obj) };
        for o in &node.owners {
            self.dependents.entry(o.uid.clone()).or_default().insert(uid.clone());
        }
        let old = self.nodes.insert(uid.clone(), node);
        if let Some(old) = &old {
            let now: HashSet<String> = self.nodes[&uid].owners.iter().map(|o| o.uid.clone()).collect();
            for o in old.owners.iter().filter(|o| !now.contains(&o.uid)) {
                self.unlink(&o.uid, &uid);
            }
        }
        old
    }

    fn remove(&mut self, uid: &str) -> Option<GNode> {
        let old = self.nodes.remove(uid)?;
        for o in &old.owners {
            self.unlink(&o.uid, uid);
        }
        Some(old)
    }

    fn unlink(&mut self, owner: &str, dependent: &str) {
        if let Some(set) = self.dependents.get_mut(owner) {
            set.remove(dependent);
            if set.is_empty() {
                self.dependents.remove(owner);
            }
        }
    }

    fn dependents_of(&self, uid: &str) -> Vec<String> {
        self.dependents.get(uid).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }
}

// ------------------------------------------------------------------------------------------
// The controller
// ------------------------------------------------------------------------------------------

struct Gc {
    ctx: Arc<Ctx>,
    informers: Vec<Arc<Informer>>,
    graph: Mutex<Graph>,
    /// Owner uids a fresh list proved gone (uids are never reused, so this stays true).
    absent: Mutex<HashSet<String>>,
    queue: WorkQueue,
    recorder: crate::events::Recorder,
}

fn resource_index(r: &ResourceInfo) -> Option<usize> {
    registry::resources().iter().position(|x| std::ptr::eq(x, r))
}

pub async fn run(ctx: Arc<Ctx>) {
    let informers: Vec<Arc<Informer>> = registry::resources().iter().map(|r| ctx.informers.get(r)).collect();
    let streams: Vec<_> = informers.iter().enumerate().map(|(i, inf)| changes(i, inf)).collect();
    let mut all_changes = futures::stream::select_all(streams);
    for inf in &informers {
        inf.synced().await;
    }
    let gc = Gc { recorder: ctx.recorder("garbage-collector-controller"), ctx, informers, graph: Mutex::default(), absent: Mutex::default(), queue: WorkQueue::new() };
    gc.rescan();

    let intake = async {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + RESCAN_PERIOD, RESCAN_PERIOD);
        loop {
            tokio::select! {
                ch = all_changes.next() => match ch {
                    Some((i, Some(ch))) => gc.observe(i, ch),
                    Some((_, None)) => gc.rescan(),
                    None => return,
                },
                _ = tick.tick() => gc.rescan(),
            }
        }
    };
    let workers = futures::future::join_all((0..WORKERS).map(|_| async {
        loop {
            let uid = gc.queue.next().await;
            match gc.process(&uid).await {
                Ok(()) => gc.queue.forget(&uid),
                Err(e) => {
                    tracing::debug!(uid = %uid, error = %e, "garbage collection of an object failed");
                    gc.queue.add_rate_limited(uid.clone());
                }
            }
            gc.queue.done(&uid);
        }
    }));
    tokio::join!(intake, workers);
}

impl Gc {
    /// Rebuilds the graph from the caches and queues everything that may need work: objects
    /// with an owner missing from the graph, and owners being deleted.
    fn rescan(&self) {
        let mut g = Graph::default();
        for (i, inf) in self.informers.iter().enumerate() {
            for obj in inf.list() {
                if !util::uid(&obj).is_empty() {
                    g.upsert(i, &obj);
                }
            }
        }
        let mut todo = Vec::new();
        for (uid, n) in &g.nodes {
            let owner_unsettled = n.owners.iter().any(|o| g.nodes.get(&o.uid).is_none_or(|on| on.deleting_dependents));
            if owner_unsettled || n.deleting_dependents || n.orphaning {
                todo.push(uid.clone());
            }
        }
        self.absent.lock().expect("gc lock").retain(|uid| g.dependents.contains_key(uid));
        *self.graph.lock().expect("gc lock") = g;
        for uid in todo {
            self.queue.add(uid);
        }
    }

    fn observe(&self, res: usize, ch: Change) {
        let mut g = self.graph.lock().expect("gc lock");
        let old_uid = ch.old.as_deref().map(util::uid).filter(|u| !u.is_empty());
        let new_uid = ch.new.as_deref().map(util::uid).filter(|u| !u.is_empty());
        if let Some(old_uid) = old_uid
            && Some(old_uid) != new_uid
            && let Some(gone) = g.remove(old_uid)
        {
            // Its dependents may now be dangling; an owner waiting on it may now proceed.
            for d in g.dependents_of(old_uid) {
                self.queue.add(d);
            }
            for o in gone.owners {
                self.queue.add(o.uid);
            }
        }
        let (Some(new), Some(uid)) = (ch.new.as_deref(), new_uid) else { return };
        let prev = g.upsert(res, new);
        let node = &g.nodes[uid];
        let owners_changed = prev.as_ref().is_none_or(|p| p.owners != node.owners);
        if !node.owners.is_empty() && owners_changed {
            self.queue.add(uid);
        }
        if owners_changed && let Some(p) = &prev {
            for o in &p.owners {
                self.queue.add(o.uid.clone());
            }
        }
        if node.deleting_dependents || node.orphaning {
            self.queue.add(uid);
        }
        if node.deleting_dependents && !prev.as_ref().is_some_and(|p| p.deleting_dependents) {
            for d in g.dependents_of(uid) {
                self.queue.add(d);
            }
        }
    }

    /// The current object with this uid, from the caches.
    fn lookup(&self, uid: &str) -> Option<(usize, Arc<Value>)> {
        let (res, key) = {
            let g = self.graph.lock().expect("gc lock");
            let n = g.nodes.get(uid)?;
            (n.res, n.key.clone())
        };
        let obj = self.informers[res].get(&key)?;
        (util::uid(&obj) == uid).then_some((res, obj))
    }

    fn dependents_of(&self, uid: &str) -> Vec<String> {
        self.graph.lock().expect("gc lock").dependents_of(uid)
    }

    async fn process(&self, uid: &str) -> Result<(), ApiError> {
        let Some((res, obj)) = self.lookup(uid) else { return Ok(()) };
        let resource = &registry::resources()[res];
        if util::is_deleting(&obj) {
            if is_orphaning(&obj) {
                return self.orphan_dependents(resource, &obj).await;
            }
            if is_deleting_dependents(&obj) {
                return self.delete_dependents(resource, &obj).await;
            }
            // Going away by itself.
            return Ok(());
        }
        let refs = owner_refs(&obj);
        if refs.is_empty() {
            return Ok(());
        }
        let mut states = Vec::new();
        for r in refs {
            let state = self.owner_state(&obj, resource, &r).await?;
            states.push((r, state));
        }
        let own = {
            let g = self.graph.lock().expect("gc lock");
            let deps = g.dependents_of(uid);
            if deps.is_empty() {
                OwnDependents::None
            } else if deps.iter().any(|d| g.nodes.get(d).is_some_and(|n| n.deleting_dependents)) {
                OwnDependents::SomeDeletingDependents
            } else {
                OwnDependents::Some
            }
        };
        match plan_dependent(&obj, &states, own) {
            DependentAction::Keep => Ok(()),
            DependentAction::RemoveOwnerRefs(uids) => self.patch_owner_refs(resource, &obj, |r| (!uids.iter().any(|u| Some(u.as_str()) == r.get("uid").and_then(|x| x.as_str()))).then(|| r.clone())).await,
            DependentAction::Delete { propagation, unblock } => {
                if !unblock.is_empty() {
                    self.patch_owner_refs(resource, &obj, |r| {
                        let mut r = r.clone();
                        if unblock.iter().any(|u| Some(u.as_str()) == r.get("uid").and_then(|x| x.as_str())) {
                            r["blockOwnerDeletion"] = json!(false);
                        }
                        Some(r)
                    })
                    .await?;
                }
                tracing::debug!(object = %key_of(&obj), resource = %resource.gvr(), propagation, "deleting an object whose owners are gone");
                let opts = DeleteOptions { propagation: Some(propagation.to_string()), uid: Some(uid.to_string()), ..Default::default() };
                match self.ctx.client.delete(resource, ns_of(&obj), util::name(&obj), opts).await {
                    Ok(()) | Err(ApiError::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        }
    }

    async fn owner_state(&self, dependent: &Value, dep_resource: Resource, r: &OwnerRef) -> Result<OwnerState, ApiError> {
        let (resource, key) = match resolve_owner(dependent, dep_resource.namespaced, r) {
            OwnerLocation::UnknownKind => return Ok(OwnerState::Unresolvable),
            OwnerLocation::Invalid => {
                self.recorder
                    .event(dependent, "Warning", "OwnerRefInvalidNamespace", &format!("ownerRef [{}/{}, namespace: , name: {}, uid: {}] does not exist in namespace \"\"", r.api_version, r.kind, r.name, r.uid))
                    .await;
                return Ok(OwnerState::Absent);
            }
            OwnerLocation::At { resource, key } => (resource, key),
        };
        let state_of = |o: &Value| if is_deleting_dependents(o) { OwnerState::DeletingDependents } else { OwnerState::Present };
        if let Some(i) = resource_index(resource)
            && let Some(o) = self.informers[i].get(&key)
            && util::uid(&o) == r.uid
        {
            return Ok(state_of(&o));
        }
        if self.absent.lock().expect("gc lock").contains(&r.uid) {
            return Ok(OwnerState::Absent);
        }
        // The cache says gone; the cache may be behind. Ask the store.
        let (items, _) = self.ctx.client.list(resource).await?;
        match items.iter().find(|o| util::uid(o) == r.uid) {
            Some(o) => Ok(state_of(o)),
            None => {
                self.absent.lock().expect("gc lock").insert(r.uid.clone());
                Ok(OwnerState::Absent)
            }
        }
    }

    /// Rewrites the dependent's ownerReferences through `f` (None drops a reference).
    async fn patch_owner_refs(&self, resource: Resource, obj: &Value, f: impl Fn(&Value) -> Option<Value>) -> Result<(), ApiError> {
        let refs: Vec<Value> = obj.pointer("/metadata/ownerReferences").and_then(|r| r.as_array()).into_iter().flatten().filter_map(f).collect();
        let refs = if refs.is_empty() { Value::Null } else { Value::Array(refs) };
        // Conditional on the uid only: a resourceVersion precondition would fail on every
        // status update of busy dependents, and ownerReferences rarely change concurrently.
        let patch = json!({"metadata": {"uid": util::uid(obj), "ownerReferences": refs}});
        match self.ctx.client.merge_patch(resource, ns_of(obj), util::name(obj), patch).await {
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn remove_finalizer(&self, resource: Resource, obj: &Value, finalizer: &str) -> Result<(), ApiError> {
        let left: Vec<Value> = obj.pointer("/metadata/finalizers").and_then(|a| a.as_array()).into_iter().flatten().filter(|f| f.as_str() != Some(finalizer)).cloned().collect();
        let left = if left.is_empty() { Value::Null } else { Value::Array(left) };
        // Conditional: other finalizers may be added or removed concurrently by their owners.
        let patch = json!({"metadata": {"resourceVersion": obj.pointer("/metadata/resourceVersion"), "finalizers": left}});
        match self.ctx.client.merge_patch(resource, ns_of(obj), util::name(obj), patch).await {
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn orphan_dependents(&self, resource: Resource, owner: &Value) -> Result<(), ApiError> {
        let owner_uid = util::uid(owner).to_string();
        for d in self.dependents_of(&owner_uid) {
            let Some((res, dep)) = self.lookup(&d) else { continue };
            let dep_res = &registry::resources()[res];
            self.patch_owner_refs(dep_res, &dep, |r| (r.get("uid").and_then(|u| u.as_str()) != Some(owner_uid.as_str())).then(|| r.clone())).await?;
        }
        self.remove_finalizer(resource, owner, ORPHAN_FINALIZER).await
    }

    async fn delete_dependents(&self, resource: Resource, owner: &Value) -> Result<(), ApiError> {
        let owner_uid = util::uid(owner);
        let mut blocking = 0;
        for d in self.dependents_of(owner_uid) {
            let Some((_, dep)) = self.lookup(&d) else { continue };
            if owner_refs(&dep).iter().any(|r| r.uid == owner_uid && r.block_owner_deletion) {
                blocking += 1;
            }
            if !util::is_deleting(&dep) {
                self.queue.add(d);
            }
        }
        if blocking > 0 {
            // Their deletions bring us back here.
            return Ok(());
        }
        self.remove_finalizer(resource, owner, FOREGROUND_FINALIZER).await
    }
}

fn ns_of(obj: &Value) -> Option<&str> {
    Some(util::namespace(obj)).filter(|n| !n.is_empty())
}

type ChangeStream = std::pin::Pin<Box<dyn futures::Stream<Item = (usize, Option<Change>)> + Send>>;

/// The changes of informer `i` as a stream; `None` changes mean some were missed (lagged).
fn changes(i: usize, inf: &Informer) -> ChangeStream {
    let rx = inf.subscribe();
    Box::pin(futures::stream::unfold(rx, move |mut rx| async move {
        match rx.recv().await {
            Ok(c) => Some(((i, Some(c)), rx)),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some(((i, None), rx)),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oref(kind: &str, api_version: &str, name: &str, uid: &str, block: bool) -> OwnerRef {
        OwnerRef { api_version: api_version.into(), kind: kind.into(), name: name.into(), uid: uid.into(), block_owner_deletion: block }
    }

    #[test]
    fn owner_refs_parsing() {
        let obj = json!({"metadata": {"ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true, "blockOwnerDeletion": true},
            {"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "u2"},
            {"apiVersion": "v1", "kind": "Node", "name": "no-uid"},
            "garbage",
        ]}});
        assert_eq!(owner_refs(&obj), vec![oref("ReplicaSet", "apps/v1", "rs", "u1", true), oref("Node", "v1", "n", "u2", false)]);
        assert_eq!(owner_refs(&json!({"metadata": {"ownerReferences": 5}})), vec![]);
    }

    #[test]
    fn resolve_owner_cases() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns"}});
        let pv = json!({"metadata": {"name": "pv"}});
        let rs = registry::find("apps", "v1", "replicasets").expect("replicasets");
        let nodes = registry::find("", "v1", "nodes").expect("nodes");
        let cases = [
            ("namespaced owner, same namespace", &pod, true, oref("ReplicaSet", "apps/v1", "web", "u", true), OwnerLocation::At { resource: rs, key: "ns/web".into() }),
            ("cluster-scoped owner of a namespaced object", &pod, true, oref("Node", "v1", "n1", "u", false), OwnerLocation::At { resource: nodes, key: "n1".into() }),
            ("cluster-scoped owner of a cluster-scoped object", &pv, false, oref("Node", "v1", "n1", "u", false), OwnerLocation::At { resource: nodes, key: "n1".into() }),
            ("namespaced owner of a cluster-scoped object", &pv, false, oref("ReplicaSet", "apps/v1", "web", "u", false), OwnerLocation::Invalid),
            ("another served version of the group", &pod, true, oref("ReplicaSet", "apps/v1beta2", "web", "u", false), OwnerLocation::At { resource: rs, key: "ns/web".into() }),
            ("unknown kind", &pod, true, oref("Widget", "example.com/v1", "w", "u", false), OwnerLocation::UnknownKind),
            ("kind in the wrong group", &pod, true, oref("ReplicaSet", "batch/v1", "web", "u", false), OwnerLocation::UnknownKind),
        ];
        for (name, dep, namespaced, r, want) in cases {
            assert_eq!(resolve_owner(dep, namespaced, &r), want, "{name}");
        }
    }

    #[test]
    fn plan_dependent_cases() {
        use OwnerState::*;
        let plain = json!({"metadata": {"name": "d"}});
        let orphaning = json!({"metadata": {"name": "d", "finalizers": ["orphan"]}});
        let a = oref("ReplicaSet", "apps/v1", "a", "ua", true);
        let b = oref("ReplicaSet", "apps/v1", "b", "ub", false);
        let del = |p: &'static str, unblock: &[&str]| DependentAction::Delete { propagation: p, unblock: unblock.iter().map(|s| s.to_string()).collect() };
        use OwnDependents as D;
        let cases: Vec<(&str, &Value, Vec<(OwnerRef, OwnerState)>, OwnDependents, DependentAction)> = vec![
            ("no owners", &plain, vec![], D::None, DependentAction::Keep),
            ("owner present", &plain, vec![(a.clone(), Present)], D::None, DependentAction::Keep),
            ("unknown kind counts as present", &plain, vec![(a.clone(), Unresolvable)], D::None, DependentAction::Keep),
            ("owner gone: background", &plain, vec![(a.clone(), Absent)], D::None, del("Background", &[])),
            ("all owners gone", &plain, vec![(a.clone(), Absent), (b.clone(), Absent)], D::Some, del("Background", &[])),
            ("one of two gone: drop its reference", &plain, vec![(a.clone(), Absent), (b.clone(), Present)], D::None, DependentAction::RemoveOwnerRefs(vec!["ua".into()])),
            ("owner deleting in foreground, another present", &plain, vec![(a.clone(), DeletingDependents), (b.clone(), Present)], D::None, DependentAction::RemoveOwnerRefs(vec!["ua".into()])),
            ("owner deleting in foreground, no own dependents", &plain, vec![(a.clone(), DeletingDependents)], D::None, del("Background", &[])),
            ("owner deleting in foreground, own dependents: foreground", &plain, vec![(a.clone(), DeletingDependents)], D::Some, del("Foreground", &[])),
            ("owner deleting in foreground and own dependent too: unblock first", &plain, vec![(a.clone(), DeletingDependents), (b.clone(), DeletingDependents)], D::SomeDeletingDependents, del("Foreground", &["ua"])),
            ("dependent asks to orphan its own dependents", &orphaning, vec![(a.clone(), Absent)], D::Some, del("Orphan", &[])),
        ];
        for (name, dep, owners, own, want) in cases {
            assert_eq!(plan_dependent(dep, &owners, own), want, "{name}");
        }
    }

    #[test]
    fn graph_tracks_owner_changes() {
        let mut g = Graph::default();
        let with_owners = |uids: &[&str]| {
            let refs: Vec<Value> = uids.iter().map(|u| json!({"apiVersion": "v1", "kind": "Node", "name": "n", "uid": u})).collect();
            json!({"metadata": {"name": "d", "namespace": "ns", "uid": "d", "ownerReferences": refs}})
        };
        g.upsert(0, &with_owners(&["o1", "o2"]));
        assert_eq!(g.dependents_of("o1"), vec!["d".to_string()]);
        g.upsert(0, &with_owners(&["o2"]));
        assert!(g.dependents_of("o1").is_empty());
        assert_eq!(g.dependents_of("o2"), vec!["d".to_string()]);
        g.remove("d");
        assert!(g.dependents_of("o2").is_empty());
        assert!(g.dependents.is_empty() && g.nodes.is_empty());
    }
}
