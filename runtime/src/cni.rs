//! Pod networking through CNI plugins (Debian's containernetworking-plugins under
//! /usr/lib/cni): a `bridge` network with `host-local` IPAM over the node's podCIDR, `portmap`
//! for hostPorts, `loopback`. The runtime executes the plugins itself per the CNI spec
//! (CNI_COMMAND / CNI_CONTAINERID / CNI_NETNS / CNI_IFNAME / CNI_PATH in the environment, the
//! network config on stdin, the result on stdout) and caches each attachment's result and
//! config so DEL works after a restart.
//!
//! The network is the equivalent of this conflist (CNI spec 1.0.0, which the 1.1.x plugins
//! accept), `portmap` present only when the pod has hostPorts:
//!
//! ```json
//! {"cniVersion": "1.0.0", "name": "<network_name>", "plugins": [
//!   {"type": "bridge", "bridge": "<bridge>", "isGateway": true, "ipMasq": <ip_masq>,
//!    "hairpinMode": true, "mtu": <mtu>,
//!    "ipam": {"type": "host-local", "ranges": [[{"subnet": "<pod_cidr>"}]],
//!             "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "<state_dir>/ipam"}},
//!   {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true,
//!    "runtimeConfig": {"portMappings": [...]}}]}
//! ```
//!
//! The pods' loopback interfaces are brought up by `sandbox::create`, so the `loopback` plugin
//! is not part of the chain.
//!
//! Cache: `state_dir/results/<id>.json` holds the conflist, the namespace path, the ports and the
//! final ADD result. It is written *before* ADD runs (with no result), so an ADD interrupted by a
//! crash still shows up in `attachments()` and is undone by `del`; DEL always runs with the
//! cached conflist (portmap can only remove its rules when given the same port mappings), even
//! if the node's settings have changed since. host-local's allocations live in
//! `state_dir/ipam/<network_name>/`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::error::IoContext;
use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct CniConfig {
    /// Directories holding the plugin executables (default `/usr/lib/cni`, `/opt/cni/bin`).
    pub plugin_dirs: Vec<PathBuf>,
    /// Network name (also names the host-local IPAM state dir).
    pub network_name: String,
    /// Bridge device on the node, e.g. `rkube0`.
    pub bridge: String,
    /// The node's pod CIDR, e.g. `100.80.1.0/24`; the gateway (the bridge) is its first address.
    pub pod_cidr: String,
    pub mtu: Option<u32>,
    /// Masquerade traffic from pods leaving the pod network (bridge plugin ipMasq; needs
    /// iptables). Off in tests.
    pub ip_masq: bool,
    /// Where per-attachment results and host-local's allocations are kept.
    pub state_dir: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    /// "tcp" / "udp" / "sctp"
    pub protocol: String,
    pub host_ip: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The pod's addresses (without prefix length).
    pub ips: Vec<IpAddr>,
    /// The interface inside the pod's network namespace (`eth0`).
    pub interface: String,
}

