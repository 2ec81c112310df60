//! Image references with Docker's normalization (the rules of distribution/reference's
//! `ParseNormalizedNamed`): the first path component is a registry only if it looks like a host
//! (has a `.` or `:`, or is `localhost`, or has upper-case letters); otherwise the registry is
//! Docker Hub, where single-component names live under `library/`. No tag and no digest means
//! `:latest`.

use std::fmt;

use super::Reference;
use super::digest;
use crate::{Error, Result};

pub(crate) const DOCKER_HUB: &str = "docker.io";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

impl Reference {
    /// Parses and normalizes; errors say what is wrong with the reference.
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |why: &str| Error::Image(format!("invalid image reference {s:?}: {why}"));
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if s.trim() != s || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("contains whitespace"));
        }

        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => {
                digest::hex(d).map_err(|e| bad(&e))?;
                (n, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&name_tag[..i], Some(name_tag[i + 1..].to_string()))
            }
            None => (name_tag, None),
        };
        if name.is_empty() {
            return Err(bad("no repository name"));
        }
        if let Some(t) = &tag {
            check_tag(t).map_err(|e| bad(&e))?;
        }
        if name.len() > MAX_NAME_LEN {
            return Err(bad(&format!("name longer than {MAX_NAME_LEN} characters")));
        }

        let (registry, path) = match name.split_once('/') {
            Some((first, rest)) if looks_like_host(first) => (first.to_string(), rest.to_string()),
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        if registry != DOCKER_HUB {
            check_host(&registry).map_err(|e| bad(&e))?;
        }
        let registry = if registry == "index.docker.io" { DOCKER_HUB.to_string() } else { registry };
        if path.is_empty() {
            return Err(bad("no repository after the registry"));
        }
        if registry == DOCKER_HUB && path.len() == 64 && path.bytes().all(|b| b.is_ascii_hexdigit()) && tag.is_none() && digest.is_none() {
            return Err(bad("a 64-character hexadecimal string is an image id, not a repository name"));
        }
        for component in path.split('/') {
            check_path_component(component).map_err(|e| bad(&e))?;
        }
        let repository = if registry == DOCKER_HUB && !path.contains('/') { format!("library/{path}") } else { path };
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_string()) } else { tag };
        Ok(Reference { registry, repository, tag, digest })
    }

    /// `docker.io/library/busybox:latest` (or `...@sha256:...`).
    pub fn to_string_normalized(&self) -> String {
        let mut s = self.name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// `registry/repository`, without tag or digest.
    pub(crate) fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the registry for: the digest when there is one (it wins over a tag).
    pub(crate) fn manifest_ref(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_normalized())
    }
}

fn looks_like_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase())
}

pub(crate) fn check_tag(tag: &str) -> std::result::Result<(), String> {
    let mut chars = tag.chars();
    let ok_first = chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok_first || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-') {
        return Err(format!("invalid tag {tag:?} (letters, digits, '_', '.', '-'; not starting with '.' or '-')"));
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!("tag longer than {MAX_TAG_LEN} characters"));
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn check_path_component(c: &str) -> std::result::Result<(), String> {
    if c.is_empty() {
        return Err("empty path component".into());
    }
    if c.chars().any(|ch| ch.is_ascii_uppercase()) {
        return Err(format!("repository name must be lowercase (component {c:?})"));
    }
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(format!("path component {c:?} must start and end with a letter or digit"));
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__', or any number of '-'.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let valid = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !valid {
            return Err(format!("invalid characters {sep:?} in path component {c:?}"));
        }
    }
    Ok(())
}

/// `host[:port]` with DNS labels, an IPv4 address or a bracketed IPv6 address.
fn check_host(registry: &str) -> std::result::Result<(), String> {
    let (host, port) = split_host_port(registry);
    if let Some(p) = port
        && (p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("invalid port in registry {registry:?}"));
    }
    if let Some(inner) = host.strip_prefix('[') {
        let ok = inner.strip_suffix(']').is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
        return if ok { Ok(()) } else { Err(format!("invalid IPv6 address in registry {registry:?}")) };
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.is_empty() || !host.split('.').all(label_ok) {
        return Err(format!("invalid registry host {registry:?}"));
    }
    Ok(())
}

/// Splits `host:port` / `[v6]:port`; the port is `None` when absent.
pub(crate) fn split_host_port(registry: &str) -> (&str, Option<&str>) {
    if registry.starts_with('[') {
        return match registry.find(']') {
            Some(end) => {
                let (h, rest) = registry.split_at(end + 1);
                (h, rest.strip_prefix(':'))
            }
            None => (registry, None),
        };
    }
    match registry.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (registry, None),
    }
}

