//! HTTP endpoints of a master's peer port: openraft RPCs (`/raft/v1/*`, bincode, cluster id
//! checked), and cluster administration (`/cluster/v1/*`, JSON) used by `rkube cluster` and
//! `rkube snapshot save`. Administrative requests reaching a follower are forwarded to the leader.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use futures::StreamExt;
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::error::{NodeError, WireError};
use crate::network::{HEADER_CLUSTER, HEADER_SNAPSHOT};
use crate::node::{JoinRequest, RaftNode, WriteOutcome};
use crate::types::*;

type AppState = Arc<RaftNode>;

pub fn router(node: Arc<RaftNode>) -> Router {
    let raft_routes = Router::new()
        .route("/raft/v1/append", post(append))
        .route("/raft/v1/vote", post(vote))
        .route("/raft/v1/pre-vote", post(pre_vote))
        .route("/raft/v1/transfer-leader", post(transfer_leader_rpc))
        .route("/raft/v1/snapshot", post(install_snapshot))
        .route("/raft/v1/propose", post(propose))
        .route("/raft/v1/read-index", post(read_index))
        .layer(middleware::from_fn_with_state(node.clone(), check_cluster));
    let admin = Router::new()
        .route("/cluster/v1/status", get(status))
        .route("/cluster/v1/members", post(add_member))
        .route("/cluster/v1/members/{id}", delete(remove_member))
        .route("/cluster/v1/transfer-leader", post(transfer_leader))
        .route("/cluster/v1/snapshot", get(save_snapshot));
    raft_routes.merge(admin).layer(DefaultBodyLimit::disable()).with_state(node)
}

async fn check_cluster(State(node): State<AppState>, req: Request, next: Next) -> Response {
    let theirs = req.headers().get(HEADER_CLUSTER).and_then(|v| v.to_str().ok()).unwrap_or("");
    let ours = node.cluster_id.get();
    if ours.is_empty() || theirs != ours {
        return (
            StatusCode::FORBIDDEN,
            format!("cluster id mismatch: this member is in cluster {ours:?}, the request came from cluster {theirs:?}"),
        )
            .into_response();
    }
    next.run(req).await
}

