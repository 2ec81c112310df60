use thiserror::Error;

/// Errors of the object store. Precondition failures of writes are not errors: they are
/// reported per operation in [`crate::OpResult`], because they are a normal outcome of `apply`.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The requested revision was compacted away; the caller must re-list (Kubernetes: 410 Gone).
    #[error("revision {requested} is older than the oldest kept revision {compacted}; re-list to get a fresh revision")]
    TooOld { requested: u64, compacted: u64 },
    /// A revision from the future was asked for.
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision { requested: u64, current: u64 },
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// On-disk data that does not decode: never expected, reported instead of panicking.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("invalid snapshot: {0}")]
    InvalidSnapshot(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
