//! `chaos`: runs real rkube clusters, breaks them on purpose, records what clients saw, and
//! checks it. The process harness and the classifying store client are shared with the
//! end-to-end tests and the benchmarks.

pub mod agent;
pub mod client;
pub mod harness;
pub mod kube;
pub mod simnode;

pub use client::{ClientError, StoreClient};
pub use harness::{Cluster, ClusterOptions, rkube_bin};
pub use kube::KubeClient;
pub use simnode::{SimNode, SimNodes};
