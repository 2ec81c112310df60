//! `rkube-bench pods`: pod start latency on one real node. One master and one `rkube agent`
//! (pod network in a network namespace this benchmark creates, 100.80.0.0/16 pod CIDRs, removed
//! at the end); the busybox test image is already in the node's store (imported, as the issue's
//! "image present"). Latency: create → the watch shows the pod Running, one pod at a time.
//! Throughput: a burst of pods created at once, until the last is Running. Needs root.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chaos::{Cluster, ClusterOptions, KubeClient};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::ms;

const IMAGE: &str = "rkube.local/busybox:1";

#[derive(Args, Debug, Clone)]
pub struct PodsArgs {
    /// Pods started one after another for the latency figures.
    #[arg(long, default_value_t = 50)]
    pub pods: usize,
    /// Pods created at once for the throughput figure.
    #[arg(long, default_value_t = 100)]
    pub burst: usize,
}

fn sh(cmd: &str) -> Result<()> {
    let st = Command::new("sh").arg("-c").arg(cmd).status()?;
    if !st.success() {
        bail!("`{cmd}` failed");
    }
    Ok(())
}

/// The node: its namespace, agent process and data; all removed on drop.
struct Node {
    netns: String,
    dir: PathBuf,
    agent: Option<Child>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut a) = self.agent.take() {
            let _ = a.kill();
            let _ = a.wait();
        }
        chaos::agent::sweep(&self.dir.join("data"));
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).status();
    }
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "bench"}},
           "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "c", "image": IMAGE,
               "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]}]}})
}

/// Waits on the watch until each named pod is Running; returns when it was seen.
async fn running_times(rx: &mut tokio::sync::mpsc::Receiver<Value>, want: usize, seen: &mut HashMap<String, Instant>, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while seen.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, rx.recv()).await.context("pods did not all reach Running in time")?.context("the watch ended")?;
        let o = &ev["object"];
        if o.pointer("/status/phase").and_then(Value::as_str) == Some("Running") {
            if let Some(n) = o.pointer("/metadata/name").and_then(Value::as_str) {
                seen.entry(n.to_string()).or_insert_with(Instant::now);
            }
        }
    }
    Ok(())
}

