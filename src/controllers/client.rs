//! The controllers' [`controllers::Client`], implemented in-process over this master's API
//! server and store: the same validation, defaulting and conditional writes as any client, minus
//! HTTP and TLS.

use std::collections::HashMap;
use std::sync::Arc;

use apimachinery::status::ApiError;
use async_trait::async_trait;
use controllers::client::{Binding, DeleteOptions, Resource, WatchError, WatchEvent};
use futures::stream::BoxStream;
use serde_json::{Value, json};
use storage::{EventKind, Op, OpResult, StoreError};

use crate::api::Api;
use crate::api::objects::{decode, encode, node_error, set_rv, store_error};
use crate::api::request::{RequestInfo, Verb};
use crate::api::resource::set_condition;

pub struct ApiClient {
    pub api: Arc<Api>,
}

fn ri(resource: Resource, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>, verb: Verb) -> RequestInfo {
    RequestInfo {
        info: resource,
        namespace: if resource.namespaced { namespace.filter(|s| !s.is_empty()).map(String::from) } else { None },
        name: name.map(String::from),
        subresource: sub.map(String::from),
        verb,
    }
}

fn meta_str<'a>(v: &'a Value, f: &str) -> Option<&'a str> {
    v.pointer(&format!("/metadata/{f}")).and_then(|s| s.as_str()).filter(|s| !s.is_empty())
}

#[async_trait]
impl controllers::Client for ApiClient {
    async fn list(&self, resource: Resource) -> Result<(Vec<Value>, u64), ApiError> {
        let store = &self.api.node.store;
        let prefix = resource.list_prefix(None);
        let mut items = Vec::new();
        let mut rev = None;
        let mut after: Option<String> = None;
        loop {
            let page = store.list(&prefix, after.as_deref(), 1000, rev).map_err(store_error)?;
            rev = Some(page.rev);
            for kv in &page.items {
                items.push(decode(kv)?);
            }
            if !page.more {
                break;
            }
            after = page.items.last().map(|kv| kv.key.clone());
        }
        Ok((items, rev.unwrap_or(0)))
    }

