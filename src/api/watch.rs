//! `?watch=true`: a stream of JSON watch events (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR),
//! served from this master's apply stream. Revisions are Raft log indexes, identical on every
//! master, so a client resumes a watch on any master with the resourceVersion it last saw.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apimachinery::selector::{FieldSelector, LabelSelector};
use apimachinery::status::ApiError;
use bytes::Bytes;
use serde_json::{Value, json};
use storage::{EventKind, StoreError};

use super::Api;
use super::objects::{ReadAt, set_rv};
use super::request::RequestInfo;
use super::resource::selectors;

/// How often an idle watch with `allowWatchBookmarks` gets a BOOKMARK carrying the current revision.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Render {
    Object,
    /// `as=Table`: each event's object is a one-row Table (`kubectl get -w`).
    Table,
}

pub struct WatchStream {
    pub rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

fn line(event_type: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": event_type, "object": object})).expect("serializing a watch event");
    v.push(b'\n');
    Bytes::from(v)
}

fn error_event(e: &ApiError) -> Bytes {
    line("ERROR", &e.to_status())
}

impl Api {
    pub async fn watch(self: &Arc<Self>, ri: &RequestInfo, q: &HashMap<String, String>, render: Render) -> Result<WatchStream, ApiError> {
        let (ls, fs) = selectors(ri.info, q)?;
        let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true" || v == "1");
        let send_initial = q.get("sendInitialEvents").map(|v| v == "true" || v == "1");
        let timeout = match q.get("timeoutSeconds").filter(|s| !s.is_empty()) {
            Some(t) => Duration::from_secs(t.parse::<u64>().map_err(|_| ApiError::BadRequest(format!("timeoutSeconds must be an integer, not {t:?}")))?),
            None => Duration::from_secs(1800 + rand::random_range(0..1800)),
        };
        let rv = q.get("resourceVersion").map(|s| s.as_str()).filter(|s| !s.is_empty());
        let at = ReadAt::from_query(rv, q.get("resourceVersionMatch").map(|s| s.as_str()).filter(|m| *m != "NotOlderThan"))?;
        // Unset and "0" start from a fresh list ("get state and start at most recent / any");
        // an explicit revision starts right after it, unless initial events are asked for.
        let initial = match (at, send_initial) {
            (_, Some(b)) => b,
            (ReadAt::Latest | ReadAt::Any, None) => true,
            _ => false,
        };
        if matches!(at, ReadAt::Exact(_)) {
            return Err(ApiError::BadRequest("resourceVersionMatch=Exact is not supported for watch".into()));
        }
        self.objects.prepare_read(at).await?;
        let prefix = ri.info.list_prefix(ri.namespace.as_deref());
        let store = self.node.store.clone();
        let mut initial_events = Vec::new();
        let start = if initial {
            // One consistent snapshot of the current state, page by page at the same revision.
            let mut rev = None;
            let mut after: Option<String> = None;
            loop {
                let page = store.list(&prefix, after.as_deref(), 1000, rev).map_err(super::objects::store_error)?;
                rev = Some(page.rev);
                for kv in &page.items {
                    let obj = super::objects::decode(kv)?;
                    if ls.matches_object(&obj) && fs.matches(&obj) {
                        initial_events.push(obj);
                    }
                }
                if !page.more {
                    break;
                }
                after = page.items.last().map(|kv| kv.key.clone());
            }
            rev.unwrap_or(0)
        } else {
            match at {
                ReadAt::NotOlderThan(r) => r,
                _ => store.current_revision(),
            }
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let watcher = match store.watch(&prefix, start) {
            Ok(w) => w,
            Err(StoreError::TooOld { requested, compacted }) => {
                // Kubernetes answers 200 and a single ERROR event carrying 410 Gone.
                let _ = tx.try_send(Ok(error_event(&ApiError::Gone(format!("too old resource version: {requested} ({compacted})")))));
                return Ok(WatchStream { rx });
            }
            Err(e) => return Err(super::objects::store_error(e)),
        };
        let api = self.clone();
        let info = ri.info;
        tokio::spawn(async move {
            let render_obj = |obj: &Value| -> Value {
                match render {
                    Render::Object => obj.clone(),
                    Render::Table => apimachinery::table::to_table(info, std::slice::from_ref(obj), json!({}), "Object", jiff::Timestamp::now()),
                }
            };
            for obj in &initial_events {
                if tx.send(Ok(line("ADDED", &render_obj(obj)))).await.is_err() {
                    return;
                }
            }
            if send_initial == Some(true) {
                let bm = json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": {"resourceVersion": start.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
                if tx.send(Ok(line("BOOKMARK", &bm))).await.is_err() {
                    return;
                }
            }
            drop(initial_events);
            stream_events(api, watcher, tx, ls, fs, bookmarks, timeout, info, render).await;
        });
        Ok(WatchStream { rx })
    }
}

#[allow(clippy::too_many_arguments)]
async fn stream_events(
    _api: Arc<Api>,
    mut watcher: storage::Watcher,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    ls: LabelSelector,
    fs: FieldSelector,
    bookmarks: bool,
    timeout: Duration,
    info: &'static apimachinery::registry::ResourceInfo,
    render: Render,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tick = tokio::time::interval(BOOKMARK_INTERVAL);
    tick.tick().await;
    let matches = |v: &Value| ls.matches_object(v) && fs.matches(v);
    let render_obj = |obj: &Value| -> Value {
        match render {
            Render::Object => obj.clone(),
            Render::Table => apimachinery::table::to_table(info, std::slice::from_ref(obj), json!({}), "Object", jiff::Timestamp::now()),
        }
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                if bookmarks {
                    let bm = json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": {"resourceVersion": watcher.last_rev().to_string()}});
                    let _ = tx.send(Ok(line("BOOKMARK", &bm))).await;
                }
                return;
            }
            _ = tick.tick(), if bookmarks => {
                let bm = json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": {"resourceVersion": watcher.last_rev().to_string()}});
                if tx.send(Ok(line("BOOKMARK", &bm))).await.is_err() {
                    return;
                }
            }
            _ = tx.closed() => return,
            next = watcher.next() => {
                let events = match next {
                    Ok(e) => e,
                    Err(StoreError::TooOld { requested, compacted }) => {
                        let _ = tx.send(Ok(error_event(&ApiError::Gone(format!("too old resource version: {requested} ({compacted})"))))).await;
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Ok(error_event(&ApiError::Internal(e.to_string())))).await;
                        return;
                    }
                };
                for ev in events {
                    let Ok(mut obj) = serde_json::from_slice::<Value>(&ev.value) else { continue };
                    set_rv(&mut obj, ev.rev);
                    let now_matches = matches(&obj);
                    let was_matching = match &ev.prev_value {
                        Some(p) => serde_json::from_slice::<Value>(p).map(|p| matches(&p)).unwrap_or(false),
                        None => false,
                    };
                    // A selector-filtered watch sees an object leave the selection as DELETED and
                    // enter it as ADDED, as Kubernetes' watch cache reports it.
                    let ty = match ev.kind {
                        EventKind::Created if now_matches => "ADDED",
                        EventKind::Modified if now_matches && was_matching => "MODIFIED",
                        EventKind::Modified if now_matches => "ADDED",
                        EventKind::Modified if was_matching => "DELETED",
                        EventKind::Deleted if now_matches => "DELETED",
                        _ => continue,
                    };
                    if tx.send(Ok(line(ty, &render_obj(&obj)))).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
