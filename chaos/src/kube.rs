//! A minimal Kubernetes API client (HTTPS + bearer token from an rkube admin kubeconfig), for
//! the simulated nodes, the benchmarks and the chaos workloads.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use serde_json::Value;

#[derive(Clone)]
pub struct KubeClient {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

/// The outcome of a request: HTTP status and JSON body (a Status on failures).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl KubeClient {
    pub fn from_kubeconfig(path: &Path) -> Result<KubeClient> {
        use base64::Engine;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let field = |name: &str| -> Result<String> {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")).map(|s| s.trim().to_string()))
                .with_context(|| format!("{name} not in {}", path.display()))
        };
        let ca = base64::engine::general_purpose::STANDARD.decode(field("certificate-authority-data")?)?;
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(2))
            .build()?;
        Ok(KubeClient { http, base: field("server")?, token: field("token")? })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Reply> {
        let r = req.bearer_auth(&self.token).timeout(Duration::from_secs(30)).send().await?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    pub async fn get(&self, path: &str) -> Result<Reply> {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Reply> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Reply> {
        self.send(self.http.put(format!("{}{path}", self.base)).json(body)).await
    }

    /// A JSON merge patch.
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Reply> {
        self.send(
            self.http
                .patch(format!("{}{path}", self.base))
                .header("content-type", "application/merge-patch+json")
                .body(serde_json::to_vec(body)?),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Result<Reply> {
        self.send(self.http.delete(format!("{}{path}", self.base))).await
    }

    /// Streams watch events (`{"type", "object"}`) of a list path from `rv`; the channel closes
    /// when the stream ends.
    pub async fn watch(&self, path: &str, rv: &str) -> Result<tokio::sync::mpsc::Receiver<Value>> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{}{path}{sep}watch=1&resourceVersion={rv}&allowWatchBookmarks=true", self.base);
        let resp = self.http.get(url).bearer_auth(&self.token).send().await?;
        if !resp.status().is_success() {
            bail!("watch {path}: {}", resp.status());
        }
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        let mut stream = resp.bytes_stream();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Some(Ok(chunk)) = stream.next().await {
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    if let Ok(v) = serde_json::from_slice::<Value>(&line)
                        && tx.send(v).await.is_err()
                    {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }
}