pub struct Cni {
    config: CniConfig,
    /// `bridge`, `host-local`, `portmap` resolved by `new`.
    plugins: HashMap<&'static str, PathBuf>,
    /// Serialises operations on one attachment id within this process.
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

const CNI_VERSION: &str = "1.0.0";
const IFNAME: &str = "eth0";
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(30);
const REQUIRED_PLUGINS: [&str; 3] = ["bridge", "host-local", "portmap"];
const DEFAULT_PLUGIN_DIRS: [&str; 2] = ["/usr/lib/cni", "/opt/cni/bin"];
/// Plugin output quoted in errors is cut to this many bytes.
const MAX_QUOTED_OUTPUT: usize = 2048;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct CachedAttachment {
    id: String,
    netns: PathBuf,
    ifname: String,
    ports: Vec<CachedPort>,
    /// `{"cniVersion", "name", "plugins": [...]}` as used for ADD.
    config: Value,
    /// The final ADD result; None while ADD runs (or if it was interrupted).
    result: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct CachedPort {
    host_port: u16,
    container_port: u16,
    protocol: String,
    host_ip: Option<String>,
}

impl Cni {
    /// Checks that the plugins exist; errors name the missing plugin and the dirs searched.
    pub fn new(mut config: CniConfig) -> Result<Cni> {
        validate_config(&config)?;
        if config.plugin_dirs.is_empty() {
            config.plugin_dirs = DEFAULT_PLUGIN_DIRS.iter().map(PathBuf::from).collect();
        }
        // host-local gets dataDir from the config and runs with our working directory; an
        // absolute path keeps both meaning the same place.
        config.state_dir = std::path::absolute(&config.state_dir)
            .ctx(|| format!("resolving CNI state dir {}", config.state_dir.display()))?;
        let mut plugins = HashMap::new();
        for name in REQUIRED_PLUGINS {
            let path = find_plugin(&config.plugin_dirs, name).ok_or_else(|| {
                Error::Network(format!(
                    "CNI plugin {name} not found in {}",
                    display_dirs(&config.plugin_dirs)
                ))
            })?;
            plugins.insert(name, path);
        }
        Ok(Cni {
            config,
            plugins,
            locks: Mutex::new(HashMap::new()),
        })
    }

    /// Attaches the namespace to the pod network (interface `eth0`), with hostPort mappings.
    /// Idempotent for the same `id` (returns the cached attachment).
    ///
    /// The cached attachment is returned only if it was made for the same namespace path and
    /// ports and `eth0` in that namespace still has the cached address; otherwise (a namespace
    /// re-created after a reboot, changed ports, an interrupted ADD) the old attachment is
    /// deleted and a new one made.
    pub async fn add(&self, id: &str, netns: &Path, ports: &[PortMapping]) -> Result<Attachment> {
        validate_id(id)?;
        let ports = validate_ports(ports)?;
        if !crate::sandbox::is_pinned(netns)? {
            return Err(Error::Network(format!(
                "CNI ADD for {id}: {} is not a network namespace",
                netns.display()
            )));
        }
        let lock = self.id_lock(id);
        let _guard = lock.lock().await;
        let started = Instant::now();

        if let Some(cached) = self.load(id)? {
            if let Some(result) = &cached.result
                && cached.netns == netns
                && cached.ports == ports
            {
                let attachment = attachment_from(result, &cached.ifname)?;
                if still_attached(netns, &attachment).await {
                    return Ok(attachment);
                }
            }
            tracing::info!(id, netns = %netns.display(), "replacing a stale or incomplete CNI attachment");
            // The old attachment lives in the namespace it was made in.
            self.run_del(&cached, None).await?;
            self.forget(id)?;
        }

        let entry = CachedAttachment {
            id: id.to_owned(),
            netns: netns.to_owned(),
            ifname: IFNAME.to_owned(),
            ports: ports.clone(),
            config: self.conflist(&ports),
            result: None,
        };
        self.store(&entry)?;

        let netns_str = netns.to_string_lossy().into_owned();
        let mut prev: Option<Value> = None;
        let mut failure = None;
        for plugin in plugin_list(&entry.config) {
            let request = request_config(&entry.config, plugin, prev.as_ref());
            match self
                .invoke(plugin_type(plugin), "ADD", id, &netns_str, &request)
                .await
            {
                Ok(result) => prev = result,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let outcome = match (failure, prev) {
            (None, Some(result)) => attachment_from(&result, IFNAME).map(|a| (a, result)),
            (None, None) => Err(Error::Network(format!(
                "CNI ADD for {id} returned no result"
            ))),
            (Some(e), _) => Err(e),
        };
        match outcome {
            Ok((attachment, result)) => {
                self.store(&CachedAttachment {
                    result: Some(result),
                    ..entry
                })?;
                tracing::debug!(id, ips = ?attachment.ips, elapsed = ?started.elapsed(), "CNI ADD done");
                Ok(attachment)
            }
            Err(e) => {
                // Per spec, undo a failed ADD with DEL; the cache stays if that fails too, so a
                // later `del` retries.
                match self.run_del(&entry, Some(netns)).await {
                    Ok(()) => self.forget(id)?,
                    Err(cleanup) => {
                        tracing::warn!(id, error = %cleanup, "cleaning up after a failed CNI ADD failed")
                    }
                }
                Err(e)
            }
        }
    }

    /// Detaches (releases the IP, removes the veth and port mappings). Works from the cache
    /// when the namespace is already gone. Idempotent.
    ///
    /// Without a cache entry nothing is done: `add` writes the entry before running a plugin,
    /// so an id without one was never attached (or is already detached). With `netns` None the
    /// cached path is used; a path that no longer holds a namespace is passed to the plugins as
    /// empty (the spec's "namespace gone"), and the veth vanishes with the namespace itself.
    pub async fn del(&self, id: &str, netns: Option<&Path>) -> Result<()> {
        validate_id(id)?;
        let lock = self.id_lock(id);
        let _guard = lock.lock().await;
        let started = Instant::now();
        let Some(cached) = self.load(id)? else {
            tracing::debug!(id, "CNI DEL: no cached attachment");
            return Ok(());
        };
        self.run_del(&cached, netns).await?;
        self.forget(id)?;
        tracing::debug!(id, elapsed = ?started.elapsed(), "CNI DEL done");
        Ok(())
    }

    /// Ids of attachments in the cache (for reconciling after a restart).
    pub fn attachments(&self) -> Result<Vec<String>> {
        let dir = self.results_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("listing CNI cache {}", dir.display()), e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.ctx(|| format!("listing CNI cache {}", dir.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name.strip_suffix(".json")
                && validate_id(id).is_ok()
            {
                ids.push(id.to_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// DEL through the chain in reverse, with the cached config and result. Every plugin runs
    /// even if an earlier one failed (each cleans up its own part); the first error is returned.
    async fn run_del(&self, cached: &CachedAttachment, netns: Option<&Path>) -> Result<()> {
        let candidate = netns.unwrap_or(&cached.netns);
        // bridge refuses a path that is not a namespace ("unknown FS magic") and would then not
        // release the IP; an empty CNI_NETNS is the spec's way of saying it is gone.
        let netns_str = if crate::sandbox::is_pinned(candidate).unwrap_or(false) {
            candidate.to_string_lossy().into_owned()
        } else {
            String::new()
        };
        let mut first_error = None;
        for plugin in plugin_list(&cached.config).iter().rev() {
            let request = request_config(&cached.config, plugin, cached.result.as_ref());
            if let Err(e) = self
                .invoke(plugin_type(plugin), "DEL", &cached.id, &netns_str, &request)
                .await
            {
                tracing::warn!(id = %cached.id, error = %e, "CNI DEL failed");
                first_error.get_or_insert(e);
            }
        }
        let masq = plugin_list(&cached.config).iter().any(|p| {
            plugin_type(p) == "bridge" && p.get("ipMasq").and_then(Value::as_bool) == Some(true)
        });
        if netns_str.is_empty() && masq {
            // bridge (1.1.x) finds the addresses whose masquerade rules it must remove on the
            // pod's interface, so with the namespace gone it leaves them behind.
            let network = cached.config.get("name").and_then(Value::as_str).unwrap_or("");
            remove_masquerade_rules(network, &cached.id).await;
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Executes one plugin; the parsed stdout for ADD, None for DEL.
    async fn invoke(
        &self,
        plugin: &str,
        command: &str,
        id: &str,
        netns: &str,
        request: &Value,
    ) -> Result<Option<Value>> {
        let path = match self.plugins.get(plugin) {
            Some(path) => path.clone(),
            None => find_plugin(&self.config.plugin_dirs, plugin).ok_or_else(|| {
                Error::Network(format!(
                    "CNI plugin {plugin} not found in {}",
                    display_dirs(&self.config.plugin_dirs)
                ))
            })?,
        };
        let stdin_data = serde_json::to_vec(request)
            .map_err(|e| Error::Network(format!("encoding the {plugin} config for {id}: {e}")))?;
        let mut cni_path = OsString::new();
        for (i, dir) in self.config.plugin_dirs.iter().enumerate() {
            if i > 0 {
                cni_path.push(":");
            }
            cni_path.push(dir);
        }
        let started = Instant::now();
        // A clean environment: stray CNI_* variables of the agent must not reach the plugin.
        // PATH stays, portmap runs iptables through it.
        let mut child = tokio::process::Command::new(&path)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
            )
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", IFNAME)
            .env("CNI_PATH", &cni_path)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .ctx(|| format!("running CNI plugin {}", path.display()))?;
        let mut stdin = child.stdin.take();
        let write = async move {
            if let Some(stdin) = stdin.as_mut() {
                stdin.write_all(&stdin_data).await?;
                stdin.shutdown().await?;
            }
            drop(stdin);
            Ok::<_, std::io::Error>(())
        };
        let run = async { tokio::join!(write, child.wait_with_output()) };
        let (written, output) = tokio::time::timeout(PLUGIN_TIMEOUT, run)
            .await
            .map_err(|_| {
                Error::Network(format!(
                    "CNI plugin {plugin} {command} for {id} timed out after {}s",
                    PLUGIN_TIMEOUT.as_secs()
                ))
            })?;
        let output =
            output.ctx(|| format!("waiting for CNI plugin {plugin} {command} for {id}"))?;
        tracing::trace!(plugin, command, id, elapsed = ?started.elapsed(), status = %output.status, "CNI plugin ran");

        if !output.status.success() {
            return Err(plugin_error(plugin, command, id, &output));
        }
        if let Err(e) = written {
            // The plugin succeeded without reading all of its config: not trustworthy.
            return Err(Error::Network(format!(
                "CNI plugin {plugin} {command} for {id}: writing its config failed: {e}"
            )));
        }
        if command != "ADD" {
            return Ok(None);
        }
        let result: Value = serde_json::from_slice(&output.stdout).map_err(|e| {
            Error::Network(format!(
                "CNI plugin {plugin} ADD for {id} printed an invalid result ({e}): {}",
                quote(&output.stdout)
            ))
        })?;
        if result.get("code").is_some() && result.get("msg").is_some() {
            return Err(plugin_error(plugin, command, id, &output));
        }
        Ok(Some(result))
    }

    fn conflist(&self, ports: &[CachedPort]) -> Value {
        let c = &self.config;
        let default_dst = match crate::routes::parse_cidr(&c.pod_cidr) {
            Some((IpAddr::V6(_), _)) => "::/0",
            _ => "0.0.0.0/0",
        };
        let mut bridge = json!({
            "type": "bridge",
            "bridge": c.bridge,
            "isGateway": true,
            "ipMasq": c.ip_masq,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": c.pod_cidr}]],
                "routes": [{"dst": default_dst}],
                "dataDir": c.state_dir.join("ipam"),
            },
        });
        if let Some(mtu) = c.mtu {
            bridge["mtu"] = json!(mtu);
        }
        let mut plugins = vec![bridge];
        if !ports.is_empty() {
            let mappings: Vec<Value> = ports
                .iter()
                .map(|p| {
                    let mut m = json!({
                        "hostPort": p.host_port,
                        "containerPort": p.container_port,
                        "protocol": p.protocol,
                    });
                    if let Some(ip) = &p.host_ip {
                        m["hostIP"] = json!(ip);
                    }
                    m
                })
                .collect();
            plugins.push(json!({
                "type": "portmap",
                "capabilities": {"portMappings": true},
                "snat": true,
                "runtimeConfig": {"portMappings": mappings},
            }));
        }
        json!({"cniVersion": CNI_VERSION, "name": c.network_name, "plugins": plugins})
    }

    fn results_dir(&self) -> PathBuf {
        self.config.state_dir.join("results")
    }

    fn cache_path(&self, id: &str) -> PathBuf {
        self.results_dir().join(format!("{id}.json"))
    }

    /// The cache entry of `id`. An unreadable entry is replaced by one built from the current
    /// settings (no ports, namespace unknown), so `del` still releases the IP.
    fn load(&self, id: &str) -> Result<Option<CachedAttachment>> {
        let path = self.cache_path(id);
        let data = match std::fs::read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::io(
                    format!("reading CNI cache {}", path.display()),
                    e,
                ));
            }
        };
        match serde_json::from_slice::<CachedAttachment>(&data) {
            Ok(entry) if entry.id == id => Ok(Some(entry)),
            Ok(_) | Err(_) => {
                tracing::warn!(path = %path.display(), "unreadable CNI cache entry; deleting with the current settings");
                Ok(Some(CachedAttachment {
                    id: id.to_owned(),
                    netns: PathBuf::new(),
                    ifname: IFNAME.to_owned(),
                    ports: Vec::new(),
                    config: self.conflist(&[]),
                    result: None,
                }))
            }
        }
    }

    fn store(&self, entry: &CachedAttachment) -> Result<()> {
        let dir = self.results_dir();
        std::fs::create_dir_all(&dir).ctx(|| format!("creating CNI cache {}", dir.display()))?;
        let path = self.cache_path(&entry.id);
        let tmp = dir.join(format!(".{}.json.tmp", entry.id));
        let data = serde_json::to_vec_pretty(entry)
            .map_err(|e| Error::Network(format!("encoding CNI cache entry {}: {e}", entry.id)))?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&data)?;
            // The entry must survive a crash: it is all DEL has to go on.
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().ctx(|| format!("writing CNI cache {}", path.display()))
    }

    fn forget(&self, id: &str) -> Result<()> {
        let path = self.cache_path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(
                format!("removing CNI cache {}", path.display()),
                e,
            )),
        }
    }

    fn id_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lock) = locks.get(id).and_then(Weak::upgrade) {
            return lock;
        }
        locks.retain(|_, weak| weak.strong_count() > 0);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(id.to_owned(), Arc::downgrade(&lock));
        lock
    }
}

/// Whether `eth0` in `netns` still carries the attachment's IPv4 address (an attachment with
/// only IPv6 addresses is trusted as cached).
async fn still_attached(netns: &Path, attachment: &Attachment) -> bool {
    let v4: Vec<_> = attachment
        .ips
        .iter()
        .filter_map(|ip| match ip {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
        .collect();
    if v4.is_empty() {
        return true;
    }
    let netns = netns.to_owned();
    let ifname = attachment.interface.clone();
    let found =
        tokio::task::spawn_blocking(move || crate::sandbox::interface_ipv4(&netns, &ifname)).await;
    match found {
        Ok(Ok(Some(addr))) => v4.contains(&addr),
        Ok(Ok(None)) => false,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "checking a cached CNI attachment failed");
            false
        }
        Err(_) => false,
    }
}

/// Removes the bridge plugin's ipMasq rules of one attachment, found by the comment the plugin
/// tags them with (`name: "<network>" id: "<id>"`): the POSTROUTING jumps and their per-pod
/// chains, IPv4 and IPv6. Best effort: failures are logged.
async fn remove_masquerade_rules(network: &str, id: &str) {
    let marker = format!("--comment \"name: \\\"{network}\\\" id: \\\"{id}\\\"\"");
    for tool in ["iptables", "ip6tables"] {
        let listed = match iptables(tool, &["-t", "nat", "-S", "POSTROUTING"]).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::debug!(tool, error = %e, "listing masquerade rules failed");
                continue;
            }
        };
        let mut chains = Vec::new();
        for line in listed.lines().filter(|l| l.starts_with("-A POSTROUTING ") && l.contains(&marker)) {
            let Some(mut args) = split_rule(line) else {
                tracing::warn!(rule = line, "cannot parse an iptables rule");
                continue;
            };
            args[0] = "-D".into();
            if let Some(pos) = args.iter().position(|a| a == "-j")
                && let Some(chain) = args.get(pos + 1)
                && chain.starts_with("CNI-")
            {
                chains.push(chain.clone());
            }
            let mut full = vec!["-t".to_string(), "nat".into()];
            full.extend(args);
            let full: Vec<&str> = full.iter().map(String::as_str).collect();
            if let Err(e) = iptables(tool, &full).await {
                tracing::warn!(tool, id, error = %e, "removing a masquerade rule failed");
            }
        }
        for chain in chains {
            for op in ["-F", "-X"] {
                if let Err(e) = iptables(tool, &["-t", "nat", op, &chain]).await {
                    tracing::warn!(tool, id, chain, error = %e, "removing a masquerade chain failed");
                }
            }
        }
    }
}

