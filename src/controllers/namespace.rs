//! The namespace controller: a namespace being deleted (Terminating) has its contents deleted,
//! then its `kubernetes` finalizer removed, which completes its deletion.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apimachinery::registry;
use serde_json::{Value, json};

use crate::api::Api;
use crate::api::meta;
use crate::api::request::{RequestInfo, Verb};

pub async fn run(api: Arc<Api>) {
    loop {
        if let Err(e) = sweep(&api).await {
            tracing::warn!(error = %e, "namespace controller pass failed");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn sweep(api: &Arc<Api>) -> anyhow::Result<()> {
    let ns_info = registry::find("", "v1", "namespaces").expect("namespaces");
    let list = api.node.store.list(&ns_info.list_prefix(None), None, 0, None)?;
    for kv in list.items {
        let ns: Value = serde_json::from_slice(&kv.value)?;
        if !meta::is_deleting(&ns) {
            continue;
        }
        let name = meta::name(&ns).unwrap_or_default().to_string();
        if finalize_contents(api, &name).await? {
            let ri = RequestInfo { info: ns_info, namespace: None, name: Some(name.clone()), subresource: Some("finalize".into()), verb: Verb::Update };
            let res = api
                .guaranteed_update(&ri, &HashMap::new(), None, |cur| {
                    let mut n = cur.clone();
                    let left: Vec<Value> = cur
                        .pointer("/spec/finalizers")
                        .and_then(|f| f.as_array())
                        .map(|a| a.iter().filter(|f| f.as_str() != Some("kubernetes")).cloned().collect())
                        .unwrap_or_default();
                    n["spec"]["finalizers"] = json!(left);
                    Ok(n)
                })
                .await;
            match res {
                Ok(_) => tracing::info!(namespace = %name, "namespace finalized"),
                Err(apimachinery::status::ApiError::NotFound { .. }) => {}
                Err(e) => tracing::warn!(namespace = %name, error = %e, "finalizing namespace"),
            }
        }
    }
    Ok(())
}

/// Deletes everything in the namespace; true once nothing is left.
async fn finalize_contents(api: &Arc<Api>, ns: &str) -> anyhow::Result<bool> {
    let mut empty = true;
    for info in registry::resources().iter().filter(|r| r.namespaced) {
        // events.k8s.io Events and core Events are separate keys here; both go.
        let items = api.node.store.list(&info.list_prefix(Some(ns)), None, 0, None)?.items;
        for kv in items {
            empty = false;
            let obj: Value = serde_json::from_slice(&kv.value)?;
            if meta::is_deleting(&obj) {
                continue;
            }
            let ri = RequestInfo { info, namespace: Some(ns.to_string()), name: meta::name(&obj).map(String::from), subresource: None, verb: Verb::Delete };
            if let Err(e) = api.delete(&ri, &HashMap::new(), None).await
                && !matches!(e, apimachinery::status::ApiError::NotFound { .. })
            {
                tracing::warn!(namespace = ns, key = %kv.key, error = %e, "deleting namespace content");
            }
        }
    }
    Ok(empty)
}
