//! The scheduling queue, as Kubernetes' has it: pods ready to try (highest priority, then
//! oldest first), pods backing off after a failed attempt (1 s doubling to 10 s), and
//! unschedulable pods parked until a cluster event that could help them, or a periodic flush.
//!
//! It is synchronous and owned by the scheduler loop, which pops pods in bursts and batches
//! their bindings; the generic [`crate::queue::WorkQueue`] has neither priorities nor a way to
//! pop without awaiting.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Parked {
    since: Instant,
    mask: u32,
    priority: i64,
}

#[derive(Default)]
pub struct SchedulingQueue {
    active: BTreeSet<(Reverse<i64>, u64, String)>,
    active_index: HashMap<String, (i64, u64)>,
    backoff: BTreeSet<(Instant, String)>,
    backoff_index: HashMap<String, (Instant, i64)>,
    unschedulable: HashMap<String, Parked>,
    /// Failed attempts and the time of the last one, per pod, for its backoff.
    attempts: HashMap<String, (u32, Instant)>,
    seq: u64,
}

pub fn backoff_for(attempts: u32) -> Duration {
    if attempts == 0 {
        return Duration::ZERO;
    }
    INITIAL_BACKOFF.saturating_mul(1u32 << (attempts - 1).min(16)).min(MAX_BACKOFF)
}

impl SchedulingQueue {
    pub fn new() -> SchedulingQueue {
        SchedulingQueue::default()
    }

    fn take(&mut self, key: &str) {
        if let Some((p, s)) = self.active_index.remove(key) {
            self.active.remove(&(Reverse(p), s, key.to_string()));
        }
        if let Some((t, _)) = self.backoff_index.remove(key) {
            self.backoff.remove(&(t, key.to_string()));
        }
        self.unschedulable.remove(key);
    }

    fn push_active(&mut self, key: String, priority: i64) {
        self.seq += 1;
        self.active_index.insert(key.clone(), (priority, self.seq));
        self.active.insert((Reverse(priority), self.seq, key));
    }

    fn push_backoff(&mut self, key: String, priority: i64, until: Instant) {
        self.backoff_index.insert(key.clone(), (until, priority));
        self.backoff.insert((until, key));
    }

    /// Where a pod goes when it may be retried: straight to active unless still backing off.
    fn requeue(&mut self, key: String, priority: i64, now: Instant) {
        let until = self.attempts.get(&key).map(|(n, last)| *last + backoff_for(*n));
        match until {
            Some(u) if u > now => self.push_backoff(key, priority, u),
            _ => self.push_active(key, priority),
        }
    }

    /// A new pending pod: ready at once.
    pub fn add(&mut self, key: &str, priority: i64) {
        if self.active_index.contains_key(key) {
            return;
        }
        self.take(key);
        self.push_active(key.to_string(), priority);
    }

    /// A pending pod changed in a way that may make it schedulable.
    pub fn update(&mut self, key: &str, priority: i64, now: Instant) {
        if self.active_index.contains_key(key) || self.backoff_index.contains_key(key) {
            return;
        }
        self.take(key);
        self.requeue(key.to_string(), priority, now);
    }

    pub fn contains(&self, key: &str) -> bool {
        self.active_index.contains_key(key) || self.backoff_index.contains_key(key) || self.unschedulable.contains_key(key)
    }

    pub fn is_unschedulable(&self, key: &str) -> bool {
        self.unschedulable.contains_key(key)
    }

