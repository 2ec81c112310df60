//! `rkube-bench api`: object throughput through the Kubernetes API of a 3-master cluster:
//! creates/s and latency for ConfigMaps (1 KiB) and Pods at 1/16/256 clients, list latency for
//! 10,000 pods, and watch fan-out (100 watchers, event delivery latency).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use chaos::{Cluster, ClusterOptions};
use clap::Args;
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::ms;

#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// Measured time per client count (after a one second warm-up).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    pub clients: Vec<usize>,
    /// Pods for the list benchmark.
    #[arg(long, default_value_t = 10_000)]
    pub list_pods: usize,
    /// Watchers for the fan-out benchmark.
    #[arg(long, default_value_t = 100)]
    pub watchers: usize,
    /// Events written during the fan-out benchmark.
    #[arg(long, default_value_t = 200)]
    pub watch_events: usize,
}

/// An HTTPS client of one master's API, trusting the cluster CA of the kubeconfig.
#[derive(Clone)]
struct Kube {
    http: reqwest::Client,
    base: String,
    token: String,
}

fn kube_for(kubeconfig: &std::path::Path) -> Result<Kube> {
    use base64::Engine;
    let text = std::fs::read_to_string(kubeconfig)?;
    let field = |name: &str| -> Result<String> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")).map(|s| s.trim().to_string()))
            .with_context(|| format!("{name} not in {}", kubeconfig.display()))
    };
    let ca = base64::engine::general_purpose::STANDARD.decode(field("certificate-authority-data")?)?;
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
        .pool_max_idle_per_host(512)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()?;
    Ok(Kube { http, base: field("server")?, token: field("token")? })
}

impl Kube {
    async fn post(&self, path: &str, body: &Value) -> Result<u16> {
        let r = self.http.post(format!("{}{path}", self.base)).bearer_auth(&self.token).json(body).send().await?;
        let status = r.status().as_u16();
        // Read the body: dropping an unread HTTP/2 response resets its stream, and h2 closes a
        // connection that resets too many.
        let _ = r.bytes().await?;
        Ok(status)
    }
    async fn get(&self, path: &str) -> Result<(u16, bytes::Bytes)> {
        let r = self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.token).send().await?;
        let s = r.status().as_u16();
        Ok((s, r.bytes().await?))
    }
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"payload": "x".repeat(1024)}})
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "load"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"],
                                  "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
    })
}

struct Row {
    what: String,
    clients: usize,
    rate: f64,
    hist: Histogram<u64>,
    errors: u64,
}

async fn create_load(kubes: &[Kube], kind: &str, clients: usize, duration: Duration) -> Row {
    let warm = Instant::now() + Duration::from_secs(1);
    let end = warm + duration;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let kube = kubes[c % kubes.len()].clone();
        let kind = kind.to_string();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
            let (mut ok, mut errors, mut seq) = (0u64, 0u64, 0u64);
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                seq += 1;
                let name = format!("{kind}-{clients}-{c}-{seq}");
                let (path, body) = if kind == "pod" {
                    ("/api/v1/namespaces/bench/pods", pod(&name))
                } else {
                    ("/api/v1/namespaces/bench/configmaps", configmap(&name))
                };
                let r = kube.post(path, &body).await;
                let t1 = Instant::now();
                if t0 >= warm && t1 <= end {
                    match r {
                        Ok(201) => {
                            ok += 1;
                            let _ = hist.record((t1 - t0).as_micros() as u64);
                        }
                        Ok(code) => {
                            errors += 1;
                            if errors <= 3 {
                                eprintln!("  create {kind} answered {code}");
                            }
                        }
                        Err(e) => {
                            errors += 1;
                            if errors <= 3 {
                                eprintln!("  create {kind} failed: {e:#}");
                            }
                        }
                    }
                }
            }
            (ok, errors, hist)
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let (mut ok, mut errors) = (0, 0);
    for t in tasks {
        let (o, e, h) = t.await.expect("load task");
        ok += o;
        errors += e;
        hist.add(h).expect("merge");
    }
    Row { what: format!("create {kind}"), clients, rate: ok as f64 / duration.as_secs_f64(), hist, errors }
}

