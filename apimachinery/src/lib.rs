//! `apimachinery`: the Kubernetes API machinery of rkube as pure functions on JSON objects.
//!
//! - [`registry`]: the served resources and their typed schemas (k8s-openapi, Kubernetes 1.33).
//! - [`patch`]: JSON patch, JSON merge patch, strategic merge patch with the built-in merge keys.
//! - [`table`]: `meta.k8s.io/v1` Table output (the columns `kubectl get` prints).
//! - [`defaults`] and [`validation`]: Kubernetes defaulting and validation per kind.
//!
//! Nothing here does I/O; the API server (`src/api`) wires it to HTTP and the replicated store.

pub mod defaults;
pub mod patch;
pub mod registry;
pub mod table;
pub mod validation;