async fn iptables(tool: &str, args: &[&str]) -> Result<String> {
    let shown = format!("{tool} {}", args.join(" "));
    let child = tokio::process::Command::new(tool)
        .arg("-w")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .ctx(|| format!("running {shown}"))?;
    let out = tokio::time::timeout(PLUGIN_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| Error::Network(format!("{shown} timed out")))?
        .ctx(|| format!("running {shown}"))?;
    if !out.status.success() {
        return Err(Error::Network(format!("{shown} failed: {}", quote(&out.stderr))));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Splits an `iptables -S` line into arguments: words, or double-quoted strings with `\"` and
/// `\\` escapes.
fn split_rule(line: &str) -> Option<Vec<String>> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let Some(&first) = chars.peek() else { return Some(args) };
        let mut arg = String::new();
        if first == '"' {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => arg.push(chars.next()?),
                    c => arg.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                arg.push(c);
                chars.next();
            }
        }
        args.push(arg);
    }
}

fn plugin_list(config: &Value) -> &[Value] {
    config
        .get("plugins")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn plugin_type(plugin: &Value) -> &str {
    plugin.get("type").and_then(Value::as_str).unwrap_or("")
}

/// A plugin's request config: its conflist entry plus the list's name and cniVersion and the
/// previous result (spec: "Deriving execution configuration from plugin configuration").
fn request_config(list: &Value, plugin: &Value, prev: Option<&Value>) -> Value {
    let mut request = plugin.clone();
    if let Some(obj) = request.as_object_mut() {
        obj.insert(
            "cniVersion".into(),
            list.get("cniVersion")
                .cloned()
                .unwrap_or(json!(CNI_VERSION)),
        );
        obj.insert(
            "name".into(),
            list.get("name").cloned().unwrap_or(Value::Null),
        );
        match prev {
            Some(prev) => obj.insert("prevResult".into(), prev.clone()),
            None => obj.remove("prevResult"),
        };
    }
    request
}

/// The spec's error object (`code`, `msg`, `details`) when the plugin printed one, else its
/// exit status and output.
fn plugin_error(plugin: &str, command: &str, id: &str, output: &std::process::Output) -> Error {
    #[derive(Deserialize)]
    struct CniError {
        code: Option<u64>,
        msg: Option<String>,
        details: Option<String>,
    }
    if let Ok(err) = serde_json::from_slice::<CniError>(&output.stdout)
        && let Some(msg) = err.msg
    {
        let details = err
            .details
            .filter(|d| !d.is_empty())
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        let code = err.code.map(|c| format!(" (code {c})")).unwrap_or_default();
        return Error::Network(format!(
            "CNI plugin {plugin} {command} for {id} failed: {msg}{details}{code}"
        ));
    }
    let mut text = format!(
        "CNI plugin {plugin} {command} for {id} failed ({})",
        output.status
    );
    for (label, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        if !bytes.trim_ascii().is_empty() {
            text.push_str(&format!("; {label}: {}", quote(bytes)));
        }
    }
    Error::Network(text)
}

fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes.trim_ascii());
    if text.len() <= MAX_QUOTED_OUTPUT {
        return text.into_owned();
    }
    let mut end = MAX_QUOTED_OUTPUT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// The sandbox interface's addresses from a CNI (1.0, or 0.3/0.4 alike) result.
