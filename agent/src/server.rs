//! The agent's HTTPS server, what kubelet's port 10250 is: the API server proxies
//! `kubectl logs` and `kubectl exec` here, and reads usage for metrics.k8s.io.
//!
//!   GET /healthz
//!   GET /containerLogs/{namespace}/{pod}/{container}?follow&previous&tailLines&sinceSeconds&sinceTime&timestamps&limitBytes
//!   GET /exec/{namespace}/{pod}/{container}?command=..&stdin&stdout&stderr&tty   (WebSocket,
//!       v5.channel.k8s.io / v4.channel.k8s.io: kubectl's remote-command protocol, relayed
//!       unchanged by the API server)
//!   GET /stats/summary
//!
//! Every request but /healthz needs a bearer token the API server accepts (like kubelet's
//! webhook token authentication). The serving certificate is self-signed per node for now.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Agent;
use crate::error::{Error, Result};
use crate::pods::{Live, LiveContainer};

/// Tokens the API server accepted recently (checked again after this long).
const TOKEN_CACHE: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct Ctx {
    agent: Arc<Agent>,
    tokens: Arc<Mutex<HashMap<String, Instant>>>,
}

/// Starts the server on the configured address.
pub async fn serve(agent: Arc<Agent>) -> Result<tokio::task::JoinHandle<()>> {
    let tls = self_signed(&agent.config.node_name, agent.config.node_ip)?;
    let listener = tokio::net::TcpListener::bind(agent.config.listen)
        .await
        .map_err(|e| Error::io(format!("listening on {} for the agent's server (pick another with --listen)", agent.config.listen), e))?;
    let ctx = Ctx { agent, tokens: Arc::new(Mutex::new(HashMap::new())) };
    let app = router(ctx);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    Ok(tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                if let Err(e) = builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service).await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
    }))
}

fn router(ctx: Ctx) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/containerLogs/{namespace}/{pod}/{container}", get(logs))
        .route("/exec/{namespace}/{pod}/{container}", get(exec))
        .route("/stats/summary", get(summary))
        .with_state(ctx)
}

