//! The scheduler: binds pending pods (`spec.schedulerName` empty or `default-scheduler`) to
//! nodes, with Kubernetes' default filters and scores.
//!
//! One task owns all scheduling state, so decisions need no locks and see each other at once:
//! informer changes update an incremental [`cache::Cache`]; pods are popped from a
//! [`queue::SchedulingQueue`] in bursts; each decision is *assumed* (counted on its node)
//! before its binding is written, so the next pods of a burst do not double-book; bindings go
//! out in batches of up to `Config::bind_batch` per `Client::bind` call, several calls in
//! flight, while scheduling continues. A failed binding forgets its assumption and the pod
//! backs off; an unschedulable pod gets PodScheduled=False and a FailedScheduling event (from
//! a separate worker, coalesced per pod) and waits for a cluster change that could help it.
//!
//! Not implemented: preemption, volumes (VolumeBinding/VolumeZone/NodeVolumeLimits),
//! ImageLocality, pod-level resources, Services in the default spreading selector (pods are
//! spread by their controlling ReplicaSet/ReplicationController/StatefulSet instead),
//! scheduling profiles and extenders.

pub mod algorithm;
pub mod cache;
pub mod queue;
pub mod types;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apimachinery::status::ApiError;
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::Ctx;
use crate::client::{Binding, res};
use crate::informer::{Change, Informer, key_of};
use algorithm::{P_AFFINITY, P_ALL, P_ANTI, P_FIT, P_PORTS, P_SPREAD};
use cache::Cache;
use queue::SchedulingQueue;
use types::PodInfo;

/// Binding calls outstanding at once: enough to keep the replicated log busy while the next
/// decisions are made, few enough that batches grow when writes are slow.
const MAX_BINDS_IN_FLIGHT: usize = 4;
/// At most this many pods, or this long, between looks at informer changes.
const SLICE_PODS: usize = 256;
const SLICE_TIME: Duration = Duration::from_millis(10);
/// Unschedulable pods are retried at least this often even without a helpful event.
const PARKED_FLUSH: Duration = Duration::from_secs(15);
/// A binding answered OK but not seen in the informer by then is checked against the cache.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
const MOVE_INTERVAL: Duration = Duration::from_millis(50);
/// Scheduled events are informational: at most this many per second (burst twice that).
const SCHEDULED_EVENTS_PER_SEC: f64 = 5.0;
const EFFECT_CONCURRENCY: usize = 8;

/// Cluster events, as the `P_*` bits of the filters they can un-fail.
const EV_POD_FREED: u32 = P_FIT | P_PORTS | P_ANTI | P_SPREAD;
const EV_POD_ADDED: u32 = P_AFFINITY | P_SPREAD;
const EV_POD_CHANGED: u32 = EV_POD_FREED | EV_POD_ADDED;

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(|s| s.as_str()).unwrap_or("")
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type BindResult = (Vec<Binding>, Vec<Result<(), ApiError>>);

