//! End-to-end: real `rkube server` processes on loopback forming one Raft group.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chaos::{ClientError, Cluster, ClusterOptions, StoreClient};
use raft::api::{ApiOp, ApiResult};
use tokio::sync::Mutex;

fn opts(size: usize, args: &[&str]) -> ClusterOptions {
    ClusterOptions { size, server_args: args.iter().map(|s| s.to_string()).collect(), ..Default::default() }
}

/// Every key under `prefix` as `member i` has it, read locally (no barrier) once it has applied
/// `at_least`.
async fn local_view(c: &Cluster, i: usize, prefix: &str, at_least: u64) -> BTreeMap<String, String> {
    c.wait_applied(at_least, Duration::from_secs(30)).await.expect("members catch up");
    let l = c.client(i).list_all(prefix, true, 500).await.expect("list");
    l.items.into_iter().map(|kv| (kv.key, kv.value)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_any_member_are_read_everywhere() {
    let c = Cluster::start(opts(3, &[])).await.unwrap();
    let mut last = 0;
    for i in 0..3 {
        for j in 0..5 {
            last = c.client(i).put(&format!("/any/m{i}/k{j}"), &format!("v{i}{j}")).await.unwrap();
        }
    }
    // Linearizable reads on every member see every acknowledged write at once.
    for i in 0..3 {
        for src in 0..3 {
            let r = c.client(i).get(&format!("/any/m{src}/k4"), false).await.unwrap();
            assert_eq!(r.kv.expect("written key visible").value, format!("v{src}4"));
        }
        assert_eq!(c.client(i).list_all("/any/", false, 4).await.unwrap().items.len(), 15);
    }
    // Conditional writes are decided in apply, the same on every member.
    let r = c.client(1).txn(vec![ApiOp::Create { key: "/any/m0/k0".into(), value: "x".into() }], false).await.unwrap();
    assert!(matches!(r.results[0], ApiResult::AlreadyExists { .. }), "{:?}", r.results);
    let kv = c.client(2).get("/any/m0/k0", false).await.unwrap().kv.unwrap();
    let stale = c
        .client(2)
        .txn(vec![ApiOp::Update { key: "/any/m0/k0".into(), value: "y".into(), rev: Some(kv.mod_rev - 1) }], false)
        .await
        .unwrap();
    assert!(matches!(stale.results[0], ApiResult::Conflict { .. }));
    // Revisions are log indexes: identical on every member.
    let views: Vec<_> = futures_join(&c, "/any/", last).await;
    assert_eq!(views[0], views[1]);
    assert_eq!(views[1], views[2]);
    // The status CLI talks to any member and names the leader.
    let out = c.cli(&["cluster", "status", "--server", &c.masters[2].url]).unwrap();
    assert!(out.contains("leader:"), "{out}");
    assert_eq!(out.matches(" voter ").count(), 3, "{out}");
}

async fn futures_join(c: &Cluster, prefix: &str, at_least: u64) -> Vec<BTreeMap<String, (String, u64)>> {
    c.wait_applied(at_least, Duration::from_secs(30)).await.unwrap();
    let mut out = Vec::new();
    for i in 0..c.masters.len() {
        let l = c.client(i).list_all(prefix, true, 100).await.unwrap();
        out.push(l.items.into_iter().map(|kv| (kv.key, (kv.value, kv.mod_rev))).collect());
    }
    out
}

/// A steady write load; SIGKILL the leader; writes continue under a new leader; every
/// acknowledged write is on every member afterwards, including the killed one once restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_sigkill_under_load_loses_no_acknowledged_write() {
    let mut c = Cluster::start(opts(3, &[])).await.unwrap();
    let clients: Vec<StoreClient> = (0..3).map(|i| c.client(i).with_timeout(Duration::from_secs(3))).collect();
    let acked: Arc<Mutex<Vec<(String, String, u64, Instant)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (clients, acked, stop) = (clients.clone(), acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let key = format!("/load/w{w}/{seq:06}");
                let val = format!("{w}-{seq}");
                let client = &clients[(w + seq as usize) % clients.len()];
                match client.put(&key, &val).await {
                    Ok(rev) => acked.lock().await.push((key, val, rev, Instant::now())),
                    Err(ClientError::Unavailable(_)) | Err(ClientError::Unknown(_)) => {
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let leader = c.wait_leader(Duration::from_secs(5)).await.unwrap();
    let before = acked.lock().await.len();
    assert!(before > 50, "the load is running ({before} writes acknowledged)");
    let killed_at = Instant::now();
    c.kill(leader);
    let new_leader = c.wait_leader(Duration::from_secs(10)).await.unwrap();
    assert_ne!(new_leader, leader);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    let after: Vec<_> = acked.iter().filter(|a| a.3 > killed_at).collect();
    assert!(after.len() > 50, "writes continued after the kill ({} acknowledged)", after.len());
    let first_after = after.iter().map(|a| a.3).min().unwrap();
    let failover = first_after - killed_at;
    eprintln!("failover (kill -> first acknowledged write): {failover:?}");
    assert!(failover < Duration::from_secs(5), "failover took {failover:?}");

    // The killed master restarts from its data dir and catches up.
    c.restart(leader).unwrap();
    let max_rev = acked.iter().map(|a| a.2).max().unwrap();
    for i in 0..3 {
        let view = local_view(&c, i, "/load/", max_rev).await;
        for (key, val, _, _) in &acked {
            assert_eq!(view.get(key), Some(val), "member {i} lost acknowledged write {key}");
        }
    }
}

/// A member far behind (its log position purged on the leader) catches up via a snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_member_catches_up_through_a_snapshot() {
    let mut c = Cluster::start(opts(3, &["--snapshot-every", "100", "--keep-after-snapshot", "10"])).await.unwrap();
    let leader = c.wait_leader(Duration::from_secs(5)).await.unwrap();
    let lagger = (leader + 1) % 3;
    c.put_many(leader, "/snap/before", 20).await;
    c.kill(lagger);
    let last = c.put_many(leader, "/snap/while-down", 600).await;
    // Snapshots are built and the log purged in the background: wait for it.
    let client = c.client(leader);
    wait_for(|| async { client.status().await.map(|s| s.purged.unwrap_or(0) > 200).unwrap_or(false) }).await;
    let purged = client.status().await.unwrap().purged.unwrap();
    let lagger_applied_before = 20;
    assert!(purged > lagger_applied_before + 100, "purged up to {purged}");
    c.restart(lagger).unwrap();
    c.wait_applied(last, Duration::from_secs(30)).await.unwrap();
    let s = c.client(lagger).status().await.unwrap();
    assert!(s.snapshot.unwrap_or(0) >= purged.min(last), "the lagger installed a snapshot: {s:?}");
    let view = c.client(lagger).list_all("/snap/", true, 1000).await.unwrap();
    assert_eq!(view.items.len(), 620);
    // And it keeps up with new writes normally afterwards.
    let last = c.put_many(leader, "/snap/after", 10).await;
    c.wait_applied(last, Duration::from_secs(10)).await.unwrap();
    assert_eq!(c.client(lagger).list_all("/snap/", true, 1000).await.unwrap().items.len(), 630);
}

trait PutMany {
    async fn put_many(&self, via: usize, prefix: &str, n: usize) -> u64;
}

impl PutMany for Cluster {
    async fn put_many(&self, via: usize, prefix: &str, n: usize) -> u64 {
        let client = self.client(via);
        let mut last = 0;
        for chunk in (0..n).collect::<Vec<_>>().chunks(16) {
            let futs = chunk.iter().map(|i| {
                let client = client.clone();
                let key = format!("{prefix}/{i:05}");
                async move { client.put(&key, "v").await.expect("put") }
            });
            for rev in futures::future::join_all(futs).await {
                last = last.max(rev);
            }
        }
        last
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_remove_and_transfer_leadership() {
    let mut c = Cluster::start(opts(3, &[])).await.unwrap();
    c.client(0).put("/m/before-join", "1").await.unwrap();
    let fourth = c.add_master().await.unwrap();
    c.wait_voters(4, Duration::from_secs(30)).await.unwrap();
    // The new member has the data written before it joined.
    let rev = c.client(fourth).put("/m/after-join", "2").await.unwrap();
    c.wait_applied(rev, Duration::from_secs(10)).await.unwrap();
    assert_eq!(c.client(fourth).get("/m/before-join", true).await.unwrap().kv.unwrap().value, "1");

    // Remove a follower with the CLI.
    let leader = c.wait_leader(Duration::from_secs(5)).await.unwrap();
    let victim = (0..4).find(|i| *i != leader && *i != fourth).unwrap();
    let out = c.cli(&["cluster", "remove", &c.masters[victim].node_id.to_string(), "--server", &c.masters[fourth].url]).unwrap();
    assert!(out.contains("removed"), "{out}");
    c.wait_voters(3, Duration::from_secs(10)).await.unwrap();
    let s = c.client(leader).status().await.unwrap();
    assert!(!s.members.iter().any(|m| m.id == c.masters[victim].node_id), "{s:?}");
    c.kill(victim);
    // The remaining three still take writes.
    c.client(fourth).put("/m/after-remove", "3").await.unwrap();

    // Hand leadership to a specific voter.
    let target = (0..4).find(|i| *i != leader && *i != victim).unwrap();
    let out = c
        .cli(&["cluster", "transfer-leader", "--to", &c.masters[target].node_id.to_string(), "--server", &c.masters[leader].url])
        .unwrap();
    assert!(out.contains("leader is now"), "{out}");
    let now = c.wait_leader(Duration::from_secs(5)).await.unwrap();
    assert_eq!(now, target, "leadership moved to the requested member");
    c.client(leader).put("/m/after-transfer", "4").await.unwrap();
    // Removing the same member again is an error that says so.
    let err = c.cli(&["cluster", "remove", &c.masters[victim].node_id.to_string(), "--server", &c.masters[target].url]).unwrap_err();
    assert!(err.to_string().contains("not a member"), "{err}");
}

/// Disaster recovery: save a snapshot, lose every master, restore onto fresh data dirs at the
/// same addresses; the new cluster serves the saved data and an old member cannot rejoin it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_save_and_restore_into_a_new_cluster() {
    let mut old = Cluster::start(opts(3, &[])).await.unwrap();
    for i in 0..50 {
        old.client(i % 3).put(&format!("/dr/{i:03}"), &format!("v{i}")).await.unwrap();
    }
    let file = old.dir.path().join("backup.snap");
    let out = old.cli(&["snapshot", "save", file.to_str().unwrap(), "--server", &old.masters[1].url]).unwrap();
    assert!(out.contains("saved snapshot"), "{out}");
    let old_cluster_id = old.client(0).status().await.unwrap().cluster_id;
    // A write after the save is not in the backup.
    old.client(0).put("/dr/late", "x").await.unwrap();
    old.kill_all();

    // Restore onto a fresh data dir at the first master's address, then grow to three.
    let restored_dir = old.dir.path().join("restored-1");
    let addr1 = old.masters[0].url.clone();
    let out = old
        .cli(&["snapshot", "restore", file.to_str().unwrap(), "--data-dir", restored_dir.to_str().unwrap(), "--advertise", &addr1, "--node-id", "101"])
        .unwrap();
    assert!(out.contains("restored revision"), "{out}");
    let bin = chaos::rkube_bin();
    let spawn = |dir: &std::path::Path, listen: &str, extra: &[&str]| {
        let api = format!("{}:16443", listen.rsplit_once(':').unwrap().0);
        std::process::Command::new(&bin)
            .args(["server", "--data-dir", dir.to_str().unwrap(), "--listen", listen, "--api-listen", &api, "--service-cidr", "100.64.128.0/17"])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.with_extension("log")).unwrap())
            .spawn()
            .unwrap()
    };
    let mut children = vec![spawn(&restored_dir, &old.masters[0].listen, &[])];
    let new = StoreClient::new(addr1.clone());
    wait_for(|| async { new.get("/dr/000", false).await.is_ok() }).await;
    for i in 1..3 {
        let d = old.dir.path().join(format!("restored-{}", i + 1));
        let id = (101 + i).to_string();
        children.push(spawn(&d, &old.masters[i].listen, &["--join", &addr1, "--node-id", &id]));
    }
    let guard = KillOnDrop(children);
    wait_for(|| async { new.status().await.map(|s| s.members.iter().filter(|m| m.voter).count() == 3).unwrap_or(false) }).await;
    let s = new.status().await.unwrap();
    assert_ne!(s.cluster_id, old_cluster_id, "a restored cluster gets a new id");
    for i in 0..3 {
        let c = old.masters[i].client();
        let all = c.list_all("/dr/", false, 20).await.unwrap();
        assert_eq!(all.items.len(), 50, "member {i} serves the saved data");
        assert!(all.items.iter().all(|kv| kv.key != "/dr/late"));
        assert_eq!(c.get("/dr/049", false).await.unwrap().kv.unwrap().value, "v49");
    }
    // Revisions continue after the saved ones.
    let rev = new.put("/dr/new", "n").await.unwrap();
    assert!(rev > s.revision, "revisions continue after the restored ones");

    // An old member (old cluster id) started at a spare address is refused by the new cluster:
    // it never gains a vote, and the new cluster's leadership is undisturbed.
    let term_before = new.status().await.unwrap().term;
    let mut stray = spawn(&old.masters[2].data_dir, &old.addr_of(3), &[]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = new.status().await.unwrap();
    assert_eq!(after.term, term_before, "the stray old member disturbed the new cluster");
    assert_eq!(after.members.len(), 3);
    let _ = stray.kill();
    let _ = stray.wait();
    drop(guard);
}

struct KillOnDrop(Vec<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn wait_for<F, Fut>(mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "condition not reached within 30s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Peer traffic over mutual TLS: certificates from `rkube pki peer`, a cluster that forms and
/// replicates over https, and a peer port that refuses clients without a certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_traffic_uses_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let bin = chaos::rkube_bin();
    let net = (rand::random_range(10..250u8), rand::random_range(1..250u8));
    let hosts: Vec<String> = (1..=3).map(|i| format!("127.{}.{}.{i}", net.0, net.1)).collect();
    let pki = dir.path().join("pki");
    let mut args = vec!["pki", "peer", "--out", pki.to_str().unwrap()];
    for h in &hosts {
        args.extend(["--host", h.as_str()]);
    }
    chaos::harness::run_cli(&bin, &args).unwrap();
    let mut children = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let listen = format!("{h}:17001");
        let data = dir.path().join(format!("m{i}"));
        let mut cmd = std::process::Command::new(&bin);
        cmd.args(["server", "--data-dir", data.to_str().unwrap(), "--listen", &listen, "--api-listen", &format!("{h}:16443"), "--service-cidr", "100.64.128.0/17"])
            .arg("--peer-cert-file").arg(pki.join(format!("{h}.crt")))
            .arg("--peer-key-file").arg(pki.join(format!("{h}.key")))
            .arg("--peer-trusted-ca-file").arg(pki.join("ca.crt"))
            .args(["--node-id", &(i + 1).to_string()]);
        if i == 0 {
            cmd.arg("--init");
        } else {
            cmd.args(["--join", &format!("https://{}:17001", hosts[0])]);
        }
        cmd.stdout(std::process::Stdio::null()).stderr(std::fs::File::create(dir.path().join(format!("m{i}.log"))).unwrap());
        children.push(cmd.spawn().unwrap());
        if i == 0 {
            std::thread::sleep(Duration::from_millis(800));
        }
    }
    let _guard = KillOnDrop(children);
    let tls_args = |server: &str| -> Vec<String> {
        vec![
            "--server".into(), server.into(),
            "--cacert".into(), pki.join("ca.crt").to_str().unwrap().into(),
            "--cert".into(), pki.join(format!("{}.crt", hosts[0])).to_str().unwrap().into(),
            "--key".into(), pki.join(format!("{}.key", hosts[0])).to_str().unwrap().into(),
        ]
    };
    let status = || {
        let mut a = vec!["cluster".to_string(), "status".to_string()];
        a.extend(tls_args(&format!("https://{}:17001", hosts[2])));
        chaos::harness::run_cli(&bin, &a.iter().map(|s| s.as_str()).collect::<Vec<_>>())
    };
    wait_for(|| async { status().map(|s| s.matches(" voter ").count() == 3).unwrap_or(false) }).await;
    let out = status().unwrap();
    assert!(out.contains("https://"), "{out}");
    // A client with a certificate can use the store through any member.
    let pem = |p: &std::path::Path| std::fs::read(p).unwrap();
    let mut id = pem(&pki.join(format!("{}.crt", hosts[1])));
    id.extend(pem(&pki.join(format!("{}.key", hosts[1]))));
    let http = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem(&pki.join("ca.crt"))).unwrap())
        .identity(reqwest::Identity::from_pem(&id).unwrap())
        .build()
        .unwrap();
    let client = StoreClient::new(format!("https://{}:17001", hosts[1])).with_http(http);
    let rev = client.put("/tls/a", "secret").await.unwrap();
    let other = {
        let mut id = pem(&pki.join(format!("{}.crt", hosts[2])));
        id.extend(pem(&pki.join(format!("{}.key", hosts[2]))));
        let http = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem(&pki.join("ca.crt"))).unwrap())
            .identity(reqwest::Identity::from_pem(&id).unwrap())
            .build()
            .unwrap();
        StoreClient::new(format!("https://{}:17001", hosts[2])).with_http(http)
    };
    wait_for(|| async { other.status().await.map(|s| s.applied.unwrap_or(0) >= rev).unwrap_or(false) }).await;
    assert_eq!(other.get("/tls/a", true).await.unwrap().kv.unwrap().value, "secret");
    // No certificate: the handshake is refused. Plain HTTP: refused too.
    let anonymous = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem(&pki.join("ca.crt"))).unwrap())
        .build()
        .unwrap();
    assert!(anonymous.get(format!("https://{}:17001/cluster/v1/status", hosts[0])).send().await.is_err(), "a client without a certificate must be refused");
    assert!(reqwest::get(format!("http://{}:17001/cluster/v1/status", hosts[0])).await.map(|r| !r.status().is_success()).unwrap_or(true));
}

