//! `metrics.k8s.io/v1beta1` (what metrics-server serves, and `kubectl top` reads): NodeMetrics
//! and PodMetrics built on request from each node agent's `/stats/summary` (cgroup usage the
//! agent samples every 10 s). No storage: like metrics-server, the figures are not objects in
//! the store and have no resourceVersion.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use apimachinery::status::ApiError;
use serde_json::{Value, json};

use super::Api;
use super::request::{RequestInfo, Verb};

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";

pub fn group() -> Value {
    let gv = json!({"groupVersion": format!("{GROUP}/{VERSION}"), "version": VERSION});
    json!({"name": GROUP, "versions": [gv.clone()], "preferredVersion": gv})
}

pub fn resource_list() -> Value {
    json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{GROUP}/{VERSION}"),
        "resources": [
            {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]},
            {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]},
        ],
    })
}

fn cpu(v: &Value) -> String {
    format!("{}n", v["usageNanoCores"].as_u64().unwrap_or(0))
}

fn memory(v: &Value) -> String {
    format!("{}Ki", v["workingSetBytes"].as_u64().unwrap_or(0) / 1024)
}

async fn list(api: &Arc<Api>, plural: &str, ns: Option<&str>, q: &HashMap<String, String>) -> Result<Vec<Value>, ApiError> {
    let info = apimachinery::registry::find("", "v1", plural).expect("core resources are registered");
    let ri = RequestInfo { info, namespace: ns.map(String::from), name: None, subresource: None, verb: Verb::List };
    Ok(api.list_objects(&ri, q).await?.0)
}

/// Every node's summary (nodes whose agent does not answer are left out, like metrics-server).
async fn summaries(api: &Arc<Api>, only: Option<&str>) -> Result<Vec<(Value, Value)>, ApiError> {
    let nodes = list(api, "nodes", None, &HashMap::new()).await?;
    let token = super::proxy::cluster_token(api)?;
    let mut fetches = Vec::new();
    for n in nodes {
        let name = n.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let Some(addr) = super::proxy::agent_addr(&n) else { continue };
        let token = token.clone();
        fetches.push(async move {
            let r = super::proxy::agent_client().get(format!("https://{addr}/stats/summary")).bearer_auth(&token).timeout(Duration::from_secs(3)).send().await;
            match r {
                Ok(resp) if resp.status().is_success() => resp.json::<Value>().await.ok().map(|s| (n, s)),
                _ => {
                    tracing::debug!(node = %name, "no usage summary from the node's agent");
                    None
                }
            }
        });
    }
    Ok(futures::future::join_all(fetches).await.into_iter().flatten().collect())
}

fn node_metrics(node: &Value, summary: &Value) -> Value {
    let n = &summary["node"];
    json!({
        "kind": "NodeMetrics", "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": {"name": node.pointer("/metadata/name"), "labels": node.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                     "creationTimestamp": n["cpu"]["time"]},
        "timestamp": n["cpu"]["time"], "window": "10s",
        "usage": {"cpu": cpu(&n["cpu"]), "memory": memory(&n["memory"])},
    })
}

fn pod_metrics(p: &Value) -> Value {
    let containers: Vec<Value> = p["containers"].as_array().into_iter().flatten().map(|c| json!({"name": c["name"], "usage": {"cpu": cpu(&c["cpu"]), "memory": memory(&c["memory"])}})).collect();
    json!({
        "kind": "PodMetrics", "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": {"name": p["podRef"]["name"], "namespace": p["podRef"]["namespace"], "creationTimestamp": p["cpu"]["time"]},
        "timestamp": p["cpu"]["time"], "window": "10s",
        "containers": containers,
    })
}

/// Serves `/apis/metrics.k8s.io/v1beta1/...` (the segments after the version).
pub async fn serve(api: &Arc<Api>, rest: &[&str], q: &HashMap<String, String>) -> Result<Value, ApiError> {
    let not_found = |what: &str, name: &str| ApiError::NotFound { group_resource: format!("{what}.{GROUP}"), name: name.to_string() };
    match rest {
        ["nodes"] => {
            let items: Vec<Value> = summaries(api, None).await?.iter().map(|(n, s)| node_metrics(n, s)).collect();
            Ok(json!({"kind": "NodeMetricsList", "apiVersion": format!("{GROUP}/{VERSION}"), "metadata": {}, "items": items}))
        }
        ["nodes", name] => summaries(api, Some(name)).await?.first().map(|(n, s)| node_metrics(n, s)).ok_or_else(|| not_found("nodes", name)),
        ["pods"] | ["namespaces", _, "pods"] | ["namespaces", _, "pods", _] => {
            let ns = match rest {
                ["namespaces", ns, ..] => Some(*ns),
                _ => None,
            };
            let name = rest.get(3).copied();
            // Label and field selectors pick the pods through the API's own list.
            let wanted: Option<HashSet<(String, String)>> = if q.contains_key("labelSelector") || q.contains_key("fieldSelector") {
                let pods = list(api, "pods", ns, q).await?;
                Some(
                    pods.iter()
                        .map(|p| (p.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string(), p.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string()))
                        .collect(),
                )
            } else {
                None
            };
            let mut items = Vec::new();
            for (_, s) in summaries(api, None).await? {
                for p in s["pods"].as_array().into_iter().flatten() {
                    let (pns, pname) = (p["podRef"]["namespace"].as_str().unwrap_or(""), p["podRef"]["name"].as_str().unwrap_or(""));
                    if ns.is_some_and(|n| n != pns) || name.is_some_and(|n| n != pname) {
                        continue;
                    }
                    if wanted.as_ref().is_some_and(|w| !w.contains(&(pns.to_string(), pname.to_string()))) {
                        continue;
                    }
                    items.push(pod_metrics(p));
                }
            }
            if let Some(n) = name {
                return items.into_iter().next().ok_or_else(|| not_found("pods", n));
            }
            Ok(json!({"kind": "PodMetricsList", "apiVersion": format!("{GROUP}/{VERSION}"), "metadata": {}, "items": items}))
        }
        _ => Err(ApiError::NotFoundPath(format!("the server could not find the requested resource (/apis/{GROUP}/{VERSION}/{})", rest.join("/")))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        let node = json!({"metadata": {"name": "n1", "labels": {"a": "b"}}});
        let summary = json!({"node": {"cpu": {"time": "t", "usageNanoCores": 250_000_000u64}, "memory": {"workingSetBytes": 10_485_760u64}}});
        let m = node_metrics(&node, &summary);
        assert_eq!(m["usage"]["cpu"], "250000000n");
        assert_eq!(m["usage"]["memory"], "10240Ki");
        assert_eq!(m["metadata"]["name"], "n1");
        let p = pod_metrics(&json!({"podRef": {"name": "p", "namespace": "ns"}, "cpu": {"time": "t"}, "containers": [{"name": "c", "cpu": {"usageNanoCores": 5}, "memory": {"workingSetBytes": 2048}}]}));
        assert_eq!(p["containers"][0]["usage"], json!({"cpu": "5n", "memory": "2Ki"}));
        assert_eq!(p["metadata"]["namespace"], "ns");
        assert_eq!(resource_list()["resources"][1]["kind"], "PodMetrics");
    }
}
