//! A client of the store API that classifies failures the way a history checker needs them:
//! `Unavailable` (certainly not applied), `Unknown` (may or may not have been applied),
//! `Rejected` (the server refused the input).

use std::time::Duration;

use futures::StreamExt;
use raft::NodeStatus;
use raft::api::*;

#[derive(Debug, Clone)]
pub enum ClientError {
    /// The request certainly had no effect (connection refused, no leader before proposing).
    Unavailable(String),
    /// The request may or may not have taken effect.
    Unknown(String),
    /// The history the caller asked for is compacted (HTTP 410).
    Gone(String),
    /// The server refused the request as invalid.
    Rejected(u16, String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Unavailable(m) => write!(f, "unavailable: {m}"),
            ClientError::Unknown(m) => write!(f, "unknown outcome: {m}"),
            ClientError::Gone(m) => write!(f, "gone: {m}"),
            ClientError::Rejected(c, m) => write!(f, "rejected ({c}): {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

#[derive(Clone)]
pub struct StoreClient {
    http: reqwest::Client,
    pub base: String,
    timeout: Duration,
}

impl StoreClient {
    pub fn new(base: impl Into<String>) -> StoreClient {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(500))
            .pool_max_idle_per_host(512)
            .tcp_nodelay(true)
            .build()
            .expect("http client");
        StoreClient { http, base: base.into().trim_end_matches('/').to_string(), timeout: Duration::from_secs(5) }
    }

    pub fn with_timeout(mut self, t: Duration) -> StoreClient {
        self.timeout = t;
        self
    }

    /// Shares one connection pool between clients of several members.
    pub fn with_http(mut self, http: reqwest::Client) -> StoreClient {
        self.http = http;
        self
    }

    fn send_error(&self, e: reqwest::Error) -> ClientError {
        if e.is_connect() { ClientError::Unavailable(e.to_string()) } else { ClientError::Unknown(e.to_string()) }
    }

    async fn decode<T: serde::de::DeserializeOwned>(&self, resp: reqwest::Response, write: bool) -> Result<T, ClientError> {
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| ClientError::Unknown(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| ClientError::Unknown(format!("bad body: {e}")));
        }
        let msg = String::from_utf8_lossy(&body).into_owned();
        Err(match status.as_u16() {
            410 => ClientError::Gone(msg),
            // 503 from a write means no proposal was accepted; from a read, nothing to undo anyway.
            503 => ClientError::Unavailable(msg),
            504 => ClientError::Unknown(msg),
            c if (400..500).contains(&c) => ClientError::Rejected(c, msg),
            _ if write => ClientError::Unknown(msg),
            _ => ClientError::Unavailable(msg),
        })
    }

    pub async fn txn(&self, ops: Vec<ApiOp>, atomic: bool) -> Result<TxnResponse, ClientError> {
        let resp = self
            .http
            .post(format!("{}/store/v1/txn", self.base))
            .timeout(self.timeout)
            .json(&TxnRequest { ops, atomic })
            .send()
            .await
            .map_err(|e| self.send_error(e))?;
        self.decode(resp, true).await
    }

    pub async fn put(&self, key: &str, value: &str) -> Result<u64, ClientError> {
        Ok(self.txn(vec![ApiOp::Put { key: key.into(), value: value.into() }], false).await?.rev)
    }

    pub async fn get(&self, key: &str, serializable: bool) -> Result<GetResponse, ClientError> {
        let mut q = vec![("key", key.to_string())];
        if serializable {
            q.push(("consistency", "serializable".into()));
        }
        let resp = self
            .http
            .get(format!("{}/store/v1/get", self.base))
            .query(&q)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.send_error(e))?;
        self.decode(resp, false).await
    }

    /// Lists every key under `prefix`, page by page, all pages at the first page's revision.
    pub async fn list_all(&self, prefix: &str, serializable: bool, page: usize) -> Result<ListResponse, ClientError> {
        let mut items = Vec::new();
        let mut rev = None;
        let mut after: Option<String> = None;
        loop {
            let mut q = vec![("prefix", prefix.to_string()), ("limit", page.to_string())];
            if serializable {
                q.push(("consistency", "serializable".into()));
            }
            if let Some(r) = rev {
                q.push(("rev", format!("{r}")));
            }
            if let Some(a) = &after {
                q.push(("after", a.clone()));
            }
            let resp = self
                .http
                .get(format!("{}/store/v1/list", self.base))
                .query(&q)
                .timeout(self.timeout)
                .send()
                .await
                .map_err(|e| self.send_error(e))?;
            let page_resp: ListResponse = self.decode(resp, false).await?;
            rev = Some(page_resp.rev);
            after = page_resp.items.last().map(|kv| kv.key.clone());
            items.extend(page_resp.items);
            if !page_resp.more {
                return Ok(ListResponse { rev: rev.unwrap_or(0), items, more: false });
            }
        }
    }

    pub async fn status(&self) -> Result<NodeStatus, ClientError> {
        let resp = self
            .http
            .get(format!("{}/cluster/v1/status", self.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| self.send_error(e))?;
        self.decode(resp, false).await
    }

    /// Opens a watch; events arrive on the returned channel until the stream ends (the server
    /// went away or the watch failed), which closes the channel after an optional error line.
    pub async fn watch(&self, prefix: &str, after: Option<u64>) -> Result<tokio::sync::mpsc::Receiver<Result<ApiEvent, String>>, ClientError> {
        let mut q = vec![("prefix", prefix.to_string())];
        if let Some(a) = after {
            q.push(("after", a.to_string()));
        }
        let resp = self
            .http
            .get(format!("{}/store/v1/watch", self.base))
            .query(&q)
            .send()
            .await
            .map_err(|e| self.send_error(e))?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            return Err(if status == 410 { ClientError::Gone(body) } else { ClientError::Rejected(status, body) });
        }
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let mut stream = resp.bytes_stream();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Some(chunk) = stream.next().await {
                let Ok(chunk) = chunk else { return };
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let item = match serde_json::from_slice::<ApiEvent>(&line) {
                        Ok(ev) => Ok(ev),
                        Err(_) => Err(String::from_utf8_lossy(&line).trim().to_string()),
                    };
                    if tx.send(item).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }
}
