//! Manifests, indexes and image configs. Parsed with our own lenient structs rather than
//! oci-spec's: Docker schema2 and OCI documents differ in small ways (nulls, missing media
//! types) and a pull must not fail on a field we do not use.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ImageConfig;
use crate::{Error, Result};

pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1";

/// What we send as `Accept` for manifests, preferred first.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// containerd's limit: a manifest or config bigger than this is not one.
pub(crate) const MAX_MANIFEST_BYTES: u64 = 4 << 20;

pub(crate) const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub media_type: Option<String>,
    pub digest: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

pub(crate) enum Manifest {
    Index(Vec<Descriptor>),
    Image { config: Descriptor, layers: Vec<Descriptor> },
}

/// Parses a manifest or index. The media type comes from the Content-Type header when there is
/// one, else from the document; a document without either is classified by its fields.
pub(crate) fn parse(bytes: &[u8], content_type: Option<&str>, what: &str) -> Result<Manifest> {
    let bad = |why: String| Error::Image(format!("manifest of {what}: {why}"));
    let content_type = content_type.map(|c| c.split(';').next().unwrap_or(c).trim()).filter(|c| {
        // Registries answer some requests with a generic type; the document then decides.
        !c.is_empty() && *c != "application/json" && *c != "application/octet-stream" && *c != "text/plain"
    });
    if content_type.is_some_and(|c| c.starts_with(DOCKER_SCHEMA1)) {
        return Err(bad("Docker schema 1 manifests are not supported (push the image again with a current tool)".into()));
    }
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    if raw.schema_version == Some(1) {
        return Err(bad("Docker schema 1 manifests are not supported (push the image again with a current tool)".into()));
    }
    let media_type = content_type.map(str::to_string).or(raw.media_type);
    let is_index = match media_type.as_deref() {
        Some(OCI_INDEX | DOCKER_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        Some(other) if raw.manifests.is_none() && raw.layers.is_none() => {
            return Err(bad(format!("unsupported media type {other:?}")));
        }
        _ => raw.manifests.is_some(),
    };
    if is_index {
        let manifests = raw.manifests.ok_or_else(|| bad("index without \"manifests\"".into()))?;
        for m in &manifests {
            super::digest::checked(&m.digest)?;
        }
        return Ok(Manifest::Index(manifests));
    }
    let config = raw.config.ok_or_else(|| bad("no \"config\"".into()))?;
    super::digest::checked(&config.digest)?;
    let layers = raw.layers.unwrap_or_default();
    for l in &layers {
        super::digest::checked(&l.digest)?;
    }
    Ok(Manifest::Image { config, layers })
}

/// This node's platform in OCI terms.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// Picks the linux/<host arch> manifest of an index. An index of a single entry without a
/// platform (what many tools write for one image) is that image.
pub(crate) fn select_platform<'a>(manifests: &'a [Descriptor], what: &str) -> Result<&'a Descriptor> {
    let arch = host_arch();
    let usable = |m: &&Descriptor| {
        m.media_type.as_deref().is_none_or(|t| matches!(t, OCI_MANIFEST | DOCKER_MANIFEST | OCI_INDEX | DOCKER_LIST))
    };
    let found = manifests.iter().filter(usable).find(|m| {
        m.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == arch)
    });
    if let Some(m) = found {
        return Ok(m);
    }
    let without_platform: Vec<&Descriptor> = manifests.iter().filter(usable).filter(|m| m.platform.is_none()).collect();
    if manifests.iter().all(|m| m.platform.is_none()) && without_platform.len() == 1 {
        return Ok(without_platform[0]);
    }
    let available: Vec<String> = manifests
        .iter()
        .filter_map(|m| m.platform.as_ref())
        .map(|p| match &p.variant {
            Some(v) => format!("{}/{}/{}", p.os, p.architecture, v),
            None => format!("{}/{}", p.os, p.architecture),
        })
        .collect();
    Err(Error::Image(format!(
        "{what}: no image for linux/{arch} in its index (it has: {})",
        if available.is_empty() { "no platforms".to_string() } else { available.join(", ") }
    )))
}

