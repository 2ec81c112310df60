//! One pod's worker: owns the pod on this host from the moment it is bound here until its
//! remains are gone. In order: the sandbox (pinned namespaces) and its CNI attachment, the
//! volumes, then each container — image (pull policy, pull secrets), rootfs, spec, start —
//! init containers one at a time to completion, then the app containers; exits are restarted
//! per restartPolicy with kubelet's back-off (CrashLoopBackOff), probes run per container, and
//! the pod's status is written whenever it changes. Graceful deletion: SIGTERM, the grace
//! period, SIGKILL, full teardown, then the API object is deleted (grace 0, uid precondition).
//!
//! Host layout under `<pods dir>/<uid>/`: `sandbox/` (namespace pins), `network.json` (the
//! CNI attachment), `volumes/<name>`, `etc/` (hosts, hostname, resolv.conf),
//! `containers/<container id>/` (overlay upper/work/merged), `logs/<container>/<attempt>.log`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runtime::container::{ContainerStatus, ExitInfo};
use runtime::image::{Image, PullPolicy, RegistryAuth};
use runtime::rootfs::Rootfs;
use runtime::sandbox::SandboxNamespaces;
use runtime::spec::{ContainerSpec, NamespaceMode, Namespaces};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::probe::{self, Outcome, Probe, Tracker};
use super::spec::{self as pspec, ConfigError, PodContext, Sources};
use super::status::{self, ContainerView, PodFacts, State, Terminated};
use super::volumes::{self, HostVolume};
use super::{LABEL_ATTEMPT, LABEL_CONTAINER, LABEL_IMAGE_ID, LABEL_INIT, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID, container_id, pod_cgroup};
use crate::Agent;
use crate::kube::now_rfc3339;

/// Back-off between restarts: immediate, then 10 s doubling to 5 minutes; reset after a
/// container ran for 10 minutes (kubelet's numbers).
const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// How often volumes from ConfigMaps/Secrets are refreshed and deadlines re-checked.
const RESYNC: Duration = Duration::from_secs(10);

/// What other parts of the agent (server, stats) can see of a pod.
pub struct Live {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub containers: Mutex<BTreeMap<String, LiveContainer>>,
    /// The images the pod's spec names: image GC keeps them even before a container of the
    /// pod exists (between the pull and the start).
    pub images: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct LiveContainer {
    /// Runtime id of the latest instance.
    pub current: Option<String>,
    pub attempt: u32,
    pub running: bool,
}

impl Live {
    pub fn new(pod: &Value, uid: &str) -> Live {
        Live {
            uid: uid.to_string(),
            namespace: pod.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default").to_string(),
            name: pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string(),
            containers: Mutex::new(BTreeMap::new()),
            images: ["initContainers", "containers"]
                .iter()
                .flat_map(|k| pod["spec"][*k].as_array().cloned().unwrap_or_default())
                .filter_map(|c| c["image"].as_str().map(String::from))
                .collect(),
        }
    }
}

/// `<pods>/<uid>/logs/<container>/<attempt>.log`.
pub fn log_path(pods_dir: &Path, uid: &str, container: &str, attempt: u32) -> PathBuf {
    pods_dir.join(uid).join("logs").join(container).join(format!("{attempt}.log"))
}

pub fn host_state_exists(agent: &Agent, uid: &str) -> bool {
    agent.config.pods_dir().join(uid).exists()
}

/// Removes everything of a pod from the host except hostPath data: container rootfs mounts,
/// CNI attachment, volumes, sandbox pins, the pod cgroup and the pod directory. The containers
/// themselves must already be removed from the runtime. Idempotent.
pub async fn teardown_host(agent: &Agent, uid: &str, ids: &[String]) {
    let dir = agent.config.pods_dir().join(uid);
    let mut rootfs_dirs: Vec<PathBuf> = ids.iter().map(|id| dir.join("containers").join(id)).collect();
    if let Ok(rd) = std::fs::read_dir(dir.join("containers")) {
        rootfs_dirs.extend(rd.flatten().map(|e| e.path()));
    }
    for d in rootfs_dirs {
        if let Err(e) = Rootfs::remove(&d) {
            tracing::warn!(dir = %d.display(), error = %e, "removing a container rootfs");
        }
    }
    let sandbox_dir = dir.join("sandbox");
    let net = sandbox_dir.join("ns/net");
    if let Some(cni) = agent.cni.read().await.clone() {
        let netns = net.exists().then_some(net.clone());
        let uid2 = uid.to_string();
        let r = crate::netns::run_in(agent.config.pod_netns.as_deref(), move || async move { cni.del(&uid2, netns.as_deref()).await }).await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(pod_uid = uid, error = %e, "detaching the pod network"),
            Err(e) => tracing::warn!(pod_uid = uid, error = %e, "detaching the pod network"),
        }
    }
    if let Err(e) = volumes::teardown(&dir) {
        tracing::warn!(pod_uid = uid, error = %e, "removing volumes");
    }
    if let Err(e) = runtime::sandbox::remove(&sandbox_dir) {
        tracing::warn!(pod_uid = uid, error = %e, "removing the sandbox");
    }
    if let Err(e) = runtime::stats::remove_cgroup(&pod_cgroup(uid)) {
        tracing::debug!(pod_uid = uid, error = %e, "removing the pod cgroup");
    }
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => tracing::warn!(dir = %dir.display(), error = %e, "removing the pod directory"),
        _ => {}
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

enum Msg {
    Exited { name: String, id: String, info: ExitInfo },
    Probe { name: String, id: String, kind: ProbeKind, outcome: Outcome },
}

struct Ctr {
    name: String,
    init: bool,
    /// An init container with restartPolicy Always (a native sidecar).
    sidecar: bool,
    spec: Value,
    image: Option<Image>,
    view: ContainerView,
    /// The attempt number the next instance gets.
    next_attempt: u32,
    current: Option<String>,
    running_since: Option<Instant>,
    /// Completed for good (an init container that succeeded, an app container that will not
    /// be restarted).
    done: bool,
    backoff: Duration,
    restart_at: Option<Instant>,
    startup: Option<Probe>,
    liveness: Option<Probe>,
    readiness: Option<Probe>,
    trackers: [Tracker; 3],
    started: bool,
    probe_tasks: Vec<tokio::task::JoinHandle<()>>,
    /// A liveness/startup failure killed it: restart regardless of the exit code.
    killed_by_probe: bool,
}

impl Ctr {
    fn new(spec: &Value, init: bool) -> Ctr {
        let name = spec["name"].as_str().unwrap_or("").to_string();
        let image = spec["image"].as_str().unwrap_or("").to_string();
        let parse = |k: &str| probe::parse(&spec[k], spec).ok().flatten();
        let sidecar = init && spec["restartPolicy"].as_str() == Some("Always");
        let reason = if init { "PodInitializing" } else { "ContainerCreating" };
        Ctr {
            view: ContainerView::waiting(&name, &image, reason),
            name,
            init,
            sidecar,
            spec: spec.clone(),
            image: None,
            next_attempt: 0,
            current: None,
            running_since: None,
            done: false,
            backoff: Duration::ZERO,
            restart_at: None,
            startup: if init && !sidecar { None } else { parse("startupProbe") },
            liveness: if init && !sidecar { None } else { parse("livenessProbe") },
            readiness: if init && !sidecar { None } else { parse("readinessProbe") },
            trackers: Default::default(),
            started: false,
            probe_tasks: Vec::new(),
            killed_by_probe: false,
        }
    }

