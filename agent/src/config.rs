//! What an agent needs to know to run: where the API is and how to authenticate, who it is,
//! where its state lives, and how pods get their network.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// `https://host:port` of any master's Kubernetes API.
    pub server: String,
    pub token: String,
    /// PEM of the cluster CA that signed the API's serving certificate.
    pub ca_pem: Vec<u8>,
    pub node_name: String,
    /// The node's InternalIP: where the API server reaches the agent.
    pub node_ip: IpAddr,
    /// Address the agent's own HTTPS server (logs, exec, stats) listens on.
    pub listen: std::net::SocketAddr,
    /// State: pods/, runtime/ (containers), images/, cni/.
    pub data_dir: PathBuf,
    /// The `rkube` executable and the arguments that make it a shim (`shim`).
    pub shim_program: PathBuf,
    pub shim_args: Vec<std::ffi::OsString>,
    /// The node's network namespace for pod networking (bridge, CNI plugins, routes, probes);
    /// None = the agent's own. Tests put each node's pod network in a namespace of its own.
    pub pod_netns: Option<PathBuf>,
    /// This node's address on the network that carries pod traffic between nodes (host-gw
    /// routes point at it); defaults to node_ip.
    pub pod_network_ip: Option<IpAddr>,
    pub bridge: String,
    pub cni_plugin_dirs: Vec<PathBuf>,
    pub masquerade: bool,
    /// registries.yaml (mirrors, registry credentials); missing = none.
    pub registries_config: Option<PathBuf>,
    pub lease_interval: Duration,
    pub status_interval: Duration,
    /// Extra labels for the Node (`key=value`).
    pub node_labels: Vec<(String, String)>,
    /// Resources reserved for the system: subtracted from capacity to make allocatable.
    pub max_pods: u32,
    /// Container log rotation.
    pub log_max_bytes: u64,
    pub log_max_files: u32,
    /// Remove images no container uses when the image disk is fuller than this (percent).
    pub image_gc_high_percent: u8,
}

impl AgentConfig {
    pub fn pods_dir(&self) -> PathBuf {
        self.data_dir.join("pods")
    }
    pub fn runtime_dir(&self) -> PathBuf {
        self.data_dir.join("runtime")
    }
    pub fn images_dir(&self) -> PathBuf {
        self.data_dir.join("images")
    }
    pub fn cni_dir(&self) -> PathBuf {
        self.data_dir.join("cni")
    }
}
