//! A master's Raft node: opens the store, runs openraft, and offers the operations the rest of
//! rkube needs — proposals (forwarded to the leader from followers), linearizable read barriers
//! (ReadIndex through the leader, then wait for the local apply), membership changes, leadership
//! transfer, status, and periodic compaction proposed by the leader.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::{BasicNode, ChangeMembers, ReadPolicy, ServerState};
use serde::{Deserialize, Serialize};
use storage::{Change, OpResult, Store, StoreOptions};

use crate::error::{NodeError, WireError};
use crate::log_store::LogStore;
use crate::network::{ClusterId, HEADER_CLUSTER, Network, PeerTls, peer_http_client};
use crate::state_machine::StateMachine;
use crate::types::*;

const KEY_NODE_ID: &[u8] = b"node/id";
const KEY_CLUSTER_ID: &[u8] = b"node/cluster_id";

/// Timing and retention knobs of a node. The defaults aim at sub-second failover on a LAN.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    /// Base URL other members and clients use to reach this node (`http://host:port`).
    pub advertise: String,
    /// Id to use when the data dir is fresh; a random one otherwise.
    pub node_id: Option<NodeId>,
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// Build a snapshot after this many entries since the last one.
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot (so a briefly lagging member needs no snapshot).
    pub keep_after_snapshot: u64,
    /// The leader compacts history older than this, every this often.
    pub compaction_interval: Duration,
    /// Use leader leases for reads instead of a ReadIndex round trip.
    pub lease_reads: bool,
    /// Mutual TLS for peer traffic (None: plain HTTP).
    pub tls: Option<PeerTls>,
}

impl NodeConfig {
    pub fn new(data_dir: impl Into<PathBuf>, advertise: impl Into<String>) -> NodeConfig {
        NodeConfig {
            data_dir: data_dir.into(),
            advertise: advertise.into(),
            node_id: None,
            heartbeat_ms: 50,
            election_min_ms: 150,
            election_max_ms: 300,
            snapshot_every: 100_000,
            keep_after_snapshot: 10_000,
            compaction_interval: Duration::from_secs(300),
            lease_reads: false,
            tls: None,
        }
    }

    pub fn db_dir(&self) -> PathBuf {
        self.data_dir.join("db")
    }

    pub fn snapshot_dir(&self) -> PathBuf {
        self.data_dir.join("snapshots")
    }
}

/// The outcome of a committed write.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct WriteOutcome {
    /// The log index that carried the write: the revision of everything it wrote.
    pub rev: u64,
    pub results: Vec<OpResult>,
}

/// A member as shown by `rkube cluster status`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct MemberStatus {
    pub id: NodeId,
    pub addr: String,
    pub voter: bool,
    /// Last log index known to be replicated to it (leader's view).
    pub matched: Option<u64>,
    /// How many entries it is behind the leader's last log index.
    pub lag: Option<u64>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct NodeStatus {
    pub cluster_id: String,
    pub id: NodeId,
    pub addr: String,
    pub state: String,
    pub leader: Option<NodeId>,
    pub leader_addr: Option<String>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
    pub snapshot: Option<u64>,
    pub purged: Option<u64>,
    pub revision: u64,
    pub compacted_revision: u64,
    pub members: Vec<MemberStatus>,
}

pub struct RaftNode {
    pub id: NodeId,
    pub raft: Raft,
    pub store: Store,
    pub cluster_id: ClusterId,
    pub config: NodeConfig,
    pub(crate) http: reqwest::Client,
}

