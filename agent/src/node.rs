//! The Node object: registration (capacity, allocatable, addresses, nodeInfo), its conditions
//! (Ready, MemoryPressure, DiskPressure, PIDPressure) kept current, and the Lease in
//! `kube-node-lease` renewed every `lease_interval` (what the node lifecycle controller watches).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::Agent;
use crate::error::Result;
use crate::kube::now_rfc3339;

pub const LEASE_NAMESPACE: &str = "kube-node-lease";
pub const KUBELET_VERSION: &str = "v1.33.0-rkube";

/// What the host has, read once at start.
#[derive(Clone, Debug)]
pub struct HostInfo {
    pub cpus: u64,
    pub memory_bytes: u64,
    pub storage_bytes: u64,
    pub kernel: String,
    pub os_image: String,
    pub machine_id: String,
    pub boot_id: String,
}

impl HostInfo {
    pub fn read(data_dir: &std::path::Path) -> HostInfo {
        let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_default();
        let uname = nix::sys::utsname::uname().ok();
        let os_image = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string()))
            .unwrap_or_else(|| "Linux".into());
        let storage_bytes = nix::sys::statvfs::statvfs(data_dir).map(|s| s.blocks() as u64 * s.fragment_size() as u64).unwrap_or(0);
        HostInfo {
            cpus: std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1),
            memory_bytes: meminfo("MemTotal").unwrap_or(0),
            storage_bytes,
            kernel: uname.map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default(),
            os_image,
            machine_id: read("/etc/machine-id"),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
        }
    }
}

/// A /proc/meminfo field in bytes.
pub fn meminfo(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// Pressure conditions as kubelet's eviction manager would report them (thresholds are
/// kubelet's defaults: memory.available < 100Mi, nodefs.available < 10%, pid use > 90%).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pressure {
    pub memory: bool,
    pub disk: bool,
    pub pid: bool,
}

pub fn read_pressure(data_dir: &std::path::Path) -> Pressure {
    let memory = meminfo("MemAvailable").is_some_and(|a| a < 100 << 20);
    let disk = nix::sys::statvfs::statvfs(data_dir).is_ok_and(|s| s.blocks() > 0 && s.blocks_available() * 10 < s.blocks());
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(u64::MAX);
    let procs = std::fs::read_dir("/proc").map(|d| d.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit())).count() as u64).unwrap_or(0);
    Pressure { memory, disk, pid: procs * 10 > pid_max * 9 }
}

/// Why the node is not ready, if it is not.
pub fn not_ready_reason(network_ready: bool) -> Option<&'static str> {
    if !network_ready { Some("container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:waiting for the node's podCIDR") } else { None }
}

fn condition(ty: &str, status: bool, reason: &str, message: &str, previous: &[Value], now: &str) -> Value {
    let st = if status { "True" } else { "False" };
    // Keep lastTransitionTime while the status does not change.
    let since = previous
        .iter()
        .find(|c| c["type"] == ty && c["status"] == st)
        .and_then(|c| c["lastTransitionTime"].as_str())
        .unwrap_or(now)
        .to_string();
    json!({"type": ty, "status": st, "reason": reason, "message": message, "lastHeartbeatTime": now, "lastTransitionTime": since})
}

/// The node's conditions (pure: what the status loop and the tests compute).
pub fn conditions(p: Pressure, network_ready: bool, previous: &[Value], now: &str) -> Vec<Value> {
    let (ready, ready_reason, ready_msg) = match not_ready_reason(network_ready) {
        None => (true, "KubeletReady", "kubelet is posting ready status".to_string()),
        Some(why) => (false, "KubeletNotReady", why.to_string()),
    };
    vec![
        condition("MemoryPressure", p.memory, if p.memory { "KubeletHasInsufficientMemory" } else { "KubeletHasSufficientMemory" }, if p.memory { "kubelet has insufficient memory available" } else { "kubelet has sufficient memory available" }, previous, now),
        condition("DiskPressure", p.disk, if p.disk { "KubeletHasDiskPressure" } else { "KubeletHasNoDiskPressure" }, if p.disk { "kubelet has disk pressure" } else { "kubelet has no disk pressure" }, previous, now),
        condition("PIDPressure", p.pid, if p.pid { "KubeletHasInsufficientPID" } else { "KubeletHasSufficientPID" }, if p.pid { "kubelet has insufficient PID available" } else { "kubelet has sufficient PID available" }, previous, now),
        condition("Ready", ready, ready_reason, &ready_msg, previous, now),
    ]
}

impl Agent {
    fn resources(&self) -> Value {
        let h = &self.host;
        json!({
            "cpu": h.cpus.to_string(),
            "memory": format!("{}Ki", h.memory_bytes / 1024),
            "pods": self.config.max_pods.to_string(),
            "ephemeral-storage": format!("{}Ki", h.storage_bytes / 1024),
            "hugepages-2Mi": "0",
        })
    }

