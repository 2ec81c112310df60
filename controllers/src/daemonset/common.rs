//! Machinery shared by the workload controllers (DaemonSet, StatefulSet, Job, CronJob): an
//! injectable clock and clock-driven requeues, creation/deletion expectations, claiming
//! (adopting and releasing) children, ControllerRevision history, and the informer-to-queue
//! plumbing. It lives under `daemonset` only because the crate's module list is fixed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apimachinery::status::ApiError;
use futures::future::BoxFuture;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::client::{Client, DeleteOptions, Resource, res};
use crate::informer::{Change, Informer, key_of};
use crate::queue::WorkQueue;
use crate::util;

// ---------------------------------------------------------------------------------------------
// Time

/// Where controllers read the time and wait for it. Tests drive a [`FakeClock`] so that
/// deadlines, TTLs and cron schedules fire without real waiting.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
    /// Resolves once `now() >= t`.
    fn sleep_until(&self, t: Timestamp) -> BoxFuture<'static, ()>;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep_until(&self, t: Timestamp) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // Re-check after waking: the wall clock may have been adjusted meanwhile.
            loop {
                let left = t.duration_since(Timestamp::now());
                if left <= SignedDuration::ZERO {
                    return;
                }
                tokio::time::sleep(left.unsigned_abs()).await;
            }
        })
    }
}

/// A clock that moves only when told to.
#[derive(Clone)]
pub struct FakeClock {
    tx: Arc<watch::Sender<Timestamp>>,
}

impl FakeClock {
    pub fn new(start: Timestamp) -> FakeClock {
        FakeClock { tx: Arc::new(watch::channel(start).0) }
    }

    pub fn set(&self, t: Timestamp) {
        self.tx.send_replace(t);
    }

    pub fn advance(&self, d: Duration) {
        let t = *self.tx.borrow() + SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
        self.tx.send_replace(t);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        *self.tx.borrow()
    }

    fn sleep_until(&self, t: Timestamp) -> BoxFuture<'static, ()> {
        let mut rx = self.tx.subscribe();
        Box::pin(async move {
            let _ = rx.wait_for(|now| *now >= t).await;
        })
    }
}

/// Re-queues keys at instants of a [`Clock`], keeping at most one pending wake-up per key (the
/// earliest): a controller that asks for a requeue on every sync does not pile up timers.
pub struct Timers {
    clock: Arc<dyn Clock>,
    queue: WorkQueue,
    pending: Mutex<HashMap<String, (Timestamp, JoinHandle<()>)>>,
}

impl Timers {
    pub fn new(clock: Arc<dyn Clock>, queue: WorkQueue) -> Timers {
        Timers { clock, queue, pending: Mutex::default() }
    }

    pub fn at(&self, key: &str, t: Timestamp) {
        let mut pending = self.pending.lock().expect("timers lock");
        if let Some((when, handle)) = pending.get(key)
            && *when <= t
            && !handle.is_finished()
        {
            return;
        }
        if let Some((_, old)) = pending.remove(key) {
            old.abort();
        }
        let sleep = self.clock.sleep_until(t);
        let queue = self.queue.clone();
        let k = key.to_string();
        let handle = tokio::spawn(async move {
            sleep.await;
            queue.add(k);
        });
        pending.insert(key.to_string(), (t, handle));
    }

    pub fn after_secs(&self, key: &str, secs: i64) {
        let t = self.clock.now() + SignedDuration::from_secs(secs.max(0));
        self.at(key, t);
    }
}

impl Drop for Timers {
    fn drop(&mut self) {
        if let Ok(pending) = self.pending.get_mut() {
            for (_, (_, h)) in pending.drain() {
                h.abort();
            }
        }
    }
}

pub fn parse_time(v: Option<&Value>) -> Option<Timestamp> {
    v.and_then(|t| t.as_str()).and_then(|t| t.parse::<Timestamp>().ok())
}

/// RFC 3339 at second precision, as Kubernetes serializes `metav1.Time`.
pub fn fmt_time(t: Timestamp) -> String {
    util::timestamp(t)
}

// ---------------------------------------------------------------------------------------------
// Expectations

