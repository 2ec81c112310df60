//! The MVCC object store on RocksDB.
//!
//! Column families:
//! - `current`: key → `[create_rev][mod_rev][value]`, the latest version of each live key.
//! - `mvcc`:    `key \0 rev` → `[tombstone][create_rev][value]`, every kept version.
//! - `events`:  `rev seq` → [`EventRecord`], which keys each revision touched, for watch replay.
//! - `smmeta`:  replicated state-machine metadata (current and compacted revision, plus whatever
//!   the caller stores alongside an apply, e.g. the applied Raft log id). Exported in snapshots.
//! - `log`:     opaque log entries by index (the Raft log lives here, in the same database).
//! - `local`:   node-local metadata that is never part of a snapshot (vote, identity).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::codec::*;
use crate::error::{Result, StoreError};
use crate::types::*;

pub(crate) const CF_CURRENT: &str = "current";
pub(crate) const CF_MVCC: &str = "mvcc";
pub(crate) const CF_EVENTS: &str = "events";
pub(crate) const CF_SMMETA: &str = "smmeta";
pub(crate) const CF_LOG: &str = "log";
pub(crate) const CF_LOCAL: &str = "local";
const ALL_CFS: [&str; 6] = [CF_CURRENT, CF_MVCC, CF_EVENTS, CF_SMMETA, CF_LOG, CF_LOCAL];
/// The column families that make up replicated state (what a snapshot carries).
pub(crate) const STATE_CFS: [&str; 4] = [CF_CURRENT, CF_MVCC, CF_EVENTS, CF_SMMETA];

const META_REV: &[u8] = b"store/rev";
const META_COMPACTED: &[u8] = b"store/compacted";

/// How many revisions' worth of event batches the live broadcast buffers before a slow watcher
/// falls back to replaying from disk.
const BROADCAST_CAPACITY: usize = 1024;

#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct EventRecord {
    pub key: String,
    pub deleted: bool,
    pub create_rev: u64,
    /// Modification revision of the version this change replaced, 0 when the key was absent.
    pub prev_rev: u64,
}

#[derive(Clone, Debug)]
pub(crate) enum Broadcast {
    Events(Arc<Vec<WatchEvent>>),
    /// The whole state was replaced (snapshot installed): live watchers must re-read from disk.
    Reset,
}

/// Tunables for the RocksDB instance.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub block_cache_bytes: usize,
    pub write_buffer_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { block_cache_bytes: 32 << 20, write_buffer_bytes: 16 << 20 }
    }
}

pub(crate) struct Inner {
    pub db: DB,
    pub path: PathBuf,
    pub rev: AtomicU64,
    pub compacted: AtomicU64,
    pub applied_tx: watch::Sender<u64>,
    pub events_tx: broadcast::Sender<Broadcast>,
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

/// A live (not tombstoned) version as seen by a batch being applied.
#[derive(Clone)]
struct Live {
    create_rev: u64,
    mod_rev: u64,
    value: Bytes,
}

impl Store {
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Self::open_with(path, &StoreOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, opts: &StoreOptions) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path)?;
        let cache = Cache::new_lru_cache(opts.block_cache_bytes);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_background_jobs(2);
        db_opts.set_keep_log_file_num(3);
        db_opts.set_max_total_wal_size(128 << 20);
        let cfs = ALL_CFS.iter().map(|name| {
            let mut o = Options::default();
            o.set_block_based_table_factory(&table);
            o.set_write_buffer_size(opts.write_buffer_bytes);
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(*name, o)
        });
        let db = DB::open_cf_descriptors(&db_opts, &path, cfs)?;
        let rev = read_meta_u64(&db, META_REV)?;
        let compacted = read_meta_u64(&db, META_COMPACTED)?;
        let (applied_tx, _) = watch::channel(rev);
        let (events_tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                path,
                rev: AtomicU64::new(rev),
                compacted: AtomicU64::new(compacted),
                applied_tx,
                events_tx,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        // Every column family is created at open: a missing one is a programming error.
        self.inner.db.cf_handle(name).expect("column family opened at startup")
    }

    pub(crate) fn db(&self) -> &DB {
        &self.inner.db
    }

