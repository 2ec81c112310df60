//! `rkube`: one binary for the master (`server`), the worker (`agent`), the single-node dev
//! cluster (`dev`), and the operations kubectl cannot do (cluster membership, snapshots).

mod admin;
mod agent_cmd;
mod api;
mod controllers;
mod server;
mod store_api;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "rkube", version, about = "A Kubernetes-compatible orchestrator with a built-in Raft store")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a master: a member of the Raft group that holds the cluster state.
    Server(ServerArgs),
    /// Run a single-node development cluster (one master) with its data under one directory.
    Dev(DevArgs),
    /// Inspect and change the membership of the master group.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Save the cluster state to a file, or restore a new cluster from one.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Certificates for peer mutual TLS.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// Run a worker node: register with the cluster and run the pods bound to this node as
    /// containers.
    Agent(agent_cmd::AgentArgs),
    /// The node's image store.
    Images {
        #[command(subcommand)]
        command: ImagesCommand,
    },
}

#[derive(Subcommand)]
enum ImagesCommand {
    /// Import the images of an OCI archive (`skopeo copy ... oci-archive:x.tar`, `docker save`
    /// in OCI format) so pods can use them without a registry.
    Import {
        archive: PathBuf,
        /// The reference to store them as (default: the archive's ref.name annotations).
        #[arg(long)]
        reference: Option<String>,
        /// The agent's data dir.
        #[arg(long, default_value = "/var/lib/rkube/agent")]
        data_dir: PathBuf,
    },
    /// List the images in the store.
    List {
        #[arg(long, default_value = "/var/lib/rkube/agent")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Creates a peer CA (ca.crt, ca.key) in --out (or reuses the one there) and a certificate
    /// and key (<host>.crt, <host>.key) for each --host, valid for server and client use.
    Peer {
        #[arg(long)]
        out: PathBuf,
        /// Address or DNS name of a master (repeat for each).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
    },
}

#[derive(Args, Clone, Debug)]
pub struct RaftTuning {
    /// Leader heartbeat interval.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    pub heartbeat: Duration,
    /// Election timeout range: a follower that hears no leader for a random time in
    /// [min, 2*min] starts an election.
    #[arg(long, default_value = "150ms", value_parser = humantime::parse_duration)]
    pub election_timeout: Duration,
    /// Build a snapshot every this many log entries.
    #[arg(long, default_value_t = 100_000)]
    pub snapshot_every: u64,
    /// Log entries kept behind a snapshot for members that are only a little behind.
    #[arg(long, default_value_t = 10_000)]
    pub keep_after_snapshot: u64,
    /// The leader compacts history older than this (and does so this often).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub compaction_interval: Duration,
    /// Serve linearizable reads with leader leases instead of a ReadIndex round trip.
    #[arg(long)]
    pub lease_reads: bool,
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Where this master keeps its RocksDB, snapshots and identity.
    #[arg(long, env = "RKUBE_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address for peers and clients of the store (host:port).
    #[arg(long, default_value = "127.0.0.1:6444")]
    pub listen: String,
    /// URL other members use to reach this one; defaults to http://<listen>.
    #[arg(long)]
    pub advertise: Option<String>,
    /// Start a new cluster with this master as its only member (ignored on restart).
    #[arg(long, conflicts_with = "join")]
    pub init: bool,
    /// Join the cluster of the master at this URL (ignored once this master is a member).
    #[arg(long)]
    pub join: Option<String>,
    /// Node id for a fresh data dir (random if absent).
    #[arg(long)]
    pub node_id: Option<u64>,
    /// Peer mutual TLS: this master's certificate (PEM). With --peer-key-file and
    /// --peer-trusted-ca-file, peer traffic is HTTPS and only certificates signed by that CA are
    /// accepted (make them with `rkube pki peer`).
    #[arg(long, requires_all = ["peer_key_file", "peer_trusted_ca_file"])]
    pub peer_cert_file: Option<PathBuf>,
    #[arg(long, requires_all = ["peer_cert_file", "peer_trusted_ca_file"])]
    pub peer_key_file: Option<PathBuf>,
    #[arg(long, requires_all = ["peer_cert_file", "peer_key_file"])]
    pub peer_trusted_ca_file: Option<PathBuf>,
    #[command(flatten)]
    pub tuning: RaftTuning,
    #[command(flatten)]
    pub api: ApiArgs,
}

impl ServerArgs {
    pub fn peer_tls(&self) -> Result<Option<raft::network::PeerTls>> {
        let (Some(c), Some(k), Some(ca)) = (&self.peer_cert_file, &self.peer_key_file, &self.peer_trusted_ca_file) else {
            return Ok(None);
        };
        let read = |p: &PathBuf| std::fs::read(p).map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()));
        Ok(Some(raft::network::PeerTls { cert_pem: read(c)?, key_pem: read(k)?, ca_pem: read(ca)? }))
    }
}