fn bincode_ok<T: Serialize>(v: &T) -> Response {
    match bincode::serialize(v) {
        Ok(b) => (StatusCode::OK, b).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn decode_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    bincode::deserialize(body).map_err(|e| (StatusCode::BAD_REQUEST, format!("undecodable request: {e}")).into_response())
}

async fn append(State(node): State<AppState>, body: Bytes) -> Response {
    let req: AppendEntriesRequest<TypeConfig> = match decode_body(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match node.raft.append_entries(req).await {
        Ok(r) => bincode_ok(&r),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn vote(State(node): State<AppState>, body: Bytes) -> Response {
    let req: VoteRequest<TypeConfig> = match decode_body(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match node.raft.vote(req).await {
        Ok(r) => bincode_ok(&r),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn pre_vote(State(node): State<AppState>, body: Bytes) -> Response {
    let req: VoteRequest<TypeConfig> = match decode_body(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match node.raft.pre_vote(req).await {
        Ok(r) => bincode_ok(&r),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn transfer_leader_rpc(State(node): State<AppState>, body: Bytes) -> Response {
    let req: TransferLeaderRequest<TypeConfig> = match decode_body(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match node.raft.handle_transfer_leader(req).await {
        Ok(r) => bincode_ok(&r),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Receives a snapshot streamed by the leader into a file, then hands it to openraft.
async fn install_snapshot(State(node): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let header = headers.get(HEADER_SNAPSHOT).and_then(|v| v.to_str().ok()).and_then(|h| hex::decode(h).ok());
    let Some((vote, meta)) = header.and_then(|h| bincode::deserialize::<(Vote, SnapshotMeta)>(&h).ok()) else {
        return (StatusCode::BAD_REQUEST, "missing or undecodable snapshot header").into_response();
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let path = node.config.snapshot_dir().join(format!("incoming-{nanos}.tmp"));
    let received = async {
        let mut file = tokio::fs::File::create(&path).await?;
        let mut stream = body.into_data_stream();
        let mut bytes = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(std::io::Error::other)?;
            bytes += chunk.len() as u64;
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        Ok::<u64, std::io::Error>(bytes)
    }
    .await;
    let resp = match received {
        Ok(bytes) => {
            tracing::info!(bytes, last_log_id = ?meta.last_log_id, "received snapshot");
            let snapshot = Snapshot { meta, snapshot: SnapshotFile { path: path.clone() } };
            match node.raft.install_full_snapshot(vote, snapshot).await {
                Ok(r) => bincode_ok(&r),
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
            }
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("receiving snapshot: {e}")).into_response(),
    };
    let _ = tokio::fs::remove_file(&path).await;
    resp
}

/// A write forwarded by a follower. Not forwarded again: a stale leader answers `NotLeader`.
async fn propose(State(node): State<AppState>, body: Bytes) -> Response {
    let cmd: Command = match decode_body(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let r: Result<WriteOutcome, WireError> = node.write_local(cmd.change).await.map_err(|e| WireError::from(&e));
    bincode_ok(&r)
}

async fn read_index(State(node): State<AppState>) -> Response {
    let r: Result<u64, WireError> = node.read_index_local().await.map_err(|e| WireError::from(&e));
    bincode_ok(&r)
}

// ------------------------------------------------------------------------------------------------
// Administration (JSON)
// ------------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

fn admin_error(e: &NodeError) -> Response {
    let code = match e {
        NodeError::NotFound(_) => StatusCode::NOT_FOUND,
        NodeError::Config(_) => StatusCode::BAD_REQUEST,
        NodeError::NoLeader | NodeError::NotLeader { .. } | NodeError::Unreachable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (code, axum::Json(ErrorBody { error: e.to_string() })).into_response()
}

/// Runs `op` here; when this node is not the leader, replays the same request on the leader.
async fn on_leader<F, Fut>(node: &RaftNode, method: Method, path: &str, body: Option<serde_json::Value>, op: F) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value, NodeError>>,
{
    let leader = if node.is_leader() {
        None
    } else {
        match node.wait_for_leader(std::time::Duration::from_secs(5)).await {
            Some((id, addr)) if id != node.id => Some(addr),
            Some(_) => None,
            None => return admin_error(&NodeError::NoLeader),
        }
    };
    match leader {
        None => match op().await {
            Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
            Err(e) => admin_error(&e),
        },
        Some(addr) => {
            let mut req = node
                .http
                .request(method, format!("{addr}{path}"))
                .timeout(std::time::Duration::from_secs(600));
            if let Some(b) = body {
                req = req.json(&b);
            }
            match req.send().await {
                Ok(resp) => {
                    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
                    let bytes = resp.bytes().await.unwrap_or_default();
                    (status, [("content-type", "application/json")], bytes).into_response()
                }
                Err(e) => admin_error(&NodeError::Unreachable(format!("leader {addr}: {e}"))),
            }
        }
    }
}

async fn status(State(node): State<AppState>) -> Response {
    axum::Json(node.status()).into_response()
}

async fn add_member(State(node): State<AppState>, axum::Json(req): axum::Json<JoinRequest>) -> Response {
    let body = serde_json::to_value(&req).ok();
    let n = node.clone();
    on_leader(&node, Method::POST, "/cluster/v1/members", body, || async move {
        if !req.addr.starts_with("http://") && !req.addr.starts_with("https://") {
            return Err(NodeError::Config(format!("member address {:?} must be an http:// or https:// URL", req.addr)));
        }
        n.add_member(req.id, req.addr).await?;
        Ok(serde_json::json!({"added": req.id}))
    })
    .await
}

async fn remove_member(State(node): State<AppState>, Path(id): Path<NodeId>) -> Response {
    let n = node.clone();
    on_leader(&node, Method::DELETE, &format!("/cluster/v1/members/{id}"), None, || async move {
        n.remove_member(id).await?;
        Ok(serde_json::json!({"removed": id}))
    })
    .await
}

#[derive(Serialize, Deserialize, Default)]
pub struct TransferRequest {
    pub to: Option<NodeId>,
}

async fn transfer_leader(State(node): State<AppState>, axum::Json(req): axum::Json<TransferRequest>) -> Response {
    let body = serde_json::to_value(&req).ok();
    let n = node.clone();
    on_leader(&node, Method::POST, "/cluster/v1/transfer-leader", body, || async move {
        let to = n.transfer_leader(req.to).await?;
        Ok(serde_json::json!({"leader": to}))
    })
    .await
}

/// Streams a fresh snapshot of the state (consistent, and holding every write acknowledged
/// before the request) as `application/octet-stream`.
async fn save_snapshot(State(node): State<AppState>) -> Response {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let path = node.config.snapshot_dir().join(format!("save-{nanos}.tmp"));
    match node.save_snapshot(path.clone()).await {
        Ok(rev) => match tokio::fs::File::open(&path).await {
            Ok(file) => {
                // Unlinked now; the open handle keeps the data readable while it streams.
                let _ = tokio::fs::remove_file(&path).await;
                let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
                (StatusCode::OK, [("content-type", "application/octet-stream"), ("x-rkube-revision", &rev.to_string())], body)
                    .into_response()
            }
            Err(e) => admin_error(&NodeError::Io(e)),
        },
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            admin_error(&e)
        }
    }
}
