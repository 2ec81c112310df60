//! `rkube-bench store`: the replicated store against etcd, same machine, same run, same load
//! generator (N concurrent clients, each issuing one put at a time; unique keys; fixed-size
//! values), then leader failover under a light write load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use chaos::{Cluster, ClusterOptions, StoreClient};
use clap::Args;
use hdrhistogram::Histogram;
use tokio::sync::Mutex;

use crate::etcd::EtcdCluster;
use crate::ms;

#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Measured time per client count (after a one second warm-up).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Concurrent client counts to run.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    pub clients: Vec<usize>,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    /// Leader kills for the failover measurement (0 skips it).
    #[arg(long, default_value_t = 10)]
    pub kills: usize,
    /// Measure rkube only.
    #[arg(long)]
    pub skip_etcd: bool,
    /// Extra flags for every `rkube server` (e.g. "--election-timeout=150ms").
    #[arg(long, allow_hyphen_values = true)]
    pub server_arg: Vec<String>,
}

/// One system under test: something that can put a key through one of `conns` connections.
#[derive(Clone)]
enum Target {
    Rkube(Vec<StoreClient>),
    Etcd(Vec<etcd_client::KvClient>),
}

impl Target {
    async fn put(&self, conn: usize, key: String, value: String) -> Result<(), String> {
        match self {
            Target::Rkube(c) => c[conn % c.len()].put(&key, &value).await.map(|_| ()).map_err(|e| e.to_string()),
            Target::Etcd(c) => {
                let mut kv = c[conn % c.len()].clone();
                kv.put(key, value, None).await.map(|_| ()).map_err(|e| e.to_string())
            }
        }
    }
}

struct LoadResult {
    clients: usize,
    ops: u64,
    errors: u64,
    secs: f64,
    hist: Histogram<u64>,
}

async fn run_load(target: &Target, clients: usize, duration: Duration, value_size: usize, tag: &str) -> LoadResult {
    let warmup = Duration::from_secs(1);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let value: String = (0..value_size).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (target, value, tag) = (target.clone(), value.clone(), tag.to_string());
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
            let (mut ops, mut errors, mut seq) = (0u64, 0u64, 0u64);
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                seq += 1;
                let r = target.put(c, format!("/bench/{tag}/c{c}/{seq}"), value.clone()).await;
                let t1 = Instant::now();
                if t0 >= measure_from && t1 <= end {
                    match r {
                        Ok(()) => {
                            ops += 1;
                            let _ = hist.record((t1 - t0).as_micros() as u64);
                        }
                        Err(_) => errors += 1,
                    }
                }
            }
            (ops, errors, hist)
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let (mut ops, mut errors) = (0, 0);
    for t in tasks {
        let (o, e, h) = t.await.expect("load task");
        ops += o;
        errors += e;
        hist.add(h).expect("histogram merge");
    }
    LoadResult { clients, ops, errors, secs: duration.as_secs_f64(), hist }
}

fn rkube_target(c: &Cluster, leader: usize, conns: usize) -> Target {
    // One pooled HTTP client; `conns` handles to the leader share its connections.
    let http = reqwest::Client::builder().pool_max_idle_per_host(1024).tcp_nodelay(true).build().expect("http");
    let client = StoreClient::new(c.masters[leader].url.clone()).with_http(http).with_timeout(Duration::from_secs(30));
    Target::Rkube(vec![client; conns.max(1)])
}

async fn etcd_target(e: &EtcdCluster, leader: usize, conns: usize) -> Result<Target> {
    // etcd's gRPC multiplexes many requests on one connection; spread clients over up to 16.
    let mut kvs = Vec::new();
    for _ in 0..conns.clamp(1, 16) {
        let c = etcd_client::Client::connect([e.members[leader].client_url.as_str()], None).await?;
        kvs.push(c.kv_client());
    }
    Ok(Target::Etcd(kvs))
}

pub async fn run(args: StoreArgs) -> Result<()> {
    println!("# rkube-bench store");
    println!();
    println!("machine: {} cores, {} ; value size {} B; {:?} per client count after 1s warm-up", num_cpus(), kernel(), args.value_size, args.duration);
    println!();
    let mut rows = Vec::new();
    let mut failovers: Vec<(String, Vec<Duration>)> = Vec::new();

    {
        eprintln!("starting 3 rkube masters...");
        let mut c = Cluster::start(ClusterOptions { size: 3, server_args: args.server_arg.clone(), ..Default::default() }).await?;
        let leader = c.wait_leader(Duration::from_secs(10)).await?;
        for &n in &args.clients {
            eprintln!("rkube: {n} clients...");
            let t = rkube_target(&c, leader, n);
            let r = run_load(&t, n, args.duration, args.value_size, &format!("rk{n}")).await;
            rows.push(("rkube".to_string(), r));
        }
        if args.kills > 0 {
            eprintln!("rkube: {} leader kills...", args.kills);
            failovers.push(("rkube".into(), rkube_failover(&mut c, args.kills).await?));
        }
    }
    if !args.skip_etcd {
        eprintln!("starting 3 etcd members...");
        let mut e = EtcdCluster::start(3).await?;
        let leader = e.wait_leader(Duration::from_secs(10)).await?;
        for &n in &args.clients {
            eprintln!("etcd: {n} clients...");
            let t = etcd_target(&e, leader, n).await?;
            let r = run_load(&t, n, args.duration, args.value_size, &format!("et{n}")).await;
            rows.push(("etcd 3.4".to_string(), r));
        }
        if args.kills > 0 {
            eprintln!("etcd: {} leader kills...", args.kills);
            failovers.push(("etcd 3.4".into(), etcd_failover(&mut e, args.kills).await?));
        }
    }

    println!("## Committed writes (3 replicas, loopback)");
    println!();
    println!("| system | clients | writes/s | p50 ms | p99 ms | max ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, r) in &rows {
        println!(
            "| {name} | {} | {:.0} | {} | {} | {} | {} |",
            r.clients,
            r.ops as f64 / r.secs,
            ms(Duration::from_micros(r.hist.value_at_quantile(0.50))),
            ms(Duration::from_micros(r.hist.value_at_quantile(0.99))),
            ms(Duration::from_micros(r.hist.max())),
            r.errors
        );
    }
    if !failovers.is_empty() {
        println!();
        println!("## Leader failover (SIGKILL of the leader -> first write acknowledged that was sent after the kill)");
        println!();
        println!("| system | kills | median ms | worst ms | all ms |");
        println!("|---|---:|---:|---:|---|");
        for (name, mut f) in failovers {
            f.sort();
            let all = f.iter().map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0)).collect::<Vec<_>>().join(" ");
            println!("| {name} | {} | {} | {} | {all} |", f.len(), ms(f[f.len() / 2]), ms(*f.last().unwrap()));
        }
    }
    Ok(())
}

