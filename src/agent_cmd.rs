//! `rkube agent` (a worker node), `rkube images` (the node's image store) and the hidden
//! `rkube shim` (each container's supervisor process, started by the agent).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

/// The agent's flags alone (`rkube dev` builds its agent's settings from them).
#[derive(clap::Parser, Debug)]
pub struct AgentOnly {
    #[command(flatten)]
    pub args: AgentArgs,
}

#[derive(Args, Debug, Clone)]
pub struct AgentArgs {
    /// The Kubernetes API of any master (https://host:6443).
    #[arg(long, env = "RKUBE_SERVER_URL")]
    pub server: Option<String>,
    /// A bearer token the API accepts (the `token` of the admin kubeconfig).
    #[arg(long, env = "RKUBE_TOKEN")]
    pub token: Option<String>,
    /// PEM of the cluster CA (`<master data dir>/pki/ca.crt`); without it the CA is taken from
    /// --kubeconfig.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Take server, token and CA from this kubeconfig (e.g. the admin.kubeconfig a master wrote).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// This node's name (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// The node's InternalIP (where masters reach the agent); default: the --listen address,
    /// or 127.0.0.1 when that is a wildcard.
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// Address of the agent's HTTPS server (logs, exec, stats); port 0 is not allowed.
    #[arg(long, default_value = "127.0.0.1:10250")]
    pub listen: SocketAddr,
    #[arg(long, default_value = "/var/lib/rkube/agent")]
    pub data_dir: PathBuf,
    /// Do pod networking inside this network namespace (a path like /run/netns/node1).
    #[arg(long)]
    pub pod_netns: Option<PathBuf>,
    /// This node's address on the network between nodes (routes to its pods point here).
    #[arg(long)]
    pub pod_network_ip: Option<IpAddr>,
    /// The bridge pods attach to.
    #[arg(long, default_value = "rkube0")]
    pub bridge: String,
    /// Where the CNI plugins are (repeat; default /usr/lib/cni and /opt/cni/bin).
    #[arg(long = "cni-plugin-dir")]
    pub cni_plugin_dirs: Vec<PathBuf>,
    /// Masquerade pod traffic that leaves the pod network.
    #[arg(long)]
    pub masquerade: bool,
    /// Registry mirrors and credentials (k3s's registries.yaml format).
    #[arg(long)]
    pub registries_config: Option<PathBuf>,
    /// Extra Node labels (key=value, repeat).
    #[arg(long = "node-label")]
    pub node_labels: Vec<String>,
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
    /// Rotate a container's log at this size (bytes).
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    pub container_log_max_size: u64,
    #[arg(long, default_value_t = 5)]
    pub container_log_max_files: u32,
    /// Remove unused images when the image disk is fuller than this (percent).
    #[arg(long, default_value_t = 85)]
    pub image_gc_high_percent: u8,
    /// How often the node's Lease is renewed.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub lease_interval: Duration,
    /// How often the node's status is reported.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub status_interval: Duration,
}

/// server, token and CA PEM from the flags or a kubeconfig.
fn credentials(a: &AgentArgs) -> Result<(String, String, Vec<u8>)> {
    let (mut server, mut token, mut ca) = (a.server.clone(), a.token.clone(), None);
    if let Some(p) = &a.ca_file {
        ca = Some(std::fs::read(p).with_context(|| format!("reading --ca-file {}", p.display()))?);
    }
    if let Some(k) = &a.kubeconfig {
        let text = std::fs::read_to_string(k).with_context(|| format!("reading --kubeconfig {}", k.display()))?;
        let doc: serde_json::Value = serde_yaml_lite(&text).with_context(|| format!("{} is not a kubeconfig", k.display()))?;
        let cluster = &doc["clusters"][0]["cluster"];
        let user = &doc["users"][0]["user"];
        if server.is_none() {
            server = cluster["server"].as_str().map(String::from);
        }
        if token.is_none() {
            token = user["token"].as_str().map(String::from);
        }
        if ca.is_none() {
            if let Some(d) = cluster["certificate-authority-data"].as_str() {
                use base64::Engine;
                ca = Some(base64::engine::general_purpose::STANDARD.decode(d.trim()).context("certificate-authority-data is not base64")?);
            }
        }
    }
    let server = server.context("the agent needs the API's address: pass --server https://<master>:6443 (or --kubeconfig)")?;
    let token = token.context("the agent needs a token: pass --token (the token of the admin kubeconfig) or --kubeconfig")?;
    let ca = ca.context("the agent needs the cluster CA: pass --ca-file <master data dir>/pki/ca.crt or --kubeconfig")?;
    Ok((server, token, ca))
}

