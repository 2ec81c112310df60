//! A 3-member etcd cluster (Debian's `etcd-server`) on loopback, the benchmark peer.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub struct EtcdMember {
    pub name: String,
    pub client_url: String,
    pub peer_url: String,
    pub data_dir: PathBuf,
    child: Option<Child>,
}

pub struct EtcdCluster {
    pub members: Vec<EtcdMember>,
    _dir: tempfile::TempDir,
    initial: String,
}

impl EtcdCluster {
    pub async fn start(size: usize) -> Result<EtcdCluster> {
        if Command::new("etcd").arg("--version").output().is_err() {
            bail!("etcd is not installed: apt-get install etcd-server (or pass --skip-etcd)");
        }
        let dir = tempfile::Builder::new().prefix("rkube-bench-etcd-").tempdir()?;
        let net = (rand::random_range(10..250u8), rand::random_range(1..250u8));
        let members: Vec<EtcdMember> = (0..size)
            .map(|i| EtcdMember {
                name: format!("e{}", i + 1),
                client_url: format!("http://127.{}.{}.{}:2379", net.0, net.1, i + 1),
                peer_url: format!("http://127.{}.{}.{}:2380", net.0, net.1, i + 1),
                data_dir: dir.path().join(format!("e{}", i + 1)),
                child: None,
            })
            .collect();
        let initial = members.iter().map(|m| format!("{}={}", m.name, m.peer_url)).collect::<Vec<_>>().join(",");
        let mut c = EtcdCluster { members, _dir: dir, initial };
        for i in 0..size {
            c.spawn(i, "new")?;
        }
        c.wait_leader(Duration::from_secs(30)).await?;
        Ok(c)
    }

    fn spawn(&mut self, i: usize, state: &str) -> Result<()> {
        let m = &self.members[i];
        let log = std::fs::File::create(m.data_dir.with_extension("log"))?;
        let child = Command::new("etcd")
            .args(["--name", &m.name, "--data-dir"])
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &m.client_url, "--advertise-client-urls", &m.client_url])
            .args(["--listen-peer-urls", &m.peer_url, "--initial-advertise-peer-urls", &m.peer_url])
            .args(["--initial-cluster", &self.initial, "--initial-cluster-state", state])
            .args(["--initial-cluster-token", "rkube-bench", "--log-level", "error", "--logger", "zap"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning etcd")?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// Index of the member that is leader, asked through the maintenance status of live members.
    pub async fn leader(&self) -> Option<usize> {
        for (i, m) in self.members.iter().enumerate().filter(|(_, m)| m.child.is_some()) {
            let Ok(mut client) = etcd_client::Client::connect([m.client_url.as_str()], Some(
                etcd_client::ConnectOptions::new().with_connect_timeout(Duration::from_millis(300)).with_timeout(Duration::from_millis(500)),
            ))
            .await
            else {
                continue;
            };
            if let Ok(s) = client.status().await
                && s.header().map(|h| h.member_id()) == Some(s.leader())
            {
                return Some(i);
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
                bail!("etcd elected no leader within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts a killed member from its data dir.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.spawn(i, "existing")
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