/// Writes a controller made that its caches have not shown yet. Until they do, the controller
/// must not act on the stale cache (it would create the same pods again): Kubernetes'
/// `ControllerExpectations`, tracked by object key instead of by count.
#[derive(Default)]
pub struct Expectations {
    inner: Mutex<HashMap<String, Pending>>,
}

struct Pending {
    creates: HashSet<String>,
    /// key → uid of the object being deleted.
    deletes: HashMap<String, String>,
    since: Instant,
}

/// Past this, an expectation is assumed lost (e.g. the object was created and deleted between
/// two watch events) rather than blocking its owner forever.
const EXPECTATION_TTL: Duration = Duration::from_secs(30);

impl Expectations {
    pub fn expect_create(&self, owner: &str, obj_key: String) {
        let mut m = self.inner.lock().expect("expectations lock");
        let p = m.entry(owner.to_string()).or_insert_with(|| Pending { creates: HashSet::new(), deletes: HashMap::new(), since: Instant::now() });
        p.creates.insert(obj_key);
        p.since = Instant::now();
    }

    pub fn expect_delete(&self, owner: &str, obj_key: String, uid: String) {
        let mut m = self.inner.lock().expect("expectations lock");
        let p = m.entry(owner.to_string()).or_insert_with(|| Pending { creates: HashSet::new(), deletes: HashMap::new(), since: Instant::now() });
        p.deletes.insert(obj_key, uid);
        p.since = Instant::now();
    }

    /// Whether the cache reflects every write made for `owner`.
    pub fn satisfied(&self, owner: &str, cache: &Informer) -> bool {
        let mut m = self.inner.lock().expect("expectations lock");
        let Some(p) = m.get_mut(owner) else { return true };
        if p.since.elapsed() > EXPECTATION_TTL {
            m.remove(owner);
            return true;
        }
        p.creates.retain(|k| cache.get(k).is_none());
        p.deletes.retain(|k, uid| cache.get(k).is_some_and(|o| util::uid(&o) == uid && !util::is_deleting(&o)));
        if p.creates.is_empty() && p.deletes.is_empty() {
            m.remove(owner);
            true
        } else {
            false
        }
    }

    pub fn forget(&self, owner: &str) {
        self.inner.lock().expect("expectations lock").remove(owner);
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Why a sync should be retried (with backoff).
#[derive(Debug, Clone)]
pub struct SyncError(pub String);

impl From<ApiError> for SyncError {
    fn from(e: ApiError) -> Self {
        SyncError(e.to_string())
    }
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub type SyncResult = Result<(), SyncError>;

pub fn is_not_found(e: &ApiError) -> bool {
    matches!(e, ApiError::NotFound { .. })
}

pub fn is_already_exists(e: &ApiError) -> bool {
    matches!(e, ApiError::AlreadyExists { .. })
}

pub fn is_conflict(e: &ApiError) -> bool {
    matches!(e, ApiError::Conflict { .. })
}

// ---------------------------------------------------------------------------------------------
// Small accessors

pub fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(|s| s.as_str())
}

pub fn i64_at(v: &Value, ptr: &str) -> Option<i64> {
    v.pointer(ptr).and_then(|s| s.as_i64())
}

pub fn bool_at(v: &Value, ptr: &str) -> Option<bool> {
    v.pointer(ptr).and_then(|s| s.as_bool())
}

pub fn obj_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a Map<String, Value>> {
    v.pointer(ptr).and_then(|s| s.as_object())
}

pub fn generation(o: &Value) -> i64 {
    i64_at(o, "/metadata/generation").unwrap_or(0)
}

pub fn creation(o: &Value) -> Option<Timestamp> {
    parse_time(o.pointer("/metadata/creationTimestamp"))
}

/// Sets `obj[key] = value` on a JSON object, turning a non-object into one.
pub fn set_field(obj: &mut Value, key: &str, value: Value) {
    if !obj.is_object() {
        *obj = json!({});
    }
    if let Some(m) = obj.as_object_mut() {
        m.insert(key.to_string(), value);
    }
}

/// The object at `key`, created empty (and replacing a non-object) if needed.
pub fn child_obj<'a>(obj: &'a mut Value, key: &str) -> &'a mut Value {
    if !obj.is_object() {
        *obj = json!({});
    }
    let m = obj.as_object_mut().expect("just made an object");
    let e = m.entry(key.to_string()).or_insert_with(|| json!({}));
    if !e.is_object() {
        *e = json!({});
    }
    e
}