/// Writers that keep writing through every member in turn; returns the acknowledgement times of
/// writes, each with the instant it was sent.
type Acks = Arc<Mutex<Vec<(Instant, Instant)>>>;

async fn measure_failover<K, R, F>(kills: usize, target_for: F, mut kill_leader: K, mut recover: R) -> Result<Vec<Duration>>
where
    F: Fn(usize) -> Target,
    K: AsyncFnMut() -> Result<Instant>,
    R: AsyncFnMut() -> Result<()>,
{
    let acks: Acks = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..6 {
        let (acks, stop, target) = (acks.clone(), stop.clone(), target_for(w));
        tasks.push(tokio::spawn(async move {
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let t0 = Instant::now();
                match target.put(w + seq as usize, format!("/failover/w{w}/{seq}"), "x".repeat(64)).await {
                    Ok(()) => acks.lock().await.push((t0, Instant::now())),
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }));
    }
    let mut out = Vec::new();
    for k in 0..kills {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let t_kill = kill_leader().await?;
        let deadline = t_kill + Duration::from_secs(30);
        let failover = loop {
            let first = acks.lock().await.iter().filter(|(sent, _)| *sent > t_kill).map(|(_, acked)| *acked).min();
            if let Some(a) = first {
                break a - t_kill;
            }
            if Instant::now() > deadline {
                anyhow::bail!("no write succeeded within 30s of leader kill {k}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        eprintln!("  kill {}: {}", k + 1, ms(failover));
        out.push(failover);
        recover().await?;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    Ok(out)
}

async fn rkube_failover(c: &mut Cluster, kills: usize) -> Result<Vec<Duration>> {
    let clients: Vec<StoreClient> = c.masters.iter().map(|m| m.client().with_timeout(Duration::from_secs(5))).collect();
    let killed = Arc::new(std::sync::Mutex::new(None::<usize>));
    let cell = std::cell::RefCell::new(c);
    let k2 = killed.clone();
    measure_failover(
        kills,
        |_| Target::Rkube(clients.clone()),
        async || {
            let mut c = cell.borrow_mut();
            let l = c.wait_leader(Duration::from_secs(30)).await?;
            let t = Instant::now();
            c.kill(l);
            *k2.lock().expect("lock") = Some(l);
            Ok(t)
        },
        async || {
            let mut c = cell.borrow_mut();
            if let Some(l) = killed.lock().expect("lock").take() {
                c.restart(l)?;
                let leader = c.wait_leader(Duration::from_secs(30)).await?;
                let applied = c.client(leader).status().await.map_err(|e| anyhow::anyhow!("{e}"))?.applied.unwrap_or(0);
                c.wait_applied(applied, Duration::from_secs(30)).await?;
            }
            Ok(())
        },
    )
    .await
}

async fn etcd_failover(e: &mut EtcdCluster, kills: usize) -> Result<Vec<Duration>> {
    // A request to the killed member hangs until its timeout; keep it short (rkube's client
    // sees connection refused at once) so the measurement is of etcd, not of the client.
    let opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_millis(300))
        .with_timeout(Duration::from_secs(1));
    let mut kvs = Vec::new();
    for m in &e.members {
        kvs.push(etcd_client::Client::connect([m.client_url.as_str()], Some(opts.clone())).await?.kv_client());
    }
    let killed = Arc::new(std::sync::Mutex::new(None::<usize>));
    let cell = std::cell::RefCell::new(e);
    let k2 = killed.clone();
    measure_failover(
        kills,
        |_| Target::Etcd(kvs.clone()),
        async || {
            let mut e = cell.borrow_mut();
            let l = e.wait_leader(Duration::from_secs(30)).await?;
            let t = Instant::now();
            e.kill(l);
            *k2.lock().expect("lock") = Some(l);
            Ok(t)
        },
        async || {
            let mut e = cell.borrow_mut();
            if let Some(l) = killed.lock().expect("lock").take() {
                e.restart(l)?;
                e.wait_leader(Duration::from_secs(30)).await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok(())
        },
    )
    .await
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| format!("Linux {}", s.trim())).unwrap_or_default()
}