    fn running(&self) -> bool {
        matches!(self.view.state, State::Running { .. })
    }

    fn stop_probes(&mut self) {
        for t in self.probe_tasks.drain(..) {
            t.abort();
        }
    }

    /// Ready: running, started, and readiness passed (or no readiness probe).
    fn refresh_ready(&mut self) {
        let started = self.started || self.startup.is_none();
        self.view.started = Some(self.running() && started);
        self.view.ready = self.running() && started && match &self.readiness {
            Some(_) => self.trackers[2].verdict == Some(true),
            None => true,
        };
    }
}

pub struct Worker {
    agent: Arc<Agent>,
    live: Arc<Live>,
    rx: watch::Receiver<Option<Arc<Value>>>,
    pod: Arc<Value>,
    dir: PathBuf,
    sandbox: Option<SandboxNamespaces>,
    pod_ip: Option<String>,
    volumes: Option<BTreeMap<String, HostVolume>>,
    pod_mounts: Vec<runtime::spec::MountSpec>,
    sources: Sources,
    sources_at: Option<Instant>,
    auths: Vec<RegistryAuth>,
    ctrs: Vec<Ctr>,
    tx: mpsc::UnboundedSender<Msg>,
    msgs: mpsc::UnboundedReceiver<Msg>,
    /// The status last written (without timestamps).
    written: Option<Value>,
    start_time: Option<String>,
    started_at: Instant,
    /// Why the pod cannot progress right now (sandbox, network, volumes).
    blocked: Option<(String, String)>,
    retry_at: Option<Instant>,
    failed: Option<(String, String)>,
}

impl Worker {
    pub fn new(agent: Arc<Agent>, live: Arc<Live>, rx: watch::Receiver<Option<Arc<Value>>>) -> Worker {
        let pod = rx.borrow().clone().unwrap_or_else(|| Arc::new(Value::Null));
        let dir = agent.config.pods_dir().join(&live.uid);
        let mut ctrs = Vec::new();
        for c in pod["spec"]["initContainers"].as_array().into_iter().flatten() {
            ctrs.push(Ctr::new(c, true));
        }
        for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
            ctrs.push(Ctr::new(c, false));
        }
        let (tx, msgs) = mpsc::unbounded_channel();
        Worker {
            written: None,
            start_time: pod.pointer("/status/startTime").and_then(Value::as_str).map(String::from),
            agent,
            live,
            rx,
            pod,
            dir,
            sandbox: None,
            pod_ip: None,
            volumes: None,
            pod_mounts: Vec::new(),
            sources: Sources::default(),
            sources_at: None,
            auths: Vec::new(),
            ctrs,
            tx,
            msgs,
            started_at: Instant::now(),
            blocked: None,
            retry_at: None,
            failed: None,
        }
    }

    fn ns(&self) -> &str {
        &self.live.namespace
    }

    fn pod_path(&self) -> String {
        format!("/api/v1/namespaces/{}/pods/{}", self.live.namespace, self.live.name)
    }

    fn restart_policy(&self) -> String {
        self.pod["spec"]["restartPolicy"].as_str().unwrap_or("Always").to_string()
    }

    fn host_network(&self) -> bool {
        self.pod["spec"]["hostNetwork"].as_bool().unwrap_or(false)
    }

    async fn event(&self, type_: &str, reason: &str, message: &str) {
        let mut involved = (*self.pod).clone();
        involved["apiVersion"] = json!("v1");
        involved["kind"] = json!("Pod");
        self.agent.kube.event(&involved, type_, reason, message, &self.agent.config.node_name).await;
    }