    /// The next pod to try.
    pub fn pop(&mut self) -> Option<String> {
        let first = self.active.pop_first()?;
        self.active_index.remove(&first.2);
        Some(first.2)
    }

    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    pub fn len(&self) -> usize {
        self.active.len() + self.backoff.len() + self.unschedulable.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn failed(&mut self, key: &str, now: Instant) {
        let e = self.attempts.entry(key.to_string()).or_insert((0, now));
        e.0 = e.0.saturating_add(1);
        e.1 = now;
    }

    /// The attempt failed for a reason other than the cluster (a failed binding): retry
    /// after the backoff.
    pub fn backoff(&mut self, key: &str, priority: i64, now: Instant) {
        self.failed(key, now);
        self.take(key);
        self.requeue(key.to_string(), priority, now);
    }

    /// No node fits: park the pod until an event matching `mask` (see the `P_*` bits).
    pub fn unschedulable(&mut self, key: &str, priority: i64, mask: u32, now: Instant) {
        self.failed(key, now);
        self.take(key);
        self.unschedulable.insert(key.to_string(), Parked { since: now, mask, priority });
    }

    /// A cluster event that may help pods that failed on `mask`.
    pub fn move_unschedulable(&mut self, mask: u32, now: Instant) -> usize {
        let keys: Vec<String> = self.unschedulable.iter().filter(|(_, p)| p.mask & mask != 0).map(|(k, _)| k.clone()).collect();
        for k in &keys {
            if let Some(p) = self.unschedulable.remove(k) {
                self.requeue(k.clone(), p.priority, now);
            }
        }
        keys.len()
    }

    /// Backed-off pods whose time came, and pods parked longer than `max_parked` (`MAX` skips
    /// that scan, which costs in proportion to the parked pods).
    pub fn flush(&mut self, now: Instant, max_parked: Duration) {
        while let Some((t, _)) = self.backoff.first() {
            if *t > now {
                break;
            }
            let Some((_, key)) = self.backoff.pop_first() else { break };
            if let Some((_, prio)) = self.backoff_index.remove(&key) {
                self.push_active(key, prio);
            }
        }
        if max_parked == Duration::MAX {
            return;
        }
        let stale: Vec<String> = self
            .unschedulable
            .iter()
            .filter(|(_, p)| now.duration_since(p.since) >= max_parked)
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            if let Some(p) = self.unschedulable.remove(&k) {
                self.requeue(k, p.priority, now);
            }
        }
    }

    /// When the next backed-off pod becomes ready.
    pub fn next_backoff(&self) -> Option<Instant> {
        self.backoff.first().map(|(t, _)| *t)
    }

    /// The pod was bound (or no longer needs scheduling).
    pub fn done(&mut self, key: &str) {
        self.attempts.remove(key);
    }

    /// The pod is gone or not ours any more.
    pub fn remove(&mut self, key: &str) {
        self.take(key);
        self.attempts.remove(key);
    }

    /// Keys anywhere in the queue (for reconciling after a relist).
    pub fn keys(&self) -> Vec<String> {
        self.active_index
            .keys()
            .chain(self.backoff_index.keys())
            .chain(self.unschedulable.keys())
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_then_fifo() {
        let mut q = SchedulingQueue::new();
        q.add("a", 0);
        q.add("b", 10);
        q.add("c", 0);
        q.add("a", 0);
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop().as_deref(), Some("b"));
        assert_eq!(q.pop().as_deref(), Some("a"));
        assert_eq!(q.pop().as_deref(), Some("c"));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn backoff_doubles_to_ten_seconds() {
        let table = [(0, 0), (1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (30, 10)];
        for (n, secs) in table {
            assert_eq!(backoff_for(n), Duration::from_secs(secs), "attempts {n}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unschedulable_pods_move_only_on_matching_events_and_respect_backoff() {
        let mut q = SchedulingQueue::new();
        let t0 = Instant::now();
        q.add("p", 0);
        assert_eq!(q.pop().as_deref(), Some("p"));
        q.unschedulable("p", 0, 4, t0);
        assert!(q.is_unschedulable("p"));
        assert_eq!(q.move_unschedulable(2, t0), 0, "unrelated event");
        assert_eq!(q.move_unschedulable(4, t0), 1);
        // Still within its 1 s backoff: not poppable yet.
        assert!(!q.has_active());
        assert_eq!(q.next_backoff(), Some(t0 + Duration::from_secs(1)));
        q.flush(t0 + Duration::from_millis(999), Duration::from_secs(15));
        assert!(!q.has_active());
        q.flush(t0 + Duration::from_secs(1), Duration::from_secs(15));
        assert_eq!(q.pop().as_deref(), Some("p"));
        // Parked pods come back after the periodic flush interval.
        q.unschedulable("p", 0, 4, t0 + Duration::from_secs(2));
        q.flush(t0 + Duration::from_secs(10), Duration::from_secs(15));
        assert!(!q.has_active());
        q.flush(t0 + Duration::from_secs(17), Duration::from_secs(15));
        assert_eq!(q.pop().as_deref(), Some("p"));
        q.remove("p");
        assert!(q.is_empty());
    }
}
