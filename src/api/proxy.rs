//! `pods/log`, `pods/exec` and `pods/attach`: the API server finds the pod's node and relays
//! the request to that node's agent (`status.daemonEndpoints.kubeletEndpoint.Port` on the
//! Node's InternalIP), authenticating with a cluster token the agent checks back with us.
//! Logs are streamed through; exec is a WebSocket (kubectl's v5/v4.channel.k8s.io) relayed
//! byte for byte after both sides have upgraded, so the agent speaks the protocol to kubectl.
//!
//! Agents serve self-signed certificates for now, so their identity is not verified (like
//! kubelet without `--kubelet-certificate-authority`); the channel is encrypted and the agent
//! authenticates us.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use apimachinery::status::ApiError;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::Api;
use super::objects::ReadAt;
use super::request::RequestInfo;

/// Headers of the upgrade handshake relayed as they are.
const UPGRADE_HEADERS: [&str; 5] = ["upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol"];

/// The client for agents (their serving certificates are not verified; see the module doc).
pub fn agent_client() -> &'static reqwest::Client {
    static C: OnceLock<reqwest::Client> = OnceLock::new();
    C.get_or_init(|| {
        reqwest::Client::builder()
            .use_rustls_tls()
            .danger_accept_invalid_certs(true)
            .connect_timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .expect("building the agent client")
    })
}

fn tls_connector() -> &'static tokio_rustls::TlsConnector {
    static C: OnceLock<tokio_rustls::TlsConnector> = OnceLock::new();
    C.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("rustls protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify))
            .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    })
}

/// Accepts any certificate from an agent (see the module doc).
#[derive(Debug)]
struct NoVerify;

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(&self, _m: &[u8], _c: &rustls::pki_types::CertificateDer<'_>, _d: &rustls::DigitallySignedStruct) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(&self, _m: &[u8], _c: &rustls::pki_types::CertificateDer<'_>, _d: &rustls::DigitallySignedStruct) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider().signature_verification_algorithms.supported_schemes()
    }
}

/// Where the pod's agent is, which container is meant, and the token to present.
struct Target {
    addr: String,
    container: String,
    token: String,
}

async fn target(api: &Arc<Api>, ri: &RequestInfo, q: &HashMap<String, String>) -> Result<Target, ApiError> {
    let name = ri.name.as_deref().unwrap_or("");
    let ns = ri.namespace.as_deref();
    let pod = api.objects.get(ri.info, ns, name, ReadAt::Latest).await?;
    let node = pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty());
    let Some(node) = node else {
        return Err(ApiError::BadRequest(format!("pod {name} does not have a host assigned")));
    };
    let names: Vec<&str> = pod.pointer("/spec/containers").and_then(Value::as_array).into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
    let inits: Vec<&str> = pod.pointer("/spec/initContainers").and_then(Value::as_array).into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
    let container = match q.get("container").filter(|c| !c.is_empty()) {
        Some(c) if names.contains(&c.as_str()) || inits.contains(&c.as_str()) => c.clone(),
        Some(c) => return Err(ApiError::BadRequest(format!("container {c} is not valid for pod {name}"))),
        None if names.len() == 1 => names[0].to_string(),
        None => return Err(ApiError::BadRequest(format!("a container name must be specified for pod {name}, choose one of: [{}]", names.join(" ")))),
    };
    let nodes = apimachinery::registry::find("", "v1", "nodes").expect("nodes are registered");
    let n = match api.objects.get(nodes, None, node, ReadAt::Latest).await {
        Ok(n) => n,
        Err(ApiError::NotFound { .. }) => return Err(ApiError::ServiceUnavailable(format!("pods/{}: node {node} of pod {name} does not exist, so there is no agent to reach", ri.subresource.as_deref().unwrap_or("")))),
        Err(e) => return Err(e),
    };
    let Some(addr) = agent_addr(&n) else {
        return Err(ApiError::ServiceUnavailable(format!(
            "pods/{}: node {node} runs no agent this server can reach (no InternalIP address or agent port in its status); is `rkube agent` running there?",
            ri.subresource.as_deref().unwrap_or("")
        )));
    };
    let token = cluster_token(api)?;
    Ok(Target { addr, container, token })
}