    fn node_status(&self, previous: &[Value]) -> Value {
        let now = now_rfc3339();
        let pressure = read_pressure(&self.config.data_dir);
        let net_ready = self.network_ready.borrow().is_some();
        let images: Vec<Value> = self
            .images
            .list()
            .unwrap_or_default()
            .iter()
            .take(50)
            .map(|i| json!({"names": [format!("{}@{}", i.reference.split(['@']).next().unwrap_or("").rsplit_once(':').map(|(r, _)| r).unwrap_or(&i.reference), i.digest), i.reference], "sizeBytes": i.size}))
            .collect();
        json!({
            "capacity": self.resources(),
            "allocatable": self.resources(),
            "conditions": conditions(pressure, net_ready, previous, &now),
            "addresses": [
                {"type": "InternalIP", "address": self.config.node_ip.to_string()},
                {"type": "Hostname", "address": self.config.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.config.listen.port()}},
            "nodeInfo": {
                "machineID": self.host.machine_id, "systemUUID": self.host.machine_id, "bootID": self.host.boot_id,
                "kernelVersion": self.host.kernel, "osImage": self.host.os_image,
                "containerRuntimeVersion": concat!("rkube://", env!("CARGO_PKG_VERSION")),
                "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
                "operatingSystem": "linux", "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
            },
            "images": images,
        })
    }

    fn node_labels(&self) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        labels.insert("kubernetes.io/hostname".to_string(), self.config.node_name.clone());
        labels.insert("kubernetes.io/os".into(), "linux".into());
        labels.insert("kubernetes.io/arch".into(), std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"));
        labels.insert("beta.kubernetes.io/os".into(), "linux".into());
        labels.insert("beta.kubernetes.io/arch".into(), std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"));
        for (k, v) in &self.config.node_labels {
            labels.insert(k.clone(), v.clone());
        }
        labels
    }

    fn pod_network_annotation(&self) -> String {
        self.config.pod_network_ip.unwrap_or(self.config.node_ip).to_string()
    }

    /// Creates the Node, or takes over an existing one of the same name (a restarted agent).
    pub async fn register(&self) -> Result<Value> {
        let path = format!("/api/v1/nodes/{}", self.config.node_name);
        let body = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.config.node_name, "labels": self.node_labels(), "annotations": {POD_NETWORK_IP_ANNOTATION: self.pod_network_annotation()}},
            "spec": {},
        });
        let node = match self.kube.post("/api/v1/nodes", &body).await {
            Ok(n) => n,
            Err(e) if e.code() == 409 => {
                self.kube.merge_patch(&path, &json!({"metadata": {"labels": self.node_labels(), "annotations": {POD_NETWORK_IP_ANNOTATION: self.pod_network_annotation()}}})).await?
            }
            Err(e) => return Err(e),
        };
        let previous = node.pointer("/status/conditions").and_then(|c| c.as_array()).cloned().unwrap_or_default();
        let node = self.kube.merge_patch(&format!("{path}/status"), &json!({"status": self.node_status(&previous)})).await?;
        tracing::info!(node = %self.config.node_name, ip = %self.config.node_ip, "node registered");
        Ok(node)
    }

    /// Renews the lease every `lease_interval`.
    pub async fn lease_loop(self: Arc<Self>) {
        let path = format!("/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/{}", self.config.node_name);
        let mut tick = tokio::time::interval(self.config.lease_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string();
            let renew = json!({"spec": {"holderIdentity": self.config.node_name, "leaseDurationSeconds": 40, "renewTime": now}});
            match self.kube.merge_patch(&path, &renew).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {
                    let lease = json!({
                        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": self.config.node_name, "namespace": LEASE_NAMESPACE,
                            "ownerReferences": self.node_uid.get().map(|uid| vec![json!({"apiVersion": "v1", "kind": "Node", "name": self.config.node_name, "uid": uid})]).unwrap_or_default()},
                        "spec": renew["spec"],
                    });
                    if let Err(e) = self.kube.post(&format!("/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"), &lease).await {
                        tracing::warn!(error = %e, "could not create the node lease");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not renew the node lease"),
            }
        }
    }

    /// Keeps the Node's status current: conditions every `status_interval` when they change,
    /// and at least once a minute (kubelet's nodeStatusReportFrequency is 5 minutes; ours is
    /// shorter because it costs one small write).
    pub async fn status_loop(self: Arc<Self>, mut previous: Vec<Value>) {
        let path = format!("/api/v1/nodes/{}/status", self.config.node_name);
        let mut last_sent = Instant::now();
        let mut last_key = String::new();
        let mut net = self.network_ready.clone();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.config.status_interval) => {}
                _ = net.changed() => {}
            }
            let status = self.node_status(&previous);
            // Compare without heartbeat times.
            let key = status["conditions"].as_array().map(|cs| cs.iter().map(|c| format!("{}={}", c["type"], c["status"])).collect::<Vec<_>>().join(",")).unwrap_or_default()
                + &status["images"].to_string();
            if key == last_key && last_sent.elapsed() < Duration::from_secs(60) {
                continue;
            }
            match self.kube.merge_patch(&path, &json!({"status": status})).await {
                Ok(node) => {
                    previous = node.pointer("/status/conditions").and_then(|c| c.as_array()).cloned().unwrap_or_default();
                    last_key = key;
                    last_sent = Instant::now();
                }
                Err(e) => tracing::warn!(error = %e, "could not update the node status"),
            }
        }
    }

    /// Follows the Node object: its podCIDR (set by the control plane) makes the pod network
    /// ready; other nodes' podCIDRs become host-gw routes.
    pub async fn node_watch_loop(self: Arc<Self>) {
        let mut rx = self.kube.reflect("/api/v1/nodes");
        let mut nodes: BTreeMap<String, Value> = BTreeMap::new();
        while let Some(ev) = rx.recv().await {
            match ev {
                crate::kube::Event::Resync(items) => {
                    nodes = items.into_iter().map(|n| (n.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or("").to_string(), n)).collect();
                }
                crate::kube::Event::Added(n) | crate::kube::Event::Modified(n) => {
                    nodes.insert(n.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or("").to_string(), n);
                }
                crate::kube::Event::Deleted(n) => {
                    nodes.remove(n.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or(""));
                }
            }
            if let Some(me) = nodes.get(&self.config.node_name) {
                if let Some(uid) = me.pointer("/metadata/uid").and_then(|v| v.as_str()) {
                    let _ = self.node_uid.set(uid.to_string());
                }
                if let Some(cidr) = me.pointer("/spec/podCIDR").and_then(|v| v.as_str()).filter(|c| !c.is_empty()) {
                    self.pod_cidr_assigned(cidr).await;
                }
            }
            self.sync_routes(&nodes).await;
        }
    }
}

