//! Simulated nodes: Node objects with capacity, Leases renewed like a kubelet's, and (optionally)
//! a stand-in kubelet that marks pods bound to them Running and Ready and finishes their graceful
//! deletion. No containers run. Used by the scheduler/controller tests and benchmarks.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::kube::KubeClient;

#[derive(Clone, Debug)]
pub struct SimNode {
    pub name: String,
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
    pub labels: Vec<(String, String)>,
    /// (key, value, effect)
    pub taints: Vec<(String, String, String)>,
}

impl SimNode {
    pub fn new(name: impl Into<String>) -> SimNode {
        SimNode { name: name.into(), cpu: "4".into(), memory: "8Gi".into(), pods: 110, labels: Vec::new(), taints: Vec::new() }
    }

    pub fn label(mut self, k: &str, v: &str) -> SimNode {
        self.labels.push((k.into(), v.into()));
        self
    }

    pub fn taint(mut self, k: &str, v: &str, effect: &str) -> SimNode {
        self.taints.push((k.into(), v.into(), effect.into()));
        self
    }

    pub fn capacity(mut self, cpu: &str, memory: &str, pods: u32) -> SimNode {
        self.cpu = cpu.into();
        self.memory = memory.into();
        self.pods = pods;
        self
    }
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn now_micro() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

fn node_object(n: &SimNode, index: usize) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert("kubernetes.io/hostname".into(), json!(n.name));
    labels.insert("kubernetes.io/os".into(), json!("linux"));
    labels.insert("kubernetes.io/arch".into(), json!("amd64"));
    for (k, v) in &n.labels {
        labels.insert(k.clone(), json!(v));
    }
    let taints: Vec<Value> = n.taints.iter().map(|(k, v, e)| json!({"key": k, "value": v, "effect": e})).collect();
    let resources = json!({"cpu": n.cpu, "memory": n.memory, "pods": n.pods.to_string(), "ephemeral-storage": "100Gi"});
    let ts = now();
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": n.name, "labels": labels},
        "spec": {"taints": taints, "podCIDR": format!("100.96.{}.0/24", index % 250)},
        "status": {
            "capacity": resources, "allocatable": resources,
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "simulated kubelet is posting ready status", "lastHeartbeatTime": ts, "lastTransitionTime": ts},
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "lastHeartbeatTime": ts, "lastTransitionTime": ts},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "lastHeartbeatTime": ts, "lastTransitionTime": ts},
                {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "lastHeartbeatTime": ts, "lastTransitionTime": ts},
            ],
            "addresses": [{"type": "InternalIP", "address": format!("100.65.{}.{}", index / 250, index % 250 + 1)}, {"type": "Hostname", "address": n.name}],
            "nodeInfo": {"kubeletVersion": "v1.33.0-sim", "kubeProxyVersion": "", "osImage": "simulated", "kernelVersion": "sim", "containerRuntimeVersion": "sim://0", "operatingSystem": "linux", "architecture": "amd64", "machineID": "", "systemUUID": "", "bootID": ""},
        },
    })
}

