//! The registry client: Docker Registry HTTP API v2 / OCI distribution over reqwest, with the
//! registries.yaml mirrors tried in order before the registry itself, bearer-token and basic
//! auth answered from 401 challenges, and blobs streamed to disk and verified against their
//! digest before they are renamed into the store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Certificate, Client, Method, Response, StatusCode, Url};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tracing::{debug, info, warn};

use super::manifest::{MANIFEST_ACCEPT, MAX_MANIFEST_BYTES};
use super::reference::{DOCKER_HUB, is_loopback};
use super::{Reference, RegistriesConfig, RegistryAuth, TlsConfig, auth, digest};
use crate::{Error, Result};

const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
const DOCKER_HUB_API: &str = "registry-1.docker.io";
const MAX_ERROR_BODY: u64 = 64 << 10;
/// How often a long blob download logs its progress.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

/// HTTP clients by TLS settings (a client holds its roots and verification mode).
#[derive(Default)]
pub(crate) struct Clients {
    cache: Mutex<HashMap<(Option<PathBuf>, bool), Client>>,
}

fn system_roots() -> &'static [Certificate] {
    static ROOTS: OnceLock<Vec<Certificate>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let path = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from).unwrap_or_else(|| SYSTEM_CA_BUNDLE.into());
        match std::fs::read(&path) {
            Ok(pem) => Certificate::from_pem_bundle(&pem).unwrap_or_else(|e| {
                warn!(path = %path.display(), "cannot parse the CA bundle: {e}; https registries will fail verification");
                Vec::new()
            }),
            Err(e) => {
                warn!(path = %path.display(), "no CA bundle ({e}); https registries will fail verification");
                Vec::new()
            }
        }
    })
}