/// A `rkube dev` process; killed when dropped (also when the test fails).
struct DevProcess {
    child: Option<std::process::Child>,
    log: std::path::PathBuf,
}

impl DevProcess {
    fn start(data: &std::path::Path, home: &std::path::Path, listen: &str, api: &str, log: &std::path::Path) -> DevProcess {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let child = std::process::Command::new(chaos::rkube_bin())
            .arg("dev")
            .arg("--data-dir")
            .arg(data)
            .args(["--listen", listen, "--api-listen", api, "--service-cidr", chaos::harness::TEST_SERVICE_CIDR])
            // The control plane only: the dev node's agent would put its pod network on the
            // host (tests/agent.rs covers agents, in namespaces of their own).
            .arg("--no-agent")
            // `rkube dev` writes ~/.kube/config when there is none: keep it inside the test.
            .env("HOME", home)
            .env("RKUBE_LOG", "info,openraft=error")
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawning rkube dev");
        DevProcess { child: Some(child), log: log.to_path_buf() }
    }

    fn log_tail(&self) -> String {
        chaos::harness::tail(&self.log, 30)
    }

    /// Waits until the API answers through the kubeconfig `rkube dev` wrote.
    async fn wait_api(&mut self, kubeconfig: &std::path::Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("rkube dev exited ({status}) before serving; log:\n{}", self.log_tail());
            }
            if kubeconfig.exists()
                && std::process::Command::new("kubectl").arg("--kubeconfig").arg(kubeconfig).args(["get", "--raw", "/readyz"]).output().is_ok_and(|o| o.status.success())
            {
                return;
            }
            assert!(Instant::now() < deadline, "rkube dev did not serve the API within 30s; log:\n{}", self.log_tail());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then the exit status (within 15 s).
    async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "rkube dev did not exit within 15s of SIGTERM; log:\n{}", self.log_tail());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// kubectl with a kubeconfig (`None`: the default one under `home`); stdout, or stderr on failure.
