//! A work queue of object keys with Kubernetes' semantics: a key is queued at most once; a key
//! re-added while a worker processes it is processed again afterwards (never concurrently);
//! failures back off exponentially per key.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Default)]
struct State {
    order: VecDeque<String>,
    queued: HashSet<String>,
    processing: HashSet<String>,
    dirty: HashSet<String>,
    failures: HashMap<String, u32>,
}

#[derive(Clone, Default)]
pub struct WorkQueue {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

const BASE_DELAY: Duration = Duration::from_millis(5);
const MAX_DELAY: Duration = Duration::from_secs(60);

impl WorkQueue {
    pub fn new() -> WorkQueue {
        WorkQueue::default()
    }

    pub fn add(&self, key: impl Into<String>) {
        let key = key.into();
        let mut s = self.state.lock().expect("queue lock");
        if s.processing.contains(&key) {
            s.dirty.insert(key);
            return;
        }
        if s.queued.insert(key.clone()) {
            s.order.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    pub fn add_after(&self, key: impl Into<String>, delay: Duration) {
        let key = key.into();
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
    }

    /// Re-queues after a failure, backing off exponentially for this key.
    pub fn add_rate_limited(&self, key: impl Into<String>) {
        let key = key.into();
        let n = {
            let mut s = self.state.lock().expect("queue lock");
            let n = s.failures.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let delay = BASE_DELAY.saturating_mul(1u32 << n.min(20)).min(MAX_DELAY);
        self.add_after(key, delay);
    }

    /// Clears the failure count of a key that succeeded.
    pub fn forget(&self, key: &str) {
        self.state.lock().expect("queue lock").failures.remove(key);
    }

    /// The next key to process; call [`WorkQueue::done`] when finished with it.
    pub async fn next(&self) -> String {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.state.lock().expect("queue lock");
                if let Some(key) = s.order.pop_front() {
                    s.queued.remove(&key);
                    s.processing.insert(key.clone());
                    return key;
                }
            }
            notified.await;
        }
    }

    pub fn done(&self, key: &str) {
        let mut s = self.state.lock().expect("queue lock");
        s.processing.remove(key);
        if s.dirty.remove(key) && s.queued.insert(key.to_string()) {
            s.order.push_back(key.to_string());
            drop(s);
            self.notify.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.state.lock().expect("queue lock").order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedups_and_never_processes_a_key_twice_at_once() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let k = q.next().await;
        assert_eq!(k, "a");
        q.add("a"); // while processing: marked dirty, not queued
        assert_eq!(q.len(), 1);
        assert_eq!(q.next().await, "b");
        q.done("b");
        q.done("a");
        assert_eq!(q.next().await, "a", "re-added while processing comes back after done");
    }
}