#[derive(Deserialize, Default)]
struct RawConfigFile {
    #[serde(default)]
    config: Option<RawContainerConfig>,
    #[serde(default)]
    rootfs: Option<RawRootfs>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawContainerConfig {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
struct RawRootfs {
    #[serde(default)]
    diff_ids: Option<Vec<String>>,
}

/// The container-relevant config and the layers' diff ids (uncompressed digests), bottom first.
pub(crate) fn parse_config(bytes: &[u8], what: &str) -> Result<(ImageConfig, Vec<String>)> {
    let raw: RawConfigFile =
        serde_json::from_slice(bytes).map_err(|e| Error::Image(format!("config of {what}: not valid JSON: {e}")))?;
    let c = raw.config.unwrap_or_default();
    let diff_ids = raw.rootfs.and_then(|r| r.diff_ids).unwrap_or_default();
    for d in &diff_ids {
        super::digest::checked(d)?;
    }
    let config = ImageConfig {
        entrypoint: c.entrypoint.unwrap_or_default(),
        cmd: c.cmd.unwrap_or_default(),
        env: c.env.unwrap_or_default(),
        working_dir: c.working_dir.unwrap_or_default(),
        user: c.user.unwrap_or_default(),
        labels: c.labels.unwrap_or_default(),
    };
    Ok((config, diff_ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn index_selects_platform() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[
              {{"mediaType":"{DOCKER_MANIFEST}","digest":"{D1}","size":1,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
              {{"mediaType":"{DOCKER_MANIFEST}","digest":"{D2}","size":1,"platform":{{"architecture":"{}","os":"linux"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":1,"platform":{{"architecture":"unknown","os":"unknown"}}}}
            ]}}"#,
            host_arch()
        );
        let Manifest::Index(m) = parse(json.as_bytes(), None, "x").unwrap() else { panic!("not an index") };
        assert_eq!(select_platform(&m, "x").unwrap().digest, D2);
        let only_arm = &m[..1];
        let e = select_platform(only_arm, "img").unwrap_err().to_string();
        assert!(e.contains("linux/arm64/v8") && e.contains("img"), "{e}");
    }

    #[test]
    fn manifest_and_config() {
        let json = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{D1}","size":3}},"layers":[{{"digest":"{D2}","size":9}}]}}"#
        );
        let Manifest::Image { config, layers } = parse(json.as_bytes(), Some(OCI_MANIFEST), "x").unwrap() else {
            panic!("not a manifest")
        };
        assert_eq!(config.digest, D1);
        assert_eq!(layers[0].size, Some(9));
        let cfg = format!(
            r#"{{"architecture":"amd64","config":{{"Entrypoint":null,"Cmd":["sh"],"Env":["A=b"],"WorkingDir":"/w","User":"1:2","Labels":{{"k":"v"}}}},"rootfs":{{"type":"layers","diff_ids":["{D2}"]}}}}"#
        );
        let (c, diffs) = parse_config(cfg.as_bytes(), "x").unwrap();
        assert_eq!(c.cmd, vec!["sh"]);
        assert!(c.entrypoint.is_empty());
        assert_eq!((c.working_dir.as_str(), c.user.as_str()), ("/w", "1:2"));
        assert_eq!(c.labels.get("k").map(String::as_str), Some("v"));
        assert_eq!(diffs, vec![D2]);
        assert!(parse_config(br#"{"config":null}"#, "x").unwrap().1.is_empty());
    }

    #[test]
    fn rejects() {
        assert!(parse(b"{", None, "x").is_err());
        let e = parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, None, "img:1").err().unwrap().to_string();
        assert!(e.contains("schema 1") && e.contains("img:1"), "{e}");
        assert!(parse(br#"{"schemaVersion":2,"config":{"digest":"sha256:zz"},"layers":[]}"#, None, "x").is_err());
        assert!(parse(br#"{"schemaVersion":2}"#, Some(OCI_MANIFEST), "x").is_err());
    }
}
