use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One conditional write. Conditions are evaluated inside `apply`, against the state every
/// replica has at that log index, so every replica reaches the same verdict.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Op {
    /// Fails with `AlreadyExists` when the key is live.
    Create { key: String, value: Bytes },
    /// Fails with `NotFound` when the key is absent, and with `Conflict` when `expected_rev`
    /// is given and differs from the key's current modification revision.
    Update { key: String, value: Bytes, expected_rev: Option<u64> },
    /// Unconditional upsert.
    Put { key: String, value: Bytes },
    /// Fails with `NotFound` when absent, `Conflict` when `expected_rev` differs.
    Delete { key: String, expected_rev: Option<u64> },
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Create { key, .. } | Op::Update { key, .. } | Op::Put { key, .. } | Op::Delete { key, .. } => key,
        }
    }
}

/// The verdict for one [`Op`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum OpResult {
    /// Applied. `prev` is the value that was replaced or deleted, if any.
    Ok { create_rev: u64, prev: Option<Bytes> },
    AlreadyExists { mod_rev: u64 },
    NotFound,
    Conflict { mod_rev: u64 },
    /// Part of an atomic transaction in which another operation failed: nothing was written.
    Aborted,
    /// The operation itself is malformed (for example a key containing a NUL byte).
    Invalid(String),
}

impl OpResult {
    pub fn is_ok(&self) -> bool {
        matches!(self, OpResult::Ok { .. })
    }
}

/// A state change carried by one Raft log entry; the entry's index is its revision.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Change {
    /// Conditional writes. With `atomic`, all apply or none does; otherwise each op stands alone
    /// (a burst of pod bindings in one proposal, say).
    Txn { ops: Vec<Op>, atomic: bool },
    /// Discard history at and below `rev` (the latest version of each key at `rev` is kept).
    Compact { rev: u64 },
    /// An entry that changes no keys (Raft blank and membership entries); it still advances the
    /// store's revision so that revisions equal log indexes.
    Noop,
}

/// A live key as read from the store.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision of the write that created this incarnation of the key.
    pub create_rev: u64,
    /// Revision of the last write to the key.
    pub mod_rev: u64,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Modified,
    Deleted,
}

/// One change to one key, as delivered to watchers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct WatchEvent {
    pub rev: u64,
    pub key: String,
    pub kind: EventKind,
    /// The new value; for `Deleted`, the last value the key had.
    pub value: Bytes,
    /// The value before this change (for `Modified` and `Deleted`).
    pub prev_value: Option<Bytes>,
    pub create_rev: u64,
}

/// A page of a range read, all at one revision.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    /// The revision the page was read at; the next page must be read at the same one.
    pub rev: u64,
    /// More keys follow the last item.
    pub more: bool,
}