fn attachment_from(result: &Value, ifname: &str) -> Result<Attachment> {
    let interfaces = result
        .get("interfaces")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let in_sandbox = |i: &Value| {
        i.get("sandbox")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    let name_of = |i: &Value| i.get("name").and_then(Value::as_str).map(str::to_owned);
    let sandbox_index = interfaces
        .iter()
        .position(|i| in_sandbox(i) && name_of(i).as_deref() == Some(ifname))
        .or_else(|| interfaces.iter().position(in_sandbox));
    let interface = sandbox_index
        .and_then(|i| name_of(&interfaces[i]))
        .unwrap_or_else(|| ifname.to_owned());
    let mut ips = Vec::new();
    for ip in result
        .get("ips")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let on_sandbox = match (ip.get("interface").and_then(Value::as_u64), sandbox_index) {
            (Some(index), Some(sandbox)) => index as usize == sandbox,
            _ => true,
        };
        if !on_sandbox {
            continue;
        }
        let Some(address) = ip.get("address").and_then(Value::as_str) else {
            continue;
        };
        let addr = address.split('/').next().unwrap_or(address);
        match addr.parse::<IpAddr>() {
            Ok(addr) => ips.push(addr),
            Err(_) => {
                return Err(Error::Network(format!(
                    "CNI result has an invalid address {address:?}"
                )));
            }
        }
    }
    if ips.is_empty() {
        return Err(Error::Network(format!(
            "CNI result has no address for {interface}: {result}"
        )));
    }
    Ok(Attachment { ips, interface })
}

