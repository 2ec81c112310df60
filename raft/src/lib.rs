//! `raft`: the openraft glue of rkube.
//!
//! - [`types`]: the type configuration (`Command` entries carrying storage changes).
//! - [`log_store`]: the Raft log in the master's RocksDB, fsynced (group commit) before openraft
//!   is told an append is durable.
//! - [`state_machine`]: committed entries applied to the MVCC store with the applied log id in the
//!   same atomic batch; snapshots from RocksDB checkpoints.
//! - [`network`] and [`rpc`]: the peer transport (HTTP, bincode) and the administration API.
//! - [`node`]: writes with leader forwarding, linearizable read barriers, membership, status.
//! - [`restore`]: disaster recovery from a snapshot file into a new cluster.
//!
//! openraft is pinned to 0.10.0-alpha.37: it brings pre-vote (a partitioned member rejoining does
//! not depose a healthy leader), leadership transfer (`rkube cluster transfer-leader`), the
//! ReadIndex/LeaseRead linearizer, and safety fixes over 0.9.

pub mod api;
pub mod error;
pub mod log_store;
pub mod network;
pub mod node;
pub mod restore;
pub mod rpc;
pub mod state_machine;
pub mod types;

pub use error::NodeError;
pub use node::{NodeConfig, NodeStatus, RaftNode, WriteOutcome};
