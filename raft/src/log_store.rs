//! The Raft log in the `log` column family of the master's RocksDB.
//!
//! Appends are written at once (so they are readable when `append` returns) and made durable by
//! a dedicated sync thread that fsyncs the write-ahead log and only then tells openraft the
//! entries are flushed. Appends that arrive while a sync runs are covered by the next one: one
//! fsync acknowledges many appends (group commit), which is where the write throughput comes from.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Condvar, Mutex};

use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{OptionalSend, entry::RaftEntry};
use storage::Store;

use crate::types::{Entry, LogId, TypeConfig, Vote};

const KEY_VOTE: &[u8] = b"raft/vote";
const KEY_PURGED: &[u8] = b"raft/purged";
const KEY_COMMITTED: &[u8] = b"raft/committed";

#[derive(Clone)]
pub struct LogStore {
    store: Store,
    syncer: Arc<Syncer>,
}

impl LogStore {
    pub fn new(store: Store) -> LogStore {
        let syncer = Syncer::start(store.clone());
        LogStore { store, syncer }
    }

    /// Records that everything up to `log_id` is covered by a snapshot (used by restore).
    pub fn set_purged(store: &Store, log_id: &LogId) -> io::Result<()> {
        store.local_put(&[(KEY_PURGED, &encode(log_id)?)], true).map_err(io::Error::other)
    }

    /// Sets the vote directly (used by restore, before the node runs).
    pub fn set_vote(store: &Store, vote: &Vote) -> io::Result<()> {
        store.local_put(&[(KEY_VOTE, &encode(vote)?)], true).map_err(io::Error::other)
    }
}

fn encode<T: serde::Serialize>(v: &T) -> io::Result<Vec<u8>> {
    bincode::serialize(v).map_err(io::Error::other)
}

fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> io::Result<T> {
    bincode::deserialize(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn to_io(e: storage::StoreError) -> io::Error {
    io::Error::other(e)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => e.saturating_add(1),
            Bound::Excluded(e) => *e,
            Bound::Unbounded => u64::MAX,
        };
        let raw = self.store.log_range(start, end).map_err(to_io)?;
        raw.iter().map(|(_, b)| decode(b)).collect()
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        match self.store.local_get(KEY_VOTE).map_err(to_io)? {
            Some(b) => Ok(Some(decode(&b)?)),
            None => Ok(None),
        }
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged: Option<LogId> = match self.store.local_get(KEY_PURGED).map_err(to_io)? {
            Some(b) => Some(decode(&b)?),
            None => None,
        };
        let last = match self.store.log_last().map_err(to_io)? {
            Some((_, b)) => Some(decode::<Entry>(&b)?.log_id()),
            None => last_purged.clone(),
        };
        Ok(LogState { last_purged_log_id: last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        // A vote must be on disk before it is acted on: a synced write.
        self.store.local_put(&[(KEY_VOTE, &encode(vote)?)], true).map_err(to_io)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Not synced: it only lets a restart re-apply up to the known commit sooner.
        self.store.local_put(&[(KEY_COMMITTED, &encode(&committed)?)], false).map_err(to_io)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        match self.store.local_get(KEY_COMMITTED).map_err(to_io)? {
            Some(b) => decode(&b),
            None => Ok(None),
        }
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded: Vec<(u64, Vec<u8>)> =
            entries.into_iter().map(|e| Ok((e.index(), encode(&e)?))).collect::<io::Result<_>>()?;
        self.store.log_append(encoded.iter().map(|(i, b)| (*i, b.as_slice()))).map_err(to_io)?;
        self.syncer.request(callback);
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map(|l| l.index + 1).unwrap_or(0);
        self.store.log_truncate_from(from).map_err(to_io)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.store.log_purge_upto(log_id.index, &[(KEY_PURGED, &encode(&log_id)?)]).map_err(to_io)
    }
}

/// Group commit: one thread fsyncs the WAL for everything appended so far, then completes every
/// callback that was queued before the sync started.
struct Syncer {
    pending: Mutex<Vec<IOFlushed<TypeConfig>>>,
    wake: Condvar,
}

impl Syncer {
    fn start(store: Store) -> Arc<Syncer> {
        let syncer = Arc::new(Syncer { pending: Mutex::new(Vec::new()), wake: Condvar::new() });
        let weak = Arc::downgrade(&syncer);
        std::thread::Builder::new()
            .name("raft-log-sync".into())
            .spawn(move || {
                loop {
                    let Some(s) = weak.upgrade() else { return };
                    let batch = {
                        let mut pending = s.pending.lock().expect("sync queue lock");
                        while pending.is_empty() {
                            let (guard, timeout) = s
                                .wake
                                .wait_timeout(pending, std::time::Duration::from_millis(200))
                                .expect("sync queue lock");
                            pending = guard;
                            if timeout.timed_out() && pending.is_empty() && Arc::strong_count(&s) == 1 {
                                return;
                            }
                        }
                        std::mem::take(&mut *pending)
                    };
                    drop(s);
                    let result = store.sync();
                    for cb in batch {
                        cb.io_completed(match &result {
                            Ok(()) => Ok(()),
                            Err(e) => Err(io::Error::other(e.to_string())),
                        });
                    }
                }
            })
            .expect("spawn raft-log-sync thread");
        syncer
    }

    fn request(&self, cb: IOFlushed<TypeConfig>) {
        self.pending.lock().expect("sync queue lock").push(cb);
        self.wake.notify_one();
    }
}
