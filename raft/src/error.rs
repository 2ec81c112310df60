use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Errors of the Raft node's operations.
#[derive(Debug, Error)]
pub enum NodeError {
    #[error("not the leader (leader: {})", leader.as_deref().unwrap_or("unknown"))]
    NotLeader { leader: Option<String> },
    #[error("no leader elected within the deadline; the cluster may have lost its quorum")]
    NoLeader,
    /// The request may or may not have taken effect (connection lost after sending, leader lost
    /// before commit). Callers must not blindly retry non-idempotent writes.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Config(String),
    #[error("raft: {0}")]
    Raft(String),
    #[error(transparent)]
    Store(#[from] storage::StoreError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The serializable form of [`NodeError`] for answers between members.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum WireError {
    NotLeader(Option<String>),
    NoLeader,
    Unknown(String),
    NotFound(String),
    Other(String),
}

impl From<&NodeError> for WireError {
    fn from(e: &NodeError) -> WireError {
        match e {
            NodeError::NotLeader { leader } => WireError::NotLeader(leader.clone()),
            NodeError::NoLeader => WireError::NoLeader,
            NodeError::Unknown(m) | NodeError::Unreachable(m) => WireError::Unknown(m.clone()),
            NodeError::NotFound(m) => WireError::NotFound(m.clone()),
            other => WireError::Other(other.to_string()),
        }
    }
}

impl From<WireError> for NodeError {
    fn from(e: WireError) -> NodeError {
        match e {
            WireError::NotLeader(l) => NodeError::NotLeader { leader: l },
            WireError::NoLeader => NodeError::NoLeader,
            WireError::Unknown(m) => NodeError::Unknown(m),
            WireError::NotFound(m) => NodeError::NotFound(m),
            WireError::Other(m) => NodeError::Raft(m),
        }
    }
}
