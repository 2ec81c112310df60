//! Watches: history replay from the `events` column family, then the live broadcast, with no
//! gaps and no duplicates. A watcher that falls behind the broadcast goes back to replaying
//! from disk instead of being dropped; only compaction past its position ends it (`TooOld`).

use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};

use crate::error::{Result, StoreError};
use crate::store::{Broadcast, Store};
use crate::types::WatchEvent;

/// How many events one replay read returns at most (whole revisions are never split).
const REPLAY_CHUNK: usize = 1024;

enum Mode {
    Replay,
    Live,
}

/// An ordered stream of the changes under a key prefix after a revision.
pub struct Watcher {
    store: Store,
    prefix: String,
    last_rev: u64,
    rx: broadcast::Receiver<Broadcast>,
    mode: Mode,
}

impl Store {
    /// Watches keys under `prefix` for changes with revisions strictly greater than `after`.
    /// `after` older than the compacted revision fails with [`StoreError::TooOld`].
    pub fn watch(&self, prefix: &str, after: u64) -> Result<Watcher> {
        // Subscribe before looking at any revision, so nothing applied from now on is missed.
        let rx = self.subscribe();
        let compacted = self.compacted_revision();
        if after < compacted {
            return Err(StoreError::TooOld { requested: after, compacted });
        }
        let current = self.current_revision();
        if after > current {
            return Err(StoreError::FutureRevision { requested: after, current });
        }
        Ok(Watcher { store: self.clone(), prefix: prefix.to_string(), last_rev: after, rx, mode: Mode::Replay })
    }
}

impl Watcher {
    /// The revision up to which this watcher has delivered every event.
    pub fn last_rev(&self) -> u64 {
        self.last_rev
    }

    /// The next events, in revision order, one or more whole revisions at a time.
    pub async fn next(&mut self) -> Result<Vec<WatchEvent>> {
        loop {
            match self.mode {
                Mode::Replay => {
                    let upto = self.store.current_revision();
                    let (events, covered) = self.store.read_events(&self.prefix, self.last_rev, upto, REPLAY_CHUNK)?;
                    self.last_rev = covered;
                    if covered >= upto {
                        self.mode = Mode::Live;
                    }
                    if !events.is_empty() {
                        return Ok(events);
                    }
                }
                Mode::Live => match self.rx.recv().await {
                    Ok(Broadcast::Events(batch)) => {
                        if let Some(events) = self.take_new(&batch) {
                            return Ok(events);
                        }
                    }
                    Ok(Broadcast::Reset) | Err(RecvError::Lagged(_)) => self.mode = Mode::Replay,
                    Err(RecvError::Closed) => return Err(StoreError::Corrupt("store closed".into())),
                },
            }
        }
    }

    fn take_new(&mut self, batch: &Arc<Vec<WatchEvent>>) -> Option<Vec<WatchEvent>> {
        let max_rev = batch.last()?.rev;
        if max_rev <= self.last_rev {
            return None;
        }
        let events: Vec<WatchEvent> = batch
            .iter()
            .filter(|e| e.rev > self.last_rev && e.key.starts_with(&self.prefix))
            .cloned()
            .collect();
        self.last_rev = max_rev;
        (!events.is_empty()).then_some(events)
    }
}
