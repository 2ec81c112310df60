//! The agent's client of the Kubernetes API: JSON verbs with the server's Status turned into
//! errors, and watches as streams of events (a reflector relists on 410 Gone).

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Kube {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// One event of a watch.
#[derive(Debug, Clone)]
pub enum Event {
    Added(Value),
    Modified(Value),
    Deleted(Value),
    /// The whole set as of a (re)list: objects not in it are gone.
    Resync(Vec<Value>),
}

impl Kube {
    pub fn new(base: &str, token: &str, ca_pem: &[u8]) -> Result<Kube> {
        let ca = reqwest::Certificate::from_pem(ca_pem).map_err(|e| Error::Config(format!("the cluster CA is not a PEM certificate: {e}")))?;
        let http = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .use_rustls_tls()
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(3))
            .http2_keep_alive_interval(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Config(format!("building the API client: {e}")))?;
        Ok(Kube { http, base: base.trim_end_matches('/').to_string(), token: token.to_string() })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<(&str, Vec<u8>)>) -> Result<Value> {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&self.token).timeout(Duration::from_secs(30));
        if let Some((ct, bytes)) = body {
            req = req.header("content-type", ct).body(bytes);
        }
        let resp = req.send().await.map_err(|source| Error::Http { path: path.to_string(), source })?;
        let code = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|source| Error::Http { path: path.to_string(), source })?;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&code) {
            return Ok(v);
        }
        Err(Error::Api {
            method: method.to_string(),
            path: path.to_string(),
            code,
            reason: v["reason"].as_str().unwrap_or("").to_string(),
            message: v["message"].as_str().map(String::from).unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned()),
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// GET that maps 404 to None.
    pub async fn get_opt(&self, path: &str) -> Result<Option<Value>> {
        match self.get(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(reqwest::Method::POST, path, Some(("application/json", serde_json::to_vec(body).expect("json")))).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(reqwest::Method::PUT, path, Some(("application/json", serde_json::to_vec(body).expect("json")))).await
    }

    pub async fn merge_patch(&self, path: &str, patch: &Value) -> Result<Value> {
        self.send(reqwest::Method::PATCH, path, Some(("application/merge-patch+json", serde_json::to_vec(patch).expect("json")))).await
    }

    pub async fn strategic_patch(&self, path: &str, patch: &Value) -> Result<Value> {
        self.send(reqwest::Method::PATCH, path, Some(("application/strategic-merge-patch+json", serde_json::to_vec(patch).expect("json")))).await
    }

    pub async fn delete(&self, path: &str, options: &Value) -> Result<Value> {
        self.send(reqwest::Method::DELETE, path, Some(("application/json", serde_json::to_vec(options).expect("json")))).await
    }

    /// Follows a collection (`/api/v1/pods?fieldSelector=...`): a list, then a watch from its
    /// revision, relisting (as a `Resync`) when the watch ends or falls off compacted history.
    /// Ends when the receiver is dropped.
    pub fn reflect(&self, path: &str) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(1024);
        let (kube, path) = (self.clone(), path.to_string());
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                match kube.list_then_watch(&path, &tx).await {
                    Ok(()) => backoff = Duration::from_millis(200),
                    Err(e) => {
                        if tx.is_closed() {
                            return;
                        }
                        tracing::debug!(path = %path, error = %e, "watch restarting");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
                if tx.is_closed() {
                    return;
                }
            }
        });
        rx
    }

    async fn list_then_watch(&self, path: &str, tx: &mpsc::Sender<Event>) -> Result<()> {
        let list = self.get(path).await?;
        let mut rv = list.pointer("/metadata/resourceVersion").and_then(|v| v.as_str()).unwrap_or("0").to_string();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if tx.send(Event::Resync(items)).await.is_err() {
            return Ok(());
        }
        let sep = if path.contains('?') { '&' } else { '?' };
        loop {
            let url = format!("{}{path}{sep}watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=300", self.base);
            let resp = self.http.get(url).bearer_auth(&self.token).send().await.map_err(|source| Error::Http { path: path.to_string(), source })?;
            if !resp.status().is_success() {
                return Err(Error::Api { method: "WATCH".into(), path: path.into(), code: resp.status().as_u16(), reason: String::new(), message: "watch refused".into() });
            }
            let mut stream = resp.bytes_stream();
            let mut buf = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|source| Error::Http { path: path.to_string(), source })?;
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let Ok(ev) = serde_json::from_slice::<Value>(&line) else { continue };
                    let obj = ev["object"].clone();
                    if let Some(r) = obj.pointer("/metadata/resourceVersion").and_then(|v| v.as_str()) {
                        rv = r.to_string();
                    }
                    let out = match ev["type"].as_str() {
                        Some("ADDED") => Event::Added(obj),
                        Some("MODIFIED") => Event::Modified(obj),
                        Some("DELETED") => Event::Deleted(obj),
                        Some("ERROR") => {
                            // 410 Gone (compacted) or anything else: relist.
                            return Err(Error::Api { method: "WATCH".into(), path: path.into(), code: obj["code"].as_u64().unwrap_or(500) as u16, reason: obj["reason"].as_str().unwrap_or("").into(), message: obj["message"].as_str().unwrap_or("").into() });
                        }
                        _ => continue,
                    };
                    if tx.send(out).await.is_err() {
                        return Ok(());
                    }
                }
            }
            // The server ended the watch (timeoutSeconds): resume from the last revision.
        }
    }

    /// Records an Event about an object (best effort, like kubelet's recorder).
    pub async fn event(&self, involved: &Value, type_: &str, reason: &str, message: &str, component_host: &str) {
        let ns = involved.pointer("/metadata/namespace").and_then(|v| v.as_str()).unwrap_or("default").to_string();
        let now = now_rfc3339();
        let name = involved.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or("");
        let ev = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": format!("{name}."), "namespace": ns},
            "involvedObject": {
                "apiVersion": involved["apiVersion"], "kind": involved["kind"], "name": name, "namespace": involved.pointer("/metadata/namespace"),
                "uid": involved.pointer("/metadata/uid"), "resourceVersion": involved.pointer("/metadata/resourceVersion"),
            },
            "reason": reason, "message": message, "type": type_,
            "source": {"component": "kubelet", "host": component_host},
            "reportingComponent": "kubelet", "reportingInstance": component_host,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        });
        if let Err(e) = self.post(&format!("/api/v1/namespaces/{ns}/events"), &ev).await {
            tracing::debug!(error = %e, reason, "could not record an event");
        }
    }

    /// Whether the API server accepts this bearer token (the agent's server authenticates the
    /// API server's proxied requests this way, like a webhook token authenticator).
    pub async fn token_is_valid(&self, token: &str) -> bool {
        let r = self.http.get(format!("{}/api", self.base)).bearer_auth(token).timeout(Duration::from_secs(10)).send().await;
        matches!(r, Ok(resp) if resp.status().is_success())
    }
}

pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