pub async fn run(args: PodsArgs) -> Result<()> {
    let cluster = Cluster::start(ClusterOptions { size: 1, server_args: vec!["--cluster-cidr".into(), "100.80.0.0/16".into()], ..Default::default() }).await?;
    let kc = cluster.wait_api(0, Duration::from_secs(30)).await?;
    let kube = KubeClient::from_kubeconfig(&kc)?;
    let tmp = tempfile::tempdir()?;
    let netns = format!("rkbench{}", std::process::id());
    sh(&format!("ip netns add {netns} && ip -n {netns} link set lo up"))?;
    let mut node = Node { netns: netns.clone(), dir: tmp.path().join("node"), agent: None };
    std::fs::create_dir_all(&node.dir)?;
    let data = node.dir.join("data");
    // The image, present before the first pod.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-test-image.sh");
    let archive = tmp.path().join("busybox.tar");
    sh(&format!("{} {} {IMAGE} >/dev/null", script.display(), archive.display()))?;
    let bin = chaos::rkube_bin();
    let st = Command::new(&bin).args(["images", "import"]).arg(&archive).arg("--data-dir").arg(&data).stdout(Stdio::null()).stderr(Stdio::null()).status()?;
    if !st.success() {
        bail!("rkube images import failed");
    }
    let prefix = cluster.addr_of(0).rsplit_once('.').map(|(p, _)| p.to_string()).unwrap_or_default();
    let log = std::fs::File::create(node.dir.join("agent.log"))?;
    node.agent = Some(
        Command::new(&bin)
            .args(["agent", "--node-name", "bench-node", "--bridge", "rkb0", "--max-pods", "500"])
            .arg("--kubeconfig")
            .arg(&kc)
            .arg("--listen")
            .arg(format!("{prefix}.101:10250"))
            .arg("--data-dir")
            .arg(&data)
            .arg("--pod-netns")
            .arg(format!("/run/netns/{netns}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = kube.get("/api/v1/nodes/bench-node").await?;
        if r.ok() && r.body.pointer("/spec/podCIDR").is_some() {
            break;
        }
        if Instant::now() > deadline {
            bail!("the node did not register with a podCIDR; see {}", node.dir.join("agent.log").display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let list = kube.get("/api/v1/namespaces/default/pods").await?;
    let rv = list.body.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("0").to_string();
    let mut rx = kube.watch("/api/v1/namespaces/default/pods", &rv).await?;

    // Latency: one pod at a time.
    eprintln!("pod start latency: {} pods, one at a time...", args.pods);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut seen = HashMap::new();
    for i in 0..args.pods {
        let name = format!("lat-{i:03}");
        let t0 = Instant::now();
        let r = kube.post("/api/v1/namespaces/default/pods", &pod(&name)).await?;
        if !r.ok() {
            bail!("creating {name}: {}", r.body);
        }
        running_times(&mut rx, seen.len() + 1, &mut seen, Duration::from_secs(60)).await?;
        let t = seen[&name];
        hist.record((t - t0).as_micros().max(1) as u64)?;
    }

    // The latency pods go first, so the burst starts on an empty node.
    eprintln!("deleting the {} latency pods...", args.pods);
    delete_all(&kube, seen.keys().cloned().collect()).await?;

    // Throughput: a burst.
    eprintln!("throughput: {} pods at once...", args.burst);
    let t0 = Instant::now();
    let creates: Vec<_> = (0..args.burst)
        .map(|i| {
            let kube = kube.clone();
            tokio::spawn(async move { kube.post("/api/v1/namespaces/default/pods", &pod(&format!("burst-{i:03}"))).await })
        })
        .collect();
    for c in creates {
        let r = c.await??;
        if !r.ok() {
            bail!("creating a burst pod: {}", r.body);
        }
    }
    let before = seen.len();
    running_times(&mut rx, before + args.burst, &mut seen, Duration::from_secs(300)).await?;
    let burst_secs = t0.elapsed().as_secs_f64();
    let mut burst_hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    for (n, t) in &seen {
        if n.starts_with("burst-") {
            burst_hist.record((*t - t0).as_micros().max(1) as u64)?;
        }
    }

    println!("# rkube-bench pods\n");
    println!("1 master, 1 agent (real containers, libcontainer), busybox image present; create -> Running seen on a watch\n");
    println!("| run | pods | p50 ms | p99 ms | max ms | pods/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    let d = |us: u64| Duration::from_micros(us);
    println!(
        "| one at a time | {} | {} | {} | {} | - |",
        args.pods,
        ms(d(hist.value_at_quantile(0.5))),
        ms(d(hist.value_at_quantile(0.99))),
        ms(d(hist.max())),
    );
    println!(
        "| burst (all at once) | {} | {} | {} | {} | {:.1} |",
        args.burst,
        ms(d(burst_hist.value_at_quantile(0.5))),
        ms(d(burst_hist.value_at_quantile(0.99))),
        ms(d(burst_hist.max())),
        args.burst as f64 / burst_secs
    );
    println!("\nAnchors: Kubernetes' pod startup SLO p99 <= 5 s (image present); youki's published create+start+delete ~110 ms.");

    // Clean up through the agent, so nothing is left for the sweep.
    eprintln!("deleting the pods...");
    delete_all(&kube, seen.keys().filter(|n| n.starts_with("burst-")).cloned().collect()).await?;
    drop(node);
    drop(cluster);
    Ok(())
}

/// Deletes the pods and waits until the agent has finished them (the objects are gone).
async fn delete_all(kube: &KubeClient, names: Vec<String>) -> Result<()> {
    for n in &names {
        let _ = kube.delete(&format!("/api/v1/namespaces/default/pods/{n}")).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = kube.get("/api/v1/namespaces/default/pods").await?;
        let left = r.body["items"].as_array().map(|a| a.iter().filter(|p| names.iter().any(|n| p.pointer("/metadata/name").and_then(Value::as_str) == Some(n))).count()).unwrap_or(0);
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{left} pods were not deleted within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
