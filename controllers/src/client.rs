//! What controllers need from the cluster: read (list + watch, for the informer caches) and
//! write (the API verbs). The masters implement it in-process over the API server; tests use
//! [`crate::testing::FakeCluster`].

use apimachinery::registry::ResourceInfo;
use apimachinery::status::ApiError;
use async_trait::async_trait;
use futures::stream::BoxStream;
use serde_json::Value;

/// A resource type, as the registry describes it.
pub type Resource = &'static ResourceInfo;

/// One change seen by a watch.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    Added(Value),
    Modified(Value),
    Deleted(Value),
}

/// Why a watch ended.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WatchError {
    /// The revision asked for is compacted: relist.
    #[error("too old: relist")]
    Gone,
    #[error("watch failed: {0}")]
    Other(String),
}

/// A binding of a pod to a node, made by the scheduler.
#[derive(Debug, Clone)]
pub struct Binding {
    pub namespace: String,
    pub name: String,
    /// The pod's uid: the binding fails if the pod was replaced by another of the same name.
    pub uid: String,
    pub node: String,
}

/// Delete options controllers use.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `Background` (default), `Foreground` or `Orphan`.
    pub propagation: Option<String>,
    pub grace_period_seconds: Option<i64>,
    /// Delete only if the object still has this uid.
    pub uid: Option<String>,
}

#[async_trait]
pub trait Client: Send + Sync + 'static {
    /// All objects of a resource (every namespace) and the revision they were read at.
    async fn list(&self, resource: Resource) -> Result<(Vec<Value>, u64), ApiError>;
    /// Changes after `rev`, in order, without gaps.
    async fn watch(&self, resource: Resource, rev: u64) -> Result<BoxStream<'static, Result<WatchEvent, WatchError>>, WatchError>;

    async fn create(&self, resource: Resource, namespace: Option<&str>, obj: Value) -> Result<Value, ApiError>;
    /// Replaces the object; fails with Conflict when `obj`'s resourceVersion is stale.
    async fn update(&self, resource: Resource, obj: Value) -> Result<Value, ApiError>;
    /// Replaces the object's status; fails with Conflict when `obj`'s resourceVersion is stale.
    async fn update_status(&self, resource: Resource, obj: Value) -> Result<Value, ApiError>;
    /// A JSON merge patch (no resourceVersion precondition unless the patch names one).
    async fn merge_patch(&self, resource: Resource, namespace: Option<&str>, name: &str, patch: Value) -> Result<Value, ApiError>;
    /// A JSON merge patch of the status subresource.
    async fn merge_patch_status(&self, resource: Resource, namespace: Option<&str>, name: &str, patch: Value) -> Result<Value, ApiError>;
    async fn delete(&self, resource: Resource, namespace: Option<&str>, name: &str, opts: DeleteOptions) -> Result<(), ApiError>;
    /// Binds many pods at once (one replicated write for the whole batch); one result per binding.
    async fn bind(&self, bindings: Vec<Binding>) -> Vec<Result<(), ApiError>>;
}

/// Resources by name, for brevity in controllers.
pub fn res(group: &str, plural: &str) -> Resource {
    let version = match group {
        "" | "apps" | "batch" | "coordination.k8s.io" | "discovery.k8s.io" | "events.k8s.io" | "rbac.authorization.k8s.io" | "policy"
        | "scheduling.k8s.io" => "v1",
        "autoscaling" => "v2",
        _ => "v1",
    };
    apimachinery::registry::find(group, version, plural).unwrap_or_else(|| panic!("{group}/{plural} is not a served resource"))
}
