//! `rkube-bench`: rkube's benchmarks. Each subcommand starts what it measures (and its peer)
//! on this machine, runs the load, prints a Markdown table, and cleans up.

mod api;
mod etcd;
mod pods;
mod scheduler;
mod store;

use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "rkube-bench", about = "rkube benchmarks, side by side with their peers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replicated store: committed writes/s and latency at 1/16/256 clients, 3 replicas on
    /// loopback, against etcd (3 members, same load generator); then leader failover times.
    Store(store::StoreArgs),
    /// Kubernetes API: creates/s and latency for ConfigMaps and Pods at 1/16/256 clients on 3
    /// masters, list latency for 10,000 pods, watch fan-out to 100 watchers.
    Api(api::ApiArgs),
    /// Scheduler: pods bound per second and create→bound latency with 5,000 simulated nodes and
    /// 50,000 pods on 3 masters, plus a run with anti-affinity and topology spread.
    Scheduler(scheduler::SchedulerArgs),
    /// Pods on a real node: create→Running latency (p50/p99, one at a time) and the
    /// throughput of a burst, one master and one agent with the image present. Needs root.
    Pods(pods::PodsArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Store(args) => store::run(args).await,
            Command::Api(args) => api::run(args).await,
            Command::Scheduler(args) => scheduler::run(args).await,
            Command::Pods(args) => pods::run(args).await,
        }
    })
}

/// Formats a duration in milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}