/// The labels of `v` plus `extra`.
pub fn merged_labels(base: Option<&Value>, extra: &[(&str, String)]) -> Value {
    let mut m = base.and_then(|b| b.as_object()).cloned().unwrap_or_default();
    for (k, v) in extra {
        m.insert(k.to_string(), json!(v));
    }
    Value::Object(m)
}

/// An integer or a percentage of `total` (`IntOrString`), rounded up or down.
pub fn scaled_int_or_percent(v: Option<&Value>, total: i64, round_up: bool, default: i64) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(default),
        Some(Value::String(s)) => match s.strip_suffix('%').and_then(|p| p.trim().parse::<i64>().ok()) {
            Some(p) if round_up => (p * total + 99) / 100,
            Some(p) => p * total / 100,
            None => s.trim().parse::<i64>().unwrap_or(default),
        },
        _ => default,
    }
}

// ---------------------------------------------------------------------------------------------
// Ownership

/// A controller ownerReference to `owner`, naming its kind explicitly so that objects read
/// without `apiVersion`/`kind` still produce a valid reference.
pub fn owner_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": util::name(owner),
        "uid": util::uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// `namespace/name` of the controller of `o` when it is of kind `kind`.
pub fn controller_key(o: &Value, kind: &str) -> Option<String> {
    let r = util::controller_of(o)?;
    if r.get("kind").and_then(|k| k.as_str()) != Some(kind) {
        return None;
    }
    let name = r.get("name").and_then(|n| n.as_str())?;
    let ns = util::namespace(o);
    Some(if ns.is_empty() { name.to_string() } else { format!("{ns}/{name}") })
}

pub fn controller_uid(o: &Value) -> Option<&str> {
    util::controller_of(o).and_then(|r| r.get("uid")).and_then(|u| u.as_str())
}

/// Kubernetes' `ClaimObjects`: which children an owner keeps, adopts and releases.
pub struct Claimed<'a> {
    /// Controlled by the owner and matching (adopted ones included).
    pub owned: Vec<&'a Value>,
    /// Orphans that match: to adopt.
    pub adopt: Vec<&'a Value>,
    /// Controlled by the owner but no longer matching: to release.
    pub release: Vec<&'a Value>,
}

pub fn claim<'a>(owner: &Value, matches: impl Fn(&Value) -> bool, objs: impl IntoIterator<Item = &'a Value>) -> Claimed<'a> {
    let owner_deleting = util::is_deleting(owner);
    let mut c = Claimed { owned: Vec::new(), adopt: Vec::new(), release: Vec::new() };
    for o in objs {
        match controller_uid(o) {
            Some(uid) if uid == util::uid(owner) => {
                if matches(o) || owner_deleting {
                    c.owned.push(o);
                } else if !util::is_deleting(o) {
                    c.release.push(o);
                }
            }
            Some(_) => {}
            None => {
                if !owner_deleting && !util::is_deleting(o) && matches(o) {
                    c.adopt.push(o);
                    c.owned.push(o);
                }
            }
        }
    }
    c
}

/// Adds `owner_ref` to `obj` (conditionally on the revision read, so a concurrent adoption by
/// another controller fails instead of producing two controllers).
pub async fn adopt(client: &dyn Client, resource: Resource, obj: &Value, owner_ref: &Value) -> Result<(), ApiError> {
    let mut refs: Vec<Value> = obj.pointer("/metadata/ownerReferences").and_then(|r| r.as_array()).cloned().unwrap_or_default();
    refs.retain(|r| r.get("uid") != owner_ref.get("uid"));
    refs.push(owner_ref.clone());
    let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": obj.pointer("/metadata/resourceVersion")}});
    client.merge_patch(resource, ns_opt(obj), util::name(obj), patch).await.map(|_| ())
}