pub struct SimNodes {
    stopped: Arc<Mutex<HashSet<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SimNodes {
    /// Registers the nodes and starts renewing their leases every `lease_interval`; with
    /// `run_pods`, also plays kubelet for pods bound to them.
    pub async fn start(client: KubeClient, nodes: Vec<SimNode>, lease_interval: Duration, run_pods: bool) -> Result<SimNodes> {
        let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
        // Register in parallel: thousands of nodes for the benchmarks.
        let mut tasks = Vec::new();
        for chunk in nodes.chunks(nodes.len().div_ceil(32).max(1)).map(|c| c.to_vec()) {
            let client = client.clone();
            let base = names.iter().position(|n| *n == chunk[0].name).unwrap_or(0);
            tasks.push(tokio::spawn(async move {
                for (i, n) in chunk.iter().enumerate() {
                    let r = client.post("/api/v1/nodes", &node_object(n, base + i)).await?;
                    if !r.ok() && r.status != 409 {
                        bail!("registering node {}: {} {}", n.name, r.status, r.body);
                    }
                }
                Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        let stopped: Arc<Mutex<HashSet<String>>> = Arc::default();
        let mut handles = Vec::new();
        // Lease renewal, spread over the interval.
        for chunk in names.chunks(names.len().div_ceil(16).max(1)).map(|c| c.to_vec()) {
            let (client, stopped) = (client.clone(), stopped.clone());
            handles.push(tokio::spawn(async move {
                loop {
                    for name in &chunk {
                        if stopped.lock().expect("lock").contains(name) {
                            continue;
                        }
                        let _ = renew_lease(&client, name).await;
                    }
                    tokio::time::sleep(lease_interval).await;
                }
            }));
        }
        if run_pods {
            let (client, stopped) = (client.clone(), stopped.clone());
            let mine: HashSet<String> = names.iter().cloned().collect();
            handles.push(tokio::spawn(async move {
                loop {
                    if let Err(e) = play_kubelet(&client, &mine, &stopped).await {
                        tracing::debug!(error = %e, "simulated kubelet restarting its watch");
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }));
        }
        Ok(SimNodes { stopped, tasks: handles })
    }

    /// The node stops renewing its lease and stops tending its pods (as if it died).
    pub fn stop_node(&self, name: &str) {
        self.stopped.lock().expect("lock").insert(name.to_string());
    }
}

impl Drop for SimNodes {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn renew_lease(client: &KubeClient, node: &str) -> Result<()> {
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}");
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": node, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": now_micro()},
    });
    let r = client.patch(&path, &json!({"spec": {"renewTime": now_micro(), "holderIdentity": node}})).await?;
    if r.status == 404 {
        client.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", &lease).await?;
    }
    Ok(())
}

/// Marks pods bound to live simulated nodes Running/Ready; completes their graceful deletion.
async fn play_kubelet(client: &KubeClient, mine: &HashSet<String>, stopped: &Mutex<HashSet<String>>) -> Result<()> {
    let list = client.get("/api/v1/pods?fieldSelector=spec.nodeName!%3D").await?;
    let rv = list.body.pointer("/metadata/resourceVersion").and_then(|r| r.as_str()).unwrap_or("0").to_string();
    let mut ip = 1u32;
    for p in list.body["items"].as_array().cloned().unwrap_or_default() {
        tend(client, mine, stopped, &p, &mut ip).await;
    }
    let mut rx = client.watch("/api/v1/pods?fieldSelector=spec.nodeName!%3D", &rv).await?;
    while let Some(ev) = rx.recv().await {
        match ev["type"].as_str() {
            Some("ADDED") | Some("MODIFIED") => tend(client, mine, stopped, &ev["object"], &mut ip).await,
            Some("ERROR") => bail!("watch error: {}", ev["object"]),
            _ => {}
        }
    }
    Ok(())
}

async fn tend(client: &KubeClient, mine: &HashSet<String>, stopped: &Mutex<HashSet<String>>, pod: &Value, ip: &mut u32) {
    let node = pod.pointer("/spec/nodeName").and_then(|n| n.as_str()).unwrap_or("");
    if !mine.contains(node) || stopped.lock().expect("lock").contains(node) {
        return;
    }
    let ns = pod.pointer("/metadata/namespace").and_then(|n| n.as_str()).unwrap_or("default");
    let name = pod.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or("");
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        let _ = client.send_delete_now(&path).await;
        return;
    }
    let phase = pod.pointer("/status/phase").and_then(|p| p.as_str()).unwrap_or("Pending");
    if phase != "Pending" {
        return;
    }
    *ip = ip.wrapping_add(1);
    let addr = format!("100.96.{}.{}", (*ip / 250) % 250, *ip % 250 + 1);
    let ts = now();
    let statuses: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(|c| c.as_array())
        .map(|cs| {
            cs.iter()
                .map(|c| json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": true, "started": true, "restartCount": 0, "state": {"running": {"startedAt": ts}}}))
                .collect()
        })
        .unwrap_or_default();
    let status = json!({"status": {
        "phase": "Running", "podIP": addr, "podIPs": [{"ip": addr}], "hostIP": "100.65.0.1", "startTime": ts,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts},
            {"type": "Initialized", "status": "True", "lastTransitionTime": ts},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": ts},
            {"type": "Ready", "status": "True", "lastTransitionTime": ts},
        ],
        "containerStatuses": statuses,
    }});
    let _ = client.patch(&format!("{path}/status"), &status).await;
}

impl KubeClient {
    /// DELETE with a zero grace period: what a kubelet does once a pod's containers are gone.
    pub async fn send_delete_now(&self, path: &str) -> Result<u16> {
        let r = self.http.delete(format!("{}{path}?gracePeriodSeconds=0", self.base)).bearer_auth(&self.token).send().await?;
        let s = r.status().as_u16();
        let _ = r.bytes().await;
        Ok(s)
    }
}