/// Runs the scheduler until aborted.
pub async fn run(ctx: Arc<Ctx>) {
    let pods = ctx.informers.get(res("", "pods"));
    let nodes = ctx.informers.get(res("", "nodes"));
    let namespaces = ctx.informers.get(res("", "namespaces"));
    // Subscribe before reading the caches so no change falls between the two.
    let mut pod_rx = pods.subscribe();
    let mut node_rx = nodes.subscribe();
    let mut ns_rx = namespaces.subscribe();
    pods.synced().await;
    nodes.synced().await;
    namespaces.synced().await;

    let effects = Effects::default();
    let _worker = AbortOnDrop(tokio::spawn(effects.clone().work(ctx.clone(), pods.clone())));
    let (bind_tx, mut bind_rx) = mpsc::unbounded_channel::<BindResult>();
    let mut s = Scheduler::new(ctx, pods, nodes, namespaces, bind_tx, effects);
    s.resync_namespaces();
    s.resync_nodes();
    s.resync_pods();

    enum Wake {
        Pod(Result<Change, broadcast::error::RecvError>),
        Node(Result<Change, broadcast::error::RecvError>),
        Ns(Result<Change, broadcast::error::RecvError>),
        Bind(Option<BindResult>),
        Timer,
    }
    loop {
        if !(s.drain(&mut node_rx, Kind::Node) && s.drain(&mut ns_rx, Kind::Namespace) && s.drain(&mut pod_rx, Kind::Pod)) {
            return;
        }
        while let Ok(r) = bind_rx.try_recv() {
            s.on_bind_result(r);
        }
        s.tick();
        let tried = s.schedule_some();
        s.dispatch();
        if tried > 0 {
            // Let the informers and the binding tasks run between bursts.
            tokio::task::yield_now().await;
            continue;
        }
        let deadline = s.next_wakeup();
        let wake = tokio::select! {
            r = pod_rx.recv() => Wake::Pod(r),
            r = node_rx.recv() => Wake::Node(r),
            r = ns_rx.recv() => Wake::Ns(r),
            r = bind_rx.recv() => Wake::Bind(r),
            _ = tokio::time::sleep_until(deadline) => Wake::Timer,
        };
        let alive = match wake {
            Wake::Pod(r) => s.received(r, Kind::Pod),
            Wake::Node(r) => s.received(r, Kind::Node),
            Wake::Ns(r) => s.received(r, Kind::Namespace),
            Wake::Bind(Some(r)) => {
                s.on_bind_result(r);
                true
            }
            Wake::Bind(None) | Wake::Timer => true,
        };
        if !alive {
            return;
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Pod,
    Node,
    Namespace,
}

struct Scheduler {
    ctx: Arc<Ctx>,
    pods: Arc<Informer>,
    nodes: Arc<Informer>,
    namespaces: Arc<Informer>,
    cache: Cache,
    queue: SchedulingQueue,
    /// Pods whose binding call is outstanding (key → uid).
    in_flight: HashMap<String, String>,
    /// Pods bound OK but not yet seen bound in the informer.
    bound_at: HashMap<String, Instant>,
    batch: Vec<Binding>,
    binds_in_flight: usize,
    bind_tx: mpsc::UnboundedSender<BindResult>,
    effects: Effects,
    next_start: usize,
    pending_move: u32,
    last_move: Instant,
    event_tokens: f64,
    tokens_at: Instant,
    last_parked_flush: Instant,
    last_check: Instant,
    last_gc: Instant,
    last_report: Instant,
    scheduled: u64,
    reported: u64,
}

impl Scheduler {
    fn new(
        ctx: Arc<Ctx>,
        pods: Arc<Informer>,
        nodes: Arc<Informer>,
        namespaces: Arc<Informer>,
        bind_tx: mpsc::UnboundedSender<BindResult>,
        effects: Effects,
    ) -> Scheduler {
        let now = Instant::now();
        Scheduler {
            ctx,
            pods,
            nodes,
            namespaces,
            cache: Cache::new(),
            queue: SchedulingQueue::new(),
            in_flight: HashMap::new(),
            bound_at: HashMap::new(),
            batch: Vec::new(),
            binds_in_flight: 0,
            bind_tx,
            effects,
            next_start: 0,
            pending_move: 0,
            last_move: now,
            event_tokens: 2.0 * SCHEDULED_EVENTS_PER_SEC,
            tokens_at: now,
            last_parked_flush: now,
            last_check: now,
            last_gc: now,
            last_report: now,
            scheduled: 0,
            reported: 0,
        }
    }

    fn bind_batch(&self) -> usize {
        self.ctx.config.bind_batch.max(1)
    }

    // -----------------------------------------------------------------------------------------
    // Informer changes

    /// Applies every change already waiting; false when the informer is gone.
    fn drain(&mut self, rx: &mut broadcast::Receiver<Change>, kind: Kind) -> bool {
        loop {
            let r = match rx.try_recv() {
                Ok(c) => Ok(c),
                Err(broadcast::error::TryRecvError::Empty) => return true,
                Err(broadcast::error::TryRecvError::Lagged(n)) => Err(broadcast::error::RecvError::Lagged(n)),
                Err(broadcast::error::TryRecvError::Closed) => Err(broadcast::error::RecvError::Closed),
            };
            if !self.received(r, kind) {
                return false;
            }
        }
    }

    fn received(&mut self, r: Result<Change, broadcast::error::RecvError>, kind: Kind) -> bool {
        match r {
            Ok(c) => match kind {
                Kind::Pod => self.on_pod(&c.key, c.old.as_deref(), c.new.as_deref()),
                Kind::Node => self.on_node(&c.key, c.new.as_deref()),
                Kind::Namespace => self.on_namespace(&c.key, c.new.as_deref()),
            },
            Err(broadcast::error::RecvError::Lagged(n)) => {
                // Changes were lost: rebuild from the informer's cache, which is current.
                tracing::warn!(?kind, missed = n, "scheduler fell behind the informer; resyncing");
                match kind {
                    Kind::Pod => self.resync_pods(),
                    Kind::Node => self.resync_nodes(),
                    Kind::Namespace => self.resync_namespaces(),
                }
            }
            Err(broadcast::error::RecvError::Closed) => return false,
        }
        true
    }

    fn on_node(&mut self, key: &str, new: Option<&Value>) {
        let changed = match new {
            Some(n) => self.cache.upsert_node(types::NodeSpec::parse(n)),
            None => self.cache.remove_node(key),
        };
        if changed {
            self.pending_move |= P_ALL;
        }
    }

    fn on_namespace(&mut self, key: &str, new: Option<&Value>) {
        let labels = new.map(apimachinery::selector::labels_of);
        if self.cache.set_namespace(key, labels) {
            self.pending_move |= P_AFFINITY | P_ANTI;
        }
    }

    fn on_pod(&mut self, key: &str, old: Option<&Value>, new: Option<&Value>) {
        let Some(new) = new else {
            if self.cache.remove_pod(key).is_some() {
                self.pending_move |= EV_POD_FREED;
            }
            self.queue.remove(key);
            self.bound_at.remove(key);
            return;
        };
        let node_name = str_at(new, "/spec/nodeName");
        if !node_name.is_empty() {
            // Bound (by us or anyone): counted on its node until it ends.
            self.queue.remove(key);
            self.bound_at.remove(key);
            if matches!(str_at(new, "/status/phase"), "Succeeded" | "Failed") {
                if self.cache.remove_pod(key).is_some() {
                    self.pending_move |= EV_POD_FREED;
                }
                return;
            }
            if let Some(a) = self.cache.acct(key) {
                let same = a.info.uid == str_at(new, "/metadata/uid")
                    && self.cache.node_name(a.node) == node_name
                    && a.info.deleting == crate::util::is_deleting(new)
                    && a.info.labels == apimachinery::selector::labels_of(new);
                if same {
                    if a.assumed {
                        self.cache.confirm(key);
                        return;
                    }
                    if old.is_some_and(|o| o.get("spec") == new.get("spec")) {
                        return;
                    }
                }
            }
            let info = Arc::new(PodInfo::parse(new));
            let prev = self.cache.remove_pod(key);
            self.cache.add_pod(info, node_name, false);
            self.pending_move |= if prev.is_some() { EV_POD_CHANGED } else { EV_POD_ADDED };
            return;
        }
        // Pending. A pod we assumed is being bound: this is an older view of it. An account
        // under another uid is a deleted namesake whose deletion a relist folded away.
        let uid = str_at(new, "/metadata/uid");
        if let Some(a) = self.cache.acct(key) {
            if a.info.uid == uid {
                return;
            }
            self.cache.remove_pod(key);
            self.pending_move |= EV_POD_FREED;
        }
        if self.in_flight.get(key).is_some_and(|u| u == uid) {
            return;
        }
        if !types::wants_scheduling(new) {
            self.queue.remove(key);
            return;
        }
        let priority = types::pod_priority(new);
        let relevant = old.is_some_and(|o| o.get("spec") != new.get("spec") || o.pointer("/metadata/labels") != new.pointer("/metadata/labels"));
        if relevant {
            self.queue.update(key, priority, Instant::now());
        } else if !self.queue.contains(key) {
            self.queue.add(key, priority);
        }
    }

    fn resync_nodes(&mut self) {
        let all = self.nodes.list();
        let names: HashSet<String> = all.iter().map(|n| key_of(n)).collect();
        for n in &all {
            self.on_node(&key_of(n), Some(n));
        }
        let gone: Vec<String> = self
            .cache
            .nodes
            .iter()
            .filter(|n| n.spec.is_some() && !names.contains(&n.name))
            .map(|n| n.name.clone())
            .collect();
        for name in gone {
            self.on_node(&name, None);
        }
    }

    fn resync_namespaces(&mut self) {
        for n in self.namespaces.list() {
            self.on_namespace(&key_of(&n), Some(&n));
        }
    }

    fn resync_pods(&mut self) {
        let all = self.pods.list();
        let mut seen = HashSet::with_capacity(all.len());
        for p in &all {
            let key = key_of(p);
            self.on_pod(&key, None, Some(p));
            seen.insert(key);
        }
        for key in self.cache.pod_keys() {
            if !seen.contains(&key) && !self.in_flight.contains_key(&key) && self.cache.remove_pod(&key).is_some() {
                self.pending_move |= EV_POD_FREED;
            }
        }
        for key in self.queue.keys() {
            if !seen.contains(&key) {
                self.queue.remove(&key);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Scheduling

    /// Schedules a burst of pods; returns how many were tried.
    fn schedule_some(&mut self) -> usize {
        let t0 = std::time::Instant::now();
        let mut tried = 0;
        while tried < SLICE_PODS && self.batch.len() < self.bind_batch() {
            if tried > 0 && t0.elapsed() > SLICE_TIME {
                break;
            }
            let Some(key) = self.queue.pop() else { break };
            tried += 1;
            self.schedule_key(key);
        }
        tried
    }

    fn schedule_key(&mut self, key: String) {
        // The informer's copy is the freshest view of the pod.
        let Some(obj) = self.pods.get(&key) else {
            self.queue.remove(&key);
            return;
        };
        if !types::wants_scheduling(&obj) {
            self.queue.remove(&key);
            return;
        }
        let uid = crate::util::uid(&obj);
        if self.in_flight.get(&key).is_some_and(|u| u == uid) || self.cache.acct(&key).is_some_and(|a| a.info.uid == uid) {
            return;
        }
        let info = Arc::new(PodInfo::parse(&obj));
        match algorithm::schedule(&mut self.cache, &info, &mut self.next_start) {
            Ok(slot) => {
                let node = self.cache.node_name(slot).to_string();
                self.cache.add_pod(info.clone(), &node, true);
                self.in_flight.insert(key, info.uid.clone());
                self.batch.push(Binding {
                    namespace: info.namespace.clone(),
                    name: info.name.clone(),
                    uid: info.uid.clone(),
                    node,
                });
            }
            Err(fit) => {
                let message = fit.message();
                tracing::debug!(pod = %key, %message, "unschedulable");
                self.queue
                    .unschedulable(&key, info.priority, fit.mask | if fit.mask == 0 { P_ALL } else { 0 }, Instant::now());
                self.effects.push(
                    format!("u/{key}"),
                    Effect::Unschedulable {
                        key,
                        uid: info.uid.clone(),
                        message,
                    },
                );
            }
        }
    }

    /// Writes decided bindings while fewer than MAX_BINDS_IN_FLIGHT calls are outstanding.
    fn dispatch(&mut self) {
        while !self.batch.is_empty() && self.binds_in_flight < MAX_BINDS_IN_FLIGHT {
            let n = self.batch.len().min(self.bind_batch());
            let chunk: Vec<Binding> = self.batch.drain(..n).collect();
            self.binds_in_flight += 1;
            let client = self.ctx.client.clone();
            let tx = self.bind_tx.clone();
            tokio::spawn(async move {
                let results = client.bind(chunk.clone()).await;
                let _ = tx.send((chunk, results));
            });
        }
    }

    fn on_bind_result(&mut self, (chunk, results): BindResult) {
        self.binds_in_flight = self.binds_in_flight.saturating_sub(1);
        let now = Instant::now();
        for (i, b) in chunk.into_iter().enumerate() {
            let key = format!("{}/{}", b.namespace, b.name);
            if self.in_flight.get(&key).is_some_and(|u| *u == b.uid) {
                self.in_flight.remove(&key);
            }
            match results.get(i) {
                Some(Ok(())) => {
                    self.scheduled += 1;
                    self.queue.done(&key);
                    if self.cache.acct(&key).is_some_and(|a| a.assumed) {
                        self.bound_at.insert(key.clone(), now);
                    }
                    if self.take_event_token(now) {
                        let message = format!("Successfully assigned {key} to {}", b.node);
                        self.effects.push(
                            format!("s/{key}"),
                            Effect::Event {
                                key,
                                uid: b.uid,
                                kind: "Normal",
                                reason: "Scheduled",
                                message,
                            },
                        );
                    }
                }
                other => {
                    let why = match other {
                        Some(Err(e)) => e.to_string(),
                        _ => "no result for this binding".to_string(),
                    };
                    tracing::debug!(pod = %key, node = %b.node, error = %why, "binding failed");
                    if self.cache.acct(&key).is_some_and(|a| a.assumed && a.info.uid == b.uid) {
                        self.cache.remove_pod(&key);
                        self.pending_move |= EV_POD_FREED;
                    }
                    let priority = self.pods.get(&key).map(|p| types::pod_priority(&p)).unwrap_or(0);
                    self.queue.backoff(&key, priority, now);
                    let message = format!("Binding rejected: {why}");
                    self.effects.push(
                        format!("b/{key}"),
                        Effect::Event {
                            key,
                            uid: b.uid,
                            kind: "Warning",
                            reason: "FailedScheduling",
                            message,
                        },
                    );
                }
            }
        }
    }

    fn take_event_token(&mut self, now: Instant) -> bool {
        let dt = now.duration_since(self.tokens_at).as_secs_f64();
        self.tokens_at = now;
        self.event_tokens = (self.event_tokens + dt * SCHEDULED_EVENTS_PER_SEC).min(2.0 * SCHEDULED_EVENTS_PER_SEC);
        if self.event_tokens >= 1.0 {
            self.event_tokens -= 1.0;
            true
        } else {
            false
        }
    }

    // -----------------------------------------------------------------------------------------
    // Timers

    fn tick(&mut self) {
        let now = Instant::now();
        if self.pending_move != 0 && now.duration_since(self.last_move) >= MOVE_INTERVAL {
            self.queue.move_unschedulable(self.pending_move, now);
            self.pending_move = 0;
            self.last_move = now;
        }
        let parked = if now.duration_since(self.last_parked_flush) >= Duration::from_secs(1) {
            self.last_parked_flush = now;
            PARKED_FLUSH
        } else {
            Duration::MAX
        };
        self.queue.flush(now, parked);
        if now.duration_since(self.last_check) >= Duration::from_secs(5) {
            self.last_check = now;
            self.check_assumed(now);
        }
        if now.duration_since(self.last_gc) >= Duration::from_secs(300) {
            self.last_gc = now;
            self.cache.gc();
        }
        if self.scheduled != self.reported && now.duration_since(self.last_report) >= Duration::from_secs(10) {
            tracing::info!(
                bound = self.scheduled - self.reported,
                pending = self.queue.len(),
                nodes = self.cache.num_live_nodes(),
                pods = self.cache.num_pods(),
                "scheduler progress"
            );
            self.reported = self.scheduled;
            self.last_report = now;
        }
    }

    /// Bindings written long ago whose pods the informer never showed bound: believe the
    /// informer (Kubernetes expires such assumptions the same way).
    fn check_assumed(&mut self, now: Instant) {
        let stale: Vec<String> = self
            .bound_at
            .iter()
            .filter(|(_, t)| now.duration_since(**t) >= CONFIRM_TIMEOUT)
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            self.bound_at.remove(&key);
            if !self.cache.acct(&key).is_some_and(|a| a.assumed) {
                continue;
            }
            self.cache.remove_pod(&key);
            self.pending_move |= EV_POD_FREED;
            if let Some(p) = self.pods.get(&key) {
                self.on_pod(&key, None, Some(&p));
            }
        }
    }

    fn next_wakeup(&self) -> Instant {
        let now = Instant::now();
        let mut t = now + Duration::from_secs(1);
        if let Some(b) = self.queue.next_backoff() {
            t = t.min(b);
        }
        if self.pending_move != 0 {
            t = t.min(self.last_move + MOVE_INTERVAL);
        }
        t.max(now)
    }
}

// ---------------------------------------------------------------------------------------------
// Status updates and events

#[derive(Debug)]
enum Effect {
    Unschedulable {
        key: String,
        uid: String,
        message: String,
    },
    Event {
        key: String,
        uid: String,
        kind: &'static str,
        reason: &'static str,
        message: String,
    },
}

/// Writes that report scheduling outcomes, done off the scheduling loop and coalesced per pod:
/// if a pod fails again before its previous report was written, only the latest is written.
#[derive(Clone, Default)]
struct Effects {
    state: Arc<Mutex<PendingEffects>>,
    notify: Arc<Notify>,
}

#[derive(Default)]
struct PendingEffects {
    order: VecDeque<String>,
    by_id: HashMap<String, Effect>,
}

impl Effects {
    fn push(&self, id: String, e: Effect) {
        {
            let mut s = self.state.lock().expect("effects lock");
            if s.by_id.insert(id.clone(), e).is_none() {
                s.order.push_back(id);
            }
        }
        self.notify.notify_one();
    }

    fn pop(&self) -> Option<Effect> {
        let mut s = self.state.lock().expect("effects lock");
        let id = s.order.pop_front()?;
        s.by_id.remove(&id)
    }

    async fn work(self, ctx: Arc<Ctx>, pods: Arc<Informer>) {
        let recorder = ctx.recorder(types::DEFAULT_SCHEDULER);
        // Per pod: the last FailedScheduling message and when it was recorded, so a pod
        // failing the same way over and over does not flood the events.
        let mut last_event: HashMap<String, (String, Instant)> = HashMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            let Some(effect) = self.pop() else {
                self.notify.notified().await;
                continue;
            };
            while tasks.len() >= EFFECT_CONCURRENCY {
                tasks.join_next().await;
            }
            while tasks.try_join_next().is_some() {}
            let (key, uid) = match &effect {
                Effect::Unschedulable { key, uid, .. } | Effect::Event { key, uid, .. } => (key.clone(), uid.clone()),
            };
            let Some(pod) = pods.get(&key) else { continue };
            if crate::util::uid(&pod) != uid {
                continue;
            }
            let client = ctx.client.clone();
            let recorder = recorder.clone();
            match effect {
                Effect::Unschedulable { message, .. } => {
                    if !str_at(&pod, "/spec/nodeName").is_empty() {
                        continue;
                    }
                    let now = Instant::now();
                    let due = last_event
                        .get(&key)
                        .is_none_or(|(m, t)| *m != message || now.duration_since(*t) >= Duration::from_secs(60));
                    if due {
                        last_event.insert(key.clone(), (message.clone(), now));
                        if last_event.len() > 50_000 {
                            last_event.retain(|_, (_, t)| now.duration_since(*t) < Duration::from_secs(600));
                        }
                    }
                    let patch = unschedulable_patch(&pod, &message, &crate::util::timestamp(crate::util::now()));
                    tasks.spawn(async move {
                        if let Some(patch) = patch {
                            let ns = crate::util::namespace(&pod);
                            if let Err(e) = client.merge_patch_status(res("", "pods"), Some(ns), crate::util::name(&pod), patch).await {
                                tracing::debug!(pod = %key, error = %e, "could not set PodScheduled=False");
                            }
                        }
                        if due {
                            recorder.event(&pod, "Warning", "FailedScheduling", &message).await;
                        }
                    });
                }
                Effect::Event { kind, reason, message, .. } => {
                    tasks.spawn(async move { recorder.event(&pod, kind, reason, &message).await });
                }
            }
        }
    }
}

/// The status patch setting PodScheduled=False/Unschedulable, or None when the pod already
/// says so. Conditions are a list, which a merge patch replaces whole: the patch carries the
/// pod's other conditions, and its resourceVersion so it cannot overwrite a newer status.
pub fn unschedulable_patch(pod: &Value, message: &str, now: &str) -> Option<Value> {
    let conds: Vec<Value> = pod.pointer("/status/conditions").and_then(|c| c.as_array()).cloned().unwrap_or_default();
    let cur = conds.iter().find(|c| c.get("type").and_then(|t| t.as_str()) == Some("PodScheduled"));
    let cur_status = cur.map(|c| str_at(c, "/status")).unwrap_or("");
    if cur_status == "False" && cur.is_some_and(|c| str_at(c, "/reason") == "Unschedulable" && str_at(c, "/message") == message) {
        return None;
    }
    let since = match cur {
        Some(c) if cur_status == "False" && !str_at(c, "/lastTransitionTime").is_empty() => str_at(c, "/lastTransitionTime").to_string(),
        _ => now.to_string(),
    };
    let mut list: Vec<Value> = conds
        .into_iter()
        .filter(|c| c.get("type").and_then(|t| t.as_str()) != Some("PodScheduled"))
        .collect();
    list.push(json!({
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastTransitionTime": since,
    }));
    let mut patch = json!({"status": {"conditions": list}});
    if let Some(rv) = pod.pointer("/metadata/resourceVersion").filter(|r| r.as_str().is_some_and(|s| !s.is_empty())) {
        patch["metadata"] = json!({"resourceVersion": rv});
    }
    Some(patch)
}
