//! The service account controller: every namespace that is not terminating has a ServiceAccount
//! named `default` (pods that name no service account run as it, and the API server's admission
//! defaults `serviceAccountName` to it), recreated whenever it is deleted.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::Ctx;
use crate::client::res;
use crate::informer::{Change, Informer};
use crate::queue::WorkQueue;

/// The name of the service account every namespace gets.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// Whether a namespace accepts new objects: a Terminating namespace rejects creations, and
/// recreating its service account would only fight the namespace controller.
pub fn namespace_active(ns: &Value) -> bool {
    let terminating = ns.pointer("/status/phase").and_then(|p| p.as_str()) == Some("Terminating");
    !terminating && !crate::util::is_deleting(ns)
}

/// The ServiceAccount object created in `namespace`.
pub fn default_service_account(namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": namespace},
    })
}

/// Whether `namespace` (looked up in the caches) needs its default service account created.
pub fn needs_default(namespaces: &Informer, accounts: &Informer, namespace: &str) -> bool {
    match namespaces.get(namespace) {
        Some(ns) if namespace_active(&ns) => accounts.get(&format!("{namespace}/{DEFAULT_SERVICE_ACCOUNT}")).is_none(),
        _ => false,
    }
}

pub async fn run(ctx: Arc<Ctx>) {
    let namespaces = ctx.informers.get(res("", "namespaces"));
    let accounts = ctx.informers.get(res("", "serviceaccounts"));
    // Subscribe before waiting for the caches so nothing between the list and here is missed.
    let mut ns_changes = changes(&namespaces);
    let mut sa_changes = changes(&accounts);
    namespaces.synced().await;
    accounts.synced().await;

    let queue = WorkQueue::new();
    let enqueue_all = |q: &WorkQueue| {
        for ns in namespaces.list() {
            q.add(crate::util::name(&ns).to_string());
        }
    };
    enqueue_all(&queue);

    let intake = async {
        loop {
            tokio::select! {
                c = ns_changes.next() => match c {
                    Some(Some(c)) => if c.new.is_some() { queue.add(c.key) },
                    Some(None) => enqueue_all(&queue),
                    None => return,
                },
                c = sa_changes.next() => match c {
                    Some(Some(Change { old: Some(old), new: None, .. })) if crate::util::name(&old) == DEFAULT_SERVICE_ACCOUNT => {
                        queue.add(crate::util::namespace(&old).to_string());
                    }
                    Some(Some(_)) => {}
                    Some(None) => enqueue_all(&queue),
                    None => return,
                },
            }
        }
    };
    let worker = async {
        loop {
            let ns = queue.next().await;
            match sync(&ctx, &namespaces, &accounts, &ns).await {
                Ok(()) => queue.forget(&ns),
                Err(e) => {
                    tracing::debug!(namespace = %ns, error = %e, "creating the default service account");
                    queue.add_rate_limited(ns.clone());
                }
            }
            queue.done(&ns);
        }
    };
    tokio::join!(intake, worker);
}

async fn sync(ctx: &Ctx, namespaces: &Informer, accounts: &Informer, ns: &str) -> Result<(), apimachinery::status::ApiError> {
    if !needs_default(namespaces, accounts, ns) {
        return Ok(());
    }
    match ctx.client.create(res("", "serviceaccounts"), Some(ns), default_service_account(ns)).await {
        Ok(_) | Err(apimachinery::status::ApiError::AlreadyExists { .. }) => Ok(()),
        Err(e) => {
            // The namespace may have started terminating meanwhile: then there is nothing to retry.
            if needs_default(namespaces, accounts, ns) { Err(e) } else { Ok(()) }
        }
    }
}

/// The changes of an informer as a stream; `None` items mean changes were missed (lagged).
fn changes(inf: &Informer) -> std::pin::Pin<Box<dyn futures::Stream<Item = Option<Change>> + Send>> {
    let rx = inf.subscribe();
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(c) => Some((Some(c), rx)),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some((None, rx)),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_activity() {
        let cases = [
            ("active", json!({"metadata": {"name": "a"}, "status": {"phase": "Active"}}), true),
            ("no status", json!({"metadata": {"name": "a"}}), true),
            ("terminating phase", json!({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}}), false),
            ("deletion timestamp", json!({"metadata": {"name": "a", "deletionTimestamp": "2024-01-01T00:00:00Z"}}), false),
            ("odd shape", json!({"metadata": 3, "status": "x"}), true),
        ];
        for (name, ns, want) in cases {
            assert_eq!(namespace_active(&ns), want, "{name}");
        }
    }
}
