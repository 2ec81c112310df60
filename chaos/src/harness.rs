//! Real clusters of `rkube server` processes on loopback addresses, for tests, benchmarks and
//! chaos runs. Each cluster picks its own `127.a.b.0/24` so clusters of parallel tests never
//! collide; each master gets `127.a.b.(i+1)`. Processes are killed when the cluster is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::client::StoreClient;

pub const PEER_PORT: u16 = 17001;
pub const API_PORT: u16 = 16443;
/// Service addresses of test clusters: inside 100.64.0.0/10, never routed off the machine.
pub const TEST_SERVICE_CIDR: &str = "100.64.128.0/17";

/// Finds the `rkube` binary: `$RKUBE_BIN`, else next to the running test or bench executable.
pub fn rkube_bin() -> PathBuf {
    if let Ok(p) = std::env::var("RKUBE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    // Test binaries live in target/<profile>/deps; the binary in target/<profile>.
    for _ in 0..3 {
        let cand = dir.join("rkube");
        if cand.is_file() {
            return cand;
        }
        if !dir.pop() {
            break;
        }
    }
    panic!("cannot find the rkube binary next to {}; build it (cargo build) or set RKUBE_BIN", exe.display())
}

pub struct Master {
    pub index: usize,
    pub node_id: u64,
    pub listen: String,
    pub url: String,
    /// `host:port` of the Kubernetes API.
    pub api_listen: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    stopped: bool,
}

impl Master {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn client(&self) -> StoreClient {
        StoreClient::new(self.url.clone())
    }

    /// The admin kubeconfig this master wrote (pointing at its own API).
    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir.join("admin.kubeconfig")
    }
}

pub struct ClusterOptions {
    pub size: usize,
    /// Extra flags for every `rkube server`.
    pub server_args: Vec<String>,
    pub bin: PathBuf,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions { size: 3, server_args: Vec::new(), bin: rkube_bin() }
    }
}

pub struct Cluster {
    pub masters: Vec<Master>,
    pub dir: tempfile::TempDir,
    net: (u8, u8),
    opts: ClusterOptions,
}

impl Cluster {
    /// Starts `size` masters: the first with `--init`, the others with `--join`, and waits until
    /// all of them are voters.
    pub async fn start(opts: ClusterOptions) -> Result<Cluster> {
        let dir = tempfile::Builder::new().prefix("rkube-cluster-").tempdir()?;
        let net = (rand::random_range(10..250u8), rand::random_range(1..250u8));
        let mut c = Cluster { masters: Vec::new(), dir, net, opts };
        let size = c.opts.size;
        c.spawn_new(&["--init".to_string()])?;
        c.wait_leader(Duration::from_secs(20)).await?;
        let seed = c.masters[0].url.clone();
        for _ in 1..size {
            c.spawn_new(&["--join".to_string(), seed.clone()])?;
        }
        c.wait_voters(size, Duration::from_secs(60)).await?;
        Ok(c)
    }

    /// The base URL a new master with this index would get.
    pub fn addr_of(&self, index: usize) -> String {
        format!("127.{}.{}.{}:{PEER_PORT}", self.net.0, self.net.1, index + 1)
    }

    fn spawn_new(&mut self, extra: &[String]) -> Result<usize> {
        let index = self.masters.len();
        let listen = self.addr_of(index);
        let data_dir = self.dir.path().join(format!("m{}", index + 1));
        let log = self.dir.path().join(format!("m{}.log", index + 1));
        let api_listen = format!("127.{}.{}.{}:{API_PORT}", self.net.0, self.net.1, index + 1);
        let mut m = Master {
            index,
            node_id: index as u64 + 1,
            url: format!("http://{listen}"),
            api_listen,
            listen,
            data_dir,
            log,
            child: None,
            stopped: false,
        };
        let mut args = vec!["--node-id".to_string(), m.node_id.to_string()];
        args.extend(extra.iter().cloned());
        m.child = Some(self.spawn(&m, &args)?);
        self.masters.push(m);
        Ok(index)
    }