fn self_signed(node: &str, ip: std::net::IpAddr) -> Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let mut names = vec![node.to_string(), "localhost".to_string()];
    names.push(ip.to_string());
    let cert = rcgen::generate_simple_self_signed(names).map_err(|e| Error::Config(format!("making the agent's serving certificate: {e}")))?;
    let der = CertificateDer::from(cert.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(vec![der], key))
        .map_err(|e| Error::Config(format!("the agent's TLS configuration: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn status(code: u16, reason: &str, message: impl Into<String>) -> Response {
    let message = message.into();
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code});
    (StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn authorize(ctx: &Ctx, headers: &HeaderMap) -> std::result::Result<(), Response> {
    let Some(token) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim) else {
        return Err(status(401, "Unauthorized", "a bearer token is required"));
    };
    if let Some(t) = ctx.tokens.lock().expect("token cache").get(token) {
        if t.elapsed() < TOKEN_CACHE {
            return Ok(());
        }
    }
    if ctx.agent.kube.token_is_valid(token).await {
        ctx.tokens.lock().expect("token cache").insert(token.to_string(), Instant::now());
        Ok(())
    } else {
        Err(status(401, "Unauthorized", "the API server does not accept this token"))
    }
}

fn query(raw: &Option<String>) -> Vec<(String, String)> {
    raw.as_deref().map(|q| url_decode_pairs(q)).unwrap_or_default()
}

fn url_decode_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn flag(q: &[(String, String)], name: &str) -> bool {
    q.iter().any(|(k, v)| k == name && (v.is_empty() || v == "true" || v == "1"))
}

fn value<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Authenticates the caller and finds the container a logs/exec request names.
async fn container_of(ctx: &Ctx, headers: &HeaderMap, namespace: &str, pod: &str, container: &str) -> std::result::Result<(Arc<Live>, LiveContainer), Response> {
    authorize(ctx, headers).await?;
    let live = ctx.agent.pods.by_name(namespace, pod).ok_or_else(|| status(404, "NotFound", format!("pod {namespace}/{pod} is not running on node {}", ctx.agent.config.node_name)))?;
    let lc = live.containers.lock().expect("live lock").get(container).cloned();
    let lc = lc.ok_or_else(|| status(400, "BadRequest", format!("container {container:?} in pod {pod:?} is waiting to start or does not exist")))?;
    Ok((live, lc))
}

async fn logs(State(ctx): State<Ctx>, Path((namespace, pod, container)): Path<(String, String, String)>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let (live, lc) = match container_of(&ctx, &headers, &namespace, &pod, &container).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let q = query(&raw);
    let previous = flag(&q, "previous");
    let attempt = if previous {
        if lc.attempt == 0 {
            return status(400, "BadRequest", format!("previous terminated container {container:?} in pod {pod:?} not found"));
        }
        lc.attempt - 1
    } else {
        lc.attempt
    };
    let path = crate::pods::log_path(&ctx.agent.config.pods_dir(), &live.uid, &container, attempt);
    if !path.exists() {
        return status(400, "BadRequest", format!("container {container:?} in pod {pod:?} has no logs yet"));
    }
    let since = value(&q, "sinceSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(|s| SystemTime::now() - Duration::from_secs(s))
        .or_else(|| value(&q, "sinceTime").and_then(|t| t.parse::<jiff::Timestamp>().ok()).map(SystemTime::from));
    let opts = runtime::logs::LogOptions {
        follow: flag(&q, "follow") && !previous,
        tail_lines: value(&q, "tailLines").and_then(|s| s.parse().ok()),
        since,
        timestamps: flag(&q, "timestamps"),
        limit_bytes: value(&q, "limitBytes").and_then(|s| s.parse().ok()),
    };
    // A follow ends when the container instance exits.
    let stop = {
        let rt = ctx.agent.runtime.clone();
        let id = lc.current.clone().filter(|_| lc.running && !previous);
        async move {
            match id {
                Some(id) => {
                    let _ = rt.wait(&id).await;
                }
                None => std::future::pending::<()>().await,
            }
        }
    };
    let stream = runtime::logs::read(&path, opts, stop).map(|r| r.map_err(std::io::Error::other));
    Response::builder().header(header::CONTENT_TYPE, "text/plain").body(Body::from_stream(stream)).expect("response")
}

async fn summary(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&ctx, &headers).await {
        return r;
    }
    let body = ctx.agent.usage.summary(&ctx.agent.config.node_name);
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Stream ids of the remote-command protocol.
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5: "this stream is closed" (the stream id follows).
const CLOSE: u8 = 255;

async fn exec(State(ctx): State<Ctx>, Path((namespace, pod, container)): Path<(String, String, String)>, RawQuery(raw): RawQuery, headers: HeaderMap, req: axum::extract::Request) -> Response {
    let (_, lc) = match container_of(&ctx, &headers, &namespace, &pod, &container).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let q = query(&raw);
    let command: Vec<String> = q.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.clone()).collect();
    if command.is_empty() {
        return status(400, "BadRequest", "you must specify at least one command for the container");
    }
    let Some(id) = lc.current.filter(|_| lc.running) else {
        return status(400, "BadRequest", format!("container {container} is not running"));
    };
    let tty = flag(&q, "tty");
    let want_stdin = flag(&q, "stdin");
    let (mut parts, _body) = req.into_parts();
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws,
        Err(_) => return status(400, "BadRequest", "exec needs a WebSocket upgrade (v5.channel.k8s.io or v4.channel.k8s.io)"),
    };
    let ws = ws.protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"]);
    let v5 = ws.selected_protocol().and_then(|p| p.to_str().ok()) == Some("v5.channel.k8s.io");
    let request = runtime::exec::ExecRequest { command, tty, stdin: want_stdin, env: Vec::new() };
    let rt = ctx.agent.runtime.clone();
    ws.on_upgrade(move |socket| async move {
        let session = rt.exec(&id, request).await;
        relay(socket, session, v5).await;
    })
}

