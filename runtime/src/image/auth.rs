//! Credentials and registry settings: imagePullSecrets payloads (`.dockerconfigjson` and the
//! legacy `.dockercfg`), matching their registry keys against the registry being pulled from
//! (the kubelet's rules), and k3s's registries.yaml.

use std::path::Path;

use base64::Engine;
use serde::Deserialize;

use super::reference::DOCKER_HUB;
use super::{AuthConfig, Mirror, RegistriesConfig, RegistryAuth, RegistryConfig};
use crate::{Error, Result};

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    auth: Option<String>,
}

pub(crate) fn parse_docker_config(json: &[u8]) -> Result<Vec<RegistryAuth>> {
    let value: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| Error::Invalid(format!("docker config secret is not valid JSON: {e}")))?;
    let serde_json::Value::Object(mut top) = value else {
        return Err(Error::Invalid("docker config secret: expected a JSON object".into()));
    };
    // `.dockerconfigjson` wraps the registries in "auths"; `.dockercfg` is the bare map.
    let auths = match top.remove("auths") {
        Some(serde_json::Value::Object(m)) => m,
        Some(_) => return Err(Error::Invalid("docker config secret: \"auths\" is not an object".into())),
        None => top,
    };
    let mut out = Vec::new();
    for (registry, value) in auths {
        let entry: Entry = serde_json::from_value(value)
            .map_err(|e| Error::Invalid(format!("docker config secret, registry {registry:?}: {e}")))?;
        let (mut username, mut password) = (entry.username.unwrap_or_default(), entry.password.unwrap_or_default());
        // As the kubelet does: a non-empty "auth" wins over username/password.
        if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| Error::Invalid(format!("docker config secret, registry {registry:?}: \"auth\" is not base64: {e}")))?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| Error::Invalid(format!("docker config secret, registry {registry:?}: \"auth\" is not UTF-8")))?;
            let Some((u, p)) = decoded.split_once(':') else {
                return Err(Error::Invalid(format!(
                    "docker config secret, registry {registry:?}: \"auth\" is not base64(username:password)"
                )));
            };
            username = u.to_string();
            password = p.to_string();
        }
        out.push(RegistryAuth { registry, username, password });
    }
    Ok(out)
}

/// A docker config key or registry host reduced to comparable parts.
struct Key {
    host: String,
    port: Option<String>,
    path: String,
}

fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB.to_string(),
        _ => host,
    }
}

fn parse_key(key: &str) -> Key {
    let key = key.trim();
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let (hostport, path) = key.split_once('/').unwrap_or((key, ""));
    let path = path.trim_matches('/');
    // `https://index.docker.io/v1/` names the registry, not a repository prefix.
    let path = if path == "v1" || path == "v2" { "" } else { path };
    let (host, port) = super::reference::split_host_port(hostport);
    Key { host: canonical_host(host), port: port.map(str::to_string), path: path.to_string() }
}

/// Host globs as the kubelet matches them: `*` matches exactly one label.
fn host_matches(pattern: &str, host: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let h: Vec<&str> = host.split('.').collect();
    p.len() == h.len() && p.iter().zip(&h).all(|(p, h)| *p == "*" || p == h)
}

/// The most specific credentials whose key matches `registry` (`host[:port]`) and whose
/// optional path is a prefix of `repository`.
pub(crate) fn match_auth<'a>(auths: &'a [RegistryAuth], registry: &str, repository: &str) -> Option<&'a RegistryAuth> {
    let target = parse_key(registry);
    auths
        .iter()
        .filter_map(|a| {
            let k = parse_key(&a.registry);
            let host_ok = host_matches(&k.host, &target.host) && k.port == target.port;
            let path_ok = k.path.is_empty()
                || repository == k.path
                || repository.strip_prefix(&k.path).is_some_and(|rest| rest.starts_with('/'));
            (host_ok && path_ok).then(|| {
                let exact = !k.host.contains('*');
                ((k.path.len(), exact), a)
            })
        })
        .max_by_key(|(score, _)| *score)
        .map(|(_, a)| a)
}

pub(crate) fn load_registries(path: &Path) -> Result<RegistriesConfig> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RegistriesConfig::default()),
        Err(e) => return Err(Error::io(format!("reading registries config {}", path.display()), e)),
    };
    if text.trim().is_empty() {
        return Ok(RegistriesConfig::default());
    }
    serde_yaml::from_str(&text).map_err(|e| Error::Path { path: path.to_path_buf(), message: format!("invalid registries.yaml: {e}") })
}

impl RegistriesConfig {
    /// The mirror entry for a registry, or the `"*"` default k3s allows.
    pub(crate) fn mirror_for(&self, registry: &str) -> Option<&Mirror> {
        self.mirrors.get(registry).or_else(|| {
            if registry == DOCKER_HUB { self.mirrors.get("index.docker.io") } else { None }
        })
        .or_else(|| self.mirrors.get("*"))
    }

    /// Settings for an endpoint host (`host[:port]`), Docker Hub's aliases being one host.
    pub(crate) fn config_for(&self, host: &str) -> Option<&RegistryConfig> {
        if let Some(c) = self.configs.get(host) {
            return Some(c);
        }
        let canonical = canonical_host(host);
        self.configs
            .iter()
            .find(|(k, _)| canonical_host(k) == canonical)
            .map(|(_, c)| c)
            .or_else(|| self.configs.get("*"))
    }
}