    /// The revision of the last applied entry (every entry counts, even one that wrote nothing).
    pub fn current_revision(&self) -> u64 {
        self.inner.rev.load(Ordering::Acquire)
    }

    /// History at and below this revision is gone.
    pub fn compacted_revision(&self) -> u64 {
        self.inner.compacted.load(Ordering::Acquire)
    }

    /// Resolves once the store has applied `rev`.
    pub async fn wait_applied(&self, rev: u64) {
        let mut rx = self.inner.applied_tx.subscribe();
        // The sender lives as long as the store, so this can only end by reaching `rev`.
        let _ = rx.wait_for(|applied| *applied >= rev).await;
    }

    /// A receiver of the applied revision.
    pub fn applied_watch(&self) -> watch::Receiver<u64> {
        self.inner.applied_tx.subscribe()
    }

    // ------------------------------------------------------------------------------------------
    // Apply
    // ------------------------------------------------------------------------------------------

    /// Applies a batch of changes, each at its own revision (strictly increasing and above the
    /// current revision), and writes `meta` (e.g. the applied Raft log id) into the same atomic
    /// RocksDB batch. Returns the per-operation verdicts of each change.
    ///
    /// Not synced: the Raft log is the durable record, and replaying it is idempotent because
    /// the applied position is written atomically with the state.
    pub fn apply(&self, changes: &[(u64, &Change)], meta: &[(&[u8], &[u8])]) -> Result<Vec<Vec<OpResult>>> {
        let mut results = Vec::with_capacity(changes.len());
        let mut pending = PendingBatch::default();
        let mut last_rev = self.current_revision();
        for (rev, change) in changes {
            let rev = *rev;
            // Index 0 is Raft's initial membership entry: the one change allowed at revision 0.
            let initial_noop = rev == 0 && last_rev == 0 && matches!(change, Change::Noop);
            if rev <= last_rev && !initial_noop {
                return Err(StoreError::Corrupt(format!(
                    "apply at revision {rev} after revision {last_rev}: revisions must increase"
                )));
            }
            last_rev = rev;
            match change {
                Change::Txn { ops, atomic } => results.push(self.apply_txn(&mut pending, rev, ops, *atomic)?),
                Change::Noop => results.push(Vec::new()),
                Change::Compact { rev: target } => {
                    // Compaction reads the mvcc column family directly: write what is pending first.
                    self.commit(&mut pending, rev - 1, &[])?;
                    self.compact(rev, *target)?;
                    results.push(Vec::new());
                }
            }
        }
        self.commit(&mut pending, last_rev, meta)?;
        Ok(results)
    }