fn find_plugin(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    dirs.iter().map(|d| d.join(name)).find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

fn display_dirs(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// libcni's rule for container ids (they also name the cache file).
fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid CNI attachment id {id:?}: want [A-Za-z0-9][A-Za-z0-9_.-]*, at most 200 characters"
        )))
    }
}

fn validate_config(c: &CniConfig) -> Result<()> {
    let name_ok = !c.network_name.is_empty()
        && c.network_name != "."
        && c.network_name != ".."
        && c.network_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if !name_ok {
        return Err(Error::Invalid(format!(
            "invalid CNI network name {:?}: want [A-Za-z0-9_.-]+",
            c.network_name
        )));
    }
    let bridge_ok = !c.bridge.is_empty()
        && c.bridge.len() < 16
        && c.bridge
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if !bridge_ok {
        return Err(Error::Invalid(format!(
            "invalid bridge name {:?}: want 1-15 characters, no '/', ':' or spaces",
            c.bridge
        )));
    }
    match crate::routes::parse_cidr(&c.pod_cidr) {
        Some((ip, prefix))
            if crate::routes::canonical_cidr(ip, prefix) == c.pod_cidr
                && prefix < ip_bits(ip) - 1 => {}
        _ => {
            return Err(Error::Invalid(format!(
                "invalid pod CIDR {:?}: want a network address with a prefix, e.g. 100.80.1.0/24",
                c.pod_cidr
            )));
        }
    }
    if let Some(mtu) = c.mtu
        && !(68..=65535).contains(&mtu)
    {
        return Err(Error::Invalid(format!(
            "invalid pod network MTU {mtu}: want 68-65535"
        )));
    }
    Ok(())
}

