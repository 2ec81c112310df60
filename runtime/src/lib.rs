//! `runtime`: everything that runs containers on a node — OCI images (registry pulls, a
//! content-addressed blob store, unpacked layers), overlayfs root filesystems, containers through
//! youki's `libcontainer` (each supervised by its own `rkube shim` process so they outlive the
//! agent), exec sessions, CRI-format container logs, cgroup usage, pod sandboxes (pinned
//! network/IPC/UTS namespaces) and CNI networking.
//!
//! It knows nothing about the API server: its inputs are plain runtime-level specs that the
//! agent derives from PodSpecs. Only this crate touches libcontainer.

pub mod cni;
pub mod container;
pub mod error;
pub mod exec;
pub mod image;
pub mod logs;
pub mod rootfs;
pub mod routes;
pub mod sandbox;
pub mod shim;
pub mod spec;
pub mod stats;

pub use error::{Error, Result};
