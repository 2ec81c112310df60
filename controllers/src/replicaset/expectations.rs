//! Kubernetes' ControllerExpectations (with the UID-tracking variant for deletions): how many
//! creations and which deletions a controller has issued but not yet seen in its informer
//! cache. A controller that syncs while its writes are still in flight would count pods that are
//! about to appear (or disappear) a second time and create or delete too many.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// After this long without being fulfilled, expectations are considered stale (a watch event
/// was lost, or a write the controller thought failed actually went through) and the
/// controller syncs anyway rather than waiting forever.
pub const EXPECTATIONS_TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Expectation {
    add: i64,
    del: i64,
    /// Keys of the pods whose deletion we wait to observe: a pod is counted once even if its
    /// deletion is seen twice (deletionTimestamp set, then gone).
    deleting: HashSet<String>,
    since: Instant,
}

#[derive(Debug, Default)]
pub struct Expectations {
    by_key: Mutex<HashMap<String, Expectation>>,
    ttl: Option<Duration>,
}

impl Expectations {
    pub fn new() -> Expectations {
        Expectations::default()
    }

    /// For tests: a shorter time to live.
    pub fn with_ttl(ttl: Duration) -> Expectations {
        Expectations { by_key: Mutex::default(), ttl: Some(ttl) }
    }

    fn ttl(&self) -> Duration {
        self.ttl.unwrap_or(EXPECTATIONS_TTL)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Expectation>> {
        // A poisoned lock only means another worker panicked mid-update; the counters are still
        // usable (worst case a sync happens early or late).
        self.by_key.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the controller may act: nothing is in flight, or what is in flight is too old to
    /// wait for. Keys never seen are satisfied (a fresh controller has nothing in flight).
    pub fn satisfied(&self, key: &str) -> bool {
        match self.lock().get(key) {
            None => true,
            Some(e) => (e.add <= 0 && e.del <= 0) || e.since.elapsed() > self.ttl(),
        }
    }

    pub fn expect_creations(&self, key: &str, n: usize) {
        self.lock().insert(key.to_string(), Expectation { add: n as i64, del: 0, deleting: HashSet::new(), since: Instant::now() });
    }

    pub fn expect_deletions(&self, key: &str, pod_keys: &[String]) {
        let deleting: HashSet<String> = pod_keys.iter().cloned().collect();
        let del = deleting.len() as i64;
        self.lock().insert(key.to_string(), Expectation { add: 0, del, deleting, since: Instant::now() });
    }

    /// A pod we may have created was seen (or a creation we expected will never happen).
    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.add -= 1;
        }
    }

    /// A pod was seen deleted; counts only if it is one we are waiting for, and only once.
    pub fn deletion_observed(&self, key: &str, pod_key: &str) {
        if let Some(e) = self.lock().get_mut(key)
            && e.deleting.remove(pod_key)
        {
            e.del -= 1;
        }
    }

    pub fn delete(&self, key: &str) {
        self.lock().remove(key);
    }

    /// (creations, deletions) still expected, for tests and logs.
    pub fn pending(&self, key: &str) -> Option<(i64, i64)> {
        self.lock().get(key).map(|e| (e.add, e.del))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_table() {
        // (name, steps, satisfied at the end)
        enum Step {
            Create(usize),
            Delete(&'static [&'static str]),
            Created,
            Deleted(&'static str),
            Forget,
        }
        use Step::*;
        let cases: Vec<(&str, Vec<Step>, bool)> = vec![
            ("unknown key", vec![], true),
            ("creations in flight", vec![Create(3), Created, Created], false),
            ("creations all seen", vec![Create(3), Created, Created, Created], true),
            ("more seen than expected", vec![Create(1), Created, Created], true),
            ("deletions in flight", vec![Delete(&["ns/a", "ns/b"]), Deleted("ns/a")], false),
            ("same deletion seen twice counts once", vec![Delete(&["ns/a", "ns/b"]), Deleted("ns/a"), Deleted("ns/a")], false),
            ("unrelated deletion ignored", vec![Delete(&["ns/a"]), Deleted("ns/z")], false),
            ("deletions all seen", vec![Delete(&["ns/a", "ns/b"]), Deleted("ns/b"), Deleted("ns/a")], true),
            ("forgotten", vec![Create(5), Forget], true),
        ];
        for (name, steps, want) in cases {
            let e = Expectations::new();
            for s in steps {
                match s {
                    Create(n) => e.expect_creations("ns/rs", n),
                    Delete(keys) => e.expect_deletions("ns/rs", &keys.iter().map(|k| k.to_string()).collect::<Vec<_>>()),
                    Created => e.creation_observed("ns/rs"),
                    Deleted(k) => e.deletion_observed("ns/rs", k),
                    Forget => e.delete("ns/rs"),
                }
            }
            assert_eq!(e.satisfied("ns/rs"), want, "{name}");
        }
    }

    #[test]
    fn stale_expectations_expire() {
        let e = Expectations::with_ttl(Duration::from_millis(1));
        e.expect_creations("ns/rs", 2);
        std::thread::sleep(Duration::from_millis(5));
        assert!(e.satisfied("ns/rs"));
    }
}
