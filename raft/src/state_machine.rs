//! The state machine: committed entries applied to the storage crate's MVCC store, with the
//! applied log id and membership written in the same atomic RocksDB batch.
//!
//! Snapshots are RocksDB checkpoints, taken in an instant between two applies. Building one costs
//! a memtable flush and some hard links, nothing more: the checkpoint directory *is* the snapshot.
//! Only when a lagging or new member needs it is it exported (streamed) as a self-checking file of
//! replicated state, which that member installs by replacing its state atomically.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::{Stream, TryStreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use storage::{Change, Store};

use crate::types::*;

pub(crate) const KEY_APPLIED: &[u8] = b"raft/applied";
pub(crate) const KEY_MEMBERSHIP: &[u8] = b"raft/membership";

/// The current snapshot on disk: the data file and its metadata.
#[derive(Clone, Debug)]
struct CurrentSnapshot {
    meta: SnapshotMeta,
    path: PathBuf,
}

pub struct StateMachine {
    store: Store,
    dir: PathBuf,
    current: Arc<Mutex<Option<CurrentSnapshot>>>,
}

fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> io::Result<T> {
    bincode::deserialize(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn encode<T: serde::Serialize>(v: &T) -> io::Result<Vec<u8>> {
    bincode::serialize(v).map_err(io::Error::other)
}

fn to_io(e: storage::StoreError) -> io::Error {
    io::Error::other(e)
}

impl StateMachine {
    /// Opens the state machine over `store`, with snapshot files kept in `snapshot_dir`.
    pub fn new(store: Store, snapshot_dir: impl Into<PathBuf>) -> io::Result<StateMachine> {
        let dir = snapshot_dir.into();
        std::fs::create_dir_all(&dir)?;
        let current = load_current(&dir)?;
        // Leftovers of an interrupted build are worthless.
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            if name.starts_with("checkpoint-") {
                let _ = std::fs::remove_dir_all(&path);
            } else if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(StateMachine { store, dir, current: Arc::new(Mutex::new(current)) })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Reads the applied log id and membership recorded in the store.
    pub fn read_applied(store: &Store) -> io::Result<(Option<LogId>, StoredMembership)> {
        let applied = match store.sm_meta_get(KEY_APPLIED).map_err(to_io)? {
            Some(b) => decode(&b)?,
            None => None,
        };
        let membership = match store.sm_meta_get(KEY_MEMBERSHIP).map_err(to_io)? {
            Some(b) => decode(&b)?,
            None => StoredMembership::default(),
        };
        Ok((applied, membership))
    }

    /// The metadata records that make a restored state read as applied up to `meta`.
    pub fn applied_meta(meta: &SnapshotMeta) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(vec![
            (KEY_APPLIED.to_vec(), encode(&meta.last_log_id)?),
            (KEY_MEMBERSHIP.to_vec(), encode(&meta.last_membership)?),
        ])
    }

    /// Installs a snapshot (an exported file, or a checkpoint directory of another store on this
    /// machine) as this node's state and current snapshot (also used by `rkube snapshot restore`,
    /// before the node runs).
    pub fn install_file(store: &Store, dir: &Path, meta: &SnapshotMeta, source: &Path) -> io::Result<()> {
        let dest = snapshot_path(dir, meta);
        let tmp = dest.with_extension("tmp");
        if source.is_dir() {
            storage::snapshot::export_checkpoint(source, &tmp).map_err(to_io)?;
        } else if source != dest {
            std::fs::copy(source, &tmp)?;
        }
        let file = if tmp.exists() { tmp.clone() } else { dest.clone() };
        let records = Self::applied_meta(meta)?;
        let refs: Vec<(&[u8], &[u8])> = records.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        store.restore(&file, &refs).map_err(to_io)?;
        if file == tmp {
            std::fs::rename(&tmp, &dest)?;
        }
        write_meta(dir, meta)?;
        Ok(())
    }
}

/// The exported form of a snapshot (`.snap`, a file); its checkpoint form is `.cp` (a directory).
fn snapshot_path(dir: &Path, meta: &SnapshotMeta) -> PathBuf {
    let (term, index) = match &meta.last_log_id {
        Some(l) => (l.leader_id.term, l.index),
        None => (0, 0),
    };
    dir.join(format!("snapshot-{term:020}-{index:020}.snap"))
}

fn remove_any(p: &Path) {
    if p.is_dir() {
        let _ = std::fs::remove_dir_all(p);
    } else {
        let _ = std::fs::remove_file(p);
    }
}

/// The data of a snapshot whose metadata file is `meta_file`: the exported file or the checkpoint.
fn data_of(meta_file: &Path) -> Option<PathBuf> {
    [meta_file.with_extension("snap"), meta_file.with_extension("cp")].into_iter().find(|p| p.exists())
}

fn write_meta(dir: &Path, meta: &SnapshotMeta) -> io::Result<()> {
    let path = snapshot_path(dir, meta).with_extension("meta");
    let tmp = path.with_extension("meta.tmp");
    std::fs::write(&tmp, encode(meta)?)?;
    std::fs::rename(&tmp, &path)?;
    // Keep the newest two snapshots: a follower may still be streaming the previous one.
    let mut metas: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "meta"))
        .collect();
    metas.sort();
    if metas.len() > 2 {
        for old in &metas[..metas.len() - 2] {
            remove_any(&old.with_extension("snap"));
            remove_any(&old.with_extension("cp"));
            let _ = std::fs::remove_file(old);
        }
    }
    Ok(())
}