/// Removes the ownerReference to `owner_uid` from `obj`, and the finalizers in
/// `drop_finalizers` (a released child must not stay blocked on its former controller).
pub async fn release(client: &dyn Client, resource: Resource, obj: &Value, owner_uid: &str, drop_finalizers: &[&str]) -> Result<(), ApiError> {
    let mut refs: Vec<Value> = obj.pointer("/metadata/ownerReferences").and_then(|r| r.as_array()).cloned().unwrap_or_default();
    refs.retain(|r| r.get("uid").and_then(|u| u.as_str()) != Some(owner_uid));
    let mut meta = json!({"ownerReferences": refs, "resourceVersion": obj.pointer("/metadata/resourceVersion")});
    let fins = finalizers(obj);
    if fins.iter().any(|f| drop_finalizers.contains(&f.as_str())) {
        let kept: Vec<&String> = fins.iter().filter(|f| !drop_finalizers.contains(&f.as_str())).collect();
        meta["finalizers"] = json!(kept);
    }
    match client.merge_patch(resource, ns_opt(obj), util::name(obj), json!({"metadata": meta})).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

pub fn finalizers(o: &Value) -> Vec<String> {
    o.pointer("/metadata/finalizers").and_then(|f| f.as_array()).map(|a| a.iter().filter_map(|f| f.as_str().map(String::from)).collect()).unwrap_or_default()
}

pub fn has_finalizer(o: &Value, f: &str) -> bool {
    o.pointer("/metadata/finalizers").and_then(|a| a.as_array()).is_some_and(|a| a.iter().any(|x| x.as_str() == Some(f)))
}

/// Removes one finalizer, conditionally on the revision read. Gone objects are fine.
pub async fn remove_finalizer(client: &dyn Client, resource: Resource, obj: &Value, finalizer: &str) -> Result<(), ApiError> {
    if !has_finalizer(obj, finalizer) {
        return Ok(());
    }
    let kept: Vec<String> = finalizers(obj).into_iter().filter(|f| f != finalizer).collect();
    let patch = json!({"metadata": {"finalizers": kept, "resourceVersion": obj.pointer("/metadata/resourceVersion")}});
    match client.merge_patch(resource, ns_opt(obj), util::name(obj), patch).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes `obj` if it is still the same object (uid precondition). Gone objects are fine.
pub async fn delete_exact(client: &dyn Client, resource: Resource, namespace: &str, name: &str, uid: &str, propagation: Option<&str>) -> Result<(), ApiError> {
    let opts = DeleteOptions { propagation: propagation.map(String::from), grace_period_seconds: None, uid: (!uid.is_empty()).then(|| uid.to_string()) };
    let ns = (!namespace.is_empty()).then_some(namespace);
    match client.delete(resource, ns, name, opts).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

pub fn ns_opt(o: &Value) -> Option<&str> {
    Some(util::namespace(o)).filter(|s| !s.is_empty())
}

/// Claims (adopting and releasing as needed) the objects of `resource` in the owner's
/// namespace that match; returns the owned ones.
pub async fn claim_and_patch(
    client: &dyn Client,
    resource: Resource,
    cache: &Informer,
    owner: &Value,
    owner_ref: &Value,
    matches: impl Fn(&Value) -> bool,
    drop_finalizers_on_release: &[&str],
) -> Result<Vec<Arc<Value>>, SyncError> {
    let objs = cache.list_namespace(util::namespace(owner));
    let claimed = claim(owner, &matches, objs.iter().map(|a| a.as_ref()));
    for o in &claimed.release {
        release(client, resource, o, util::uid(owner), drop_finalizers_on_release).await?;
    }
    let mut adopted = HashSet::new();
    for o in &claimed.adopt {
        match adopt(client, resource, o, owner_ref).await {
            Ok(()) => {
                adopted.insert(key_of(o));
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let owned_keys: HashSet<String> = claimed.owned.iter().map(|o| key_of(o)).collect();
    let adopt_keys: HashSet<String> = claimed.adopt.iter().map(|o| key_of(o)).collect();
    Ok(objs
        .into_iter()
        .filter(|o| {
            let k = key_of(o);
            owned_keys.contains(&k) && (!adopt_keys.contains(&k) || adopted.contains(&k))
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Hashing and ControllerRevisions

pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";

/// The value with object keys sorted, so hashes do not depend on field order.
pub fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The hash naming a revision of `template` (`collision_count` disambiguates collisions).
pub fn template_hash(template: &Value, collision_count: i64) -> String {
    let mut h = util::hash_of(&canonical(template));
    if collision_count > 0 {
        h = util::hash_of(&json!([h, collision_count]));
    }
    h
}

/// What a DaemonSet's or StatefulSet's revision stores: a patch restoring its pod template.
pub fn template_patch(owner: &Value) -> Value {
    let mut template = owner.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    set_field(&mut template, "$patch", json!("replace"));
    json!({"spec": {"template": template}})
}

/// The pod template a revision restores.
pub fn revision_template(rev: &Value) -> Option<Value> {
    let mut t = rev.pointer("/data/spec/template").cloned()?;
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    Some(t)
}

pub fn revision_number(rev: &Value) -> i64 {
    i64_at(rev, "/revision").unwrap_or(0)
}

fn same_data(a: &Value, b: &Value) -> bool {
    canonical(a) == canonical(b)
}

/// The result of reconciling an owner's revision history.
pub struct Revisions {
    /// The revision matching the owner's current template.
    pub update: Value,
    /// Every owned revision, `update` included.
    pub all: Vec<Value>,
}

/// Finds or creates the revision of the owner's current template, renumbering it when a
/// rollback makes an old revision current again. A name taken by a different template bumps
/// `status.collisionCount` and fails the sync, so the next one picks another name.
pub async fn sync_revisions(
    client: &dyn Client,
    owner: &Value,
    owner_resource: Resource,
    owner_ref: &Value,
    owned: Vec<Value>,
    rev_cache: &Informer,
) -> Result<Revisions, SyncError> {
    let revs = res("apps", "controllerrevisions");
    let patch = template_patch(owner);
    let mut all = owned;
    all.sort_by_key(revision_number);
    let max_rev = all.iter().map(revision_number).max().unwrap_or(0);
    let current = all.iter().filter(|r| r.get("data").is_some_and(|d| same_data(d, &patch))).max_by_key(|r| revision_number(r)).cloned();
    if let Some(cur) = current {
        let n = revision_number(&cur);
        let others_max = all.iter().filter(|r| util::name(r) != util::name(&cur)).map(revision_number).max().unwrap_or(0);
        if n <= others_max {
            let updated = client.merge_patch(revs, ns_opt(&cur), util::name(&cur), json!({"revision": others_max + 1})).await?;
            all.retain(|r| util::name(r) != util::name(&cur));
            all.push(updated.clone());
            return Ok(Revisions { update: updated, all });
        }
        return Ok(Revisions { update: cur, all });
    }
    let collision = i64_at(owner, "/status/collisionCount").unwrap_or(0);
    let template = owner.pointer("/spec/template").cloned().unwrap_or(Value::Null);
    let hash = template_hash(&template, collision);
    let name = format!("{}-{}", util::name(owner), hash);
    let labels = merged_labels(owner.pointer("/spec/template/metadata/labels"), &[(REVISION_HASH_LABEL, hash.clone())]);
    let rev = json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": name, "namespace": util::namespace(owner), "labels": labels, "ownerReferences": [owner_ref]},
        "data": patch,
        "revision": max_rev + 1,
    });
    match client.create(revs, ns_opt(owner), rev).await {
        Ok(created) => {
            all.push(created.clone());
            Ok(Revisions { update: created, all })
        }
        Err(e) if is_already_exists(&e) => {
            let existing = rev_cache.get(&format!("{}/{}", util::namespace(owner), name));
            match existing {
                Some(ex) if ex.get("data").is_some_and(|d| same_data(d, &patch)) && controller_uid(&ex).is_none_or(|u| u == util::uid(owner)) => {
                    let ex = (*ex).clone();
                    all.push(ex.clone());
                    Ok(Revisions { update: ex, all })
                }
                Some(_) => {
                    let mut fresh = owner.clone();
                    set_field(child_obj(&mut fresh, "status"), "collisionCount", json!(collision + 1));
                    client.update_status(owner_resource, fresh).await?;
                    Err(SyncError(format!("revision name {name} collides; collisionCount bumped")))
                }
                None => Err(SyncError(format!("revision {name} exists but is not in the cache yet"))),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes the oldest revisions beyond `limit`, never one in `keep` (current, update, or used
/// by a live pod).
pub async fn cleanup_revisions(client: &dyn Client, all: &[Value], keep: &HashSet<String>, limit: i64) -> SyncResult {
    let revs = res("apps", "controllerrevisions");
    let mut old: Vec<&Value> = all.iter().filter(|r| !keep.contains(util::name(r))).collect();
    let excess = old.len() as i64 - limit.max(0);
    if excess <= 0 {
        return Ok(());
    }
    old.sort_by_key(|r| revision_number(r));
    for r in old.into_iter().take(excess as usize) {
        delete_exact(client, revs, util::namespace(r), util::name(r), util::uid(r), None).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Status writes

/// Writes `status` if it differs from the object's (conditionally on the revision read).
pub async fn write_status(client: &dyn Client, resource: Resource, obj: &Value, status: Value) -> Result<Option<Value>, ApiError> {
    if obj.get("status").is_some_and(|s| canonical(s) == canonical(&status)) {
        return Ok(None);
    }
    let mut new = obj.clone();
    set_field(&mut new, "status", status);
    client.update_status(resource, new).await.map(Some)
}

// ---------------------------------------------------------------------------------------------
// Plumbing: informer changes to queue keys, workers

/// Forwards changes of `inf` to `on_change`; after a lag (missed changes) calls `on_lag` so
/// the controller can resync everything.
pub fn forward_changes(set: &mut JoinSet<()>, inf: &Informer, on_change: impl Fn(&Change) + Send + 'static, on_lag: impl Fn() + Send + 'static) {
    let mut rx = inf.subscribe();
    set.spawn(async move {
        loop {
            match rx.recv().await {
                Ok(c) => on_change(&c),
                Err(broadcast::error::RecvError::Lagged(_)) => on_lag(),
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// Enqueues every object of an informer.
pub fn enqueue_all(queue: &WorkQueue, inf: &Informer) {
    for o in inf.list() {
        queue.add(key_of(&o));
    }
}

/// Maps a change of a child to the keys of its controllers of kind `kind` (old and new), or,
/// for an orphan, to every owner in its namespace that `matches` it (so it gets adopted).
pub fn enqueue_owners(change: &Change, kind: &str, queue: &WorkQueue, owners: &Informer, matches: impl Fn(&Value, &Value) -> bool) {
    let mut keys = HashSet::new();
    for o in [change.old.as_deref(), change.new.as_deref()].into_iter().flatten() {
        if let Some(k) = controller_key(o, kind) {
            keys.insert(k);
        }
    }
    if let Some(new) = change.new.as_deref()
        && util::controller_of(new).is_none()
        && !util::is_deleting(new)
    {
        for owner in owners.list_namespace(util::namespace(new)) {
            if matches(&owner, new) {
                keys.insert(key_of(&owner));
            }
        }
    }
    for k in keys {
        queue.add(k);
    }
}

pub type SyncFn = Arc<dyn Fn(String) -> BoxFuture<'static, SyncResult> + Send + Sync>;

/// Processes keys until aborted, retrying failures with per-key backoff.
pub fn spawn_workers(set: &mut JoinSet<()>, n: usize, queue: WorkQueue, name: &'static str, sync: SyncFn) {
    for _ in 0..n.max(1) {
        let queue = queue.clone();
        let sync = sync.clone();
        set.spawn(async move {
            loop {
                let key = queue.next().await;
                match sync(key.clone()).await {
                    Ok(()) => queue.forget(&key),
                    Err(e) => {
                        tracing::debug!(controller = name, key = %key, error = %e, "sync failed; retrying");
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
}

/// Waits for a JoinSet's tasks forever (they run until the controller is aborted, which drops
/// the set and aborts them).
pub async fn join_forever(mut set: JoinSet<()>) {
    while let Some(r) = set.join_next().await {
        if let Err(e) = r
            && e.is_panic()
        {
            tracing::error!(error = %e, "a controller task panicked");
        }
    }
    std::future::pending::<()>().await
}

/// Pods of a resource, for brevity.
pub fn pods() -> Resource {
    res("", "pods")
}

/// Condition `ty` of an object's status.
pub fn condition<'a>(o: &'a Value, ty: &str) -> Option<&'a Value> {
    o.pointer("/status/conditions").and_then(|c| c.as_array()).and_then(|cs| cs.iter().find(|c| c.get("type").and_then(|t| t.as_str()) == Some(ty)))
}

pub fn condition_true(o: &Value, ty: &str) -> bool {
    condition(o, ty).and_then(|c| c.get("status")).and_then(|s| s.as_str()) == Some("True")
}

/// Pod is Running with the Ready condition True.
pub fn running_and_ready(p: &Value) -> bool {
    util::pod_phase(p) == "Running" && util::is_pod_ready(p)
}

/// When a ready pod becomes available (`minReadySeconds` after its Ready transition).
pub fn available_at(p: &Value, min_ready_seconds: i64) -> Option<Timestamp> {
    if !util::is_pod_ready(p) || min_ready_seconds <= 0 {
        return None;
    }
    let since = condition(p, "Ready").and_then(|c| parse_time(c.get("lastTransitionTime")))?;
    Some(since + SignedDuration::from_secs(min_ready_seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_or_percent() {
        let cases: &[(Value, i64, bool, i64)] = &[
            (json!(2), 10, true, 2),
            (json!("25%"), 10, true, 3),
            (json!("25%"), 10, false, 2),
            (json!("100%"), 7, true, 7),
            (json!("0%"), 7, true, 0),
            (json!("3"), 7, true, 3),
        ];
        for (v, total, up, want) in cases {
            assert_eq!(scaled_int_or_percent(Some(v), *total, *up, 1), *want, "{v} of {total}");
        }
        assert_eq!(scaled_int_or_percent(None, 7, true, 1), 1);
    }

    #[test]
    fn hash_ignores_key_order() {
        let a: Value = serde_json::from_str(r#"{"a":1,"b":{"c":2,"d":3}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"b":{"d":3,"c":2},"a":1}"#).unwrap();
        assert_eq!(template_hash(&a, 0), template_hash(&b, 0));
        assert_ne!(template_hash(&a, 0), template_hash(&a, 1));
    }

    #[test]
    fn claim_adopts_orphans_and_releases_mismatches() {
        let owner = json!({"metadata": {"name": "o", "uid": "u1"}});
        let mine_match = json!({"metadata": {"name": "a", "labels": {"app": "x"}, "ownerReferences": [{"uid": "u1", "controller": true}]}});
        let mine_nomatch = json!({"metadata": {"name": "b", "labels": {"app": "y"}, "ownerReferences": [{"uid": "u1", "controller": true}]}});
        let orphan = json!({"metadata": {"name": "c", "labels": {"app": "x"}}});
        let other = json!({"metadata": {"name": "d", "labels": {"app": "x"}, "ownerReferences": [{"uid": "u2", "controller": true}]}});
        let deleting_orphan = json!({"metadata": {"name": "e", "labels": {"app": "x"}, "deletionTimestamp": "2024-01-01T00:00:00Z"}});
        let objs = [mine_match, mine_nomatch, orphan, other, deleting_orphan];
        let c = claim(&owner, |o| util::selector_matches(Some(&json!({"matchLabels": {"app": "x"}})), o), objs.iter());
        let names = |v: &[&Value]| v.iter().map(|o| util::name(o).to_string()).collect::<Vec<_>>();
        assert_eq!(names(&c.owned), ["a", "c"]);
        assert_eq!(names(&c.adopt), ["c"]);
        assert_eq!(names(&c.release), ["b"]);
    }
}
