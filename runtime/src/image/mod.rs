//! OCI / Docker images: references, registry pulls (Docker Registry HTTP API v2 / OCI
//! distribution: manifest lists and OCI indexes resolved for linux/amd64, bearer-token and basic
//! auth, gzip / zstd / uncompressed layers), a content-addressed blob store shared by every pod,
//! layers unpacked once each (whiteouts turned into overlayfs whiteouts), registry mirrors
//! (k3s's registries.yaml format), `rkube images import` of OCI archives, and garbage collection
//! of images no container uses.
//!
//! On-disk layout under the store root:
//!   blobs/sha256/<hex>          manifests, configs and compressed layers, verified by digest
//!   layers/<diffid-hex>/        an unpacked layer (a lowerdir of overlayfs)
//!   images/<escaped reference>  JSON {reference, digest (manifest), id (config digest)}
//!   tmp/                        partial downloads and unpacks, `<kind>-<pid>-<n>` (those of
//!                               exited processes are removed on open)
//!
//! Every file and layer directory is written under tmp/ and renamed into place, so a crash
//! never leaves half of one and several processes (the agent, `rkube images import`) may share
//! a store; within a process, per-digest locks make concurrent pulls download and unpack each
//! blob once.
//!
//! The public types live here; the work is split by concern:
//!   reference  parsing and normalizing image references
//!   auth       docker config secrets, credential matching, registries.yaml
//!   manifest   manifests, indexes, configs (Docker schema2 and OCI, parsed leniently)
//!   registry   the HTTP client (auth challenges, mirrors, verified blob downloads)
//!   unpack     layer tar → directory, with whiteout conversion and path checks
//!   store      `ImageStore`: records, pulls, pull policies, per-digest locks
//!   import     OCI archives
//!   gc         garbage collection

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Result;

mod auth;
mod digest;
mod gc;
mod import;
mod manifest;
mod reference;
mod registry;
mod store;
mod unpack;

pub use store::ImageStore;

/// A normalized image reference: `registry/repository[:tag][@digest]`, with Docker's defaults
/// (`busybox` → `docker.io/library/busybox:latest`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reference {
    /// Registry host[:port] as written (`docker.io` for Docker Hub).
    pub registry: String,
    /// Repository path, e.g. `library/busybox`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

// `Reference::parse` and `Reference::to_string_normalized` are in reference.rs.

/// Credentials for one registry (from a pod's imagePullSecrets, `.dockerconfigjson`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryAuth {
    /// The registry key as written in the docker config (`https://index.docker.io/v1/`,
    /// `localhost:5000`, ...); matched against the registry host being pulled from.
    pub registry: String,
    pub username: String,
    pub password: String,
}

/// Parses a `kubernetes.io/dockerconfigjson` secret's `.dockerconfigjson` (or legacy
/// `.dockercfg`) payload: `{"auths": {"host": {"username","password"} | {"auth": base64(u:p)}}}`.
pub fn parse_docker_config(json: &[u8]) -> Result<Vec<RegistryAuth>> {
    auth::parse_docker_config(json)
}

/// Registry mirrors and per-registry settings, k3s's `registries.yaml`:
/// ```yaml
/// mirrors:
///   docker.io:
///     endpoint: ["http://127.0.0.1:5000"]
/// configs:
///   "127.0.0.1:5000":
///     auth: {username: u, password: p}
///     tls: {insecure_skip_verify: true, ca_file: /path/ca.crt}
/// ```
/// A mirror endpoint's scheme decides http vs https. A registry with no mirror is reached at
/// `https://<host>` — except loopback hosts (`localhost`, `127.*`), which use plain http like
/// containerd does for `localhost`. Mirrors are tried in order, then the registry itself.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RegistriesConfig {
    #[serde(default)]
    pub mirrors: BTreeMap<String, Mirror>,
    #[serde(default)]
    pub configs: BTreeMap<String, RegistryConfig>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Mirror {
    #[serde(default)]
    pub endpoint: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RegistryConfig {
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuthConfig {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TlsConfig {
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl RegistriesConfig {
    /// Loads a registries.yaml; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<RegistriesConfig> {
        auth::load_registries(path)
    }
}

/// The parts of an image config a container needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    pub working_dir: String,
    /// `uid`, `uid:gid`, `name` or `name:group` as the image says (resolved by the agent
    /// against the rootfs's /etc/passwd when needed).
    pub user: String,
    pub labels: BTreeMap<String, String>,
}

/// An image present in the local store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The normalized reference it was pulled or imported as.
    pub reference: String,
    /// The image id: the config blob's digest (`sha256:...`), what `imageID` shows.
    pub id: String,
    /// The manifest's digest (`sha256:...`): `imageID` is reported as `<repo>@<digest>`.
    pub digest: String,
    /// Unpacked layer directories, bottom layer first (overlayfs lowerdirs are given top first).
    pub layers: Vec<PathBuf>,
    pub config: ImageConfig,
    /// Compressed size of the layers, bytes.
    pub size: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// What garbage collection removed.
#[derive(Clone, Debug, Default)]
pub struct GcReport {
    pub images_removed: Vec<String>,
    pub blobs_removed: usize,
    pub layers_removed: usize,
    pub bytes_freed: u64,
}

// `ImageStore`'s methods: open, root, get, list, remove, pull, ensure (store.rs),
// import_oci_archive (import.rs), gc (gc.rs).