fn load_current(dir: &Path) -> io::Result<Option<CurrentSnapshot>> {
    let mut metas: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "meta"))
        .collect();
    metas.sort();
    while let Some(m) = metas.pop() {
        if let Some(data) = data_of(&m) {
            let meta: SnapshotMeta = decode(&std::fs::read(&m)?)?;
            return Ok(Some(CurrentSnapshot { meta, path: data }));
        }
    }
    Ok(None)
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Self::read_applied(&self.store)
    }

    async fn apply<Strm>(&mut self, entries: Strm) -> Result<(), io::Error>
    where Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend {
        let items: Vec<EntryResponder<TypeConfig>> = entries.try_collect().await?;
        if items.is_empty() {
            return Ok(());
        }
        let mut changes: Vec<(u64, Change)> = Vec::with_capacity(items.len());
        let mut membership = None;
        let mut last = None;
        for (entry, _) in &items {
            let log_id = entry.log_id();
            let change = match &entry.payload {
                EntryPayload::Normal(cmd) => cmd.change.clone(),
                EntryPayload::Blank => Change::Noop,
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(log_id.clone()), m.clone()));
                    Change::Noop
                }
            };
            changes.push((log_id.index, change));
            last = Some(log_id);
        }
        let applied = encode(&last)?;
        let membership_bytes = membership.as_ref().map(encode).transpose()?;
        let mut meta: Vec<(&[u8], &[u8])> = vec![(KEY_APPLIED, &applied)];
        if let Some(m) = &membership_bytes {
            meta.push((KEY_MEMBERSHIP, m));
        }
        let refs: Vec<(u64, &Change)> = changes.iter().map(|(i, c)| (*i, c)).collect();
        let results = self.store.apply(&refs, &meta).map_err(to_io)?;
        for ((_, responder), results) in items.into_iter().zip(results) {
            if let Some(r) = responder {
                r.send(Response { results });
            }
        }
        Ok(())
    }

    async fn try_create_snapshot_builder(&mut self, _force: bool) -> Option<Self::SnapshotBuilder> {
        // The checkpoint is taken here, between two applies, so it matches the applied log id.
        match self.checkpoint_now() {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::error!(error = %e, "cannot checkpoint the store for a snapshot; will retry later");
                None
            }
        }
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.checkpoint_now().expect("checkpoint for snapshot")
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: SnapshotFile) -> Result<(), io::Error> {
        let store = self.store.clone();
        let dir = self.dir.clone();
        let m = meta.clone();
        let file = snapshot.path.clone();
        tokio::task::spawn_blocking(move || Self::install_file(&store, &dir, &m, &file))
            .await
            .map_err(io::Error::other)??;
        tracing::info!(last_log_id = ?meta.last_log_id, "installed snapshot");
        *self.current.lock().expect("snapshot lock") =
            Some(CurrentSnapshot { meta: meta.clone(), path: snapshot_path(&self.dir, meta) });
        // The checkpoint of an older snapshot of ours is obsolete now.
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let cur = self.current.lock().expect("snapshot lock").clone();
        Ok(cur.map(|c| Snapshot { meta: c.meta, snapshot: SnapshotFile { path: c.path } }))
    }
}

impl StateMachine {
    fn checkpoint_now(&self) -> io::Result<SnapshotBuilder> {
        let (applied, membership) = Self::read_applied(&self.store)?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let cp = self.dir.join(format!("checkpoint-{nanos}"));
        self.store.checkpoint(&cp).map_err(to_io)?;
        Ok(SnapshotBuilder {
            checkpoint: cp,
            meta: SnapshotMeta { last_log_id: applied, last_membership: membership },
            dir: self.dir.clone(),
            current: self.current.clone(),
        })
    }
}

pub struct SnapshotBuilder {
    checkpoint: PathBuf,
    meta: SnapshotMeta,
    dir: PathBuf,
    current: Arc<Mutex<Option<CurrentSnapshot>>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let path = snapshot_path(&self.dir, &self.meta).with_extension("cp");
        remove_any(&path);
        std::fs::rename(&self.checkpoint, &path)?;
        write_meta(&self.dir, &self.meta)?;
        tracing::info!(last_log_id = ?self.meta.last_log_id, "built snapshot (checkpoint)");
        *self.current.lock().expect("snapshot lock") = Some(CurrentSnapshot { meta: self.meta.clone(), path: path.clone() });
        Ok(Snapshot { meta: self.meta.clone(), snapshot: SnapshotFile { path } })
    }
}

impl Drop for SnapshotBuilder {
    fn drop(&mut self) {
        // A builder dropped without building leaves no checkpoint behind (after a build the
        // checkpoint was renamed away, so this finds nothing).
        let _ = std::fs::remove_dir_all(&self.checkpoint);
    }
}
