//! Kubernetes objects on the replicated store: encoding (the stored JSON carries no
//! resourceVersion; it is the revision of the write and is set on every read), reads at the
//! consistency a request asks for, and the conditional writes behind create/update/delete.

use std::sync::Arc;

use apimachinery::registry::ResourceInfo;
use apimachinery::status::ApiError;
use bytes::Bytes;
use raft::{NodeError, RaftNode};
use serde_json::{Value, json};
use storage::{Change, KeyValue, Op, OpResult, StoreError};

/// How fresh a read must be, from the request's `resourceVersion` / `resourceVersionMatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAt {
    /// Linearizable: ReadIndex through the leader, then the local state (`resourceVersion` unset).
    Latest,
    /// Whatever this master has applied (`resourceVersion=0`).
    Any,
    /// At least this revision (`resourceVersion=N`, NotOlderThan).
    NotOlderThan(u64),
    /// Exactly this revision (`resourceVersionMatch=Exact`).
    Exact(u64),
}

impl ReadAt {
    pub fn from_query(rv: Option<&str>, rv_match: Option<&str>) -> Result<ReadAt, ApiError> {
        let rv = rv.filter(|s| !s.is_empty());
        let parse = |s: &str| s.parse::<u64>().map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion {s:?}: resource versions are integers")));
        match (rv, rv_match.filter(|s| !s.is_empty())) {
            (None, None) => Ok(ReadAt::Latest),
            (None, Some(m)) => Err(ApiError::BadRequest(format!("resourceVersionMatch={m} requires a resourceVersion"))),
            (Some("0"), None | Some("NotOlderThan")) => Ok(ReadAt::Any),
            (Some(s), None | Some("NotOlderThan")) => Ok(ReadAt::NotOlderThan(parse(s)?)),
            (Some(s), Some("Exact")) => {
                let r = parse(s)?;
                if r == 0 {
                    return Err(ApiError::BadRequest("resourceVersionMatch=Exact does not allow resourceVersion 0".into()));
                }
                Ok(ReadAt::Exact(r))
            }
            (Some(_), Some(m)) => Err(ApiError::BadRequest(format!("resourceVersionMatch {m:?} is not supported: use Exact or NotOlderThan"))),
        }
    }
}

pub fn node_error(e: NodeError) -> ApiError {
    match e {
        NodeError::Store(StoreError::TooOld { requested, compacted }) => {
            ApiError::Gone(format!("too old resource version: {requested} ({compacted})"))
        }
        NodeError::Store(StoreError::FutureRevision { requested, current }) => {
            ApiError::Timeout(format!("Too large resource version: {requested}, current: {current}"))
        }
        NodeError::NoLeader | NodeError::NotLeader { .. } | NodeError::Unreachable(_) => {
            ApiError::ServiceUnavailable(format!("the cluster has no leader at the moment, retry: {e}"))
        }
        NodeError::Unknown(m) => ApiError::Timeout(format!("the write may or may not have been applied: {m}")),
        other => ApiError::Internal(other.to_string()),
    }
}

pub fn store_error(e: StoreError) -> ApiError {
    node_error(NodeError::Store(e))
}

/// Decodes a stored object and stamps its resourceVersion.
pub fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_slice(&kv.value).map_err(|e| ApiError::Internal(format!("stored object {} does not decode: {e}", kv.key)))?;
    set_rv(&mut v, kv.mod_rev);
    Ok(v)
}

pub fn set_rv(v: &mut Value, rev: u64) {
    if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.insert("resourceVersion".into(), json!(rev.to_string()));
    }
}

/// Encodes an object for storage, without its resourceVersion (the revision is the truth).
pub fn encode(v: &Value) -> Bytes {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.remove("resourceVersion");
    }
    Bytes::from(serde_json::to_vec(&v).expect("serializing a JSON value"))
}

pub struct Objects {
    pub node: Arc<RaftNode>,
}

impl Objects {
    /// Makes the local store fresh enough for `at`.
    pub async fn prepare_read(&self, at: ReadAt) -> Result<(), ApiError> {
        match at {
            ReadAt::Latest => self.node.read_barrier().await.map(|_| ()).map_err(node_error),
            ReadAt::Any | ReadAt::Exact(_) => Ok(()),
            ReadAt::NotOlderThan(rev) => {
                let store = &self.node.store;
                if store.current_revision() >= rev {
                    return Ok(());
                }
                // Kubernetes waits a little for a revision that is slightly ahead, then gives up.
                match tokio::time::timeout(std::time::Duration::from_secs(3), store.wait_applied(rev)).await {
                    Ok(()) => Ok(()),
                    Err(_) => Err(ApiError::Timeout(format!("Too large resource version: {rev}, current: {}", store.current_revision()))),
                }
            }
        }
    }

    pub async fn get(&self, info: &ResourceInfo, ns: Option<&str>, name: &str, at: ReadAt) -> Result<Value, ApiError> {
        self.prepare_read(at).await?;
        let rev = match at {
            ReadAt::Exact(r) => Some(r),
            _ => None,
        };
        let (kv, _) = self.node.store.get(&info.key(ns, name), rev).map_err(store_error)?;
        match kv {
            Some(kv) => decode(&kv),
            None => Err(ApiError::NotFound { group_resource: info.group_resource(), name: name.to_string() }),
        }
    }

    /// Reads the current object for a read-modify-write: linearizable, with its revision.
    pub async fn get_current(&self, info: &ResourceInfo, ns: Option<&str>, name: &str) -> Result<(Value, u64), ApiError> {
        self.prepare_read(ReadAt::Latest).await?;
        let (kv, _) = self.node.store.get(&info.key(ns, name), None).map_err(store_error)?;
        match kv {
            Some(kv) => Ok((decode(&kv)?, kv.mod_rev)),
            None => Err(ApiError::NotFound { group_resource: info.group_resource(), name: name.to_string() }),
        }
    }

    /// Proposes a transaction and returns its revision and verdicts.
    pub async fn txn(&self, ops: Vec<Op>, atomic: bool) -> Result<(u64, Vec<OpResult>), ApiError> {
        let out = self.node.write(Change::Txn { ops, atomic }).await.map_err(node_error)?;
        Ok((out.rev, out.results))
    }
}

pub fn conflict(info: &ResourceInfo, name: &str) -> ApiError {
    ApiError::Conflict {
        group_resource: info.group_resource(),
        name: name.to_string(),
        message: "the object has been modified; please apply your changes to the latest version and try again".into(),
    }
}

pub fn already_exists(info: &ResourceInfo, name: &str) -> ApiError {
    ApiError::AlreadyExists { group: info.group.to_string(), resource: info.plural.to_string(), name: name.to_string() }
}

pub fn not_found(info: &ResourceInfo, name: &str) -> ApiError {
    ApiError::NotFound { group_resource: info.group_resource(), name: name.to_string() }
}
