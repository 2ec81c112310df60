//! The openraft type configuration and the application data carried by log entries.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use storage::{Change, OpResult};

/// A master's id in the Raft group.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// rkube's Raft types: `Command` entries, `Response` results, nodes addressed by URL.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
);

pub type Raft = openraft::Raft<TypeConfig, crate::state_machine::StateMachine>;
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotFile>;
pub type Membership = openraft::Membership<NodeId, openraft::BasicNode>;

/// The application data of one log entry: one change to the object store.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Command {
    pub change: Change,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.change {
            Change::Txn { ops, atomic } => write!(f, "txn(ops={}, atomic={atomic})", ops.len()),
            Change::Compact { rev } => write!(f, "compact({rev})"),
            Change::Noop => write!(f, "noop"),
        }
    }
}

/// What applying a [`Command`] produced: the verdict of each operation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Response {
    pub results: Vec<OpResult>,
}

/// A snapshot on disk: the file written by `storage::snapshot::export_checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    pub path: PathBuf,
}