fn ip_bits(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn validate_ports(ports: &[PortMapping]) -> Result<Vec<CachedPort>> {
    let mut out = Vec::with_capacity(ports.len());
    for p in ports {
        let protocol = p.protocol.to_ascii_lowercase();
        if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
            return Err(Error::Invalid(format!(
                "invalid hostPort protocol {:?} for port {}: want tcp, udp or sctp",
                p.protocol, p.host_port
            )));
        }
        if p.host_port == 0 || p.container_port == 0 {
            return Err(Error::Invalid(format!(
                "invalid port mapping {}->{}: ports must be 1-65535",
                p.host_port, p.container_port
            )));
        }
        let host_ip = match p.host_ip.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(ip) => match ip.parse::<IpAddr>() {
                Ok(_) => Some(ip.to_owned()),
                Err(_) => {
                    return Err(Error::Invalid(format!(
                        "invalid hostIP {ip:?} for port {}",
                        p.host_port
                    )));
                }
            },
        };
        out.push(CachedPort {
            host_port: p.host_port,
            container_port: p.container_port,
            protocol,
            host_ip,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> CniConfig {
        CniConfig {
            plugin_dirs: vec![],
            network_name: "rkube".into(),
            bridge: "rkube0".into(),
            pod_cidr: "100.80.1.0/24".into(),
            mtu: Some(1450),
            ip_masq: false,
            state_dir: dir.to_owned(),
        }
    }

    #[test]
    fn parses_a_bridge_result() {
        let result = json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "rkube0", "mac": "aa"},
                {"name": "veth1", "mac": "bb"},
                {"name": "eth0", "mac": "cc", "sandbox": "/run/netns/x"}
            ],
            "ips": [
                {"interface": 2, "address": "100.80.1.5/24", "gateway": "100.80.1.1"},
                {"interface": 0, "address": "100.80.1.1/24"}
            ]
        });
        let a = attachment_from(&result, "eth0").unwrap();
        assert_eq!(
            a,
            Attachment {
                ips: vec!["100.80.1.5".parse().unwrap()],
                interface: "eth0".into()
            }
        );
        assert!(attachment_from(&json!({"ips": []}), "eth0").is_err());
        assert!(attachment_from(&json!({"ips": [{"address": "bogus/1"}]}), "eth0").is_err());
    }

    #[test]
    fn splits_iptables_rules() {
        let line = r#"-A POSTROUTING -s 100.80.1.2/32 -m comment --comment "name: \"mq\" id: \"m1\"" -j CNI-29"#;
        let args = split_rule(line).unwrap();
        assert_eq!(
            args,
            ["-A", "POSTROUTING", "-s", "100.80.1.2/32", "-m", "comment", "--comment", r#"name: "mq" id: "m1""#, "-j", "CNI-29"]
        );
        assert_eq!(split_rule(r#"-A X "unterminated"#), None);
    }

    #[test]
    fn futures_are_send() {
        fn send<T: Send>(_: &T) {}
        let dir = tempfile::tempdir().unwrap();
        let cni = Cni { config: config(dir.path()), plugins: HashMap::new(), locks: Mutex::new(HashMap::new()) };
        let add = cni.add("x", Path::new("/nonexistent"), &[]);
        send(&add);
        let del = cni.del("x", None);
        send(&del);
        let sync = crate::routes::sync(&[]);
        send(&sync);
    }

    #[test]
    fn ids_and_ports_are_validated() {
        assert!(validate_id("abc-1.2_3").is_ok());
        for bad in ["", "-x", "a/b", "../x", "a b"] {
            assert!(matches!(validate_id(bad), Err(Error::Invalid(_))), "{bad}");
        }
        let p = |proto: &str, host_ip: Option<&str>| PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: proto.into(),
            host_ip: host_ip.map(Into::into),
        };
        assert_eq!(
            validate_ports(&[p("TCP", Some(""))]).unwrap()[0].protocol,
            "tcp"
        );
        assert!(validate_ports(&[p("icmp", None)]).is_err());
        assert!(validate_ports(&[p("tcp", Some("nope"))]).is_err());
    }

    #[test]
    fn config_is_validated_and_plugins_are_looked_up() {
        let dir = tempfile::tempdir().unwrap();
        for (field, bad) in [
            ("cidr", "100.80.1.1/24"),
            ("cidr", "x"),
            ("bridge", "a-very-long-bridge0"),
            ("name", "a/b"),
        ] {
            let mut c = config(dir.path());
            match field {
                "cidr" => c.pod_cidr = bad.into(),
                "bridge" => c.bridge = bad.into(),
                _ => c.network_name = bad.into(),
            }
            assert!(
                matches!(Cni::new(c), Err(Error::Invalid(_))),
                "{field}={bad}"
            );
        }
        let mut c = config(dir.path());
        c.plugin_dirs = vec![dir.path().join("none")];
        let err = Cni::new(c).err().unwrap().to_string();
        assert!(err.contains("bridge") && err.contains("none"), "{err}");
    }

    #[test]
    fn conflist_has_portmap_only_with_ports() {
        let dir = tempfile::tempdir().unwrap();
        let plugins = HashMap::new();
        let cni = Cni {
            config: config(dir.path()),
            plugins,
            locks: Mutex::new(HashMap::new()),
        };
        let list = cni.conflist(&[]);
        assert_eq!(plugin_list(&list).len(), 1);
        assert_eq!(list["plugins"][0]["mtu"], 1450);
        assert_eq!(
            list["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "100.80.1.0/24"
        );
        let ports = validate_ports(&[PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: None,
        }])
        .unwrap();
        let list = cni.conflist(&ports);
        assert_eq!(
            list["plugins"][1]["runtimeConfig"]["portMappings"][0]["hostPort"],
            8080
        );
        let req = request_config(&list, &list["plugins"][1], Some(&json!({"ips": []})));
        assert_eq!(req["name"], "rkube");
        assert_eq!(req["cniVersion"], CNI_VERSION);
        assert!(req.get("prevResult").is_some());
    }
}