    pub async fn run(mut self) {
        if self.start_time.is_none() {
            self.start_time = Some(now_rfc3339());
        }
        self.adopt().await;
        loop {
            let latest = self.rx.borrow_and_update().clone();
            let Some(pod) = latest else {
                // Gone from the API without a graceful deletion (force-deleted): kill now.
                self.terminate(Duration::from_secs(2)).await;
                return;
            };
            self.pod = pod;
            if self.pod.pointer("/metadata/deletionTimestamp").is_some() {
                let grace = self.pod.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_u64)
                    .or_else(|| self.pod["spec"]["terminationGracePeriodSeconds"].as_u64())
                    .unwrap_or(30);
                self.terminate(Duration::from_secs(grace)).await;
                self.write_status().await;
                self.delete_object().await;
                return;
            }
            self.step().await;
            self.write_status().await;
            let deadline = self.next_deadline();
            tokio::select! {
                r = self.rx.changed() => {
                    if r.is_err() {
                        self.terminate(Duration::from_secs(2)).await;
                        return;
                    }
                }
                Some(msg) = self.msgs.recv() => {
                    self.handle(msg).await;
                    // Drain whatever else is queued before the next status write.
                    while let Ok(m) = self.msgs.try_recv() {
                        self.handle(m).await;
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let mut d = Instant::now() + RESYNC;
        for c in &self.ctrs {
            if let Some(t) = c.restart_at {
                d = d.min(t);
            }
        }
        if let Some(t) = self.retry_at {
            d = d.min(t);
        }
        if let Some(secs) = self.pod["spec"]["activeDeadlineSeconds"].as_u64() {
            if self.failed.is_none() {
                d = d.min(self.started_at + Duration::from_secs(secs));
            }
        }
        d
    }

    /// Re-attaches to what a previous agent process left running for this pod.
    async fn adopt(&mut self) {
        let sandbox_dir = self.dir.join("sandbox");
        if let Some(ns) = runtime::sandbox::existing(&sandbox_dir) {
            self.pod_ip = std::fs::read_to_string(self.dir.join("network.json"))
                .ok()
                .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                .and_then(|v| v["ip"].as_str().map(String::from));
            if self.pod_ip.is_some() || ns.net.is_none() {
                if ns.net.is_none() {
                    self.pod_ip = Some(self.agent.config.node_ip.to_string());
                }
                self.sandbox = Some(ns);
            }
        }
        let mine: Vec<_> = match self.agent.runtime.list() {
            Ok(all) => all.into_iter().filter(|c| c.labels.get(LABEL_POD_UID) == Some(&self.live.uid)).collect(),
            Err(e) => {
                tracing::warn!(pod = %self.live.name, error = %e, "cannot list containers to adopt");
                return;
            }
        };
        if mine.is_empty() {
            return;
        }
        let any_app = mine.iter().any(|c| !c.labels.contains_key(LABEL_INIT));
        for i in 0..self.ctrs.len() {
            let name = self.ctrs[i].name.clone();
            let mut instances: Vec<_> = mine.iter().filter(|c| c.labels.get(LABEL_CONTAINER) == Some(&name)).collect();
            instances.sort_by_key(|c| c.labels.get(LABEL_ATTEMPT).and_then(|a| a.parse::<u32>().ok()).unwrap_or(0));
            let Some(latest) = instances.last().cloned() else {
                if self.ctrs[i].init && any_app {
                    self.ctrs[i].done = true;
                    self.ctrs[i].view.state = State::Terminated(Terminated { exit_code: 0, signal: None, reason: "Completed".into(), message: None, started_at: None, finished_at: now_rfc3339(), container_id: None });
                }
                continue;
            };
            for old in &instances[..instances.len() - 1] {
                let _ = self.agent.runtime.remove(&old.id).await;
                let _ = Rootfs::remove(&self.dir.join("containers").join(&old.id));
            }
            let attempt: u32 = latest.labels.get(LABEL_ATTEMPT).and_then(|a| a.parse().ok()).unwrap_or(0);
            let c = &mut self.ctrs[i];
            c.next_attempt = attempt + 1;
            c.view.restart_count = attempt;
            c.current = Some(latest.id.clone());
            c.view.container_id = Some(format!("rkube://{}", latest.id));
            if let Ok(spec) = self.agent.runtime.spec(&latest.id) {
                c.view.image_id = spec.labels.get(LABEL_IMAGE_ID).cloned().map(|id| image_id_string(&c.view.image, &id)).unwrap_or_default();
            }
            tracing::info!(pod = %self.live.name, container = %name, id = %latest.id, "adopting a container left by a previous agent");
            match &latest.status {
                ContainerStatus::Running { started_at, .. } => {
                    c.view.state = State::Running { started_at: started_at.clone() };
                    c.running_since = Some(Instant::now());
                    // Adopted containers already passed their startup phase once.
                    c.started = true;
                    c.trackers[2].verdict = if c.readiness.is_some() { None } else { Some(true) };
                    self.watch_exit(i);
                    self.start_probes(i, latest.id.clone());
                    self.ctrs[i].refresh_ready();
                }
                ContainerStatus::Exited(info) => {
                    let (id, info) = (latest.id.clone(), info.clone());
                    self.on_exit(i, &id, info).await;
                }
                ContainerStatus::Creating => {
                    // A shim that died while creating: start over.
                    let _ = self.agent.runtime.remove(&latest.id).await;
                    c.current = None;
                }
            }
            self.publish(i);
        }
    }

    fn publish(&self, i: usize) {
        let c = &self.ctrs[i];
        self.live.containers.lock().expect("live lock").insert(
            c.name.clone(),
            LiveContainer { current: c.current.clone(), attempt: c.next_attempt.saturating_sub(1), running: c.running() },
        );
    }

    fn context(&self) -> PodContext {
        PodContext {
            pod_ip: self.pod_ip.clone().unwrap_or_default(),
            pod_ips: self.pod_ip.iter().cloned().collect(),
            host_ip: self.agent.config.node_ip.to_string(),
            node_cpu_millis: self.agent.host.cpus as i64 * 1000,
            node_memory: crate::node::meminfo("MemTotal").map(|kib| kib as i64 * 1024).unwrap_or(0),
            node_ephemeral: 0,
        }
    }

    /// Fetches the ConfigMaps and Secrets the pod refers to (absent ones stay absent).
    async fn fetch_sources(&mut self) {
        let (cms, secrets) = pspec::referenced(&self.pod);
        let mut s = Sources::default();
        for name in cms {
            match self.agent.kube.get_opt(&format!("/api/v1/namespaces/{}/configmaps/{name}", self.ns())).await {
                Ok(Some(cm)) => {
                    s.config_maps.insert(name, Sources::config_map_data(&cm));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "fetching a configmap");
                    if let Some(old) = self.sources.config_maps.get(&name) {
                        s.config_maps.insert(name, old.clone());
                    }
                }
            }
        }
        let pull_secrets: Vec<String> = self.pod["spec"]["imagePullSecrets"].as_array().into_iter().flatten().filter_map(|s| s["name"].as_str().map(String::from)).collect();
        let mut auths = Vec::new();
        for name in secrets {
            match self.agent.kube.get_opt(&format!("/api/v1/namespaces/{}/secrets/{name}", self.ns())).await {
                Ok(Some(sec)) => {
                    let data = Sources::secret_data(&sec);
                    if pull_secrets.contains(&name) {
                        for key in [".dockerconfigjson", ".dockercfg"] {
                            if let Some(b) = data.get(key) {
                                match runtime::image::parse_docker_config(b) {
                                    Ok(a) => auths.extend(a),
                                    Err(e) => tracing::warn!(secret = %name, error = %e, "unusable image pull secret"),
                                }
                            }
                        }
                    }
                    s.secrets.insert(name, data);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "fetching a secret");
                    if let Some(old) = self.sources.secrets.get(&name) {
                        s.secrets.insert(name, old.clone());
                    }
                }
            }
        }
        self.sources = s;
        self.auths = auths;
        self.sources_at = Some(Instant::now());
    }

    fn block(&mut self, reason: &str, message: String) {
        if self.blocked.as_ref().map(|(_, m)| m != &message).unwrap_or(true) {
            tracing::warn!(pod = %self.live.name, namespace = %self.live.namespace, reason, message = %message, "pod cannot start yet");
        }
        self.blocked = Some((reason.to_string(), message));
        self.retry_at = Some(Instant::now() + Duration::from_secs(2));
    }

    /// Brings the sandbox and its network up.
    async fn ensure_sandbox(&mut self) -> bool {
        if self.sandbox.is_some() {
            return true;
        }
        let host_network = self.host_network();
        let cni = if host_network {
            None
        } else {
            let cni = self.agent.cni.read().await.clone();
            match cni {
                Some(c) => Some(c),
                None => {
                    self.block("NetworkNotReady", "network is not ready: the node has no podCIDR (and so no pod network) yet".into());
                    return false;
                }
            }
        };
        let dir = self.dir.join("sandbox");
        let hostname = volumes::pod_hostname(&self.pod);
        let ns = match tokio::task::spawn_blocking(move || runtime::sandbox::create(&dir, &hostname, host_network)).await {
            Ok(Ok(ns)) => ns,
            Ok(Err(e)) => {
                self.block("FailedCreatePodSandBox", format!("Failed to create pod sandbox: {e}"));
                return false;
            }
            Err(e) => {
                self.block("FailedCreatePodSandBox", format!("Failed to create pod sandbox: {e}"));
                return false;
            }
        };
        let ip = match (cni, &ns.net) {
            (Some(cni), Some(net)) => {
                let ports = host_ports(&self.pod);
                let (uid, net) = (self.live.uid.clone(), net.clone());
                let r = crate::netns::run_in(self.agent.config.pod_netns.as_deref(), move || async move { cni.add(&uid, &net, &ports).await }).await;
                match r {
                    Ok(Ok(att)) => match att.ips.first() {
                        Some(ip) => ip.to_string(),
                        None => {
                            self.block("FailedCreatePodSandBox", "the CNI plugins gave the pod no IP address".into());
                            return false;
                        }
                    },
                    Ok(Err(e)) => {
                        let msg = format!("Failed to create pod sandbox: setting up the pod network: {e}");
                        self.event("Warning", "FailedCreatePodSandBox", &msg).await;
                        self.block("FailedCreatePodSandBox", msg);
                        return false;
                    }
                    Err(e) => {
                        self.block("FailedCreatePodSandBox", format!("Failed to create pod sandbox: {e}"));
                        return false;
                    }
                }
            }
            _ => self.agent.config.node_ip.to_string(),
        };
        let _ = std::fs::write(self.dir.join("network.json"), json!({"ip": ip}).to_string());
        self.pod_ip = Some(ip);
        self.sandbox = Some(ns);
        true
    }

    async fn ensure_volumes(&mut self) -> bool {
        let stale = self.sources_at.map(|t| t.elapsed() >= RESYNC).unwrap_or(true);
        if self.volumes.is_some() && !stale {
            return true;
        }
        if stale {
            self.fetch_sources().await;
        }
        let ctx = self.context();
        if self.volumes.is_some() {
            let changed = volumes::refresh(&self.dir, &self.pod, &self.sources, &ctx, None);
            if !changed.is_empty() {
                tracing::info!(pod = %self.live.name, volumes = ?changed, "volume contents updated");
            }
            return true;
        }
        match volumes::setup(&self.dir, &self.pod, &self.sources, &ctx, None) {
            Ok(v) => self.volumes = Some(v),
            Err(ConfigError(m)) => {
                let msg = format!("MountVolume.SetUp failed: {m}");
                if self.blocked.as_ref().map(|(_, old)| old != &msg).unwrap_or(true) {
                    self.event("Warning", "FailedMount", &msg).await;
                }
                self.block("FailedMount", msg);
                self.sources_at = None;
                return false;
            }
        }
        match volumes::pod_files(&self.dir, &self.pod, self.pod_ip.as_deref().unwrap_or(""), self.host_network()) {
            Ok(m) => self.pod_mounts = m,
            Err(e) => {
                self.block("FailedMount", format!("writing /etc/hosts for the pod: {e}"));
                self.volumes = None;
                return false;
            }
        }
        true
    }

    /// Moves the pod forward as far as it can go now.
    async fn step(&mut self) {
        if self.failed.is_some() {
            return;
        }
        if let Some(secs) = self.pod["spec"]["activeDeadlineSeconds"].as_u64() {
            if self.started_at.elapsed() >= Duration::from_secs(secs) {
                self.failed = Some(("DeadlineExceeded".into(), format!("Pod was active on the node longer than the specified deadline ({secs}s)")));
                self.event("Normal", "DeadlineExceeded", "Pod was active on the node longer than the specified deadline").await;
                self.stop_all(self.grace()).await;
                return;
            }
        }
        if !self.ensure_sandbox().await || !self.ensure_volumes().await {
            return;
        }
        self.blocked = None;
        self.retry_at = None;
        let now = Instant::now();
        // Init containers in order: each must complete before the next starts (sidecars must
        // be started and, with a startup probe, started-up).
        for i in 0..self.ctrs.len() {
            if !self.ctrs[i].init {
                continue;
            }
            let c = &self.ctrs[i];
            if c.done {
                continue;
            }
            if c.sidecar && c.running() && (c.started || c.startup.is_none()) {
                continue;
            }
            if !c.running() && c.restart_at.map(|t| t <= now).unwrap_or(c.current.is_none()) {
                self.start(i).await;
            }
            return;
        }
        for i in 0..self.ctrs.len() {
            let c = &self.ctrs[i];
            if c.init && !c.sidecar {
                continue;
            }
            if c.done || c.running() {
                continue;
            }
            let due = match c.restart_at {
                Some(t) => t <= now,
                None => c.current.is_none(),
            };
            if due {
                self.start(i).await;
            }
        }
    }

    fn grace(&self) -> Duration {
        Duration::from_secs(self.pod["spec"]["terminationGracePeriodSeconds"].as_u64().unwrap_or(30))
    }

    /// Pulls the image, mounts the rootfs, builds the spec and starts one instance.
    async fn start(&mut self, i: usize) {
        self.ctrs[i].restart_at = None;
        let image_ref = self.ctrs[i].view.image.clone();
        let policy = pull_policy(&self.ctrs[i].spec, &image_ref);
        let cname = self.ctrs[i].name.clone();
        // Image.
        if self.ctrs[i].image.is_none() || policy == PullPolicy::Always {
            let present = self.agent.images.get(&image_ref).ok().flatten();
            if present.is_none() || policy == PullPolicy::Always {
                if policy != PullPolicy::Never {
                    self.event("Normal", "Pulling", &format!("Pulling image \"{image_ref}\"")).await;
                }
            }
            let t0 = Instant::now();
            match self.agent.images.ensure(&image_ref, policy, &self.auths).await {
                Ok(img) => {
                    if present.is_none() || policy == PullPolicy::Always {
                        self.event("Normal", "Pulled", &format!("Successfully pulled image \"{image_ref}\" in {:.3}s", t0.elapsed().as_secs_f64())).await;
                    } else {
                        self.event("Normal", "Pulled", &format!("Container image \"{image_ref}\" already present on machine")).await;
                    }
                    self.ctrs[i].image = Some(img);
                }
                Err(e) => {
                    let (reason, wait_reason) = if policy == PullPolicy::Never { ("ErrImageNeverPull", "ErrImageNeverPull") } else { ("Failed", "ErrImagePull") };
                    let msg = format!("Failed to pull image \"{image_ref}\": {e}");
                    self.event("Warning", reason, &msg).await;
                    let c = &mut self.ctrs[i];
                    let retry = if c.backoff.is_zero() { BACKOFF_START } else { (c.backoff * 2).min(BACKOFF_MAX) };
                    c.backoff = retry;
                    c.restart_at = Some(Instant::now() + retry);
                    let reason = if matches!(&c.view.state, State::Waiting { reason, .. } if reason == "ErrImagePull" || reason == "ImagePullBackOff") { "ImagePullBackOff" } else { wait_reason };
                    c.view.state = State::Waiting { reason: reason.into(), message: Some(msg) };
                    return;
                }
            }
        }
        let Some(image) = self.ctrs[i].image.clone() else { return };
        // The previous instance goes away now (its logs stay for --previous).
        if let Some(old) = self.ctrs[i].current.take() {
            let _ = self.agent.runtime.remove(&old).await;
            let _ = Rootfs::remove(&self.dir.join("containers").join(&old));
        }
        let attempt = self.ctrs[i].next_attempt;
        let id = container_id(&self.live.uid, &cname, attempt);
        let rootfs_dir = self.dir.join("containers").join(&id);
        let rootfs = match Rootfs::mount(&rootfs_dir, &image.layers) {
            Ok(r) => r,
            Err(e) => {
                self.start_failed(i, "CreateContainerError", format!("mounting the root filesystem: {e}"), None).await;
                return;
            }
        };
        let spec = match self.container_spec(i, &id, attempt, &image, &rootfs.merged()) {
            Ok(s) => s,
            Err(ConfigError(m)) => {
                let _ = Rootfs::remove(&rootfs_dir);
                self.start_failed(i, "CreateContainerConfigError", m, None).await;
                return;
            }
        };
        if let Some(parent) = spec.log_path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        self.ctrs[i].next_attempt = attempt + 1;
        self.ctrs[i].current = Some(id.clone());
        self.ctrs[i].view.container_id = Some(format!("rkube://{id}"));
        self.ctrs[i].view.image_id = image_id_string(&image.reference, &image.digest);
        self.ctrs[i].view.restart_count = attempt;
        self.ctrs[i].killed_by_probe = false;
        self.ctrs[i].started = false;
        self.ctrs[i].trackers = Default::default();
        match self.agent.runtime.run(&spec).await {
            Ok(ContainerStatus::Running { started_at, .. }) => {
                self.event("Normal", "Created", &format!("Created container {cname}")).await;
                self.event("Normal", "Started", &format!("Started container {cname}")).await;
                let c = &mut self.ctrs[i];
                c.view.state = State::Running { started_at };
                c.running_since = Some(Instant::now());
                self.watch_exit(i);
                self.start_probes(i, id);
                self.ctrs[i].refresh_ready();
            }
            Ok(ContainerStatus::Exited(info)) => {
                self.event("Normal", "Started", &format!("Started container {cname}")).await;
                self.on_exit(i, &id, info).await;
            }
            Ok(ContainerStatus::Creating) => {
                self.watch_exit(i);
            }
            Err(e) => {
                let msg = e.to_string();
                self.start_failed(i, "StartError", msg, Some(id)).await;
            }
        }
        self.publish(i);
    }

    /// A container that could not be created or started: like an exit with code 128.
    async fn start_failed(&mut self, i: usize, reason: &str, message: String, id: Option<String>) {
        let cname = self.ctrs[i].name.clone();
        self.event("Warning", "Failed", &format!("Error: {message}")).await;
        tracing::warn!(pod = %self.live.name, container = %cname, reason, message = %message, "container did not start");
        if reason == "CreateContainerConfigError" || reason == "CreateContainerError" {
            let c = &mut self.ctrs[i];
            c.view.state = State::Waiting { reason: reason.into(), message: Some(message) };
            c.restart_at = Some(Instant::now() + Duration::from_secs(2).max(c.backoff));
            c.backoff = if c.backoff.is_zero() { BACKOFF_START } else { (c.backoff * 2).min(BACKOFF_MAX) };
            return;
        }
        let info = ExitInfo { exit_code: 128, signal: None, oom_killed: false, started_at: None, finished_at: now_rfc3339(), message: Some(message) };
        let id = id.unwrap_or_default();
        self.on_exit_with_reason(i, &id, info, Some(reason)).await;
    }

    fn container_spec(&self, i: usize, id: &str, attempt: u32, image: &Image, rootfs: &Path) -> Result<ContainerSpec, ConfigError> {
        let c = &self.ctrs[i];
        let ctx = self.context();
        let env = pspec::environment(&self.pod, &c.spec, &image.config, &self.sources, &ctx)?;
        let args = pspec::argv(&c.spec, &image.config, &env)?;
        let (uid, gid, additional_gids) = pspec::user(&self.pod, &c.spec, &image.config.user, rootfs)?;
        let sandbox = self.sandbox.as_ref().ok_or_else(|| ConfigError("the pod sandbox is gone".into()))?;
        let mut mounts = self.pod_mounts.clone();
        let vols = self.volumes.as_ref().ok_or_else(|| ConfigError("the pod's volumes are not set up".into()))?;
        let own = volumes::mounts(&c.spec, vols)?;
        mounts.retain(|m| !own.iter().any(|o| o.destination == m.destination));
        mounts.extend(own);
        let sc = &c.spec["securityContext"];
        let privileged = sc["privileged"].as_bool().unwrap_or(false);
        let mut labels = BTreeMap::new();
        labels.insert(LABEL_POD_UID.to_string(), self.live.uid.clone());
        labels.insert(LABEL_POD_NAME.to_string(), self.live.name.clone());
        labels.insert(LABEL_POD_NAMESPACE.to_string(), self.live.namespace.clone());
        labels.insert(LABEL_CONTAINER.to_string(), c.name.clone());
        labels.insert(LABEL_ATTEMPT.to_string(), attempt.to_string());
        labels.insert(LABEL_IMAGE_ID.to_string(), image.id.clone());
        if c.init {
            labels.insert(LABEL_INIT.to_string(), "true".into());
        }
        let cwd = c.spec["workingDir"].as_str().filter(|s| !s.is_empty()).map(String::from).unwrap_or_else(|| image.config.working_dir.clone());
        let pid = if self.pod["spec"]["hostPID"].as_bool() == Some(true) { NamespaceMode::Host } else { NamespaceMode::New };
        let ipc = if self.pod["spec"]["hostIPC"].as_bool() == Some(true) { NamespaceMode::Host } else { NamespaceMode::Join(sandbox.ipc.clone()) };
        let network = match &sandbox.net {
            Some(n) => NamespaceMode::Join(n.clone()),
            None => NamespaceMode::Host,
        };
        Ok(ContainerSpec {
            id: id.to_string(),
            labels,
            rootfs: rootfs.to_path_buf(),
            args,
            env,
            cwd,
            uid,
            gid,
            additional_gids,
            hostname: None,
            capabilities: if privileged { None } else { pspec::capabilities(&c.spec) },
            privileged,
            readonly_rootfs: sc["readOnlyRootFilesystem"].as_bool().unwrap_or(false),
            no_new_privileges: sc["allowPrivilegeEscalation"].as_bool() == Some(false),
            mounts,
            namespaces: Namespaces { network, ipc, uts: NamespaceMode::Join(sandbox.uts.clone()), pid },
            cgroup_path: format!("{}/{id}", pod_cgroup(&self.live.uid)),
            resources: pspec::resources(&c.spec),
            oom_score_adj: None,
            log_path: log_path(&self.agent.config.pods_dir(), &self.live.uid, &c.name, attempt),
            log_max_bytes: self.agent.config.log_max_bytes,
            log_max_files: self.agent.config.log_max_files,
        })
    }

    fn watch_exit(&self, i: usize) {
        let Some(id) = self.ctrs[i].current.clone() else { return };
        let (rt, tx, name) = (self.agent.runtime.clone(), self.tx.clone(), self.ctrs[i].name.clone());
        tokio::spawn(async move {
            loop {
                match rt.wait(&id).await {
                    Ok(info) => {
                        let _ = tx.send(Msg::Exited { name, id, info });
                        return;
                    }
                    Err(e) => {
                        if tx.is_closed() {
                            return;
                        }
                        tracing::debug!(container = %id, error = %e, "waiting for a container; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }

    fn start_probes(&mut self, i: usize, id: String) {
        let c = &mut self.ctrs[i];
        c.stop_probes();
        let kinds: Vec<(ProbeKind, Probe)> = if let (Some(p), false) = (&c.startup, c.started) {
            vec![(ProbeKind::Startup, p.clone())]
        } else {
            c.liveness.iter().map(|p| (ProbeKind::Liveness, p.clone())).chain(c.readiness.iter().map(|p| (ProbeKind::Readiness, p.clone()))).collect()
        };
        for (kind, p) in kinds {
            let (agent, tx, name, id) = (self.agent.clone(), self.tx.clone(), c.name.clone(), id.clone());
            let ip: Option<IpAddr> = self.pod_ip.as_deref().and_then(|s| s.parse().ok());
            c.probe_tasks.push(tokio::spawn(async move {
                tokio::time::sleep(p.initial_delay).await;
                loop {
                    let outcome = run_probe(&agent, &id, ip, &p).await;
                    if tx.send(Msg::Probe { name: name.clone(), id: id.clone(), kind, outcome }).is_err() {
                        return;
                    }
                    tokio::time::sleep(p.period).await;
                }
            }));
        }
    }

    async fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Exited { name, id, info } => {
                if let Some(i) = self.ctrs.iter().position(|c| c.name == name) {
                    self.on_exit(i, &id, info).await;
                }
            }
            Msg::Probe { name, id, kind, outcome } => {
                let Some(i) = self.ctrs.iter().position(|c| c.name == name) else { return };
                if self.ctrs[i].current.as_deref() != Some(id.as_str()) || !self.ctrs[i].running() {
                    return;
                }
                let idx = match kind {
                    ProbeKind::Startup => 0,
                    ProbeKind::Liveness => 1,
                    ProbeKind::Readiness => 2,
                };
                let probe = match kind {
                    ProbeKind::Startup => self.ctrs[i].startup.clone(),
                    ProbeKind::Liveness => self.ctrs[i].liveness.clone(),
                    ProbeKind::Readiness => self.ctrs[i].readiness.clone(),
                };
                let Some(probe) = probe else { return };
                let ok = outcome == Outcome::Success;
                if let Outcome::Failure(m) = &outcome {
                    let what = match kind {
                        ProbeKind::Startup => "Startup",
                        ProbeKind::Liveness => "Liveness",
                        ProbeKind::Readiness => "Readiness",
                    };
                    self.event("Warning", "Unhealthy", &format!("{what} probe failed: {m}")).await;
                }
                let verdict = self.ctrs[i].trackers[idx].record(ok, &probe);
                match (kind, verdict) {
                    (ProbeKind::Startup, Some(true)) => {
                        self.ctrs[i].started = true;
                        self.start_probes(i, id);
                    }
                    (ProbeKind::Startup | ProbeKind::Liveness, Some(false)) => {
                        let what = if kind == ProbeKind::Startup { "startup" } else { "liveness" };
                        let cname = self.ctrs[i].name.clone();
                        self.event("Normal", "Killing", &format!("Container {cname} failed {what} probe, will be restarted")).await;
                        self.ctrs[i].killed_by_probe = true;
                        self.ctrs[i].stop_probes();
                        let grace = probe.termination_grace.unwrap_or_else(|| self.grace());
                        let rt = self.agent.runtime.clone();
                        // The exit arrives through watch_exit like any other.
                        tokio::spawn(async move {
                            let _ = rt.stop(&id, grace).await;
                        });
                    }
                    _ => {}
                }
                self.ctrs[i].refresh_ready();
            }
        }
    }

    async fn on_exit(&mut self, i: usize, id: &str, info: ExitInfo) {
        self.on_exit_with_reason(i, id, info, None).await
    }

    async fn on_exit_with_reason(&mut self, i: usize, id: &str, info: ExitInfo, reason: Option<&str>) {
        if !id.is_empty() && self.ctrs[i].current.as_deref() != Some(id) {
            return;
        }
        let policy = self.restart_policy();
        let c = &mut self.ctrs[i];
        c.stop_probes();
        let reason = reason.map(String::from).unwrap_or_else(|| Terminated::reason_for(info.exit_code, info.oom_killed).to_string());
        let term = Terminated {
            exit_code: info.exit_code,
            signal: info.signal,
            reason,
            message: info.message.clone(),
            started_at: info.started_at.clone(),
            finished_at: info.finished_at.clone(),
            container_id: (!id.is_empty()).then(|| format!("rkube://{id}")),
        };
        let ran_long = c.running_since.map(|t| t.elapsed() >= BACKOFF_RESET).unwrap_or(false);
        c.running_since = None;
        let restart = if c.init && !c.sidecar {
            info.exit_code != 0 && policy != "Never"
        } else if c.init {
            true
        } else {
            match policy.as_str() {
                "Always" => true,
                "OnFailure" => info.exit_code != 0 || c.killed_by_probe,
                _ => false,
            }
        };
        if c.init && !c.sidecar && info.exit_code == 0 {
            c.done = true;
        }
        tracing::info!(pod = %self.live.name, container = %c.name, exit_code = info.exit_code, oom = info.oom_killed, restart, "container exited");
        if !restart {
            // An app container that will not run again is done; a failed init container
            // under restartPolicy Never stays as it is and fails the pod (status::phase).
            if !c.init {
                c.done = true;
            }
            c.view.state = State::Terminated(term);
            c.refresh_ready();
            self.publish(i);
            return;
        }
        if ran_long {
            c.backoff = Duration::ZERO;
        }
        let delay = c.backoff;
        c.backoff = if delay.is_zero() { BACKOFF_START } else { (delay * 2).min(BACKOFF_MAX) };
        c.restart_at = Some(Instant::now() + delay);
        c.view.last_state = Some(term.clone());
        if delay.is_zero() {
            c.view.state = State::Terminated(term);
        } else {
            let name = c.name.clone();
            c.view.state = State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(format!("back-off {}s restarting failed container={name} pod={}_{}({})", delay.as_secs(), self.live.name, self.live.namespace, self.live.uid)),
            };
            let msg = format!("Back-off restarting failed container {name} in pod {}_{}({})", self.live.name, self.live.namespace, self.live.uid);
            self.event("Warning", "BackOff", &msg).await;
        }
        self.ctrs[i].refresh_ready();
        self.publish(i);
    }

    /// Stops every running container (SIGTERM, grace, SIGKILL), all at once.
    async fn stop_all(&mut self, grace: Duration) {
        let mut stops = Vec::new();
        for c in self.ctrs.iter_mut() {
            c.stop_probes();
            c.restart_at = None;
            if let (Some(id), true) = (c.current.clone(), c.running()) {
                let rt = self.agent.runtime.clone();
                let name = c.name.clone();
                stops.push(async move { (name, rt.stop(&id, grace).await) });
            }
        }
        for c in &self.ctrs {
            if c.running() {
                self.event("Normal", "Killing", &format!("Stopping container {}", c.name)).await;
            }
        }
        for (name, r) in futures::future::join_all(stops).await {
            let Some(i) = self.ctrs.iter().position(|c| c.name == name) else { continue };
            let c = &mut self.ctrs[i];
            match r {
                Ok(info) => {
                    c.view.state = State::Terminated(Terminated {
                        exit_code: info.exit_code,
                        signal: info.signal,
                        reason: Terminated::reason_for(info.exit_code, info.oom_killed).into(),
                        message: info.message,
                        started_at: info.started_at,
                        finished_at: info.finished_at,
                        container_id: c.current.as_ref().map(|id| format!("rkube://{id}")),
                    });
                }
                Err(e) => tracing::warn!(pod = %self.live.name, container = %name, error = %e, "stopping a container"),
            }
            c.done = true;
            c.refresh_ready();
        }
    }

    /// Stops everything and removes the pod from the host.
    async fn terminate(&mut self, grace: Duration) {
        tracing::info!(pod = %self.live.name, namespace = %self.live.namespace, grace_s = grace.as_secs(), "stopping pod");
        self.stop_all(grace).await;
        let ids: Vec<String> = match self.agent.runtime.list() {
            Ok(all) => all.into_iter().filter(|c| c.labels.get(LABEL_POD_UID) == Some(&self.live.uid)).map(|c| c.id).collect(),
            Err(_) => self.ctrs.iter().filter_map(|c| c.current.clone()).collect(),
        };
        for id in &ids {
            if let Err(e) = self.agent.runtime.remove(id).await {
                tracing::warn!(container = %id, error = %e, "removing a container");
            }
        }
        teardown_host(&self.agent, &self.live.uid, &ids).await;
        for c in self.ctrs.iter_mut() {
            c.current = None;
        }
        self.live.containers.lock().expect("live lock").clear();
    }

    /// The final step of graceful deletion: the containers are gone, so the object can go.
    async fn delete_object(&self) {
        let body = json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0, "preconditions": {"uid": self.live.uid}});
        match self.agent.kube.delete(&self.pod_path(), &body).await {
            Ok(_) => tracing::info!(pod = %self.live.name, namespace = %self.live.namespace, "pod deleted"),
            Err(e) if e.is_not_found() || e.is_conflict() => {}
            Err(e) => tracing::warn!(pod = %self.live.name, error = %e, "could not finish the pod's deletion"),
        }
    }

    async fn write_status(&mut self) {
        let init: Vec<ContainerView> = self.ctrs.iter().filter(|c| c.init).map(|c| c.view.clone()).collect();
        let mut apps: Vec<ContainerView> = self.ctrs.iter().filter(|c| !c.init).map(|c| c.view.clone()).collect();
        if let Some((reason, message)) = &self.blocked {
            for a in apps.iter_mut() {
                if let State::Waiting { reason: r, message: m } = &mut a.state {
                    if r == "ContainerCreating" || r == "PodInitializing" {
                        *m = Some(format!("{reason}: {message}"));
                    }
                }
            }
        }
        let gates: Vec<(String, bool)> = self.pod["spec"]["readinessGates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g["conditionType"].as_str())
            .map(|t| {
                let ok = self.pod["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"].as_str() == Some(t) && c["status"].as_str() == Some("True"));
                (t.to_string(), ok)
            })
            .collect();
        let facts = PodFacts {
            restart_policy: self.restart_policy(),
            sandbox_ready: self.sandbox.is_some(),
            pod_ip: self.pod_ip.clone(),
            host_ip: self.agent.config.node_ip.to_string(),
            start_time: self.start_time.clone(),
            failed: self.failed.clone(),
            readiness_gates: gates,
        };
        let previous = &self.pod["status"];
        let mut s = status::pod_status(&init, &apps, &facts, previous, &now_rfc3339());
        // Compared with what we wrote last (not with what the server returned, which may
        // carry fields we never set): an unchanged pod writes nothing.
        let key = strip_times(&s);
        if self.written.as_ref() == Some(&key) {
            return;
        }
        if let Some(obj) = s.as_object_mut() {
            obj.remove("qosClass");
        }
        let patch = json!({"status": s});
        match self.agent.kube.merge_patch(&format!("{}/status", self.pod_path()), &patch).await {
            Ok(updated) => {
                self.written = Some(key);
                self.pod = Arc::new(updated);
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                tracing::debug!(pod = %self.live.name, error = %e, "status write failed; retrying");
                self.retry_at = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }
}

/// A status without its timestamps that change on every computation.
fn strip_times(s: &Value) -> Value {
    let mut s = s.clone();
    if let Some(cs) = s.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in cs {
            if let Some(o) = c.as_object_mut() {
                o.remove("lastProbeTime");
                o.remove("lastTransitionTime");
            }
        }
    }
    if let Some(o) = s.as_object_mut() {
        o.remove("qosClass");
    }
    s
}

/// `<repository>@<manifest digest>` (what `imageID` shows).
fn image_id_string(reference: &str, digest: &str) -> String {
    if digest.is_empty() {
        return String::new();
    }
    if digest.contains('@') {
        return digest.to_string();
    }
    let repo = match runtime::image::Reference::parse(reference) {
        Ok(r) => format!("{}/{}", r.registry, r.repository),
        Err(_) => reference.split('@').next().unwrap_or(reference).to_string(),
    };
    format!("{repo}@{digest}")
}

/// imagePullPolicy, defaulted as the API server does (Always for `:latest` or no tag).
fn pull_policy(container: &Value, image: &str) -> PullPolicy {
    match container["imagePullPolicy"].as_str() {
        Some("Always") => PullPolicy::Always,
        Some("Never") => PullPolicy::Never,
        Some("IfNotPresent") => PullPolicy::IfNotPresent,
        _ => {
            let last = image.rsplit('/').next().unwrap_or(image);
            if image.contains('@') {
                PullPolicy::IfNotPresent
            } else if !last.contains(':') || last.ends_with(":latest") {
                PullPolicy::Always
            } else {
                PullPolicy::IfNotPresent
            }
        }
    }
}

fn host_ports(pod: &Value) -> Vec<runtime::cni::PortMapping> {
    let mut out = Vec::new();
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        for p in c["ports"].as_array().into_iter().flatten() {
            let (Some(hp), Some(cp)) = (p["hostPort"].as_u64(), p["containerPort"].as_u64()) else { continue };
            if hp == 0 {
                continue;
            }
            out.push(runtime::cni::PortMapping {
                host_port: hp as u16,
                container_port: cp as u16,
                protocol: p["protocol"].as_str().unwrap_or("TCP").to_ascii_lowercase(),
                host_ip: p["hostIP"].as_str().filter(|s| !s.is_empty()).map(String::from),
            });
        }
    }
    out
}

/// One probe run, bounded by its timeout.
async fn run_probe(agent: &Arc<Agent>, id: &str, ip: Option<IpAddr>, p: &Probe) -> Outcome {
    match &p.action {
        probe::Action::Exec(cmd) => {
            let req = runtime::exec::ExecRequest { command: cmd.clone(), tty: false, stdin: false, env: Vec::new() };
            let mut session = match agent.runtime.exec(id, req).await {
                Ok(s) => s,
                Err(e) => return Outcome::Failure(e.to_string()),
            };
            let mut out = session.stdout.take();
            let mut err = session.stderr.take();
            let collect = async {
                use tokio::io::AsyncReadExt;
                let mut buf = Vec::new();
                if let Some(o) = out.as_mut() {
                    let _ = o.read_to_end(&mut buf).await;
                }
                if let Some(e) = err.as_mut() {
                    let _ = e.read_to_end(&mut buf).await;
                }
                let code = session.wait().await;
                (buf, code)
            };
            match tokio::time::timeout(p.timeout, collect).await {
                Ok((_, Ok(0))) => Outcome::Success,
                Ok((buf, Ok(code))) => {
                    let text = String::from_utf8_lossy(&buf[..buf.len().min(1024)]).trim().to_string();
                    Outcome::Failure(if text.is_empty() { format!("command {cmd:?} exited with {code}") } else { text })
                }
                Ok((_, Err(e))) => Outcome::Failure(e.to_string()),
                Err(_) => Outcome::Failure(format!("command timed out after {}s", p.timeout.as_secs())),
            }
        }
        probe::Action::Http { .. } => match ip {
            Some(ip) => probe::http(agent.config.pod_netns.as_deref(), ip, &p.action, p.timeout).await,
            None => Outcome::Failure("the pod has no IP".into()),
        },
        probe::Action::Tcp { .. } => match ip {
            Some(ip) => probe::tcp(agent.config.pod_netns.as_deref(), ip, &p.action, p.timeout).await,
            None => Outcome::Failure("the pod has no IP".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_defaults() {
        let c = json!({});
        assert_eq!(pull_policy(&c, "busybox"), PullPolicy::Always);
        assert_eq!(pull_policy(&c, "busybox:latest"), PullPolicy::Always);
        assert_eq!(pull_policy(&c, "127.0.0.1:5000/busybox"), PullPolicy::Always);
        assert_eq!(pull_policy(&c, "127.0.0.1:5000/busybox:1.36"), PullPolicy::IfNotPresent);
        assert_eq!(pull_policy(&c, "busybox@sha256:abc"), PullPolicy::IfNotPresent);
        assert_eq!(pull_policy(&json!({"imagePullPolicy": "Never"}), "busybox"), PullPolicy::Never);
    }

    #[test]
    fn host_port_mappings() {
        let pod = json!({"spec": {"containers": [{"ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 53, "protocol": "UDP", "hostPort": 5353, "hostIP": "127.0.0.1"}, {"containerPort": 9000}]}]}});
        let m = host_ports(&pod);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].host_port, m[0].container_port, m[0].protocol.as_str()), (8080, 80, "tcp"));
        assert_eq!((m[1].protocol.as_str(), m[1].host_ip.as_deref()), ("udp", Some("127.0.0.1")));
    }

    #[test]
    fn status_comparison_ignores_times() {
        let a = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "a", "lastProbeTime": null}]});
        let b = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "b"}]});
        assert_eq!(strip_times(&a), strip_times(&b));
        let c = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "b"}]});
        assert_ne!(strip_times(&a), strip_times(&c));
    }

    #[test]
    fn image_ids() {
        assert_eq!(image_id_string("docker.io/library/busybox:latest", "sha256:ab"), "docker.io/library/busybox@sha256:ab");
        assert_eq!(image_id_string("x", ""), "");
    }
}
