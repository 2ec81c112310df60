//! `apimachinery`: the Kubernetes API machinery of rkube as pure functions on JSON objects.
//!
//! - [`registry`]: the served resources and their typed schemas (k8s-openapi, Kubernetes 1.33).
//! - [`status`]: API errors rendered as Kubernetes `Status` objects.
//! - [`selector`]: label and field selectors.
//! - [`fields`]: unknown-field detection for `fieldValidation`.
//! - [`patch`]: JSON patch, JSON merge patch, strategic merge patch with the built-in merge keys.
//! - [`table`]: `meta.k8s.io/v1` Table output (the columns `kubectl get` prints).
//! - [`defaults`] and [`validation`]: Kubernetes defaulting and validation per kind.
//! - [`openapi`]: the `/openapi/v2` and `/openapi/v3` documents.
//! - [`protobuf`]: request bodies in Kubernetes' protobuf encoding, decoded to JSON.
//!
//! Nothing here does I/O; the API server (`src/api`) wires it to HTTP and the replicated store.

pub mod defaults;
pub mod fields;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod registry;
pub mod selector;
pub mod status;
pub mod table;
pub mod validation;
