//! `rkube-bench scheduler`: scheduling throughput on a 3-master cluster with simulated nodes.
//! Pods are created through the API by a concurrent client; a watch records when each gets its
//! node. Reports pods bound per second and create→bound latency, for plain pods and for pods
//! with anti-affinity and topology spread.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use chaos::{Cluster, ClusterOptions, KubeClient, SimNode, SimNodes};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::ms;

#[derive(Args, Debug, Clone)]
pub struct SchedulerArgs {
    #[arg(long, default_value_t = 5_000)]
    pub nodes: usize,
    #[arg(long, default_value_t = 50_000)]
    pub pods: usize,
    /// Pods for the anti-affinity + topology spread run (0 skips it).
    #[arg(long, default_value_t = 5_000)]
    pub constrained_pods: usize,
    /// Concurrent API clients creating pods.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Pods created before any node exists; their scheduling throughput is measured once the
    /// nodes register (0 skips it).
    #[arg(long, default_value_t = 50_000)]
    pub backlog_pods: usize,
}

struct RunResult {
    name: String,
    pods: usize,
    bound: usize,
    secs: f64,
    hist: Histogram<u64>,
}

fn plain_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "plain"}},
           "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}}}]}})
}

fn constrained_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "spread"}},
           "spec": {
               "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}}}],
               "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                   {"labelSelector": {"matchLabels": {"app": "spread"}}, "topologyKey": "kubernetes.io/hostname"}]}},
               "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
                   "labelSelector": {"matchLabels": {"app": "spread"}}}],
           }})
}