    fn apply_txn(&self, p: &mut PendingBatch, rev: u64, ops: &[Op], atomic: bool) -> Result<Vec<OpResult>> {
        // Verdicts first, against the state as of the previous revision plus this txn's own
        // earlier ops (so "create then update" in one txn behaves sequentially).
        let mut local: HashMap<&str, Option<Live>> = HashMap::new();
        let mut verdicts = Vec::with_capacity(ops.len());
        for op in ops {
            let key = op.key();
            let current = match local.get(key) {
                Some(v) => v.clone(),
                None => p.get_live(self, key)?,
            };
            let verdict = evaluate(op, current.as_ref(), rev);
            if let OpResult::Ok { create_rev, .. } = &verdict {
                let next = match op {
                    Op::Delete { .. } => None,
                    Op::Create { value, .. } | Op::Update { value, .. } | Op::Put { value, .. } => {
                        Some(Live { create_rev: *create_rev, mod_rev: rev, value: value.clone() })
                    }
                };
                local.insert(key, next);
            }
            verdicts.push(verdict);
        }
        if atomic && verdicts.iter().any(|v| !v.is_ok()) {
            return Ok(verdicts.into_iter().map(|v| if v.is_ok() { OpResult::Aborted } else { v }).collect());
        }
        // Then the writes, in op order.
        let mut seq = 0u32;
        for (op, verdict) in ops.iter().zip(&verdicts) {
            if !verdict.is_ok() {
                continue;
            }
            let key = op.key();
            let before = p.get_live(self, key)?;
            let prev_rev = before.as_ref().map(|l| l.mod_rev).unwrap_or(0);
            match op {
                Op::Delete { .. } => {
                    let before = before.expect("delete verdict Ok implies the key is live");
                    p.batch.put_cf(self.cf(CF_MVCC), mvcc_key(key, rev), encode_version(true, before.create_rev, &[]));
                    p.batch.delete_cf(self.cf(CF_CURRENT), key.as_bytes());
                    let rec = EventRecord { key: key.to_string(), deleted: true, create_rev: before.create_rev, prev_rev };
                    p.batch.put_cf(self.cf(CF_EVENTS), event_key(rev, seq), encode_record(&rec)?);
                    p.events.push(WatchEvent {
                        rev,
                        key: key.to_string(),
                        kind: EventKind::Deleted,
                        value: before.value.clone(),
                        prev_value: Some(before.value),
                        create_rev: rec.create_rev,
                    });
                    p.overlay.insert(key.to_string(), None);
                }
                Op::Create { value, .. } | Op::Update { value, .. } | Op::Put { value, .. } => {
                    let create_rev = before.as_ref().map(|l| l.create_rev).unwrap_or(rev);
                    p.batch.put_cf(self.cf(CF_MVCC), mvcc_key(key, rev), encode_version(false, create_rev, value));
                    p.batch.put_cf(self.cf(CF_CURRENT), key.as_bytes(), encode_current(create_rev, rev, value));
                    let rec = EventRecord { key: key.to_string(), deleted: false, create_rev, prev_rev };
                    p.batch.put_cf(self.cf(CF_EVENTS), event_key(rev, seq), encode_record(&rec)?);
                    p.events.push(WatchEvent {
                        rev,
                        key: key.to_string(),
                        kind: if create_rev == rev { EventKind::Created } else { EventKind::Modified },
                        value: value.clone(),
                        prev_value: before.map(|l| l.value),
                        create_rev,
                    });
                    p.overlay.insert(key.to_string(), Some(Live { create_rev, mod_rev: rev, value: value.clone() }));
                }
            }
            seq += 1;
        }
        Ok(verdicts)
    }

