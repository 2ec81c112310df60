//! Disaster recovery: turn a snapshot file into the data dir of a new one-member cluster.
//!
//! The restored cluster gets a fresh cluster id, so members of the old cluster cannot talk to it
//! (their requests carry the old id and are refused). More members join it with `--join`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use openraft::BasicNode;
use serde::Serialize;
use storage::Store;

use crate::error::NodeError;
use crate::log_store::LogStore;
use crate::node::NodeConfig;
use crate::state_machine::{KEY_APPLIED, StateMachine};
use crate::types::*;

#[derive(Serialize, Debug, Clone)]
pub struct RestoreInfo {
    pub cluster_id: String,
    pub node_id: NodeId,
    pub revision: u64,
    pub records: u64,
}

pub fn restore_snapshot(file: &Path, config: &NodeConfig) -> Result<RestoreInfo, NodeError> {
    let db = config.db_dir();
    if db.exists() && std::fs::read_dir(&db)?.next().is_some() {
        return Err(NodeError::Config(format!(
            "{} already holds a database; restore needs an empty data dir",
            config.data_dir.display()
        )));
    }
    let stats = storage::snapshot::verify(file)?;
    let meta = storage::snapshot::read_meta(file)?;
    let applied: Option<LogId> = match meta.get(KEY_APPLIED) {
        Some(b) => bincode::deserialize(b).map_err(|e| NodeError::Config(format!("snapshot has unreadable raft metadata: {e}")))?,
        None => None,
    };
    let Some(applied) = applied else {
        return Err(NodeError::Config("the snapshot holds no applied log position; was it written by rkube snapshot save?".into()));
    };
    let node_id = config.node_id.unwrap_or_else(|| rand::random_range(1..(1u64 << 53)));
    let term = applied.leader_id.term;
    // The restored state continues the old numbering, so revisions stay valid; it is attributed
    // to this node as leader of that term.
    let log_id = LogId { leader_id: openraft::impls::leader_id_adv::LeaderId { term, node_id }, index: applied.index };
    let membership = Membership::new(
        vec![BTreeSet::from([node_id])],
        BTreeMap::from([(node_id, BasicNode { addr: config.advertise.clone() })]),
    )
    .map_err(|e| NodeError::Config(format!("membership: {e}")))?;
    let snap_meta = SnapshotMeta { last_log_id: Some(log_id), last_membership: StoredMembership::new(Some(log_id), membership) };
    let store = Store::open(&db)?;
    std::fs::create_dir_all(config.snapshot_dir())?;
    StateMachine::install_file(&store, &config.snapshot_dir(), &snap_meta, file)?;
    LogStore::set_purged(&store, &log_id)?;
    LogStore::set_vote(&store, &Vote::new(term, node_id))?;
    let cluster_id = format!("{:016x}", rand::random::<u64>());
    store.local_put(&[(b"node/id", node_id.to_string().as_bytes()), (b"node/cluster_id", cluster_id.as_bytes())], true)?;
    store.sync()?;
    Ok(RestoreInfo { cluster_id, node_id, revision: store.current_revision(), records: stats.records })
}
