//! The internal store API (`/store/v1/*`, JSON): the replicated object store as the Kubernetes
//! API server, the tests and the benchmark use it. Writes go through Raft (forwarded to the
//! leader from followers); reads are linearizable unless `consistency=serializable`; watches are
//! served from the local apply stream, so they resume on any member with the same revision.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use raft::api::*;
use raft::{NodeError, RaftNode};
use serde::{Deserialize, Serialize};
use storage::{Change, EventKind, KeyValue, Op, OpResult, StoreError, WatchEvent};

type AppState = Arc<RaftNode>;

pub fn router(node: Arc<RaftNode>) -> Router {
    Router::new()
        .route("/store/v1/txn", post(txn))
        .route("/store/v1/get", get(get_key))
        .route("/store/v1/list", get(list))
        .route("/store/v1/watch", get(watch))
        .route("/store/v1/compact", post(compact))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(node)
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
    reason: &'static str,
}

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn api_kv(kv: KeyValue) -> ApiKeyValue {
    ApiKeyValue { key: kv.key, value: text(&kv.value), create_rev: kv.create_rev, mod_rev: kv.mod_rev }
}

fn api_event(e: &WatchEvent) -> ApiEvent {
    ApiEvent {
        rev: e.rev,
        key: e.key.clone(),
        kind: match e.kind {
            EventKind::Created => "created",
            EventKind::Modified => "modified",
            EventKind::Deleted => "deleted",
        }
        .into(),
        value: text(&e.value),
        prev_value: e.prev_value.as_ref().map(text),
    }
}

fn error_response(e: &NodeError) -> Response {
    let (code, reason) = match e {
        NodeError::Store(StoreError::TooOld { .. }) => (StatusCode::GONE, "Expired"),
        NodeError::Store(StoreError::FutureRevision { .. }) => (StatusCode::BAD_REQUEST, "FutureRevision"),
        NodeError::NoLeader | NodeError::NotLeader { .. } | NodeError::Unreachable(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "Unavailable")
        }
        NodeError::Unknown(_) => (StatusCode::GATEWAY_TIMEOUT, "OutcomeUnknown"),
        NodeError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
        NodeError::Config(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
    };
    (code, axum::Json(ErrorBody { error: e.to_string(), reason })).into_response()
}

fn bad_request(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(ErrorBody { error: msg, reason: "BadRequest" })).into_response()
}

async fn txn(State(node): State<AppState>, body: axum::body::Bytes) -> Response {
    let req: TxnRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("request body is not a valid txn: {e}")),
    };
    if req.ops.is_empty() {
        return bad_request("a txn needs at least one op".into());
    }
    let ops = req
        .ops
        .into_iter()
        .map(|op| match op {
            ApiOp::Create { key, value } => Op::Create { key, value: Bytes::from(value) },
            ApiOp::Update { key, value, rev } => Op::Update { key, value: Bytes::from(value), expected_rev: rev },
            ApiOp::Put { key, value } => Op::Put { key, value: Bytes::from(value) },
            ApiOp::Delete { key, rev } => Op::Delete { key, expected_rev: rev },
        })
        .collect();
    match node.write(Change::Txn { ops, atomic: req.atomic }).await {
        Ok(out) => {
            let results = out
                .results
                .into_iter()
                .map(|r| match r {
                    OpResult::Ok { create_rev, prev } => ApiResult::Ok { create_rev, prev: prev.as_ref().map(text) },
                    OpResult::AlreadyExists { mod_rev } => ApiResult::AlreadyExists { mod_rev },
                    OpResult::NotFound => ApiResult::NotFound,
                    OpResult::Conflict { mod_rev } => ApiResult::Conflict { mod_rev },
                    OpResult::Aborted => ApiResult::Aborted,
                    OpResult::Invalid(message) => ApiResult::Invalid { message },
                })
                .collect();
            axum::Json(TxnResponse { rev: out.rev, results }).into_response()
        }
        Err(e) => error_response(&e),
    }
}