    /// Writes the pending batch with the store's revision set to `rev`, then publishes.
    fn commit(&self, p: &mut PendingBatch, rev: u64, meta: &[(&[u8], &[u8])]) -> Result<()> {
        let smmeta = self.cf(CF_SMMETA);
        if rev > self.current_revision() {
            p.batch.put_cf(smmeta, META_REV, rev_bytes(rev));
        }
        for (k, v) in meta {
            p.batch.put_cf(smmeta, k, v);
        }
        if p.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut p.batch);
        let mut wo = WriteOptions::default();
        wo.set_sync(false);
        self.inner.db.write_opt(batch, &wo)?;
        p.overlay.clear();
        if rev > self.current_revision() {
            self.inner.rev.store(rev, Ordering::Release);
        }
        if !p.events.is_empty() {
            let events = Arc::new(std::mem::take(&mut p.events));
            // No receivers is fine: nobody is watching.
            let _ = self.inner.events_tx.send(Broadcast::Events(events));
        }
        self.inner.applied_tx.send_replace(self.current_revision());
        Ok(())
    }

    /// Drops every version superseded at or below `target`, and the event records at or below it.
    /// Runs at revision `rev` (the entry carrying the compaction).
    fn compact(&self, rev: u64, target: u64) -> Result<()> {
        let old = self.compacted_revision();
        let target = target.min(rev - 1);
        let mut batch = WriteBatch::default();
        let smmeta = self.cf(CF_SMMETA);
        batch.put_cf(smmeta, META_REV, rev_bytes(rev));
        if target > old {
            let events = self.cf(CF_EVENTS);
            let mvcc = self.cf(CF_MVCC);
            // Which keys changed in (old, target]: only their old versions can be dropped.
            let mut keys = BTreeSet::new();
            let start = event_key(old + 1, 0);
            for item in self.inner.db.iterator_cf(events, IteratorMode::From(&start, Direction::Forward)) {
                let (k, v) = item?;
                if decode_u64(&k)? > target {
                    break;
                }
                keys.insert(decode_record(&v)?.key);
            }
            for key in &keys {
                let mut versions: Vec<(Vec<u8>, bool)> = Vec::new();
                let from = mvcc_key(key, 0);
                for item in self.inner.db.iterator_cf(mvcc, IteratorMode::From(&from, Direction::Forward)) {
                    let (k, v) = item?;
                    let (ukey, vrev) = split_mvcc_key(&k)?;
                    if ukey != key.as_bytes() || vrev > target {
                        break;
                    }
                    versions.push((k.to_vec(), decode_version(&v)?.tombstone));
                }
                if let Some((last_key, last_tomb)) = versions.pop() {
                    for (k, _) in versions {
                        batch.delete_cf(mvcc, k);
                    }
                    if last_tomb {
                        batch.delete_cf(mvcc, last_key);
                    }
                }
            }
            batch.delete_range_cf(events, event_key(0, 0), event_key(target + 1, 0));
            batch.put_cf(smmeta, META_COMPACTED, rev_bytes(target));
            tracing::debug!(target, keys = keys.len(), "compacted history");
        }
        self.inner.db.write(batch)?;
        if target > old {
            self.inner.compacted.store(target, Ordering::Release);
        }
        self.inner.rev.store(rev, Ordering::Release);
        self.inner.applied_tx.send_replace(rev);
        Ok(())
    }

    // ------------------------------------------------------------------------------------------
    // Reads
    // ------------------------------------------------------------------------------------------

    fn check_read_rev(&self, at: u64, current: u64) -> Result<()> {
        let compacted = self.compacted_revision();
        if at < compacted {
            return Err(StoreError::TooOld { requested: at, compacted });
        }
        if at > current {
            return Err(StoreError::FutureRevision { requested: at, current });
        }
        Ok(())
    }

    /// Reads a key at the latest revision (`at = None`) or at a past one. Returns the value
    /// and the revision the read was served at.
    pub fn get(&self, key: &str, at: Option<u64>) -> Result<(Option<KeyValue>, u64)> {
        let snap = self.inner.db.snapshot();
        let current = match snap.get_cf(self.cf(CF_SMMETA), META_REV)? {
            Some(b) => decode_u64(&b)?,
            None => 0,
        };
        match at {
            None | Some(0) => {
                let kv = snap.get_pinned_cf(self.cf(CF_CURRENT), key.as_bytes())?;
                let kv = match kv {
                    Some(b) => {
                        let (create_rev, mod_rev, value) = decode_current(&b)?;
                        Some(KeyValue { key: key.to_string(), value: Bytes::copy_from_slice(value), create_rev, mod_rev })
                    }
                    None => None,
                };
                Ok((kv, current))
            }
            Some(at) => {
                self.check_read_rev(at, current)?;
                let mut it = snap.raw_iterator_cf(self.cf(CF_MVCC));
                it.seek_for_prev(mvcc_key(key, at));
                if let (Some(k), Some(v)) = (it.key(), it.value()) {
                    let (ukey, mod_rev) = split_mvcc_key(k)?;
                    if ukey == key.as_bytes() {
                        let ver = decode_version(v)?;
                        if !ver.tombstone {
                            return Ok((
                                Some(KeyValue {
                                    key: key.to_string(),
                                    value: Bytes::copy_from_slice(ver.value),
                                    create_rev: ver.create_rev,
                                    mod_rev,
                                }),
                                at,
                            ));
                        }
                    }
                }
                it.status()?;
                Ok((None, at))
            }
        }
    }

    /// Lists live keys starting with `prefix`, in key order, beginning strictly after
    /// `start_after` when given, at most `limit` items (0 = no limit), at the latest revision or
    /// at `at`. Every page of a paginated list is read at the revision of the first page.
    pub fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize, at: Option<u64>) -> Result<ListResult> {
        let snap = self.inner.db.snapshot();
        let current = match snap.get_cf(self.cf(CF_SMMETA), META_REV)? {
            Some(b) => decode_u64(&b)?,
            None => 0,
        };
        let at = match at {
            None | Some(0) => current,
            Some(at) => {
                self.check_read_rev(at, current)?;
                at
            }
        };
        let end = prefix_end(prefix.as_bytes());
        let mut items = Vec::new();
        let mut more = false;
        let mut ro = ReadOptions::default();
        if let Some(end) = &end {
            ro.set_iterate_upper_bound(end.clone());
        }
        // Collect one item past the limit to learn whether more follow.
        let want = if limit > 0 { limit + 1 } else { usize::MAX };
        if at == current {
            // The latest state: the `current` column family, one entry per live key.
            let mut it = snap.raw_iterator_cf_opt(self.cf(CF_CURRENT), ro);
            match start_after {
                Some(after) => {
                    let mut from = after.as_bytes().to_vec();
                    from.push(0);
                    it.seek(&from);
                }
                None => it.seek(prefix.as_bytes()),
            }
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                if !k.starts_with(prefix.as_bytes()) || items.len() == want {
                    break;
                }
                let (create_rev, mod_rev, value) = decode_current(v)?;
                items.push(KeyValue {
                    key: String::from_utf8_lossy(k).into_owned(),
                    value: Bytes::copy_from_slice(value),
                    create_rev,
                    mod_rev,
                });
                it.next();
            }
            it.status()?;
        } else {
            // A past revision: walk every version, keep each key's last one at or below `at`.
            let mut it = snap.raw_iterator_cf_opt(self.cf(CF_MVCC), ro);
            match start_after {
                Some(after) => {
                    // Skip all versions of `after` itself: `after \x01` sorts past `after \0 *`.
                    let mut from = after.as_bytes().to_vec();
                    from.push(1);
                    it.seek(&from);
                }
                None => it.seek(prefix.as_bytes()),
            }
            // (key, last version at or below `at`, if any)
            let mut group: Option<(Vec<u8>, Option<KeyValue>)> = None;
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                if !k.starts_with(prefix.as_bytes()) {
                    break;
                }
                let (ukey, vrev) = split_mvcc_key(k)?;
                if group.as_ref().is_none_or(|g| g.0 != ukey) {
                    if let Some((_, Some(kv))) = group.take() {
                        items.push(kv);
                        if items.len() == want {
                            break;
                        }
                    }
                    group = Some((ukey.to_vec(), None));
                }
                if vrev <= at {
                    let ver = decode_version(v)?;
                    let g = group.as_mut().expect("group set above");
                    g.1 = (!ver.tombstone).then(|| KeyValue {
                        key: String::from_utf8_lossy(ukey).into_owned(),
                        value: Bytes::copy_from_slice(ver.value),
                        create_rev: ver.create_rev,
                        mod_rev: vrev,
                    });
                }
                it.next();
            }
            it.status()?;
            if items.len() < want
                && let Some((_, Some(kv))) = group.take()
            {
                items.push(kv);
            }
        }
        if items.len() == want && limit > 0 {
            items.truncate(limit);
            more = true;
        }
        Ok(ListResult { items, rev: at, more })
    }

    /// Counts live keys under a prefix at the latest revision.
    pub fn count(&self, prefix: &str) -> Result<u64> {
        let mut ro = ReadOptions::default();
        if let Some(end) = prefix_end(prefix.as_bytes()) {
            ro.set_iterate_upper_bound(end);
        }
        let mut it = self.inner.db.raw_iterator_cf_opt(self.cf(CF_CURRENT), ro);
        it.seek(prefix.as_bytes());
        let mut n = 0;
        while it.valid() {
            n += 1;
            it.next();
        }
        it.status()?;
        Ok(n)
    }

    /// Reads the event records of revisions in `(after, upto]`, at most `max` revisions' worth
    /// of events (whole revisions only), with their values. Returns the events and the last
    /// revision covered.
    pub(crate) fn read_events(&self, prefix: &str, after: u64, upto: u64, max: usize) -> Result<(Vec<WatchEvent>, u64)> {
        let compacted = self.compacted_revision();
        if after < compacted {
            return Err(StoreError::TooOld { requested: after, compacted });
        }
        let snap = self.inner.db.snapshot();
        let mvcc = self.cf(CF_MVCC);
        let mut out = Vec::new();
        let mut last_rev = after;
        let mut count = 0usize;
        let mut stopped_early = false;
        let start = event_key(after + 1, 0);
        let mut it = snap.raw_iterator_cf(self.cf(CF_EVENTS));
        it.seek(start);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let rev = decode_u64(k)?;
            if rev > upto {
                break;
            }
            // Only stop between revisions: a revision's events are delivered together.
            if rev != last_rev && count >= max {
                stopped_early = true;
                break;
            }
            last_rev = rev;
            count += 1;
            let rec = decode_record(v)?;
            if rec.key.starts_with(prefix) {
                let read = |r: u64| -> Result<Option<Bytes>> {
                    if r == 0 {
                        return Ok(None);
                    }
                    match snap.get_pinned_cf(mvcc, mvcc_key(&rec.key, r))? {
                        Some(b) => Ok(Some(Bytes::copy_from_slice(decode_version(&b)?.value))),
                        None => Ok(None),
                    }
                };
                let prev_value = read(rec.prev_rev)?;
                let (kind, value) = if rec.deleted {
                    (EventKind::Deleted, prev_value.clone().unwrap_or_default())
                } else {
                    let value = read(rev)?.ok_or_else(|| StoreError::Corrupt(format!("missing version {rev} of {}", rec.key)))?;
                    (if rec.create_rev == rev { EventKind::Created } else { EventKind::Modified }, value)
                };
                out.push(WatchEvent { rev, key: rec.key, kind, value, prev_value, create_rev: rec.create_rev });
            }
            it.next();
        }
        it.status()?;
        let covered = if stopped_early { last_rev } else { upto };
        // Compaction may have removed records while we read: then the read is not trustworthy.
        let compacted = self.compacted_revision();
        if after < compacted {
            return Err(StoreError::TooOld { requested: after, compacted });
        }
        Ok((out, covered))
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Broadcast> {
        self.inner.events_tx.subscribe()
    }

    pub(crate) fn reload_after_restore(&self) -> Result<()> {
        let rev = read_meta_u64(&self.inner.db, META_REV)?;
        let compacted = read_meta_u64(&self.inner.db, META_COMPACTED)?;
        self.inner.rev.store(rev, Ordering::Release);
        self.inner.compacted.store(compacted, Ordering::Release);
        let _ = self.inner.events_tx.send(Broadcast::Reset);
        self.inner.applied_tx.send_replace(rev);
        Ok(())
    }

    // ------------------------------------------------------------------------------------------
    // Replicated metadata (exported in snapshots) and node-local metadata (never exported)
    // ------------------------------------------------------------------------------------------

    pub fn sm_meta_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.db.get_cf(self.cf(CF_SMMETA), key)?)
    }

    pub fn local_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.db.get_cf(self.cf(CF_LOCAL), key)?)
    }

    /// Writes node-local metadata; with `sync`, the write is on disk when this returns.
    pub fn local_put(&self, kvs: &[(&[u8], &[u8])], sync: bool) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (k, v) in kvs {
            batch.put_cf(self.cf(CF_LOCAL), k, v);
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.inner.db.write_opt(batch, &wo)?;
        Ok(())
    }

    /// Makes every write so far durable (one fsync of the write-ahead log covers them all).
    pub fn sync(&self) -> Result<()> {
        self.inner.db.flush_wal(true)?;
        Ok(())
    }
}