/// `localhost`, `127.0.0.0/8` and `::1` registries are spoken to over plain http.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let (host, _) = split_host_port(registry);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn r(registry: &str, repository: &str, tag: Option<&str>, digest: Option<&str>) -> Reference {
        Reference {
            registry: registry.into(),
            repository: repository.into(),
            tag: tag.map(Into::into),
            digest: digest.map(Into::into),
        }
    }

    #[test]
    fn normalizes() {
        let d = Some(D);
        let cases: Vec<(String, Reference)> = vec![
            ("busybox".into(), r("docker.io", "library/busybox", Some("latest"), None)),
            ("busybox:1.36".into(), r("docker.io", "library/busybox", Some("1.36"), None)),
            ("library/busybox".into(), r("docker.io", "library/busybox", Some("latest"), None)),
            ("docker.io/busybox".into(), r("docker.io", "library/busybox", Some("latest"), None)),
            ("index.docker.io/busybox".into(), r("docker.io", "library/busybox", Some("latest"), None)),
            ("docker.io/library/busybox:latest".into(), r("docker.io", "library/busybox", Some("latest"), None)),
            ("user/app".into(), r("docker.io", "user/app", Some("latest"), None)),
            ("user/app/sub:v1".into(), r("docker.io", "user/app/sub", Some("v1"), None)),
            (format!("busybox@{D}"), r("docker.io", "library/busybox", None, d)),
            (format!("busybox:1@{D}"), r("docker.io", "library/busybox", Some("1"), d)),
            ("localhost/app".into(), r("localhost", "app", Some("latest"), None)),
            ("localhost:5000/app:v2".into(), r("localhost:5000", "app", Some("v2"), None)),
            ("127.0.0.1:5000/a/b".into(), r("127.0.0.1:5000", "a/b", Some("latest"), None)),
            (format!("127.0.0.1:5000/a/b@{D}"), r("127.0.0.1:5000", "a/b", None, d)),
            ("quay.io/coreos/etcd:v3.5.0".into(), r("quay.io", "coreos/etcd", Some("v3.5.0"), None)),
            ("registry.k8s.io/pause:3.10".into(), r("registry.k8s.io", "pause", Some("3.10"), None)),
            ("Registry/app".into(), r("Registry", "app", Some("latest"), None)),
            ("[::1]:5000/app".into(), r("[::1]:5000", "app", Some("latest"), None)),
            ("a/b_c/d__e/f-g/h--i/j.k:T_a.g-1".into(), r("docker.io", "a/b_c/d__e/f-g/h--i/j.k", Some("T_a.g-1"), None)),
        ];
        for (input, want) in cases {
            let got = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got, want, "{input}");
            // Normalizing is idempotent.
            assert_eq!(Reference::parse(&got.to_string_normalized()).unwrap(), got, "{input}");
        }
    }

    #[test]
    fn prints() {
        assert_eq!(Reference::parse("busybox").unwrap().to_string_normalized(), "docker.io/library/busybox:latest");
        assert_eq!(
            Reference::parse(&format!("localhost:5000/x@{D}")).unwrap().to_string_normalized(),
            format!("localhost:5000/x@{D}")
        );
        assert_eq!(Reference::parse(&format!("x:t@{D}")).unwrap().to_string(), format!("docker.io/library/x:t@{D}"));
    }

    #[test]
    fn rejects() {
        let cases = [
            ("", "empty"),
            (" busybox", "whitespace"),
            ("Busybox", "lowercase"),
            ("docker.io/Library/busybox", "lowercase"),
            ("busybox:", "invalid tag"),
            ("busybox:-x", "invalid tag"),
            ("busybox:a/b", "port"),
            ("busybox@sha256:abc", "digest"),
            ("busybox@md5:d41d8cd98f00b204e9800998ecf8427e", "digest"),
            ("busybox@", "digest"),
            ("-busybox", "start and end"),
            ("busy..box", "invalid characters"),
            ("busy___box", "invalid characters"),
            ("a//b", "empty path component"),
            ("localhost:5000/", "no repository"),
            ("localhost:50x0/a", "port"),
            ("local_host.io/a", "registry host"),
            (":tag", "no repository name"),
            ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "image id"),
        ];
        for (input, want) in cases {
            let err = Reference::parse(input).expect_err(input).to_string();
            assert!(err.contains(want), "{input:?}: {err:?} lacks {want:?}");
            assert!(err.contains(&format!("{input:?}")), "{input:?}: error does not name the input: {err}");
        }
        let long = format!("{}:t", "a".repeat(300));
        assert!(Reference::parse(&long).is_err());
        let long_tag = format!("a:{}", "t".repeat(129));
        assert!(Reference::parse(&long_tag).is_err());
    }

    #[test]
    fn loopback() {
        for h in ["localhost", "localhost:5000", "127.0.0.1", "127.1.2.3:80", "[::1]:5000", "LOCALHOST"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["docker.io", "10.0.0.1:5000", "localhost.example.com", "[::2]:1"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