#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// Address the Kubernetes API (HTTPS) listens on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub api_listen: String,
    /// Extra names or addresses for the API serving certificate (comma separated).
    #[arg(long, value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// Range Service cluster IPs are allocated from.
    #[arg(long, default_value = "10.96.0.0/12")]
    pub service_cidr: String,
    /// Range NodePorts are allocated from.
    #[arg(long, default_value = "30000-32767")]
    pub node_port_range: String,
    /// Where to write the admin kubeconfig (default: <data-dir>/admin.kubeconfig).
    #[arg(long)]
    pub kubeconfig_out: Option<PathBuf>,
    /// A node that has not renewed its lease for this long is marked NotReady/Unknown.
    #[arg(long, default_value = "40s", value_parser = humantime::parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// How often node health is checked.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub node_monitor_period: Duration,
    /// Seconds pods tolerate a not-ready/unreachable node before eviction, unless they say otherwise.
    #[arg(long, default_value_t = 300)]
    pub default_toleration_seconds: i64,
    /// The pod network: every Node is given a subnet of it as its podCIDR (empty = none; set
    /// podCIDRs yourself).
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// Prefix length of each node's podCIDR.
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,
}

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Data directory of the dev cluster.
    #[arg(long, env = "RKUBE_DATA_DIR", default_value = "/var/lib/rkube/dev")]
    pub data_dir: PathBuf,
    /// Address of the store API.
    #[arg(long, default_value = "127.0.0.1:6444")]
    pub listen: String,
    #[command(flatten)]
    pub api: ApiArgs,
    /// Run only the control plane: no agent, so pods stay Pending.
    #[arg(long)]
    pub no_agent: bool,
    /// Address of the in-process agent's server (logs, exec, stats).
    #[arg(long, default_value = "127.0.0.1:10250")]
    pub agent_listen: String,
    /// Name of the dev cluster's node (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// The bridge dev pods attach to.
    #[arg(long, default_value = "rkube0")]
    pub bridge: String,
    /// Registry mirrors and credentials for the dev node (k3s's registries.yaml format).
    #[arg(long)]
    pub registries_config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Show the leader, term, commit and applied index, and each member's lag.
    Status(ClientArgs),
    /// Remove a member (by id, as shown by `status`).
    Remove {
        id: u64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Hand leadership to another voter (the most up-to-date one unless --to is given).
    TransferLeader {
        #[arg(long)]
        to: Option<u64>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Write a consistent snapshot of the cluster state to a file.
    Save {
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create the data dir of a new one-member cluster from a snapshot file (disaster recovery).
    /// The new cluster gets a new cluster id; start it with `rkube server --data-dir ...` and add
    /// members with `--join`.
    Restore {
        file: PathBuf,
        #[arg(long)]
        data_dir: PathBuf,
        /// URL the restored master will be reached at (as its --advertise).
        #[arg(long)]
        advertise: String,
        #[arg(long)]
        node_id: Option<u64>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// Any master of the cluster.
    #[arg(long, env = "RKUBE_SERVER", default_value = "http://127.0.0.1:6444")]
    pub server: String,
    /// With peer TLS: the peer CA, and a certificate and key it signed (e.g. from `rkube pki peer`).
    #[arg(long, env = "RKUBE_CACERT")]
    pub cacert: Option<PathBuf>,
    #[arg(long, env = "RKUBE_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    #[arg(long, env = "RKUBE_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RKUBE_LOG").unwrap_or_else(|_| EnvFilter::new("info,openraft=error"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

fn main() {
    // A container's supervisor: single-threaded, before any runtime or argument parsing.
    agent_cmd::maybe_shim();
    let cli = Cli::parse();
    init_tracing();
    if let Err(e) = run(cli) {
        // The chain of causes, without a backtrace: it is for the user, not for us.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Server(args) => server::run(args).await,
            Command::Dev(args) => server::run_dev(args).await,
            Command::Cluster { command } => match command {
                ClusterCommand::Status(c) => admin::status(&c).await,
                ClusterCommand::Remove { id, client } => admin::remove(&client, id).await,
                ClusterCommand::TransferLeader { to, client } => admin::transfer_leader(&client, to).await,
            },
            Command::Pki { command } => match command {
                PkiCommand::Peer { out, hosts } => admin::pki_peer(&out, &hosts),
            },
            Command::Agent(args) => agent_cmd::run(args).await,
            Command::Images { command } => match command {
                ImagesCommand::Import { archive, reference, data_dir } => agent_cmd::images_import(data_dir, archive, reference).await,
                ImagesCommand::List { data_dir } => agent_cmd::images_list(data_dir),
            },
            Command::Snapshot { command } => match command {
                SnapshotCommand::Save { file, client } => admin::snapshot_save(&client, &file).await,
                SnapshotCommand::Restore { file, data_dir, advertise, node_id } => {
                    admin::snapshot_restore(&file, data_dir, advertise, node_id)
                }
            },
        }
    })
}
