//! `controllers`: the scheduler and the controllers of rkube.
//!
//! They run on the Raft leader only (the masters start and stop them with leadership), read
//! from informer caches fed by watches, and write through the same API verbs as any client,
//! conditionally on the revision they read. Everything is written against the [`client::Client`]
//! trait: the masters implement it in-process, tests use [`testing::FakeCluster`].

pub mod client;
pub mod events;
pub mod informer;
pub mod queue;
pub mod testing;
pub mod util;

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod garbagecollector;
pub mod job;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod replicaset;
pub mod scheduler;
pub mod serviceaccount;
pub mod statefulset;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

pub use client::Client;
pub use informer::Informers;

/// Timing knobs of the controllers.
#[derive(Clone, Debug)]
pub struct Config {
    /// A node whose lease was not renewed for this long is NotReady/Unknown (Kubernetes: 40 s).
    pub node_monitor_grace_period: Duration,
    /// How often node health is checked.
    pub node_monitor_period: Duration,
    /// tolerationSeconds given to pods that do not set one for the not-ready/unreachable taints
    /// (Kubernetes: 300 s).
    pub default_toleration_seconds: i64,
    /// How many scheduling decisions may be bound in one replicated write.
    pub bind_batch: usize,
    /// Pod network of the cluster: each Node gets a subnet of it as its podCIDR (None = no
    /// node IPAM; agents then need their podCIDR set by hand).
    pub cluster_cidr: Option<String>,
    /// Prefix length of each node's podCIDR.
    pub node_cidr_mask_size: u8,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_monitor_grace_period: Duration::from_secs(40),
            node_monitor_period: Duration::from_secs(5),
            default_toleration_seconds: 300,
            bind_batch: 512,
            cluster_cidr: None,
            node_cidr_mask_size: 24,
        }
    }
}

/// What every controller gets.
pub struct Ctx {
    pub client: Arc<dyn Client>,
    pub informers: Informers,
    pub config: Config,
}

impl Ctx {
    pub fn new(client: Arc<dyn Client>, config: Config) -> Arc<Ctx> {
        Arc::new(Ctx { informers: Informers::new(client.clone()), client, config })
    }

    pub fn recorder(&self, component: &str) -> events::Recorder {
        events::Recorder::new(self.client.clone(), component)
    }
}

/// Starts the scheduler and every controller. Abort the handles (and call
/// `ctx.informers.stop_all()`) when leadership is lost.
pub fn start_all(ctx: Arc<Ctx>) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(scheduler::run(ctx.clone())),
        tokio::spawn(replicaset::run(ctx.clone())),
        tokio::spawn(deployment::run(ctx.clone())),
        tokio::spawn(endpoints::run(ctx.clone())),
        tokio::spawn(garbagecollector::run(ctx.clone())),
        tokio::spawn(nodelifecycle::run(ctx.clone())),
        tokio::spawn(daemonset::run(ctx.clone())),
        tokio::spawn(statefulset::run(ctx.clone())),
        tokio::spawn(job::run(ctx.clone())),
        tokio::spawn(cronjob::run(ctx.clone())),
        tokio::spawn(nodeipam::run(ctx.clone())),
        tokio::spawn(serviceaccount::run(ctx)),
    ]
}
