//! `rkube server` and `rkube dev`: run a master.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use raft::{NodeConfig, RaftNode};

use crate::api::{self, Api};
use crate::{ApiArgs, DevArgs, RaftTuning, ServerArgs};

fn node_config(args: &ServerArgs, advertise: String) -> NodeConfig {
    let mut c = NodeConfig::new(&args.data_dir, advertise);
    apply_tuning(&mut c, &args.tuning);
    c.node_id = args.node_id;
    c
}

fn apply_tuning(c: &mut NodeConfig, t: &RaftTuning) {
    c.heartbeat_ms = t.heartbeat.as_millis().max(1) as u64;
    c.election_min_ms = t.election_timeout.as_millis().max(2) as u64;
    c.election_max_ms = c.election_min_ms * 2;
    c.snapshot_every = t.snapshot_every;
    c.keep_after_snapshot = t.keep_after_snapshot;
    c.compaction_interval = t.compaction_interval;
    c.lease_reads = t.lease_reads;
}

/// Serves the peer port (Raft RPCs, administration, store API) until the future resolves:
/// plain HTTP, or mutual TLS when peer certificates are configured.
async fn serve(node: Arc<RaftNode>, listen: &str, tls: Option<Arc<rustls::ServerConfig>>) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}: is another process using it? pick another with --listen"))?;
    let app = raft::rpc::router(node.clone()).merge(crate::store_api::router(node.clone()));
    if let Some(tls) = tls {
        return Ok(api::serve_router_tls(app, listener, tls));
    }
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await {
            tracing::error!(error = %e, "peer server stopped");
        }
    });
    Ok(handle)
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

pub async fn run(args: ServerArgs) -> Result<()> {
    if args.listen.starts_with("0.0.0.0") && args.advertise.is_none() {
        bail!("--listen {} binds every interface; pass --advertise http://<this host's address>:<port> so peers can reach it", args.listen);
    }
    let peer_tls = args.peer_tls()?;
    let scheme = if peer_tls.is_some() { "https" } else { "http" };
    let advertise = args.advertise.clone().unwrap_or_else(|| format!("{scheme}://{}", args.listen));
    if !advertise.starts_with(&format!("{scheme}://")) {
        bail!("--advertise {advertise:?} must be a URL such as {scheme}://10.0.0.1:6444 ({scheme}: peer TLS is {})", if peer_tls.is_some() { "on" } else { "off" });
    }
    let mut config = node_config(&args, advertise);
    let server_tls = match &peer_tls {
        Some(t) => Some(api::tls::mutual_server_config(
            std::str::from_utf8(&t.cert_pem)?,
            std::str::from_utf8(&t.key_pem)?,
            std::str::from_utf8(&t.ca_pem)?,
        )?),
        None => None,
    };
    config.tls = peer_tls;
    let raft_rt = raft_runtime()?;
    let node = raft_rt.spawn(RaftNode::open(config)).await??;
    let listen = args.listen.clone();
    let server = raft_rt.spawn({
        let node = node.clone();
        async move { serve(node, &listen, server_tls).await }
    })
    .await??;
    let initialized = node.is_initialized().await;
    if args.init {
        node.init_cluster().await?;
    } else if let Some(url) = &args.join {
        if !initialized {
            node.join_cluster(url).await?;
        } else {
            let is_voter = node.status().members.iter().any(|m| m.id == node.id && m.voter);
            if !is_voter {
                // Interrupted join: finish it in the background (joining is idempotent).
                let (n, url) = (node.clone(), url.clone());
                tokio::spawn(async move {
                    if let Err(e) = n.join_cluster(&url).await {
                        tracing::error!(error = %e, "could not finish joining the cluster");
                    }
                });
            }
        }
    } else if !initialized {
        bail!(
            "{} holds no cluster: start the first master with --init, join others with --join <url of a member>, \
             or restore one with `rkube snapshot restore`",
            args.data_dir.display()
        );
    }
    // The API needs the cluster CA from the store, so a quorum: keep trying in the background
    // (a master restarted while its peers are down must not exit).
    {
        let (node, api_args, data_dir) = (node.clone(), args.api.clone(), args.data_dir.clone());
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(200);
            loop {
                match start_api(node.clone(), &api_args, &data_dir).await {
                    Ok(kubeconfig) => {
                        tracing::info!(api = %api_args.api_listen, kubeconfig = %kubeconfig.display(), "Kubernetes API ready");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "Kubernetes API not started yet; retrying"),
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        });
    }
    tracing::info!(id = node.id, listen = %args.listen, "master ready");
    let _ = server.await;
    node.shutdown().await;
    raft_rt.shutdown_background();
    Ok(())
}

/// Raft (elections, replication, applying, the peer port) runs on its own threads, so heavy
/// work on the main runtime (a large list, an informer relist, JSON for a big response) can never
/// delay heartbeats into an election.
fn raft_runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("raft").enable_all().build()?)
}