async fn run_one(kubes: &[KubeClient], ns: &str, count: usize, clients: usize, make: fn(&str) -> Value, label: &str) -> Result<RunResult> {
    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    // Watch first, so no binding is missed.
    let list = kubes[0].get(&format!("/api/v1/namespaces/{ns}/pods?limit=1")).await?;
    let rv = list.body.pointer("/metadata/resourceVersion").and_then(|r| r.as_str()).unwrap_or("0").to_string();
    let mut rx = kubes[0].watch(&format!("/api/v1/namespaces/{ns}/pods"), &rv).await?;
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (kube, next, created) = (kubes[c % kubes.len()].clone(), next.clone(), created.clone());
        let ns = ns.to_string();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return;
                }
                let name = format!("p{i:06}");
                created.lock().await.insert(name.clone(), Instant::now());
                let _ = kube.post(&format!("/api/v1/namespaces/{ns}/pods"), &make(&name)).await;
            }
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let mut bound = 0usize;
    let mut last = start;
    let mut last_report = Instant::now();
    let idle_limit = Duration::from_secs(30);
    while bound < count {
        let ev = match tokio::time::timeout(idle_limit, rx.recv()).await {
            Ok(Some(ev)) => ev,
            _ => break,
        };
        let obj = &ev["object"];
        if obj.pointer("/spec/nodeName").and_then(|n| n.as_str()).is_some_and(|n| !n.is_empty()) {
            let name = obj.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or("").to_string();
            if let Some(t0) = created.lock().await.remove(&name) {
                let now = Instant::now();
                hist.record((now - t0).as_micros().max(1) as u64)?;
                bound += 1;
                last = now;
            }
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!("  {label}: {bound}/{count} bound after {:.0}s", start.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
    }
    for t in tasks {
        t.await?;
    }
    Ok(RunResult { name: label.to_string(), pods: count, bound, secs: (last - start).as_secs_f64(), hist })
}

pub async fn run(args: SchedulerArgs) -> Result<()> {
    println!("# rkube-bench scheduler");
    println!();
    println!("3 masters on loopback, {} simulated nodes (4 cpu, 8Gi, 110 pods each, 50 zones), pods created through the API by {} concurrent clients", args.nodes, args.clients);
    println!();
    eprintln!("starting 3 rkube masters...");
    // Simulated nodes do not renew leases during the run; keep the node controller from calling
    // them dead so the measurement is of scheduling.
    let c = Cluster::start(ClusterOptions { size: 3, server_args: vec!["--node-monitor-grace-period=2h".into()], ..Default::default() }).await?;
    let mut kubes = Vec::new();
    for i in 0..3 {
        kubes.push(KubeClient::from_kubeconfig(&c.wait_api(i, Duration::from_secs(60)).await?)?);
    }
    let mut results = Vec::new();
    // Backlog: pods first, nodes after; measures how fast the scheduler drains a queue.
    let mut backlog = None;
    if args.backlog_pods > 0 {
        kubes[0].post("/api/v1/namespaces", &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "backlog"}})).await?;
        eprintln!("backlog: creating {} pods before any node exists...", args.backlog_pods);
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for c in 0..args.clients {
            let (kube, next, total) = (kubes[c % kubes.len()].clone(), next.clone(), args.backlog_pods);
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= total {
                        return;
                    }
                    let _ = kube.post("/api/v1/namespaces/backlog/pods", &plain_pod(&format!("b{i:06}"))).await;
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
        let list = kubes[0].get("/api/v1/namespaces/backlog/pods?limit=1").await?;
        let rv = list.body.pointer("/metadata/resourceVersion").and_then(|r| r.as_str()).unwrap_or("0").to_string();
        let rx = kubes[0].watch("/api/v1/namespaces/backlog/pods", &rv).await?;
        backlog = Some(rx);
    }
    eprintln!("registering {} nodes...", args.nodes);
    let t = Instant::now();
    let nodes: Vec<SimNode> = (0..args.nodes).map(|i| SimNode::new(format!("node-{i:05}")).label("topology.kubernetes.io/zone", &format!("zone-{}", i % 50))).collect();
    let _sim = SimNodes::start(kubes[0].clone(), nodes, Duration::from_secs(3600), false).await?;
    eprintln!("  nodes registered in {:.1}s", t.elapsed().as_secs_f64());
    if let Some(mut rx) = backlog {
        let mut bound = 0usize;
        let mut first: Option<Instant> = None;
        let mut last = Instant::now();
        while bound < args.backlog_pods {
            let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await else { break };
            if ev["type"] == "MODIFIED" && ev["object"].pointer("/spec/nodeName").and_then(|n| n.as_str()).is_some_and(|n| !n.is_empty()) {
                bound += 1;
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
            }
        }
        let secs = first.map(|f| (last - f).as_secs_f64()).unwrap_or(0.0);
        eprintln!("  backlog: {bound} pods bound in {secs:.1}s");
        results.push(RunResult {
            name: "backlog (pods first, then nodes)".into(),
            pods: args.backlog_pods,
            bound,
            secs,
            hist: Histogram::<u64>::new(3)?,
        });
    }
    for (ns, count, make, label) in [
        ("plain", args.pods, plain_pod as fn(&str) -> Value, "plain pods"),
        ("spread", args.constrained_pods, constrained_pod as fn(&str) -> Value, "anti-affinity + zone spread"),
    ] {
        if count == 0 {
            continue;
        }
        kubes[0].post("/api/v1/namespaces", &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})).await?;
        eprintln!("{label}: creating {count} pods...");
        results.push(run_one(&kubes, ns, count, args.clients, make, label).await?);
    }
    println!("| workload | pods | bound | pods bound/s | create→bound p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &results {
        if r.hist.is_empty() {
            println!("| {} | {} | {} | {:.0} | - | - | - |", r.name, r.pods, r.bound, r.bound as f64 / r.secs.max(0.001));
            continue;
        }
        println!(
            "| {} | {} | {} | {:.0} | {} | {} | {} |",
            r.name,
            r.pods,
            r.bound,
            r.bound as f64 / r.secs.max(0.001),
            ms(Duration::from_micros(r.hist.value_at_quantile(0.5))),
            ms(Duration::from_micros(r.hist.value_at_quantile(0.99))),
            ms(Duration::from_micros(r.hist.max()))
        );
    }
    println!();
    println!("Kubernetes' scheduler_perf floors for comparable shapes: 680-810 pods/s (on much larger machines).");
    Ok(())
}