fn builder(roots: &[Certificate], insecure: bool) -> reqwest::ClientBuilder {
    let mut b = Client::builder()
        .user_agent(concat!("rkube/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        // Per read, not per request: a big layer may take long, a stalled one must not hang.
        .read_timeout(Duration::from_secs(60))
        .tls_built_in_root_certs(false)
        .danger_accept_invalid_certs(insecure);
    for c in roots {
        b = b.add_root_certificate(c.clone());
    }
    b
}

impl Clients {
    pub(crate) fn client(&self, tls: Option<&TlsConfig>) -> Result<Client> {
        let key = (tls.and_then(|t| t.ca_file.clone()), tls.is_some_and(|t| t.insecure_skip_verify));
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        let mut roots = system_roots().to_vec();
        if let Some(ca) = &key.0 {
            let pem = std::fs::read(ca).map_err(|e| Error::io(format!("reading registry CA file {}", ca.display()), e))?;
            let certs = Certificate::from_pem_bundle(&pem)
                .map_err(|e| Error::Path { path: ca.clone(), message: format!("invalid PEM CA file: {e}") })?;
            if certs.is_empty() {
                return Err(Error::Path { path: ca.clone(), message: "no certificate in CA file".into() });
            }
            roots.extend(certs);
        }
        let client = match builder(&roots, key.1).build() {
            Ok(c) => c,
            Err(e) => {
                // One unparsable root fails the whole build: keep only the ones that load.
                warn!("building the registry client failed ({e}); dropping CA certificates that do not load");
                let good: Vec<Certificate> = roots.into_iter().filter(|c| builder(std::slice::from_ref(c), false).build().is_ok()).collect();
                builder(&good, key.1).build().map_err(|e| Error::Registry(format!("building the registry HTTP client: {}", chain(&e))))?
            }
        };
        cache.insert(key, client.clone());
        Ok(client)
    }
}

/// An error and its causes: reqwest's own message is only "error sending request for url".
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[derive(Clone)]
struct Creds {
    username: String,
    password: String,
}

/// One place the repository can be fetched from.
struct Endpoint {
    /// The API root, `scheme://host[:port]/v2` (or a mirror's own path), no trailing slash.
    api: String,
    host: String,
    mirror: bool,
    client: Client,
    creds: Option<Creds>,
    /// The Authorization value that answered the last challenge, reused for later requests.
    authorization: Mutex<Option<String>>,
}

impl Endpoint {
    fn cached_auth(&self) -> Option<String> {
        self.authorization.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    fn set_auth(&self, v: String) {
        *self.authorization.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
    }
    fn describe(&self) -> String {
        if self.mirror { format!("mirror {}", self.api) } else { self.api.clone() }
    }
}

/// A manifest as fetched.
pub(crate) struct Fetched {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    /// The endpoint it came from; later fetches for this image start there.
    pub endpoint: usize,
}

/// Everything needed to fetch one repository: its endpoints in order, each with its
/// credentials and cached authorization.
pub(crate) struct Session {
    repository: String,
    what: String,
    endpoints: Vec<Endpoint>,
}

/// `(api root, host)` of a mirror endpoint as written in registries.yaml. k3s's rule: a URL
/// without a path (or with `/v2`) gets `/v2`; any other path is the API root as is.
fn mirror_api(endpoint: &str) -> Result<(String, String)> {
    let with_scheme = if endpoint.contains("://") { endpoint.to_string() } else { format!("https://{endpoint}") };
    let url = Url::parse(&with_scheme).map_err(|e| Error::Invalid(format!("registries.yaml: mirror endpoint {endpoint:?}: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(Error::Invalid(format!("registries.yaml: mirror endpoint {endpoint:?}: scheme must be http or https")));
    }
    let host = url.host_str().ok_or_else(|| Error::Invalid(format!("registries.yaml: mirror endpoint {endpoint:?} has no host")))?;
    // Url drops a port that is the scheme's default (`https://m.io:443`), but as written it
    // is part of the host registries.yaml `configs` are keyed by.
    let authority = with_scheme.split_once("://").map_or("", |(_, rest)| rest);
    let authority = authority.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let written_port = authority
        .rsplit_once(':')
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host = match url.port().map(|p| p.to_string()).or(written_port.map(str::to_string)) {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let path = url.path().trim_end_matches('/');
    let path = if path.is_empty() || path == "/v2" { "/v2".to_string() } else { path.to_string() };
    Ok((format!("{}://{host}{path}", url.scheme()), host))
}

fn upstream_api(registry: &str) -> (String, String) {
    if registry == DOCKER_HUB {
        return (format!("https://{DOCKER_HUB_API}/v2"), DOCKER_HUB_API.to_string());
    }
    let scheme = if is_loopback(registry) { "http" } else { "https" };
    (format!("{scheme}://{registry}/v2"), registry.to_string())
}

impl Session {
    pub(crate) fn new(clients: &Clients, registries: &RegistriesConfig, reference: &Reference, auths: &[RegistryAuth]) -> Result<Session> {
        let repo = &reference.repository;
        let config_creds = |host: &str| {
            registries
                .config_for(host)
                .and_then(|c| c.auth.as_ref())
                .filter(|a| !a.is_empty())
                .map(|a| Creds { username: a.username.clone(), password: a.password.clone() })
        };
        let secret_creds = |host: &str| {
            auth::match_auth(auths, host, repo).map(|a| Creds { username: a.username.clone(), password: a.password.clone() })
        };
        let tls_for = |host: &str| registries.config_for(host).and_then(|c| c.tls.as_ref());

        let mut endpoints = Vec::new();
        if let Some(m) = registries.mirror_for(&reference.registry) {
            for e in &m.endpoint {
                let (api, host) = match mirror_api(e) {
                    Ok(x) => x,
                    Err(err) => {
                        warn!("{err}; skipping it");
                        continue;
                    }
                };
                let creds = config_creds(&host).or_else(|| secret_creds(&host));
                let client = clients.client(tls_for(&host))?;
                endpoints.push(Endpoint { api, host, mirror: true, client, creds, authorization: Mutex::new(None) });
            }
        }
        let (api, host) = upstream_api(&reference.registry);
        if !endpoints.iter().any(|e| e.api == api) {
            // Pull secrets name the image's registry; registries.yaml may name either.
            let creds = secret_creds(&reference.registry).or_else(|| config_creds(&reference.registry)).or_else(|| config_creds(&host));
            let client = clients.client(tls_for(&host).or_else(|| tls_for(&reference.registry)))?;
            endpoints.push(Endpoint { api, host, mirror: false, client, creds, authorization: Mutex::new(None) });
        }
        Ok(Session { repository: repo.clone(), what: reference.to_string_normalized(), endpoints })
    }

    /// Endpoint indexes to try: `first`, then the others in their configured order.
    fn order(&self, first: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(first).chain((0..self.endpoints.len()).filter(move |i| *i != first))
    }

    fn all_failed(&self, action: &str, errors: Vec<String>) -> Error {
        if errors.len() == 1 {
            return Error::Registry(format!("{action}: {}", errors[0]));
        }
        Error::Registry(format!("{action}: every endpoint failed: {}", errors.join("; ")))
    }

    /// GETs a manifest (by tag or digest) from the first endpoint that has it.
    pub(crate) async fn manifest(&self, reference: &str, first: usize) -> Result<Fetched> {
        let mut errors = Vec::new();
        for i in self.order(first) {
            let ep = &self.endpoints[i];
            let url = format!("{}/{}/manifests/{reference}", ep.api, self.repository);
            match self.fetch_manifest(ep, &url).await {
                Ok((bytes, content_type)) => return Ok(Fetched { bytes, content_type, endpoint: i }),
                Err(e) => {
                    debug!(endpoint = %ep.api, "manifest {reference} of {}: {e}", self.what);
                    errors.push(format!("{}: {e}", ep.describe()));
                }
            }
        }
        Err(self.all_failed(&format!("pulling {}: manifest {reference}", self.what), errors))
    }

    async fn fetch_manifest(&self, ep: &Endpoint, url: &str) -> Result<(Vec<u8>, Option<String>)> {
        let mut resp = self.send(ep, Method::GET, url, Some(MANIFEST_ACCEPT)).await?;
        if !resp.status().is_success() {
            return Err(status_error(ep, url, resp).await);
        }
        let content_type = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = read_limited(&mut resp, MAX_MANIFEST_BYTES, url).await?;
        Ok((bytes, content_type))
    }

    /// The digest a tag currently points to, by HEAD (cheaper, and not rate-limited by Docker
    /// Hub); `None` when no endpoint says.
    pub(crate) async fn head_digest(&self, tag: &str) -> Option<String> {
        for ep in &self.endpoints {
            let url = format!("{}/{}/manifests/{tag}", ep.api, self.repository);
            match self.send(ep, Method::HEAD, &url, Some(MANIFEST_ACCEPT)).await {
                Ok(resp) if resp.status().is_success() => {
                    let d = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(str::to_string);
                    if let Some(d) = d.filter(|d| digest::hex(d).is_ok()) {
                        return Some(d);
                    }
                }
                Ok(resp) => debug!(%url, status = %resp.status(), "HEAD manifest"),
                Err(e) => debug!(%url, "HEAD manifest: {e}"),
            }
        }
        None
    }

    /// Downloads a blob into `tmp`, verifying size and digest, then renames it to `dest`.
    pub(crate) async fn blob(&self, digest: &str, size: Option<u64>, tmp: &Path, dest: &Path, first: usize) -> Result<u64> {
        let mut errors = Vec::new();
        for i in self.order(first) {
            let ep = &self.endpoints[i];
            let url = format!("{}/{}/blobs/{digest}", ep.api, self.repository);
            let result = self.fetch_blob(ep, &url, digest, size, tmp).await;
            match result {
                Ok(n) => {
                    tokio::fs::rename(tmp, dest)
                        .await
                        .map_err(|e| Error::io(format!("storing blob {digest} as {}", dest.display()), e))?;
                    return Ok(n);
                }
                Err(e) => {
                    let _ = tokio::fs::remove_file(tmp).await;
                    debug!(endpoint = %ep.api, "blob {digest} of {}: {e}", self.what);
                    errors.push(format!("{}: {e}", ep.describe()));
                }
            }
        }
        Err(self.all_failed(&format!("pulling {}: blob {digest}", self.what), errors))
    }

    async fn fetch_blob(&self, ep: &Endpoint, url: &str, expected: &str, size: Option<u64>, tmp: &Path) -> Result<u64> {
        let mut resp = self.send(ep, Method::GET, url, None).await?;
        if !resp.status().is_success() {
            return Err(status_error(ep, url, resp).await);
        }
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
            .await
            .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
        let mut hasher = Sha256::new();
        let mut n: u64 = 0;
        let started = std::time::Instant::now();
        let mut last_report = started;
        while let Some(chunk) = resp.chunk().await.map_err(|e| Error::Registry(format!("GET {url}: reading body: {}", chain(&e))))? {
            n += chunk.len() as u64;
            if let Some(s) = size
                && n > s
            {
                return Err(Error::Registry(format!("GET {url}: blob is larger than the {s} bytes its descriptor says")));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
            if last_report.elapsed() >= PROGRESS_INTERVAL {
                last_report = std::time::Instant::now();
                info!(image = %self.what, blob = %expected, bytes = n, total = ?size, elapsed = ?started.elapsed(), "downloading");
            }
        }
        if let Some(s) = size
            && n != s
        {
            return Err(Error::Registry(format!("GET {url}: blob has {n} bytes, its descriptor says {s}")));
        }
        let got = digest::finish(hasher);
        if got != expected {
            return Err(Error::Registry(format!("GET {url}: digest mismatch: received content hashes to {got}")));
        }
        // A crash after the rename must not leave a blob whose bytes never reached the disk.
        file.sync_all().await.map_err(|e| Error::io(format!("syncing {}", tmp.display()), e))?;
        Ok(n)
    }

    /// Sends a body-less request, answering one 401 challenge (bearer token or basic auth).
    async fn send(&self, ep: &Endpoint, method: Method, url: &str, accept: Option<&str>) -> Result<Response> {
        let mut answered = false;
        loop {
            let mut req = ep.client.request(method.clone(), url);
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            if let Some(a) = ep.cached_auth() {
                req = req.header(AUTHORIZATION, a);
            }
            let resp = req.send().await.map_err(|e| Error::Registry(format!("{method} {url}: {}", chain(&e))))?;
            debug!(%method, %url, status = resp.status().as_u16(), "registry request");
            if resp.status() != StatusCode::UNAUTHORIZED || answered {
                return Ok(resp);
            }
            let challenge = resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(str::to_string);
            let Some(challenge) = challenge else {
                return Ok(resp);
            };
            let authorization = self.answer(ep, &challenge, url).await?;
            ep.set_auth(authorization);
            answered = true;
        }
    }

    async fn answer(&self, ep: &Endpoint, challenge: &str, url: &str) -> Result<String> {
        let (scheme, params) = parse_challenge(challenge)
            .ok_or_else(|| Error::Registry(format!("{url}: cannot parse WWW-Authenticate {challenge:?}")))?;
        if scheme.eq_ignore_ascii_case("basic") {
            let Some(c) = &ep.creds else {
                return Err(Error::Registry(format!(
                    "{url}: 401 Unauthorized: {} requires authentication and no credentials are configured for it \
                     (imagePullSecrets or registries.yaml configs.\"{}\".auth)",
                    ep.host, ep.host
                )));
            };
            return Ok(basic(c));
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Error::Registry(format!("{url}: unsupported authentication scheme {scheme:?}")));
        }
        let realm = params
            .get("realm")
            .ok_or_else(|| Error::Registry(format!("{url}: bearer challenge without a realm: {challenge:?}")))?;
        let mut token_url = Url::parse(realm).map_err(|e| Error::Registry(format!("{url}: invalid token realm {realm:?}: {e}")))?;
        {
            let mut q = token_url.query_pairs_mut();
            if let Some(s) = params.get("service") {
                q.append_pair("service", s);
            }
            let default_scope = format!("repository:{}:pull", self.repository);
            let scope = params.get("scope").map(String::as_str).unwrap_or(&default_scope);
            for s in scope.split(' ').filter(|s| !s.is_empty()) {
                q.append_pair("scope", s);
            }
        }
        let mut req = ep.client.get(token_url.clone());
        if let Some(c) = &ep.creds {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        let mut resp = req.send().await.map_err(|e| Error::Registry(format!("token request to {realm}: {}", chain(&e))))?;
        debug!(realm = %realm, status = resp.status().as_u16(), "registry token request");
        if !resp.status().is_success() {
            let status = resp.status();
            let body = error_body(&mut resp).await;
            let hint = if ep.creds.is_some() { "credentials rejected" } else { "no credentials configured" };
            return Err(Error::Registry(format!("token request to {realm} for {}: {status} ({hint}): {body}", ep.host)));
        }
        let body = read_limited(&mut resp, MAX_ERROR_BODY, realm).await?;
        #[derive(serde::Deserialize)]
        struct Token {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
        }
        let t: Token = serde_json::from_slice(&body).map_err(|e| Error::Registry(format!("token response from {realm}: {e}")))?;
        let token = t.token.or(t.access_token).filter(|t| !t.is_empty());
        let token = token.ok_or_else(|| Error::Registry(format!("token response from {realm} has no token")))?;
        Ok(format!("Bearer {token}"))
    }
}

fn basic(c: &Creds) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password)))
}

async fn read_limited(resp: &mut Response, limit: u64, url: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| Error::Registry(format!("{url}: reading body: {}", chain(&e))))? {
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(Error::Registry(format!("{url}: response larger than {limit} bytes")));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// The registry's error body, shortened: `CODE: message` entries from the distribution spec's
/// `{"errors": [...]}`, else the text itself.
async fn error_body(resp: &mut Response) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.extend_from_slice(&chunk);
        if buf.len() as u64 > MAX_ERROR_BODY {
            break;
        }
    }
    format_error_body(&buf)
}

pub(crate) fn format_error_body(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        detail: Option<serde_json::Value>,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body)
        && !e.errors.is_empty()
    {
        return e
            .errors
            .iter()
            .map(|e| match &e.detail {
                Some(d) if !d.is_null() => format!("{}: {} ({d})", e.code, e.message),
                _ => format!("{}: {}", e.code, e.message),
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    let mut short: String = text.chars().take(300).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

async fn status_error(ep: &Endpoint, url: &str, mut resp: Response) -> Error {
    let status = resp.status();
    let body = error_body(&mut resp).await;
    let hint = match status {
        StatusCode::UNAUTHORIZED if ep.creds.is_some() => format!(" (credentials for {} rejected)", ep.host),
        StatusCode::UNAUTHORIZED => format!(" (no credentials configured for {})", ep.host),
        _ => String::new(),
    };
    Error::Registry(format!("{url}: {status}{hint}: {body}"))
}

/// `Bearer realm="...",service="...",scope="..."` → scheme and parameters (quoted strings
/// unescaped, keys lower-cased).
pub(crate) fn parse_challenge(header: &str) -> Option<(String, HashMap<String, String>)> {
    let header = header.trim();
    let (scheme, rest) = match header.find(char::is_whitespace) {
        Some(i) => (&header[..i], header[i..].trim_start()),
        None => (header, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') {
            return None;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => value.push(chars.next()?),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        params.insert(key.trim().to_ascii_lowercase(), value);
    }
    Some((scheme.to_string(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(s, "Bearer");
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/busybox:pull");
        let (s, p) = parse_challenge(r#"Basic realm="basic-realm""#).unwrap();
        assert_eq!((s.as_str(), p["realm"].as_str()), ("Basic", "basic-realm"));
        let (_, p) = parse_challenge(r#"Bearer Realm=http://x/t , error="insufficient_scope", scope="a:b:pull,push""#).unwrap();
        assert_eq!(p["realm"], "http://x/t");
        assert_eq!(p["scope"], "a:b:pull,push");
        let (_, p) = parse_challenge(r#"Bearer realm="a\"b""#).unwrap();
        assert_eq!(p["realm"], "a\"b");
        assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_none());
        assert!(parse_challenge("").is_none());
    }

    #[test]
    fn endpoints() {
        assert_eq!(mirror_api("http://127.0.0.1:5000").unwrap(), ("http://127.0.0.1:5000/v2".into(), "127.0.0.1:5000".into()));
        assert_eq!(mirror_api("https://m.io/v2/").unwrap().0, "https://m.io/v2");
        assert_eq!(mirror_api("m.io:443").unwrap().0, "https://m.io:443/v2");
        assert_eq!(mirror_api("https://m.io:443").unwrap().1, "m.io:443", "a port as written keys registries.yaml configs");
        assert_eq!(mirror_api("https://m.io").unwrap().1, "m.io");
        assert_eq!(mirror_api("http://u:p@m.io/v2").unwrap().1, "m.io");
        assert_eq!(mirror_api("https://[::1]:443/").unwrap().1, "[::1]:443");
        assert_eq!(mirror_api("https://m.io/prefix/v2/hub").unwrap().0, "https://m.io/prefix/v2/hub");
        assert!(mirror_api("ftp://m.io").is_err());
        assert_eq!(upstream_api("docker.io").0, "https://registry-1.docker.io/v2");
        assert_eq!(upstream_api("localhost:5000").0, "http://localhost:5000/v2");
        assert_eq!(upstream_api("127.0.0.1:5000").0, "http://127.0.0.1:5000/v2");
        assert_eq!(upstream_api("quay.io").0, "https://quay.io/v2");
    }

    #[test]
    fn error_bodies() {
        let b = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]}"#;
        assert_eq!(format_error_body(b), r#"MANIFEST_UNKNOWN: manifest unknown ({"Tag":"nope"})"#);
        assert_eq!(format_error_body(b"  plain text\n"), "plain text");
        assert_eq!(format_error_body(b""), "(empty body)");
    }

    #[test]
    fn session_endpoints_and_credentials() {
        let registries: RegistriesConfig = serde_yaml::from_str(
            r#"
mirrors:
  docker.io:
    endpoint: ["http://127.0.0.1:5000", "bad://x"]
configs:
  "127.0.0.1:5000":
    auth: {username: m, password: mp}
"#,
        )
        .unwrap();
        let auths = vec![RegistryAuth { registry: "https://index.docker.io/v1/".into(), username: "hub".into(), password: "hp".into() }];
        let r = Reference::parse("busybox").unwrap();
        let s = Session::new(&Clients::default(), &registries, &r, &auths).unwrap();
        let eps: Vec<(&str, &str)> =
            s.endpoints.iter().map(|e| (e.api.as_str(), e.creds.as_ref().map_or("", |c| c.username.as_str()))).collect();
        assert_eq!(eps, vec![("http://127.0.0.1:5000/v2", "m"), ("https://registry-1.docker.io/v2", "hub")]);
        assert_eq!(s.order(1).collect::<Vec<_>>(), vec![1, 0]);
    }
}