pub async fn run_dev(args: DevArgs) -> Result<()> {
    let advertise = format!("http://{}", args.listen);
    let mut config = NodeConfig::new(&args.data_dir, advertise.clone());
    // One voter: no elections to wait for, but keep the same durability.
    config.compaction_interval = Duration::from_secs(300);
    let raft_rt = raft_runtime()?;
    let node = raft_rt.spawn(RaftNode::open(config)).await??;
    let listen = args.listen.clone();
    let server = raft_rt.spawn({
        let node = node.clone();
        async move { serve(node, &listen, None).await }
    })
    .await??;
    node.init_cluster().await?;
    if node.wait_for_leader(Duration::from_secs(10)).await.is_none() {
        bail!("the dev master did not become leader within 10s");
    }
    let kubeconfig = start_api(node.clone(), &args.api, &args.data_dir).await?;
    // A newcomer's kubectl should just work: use this cluster unless they already have a config.
    if let Some(home) = std::env::var_os("HOME") {
        let default = std::path::Path::new(&home).join(".kube/config");
        if !default.exists() {
            let _ = std::fs::create_dir_all(default.parent().expect("has a parent"));
            if std::fs::copy(&kubeconfig, &default).is_ok() {
                println!("wrote {} (kubectl uses it by default)", default.display());
            }
        }
    }
    if !args.no_agent {
        let mut flags: Vec<std::ffi::OsString> = vec!["agent".into(), "--kubeconfig".into(), kubeconfig.clone().into_os_string()];
        flags.extend(["--listen".into(), args.agent_listen.clone().into(), "--bridge".into(), args.bridge.clone().into(), "--masquerade".into()]);
        flags.extend(["--data-dir".into(), args.data_dir.join("agent").into_os_string()]);
        if let Some(n) = &args.node_name {
            flags.extend(["--node-name".into(), n.clone().into()]);
        }
        if let Some(r) = &args.registries_config {
            flags.extend(["--registries-config".into(), r.clone().into_os_string()]);
        }
        let agent_args = crate::agent_cmd::AgentOnly::try_parse_from(flags).context("the dev agent's settings")?.args;
        let config = crate::agent_cmd::config(&agent_args)?;
        let agent = agent::Agent::new(config).map_err(|e| anyhow::anyhow!("starting the dev node's agent: {e}"))?;
        tokio::spawn(async move {
            if let Err(e) = agent.run().await {
                tracing::error!(error = %e, "the dev node's agent stopped");
            }
        });
    }
    tracing::info!(data_dir = %args.data_dir.display(), api = %args.api.api_listen, "rkube dev: single-node cluster ready");
    println!("rkube dev is running: Kubernetes API at https://{}, data in {}", args.api.api_listen, args.data_dir.display());
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl get namespaces");
    let _ = server.await;
    node.shutdown().await;
    raft_rt.shutdown_background();
    Ok(())
}

/// Starts the Kubernetes API server of this master; returns where the admin kubeconfig is.
async fn start_api(node: Arc<RaftNode>, args: &ApiArgs, data_dir: &std::path::Path) -> Result<std::path::PathBuf> {
    let net = api::alloc::ServiceNetwork::parse(&args.service_cidr, &args.node_port_range).map_err(|e| anyhow::anyhow!(e))?;
    let (pki, token) = api::bootstrap::cluster_secrets(&node).await.context("reading the cluster CA and admin token")?;
    let api_host = args.api_listen.rsplit_once(':').map(|(h, _)| h.trim_matches(['[', ']'])).unwrap_or("127.0.0.1").to_string();
    let mut hosts = vec![
        "127.0.0.1".to_string(),
        "localhost".into(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        "kubernetes.default.svc.cluster.local".into(),
        net.first().to_string(),
    ];
    if api_host != "0.0.0.0" && !hosts.contains(&api_host) {
        hosts.push(api_host.clone());
    }
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        let h = h.trim().to_string();
        if !h.is_empty() && !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    for san in &args.tls_san {
        if !san.is_empty() && !hosts.contains(san) {
            hosts.push(san.clone());
        }
    }
    let (cert, key) = api::tls::serving_cert(&pki, &hosts)?;
    let tls = api::tls::server_config(&cert, &key)?;
    let url = format!("https://{}", args.api_listen);
    if !args.cluster_cidr.is_empty() {
        let c = controllers::nodeipam::Cidr::parse(&args.cluster_cidr).map_err(|e| anyhow::anyhow!("--cluster-cidr: {e}"))?;
        if args.node_cidr_mask_size < c.prefix || args.node_cidr_mask_size > 30 {
            bail!("--node-cidr-mask-size {} must be between the cluster CIDR's prefix /{} and 30", args.node_cidr_mask_size, c.prefix);
        }
    }
    let api = Api::new(node.clone(), net, url.clone(), controllers::Config {
        node_monitor_grace_period: args.node_monitor_grace_period,
        node_monitor_period: args.node_monitor_period,
        default_toleration_seconds: args.default_toleration_seconds,
        cluster_cidr: Some(args.cluster_cidr.clone()).filter(|c| !c.is_empty()),
        node_cidr_mask_size: args.node_cidr_mask_size,
        ..Default::default()
    });
    *api.tokens.write().expect("tokens lock") = vec![token.clone()];
    api::serve_tls(api.clone(), &args.api_listen, tls).await?;
    crate::controllers::spawn_leader_loops(api);
    let server_url = if api_host == "0.0.0.0" { url.replace("0.0.0.0", "127.0.0.1") } else { url };
    let path = args.kubeconfig_out.clone().unwrap_or_else(|| data_dir.join("admin.kubeconfig"));
    let kc = api::tls::kubeconfig(&server_url, &pki.ca_cert_pem, &token, "rkube");
    write_private(&path, &kc).with_context(|| format!("writing the kubeconfig to {}", path.display()))?;
    Ok(path)
}

/// Writes a file only its owner can read (it holds the admin token).
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    std::io::Write::write_all(&mut f, contents.as_bytes())?;
    std::fs::rename(&tmp, path)
}