fn frame(stream: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(stream);
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

/// The status kubectl expects on the error stream when the command ends.
pub fn exit_status(code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {}, "status": "Failure",
        "message": format!("command terminated with non-zero exit code: error executing command, exit status {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

async fn relay(socket: WebSocket, session: runtime::Result<runtime::exec::ExecSession>, v5: bool) {
    let (mut sink, mut source) = socket.split();
    let mut session = match session {
        Ok(s) => s,
        Err(e) => {
            let st = json!({"metadata": {}, "status": "Failure", "message": e.to_string(), "reason": "InternalError"});
            let _ = sink.send(frame(ERROR, st.to_string().as_bytes())).await;
            let _ = sink.send(normal_close()).await;
            return;
        }
    };
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Message>(64);
    let mut pumps = Vec::new();
    for (stream, reader) in [(STDOUT, session.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>)), (STDERR, session.stderr.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>))] {
        let Some(mut reader) = reader else { continue };
        let tx = out_tx.clone();
        pumps.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.send(frame(stream, &buf[..n])).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }));
    }
    drop(out_tx);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
        sink
    });
    let mut stdin = session.stdin.take();
    let code = loop {
        tokio::select! {
            msg = source.next() => match msg {
                Some(Ok(Message::Binary(b))) if !b.is_empty() => match b[0] {
                    STDIN => {
                        if let Some(w) = stdin.as_mut() {
                            if w.write_all(&b[1..]).await.is_err() {
                                stdin = None;
                            }
                        }
                    }
                    RESIZE => {
                        if let Ok(v) = serde_json::from_slice::<Value>(&b[1..]) {
                            let (w, h) = (v["Width"].as_u64().unwrap_or(80) as u16, v["Height"].as_u64().unwrap_or(24) as u16);
                            let _ = session.resize(w, h).await;
                        }
                    }
                    CLOSE if v5 && b.get(1) == Some(&STDIN) => stdin = None,
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    // The client went away: the process goes too.
                    let _ = session.kill().await;
                    break None;
                }
                _ => {}
            },
            code = session.wait() => break Some(code),
        }
    };
    for p in pumps {
        let _ = p.await;
    }
    let Ok(mut sink) = writer.await else { return };
    if let Some(code) = code {
        let st = match code {
            Ok(c) => exit_status(c),
            Err(e) => json!({"metadata": {}, "status": "Failure", "message": e.to_string(), "reason": "InternalError"}),
        };
        let _ = sink.send(frame(ERROR, st.to_string().as_bytes())).await;
    }
    // A close without a status code (1005) makes kubectl report "error reading from error
    // stream"; 1000 is the normal end.
    let _ = sink.send(normal_close()).await;
}

fn normal_close() -> Message {
    Message::Close(Some(axum::extract::ws::CloseFrame { code: axum::extract::ws::close_code::NORMAL, reason: "".into() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = url_decode_pairs("command=sh&command=-c&command=echo%20hi%3B+exit%202&stdin=true&tty=1&x=%zz");
        let cmds: Vec<&str> = q.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.as_str()).collect();
        assert_eq!(cmds, vec!["sh", "-c", "echo hi; exit 2"]);
        assert!(flag(&q, "stdin") && flag(&q, "tty") && !flag(&q, "stdout"));
        assert_eq!(value(&q, "x"), Some("%zz"));
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(exit_status(0)["status"], "Success");
        let f = exit_status(3);
        assert_eq!(f["reason"], "NonZeroExitCode");
        assert_eq!(f["details"]["causes"][0]["message"], "3");
    }
}
