//! The Kubernetes API server every master runs: HTTPS (rustls), bearer-token authentication,
//! discovery and OpenAPI, and the resource verbs on the replicated store.

pub mod alloc;
pub mod bootstrap;
pub mod discovery;
pub mod meta;
pub mod metrics;
pub mod objects;
pub mod proxy;
pub mod request;
pub mod resource;
pub mod tls;
pub mod watch;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
use apimachinery::openapi::OpenApiDocs;
use apimachinery::status::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use raft::RaftNode;
use serde_json::{Value, json};

use self::alloc::ServiceNetwork;
use self::objects::Objects;
use self::request::{RequestInfo, Verb};

/// Largest request body accepted (Kubernetes: 3 MiB).
pub const MAX_BODY: usize = 3 << 20;

pub struct Api {
    pub node: Arc<RaftNode>,
    pub objects: Objects,
    pub net: ServiceNetwork,
    pub docs: OpenApiDocs,
    /// Bearer tokens accepted (loaded from the store).
    pub tokens: RwLock<Vec<String>>,
    /// This master's API URL, for discovery's serverAddressByClientCIDRs.
    pub url: String,
    /// Timings of the controllers this master runs while it leads.
    pub controller_config: controllers::Config,
}

impl Api {
    pub fn new(node: Arc<RaftNode>, net: ServiceNetwork, url: String, controller_config: controllers::Config) -> Arc<Api> {
        Arc::new(Api {
            objects: Objects { node: node.clone() },
            node,
            net,
            docs: apimachinery::openapi::build(),
            tokens: RwLock::new(Vec::new()),
            url,
            controller_config,
        })
    }

    pub fn router(self: &Arc<Self>) -> axum::Router {
        axum::Router::new().fallback(handle).with_state(self.clone())
    }

    fn authenticated(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")) else {
            return false;
        };
        let token = token.trim();
        if self.tokens.read().expect("tokens lock").iter().any(|t| t == token) {
            return true;
        }
        // A token issued since we last looked: check the store.
        match bootstrap::load_tokens(&self.node.store) {
            Ok(tokens) => {
                let ok = tokens.iter().any(|t| t == token);
                *self.tokens.write().expect("tokens lock") = tokens;
                ok
            }
            Err(_) => false,
        }
    }
}

fn json_response(code: u16, body: &Value, warnings: &[String]) -> Response {
    let bytes = serde_json::to_vec(body).expect("serializing a response");
    let mut resp = (StatusCode::from_u16(code).unwrap_or(StatusCode::OK), [(header::CONTENT_TYPE, "application/json")], bytes).into_response();
    for w in warnings {
        let value = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().append("warning", v);
        }
    }
    resp
}

pub fn error_response(e: &ApiError) -> Response {
    json_response(e.code(), &e.to_status(), &[])
}

/// What the client accepts, from `Accept`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wants {
    Json,
    Table,
}

fn negotiate(headers: &HeaderMap) -> Result<Wants, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.is_empty() {
        return Ok(Wants::Json);
    }
    let mut json_ok = false;
    for part in accept.split(',') {
        let part = part.trim();
        let media = part.split(';').next().unwrap_or("").trim();
        if part.contains("as=Table") && part.contains("g=meta.k8s.io") && (media == "application/json" || media == "*/*") {
            return Ok(Wants::Table);
        }
        if (media == "application/json" || media == "*/*" || media == "application/*") && !part.contains("as=") {
            json_ok = true;
        }
    }
    if json_ok {
        Ok(Wants::Json)
    } else {
        Err(ApiError::NotAcceptable(format!("only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io (got {accept:?})")))
    }
}

async fn read_body(body: Body) -> Result<bytes::Bytes, ApiError> {
    match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => Ok(b),
        Err(e) => {
            let msg = e.to_string();
            if msg.contains("length limit") {
                Err(ApiError::RequestEntityTooLarge(format!("the request body is larger than the limit of {MAX_BODY} bytes")))
            } else {
                Err(ApiError::BadRequest(format!("reading the request body: {msg}")))
            }
        }
    }
}