/// The few kubeconfig fields we need, read line by line (kubeconfigs written by rkube and by
/// kubectl are simple `key: value` YAML).
fn serde_yaml_lite(text: &str) -> Result<serde_json::Value> {
    let get = |key: &str| -> Option<String> {
        text.lines().find_map(|l| {
            let t = l.trim().trim_start_matches("- ").trim();
            t.strip_prefix(&format!("{key}:")).map(|v| v.trim().trim_matches('"').to_string())
        })
    };
    let server = get("server");
    if server.is_none() {
        bail!("no cluster server in it");
    }
    Ok(serde_json::json!({
        "clusters": [{"cluster": {"server": server, "certificate-authority-data": get("certificate-authority-data")}}],
        "users": [{"user": {"token": get("token")}}],
    }))
}

pub fn config(a: &AgentArgs) -> Result<agent::AgentConfig> {
    let (server, token, ca_pem) = credentials(a)?;
    if a.listen.port() == 0 {
        bail!("--listen {}: pick a fixed port (masters reach the agent there)", a.listen);
    }
    let node_name = match &a.node_name {
        Some(n) => n.clone(),
        None => nix_hostname()?,
    };
    let mut node_labels = Vec::new();
    for l in &a.node_labels {
        let (k, v) = l.split_once('=').with_context(|| format!("--node-label {l:?} must be key=value"))?;
        node_labels.push((k.to_string(), v.to_string()));
    }
    let exe = std::env::current_exe().context("finding the rkube executable (shims are started from it)")?;
    Ok(agent::AgentConfig {
        server,
        token,
        ca_pem,
        node_name: node_name.to_lowercase(),
        node_ip: a.node_ip.unwrap_or_else(|| if a.listen.ip().is_unspecified() { IpAddr::from([127, 0, 0, 1]) } else { a.listen.ip() }),
        listen: a.listen,
        data_dir: a.data_dir.clone(),
        shim_program: exe,
        shim_args: vec!["shim".into()],
        pod_netns: a.pod_netns.clone(),
        pod_network_ip: a.pod_network_ip,
        bridge: a.bridge.clone(),
        cni_plugin_dirs: a.cni_plugin_dirs.clone(),
        masquerade: a.masquerade,
        registries_config: a.registries_config.clone(),
        lease_interval: a.lease_interval,
        status_interval: a.status_interval,
        node_labels,
        max_pods: a.max_pods,
        log_max_bytes: a.container_log_max_size,
        log_max_files: a.container_log_max_files,
        image_gc_high_percent: a.image_gc_high_percent,
    })
}

fn nix_hostname() -> Result<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").context("reading the host name")?;
    let h = h.trim();
    if h.is_empty() {
        bail!("the host has no name: pass --node-name");
    }
    Ok(h.to_string())
}

pub async fn run(a: AgentArgs) -> Result<()> {
    let config = config(&a)?;
    let agent = agent::Agent::new(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    tokio::select! {
        r = agent.run() => r.map_err(|e| anyhow::anyhow!("{e}")),
        _ = crate::server::shutdown_signal() => {
            // Containers keep running: they belong to their shims, and the next agent adopts them.
            tracing::info!("agent stopping; its containers keep running");
            Ok(())
        }
    }
}

/// `rkube images import <oci-archive>`.
pub async fn images_import(data_dir: PathBuf, archive: PathBuf, reference: Option<String>) -> Result<()> {
    let store = runtime::image::ImageStore::open(&data_dir.join("images"), runtime::image::RegistriesConfig::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let images = store.import_oci_archive(&archive, reference.as_deref()).await.map_err(|e| anyhow::anyhow!("importing {}: {e}", archive.display()))?;
    for i in images {
        println!("{}\t{}", i.reference, i.id);
    }
    Ok(())
}

/// `rkube images list`.
pub fn images_list(data_dir: PathBuf) -> Result<()> {
    let store = runtime::image::ImageStore::open(&data_dir.join("images"), runtime::image::RegistriesConfig::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("REFERENCE\tIMAGE ID\tSIZE");
    for i in store.list().map_err(|e| anyhow::anyhow!("{e}"))? {
        println!("{}\t{}\t{}", i.reference, i.id, i.size);
    }
    Ok(())
}

/// Runs `rkube shim ...` when the process was started as one; must be called before any
/// threads or async runtime exist.
pub fn maybe_shim() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("shim") {
        return;
    }
    let rest = &args[2..];
    let code = if rest.first().map(String::as_str) == Some("exec") { runtime::exec::main(&rest[1..]) } else { runtime::shim::main(rest) };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_fields() {
        let kc = crate::api::tls::kubeconfig("https://127.0.0.1:6443", "PEM", "tok", "rkube");
        let v = serde_yaml_lite(&kc).unwrap();
        assert_eq!(v["clusters"][0]["cluster"]["server"], "https://127.0.0.1:6443");
        assert_eq!(v["users"][0]["user"]["token"], "tok");
        assert!(v["clusters"][0]["cluster"]["certificate-authority-data"].as_str().is_some());
    }
}