impl RaftNode {
    /// Opens the data dir and starts Raft. A fresh node is pristine: call [`RaftNode::init_cluster`]
    /// or [`RaftNode::join_cluster`] (after its HTTP server listens) to make it a member.
    pub async fn open(config: NodeConfig) -> Result<Arc<RaftNode>, NodeError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| NodeError::Config(format!("cannot create data dir {}: {e}", config.data_dir.display())))?;
        let store = Store::open_with(config.db_dir(), &StoreOptions::default())?;
        let id = match store.local_get(KEY_NODE_ID)? {
            Some(b) => String::from_utf8_lossy(&b)
                .parse()
                .map_err(|_| NodeError::Config("the data dir holds an unreadable node id".into()))?,
            None => {
                let id = config.node_id.unwrap_or_else(|| rand::random_range(1..(1u64 << 53)));
                store.local_put(&[(KEY_NODE_ID, id.to_string().as_bytes())], true)?;
                id
            }
        };
        if let Some(want) = config.node_id
            && want != id
        {
            return Err(NodeError::Config(format!(
                "--node-id {want} does not match id {id} stored in {}; use a fresh data dir to change it",
                config.data_dir.display()
            )));
        }
        let cluster_id =
            ClusterId::new(store.local_get(KEY_CLUSTER_ID)?.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default());
        let raft_config = openraft::Config {
            cluster_name: "rkube".into(),
            heartbeat_interval: config.heartbeat_ms,
            election_timeout_min: config.election_min_ms,
            election_timeout_max: config.election_max_ms,
            install_snapshot_timeout: 60_000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: config.keep_after_snapshot,
            enable_pre_vote: Some(true),
            max_payload_entries: 512,
            // Replicate entries while the leader's own fsync runs, not after it: the two
            // fsyncs overlap instead of adding up (halves single-client latency).
            broadcast_submitted_on_append: Some(true),
            ..Default::default()
        }
        .validate()
        .map_err(|e| NodeError::Config(format!("raft timing: {e}")))?;
        let http = peer_http_client(config.tls.as_ref()).map_err(NodeError::Config)?;
        let network = Network { client: http.clone(), cluster_id: cluster_id.clone() };
        let sm = StateMachine::new(store.clone(), config.snapshot_dir())?;
        let log = LogStore::new(store.clone());
        let raft = openraft::Raft::new(id, Arc::new(raft_config), network, log, sm)
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        let node = Arc::new(RaftNode { id, raft, store, cluster_id, config, http });
        node.clone().spawn_compactor();
        tracing::info!(id, cluster = %node.cluster_id.get(), addr = %node.config.advertise, "raft node started");
        Ok(node)
    }

    /// Whether this node has ever been part of a cluster (it has a log, a vote or a snapshot).
    pub async fn is_initialized(&self) -> bool {
        self.raft.is_initialized().await.unwrap_or(false)
    }

    /// Makes this pristine node a one-member cluster with a fresh cluster id.
    pub async fn init_cluster(&self) -> Result<(), NodeError> {
        if self.is_initialized().await {
            tracing::info!("already initialized; --init ignored");
            return Ok(());
        }
        let cluster = format!("{:016x}", rand::random::<u64>());
        self.set_cluster_id(&cluster)?;
        let members = BTreeMap::from([(self.id, BasicNode { addr: self.config.advertise.clone() })]);
        self.raft.initialize(members).await.map_err(|e| NodeError::Raft(e.to_string()))?;
        tracing::info!(cluster = %cluster, "initialized a new cluster");
        Ok(())
    }

    pub(crate) fn set_cluster_id(&self, id: &str) -> Result<(), NodeError> {
        self.store.local_put(&[(KEY_CLUSTER_ID, id.as_bytes())], true)?;
        self.cluster_id.set(id.to_string());
        Ok(())
    }

    /// Joins the cluster that `url` (any member) belongs to: learns the cluster id, then asks the
    /// leader to add this node as a learner, wait until it has caught up, and promote it.
    /// Idempotent: a member that is already a voter returns at once.
    pub async fn join_cluster(&self, url: &str) -> Result<(), NodeError> {
        let url = url.trim_end_matches('/');
        let info: NodeStatus = self
            .http
            .get(format!("{url}/cluster/v1/status"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| NodeError::Config(format!("cannot reach {url} to join: {e}")))?
            .error_for_status()
            .map_err(|e| NodeError::Config(format!("{url} refused the status request: {e}")))?
            .json()
            .await
            .map_err(|e| NodeError::Config(format!("{url} answered with something that is not rkube status: {e}")))?;
        let mine = self.cluster_id.get();
        if !mine.is_empty() && mine != info.cluster_id {
            return Err(NodeError::Config(format!(
                "this data dir belongs to cluster {mine}, but {url} is in cluster {}; use a fresh data dir",
                info.cluster_id
            )));
        }
        self.set_cluster_id(&info.cluster_id)?;
        let req = JoinRequest { id: self.id, addr: self.config.advertise.clone() };
        let mut delay = Duration::from_millis(200);
        for attempt in 1.. {
            let r = self
                .http
                .post(format!("{url}/cluster/v1/members"))
                .json(&req)
                .timeout(Duration::from_secs(600))
                .send()
                .await;
            match r {
                Ok(resp) if resp.status().is_success() => {
                    tracing::info!(cluster = %info.cluster_id, "joined the cluster as a voter");
                    return Ok(());
                }
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    if status.is_client_error() {
                        return Err(NodeError::Config(format!("join refused by {url}: {status}: {text}")));
                    }
                    tracing::warn!(attempt, %status, %text, "join attempt failed; retrying");
                }
                Err(e) => tracing::warn!(attempt, error = %e, "join attempt failed; retrying"),
            }
            if attempt >= 30 {
                return Err(NodeError::Config(format!("could not join through {url} after {attempt} attempts")));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        unreachable!()
    }

    /// The current leader, if known: its id and address.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let m = self.raft.metrics().borrow_watched().clone();
        let leader = m.current_leader?;
        let addr = m.membership_config.membership().get_node(&leader)?.addr.clone();
        Some((leader, addr))
    }

    /// A handle that wakes up when this node's Raft state (role, term, leader, progress) changes.
    pub fn state_watch(&self) -> StateWatch {
        let mut rx = self.raft.metrics();
        // Mark the current state as seen, so `changed` waits for the next change.
        drop(rx.borrow_and_update());
        StateWatch { rx }
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow_watched().state == ServerState::Leader
    }

    /// Waits up to `timeout` for any leader to be known.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<(NodeId, String)> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.raft.metrics();
        loop {
            if let Some(l) = self.leader() {
                return Some(l);
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return None;
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // Writes
    // ------------------------------------------------------------------------------------------

    /// Proposes a change and waits until it is committed and applied; forwards to the leader when
    /// this node is not it. Retries only when the change certainly was not appended.
    pub async fn write(&self, change: Change) -> Result<WriteOutcome, NodeError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match self.write_local(change.clone()).await {
                Err(NodeError::NotLeader { leader: Some(addr) }) if addr != self.config.advertise => {
                    match self.forward_write(&addr, &change).await {
                        Err(NodeError::NotLeader { .. }) | Err(NodeError::Unreachable(_)) => {}
                        other => return other,
                    }
                }
                Err(NodeError::NotLeader { .. }) => {}
                other => return other,
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(NodeError::NoLeader);
            }
            // No usable leader right now (election in progress): wait for one and retry.
            let mut rx = self.raft.metrics();
            let _ = tokio::time::timeout(Duration::from_millis(100), rx.changed()).await;
        }
    }

    /// Proposes on this node only; `NotLeader` when it is not the leader.
    pub async fn write_local(&self, change: Change) -> Result<WriteOutcome, NodeError> {
        match self.raft.client_write(Command { change }).await {
            Ok(resp) => Ok(WriteOutcome { rev: resp.log_id.index, results: resp.data.results }),
            Err(e) => {
                if let Some(openraft::errors::ClientWriteError::LogEntryDiscarded(_)) = e.api_error() {
                    return Err(NodeError::Unknown(
                        "leadership changed before the write committed; it may or may not have been applied".into(),
                    ));
                }
                if let Some(f) = e.forward_to_leader() {
                    return Err(NodeError::NotLeader { leader: f.leader_node.as_ref().map(|n| n.addr.clone()) });
                }
                Err(NodeError::Raft(e.to_string()))
            }
        }
    }

    async fn forward_write(&self, leader: &str, change: &Change) -> Result<WriteOutcome, NodeError> {
        let r: Result<WriteOutcome, WireError> = self.peer_call(leader, "/raft/v1/propose", &Command { change: change.clone() }).await?;
        r.map_err(NodeError::from)
    }

    pub(crate) async fn peer_call<Req: Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        req: &Req,
    ) -> Result<Resp, NodeError> {
        let body = bincode::serialize(req).map_err(|e| NodeError::Raft(e.to_string()))?;
        let resp = self
            .http
            .post(format!("{base}{path}"))
            .header(HEADER_CLUSTER, self.cluster_id.get())
            .timeout(Duration::from_secs(15))
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    NodeError::Unreachable(format!("{base}: {e}"))
                } else {
                    NodeError::Unknown(format!("request to leader {base} failed after it was sent: {e}"))
                }
            })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| NodeError::Unknown(format!("reading answer of {base}: {e}")))?;
        if !status.is_success() {
            return Err(NodeError::Unknown(format!("{base}{path}: {status}: {}", String::from_utf8_lossy(&bytes))));
        }
        bincode::deserialize(&bytes).map_err(|e| NodeError::Raft(format!("bad answer from {base}: {e}")))
    }

    // ------------------------------------------------------------------------------------------
    // Reads
    // ------------------------------------------------------------------------------------------

    fn read_policy(&self) -> ReadPolicy {
        if self.config.lease_reads { ReadPolicy::LeaseRead } else { ReadPolicy::ReadIndex }
    }

    /// Waits until this node's store reflects every write committed before the call (ReadIndex
    /// through the leader, then the local apply); returns the read index. Reads made after it
    /// returns are linearizable.
    pub async fn read_barrier(&self) -> Result<u64, NodeError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let index = match self.read_index_local().await {
                Ok(i) => Some(i),
                Err(NodeError::NotLeader { leader: Some(addr) }) if addr != self.config.advertise => {
                    match self.peer_call::<_, Result<u64, WireError>>(&addr, "/raft/v1/read-index", &()).await {
                        Ok(Ok(i)) => Some(i),
                        Ok(Err(e)) => match NodeError::from(e) {
                            NodeError::NotLeader { .. } => None,
                            e => return Err(e),
                        },
                        Err(NodeError::Unreachable(_)) | Err(NodeError::Unknown(_)) => None,
                        Err(e) => return Err(e),
                    }
                }
                Err(NodeError::NotLeader { .. }) => None,
                Err(e) => return Err(e),
            };
            if let Some(index) = index {
                let wait = tokio::time::timeout_at(deadline, self.store.wait_applied(index)).await;
                return match wait {
                    Ok(()) => Ok(index),
                    Err(_) => Err(NodeError::Unknown(format!("timed out applying up to read index {index}"))),
                };
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(NodeError::NoLeader);
            }
            let mut rx = self.raft.metrics();
            let _ = tokio::time::timeout(Duration::from_millis(100), rx.changed()).await;
        }
    }

    /// The read index as the leader sees it (leadership confirmed by a quorum).
    pub async fn read_index_local(&self) -> Result<u64, NodeError> {
        match self.raft.get_read_linearizer(self.read_policy()).await {
            Ok(lin) => Ok(lin.read_log_id().index()),
            Err(e) => {
                if let Some(f) = e.forward_to_leader() {
                    return Err(NodeError::NotLeader { leader: f.leader_node.as_ref().map(|n| n.addr.clone()) });
                }
                Err(NodeError::Raft(e.to_string()))
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // Membership and leadership
    // ------------------------------------------------------------------------------------------

    /// Adds a member: learner first (blocks until it has caught up), then voter. Leader only.
    pub async fn add_member(&self, id: NodeId, addr: String) -> Result<(), NodeError> {
        let m = self.raft.metrics().borrow_watched().membership_config.clone();
        if m.membership().voter_ids().any(|v| v == id) {
            if m.membership().get_node(&id).map(|n| n.addr.as_str()) == Some(addr.as_str()) {
                return Ok(());
            }
            return Err(NodeError::Config(format!("node {id} is already a member with another address; remove it first")));
        }
        tracing::info!(id, %addr, "adding learner and waiting for it to catch up");
        self.raft
            .add_learner(id, BasicNode { addr }, true)
            .await
            .map_err(|e| self.leader_error(e.forward_to_leader().map(|f| f.leader_node.clone()), e.to_string()))?;
        tracing::info!(id, "promoting to voter");
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(|e| self.leader_error(e.forward_to_leader().map(|f| f.leader_node.clone()), e.to_string()))?;
        Ok(())
    }

    /// Removes a member (voter or learner). Leader only.
    pub async fn remove_member(&self, id: NodeId) -> Result<(), NodeError> {
        let m = self.raft.metrics().borrow_watched().membership_config.clone();
        let is_voter = m.membership().voter_ids().any(|v| v == id);
        let is_node = m.membership().get_node(&id).is_some();
        if !is_node {
            return Err(NodeError::NotFound(format!("node {id} is not a member")));
        }
        let change = if is_voter {
            let voters: BTreeSet<NodeId> = m.membership().voter_ids().collect();
            if voters.len() == 1 {
                return Err(NodeError::Config("cannot remove the last voter".into()));
            }
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.raft
            .change_membership(change, false)
            .await
            .map_err(|e| self.leader_error(e.forward_to_leader().map(|f| f.leader_node.clone()), e.to_string()))?;
        tracing::info!(id, "removed member");
        Ok(())
    }

    fn leader_error(&self, forward: Option<Option<BasicNode>>, msg: String) -> NodeError {
        match forward {
            Some(node) => NodeError::NotLeader { leader: node.map(|n| n.addr) },
            None => NodeError::Raft(msg),
        }
    }

    /// Hands leadership to `to`, or to the most up-to-date other voter. Leader only.
    pub async fn transfer_leader(&self, to: Option<NodeId>) -> Result<NodeId, NodeError> {
        if !self.is_leader() {
            return Err(NodeError::NotLeader { leader: self.leader().map(|l| l.1) });
        }
        let m = self.raft.metrics().borrow_watched().clone();
        let target = match to {
            Some(t) => {
                if !m.membership_config.membership().voter_ids().any(|v| v == t) {
                    return Err(NodeError::NotFound(format!("node {t} is not a voter")));
                }
                t
            }
            None => {
                let repl = m.replication.clone().unwrap_or_default();
                m.membership_config
                    .membership()
                    .voter_ids()
                    .filter(|v| *v != self.id)
                    .max_by_key(|v| repl.get(v).cloned().flatten().map(|l| l.index))
                    .ok_or_else(|| NodeError::Config("no other voter to hand leadership to".into()))?
            }
        };
        if target == self.id {
            return Ok(target);
        }
        self.raft.trigger().transfer_leader(target).await.map_err(|e| NodeError::Raft(e.to_string()))?;
        // Wait until someone else leads.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut rx = self.raft.metrics();
        loop {
            let cur = rx.borrow_watched().current_leader;
            if cur.is_some() && cur != Some(self.id) {
                return Ok(cur.expect("checked"));
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return Err(NodeError::Unknown(format!("leadership did not move to {target} within 5s")));
            }
        }
    }

    pub fn status(&self) -> NodeStatus {
        let m = self.raft.metrics().borrow_watched().clone();
        let membership = m.membership_config.membership().clone();
        let last = m.last_log_index;
        let repl = m.replication.clone();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, node)| {
                let matched = repl.as_ref().and_then(|r| r.get(id).cloned().flatten().map(|l| l.index));
                let matched = if *id == self.id && m.state == ServerState::Leader { last } else { matched };
                MemberStatus {
                    id: *id,
                    addr: node.addr.clone(),
                    voter: voters.contains(id),
                    matched,
                    lag: match (last, matched) {
                        (Some(l), Some(mi)) => Some(l.saturating_sub(mi)),
                        _ => None,
                    },
                }
            })
            .collect();
        NodeStatus {
            cluster_id: self.cluster_id.get(),
            id: self.id,
            addr: self.config.advertise.clone(),
            state: format!("{:?}", m.state),
            leader: m.current_leader,
            leader_addr: m.current_leader.and_then(|l| membership.get_node(&l).map(|n| n.addr.clone())),
            term: m.current_term,
            last_log_index: m.last_log_index,
            committed: m.local_committed.as_ref().map(|l| l.index),
            applied: m.last_applied.as_ref().map(|l| l.index),
            snapshot: m.snapshot.as_ref().map(|l| l.index),
            purged: m.purged.as_ref().map(|l| l.index),
            revision: self.store.current_revision(),
            compacted_revision: self.store.compacted_revision(),
            members,
        }
    }

    /// Writes a snapshot of this node's state (after a read barrier, so it holds every write
    /// acknowledged before the call) to `out`; returns the revision it holds.
    pub async fn save_snapshot(&self, out: PathBuf) -> Result<u64, NodeError> {
        self.read_barrier().await?;
        let store = self.store.clone();
        let dir = self.config.snapshot_dir();
        tokio::task::spawn_blocking(move || -> Result<u64, NodeError> {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
            let cp = dir.join(format!("checkpoint-save-{nanos}"));
            store.checkpoint(&cp)?;
            let r = storage::snapshot::export_checkpoint(&cp, &out);
            let _ = std::fs::remove_dir_all(&cp);
            r?;
            let meta = storage::snapshot::read_meta(&out)?;
            let rev = meta.get(&b"store/rev"[..]).map(|b| u64::from_be_bytes(b[..8].try_into().unwrap_or([0; 8]))).unwrap_or(0);
            Ok(rev)
        })
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?
    }

    /// On the leader, proposes compaction of history older than one interval, every interval.
    fn spawn_compactor(self: Arc<Self>) {
        let weak = Arc::downgrade(&self);
        let interval = self.config.compaction_interval;
        drop(self);
        tokio::spawn(async move {
            let mut previous: Option<u64> = None;
            loop {
                tokio::time::sleep(interval).await;
                let Some(node) = weak.upgrade() else { return };
                if !node.is_leader() {
                    previous = None;
                    continue;
                }
                if let Some(rev) = previous
                    && rev > node.store.compacted_revision()
                {
                    match node.write_local(Change::Compact { rev }).await {
                        Ok(_) => tracing::debug!(rev, "compaction committed"),
                        Err(e) => tracing::warn!(rev, error = %e, "compaction proposal failed"),
                    }
                }
                previous = Some(node.store.current_revision());
            }
        });
    }

    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct JoinRequest {
    pub id: NodeId,
    pub addr: String,
}

/// See [`RaftNode::state_watch`].
pub struct StateWatch {
    rx: openraft::alias::WatchReceiverOf<TypeConfig, openraft::RaftMetrics<TypeConfig>>,
}

impl StateWatch {
    /// Waits for the next change; false once the node has shut down.
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }
}