/// Writes accumulated for one RocksDB batch, with an overlay of keys written in it so later
/// changes in the same batch see earlier ones.
#[derive(Default)]
struct PendingBatch {
    batch: WriteBatch,
    overlay: HashMap<String, Option<Live>>,
    events: Vec<WatchEvent>,
}

impl PendingBatch {
    fn get_live(&self, store: &Store, key: &str) -> Result<Option<Live>> {
        if let Some(v) = self.overlay.get(key) {
            return Ok(v.clone());
        }
        match store.inner.db.get_pinned_cf(store.cf(CF_CURRENT), key.as_bytes())? {
            Some(b) => {
                let (create_rev, mod_rev, value) = decode_current(&b)?;
                Ok(Some(Live { create_rev, mod_rev, value: Bytes::copy_from_slice(value) }))
            }
            None => Ok(None),
        }
    }
}

/// The verdict of one op against the key's current live version (pure: unit-tested).
fn evaluate(op: &Op, current: Option<&Live>, rev: u64) -> OpResult {
    let key = op.key();
    if key.is_empty() || key.as_bytes().contains(&KEY_REV_SEP) {
        return OpResult::Invalid(format!("key {key:?} must be non-empty and must not contain NUL"));
    }
    match (op, current) {
        (Op::Create { .. }, Some(cur)) => OpResult::AlreadyExists { mod_rev: cur.mod_rev },
        (Op::Create { .. }, None) => OpResult::Ok { create_rev: rev, prev: None },
        (Op::Put { .. }, cur) => {
            OpResult::Ok { create_rev: cur.map(|c| c.create_rev).unwrap_or(rev), prev: cur.map(|c| c.value.clone()) }
        }
        (Op::Update { .. } | Op::Delete { .. }, None) => OpResult::NotFound,
        (Op::Update { expected_rev, .. } | Op::Delete { expected_rev, .. }, Some(cur)) => match expected_rev {
            Some(exp) if *exp != cur.mod_rev => OpResult::Conflict { mod_rev: cur.mod_rev },
            _ => OpResult::Ok { create_rev: cur.create_rev, prev: Some(cur.value.clone()) },
        },
    }
}