impl AuthConfig {
    pub(crate) fn is_empty(&self) -> bool {
        self.username.is_empty() && self.password.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerconfigjson() {
        let json = br#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "dTE6cDE="},
            "localhost:5000": {"username": "u2", "password": "p:2"},
            "quay.io": {"username": "ignored", "password": "ignored", "auth": "dTM6cDM6eA==", "email": "x@y"}
        }}"#;
        let auths = parse_docker_config(json).unwrap();
        assert_eq!(
            auths,
            vec![
                RegistryAuth { registry: "https://index.docker.io/v1/".into(), username: "u1".into(), password: "p1".into() },
                RegistryAuth { registry: "localhost:5000".into(), username: "u2".into(), password: "p:2".into() },
                RegistryAuth { registry: "quay.io".into(), username: "u3".into(), password: "p3:x".into() },
            ]
        );
    }

    #[test]
    fn dockercfg_legacy() {
        let json = br#"{"registry.example.com:443": {"auth": "dTpw", "email": "a@b"}}"#;
        let auths = parse_docker_config(json).unwrap();
        assert_eq!(auths.len(), 1);
        assert_eq!((auths[0].username.as_str(), auths[0].password.as_str()), ("u", "p"));
        assert!(parse_docker_config(b"{}").unwrap().is_empty());
        assert!(parse_docker_config(br#"{"auths": {}}"#).unwrap().is_empty());
    }

    #[test]
    fn docker_config_errors_name_the_registry() {
        assert!(parse_docker_config(b"not json").unwrap_err().to_string().contains("not valid JSON"));
        assert!(parse_docker_config(b"[]").is_err());
        assert!(parse_docker_config(br#"{"auths": 3}"#).is_err());
        let e = parse_docker_config(br#"{"auths": {"r.io": {"auth": "!!!"}}}"#).unwrap_err().to_string();
        assert!(e.contains("r.io") && e.contains("base64"), "{e}");
        let e = parse_docker_config(br#"{"auths": {"r.io": {"auth": "bm9jb2xvbg=="}}}"#).unwrap_err().to_string();
        assert!(e.contains("r.io") && e.contains("username:password"), "{e}");
        let e = parse_docker_config(br#"{"auths": {"r.io": 5}}"#).unwrap_err().to_string();
        assert!(e.contains("r.io"), "{e}");
    }

    fn a(key: &str) -> RegistryAuth {
        RegistryAuth { registry: key.into(), username: key.into(), password: String::new() }
    }

    #[test]
    fn matching() {
        let auths = vec![
            a("https://index.docker.io/v1/"),
            a("localhost:5000"),
            a("127.0.0.1:5000/team"),
            a("*.example.com"),
            a("registry.example.com"),
            a("http://plain.io/"),
        ];
        let m = |reg: &str, repo: &str| match_auth(&auths, reg, repo).map(|a| a.registry.as_str());
        assert_eq!(m("docker.io", "library/busybox"), Some("https://index.docker.io/v1/"));
        assert_eq!(m("localhost:5000", "x"), Some("localhost:5000"));
        assert_eq!(m("localhost", "x"), None, "ports must match");
        assert_eq!(m("localhost:5001", "x"), None);
        assert_eq!(m("127.0.0.1:5000", "team/app"), Some("127.0.0.1:5000/team"));
        assert_eq!(m("127.0.0.1:5000", "team"), Some("127.0.0.1:5000/team"));
        assert_eq!(m("127.0.0.1:5000", "teamx/app"), None);
        assert_eq!(m("registry.example.com", "a"), Some("registry.example.com"), "exact beats glob");
        assert_eq!(m("other.example.com", "a"), Some("*.example.com"));
        assert_eq!(m("a.b.example.com", "a"), None, "* is one label");
        assert_eq!(m("plain.io", "a"), Some("http://plain.io/"));
        assert_eq!(m("quay.io", "a"), None);
    }

    #[test]
    fn registries_yaml() {
        let dir = tempfile::tempdir().unwrap();
        let missing = RegistriesConfig::load(&dir.path().join("nope.yaml")).unwrap();
        assert!(missing.mirrors.is_empty() && missing.configs.is_empty());

        let p = dir.path().join("registries.yaml");
        std::fs::write(
            &p,
            r#"
mirrors:
  docker.io:
    endpoint: ["http://127.0.0.1:5000", "https://mirror.example.com/v2/prefix"]
  "*":
    endpoint: ["http://127.0.0.1:5001"]
configs:
  "127.0.0.1:5000":
    auth: {username: u, password: p}
    tls: {insecure_skip_verify: true, ca_file: /tmp/ca.crt}
  registry-1.docker.io:
    auth: {username: hub, password: x}
"#,
        )
        .unwrap();
        let c = RegistriesConfig::load(&p).unwrap();
        assert_eq!(c.mirror_for("docker.io").unwrap().endpoint.len(), 2);
        assert_eq!(c.mirror_for("quay.io").unwrap().endpoint, vec!["http://127.0.0.1:5001"]);
        let cfg = c.config_for("127.0.0.1:5000").unwrap();
        assert_eq!(cfg.auth.as_ref().unwrap().username, "u");
        assert!(cfg.tls.as_ref().unwrap().insecure_skip_verify);
        assert_eq!(c.config_for("docker.io").unwrap().auth.as_ref().unwrap().username, "hub");
        assert!(c.config_for("quay.io").is_none());

        std::fs::write(&p, "").unwrap();
        assert!(RegistriesConfig::load(&p).unwrap().mirrors.is_empty());
        std::fs::write(&p, "mirrors: [1, 2]").unwrap();
        let e = RegistriesConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("registries.yaml"), "{e}");
    }
}
