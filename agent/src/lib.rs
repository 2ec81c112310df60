//! `agent`: rkube's node agent — what kubelet is to Kubernetes. It registers its Node and
//! renews its Lease, follows the pods bound to it and runs them as real containers through the
//! `runtime` crate (sandbox namespaces, CNI networking, volumes, init and sidecar containers,
//! restarts with back-off, probes), reports their status, and serves logs, exec and resource
//! usage to the API server. On every start it reconciles what runs on the host against what
//! should run (invariant 8): containers of pods that still exist are adopted, everything else is
//! stopped and cleaned up.
//!
//! It is a client of the Kubernetes API like any other and knows nothing about Raft.

pub mod config;
pub mod error;
pub mod kube;
pub mod netns;
pub mod node;
pub mod pods;
pub mod server;
pub mod stats;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use runtime::cni::{Cni, CniConfig};
use runtime::container::{Runtime, ShimCommand};
use runtime::image::{ImageStore, RegistriesConfig};
use tokio::sync::{RwLock, watch};

pub use config::AgentConfig;
pub use error::{Error, Result};

use crate::kube::Kube;
use crate::node::HostInfo;

pub struct Agent {
    pub config: AgentConfig,
    pub kube: Kube,
    pub host: HostInfo,
    pub runtime: Arc<Runtime>,
    pub images: Arc<ImageStore>,
    /// The pod network, once the control plane has given this node a podCIDR.
    pub cni: RwLock<Option<Arc<Cni>>>,
    /// The podCIDR once the pod network is ready.
    pub network_ready: watch::Receiver<Option<String>>,
    network_ready_tx: watch::Sender<Option<String>>,
    pub node_uid: OnceLock<String>,
    pub pods: pods::Registry,
    pub usage: stats::Sampler,
}

impl Agent {
    pub fn new(config: AgentConfig) -> Result<Arc<Agent>> {
        for dir in [config.data_dir.clone(), config.pods_dir(), config.runtime_dir(), config.images_dir(), config.cni_dir()] {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let kube = Kube::new(&config.server, &config.token, &config.ca_pem)?;
        let registries = match &config.registries_config {
            Some(p) => RegistriesConfig::load(p)?,
            None => RegistriesConfig::default(),
        };
        let images = Arc::new(ImageStore::open(&config.images_dir(), registries)?);
        let runtime = Arc::new(Runtime::new(&config.runtime_dir(), ShimCommand { program: config.shim_program.clone(), args: config.shim_args.clone() })?);
        let (network_ready_tx, network_ready) = watch::channel(None);
        Ok(Arc::new(Agent {
            host: HostInfo::read(&config.data_dir),
            config,
            kube,
            runtime,
            images,
            cni: RwLock::new(None),
            network_ready,
            network_ready_tx,
            node_uid: OnceLock::new(),
            pods: pods::Registry::default(),
            usage: stats::Sampler::default(),
        }))
    }

    /// Runs the agent until the process ends.
    pub async fn run(self: Arc<Self>) -> Result<()> {
        // The server first: the API server may proxy to us as soon as the Node exists.
        let server = server::serve(self.clone()).await?;
        let node = loop {
            match self.register().await {
                Ok(n) => break n,
                Err(e) => {
                    tracing::warn!(error = %e, "could not register the node yet; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        if let Some(uid) = node.pointer("/metadata/uid").and_then(|v| v.as_str()) {
            let _ = self.node_uid.set(uid.to_string());
        }
        if let Some(cidr) = node.pointer("/spec/podCIDR").and_then(|v| v.as_str()).filter(|c| !c.is_empty()) {
            self.pod_cidr_assigned(cidr).await;
        }
        let previous = node.pointer("/status/conditions").and_then(|c| c.as_array()).cloned().unwrap_or_default();
        tokio::spawn(self.clone().lease_loop());
        tokio::spawn(self.clone().status_loop(previous));
        tokio::spawn(self.clone().node_watch_loop());
        tokio::spawn(self.clone().usage_loop());
        tokio::spawn(self.clone().image_gc_loop());
        tracing::info!(node = %self.config.node_name, listen = %self.config.listen, "agent ready");
        let pods = tokio::spawn(pods::run(self.clone()));
        let _ = tokio::join!(server, pods);
        Ok(())
    }

    /// The control plane gave this node its podCIDR: set up the pod network.
    pub async fn pod_cidr_assigned(&self, cidr: &str) {
        if self.network_ready.borrow().as_deref() == Some(cidr) {
            return;
        }
        let config = CniConfig {
            plugin_dirs: self.config.cni_plugin_dirs.clone(),
            network_name: "rkube".into(),
            bridge: self.config.bridge.clone(),
            pod_cidr: cidr.to_string(),
            mtu: None,
            ip_masq: self.config.masquerade,
            state_dir: self.config.cni_dir(),
        };
        match Cni::new(config) {
            Ok(cni) => {
                *self.cni.write().await = Some(Arc::new(cni));
                let _ = self.network_ready_tx.send(Some(cidr.to_string()));
                tracing::info!(pod_cidr = cidr, "pod network ready");
            }
            Err(e) => tracing::error!(error = %e, "the pod network cannot be set up"),
        }
    }

    async fn sync_routes(&self, nodes: &std::collections::BTreeMap<String, serde_json::Value>) {
        let desired = node::desired_routes(nodes, &self.config.node_name);
        let r = netns::run_in(self.config.pod_netns.as_deref(), move || async move { runtime::routes::sync(&desired).await }).await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not sync the routes to other nodes' pods"),
            Err(e) => tracing::warn!(error = %e, "could not sync the routes to other nodes' pods"),
        }
    }

    /// Removes images no container uses when the image store's disk is fuller than the
    /// configured threshold (kubelet's imageGCHighThresholdPercent), every 5 minutes.
    async fn image_gc_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(Duration::from_secs(300)).await;
            let full = nix::sys::statvfs::statvfs(&self.config.images_dir())
                .map(|s| if s.blocks() == 0 { 0 } else { 100 - (s.blocks_available() * 100 / s.blocks()) as u8 })
                .unwrap_or(0);
            if full < self.config.image_gc_high_percent {
                continue;
            }
            self.collect_images().await;
        }
    }

    /// Removes every image no container on the node uses.
    pub async fn collect_images(&self) {
        let mut in_use: std::collections::HashSet<String> = match self.runtime.list() {
            Ok(cs) => cs.iter().filter_map(|c| c.labels.get(pods::LABEL_IMAGE_ID).cloned()).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "image gc: cannot list containers");
                return;
            }
        };
        // Images of pods this node runs, also those whose containers are not started yet.
        for p in self.pods.snapshot() {
            in_use.extend(p.images.iter().cloned());
        }
        let images = self.images.clone();
        match tokio::task::spawn_blocking(move || images.gc(&in_use)).await {
            Ok(Ok(r)) => tracing::info!(images = r.images_removed.len(), bytes = r.bytes_freed, "image gc"),
            Ok(Err(e)) => tracing::warn!(error = %e, "image gc failed"),
            Err(_) => {}
        }
    }
}