/// `host:port` of a Node's agent: its InternalIP and `daemonEndpoints.kubeletEndpoint.Port`.
pub fn agent_addr(node: &Value) -> Option<String> {
    let port = node.pointer("/status/daemonEndpoints/kubeletEndpoint/Port").and_then(Value::as_u64).filter(|p| *p > 0)?;
    let ip = node.pointer("/status/addresses").and_then(Value::as_array).into_iter().flatten().find(|a| a["type"] == "InternalIP").and_then(|a| a["address"].as_str())?;
    Some(if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") })
}

/// The token the API server presents to agents (they check it back with the API).
pub fn cluster_token(api: &Arc<Api>) -> Result<String, ApiError> {
    super::bootstrap::load_tokens(&api.node.store)
        .ok()
        .and_then(|t| t.into_iter().next())
        .ok_or_else(|| ApiError::Internal("the cluster has no token to present to agents".into()))
}

fn forward_query(raw: Option<&str>) -> String {
    raw.unwrap_or("").split('&').filter(|p| !p.is_empty() && !p.starts_with("container=")).collect::<Vec<_>>().join("&")
}

fn unreachable(addr: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::ServiceUnavailable(format!("the node agent at {addr} cannot be reached: {e}"))
}

/// Serves `pods/log`, `pods/exec` and `pods/attach`.
pub async fn pod_subresource(api: &Arc<Api>, ri: &RequestInfo, parts: &mut Parts, q: &HashMap<String, String>) -> Result<Response, ApiError> {
    let sub = ri.subresource.clone().unwrap_or_default();
    let t = target(api, ri, q).await?;
    let ns = ri.namespace.as_deref().unwrap_or("default");
    let pod = ri.name.as_deref().unwrap_or("");
    let fq = forward_query(parts.uri.query());
    match sub.as_str() {
        "log" => {
            let url = format!("https://{}/containerLogs/{ns}/{pod}/{}?{fq}", t.addr, t.container);
            let resp = agent_client().get(&url).bearer_auth(&t.token).send().await.map_err(|e| unreachable(&t.addr, e))?;
            let code = resp.status().as_u16();
            let ct = resp.headers().get(header::CONTENT_TYPE).cloned().unwrap_or(HeaderValue::from_static("text/plain"));
            let body = Body::from_stream(resp.bytes_stream());
            let mut out = (StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY), body).into_response();
            out.headers_mut().insert(header::CONTENT_TYPE, ct);
            Ok(out)
        }
        "exec" | "attach" => {
            if sub == "attach" {
                return Err(ApiError::BadRequest("pods/attach is not supported yet: use kubectl exec or kubectl logs -f".into()));
            }
            upgrade_proxy(parts, &format!("/exec/{ns}/{pod}/{}?{fq}", t.container), &t).await
        }
        other => Err(ApiError::NotFoundPath(format!("pods/{other} is not a subresource this server provides"))),
    }
}

async fn upgrade_proxy(parts: &mut Parts, path: &str, t: &Target) -> Result<Response, ApiError> {
    let wants_upgrade = parts.headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).map(|v| v.eq_ignore_ascii_case("websocket")).unwrap_or(false);
    if !wants_upgrade {
        return Err(ApiError::BadRequest(
            "pods/exec needs a WebSocket upgrade (v5.channel.k8s.io); SPDY is not supported: use kubectl 1.30 or newer".into(),
        ));
    }
    let Some(client_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return Err(ApiError::BadRequest("this connection cannot be upgraded (HTTP/2?): exec needs HTTP/1.1".into()));
    };
    let tcp = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(&t.addr))
        .await
        .map_err(|_| unreachable(&t.addr, "connect timed out"))?
        .map_err(|e| unreachable(&t.addr, e))?;
    let _ = tcp.set_nodelay(true);
    let host = t.addr.rsplit_once(':').map(|(h, _)| h.trim_matches(['[', ']'])).unwrap_or("agent").to_string();
    let server_name = rustls::pki_types::ServerName::try_from(host).map_err(|e| unreachable(&t.addr, e))?;
    let tls = tls_connector().connect(server_name, tcp).await.map_err(|e| unreachable(&t.addr, e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.map_err(|e| unreachable(&t.addr, e))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut req = Request::builder().method("GET").uri(path).header(header::HOST, t.addr.as_str()).header(header::AUTHORIZATION, format!("Bearer {}", t.token));
    for h in UPGRADE_HEADERS {
        for v in parts.headers.get_all(h) {
            req = req.header(h, v.clone());
        }
    }
    let req = req.body(http_body_util::Empty::<bytes::Bytes>::new()).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut resp = sender.send_request(req).await.map_err(|e| unreachable(&t.addr, e))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let code = resp.status();
        let headers = resp.headers().clone();
        let body = http_body_util::BodyExt::collect(resp.into_body()).await.map(|b| b.to_bytes()).unwrap_or_default();
        let mut out = (code, body).into_response();
        if let Some(ct) = headers.get(header::CONTENT_TYPE) {
            out.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
        }
        return Ok(out);
    }
    let agent_upgrade = hyper::upgrade::on(&mut resp);
    let mut out = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    let mut hm = HeaderMap::new();
    for (k, v) in resp.headers() {
        hm.append(k, v.clone());
    }
    for (k, v) in &hm {
        out = out.header(k, v);
    }
    tokio::spawn(async move {
        let (client, agent) = match tokio::join!(client_upgrade, agent_upgrade) {
            (Ok(c), Ok(a)) => (c, a),
            (c, a) => {
                tracing::debug!(client = c.is_ok(), agent = a.is_ok(), "exec upgrade failed");
                return;
            }
        };
        let mut client = hyper_util::rt::TokioIo::new(client);
        let mut agent = hyper_util::rt::TokioIo::new(agent);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut agent).await;
    });
    out.body(Body::empty()).map_err(|e| ApiError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_forwarding_drops_the_container() {
        assert_eq!(forward_query(Some("container=web&follow=true&tailLines=5")), "follow=true&tailLines=5");
        assert_eq!(forward_query(Some("command=sh&command=-c&container=c&stdin=true")), "command=sh&command=-c&stdin=true");
        assert_eq!(forward_query(None), "");
    }
}