    async fn watch(&self, resource: Resource, rev: u64) -> Result<BoxStream<'static, Result<WatchEvent, WatchError>>, WatchError> {
        let watcher = self.api.node.store.watch(&resource.list_prefix(None), rev).map_err(|e| match e {
            StoreError::TooOld { .. } => WatchError::Gone,
            other => WatchError::Other(other.to_string()),
        })?;
        let stream = futures::stream::unfold((watcher, std::collections::VecDeque::new()), |(mut w, mut pending)| async move {
            loop {
                if let Some(ev) = pending.pop_front() {
                    return Some((Ok(ev), (w, pending)));
                }
                match w.next().await {
                    Ok(events) => {
                        for e in events {
                            let Ok(mut obj) = serde_json::from_slice::<Value>(&e.value) else { continue };
                            set_rv(&mut obj, e.rev);
                            pending.push_back(match e.kind {
                                EventKind::Created => WatchEvent::Added(obj),
                                EventKind::Modified => WatchEvent::Modified(obj),
                                EventKind::Deleted => WatchEvent::Deleted(obj),
                            });
                        }
                    }
                    Err(StoreError::TooOld { .. }) => return Some((Err(WatchError::Gone), (w, pending))),
                    Err(e) => return Some((Err(WatchError::Other(e.to_string())), (w, pending))),
                }
            }
        });
        Ok(Box::pin(stream))
    }

    async fn create(&self, resource: Resource, namespace: Option<&str>, obj: Value) -> Result<Value, ApiError> {
        let ns = namespace.or_else(|| meta_str(&obj, "namespace"));
        Ok(self.api.create(&ri(resource, ns, None, None, Verb::Create), &HashMap::new(), obj).await?.body)
    }

    async fn update(&self, resource: Resource, obj: Value) -> Result<Value, ApiError> {
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let ns = meta_str(&obj, "namespace").map(String::from);
        Ok(self.api.update(&ri(resource, ns.as_deref(), Some(&name), None, Verb::Update), &HashMap::new(), obj).await?.body)
    }

    async fn update_status(&self, resource: Resource, obj: Value) -> Result<Value, ApiError> {
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let ns = meta_str(&obj, "namespace").map(String::from);
        Ok(self.api.update(&ri(resource, ns.as_deref(), Some(&name), Some("status"), Verb::Update), &HashMap::new(), obj).await?.body)
    }

    async fn merge_patch(&self, resource: Resource, namespace: Option<&str>, name: &str, patch: Value) -> Result<Value, ApiError> {
        let body = serde_json::to_vec(&patch).expect("json");
        Ok(self
            .api
            .patch(&ri(resource, namespace, Some(name), None, Verb::Patch), &HashMap::new(), "application/merge-patch+json", &body)
            .await?
            .body)
    }

    async fn merge_patch_status(&self, resource: Resource, namespace: Option<&str>, name: &str, patch: Value) -> Result<Value, ApiError> {
        let body = serde_json::to_vec(&patch).expect("json");
        Ok(self
            .api
            .patch(&ri(resource, namespace, Some(name), Some("status"), Verb::Patch), &HashMap::new(), "application/merge-patch+json", &body)
            .await?
            .body)
    }

    async fn delete(&self, resource: Resource, namespace: Option<&str>, name: &str, opts: DeleteOptions) -> Result<(), ApiError> {
        let mut q = HashMap::new();
        if let Some(p) = &opts.propagation {
            q.insert("propagationPolicy".to_string(), p.clone());
        }
        if let Some(g) = opts.grace_period_seconds {
            q.insert("gracePeriodSeconds".to_string(), g.to_string());
        }
        let body = opts.uid.as_ref().map(|u| json!({"preconditions": {"uid": u}}));
        self.api.delete(&ri(resource, namespace, Some(name), None, Verb::Delete), &q, body).await.map(|_| ())
    }

    async fn bind(&self, bindings: Vec<Binding>) -> Vec<Result<(), ApiError>> {
        let pods = apimachinery::registry::find("", "v1", "pods").expect("pods");
        let store = &self.api.node.store;
        let mut ops = Vec::with_capacity(bindings.len());
        let mut pre: Vec<Option<Result<(), ApiError>>> = Vec::with_capacity(bindings.len());
        for b in &bindings {
            let key = pods.key(Some(&b.namespace), &b.name);
            let check = match store.get(&key, None) {
                Ok((Some(kv), _)) => match decode(&kv) {
                    Ok(mut pod) => {
                        let uid_ok = meta_str(&pod, "uid") == Some(b.uid.as_str());
                        let bound = pod.pointer("/spec/nodeName").and_then(|n| n.as_str()).is_some_and(|n| !n.is_empty());
                        let deleting = meta_str(&pod, "deletionTimestamp").is_some();
                        if !uid_ok || bound || deleting {
                            Err(ApiError::Conflict {
                                group_resource: "pods".into(),
                                name: b.name.clone(),
                                message: "the pod was replaced, is already bound, or is being deleted".into(),
                            })
                        } else {
                            pod["spec"]["nodeName"] = json!(b.node);
                            set_condition(&mut pod, "PodScheduled", "True", None, None);
                            ops.push(Op::Update { key, value: encode(&pod), expected_rev: Some(kv.mod_rev) });
                            Ok(())
                        }
                    }
                    Err(e) => Err(e),
                },
                Ok((None, _)) => Err(ApiError::NotFound { group_resource: "pods".into(), name: b.name.clone() }),
                Err(e) => Err(store_error(e)),
            };
            pre.push(match check {
                Ok(()) => None,
                Err(e) => Some(Err(e)),
            });
        }
        let results = if ops.is_empty() {
            Ok(Vec::new())
        } else {
            self.api.node.write(storage::Change::Txn { ops, atomic: false }).await.map(|o| o.results).map_err(node_error)
        };
        let mut results = match results {
            Ok(r) => r.into_iter(),
            Err(e) => return bindings.iter().map(|_| Err(e.clone())).collect(),
        };
        pre.into_iter()
            .zip(&bindings)
            .map(|(p, b)| match p {
                Some(err) => err,
                None => match results.next() {
                    Some(OpResult::Ok { .. }) => Ok(()),
                    Some(other) => Err(ApiError::Conflict { group_resource: "pods".into(), name: b.name.clone(), message: format!("binding failed: {other:?}") }),
                    None => Err(ApiError::Internal("missing binding result".into())),
                },
            })
            .collect()
    }
}
