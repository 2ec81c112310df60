//! Events controllers write so users see what happened (`kubectl describe`, `kubectl get events`).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::client::{Client, res};

#[derive(Clone)]
pub struct Recorder {
    client: Arc<dyn Client>,
    component: String,
}

impl Recorder {
    pub fn new(client: Arc<dyn Client>, component: impl Into<String>) -> Recorder {
        Recorder { client, component: component.into() }
    }

    /// Records an event about `obj` (`event_type` is `Normal` or `Warning`). Failures are logged,
    /// never returned: an event is not worth failing a reconcile for.
    pub async fn event(&self, obj: &Value, event_type: &str, reason: &str, message: &str) {
        let ns = obj.pointer("/metadata/namespace").and_then(|n| n.as_str()).filter(|s| !s.is_empty()).unwrap_or("default");
        let name = obj.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or("");
        let now = jiff::Timestamp::now();
        let ts = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let ev = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": format!("{name}.{:016x}", rand::random::<u64>()), "namespace": ns},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": name,
                "namespace": obj.pointer("/metadata/namespace"),
                "uid": obj.pointer("/metadata/uid"),
                "resourceVersion": obj.pointer("/metadata/resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "type": event_type,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.component,
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
        });
        if let Err(e) = self.client.create(res("", "events"), Some(ns), ev).await {
            tracing::debug!(error = %e, reason, "could not record an event");
        }
    }
}
