//! What a cluster needs before its API can be used: the CA and the admin token (kept in the
//! replicated store so every master serves the same identity), and the objects Kubernetes
//! creates at bootstrap (the system namespaces and the `kubernetes` service).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use apimachinery::registry;
use apimachinery::status::ApiError;
use bytes::Bytes;
use raft::RaftNode;
use serde_json::json;
use storage::{Change, Op, OpResult, Store};

use super::Api;
use super::request::{RequestInfo, Verb};
use super::tls::{self, Pki};

const PKI_KEY: &str = "/registry/rkube/pki/ca";
const TOKENS_PREFIX: &str = "/registry/rkube/tokens/";
const ADMIN_TOKEN_KEY: &str = "/registry/rkube/tokens/admin";

pub const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates `key` with `value` unless it exists; returns the stored value either way.
async fn create_or_get(node: &RaftNode, key: &str, value: Vec<u8>) -> Result<Vec<u8>> {
    let out = node
        .write(Change::Txn { ops: vec![Op::Create { key: key.into(), value: Bytes::from(value.clone()) }], atomic: true })
        .await
        .with_context(|| format!("writing {key}"))?;
    match &out.results[0] {
        OpResult::Ok { .. } => Ok(value),
        OpResult::AlreadyExists { .. } => {
            node.read_barrier().await?;
            let (kv, _) = node.store.get(key, None)?;
            Ok(kv.context("vanished right after it existed")?.value.to_vec())
        }
        other => bail!("writing {key}: {other:?}"),
    }
}

/// The cluster CA and admin token, created by the first master that asks.
pub async fn cluster_secrets(node: &RaftNode) -> Result<(Pki, String)> {
    node.wait_for_leader(Duration::from_secs(60)).await.context("no leader: cannot read the cluster CA")?;
    node.read_barrier().await?;
    let pki = match node.store.get(PKI_KEY, None)?.0 {
        Some(kv) => serde_json::from_slice(&kv.value)?,
        None => {
            let fresh = serde_json::to_vec(&tls::generate_ca()?)?;
            serde_json::from_slice(&create_or_get(node, PKI_KEY, fresh).await?)?
        }
    };
    let token = match node.store.get(ADMIN_TOKEN_KEY, None)?.0 {
        Some(kv) => String::from_utf8_lossy(&kv.value).into_owned(),
        None => {
            let fresh = hex::encode(rand::random::<[u8; 24]>()).into_bytes();
            String::from_utf8_lossy(&create_or_get(node, ADMIN_TOKEN_KEY, fresh).await?).into_owned()
        }
    };
    Ok((pki, token))
}

pub fn load_tokens(store: &Store) -> Result<Vec<String>, storage::StoreError> {
    let l = store.list(TOKENS_PREFIX, None, 0, None)?;
    Ok(l.items.into_iter().map(|kv| String::from_utf8_lossy(&kv.value).into_owned()).collect())
}

/// Creates the system namespaces and the `kubernetes` service if missing. Idempotent; run by
/// the leader.
pub async fn ensure_defaults(api: &Arc<Api>) -> Result<(), ApiError> {
    let ns = registry::find("", "v1", "namespaces").expect("namespaces");
    for name in SYSTEM_NAMESPACES {
        let ri = RequestInfo { info: ns, namespace: None, name: None, subresource: None, verb: Verb::Create };
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}}});
        match api.create(&ri, &Default::default(), obj).await {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let svc = registry::find("", "v1", "services").expect("services");
    let ri = RequestInfo { info: svc, namespace: Some("default".into()), name: None, subresource: None, verb: Verb::Create };
    let obj = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": api.net.first().to_string(), "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
    });
    match api.create(&ri, &Default::default(), obj).await {
        Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
        // Another service took the address before this bootstrap ran: leave it be.
        Err(ApiError::Invalid { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