/// Annotation with a node's address on the pod network (host-gw routes of other nodes use it).
pub const POD_NETWORK_IP_ANNOTATION: &str = "rkube.io/pod-network-ip";

/// The host-gw routes this node needs: every other node's podCIDR via its pod-network address.
pub fn desired_routes(nodes: &BTreeMap<String, Value>, me: &str) -> Vec<runtime::routes::PodRoute> {
    let mut out: Vec<runtime::routes::PodRoute> = nodes
        .iter()
        .filter(|(name, _)| name.as_str() != me)
        .filter_map(|(_, n)| {
            let cidr = n.pointer("/spec/podCIDR").and_then(|v| v.as_str()).filter(|c| !c.is_empty())?;
            let via = n
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(POD_NETWORK_IP_ANNOTATION))
                .and_then(|v| v.as_str())
                .or_else(|| n.pointer("/status/addresses").and_then(|a| a.as_array()).and_then(|a| a.iter().find(|x| x["type"] == "InternalIP")).and_then(|x| x["address"].as_str()))?;
            Some(runtime::routes::PodRoute { cidr: cidr.to_string(), via: via.to_string() })
        })
        .collect();
    out.sort();
    out
}

pub fn watch_channel() -> (watch::Sender<Option<String>>, watch::Receiver<Option<String>>) {
    watch::channel(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_keep_transition_times() {
        let first = conditions(Pressure::default(), false, &[], "t1");
        assert_eq!(first[3]["status"], "False");
        let second = conditions(Pressure::default(), false, &first, "t2");
        assert_eq!(second[3]["lastTransitionTime"], "t1");
        assert_eq!(second[3]["lastHeartbeatTime"], "t2");
        let ready = conditions(Pressure::default(), true, &second, "t3");
        assert_eq!(ready[3]["status"], "True");
        assert_eq!(ready[3]["reason"], "KubeletReady");
        assert_eq!(ready[3]["lastTransitionTime"], "t3");
        let mem = conditions(Pressure { memory: true, ..Default::default() }, true, &ready, "t4");
        assert_eq!(mem[0]["status"], "True");
        assert_eq!(mem[0]["reason"], "KubeletHasInsufficientMemory");
    }

    #[test]
    fn routes_to_other_nodes() {
        let mut nodes = BTreeMap::new();
        nodes.insert("a".to_string(), json!({"metadata": {"name": "a", "annotations": {POD_NETWORK_IP_ANNOTATION: "100.65.0.1"}}, "spec": {"podCIDR": "100.80.0.0/24"}}));
        nodes.insert("b".to_string(), json!({"metadata": {"name": "b"}, "spec": {"podCIDR": "100.80.1.0/24"}, "status": {"addresses": [{"type": "InternalIP", "address": "100.65.0.2"}]}}));
        nodes.insert("c".to_string(), json!({"metadata": {"name": "c"}, "spec": {}}));
        let r = desired_routes(&nodes, "a");
        assert_eq!(r, vec![runtime::routes::PodRoute { cidr: "100.80.1.0/24".into(), via: "100.65.0.2".into() }]);
        let r = desired_routes(&nodes, "b");
        assert_eq!(r, vec![runtime::routes::PodRoute { cidr: "100.80.0.0/24".into(), via: "100.65.0.1".into() }]);
    }
}