fn encode_record(rec: &EventRecord) -> Result<Vec<u8>> {
    bincode::serialize(rec).map_err(|e| StoreError::Corrupt(format!("encode event record: {e}")))
}

pub(crate) fn decode_record(b: &[u8]) -> Result<EventRecord> {
    bincode::deserialize(b).map_err(|e| StoreError::Corrupt(format!("decode event record: {e}")))
}

fn read_meta_u64(db: &DB, key: &[u8]) -> Result<u64> {
    let cf = db.cf_handle(CF_SMMETA).expect("column family opened at startup");
    match db.get_cf(cf, key)? {
        Some(b) => decode_u64(&b),
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(mod_rev: u64) -> Live {
        Live { create_rev: 1, mod_rev, value: Bytes::from_static(b"old") }
    }

    #[test]
    fn evaluate_table() {
        let v = Bytes::from_static(b"v");
        let k = "/k".to_string();
        let cases: Vec<(Op, Option<Live>, OpResult)> = vec![
            (Op::Create { key: k.clone(), value: v.clone() }, None, OpResult::Ok { create_rev: 9, prev: None }),
            (Op::Create { key: k.clone(), value: v.clone() }, Some(live(5)), OpResult::AlreadyExists { mod_rev: 5 }),
            (Op::Update { key: k.clone(), value: v.clone(), expected_rev: None }, None, OpResult::NotFound),
            (
                Op::Update { key: k.clone(), value: v.clone(), expected_rev: Some(4) },
                Some(live(5)),
                OpResult::Conflict { mod_rev: 5 },
            ),
            (
                Op::Update { key: k.clone(), value: v.clone(), expected_rev: Some(5) },
                Some(live(5)),
                OpResult::Ok { create_rev: 1, prev: Some(Bytes::from_static(b"old")) },
            ),
            (
                Op::Update { key: k.clone(), value: v.clone(), expected_rev: None },
                Some(live(5)),
                OpResult::Ok { create_rev: 1, prev: Some(Bytes::from_static(b"old")) },
            ),
            (Op::Put { key: k.clone(), value: v.clone() }, None, OpResult::Ok { create_rev: 9, prev: None }),
            (Op::Delete { key: k.clone(), expected_rev: None }, None, OpResult::NotFound),
            (Op::Delete { key: k.clone(), expected_rev: Some(3) }, Some(live(5)), OpResult::Conflict { mod_rev: 5 }),
            (
                Op::Delete { key: k.clone(), expected_rev: Some(5) },
                Some(live(5)),
                OpResult::Ok { create_rev: 1, prev: Some(Bytes::from_static(b"old")) },
            ),
            (
                Op::Put { key: "bad\0key".into(), value: v.clone() },
                None,
                OpResult::Invalid("key \"bad\\0key\" must be non-empty and must not contain NUL".into()),
            ),
        ];
        for (op, cur, want) in cases {
            assert_eq!(evaluate(&op, cur.as_ref(), 9), want, "op {op:?}");
        }
    }
}

pub(crate) fn all_cf_names() -> [&'static str; 6] {
    ALL_CFS
}
