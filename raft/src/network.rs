//! Peer transport: openraft RPCs over HTTP with bincode bodies, on a pooled client.
//!
//! Every request carries the cluster id; a member of another cluster (for example one restored
//! from a snapshot, which gets a fresh id) refuses it. TLS is a property of the client and of the
//! listener, selected by the `https://` scheme of member addresses.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, v2::RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, BasicNode};
use serde::{Serialize, de::DeserializeOwned};

use crate::types::*;

pub const HEADER_CLUSTER: &str = "x-rkube-cluster";
pub const HEADER_SNAPSHOT: &str = "x-rkube-snapshot";

/// The cluster id this node belongs to (empty until it is known).
#[derive(Clone, Default)]
pub struct ClusterId(Arc<RwLock<String>>);

impl ClusterId {
    pub fn new(id: String) -> ClusterId {
        ClusterId(Arc::new(RwLock::new(id)))
    }
    pub fn get(&self) -> String {
        self.0.read().expect("cluster id lock").clone()
    }
    pub fn set(&self, id: String) {
        *self.0.write().expect("cluster id lock") = id;
    }
}

/// Mutual TLS between members: every member presents a certificate signed by the peer CA and
/// accepts only peers that do. PEM bytes.
#[derive(Clone, Debug)]
pub struct PeerTls {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

/// Builds the HTTP client shared by all peer connections (TLS with a client certificate when
/// `tls` is given; the member URLs then use `https://`).
pub fn peer_http_client(tls: Option<&PeerTls>) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_millis(500));
    if let Some(t) = tls {
        let ca = reqwest::Certificate::from_pem(&t.ca_pem).map_err(|e| format!("peer CA: {e}"))?;
        let mut pem = t.cert_pem.clone();
        pem.extend_from_slice(&t.key_pem);
        let id = reqwest::Identity::from_pem(&pem).map_err(|e| format!("peer certificate and key: {e}"))?;
        b = b.tls_built_in_root_certs(false).add_root_certificate(ca).identity(id).use_rustls_tls();
    }
    b.build().map_err(|e| format!("building the peer HTTP client: {e}"))
}

#[derive(Clone)]
pub struct Network {
    pub client: reqwest::Client,
    pub cluster_id: ClusterId,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerConnection {
        PeerConnection {
            client: self.client.clone(),
            target,
            base: node.addr.trim_end_matches('/').to_string(),
            cluster_id: self.cluster_id.clone(),
        }
    }
}

pub struct PeerConnection {
    client: reqwest::Client,
    target: NodeId,
    base: String,
    cluster_id: ClusterId,
}

/// Why an RPC failed, before it is mapped into openraft's error types.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("peer {0} unreachable: {1}")]
    Unreachable(String, String),
    #[error("peer {0}: {1}")]
    Failed(String, String),
}

impl PeerConnection {
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, PeerError> {
        let body = bincode::serialize(req).map_err(|e| PeerError::Failed(self.base.clone(), e.to_string()))?;
        let url = format!("{}{}", self.base, path);
        let resp = self
            .client
            .post(&url)
            .header(HEADER_CLUSTER, self.cluster_id.get())
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| classify(&self.base, e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| classify(&self.base, e))?;
        if !status.is_success() {
            return Err(PeerError::Failed(self.base.clone(), format!("{status}: {}", String::from_utf8_lossy(&bytes))));
        }
        bincode::deserialize(&bytes).map_err(|e| PeerError::Failed(self.base.clone(), format!("bad response: {e}")))
    }
}

fn classify(base: &str, e: reqwest::Error) -> PeerError {
    if e.is_connect() {
        PeerError::Unreachable(base.to_string(), e.to_string())
    } else {
        PeerError::Failed(base.to_string(), e.to_string())
    }
}

fn rpc_err(e: PeerError) -> RPCError<TypeConfig> {
    match &e {
        PeerError::Unreachable(..) => RPCError::Unreachable(Unreachable::new(&e)),
        PeerError::Failed(..) => RPCError::Network(NetworkError::new(&e)),
    }
}

fn ttl(option: &RPCOption) -> Duration {
    option.hard_ttl().max(Duration::from_millis(50))
}

impl RaftNetworkV2<TypeConfig> for PeerConnection {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call("/raft/v1/append", &rpc, ttl(&option)).await.map_err(rpc_err)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call("/raft/v1/vote", &rpc, ttl(&option)).await.map_err(rpc_err)
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call("/raft/v1/pre-vote", &rpc, ttl(&option)).await.map_err(rpc_err)
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call("/raft/v1/transfer-leader", &req, ttl(&option)).await.map_err(rpc_err)
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let send = async {
            let header = bincode::serialize(&(vote, snapshot.meta.clone()))
                .map_err(|e| PeerError::Failed(self.base.clone(), e.to_string()))?;
            let path = snapshot.snapshot.path.clone();
            let body = if path.is_dir() {
                // A checkpoint: export it on the fly into the request body.
                tracing::info!(target_node = self.target, checkpoint = %path.display(), "streaming snapshot from checkpoint");
                let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(16);
                tokio::task::spawn_blocking(move || {
                    let w = ChannelWriter { tx: tx.clone() };
                    if let Err(e) = storage::snapshot::export_checkpoint_to(&path, w) {
                        let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                    }
                });
                reqwest::Body::wrap_stream(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }))
            } else {
                let file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| PeerError::Failed(self.base.clone(), format!("open snapshot: {e}")))?;
                let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
                tracing::info!(target_node = self.target, bytes = len, "streaming snapshot");
                reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20))
            };
            let resp = self
                .client
                .post(format!("{}/raft/v1/snapshot", self.base))
                .header(HEADER_CLUSTER, self.cluster_id.get())
                .header(HEADER_SNAPSHOT, hex::encode(header))
                .timeout(Duration::from_secs(600))
                .body(body)
                .send()
                .await
                .map_err(|e| classify(&self.base, e))?;
            let status = resp.status();
            let bytes = resp.bytes().await.map_err(|e| classify(&self.base, e))?;
            if !status.is_success() {
                return Err(PeerError::Failed(self.base.clone(), format!("{status}: {}", String::from_utf8_lossy(&bytes))));
            }
            bincode::deserialize::<SnapshotResponse<TypeConfig>>(&bytes)
                .map_err(|e| PeerError::Failed(self.base.clone(), format!("bad response: {e}")))
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            r = send => r.map_err(|e| match &e {
                PeerError::Unreachable(..) => StreamingError::Unreachable(Unreachable::new(&e)),
                PeerError::Failed(..) => StreamingError::Network(NetworkError::new(&e)),
            }),
        }
    }
}

/// Wraps an error message as openraft's opaque error.
#[allow(dead_code)]
pub(crate) fn any_error(msg: impl ToString) -> AnyError {
    AnyError::error(msg)
}

/// Bytes written on a blocking thread, sent as chunks of an HTTP body.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(bytes::Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the receiving member went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
