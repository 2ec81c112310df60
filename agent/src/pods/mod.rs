//! The pods bound to this node. `run` follows them with a watch (`spec.nodeName=<node>`) and
//! gives each pod a worker task (`worker`) that owns everything of that pod on the host:
//! sandbox, network, volumes, images, containers, probes and its status. On the first list it
//! reconciles the host against the API (invariant 8): workers of pods that exist adopt their
//! running containers; containers, sandboxes and directories of pods that do not exist are
//! stopped and removed, so nothing is orphaned across agent restarts.

pub mod expand;
pub mod probe;
pub mod spec;
pub mod status;
pub mod volumes;
mod worker;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::Agent;
use crate::kube::Event;

pub use worker::{Live, LiveContainer, log_path};

/// Labels the agent stores with every container (what `Runtime::list` gives back after a
/// restart).
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_CONTAINER: &str = "io.kubernetes.container.name";
pub const LABEL_ATTEMPT: &str = "rkube.io/attempt";
pub const LABEL_INIT: &str = "rkube.io/init-container";
/// The image id (config digest) the container runs: image GC keeps these.
pub const LABEL_IMAGE_ID: &str = "rkube.io/image-id";

/// The pod's cgroup, relative to each hierarchy's root; containers are below it.
pub fn pod_cgroup(uid: &str) -> String {
    format!("rkube/pod{uid}")
}

/// A container instance's runtime id: pod uid, container name, attempt (0 for the first run).
pub fn container_id(uid: &str, name: &str, attempt: u32) -> String {
    format!("{uid}_{name}_{attempt}")
}

/// The pods the agent runs, for the server (logs, exec) and the usage sampler.
#[derive(Default)]
pub struct Registry {
    pods: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    live: Arc<Live>,
    tx: watch::Sender<Option<Arc<Value>>>,
}

impl Registry {
    pub fn by_name(&self, namespace: &str, name: &str) -> Option<Arc<Live>> {
        self.pods.lock().expect("registry lock").values().map(|e| e.live.clone()).find(|l| l.namespace == namespace && l.name == name)
    }

    pub fn by_uid(&self, uid: &str) -> Option<Arc<Live>> {
        self.pods.lock().expect("registry lock").get(uid).map(|e| e.live.clone())
    }

    pub fn snapshot(&self) -> Vec<Arc<Live>> {
        self.pods.lock().expect("registry lock").values().map(|e| e.live.clone()).collect()
    }

    fn remove(&self, uid: &str) {
        self.pods.lock().expect("registry lock").remove(uid);
    }
}

fn uid_of(pod: &Value) -> Option<String> {
    pod.pointer("/metadata/uid").and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from)
}

/// Follows the pods bound to this node until the process ends.
pub async fn run(agent: Arc<Agent>) {
    let path = format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{}", agent.config.node_name);
    let mut events = agent.kube.reflect(&path);
    let mut reconciled = false;
    while let Some(ev) = events.recv().await {
        match ev {
            Event::Resync(items) => {
                let present: HashSet<String> = items.iter().filter_map(uid_of).collect();
                // Pods that vanished while we were not watching.
                let gone: Vec<String> = agent.pods.pods.lock().expect("registry lock").keys().filter(|u| !present.contains(*u)).cloned().collect();
                for uid in gone {
                    deliver(&agent, &uid, None);
                }
                if !reconciled {
                    reconciled = true;
                    clean_orphans(&agent, &present).await;
                }
                for pod in items {
                    dispatch(&agent, pod);
                }
            }
            Event::Added(pod) | Event::Modified(pod) => dispatch(&agent, pod),
            Event::Deleted(pod) => {
                if let Some(uid) = uid_of(&pod) {
                    deliver(&agent, &uid, None);
                }
            }
        }
    }
}

/// Sends the latest version of a pod to its worker, starting one for a pod new to us.
fn dispatch(agent: &Arc<Agent>, pod: Value) {
    let Some(uid) = uid_of(&pod) else { return };
    let mut pods = agent.pods.pods.lock().expect("registry lock");
    if let Some(e) = pods.get(&uid) {
        let _ = e.tx.send(Some(Arc::new(pod)));
        return;
    }
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    let deleting = pod.pointer("/metadata/deletionTimestamp").is_some();
    let has_containers = worker::host_state_exists(agent, &uid);
    if (phase == "Succeeded" || phase == "Failed") && !deleting && !has_containers {
        // A finished pod whose remains are already cleaned up: nothing to run.
        return;
    }
    let live = Arc::new(Live::new(&pod, &uid));
    let (tx, rx) = watch::channel(Some(Arc::new(pod)));
    pods.insert(uid.clone(), Entry { live: live.clone(), tx });
    drop(pods);
    let agent2 = agent.clone();
    tokio::spawn(async move {
        worker::Worker::new(agent2.clone(), live, rx).run().await;
        agent2.pods.remove(&uid);
    });
}

fn deliver(agent: &Arc<Agent>, uid: &str, pod: Option<Value>) {
    if let Some(e) = agent.pods.pods.lock().expect("registry lock").get(uid) {
        let _ = e.tx.send(pod.map(Arc::new));
    }
}

/// First list after start: removes containers, sandboxes and pod directories of pods that no
/// longer exist in the API (their workers are never started, so nothing else would).
async fn clean_orphans(agent: &Arc<Agent>, present: &HashSet<String>) {
    let containers = match agent.runtime.list() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list containers to clean up orphans");
            Vec::new()
        }
    };
    let mut orphan_pods: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in containers {
        match c.labels.get(LABEL_POD_UID) {
            Some(uid) if present.contains(uid) => {}
            Some(uid) => orphan_pods.entry(uid.clone()).or_default().push(c.id.clone()),
            None => orphan_pods.entry(String::new()).or_default().push(c.id.clone()),
        }
    }
    if let Ok(rd) = std::fs::read_dir(agent.config.pods_dir()) {
        for e in rd.flatten() {
            let uid = e.file_name().to_string_lossy().into_owned();
            if !present.contains(&uid) {
                orphan_pods.entry(uid).or_default();
            }
        }
    }
    for (uid, ids) in orphan_pods {
        tracing::info!(pod_uid = %uid, containers = ids.len(), "cleaning up the remains of a pod that no longer exists");
        for id in &ids {
            if let Err(e) = agent.runtime.stop(id, Duration::from_secs(2)).await {
                tracing::debug!(container = %id, error = %e, "stopping an orphan");
            }
            if let Err(e) = agent.runtime.remove(id).await {
                tracing::warn!(container = %id, error = %e, "removing an orphan container");
            }
        }
        if !uid.is_empty() {
            worker::teardown_host(agent, &uid, &ids).await;
        }
    }
}