/// Decodes an object body: JSON, or Kubernetes' protobuf encoding (what kubectl's typed
/// commands and client-go's typed clients send for built-in types).
fn decode_object_body(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let media = ct.split(';').next().unwrap_or("").trim();
    match media {
        "application/json" | "" | "*/*" => resource::parse_body(bytes),
        apimachinery::protobuf::MEDIA_TYPE => {
            apimachinery::protobuf::decode_object(bytes).map_err(|e| ApiError::BadRequest(format!("the protobuf body does not decode: {e}")))
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/vnd.kubernetes.protobuf (got {other:?})"
        ))),
    }
}

async fn handle(State(api): State<Arc<Api>>, req: Request) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = match route(&api, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "api request");
    resp
}

async fn route(api: &Arc<Api>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let q = request::parse_query(parts.uri.query());
    match path.as_str() {
        "/healthz" | "/livez" | "/readyz" => return Ok((StatusCode::OK, "ok").into_response()),
        "/version" | "/version/" => return Ok(json_response(200, &discovery::version(), &[])),
        _ => {}
    }
    if !api.authenticated(&parts.headers) {
        return Err(ApiError::Unauthorized("Unauthorized: send the bearer token of your kubeconfig".into()));
    }
    // Read the body before any routing error: answering an upload before consuming it makes
    // some clients see a reset connection instead of the Status.
    let body = match parts.method {
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE => read_body(body).await?,
        _ => bytes::Bytes::new(),
    };
    let doc = match path.trim_end_matches('/') {
        "/api" => Some(discovery::core_versions(&api.url)),
        "/apis" => Some(discovery::group_list()),
        "/openapi/v2" => return Ok(raw_json(api.docs.v2.clone())),
        "/openapi/v3" => return Ok(raw_json(api.docs.v3_index.clone())),
        p if p.starts_with("/openapi/v3/") => {
            let gv = &p["/openapi/v3/".len()..];
            return match api.docs.v3.get(gv) {
                Some(d) => Ok(raw_json(d.clone())),
                None => Err(ApiError::NotFoundPath(format!("no OpenAPI document for {gv}"))),
            };
        }
        p => {
            let segs: Vec<&str> = p.trim_start_matches('/').split('/').collect();
            match segs.as_slice() {
                ["api", v] => Some(discovery::resource_list("", v).ok_or_else(|| ApiError::NotFoundPath(format!("no API version {v}")))?),
                ["apis", "metrics.k8s.io"] => Some({
                    let mut g = metrics::group();
                    g["kind"] = json!("APIGroup");
                    g["apiVersion"] = json!("v1");
                    g
                }),
                ["apis", "metrics.k8s.io", "v1beta1"] => Some(metrics::resource_list()),
                ["apis", "metrics.k8s.io", "v1beta1", rest @ ..] => {
                    if parts.method != Method::GET {
                        return Err(ApiError::MethodNotAllowed(format!("{} is not supported on {path}", parts.method)));
                    }
                    return Ok(json_response(200, &metrics::serve(api, rest, &q).await?, &[]));
                }
                ["apis", g] => Some(discovery::group(g).ok_or_else(|| ApiError::NotFoundPath(format!("no API group {g}")))?),
                ["apis", g, v] => Some(discovery::resource_list(g, v).ok_or_else(|| ApiError::NotFoundPath(format!("no API group version {g}/{v}")))?),
                _ => None,
            }
        }
    };
    if let Some(d) = doc {
        if parts.method != Method::GET {
            return Err(ApiError::MethodNotAllowed(format!("{} is not supported on {path}", parts.method)));
        }
        return Ok(json_response(200, &d, &[]));
    }
    let watch_param = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    let Some(ri) = request::parse(&parts.method, &path, watch_param)? else {
        return Err(ApiError::NotFoundPath(format!("the server could not find the requested resource ({path})")));
    };
    if ri.info.group.is_empty() && ri.info.plural == "pods" && matches!(ri.subresource.as_deref(), Some("log" | "exec" | "attach")) {
        return proxy::pod_subresource(api, &ri, &mut parts, &q).await;
    }
    resource_request(api, ri, &parts.headers, q, body).await
}