fn kubectl(home: &std::path::Path, kubeconfig: Option<&std::path::Path>, args: &[&str]) -> Result<String, String> {
    let mut cmd = std::process::Command::new("kubectl");
    cmd.env("HOME", home).env_remove("KUBECONFIG");
    if let Some(kc) = kubeconfig {
        cmd.arg("--kubeconfig").arg(kc);
    }
    let out = cmd.args(args).output().expect("kubectl is installed");
    if out.status.success() { Ok(String::from_utf8_lossy(&out.stdout).into_owned()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

/// `rkube dev`: a one-voter cluster with the Kubernetes API comes up, writes its kubeconfig (and
/// `~/.kube/config`, which plain `kubectl` then uses), serves kubectl, exits cleanly on SIGTERM,
/// and restarts from its data dir with the data kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rkube_dev_serves_kubectl_and_stops_on_sigterm() {
    let dir = tempfile::Builder::new().prefix("rkube-dev-").tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let data = dir.path().join("data");
    let net: (u8, u8) = (rand::random_range(10..250), rand::random_range(1..250));
    let listen = format!("127.{}.{}.1:{}", net.0, net.1, chaos::harness::PEER_PORT);
    let api = format!("127.{}.{}.1:{}", net.0, net.1, chaos::harness::API_PORT);
    let log = dir.path().join("dev.log");
    let kc = data.join("admin.kubeconfig");

    let mut dev = DevProcess::start(&data, &home, &listen, &api, &log);
    dev.wait_api(&kc).await;
    let text = std::fs::read_to_string(&kc).unwrap();
    assert!(text.contains(&format!("server: https://{api}")), "{text}");
    // The default kubeconfig is written too (right after), so kubectl works with no flags.
    wait_for(|| {
        let default = home.join(".kube/config");
        async move { default.exists() }
    })
    .await;
    assert_eq!(std::fs::read_to_string(home.join(".kube/config")).unwrap(), text);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ns = kubectl(&home, None, &["get", "ns", "-o", "name"]).unwrap_or_default();
        if ["default", "kube-system", "kube-public", "kube-node-lease"].iter().all(|n| ns.contains(&format!("namespace/{n}"))) {
            break;
        }
        assert!(Instant::now() < deadline, "kubectl get ns: {ns}; log:\n{}", dev.log_tail());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let table = kubectl(&home, Some(&kc), &["get", "ns"]).unwrap();
    assert!(table.starts_with("NAME") && table.contains("Active"), "{table}");
    kubectl(&home, Some(&kc), &["create", "configmap", "kept", "--from-literal=a=1"]).unwrap();
    // One voter, and the store API answers the cluster CLI.
    let status = chaos::harness::run_cli(&chaos::rkube_bin(), &["cluster", "status", "--server", &format!("http://{listen}")]).unwrap();
    assert!(status.contains("leader:") && status.matches(" voter ").count() == 1, "{status}");

    let exit = dev.terminate().await;
    assert!(exit.success(), "rkube dev exits cleanly on SIGTERM ({exit}); log:\n{}", dev.log_tail());
    assert!(kubectl(&home, Some(&kc), &["get", "--raw", "/readyz", "--request-timeout=2s"]).is_err(), "nothing serves after the exit");

    // Restart from the data dir alone: same cluster, same data.
    let mut dev = DevProcess::start(&data, &home, &listen, &api, &log);
    dev.wait_api(&kc).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if kubectl(&home, Some(&kc), &["get", "cm", "kept", "-o", "jsonpath={.data.a}"]).is_ok_and(|v| v == "1") {
            break;
        }
        assert!(Instant::now() < deadline, "the data survives a restart; log:\n{}", dev.log_tail());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let exit = dev.terminate().await;
    assert!(exit.success(), "{exit}; log:\n{}", dev.log_tail());
    let all = std::fs::read_to_string(&log).unwrap();
    assert!(!all.contains("panicked"), "{all}");
}
