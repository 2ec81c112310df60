//! `storage`: the RocksDB-backed MVCC object store that every rkube master keeps.
//!
//! Every write carries a revision chosen by the caller (the Raft log index that carried it), and
//! conditions (create-if-absent, expected revision) are evaluated inside [`Store::apply`], so every
//! replica that applies the same changes in the same order reaches the same state and the same
//! verdicts. Reads at the latest or a past revision, paginated lists at one revision, watches that
//! replay history and then follow live changes, compaction, and checkpoint/restore for snapshots.
//!
//! The crate knows nothing about Raft or HTTP; it also hosts an opaque log area and node-local
//! metadata so the Raft log can live in the same database.

mod codec;
mod error;
mod log;
pub mod snapshot;
mod store;
mod types;
mod watch;

pub use error::{Result, StoreError};
pub use snapshot::SnapshotStats;
pub use store::{Store, StoreOptions};
pub use types::*;
pub use watch::Watcher;