pub async fn run(args: ApiArgs) -> Result<()> {
    println!("# rkube-bench api");
    println!();
    println!("3 masters on loopback, clients spread over all three; {:?} per client count after 1s warm-up", args.duration);
    println!();
    eprintln!("starting 3 rkube masters...");
    let c = Cluster::start(ClusterOptions { size: 3, ..Default::default() }).await?;
    let mut kubes = Vec::new();
    for i in 0..3 {
        let kc = c.wait_api(i, Duration::from_secs(60)).await?;
        kubes.push(kube_for(&kc)?);
    }
    kubes[0].post("/api/v1/namespaces", &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})).await?;
    let mut rows = Vec::new();
    for kind in ["configmap", "pod"] {
        for &n in &args.clients {
            eprintln!("create {kind}: {n} clients...");
            rows.push(create_load(&kubes, kind, n, args.duration).await);
        }
    }

    // List latency: top up to N pods in one namespace, then list them all.
    eprintln!("creating {} pods for the list benchmark...", args.list_pods);
    kubes[0].post("/api/v1/namespaces", &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "listing"}})).await?;
    let created = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..64 {
        let kube = kubes[w % 3].clone();
        let (created, total) = (created.clone(), args.list_pods);
        tasks.push(tokio::spawn(async move {
            loop {
                let i = created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return;
                }
                let _ = kube.post("/api/v1/namespaces/listing/pods", &pod(&format!("p{i:05}"))).await;
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let mut list_hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut count = 0;
    let mut bytes = 0;
    for i in 0..10 {
        let t0 = Instant::now();
        let (status, body) = kubes[i % 3].get("/api/v1/namespaces/listing/pods").await?;
        list_hist.record(t0.elapsed().as_micros() as u64)?;
        anyhow::ensure!(status == 200, "list failed: {status}");
        let v: Value = serde_json::from_slice(&body)?;
        count = v["items"].as_array().map(|a| a.len()).unwrap_or(0);
        bytes = body.len();
    }
    let mut page_hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    for i in 0..10 {
        let t0 = Instant::now();
        let (_, body) = kubes[i % 3].get("/api/v1/namespaces/listing/pods?limit=500").await?;
        page_hist.record(t0.elapsed().as_micros() as u64)?;
        let _ = body;
    }

    // Watch fan-out: watchers spread over the masters; the writer puts its send time in each
    // object; watchers measure the delivery delay.
    eprintln!("watch fan-out: {} watchers, {} events...", args.watchers, args.watch_events);
    kubes[0].post("/api/v1/namespaces", &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fanout"}})).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut watchers = Vec::new();
    for w in 0..args.watchers {
        let kube = kubes[w % 3].clone();
        let (tx, ready, want) = (tx.clone(), ready.clone(), args.watch_events);
        watchers.push(tokio::spawn(async move {
            let resp = kube
                .http
                .get(format!("{}/api/v1/namespaces/fanout/configmaps?watch=1&resourceVersion=0", kube.base))
                .bearer_auth(&kube.token)
                .timeout(Duration::from_secs(300))
                .send()
                .await;
            let Ok(resp) = resp else { return };
            ready.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut stream = resp.bytes_stream();
            let mut buf = Vec::new();
            let mut got = 0;
            while let Some(Ok(chunk)) = stream.next().await {
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64;
                    if let Ok(v) = serde_json::from_slice::<Value>(&line)
                        && let Some(sent) = v.pointer("/object/data/sent").and_then(|s| s.as_str()).and_then(|s| s.parse::<u64>().ok())
                    {
                        let _ = tx.send(now.saturating_sub(sent));
                        got += 1;
                        if got >= want {
                            return;
                        }
                    }
                }
            }
        }));
    }
    drop(tx);
    while ready.load(std::sync::atomic::Ordering::Relaxed) < args.watchers {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..args.watch_events {
        let sent = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64;
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("e{i}")}, "data": {"sent": sent.to_string()}});
        kubes[i % 3].post("/api/v1/namespaces/fanout/configmaps", &body).await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut fan = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(Some(d)) = tokio::time::timeout_at(deadline.into(), rx.recv()).await {
        fan.record(d.max(1))?;
    }
    for w in watchers {
        w.abort();
    }

    println!("## Creates through the Kubernetes API");
    println!();
    println!("| object | clients | creates/s | p50 ms | p99 ms | max ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.0} | {} | {} | {} | {} |",
            r.what.trim_start_matches("create "),
            r.clients,
            r.rate,
            ms(Duration::from_micros(r.hist.value_at_quantile(0.5))),
            ms(Duration::from_micros(r.hist.value_at_quantile(0.99))),
            ms(Duration::from_micros(r.hist.max())),
            r.errors
        );
    }
    println!();
    println!("## List and watch");
    println!();
    println!("| measurement | p50 ms | p99 ms | notes |");
    println!("|---|---:|---:|---|");
    println!(
        "| list {count} pods (one request, JSON) | {} | {} | {:.1} MiB per response, 10 lists |",
        ms(Duration::from_micros(list_hist.value_at_quantile(0.5))),
        ms(Duration::from_micros(list_hist.value_at_quantile(0.99))),
        bytes as f64 / (1 << 20) as f64
    );
    println!(
        "| list first page of 500 pods | {} | {} | 10 requests |",
        ms(Duration::from_micros(page_hist.value_at_quantile(0.5))),
        ms(Duration::from_micros(page_hist.value_at_quantile(0.99)))
    );
    println!(
        "| watch event delivery, {} watchers | {} | {} | {} deliveries of {} events |",
        args.watchers,
        ms(Duration::from_micros(fan.value_at_quantile(0.5))),
        ms(Duration::from_micros(fan.value_at_quantile(0.99))),
        fan.len(),
        args.watch_events
    );
    println!();
    println!("Kubernetes' SLOs for comparison: mutating API calls p99 <= 1 s; non-streaming read-only calls p99 <= 1 s (single object) / 30 s (cluster-scope lists).");
    Ok(())
}