#[derive(Deserialize)]
struct ReadParams {
    key: Option<String>,
    prefix: Option<String>,
    rev: Option<u64>,
    limit: Option<usize>,
    after: Option<String>,
    /// `linearizable` (default) or `serializable` (local state, no round trip).
    consistency: Option<String>,
}

async fn barrier(node: &RaftNode, consistency: Option<&str>) -> Result<(), Response> {
    match consistency {
        None | Some("linearizable") => node.read_barrier().await.map(|_| ()).map_err(|e| error_response(&e)),
        Some("serializable") => Ok(()),
        Some(other) => Err(bad_request(format!("consistency must be linearizable or serializable, not {other:?}"))),
    }
}

async fn get_key(State(node): State<AppState>, Query(p): Query<ReadParams>) -> Response {
    let Some(key) = p.key else { return bad_request("missing ?key=".into()) };
    if let Err(r) = barrier(&node, p.consistency.as_deref()).await {
        return r;
    }
    match node.store.get(&key, p.rev) {
        Ok((kv, rev)) => axum::Json(GetResponse { rev, kv: kv.map(api_kv) }).into_response(),
        Err(e) => error_response(&NodeError::Store(e)),
    }
}

async fn list(State(node): State<AppState>, Query(p): Query<ReadParams>) -> Response {
    let prefix = p.prefix.unwrap_or_default();
    if let Err(r) = barrier(&node, p.consistency.as_deref()).await {
        return r;
    }
    match node.store.list(&prefix, p.after.as_deref(), p.limit.unwrap_or(0), p.rev) {
        Ok(l) => axum::Json(ListResponse { rev: l.rev, items: l.items.into_iter().map(api_kv).collect(), more: l.more })
            .into_response(),
        Err(e) => error_response(&NodeError::Store(e)),
    }
}

#[derive(Deserialize)]
struct WatchParams {
    prefix: Option<String>,
    /// Deliver changes with revisions after this one (default: the current revision).
    after: Option<u64>,
}

/// Streams events as newline-delimited JSON; an error ends the stream with an `{"error":..}` line.
async fn watch(State(node): State<AppState>, Query(p): Query<WatchParams>) -> Response {
    let prefix = p.prefix.unwrap_or_default();
    let after = p.after.unwrap_or_else(|| node.store.current_revision());
    let mut watcher = match node.store.watch(&prefix, after) {
        Ok(w) => w,
        Err(e) => return error_response(&NodeError::Store(e)),
    };
    let stream = async_stream(move |tx| async move {
        loop {
            match watcher.next().await {
                Ok(events) => {
                    let mut buf = Vec::new();
                    for e in &events {
                        serde_json::to_writer(&mut buf, &api_event(e)).expect("serializing an event");
                        buf.push(b'\n');
                    }
                    if tx.send(Ok(Bytes::from(buf))).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let line = serde_json::json!({"error": e.to_string()}).to_string() + "\n";
                    let _ = tx.send(Ok(Bytes::from(line))).await;
                    return;
                }
            }
        }
    });
    (StatusCode::OK, [("content-type", "application/x-ndjson")], Body::from_stream(stream)).into_response()
}

/// A body stream fed by a task; the task ends when the client goes away.
fn async_stream<F, Fut>(f: F) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    tokio_stream_from(rx)
}

fn tokio_stream_from<T>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[derive(Deserialize)]
struct CompactRequest {
    rev: u64,
}

async fn compact(State(node): State<AppState>, axum::Json(req): axum::Json<CompactRequest>) -> Response {
    if req.rev > node.store.current_revision() {
        return bad_request(format!("cannot compact to {}: the current revision is {}", req.rev, node.store.current_revision()));
    }
    match node.write(Change::Compact { rev: req.rev }).await {
        Ok(out) => axum::Json(serde_json::json!({"rev": out.rev, "compacted": req.rev})).into_response(),
        Err(e) => error_response(&e),
    }
}