    fn spawn(&self, m: &Master, extra: &[String]) -> Result<Child> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&m.log)?;
        let mut cmd = Command::new(&self.opts.bin);
        cmd.arg("server")
            .arg("--data-dir")
            .arg(&m.data_dir)
            .arg("--listen")
            .arg(&m.listen)
            .arg("--api-listen")
            .arg(&m.api_listen)
            .arg("--service-cidr")
            .arg(TEST_SERVICE_CIDR)
            .args(&self.opts.server_args)
            .args(extra)
            .env("RKUBE_LOG", std::env::var("RKUBE_LOG").unwrap_or_else(|_| "info,openraft=error".into()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        cmd.spawn().with_context(|| format!("spawning {}", self.opts.bin.display()))
    }

    /// Adds a master that joins through the current first running member.
    pub async fn add_master(&mut self) -> Result<usize> {
        let seed = self.masters.iter().find(|m| m.is_running()).context("no running master to join through")?.url.clone();
        let i = self.spawn_new(&["--join".to_string(), seed])?;
        Ok(i)
    }

    pub fn client(&self, i: usize) -> StoreClient {
        self.masters[i].client()
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.masters[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.masters[i].stopped = false;
    }

    /// Sends a signal (SIGSTOP/SIGCONT for pauses).
    pub fn signal(&mut self, i: usize, sig: i32) {
        if let Some(pid) = self.masters[i].pid() {
            // SAFETY: kill(2) on a pid we spawned and have not reaped.
            unsafe {
                libc::kill(pid as i32, sig);
            }
            self.masters[i].stopped = sig == libc::SIGSTOP;
        }
    }

    /// Restarts a killed master from its data dir alone.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        if self.masters[i].is_running() {
            bail!("master {i} is running");
        }
        let child = self.spawn(&self.masters[i], &[])?;
        self.masters[i].child = Some(child);
        Ok(())
    }

    /// Index of the leader as reported by a majority-agreeing live member, if any.
    pub async fn leader(&self) -> Option<usize> {
        for m in self.masters.iter().filter(|m| m.is_running() && !m.stopped) {
            if let Ok(s) = m.client().status().await
                && let Some(l) = s.leader
                && s.state == "Leader"
                && l == m.node_id
            {
                return Some(m.index);
            }
        }
        None
    }

    pub async fn wait_leader(&self, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.leader().await {
                return Ok(l);
            }
            if Instant::now() > deadline {
                bail!("no leader within {timeout:?}; logs in {}", self.dir.path().display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_voters(&self, n: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.leader().await
                && let Ok(s) = self.client(l).status().await
                && s.members.iter().filter(|m| m.voter).count() == n
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the cluster did not reach {n} voters within {timeout:?}; logs in {}", self.dir.path().display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every running member has applied at least `index`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        for m in self.masters.iter().filter(|m| m.is_running()) {
            loop {
                if let Ok(s) = m.client().status().await
                    && s.applied.unwrap_or(0) >= index
                {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("master {} did not apply {index} within {timeout:?}", m.index);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Runs `rkube <args>` and returns its stdout; fails with its stderr.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        run_cli(&self.opts.bin, args)
    }

    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        tail(&self.masters[i].log, lines)
    }

    /// Keeps the cluster directory (data and logs) after the run, for post-mortems.
    pub fn keep_dir(self) -> PathBuf {
        let mut me = self;
        me.kill_all();
        let dir = std::mem::replace(&mut me.dir, tempfile::tempdir().expect("tempdir"));
        dir.keep()
    }

    pub fn kill_all(&mut self) {
        for i in 0..self.masters.len() {
            if self.masters[i].stopped {
                self.signal(i, libc::SIGCONT);
            }
            self.kill(i);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
        // For post-mortems: RKUBE_KEEP_CLUSTER=1 keeps the data dirs and logs.
        if std::env::var("RKUBE_KEEP_CLUSTER").is_ok_and(|v| v == "1") {
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
            eprintln!("cluster kept in {}", dir.keep().display());
        }
    }
}

pub fn run_cli(bin: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(bin).args(args).output().with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!("rkube {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Cluster {
    /// Waits until master `i` serves the Kubernetes API and has written its kubeconfig.
    pub async fn wait_api(&self, i: usize, timeout: Duration) -> Result<PathBuf> {
        let deadline = Instant::now() + timeout;
        let m = &self.masters[i];
        loop {
            if m.kubeconfig().exists() {
                let out = Command::new("kubectl").arg("--kubeconfig").arg(m.kubeconfig()).args(["get", "--raw", "/readyz"]).output();
                if let Ok(o) = out
                    && o.status.success()
                {
                    return Ok(m.kubeconfig());
                }
            }
            if Instant::now() > deadline {
                bail!("master {i} did not serve the API within {timeout:?}; log tail:\n{}", self.log_tail(i, 20));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