fn raw_json(bytes: Vec<u8>) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

async fn resource_request(api: &Arc<Api>, ri: RequestInfo, headers: &HeaderMap, q: HashMap<String, String>, bytes: bytes::Bytes) -> Result<Response, ApiError> {
    // Streaming subresources of pods that reach this point (not relayed to a node agent) are
    // answered before any body is decoded: their requests carry none (they are upgrades).
    if ri.info.plural == "pods"
        && matches!(ri.verb, Verb::Get | Verb::Create)
        && matches!(ri.subresource.as_deref(), Some("log" | "exec" | "attach" | "portforward" | "proxy"))
    {
        return Err(api.pod_stream(&ri).await);
    }
    let wants = negotiate(headers)?;
    let now = jiff::Timestamp::now();
    let include = q.get("includeObject").cloned().unwrap_or_else(|| "Metadata".into());
    match ri.verb {
        Verb::Get => {
            let out = api.get(&ri, &q).await?;
            if wants == Wants::Table && ri.subresource.is_none() {
                let t = apimachinery::table::to_table(ri.info, std::slice::from_ref(&out.body), json!({"resourceVersion": out.body.pointer("/metadata/resourceVersion")}), &include, now);
                return Ok(json_response(200, &t, &[]));
            }
            Ok(json_response(out.code, &out.body, &out.warnings))
        }
        Verb::List => {
            let (list, _) = api.list(&ri, &q).await?;
            if wants == Wants::Table {
                let items = list["items"].as_array().cloned().unwrap_or_default();
                let t = apimachinery::table::to_table(ri.info, &items, list["metadata"].clone(), &include, now);
                return Ok(json_response(200, &t, &[]));
            }
            Ok(json_response(200, &list, &[]))
        }
        Verb::Watch => {
            let render = if wants == Wants::Table { watch::Render::Table } else { watch::Render::Object };
            let stream = api.watch(&ri, &q, render).await?;
            let mut rx = stream.rx;
            let body = Body::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
            Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-cache, private")], body).into_response())
        }
        Verb::Create => {
            let obj = decode_object_body(headers, &bytes)?;
            let out = api.create(&ri, &q, obj).await?;
            Ok(json_response(out.code, &out.body, &out.warnings))
        }
        Verb::Update => {
            let obj = decode_object_body(headers, &bytes)?;
            let out = api.update(&ri, &q, obj).await?;
            Ok(json_response(out.code, &out.body, &out.warnings))
        }
        Verb::Patch => {
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let out = api.patch(&ri, &q, &ct, &bytes).await?;
            Ok(json_response(out.code, &out.body, &out.warnings))
        }
        Verb::Delete | Verb::DeleteCollection => {
            let opts = if bytes.iter().all(|b| b.is_ascii_whitespace()) { None } else { Some(decode_object_body(headers, &bytes)?) };
            let out = if ri.verb == Verb::Delete { api.delete(&ri, &q, opts).await? } else { api.delete_collection(&ri, &q, opts).await? };
            Ok(json_response(out.code, &out.body, &out.warnings))
        }
    }
}

/// Serves the API over TLS on `listen` until the process ends.
pub async fn serve_tls(api: Arc<Api>, listen: &str, tls: Arc<rustls::ServerConfig>) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} for the Kubernetes API: is another process using it? pick another with --api-listen"))?;
    Ok(serve_router_tls(api.router(), listener, tls))
}

/// Serves a router over TLS (HTTP/2 and HTTP/1.1 with upgrades) on an open listener.
pub fn serve_router_tls(app: axum::Router, listener: tokio::net::TcpListener, tls: Arc<rustls::ServerConfig>) -> tokio::task::JoinHandle<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a TLS connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let mut builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                // Many concurrent requests on one HTTP/2 connection are normal for Kubernetes
                // clients (informers, kubectl); h2's default reset budget trips on them.
                builder.http2().max_concurrent_streams(1000).max_local_error_reset_streams(Some(1 << 16));
                if let Err(e) = builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service).await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
    })
}
