//! End-to-end: real `rkube agent` processes run pods as real containers (youki's libcontainer),
//! driven with the real kubectl. Images come from a real registry on loopback (Debian's
//! docker-registry) seeded with the busybox image scripts/build-test-image.sh builds.
//!
//! Each node's pod network lives in a network namespace the test creates (`--pod-netns`); for
//! two nodes a third namespace is the switch between them (100.65.<n>.0/24). Pod CIDRs come
//! from the masters' node IPAM (`--cluster-cidr 100.80.0.0/16`). Everything the test made —
//! agents, containers, mounts, cgroups, namespaces — is removed when it ends, also on failure.
//! Needs root (CI runs as root).

#[path = "../runtime/tests/common/registry.rs"]
#[allow(dead_code)]
mod registry;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use chaos::{Cluster, ClusterOptions, KubeClient};
use serde_json::Value;

use registry::LocalRegistry;

const CLUSTER_CIDR: &str = "100.80.0.0/16";

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(out.status.success(), "`{cmd}` failed: {}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kubectl_in(kc: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut cmd = Command::new("timeout");
    cmd.arg("60").arg("kubectl").arg("--kubeconfig").arg(kc).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().expect("kubectl is installed");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("exit {:?}: {}{}", out.status.code(), String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout)))
    }
}

fn k(kc: &Path, args: &[&str]) -> String {
    kubectl_in(kc, args, None).unwrap_or_else(|e| panic!("kubectl {} failed: {e}", args.join(" ")))
}

fn apply(kc: &Path, yaml: &str) {
    kubectl_in(kc, &["apply", "-f", "-"], Some(yaml)).unwrap_or_else(|e| panic!("apply failed: {e}\n{yaml}"));
}

async fn wait_until<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out after {secs}s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn pod(kube: &KubeClient, ns: &str, name: &str) -> Option<Value> {
    let r = kube.get(&format!("/api/v1/namespaces/{ns}/pods/{name}")).await.ok()?;
    r.ok().then_some(r.body)
}

fn container_status<'a>(p: &'a Value, name: &str) -> Option<&'a Value> {
    p.pointer("/status/containerStatuses")?.as_array()?.iter().find(|c| c["name"] == name)
}

fn is_ready(p: &Value) -> bool {
    p.pointer("/status/conditions").and_then(Value::as_array).into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Network namespaces of one test: one per node, and a switch joining them.
struct Net {
    tag: String,
    /// Third octet of 100.65.x.0/24 (the node network).
    subnet: u8,
    nodes: Vec<String>,
    switch: String,
}

impl Net {
    fn new(nodes: usize) -> Net {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let tag = format!("rka{}{}", std::process::id() % 10000, n);
        let subnet = ((std::process::id() as u32 * 7 + n) % 200 + 20) as u8;
        let switch = format!("{tag}sw");
        let mut net = Net { tag: tag.clone(), subnet, nodes: Vec::new(), switch: switch.clone() };
        sh(&format!("ip netns add {switch} && ip -n {switch} link set lo up && ip -n {switch} link add br0 type bridge && ip -n {switch} link set br0 up"));
        for i in 1..=nodes {
            let ns = format!("{tag}n{i}");
            net.nodes.push(ns.clone());
            sh(&format!(
                "ip netns add {ns} && ip -n {ns} link set lo up && \
                 ip -n {switch} link add p{i} type veth peer name eth0 netns {ns} && \
                 ip -n {switch} link set p{i} master br0 && ip -n {switch} link set p{i} up && \
                 ip -n {ns} addr add 100.65.{subnet}.{i}/24 dev eth0 && ip -n {ns} link set eth0 up && \
                 ip netns exec {ns} sysctl -qw net.ipv4.ip_forward=1"
            ));
        }
        net
    }

    fn node_ip(&self, i: usize) -> String {
        format!("100.65.{}.{}", self.subnet, i + 1)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.nodes.iter().chain(std::iter::once(&self.switch)) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = &self.tag;
    }
}

/// One `rkube agent` process and everything it runs.
struct Agent {
    name: String,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    log: PathBuf,
}

impl Agent {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(chaos::harness::rkube_bin())
            .args(&self.args)
            .env("RKUBE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting rkube agent");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log_tail(&self) -> String {
        chaos::harness::tail(&self.log, 40)
    }

    /// Kills whatever the agent left (it is meant to leave containers running when it dies).
    fn sweep(&self) {
        chaos::agent::sweep(&self.dir.join("data"));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
        self.sweep();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[allow(dead_code)] // registry and cluster are held for their Drop
struct Env {
    // Field order is drop order: agents (and their containers) go before the namespaces.
    agents: Vec<Agent>,
    net: Net,
    kc: PathBuf,
    kube: KubeClient,
    registry: LocalRegistry,
    image: String,
    _dir: tempfile::TempDir,
    cluster: Cluster,
}

impl Env {
    async fn start(nodes: usize) -> Env {
        let cluster = Cluster::start(ClusterOptions {
            size: 1,
            server_args: vec!["--cluster-cidr".into(), CLUSTER_CIDR.into(), "--node-cidr-mask-size".into(), "24".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        let kc = cluster.wait_api(0, Duration::from_secs(30)).await.unwrap();
        let kube = KubeClient::from_kubeconfig(&kc).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let registry = LocalRegistry::start();
        let archive = registry::build_test_image(dir.path(), "busybox.tar", "rkube-test/busybox:latest");
        registry.push(&format!("oci-archive:{}", archive.display()), "rkube-test/busybox:latest");
        let image = registry.image("rkube-test/busybox:latest");
        let net = Net::new(nodes);
        // Agents listen on the masters' loopback /24, from .101 up.
        let base = cluster.addr_of(0);
        let prefix = base.rsplit_once('.').map(|(p, _)| p.to_string()).unwrap();
        let mut agents = Vec::new();
        for i in 0..nodes {
            let name = format!("node{}", i + 1);
            let adir = dir.path().join(&name);
            std::fs::create_dir_all(&adir).unwrap();
            let ip = format!("{prefix}.{}", 101 + i);
            let args: Vec<String> = [
                "agent",
                "--kubeconfig",
                kc.to_str().unwrap(),
                "--node-name",
                &name,
                "--listen",
                &format!("{ip}:10250"),
                "--data-dir",
                adir.join("data").to_str().unwrap(),
                "--pod-netns",
                &format!("/run/netns/{}", net.nodes[i]),
                "--pod-network-ip",
                &net.node_ip(i),
                "--bridge",
                "rkb0",
                "--lease-interval",
                "2s",
                "--status-interval",
                "2s",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let mut a = Agent { name, log: adir.join("agent.log"), dir: adir, args, child: None };
            a.start();
            agents.push(a);
        }
        let env = Env { agents, net, kc, kube, registry, image, _dir: dir, cluster };
        for a in &env.agents {
            let (kube, name) = (env.kube.clone(), a.name.clone());
            let ok = {
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    let n = kube.get(&format!("/api/v1/nodes/{name}")).await.ok().filter(|r| r.ok()).map(|r| r.body);
                    let ready = n.as_ref().map(|n| {
                        n.pointer("/spec/podCIDR").is_some()
                            && n.pointer("/status/conditions").and_then(Value::as_array).into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
                    });
                    if ready == Some(true) {
                        break true;
                    }
                    if Instant::now() > deadline {
                        break false;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            };
            assert!(ok, "node {} did not become Ready with a podCIDR; agent log:\n{}", a.name, a.log_tail());
        }
        env
    }

    async fn wait_running(&self, name: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(p) = pod(&self.kube, "default", name).await {
                if p.pointer("/status/phase") == Some(&Value::from("Running")) && is_ready(&p) {
                    return p;
                }
                if Instant::now() > deadline {
                    panic!("pod {name} not Running+Ready after {secs}s: {}\nagent logs:\n{}", p["status"], self.agent_logs());
                }
            } else if Instant::now() > deadline {
                panic!("pod {name} missing after {secs}s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn agent_logs(&self) -> String {
        self.agents.iter().map(|a| format!("--- {} ---\n{}", a.name, a.log_tail())).collect::<Vec<_>>().join("\n")
    }

    /// Nothing of the pod is left on the host: mounts, cgroups, processes.
    fn assert_pod_gone_from_host(&self, uid: &str) {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(uid), "mounts of pod {uid} are left:\n{}", mounts.lines().filter(|l| l.contains(uid)).collect::<Vec<_>>().join("\n"));
        let cg = sh(&format!("ls -d /sys/fs/cgroup/*/rkube/pod{uid} 2>/dev/null || true"));
        assert!(cg.trim().is_empty(), "cgroups of pod {uid} are left: {cg}");
        for a in &self.agents {
            assert!(!a.dir.join("data/pods").join(uid).exists(), "the pod directory of {uid} is left on {}", a.name);
        }
    }
}

fn uid_of(p: &Value) -> String {
    p.pointer("/metadata/uid").and_then(Value::as_str).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_run_as_real_containers() {
    let e = Env::start(1).await;
    let img = e.image.clone();
    apply(
        &e.kc,
        &format!(
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: app-config}}
data: {{greeting: hello, mode: fast}}
---
apiVersion: v1
kind: Secret
metadata: {{name: app-secret}}
stringData: {{password: hunter2}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec:
  terminationGracePeriodSeconds: 10
  initContainers:
  - name: init
    image: {img}
    command: [sh, -c, 'echo prepared-by-init > /work/init.txt']
    volumeMounts: [{{name: work, mountPath: /work}}]
  containers:
  - name: main
    image: {img}
    command: [sh, -c, 'trap "echo bye; exit 0" TERM; echo "greeting=$GREETING pod=$POD_NAME pass=$PASSWORD"; while true; do sleep 1; done']
    env:
    - {{name: GREETING, valueFrom: {{configMapKeyRef: {{name: app-config, key: greeting}}}}}}
    - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: app-secret, key: password}}}}}}
    - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: MSG, value: "$(GREETING) world"}}
    volumeMounts:
    - {{name: work, mountPath: /work}}
    - {{name: cfg, mountPath: /etc/cfg}}
    - {{name: sec, mountPath: /etc/sec}}
    - {{name: info, mountPath: /etc/info}}
    readinessProbe:
      exec: {{command: [cat, /work/init.txt]}}
      periodSeconds: 1
  volumes:
  - {{name: work, emptyDir: {{}}}}
  - {{name: cfg, configMap: {{name: app-config}}}}
  - {{name: sec, secret: {{secretName: app-secret}}}}
  - {{name: info, downwardAPI: {{items: [{{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}]}}}}
"#
        ),
    );
    let p = e.wait_running("web", 60).await;
    let ip = p.pointer("/status/podIP").and_then(Value::as_str).unwrap_or("");
    assert!(ip.starts_with("100.80."), "pod IP {ip} is from the node's podCIDR");
    assert_eq!(p.pointer("/status/initContainerStatuses/0/state/terminated/reason"), Some(&Value::from("Completed")));
    let main = container_status(&p, "main").unwrap();
    assert!(main["containerID"].as_str().unwrap().starts_with("rkube://"));
    assert!(main["imageID"].as_str().unwrap().contains("@sha256:"), "{main}");

    // Logs and exec through the API server.
    wait_until("the log line", 20, || async { kubectl_in(&e.kc, &["logs", "web"], None).map(|l| l.contains("greeting=hello pod=web pass=hunter2")).unwrap_or(false) }).await;
    let out = k(&e.kc, &["exec", "web", "--", "sh", "-c", "echo $MSG; cat /work/init.txt /etc/cfg/mode /etc/sec/password /etc/info/labels; hostname"]);
    assert_eq!(out, "hello world\nprepared-by-init\nfasthunter2app=\"web\"web\n");
    let failed = kubectl_in(&e.kc, &["exec", "web", "--", "sh", "-c", "exit 3"], None).unwrap_err();
    assert!(failed.contains("exit 3") || failed.contains("exit code 3"), "{failed}");
    let piped = kubectl_in(&e.kc, &["exec", "-i", "web", "--", "cat"], Some("through stdin\n")).unwrap();
    assert_eq!(piped, "through stdin\n");
    let table = k(&e.kc, &["get", "pod", "web"]);
    assert!(table.contains("Running") && table.contains("1/1"), "{table}");

    // A ConfigMap update reaches the mounted volume.
    k(&e.kc, &["patch", "configmap", "app-config", "-p", r#"{"data":{"mode":"slow"}}"#]);
    wait_until("the configMap volume update", 40, || async { kubectl_in(&e.kc, &["exec", "web", "--", "cat", "/etc/cfg/mode"], None).map(|o| o == "slow").unwrap_or(false) }).await;

    // Usage through metrics.k8s.io, as `kubectl top` reads it (the agent samples every 10 s).
    wait_until("kubectl top pod", 40, || async { kubectl_in(&e.kc, &["top", "pod", "web", "--no-headers"], None).map(|o| o.starts_with("web ")).unwrap_or(false) }).await;
    let top_node = k(&e.kc, &["top", "node", "--no-headers"]);
    assert!(top_node.starts_with("node1 "), "{top_node}");
    let pm = e.kube.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web").await.unwrap();
    assert!(pm.ok(), "{}", pm.body);
    let mem = pm.body.pointer("/containers/0/usage/memory").and_then(Value::as_str).unwrap_or("");
    assert!(mem.ends_with("Ki") && mem != "0Ki", "the container's working set is reported: {}", pm.body);

    // Graceful deletion: the trap makes it exit at once; nothing is left behind.
    let uid = uid_of(&p);
    let t0 = Instant::now();
    k(&e.kc, &["delete", "pod", "web", "--wait=true"]);
    assert!(t0.elapsed() < Duration::from_secs(10), "deletion took {:?} (grace 10 s, and the container exits on SIGTERM)", t0.elapsed());
    assert!(pod(&e.kube, "default", "web").await.is_none());
    e.assert_pod_gone_from_host(&uid);
    // eth0 is the node's own link to the switch; pods' veths are the others.
    let veths = sh(&format!("ip -n {} -o link show type veth | grep -v ' eth0@' | wc -l", e.net.nodes[0]));
    assert_eq!(veths.trim(), "0", "the pod's veth is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_probes_and_oom() {
    let e = Env::start(1).await;
    let img = e.image.clone();
    apply(
        &e.kc,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: crasher}}
spec:
  containers: [{{name: c, image: {img}, command: [sh, -c, 'echo crashing; exit 1']}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: unhealthy}}
spec:
  containers:
  - name: c
    image: {img}
    command: [sh, -c, 'touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 1000']
    livenessProbe: {{exec: {{command: [cat, /tmp/healthy]}}, periodSeconds: 1, failureThreshold: 2}}
---
apiVersion: v1
kind: Pod
metadata: {{name: gated}}
spec:
  containers:
  - name: c
    image: {img}
    command: [sh, -c, 'trap "exit 0" TERM; while true; do sleep 1; done']
    readinessProbe: {{exec: {{command: [cat, /tmp/ready]}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Pod
metadata: {{name: hog}}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: {img}
    command: [sh, -c, 'x=$(head -c 300000000 /dev/zero | tr "\\0" a); echo survived']
    resources: {{limits: {{memory: 32Mi}}}}
"#
        ),
    );
    // CrashLoopBackOff with restart counts and the last exit code.
    let kube = e.kube.clone();
    wait_until("crasher in CrashLoopBackOff", 60, || {
        let kube = kube.clone();
        async move {
            let Some(p) = pod(&kube, "default", "crasher").await else { return false };
            let Some(c) = container_status(&p, "c") else { return false };
            c.pointer("/state/waiting/reason") == Some(&Value::from("CrashLoopBackOff"))
                && c["restartCount"].as_u64().unwrap_or(0) >= 1
                && c.pointer("/lastState/terminated/exitCode") == Some(&Value::from(1))
        }
    })
    .await;
    let table = k(&e.kc, &["get", "pod", "crasher"]);
    assert!(table.contains("CrashLoopBackOff"), "kubectl shows the back-off:\n{table}");
    let prev = k(&e.kc, &["logs", "crasher", "--previous"]);
    assert_eq!(prev, "crashing\n");

    // A failing liveness probe restarts the container.
    wait_until("the liveness restart", 60, || {
        let kube = kube.clone();
        async move { pod(&kube, "default", "unhealthy").await.and_then(|p| container_status(&p, "c").and_then(|c| c["restartCount"].as_u64())).unwrap_or(0) >= 1 }
    })
    .await;
    let events = k(&e.kc, &["get", "events", "--field-selector", "involvedObject.name=unhealthy"]);
    assert!(events.contains("Unhealthy") && events.contains("Liveness probe failed"), "{events}");

    // Readiness follows the probe.
    wait_until("gated running", 60, || {
        let kube = kube.clone();
        async move { pod(&kube, "default", "gated").await.map(|p| p.pointer("/status/phase") == Some(&Value::from("Running"))).unwrap_or(false) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!is_ready(&pod(&e.kube, "default", "gated").await.unwrap()), "not ready before /tmp/ready exists");
    k(&e.kc, &["exec", "gated", "--", "touch", "/tmp/ready"]);
    wait_until("gated ready", 20, || {
        let kube = kube.clone();
        async move { pod(&kube, "default", "gated").await.map(|p| is_ready(&p)).unwrap_or(false) }
    })
    .await;

    // The memory limit kills the hog, reported as OOMKilled.
    wait_until("the hog OOMKilled", 60, || {
        let kube = kube.clone();
        async move {
            pod(&kube, "default", "hog").await.and_then(|p| container_status(&p, "c").and_then(|c| c.pointer("/state/terminated/reason").cloned())) == Some(Value::from("OOMKilled"))
        }
    })
    .await;
    let hog = pod(&e.kube, "default", "hog").await.unwrap();
    assert_eq!(hog.pointer("/status/phase"), Some(&Value::from("Failed")));

    let uids: Vec<String> = {
        let mut v = Vec::new();
        for n in ["crasher", "unhealthy", "gated", "hog"] {
            v.push(uid_of(&pod(&e.kube, "default", n).await.unwrap()));
        }
        v
    };
    k(&e.kc, &["delete", "pod", "crasher", "unhealthy", "gated", "hog", "--grace-period=2", "--wait=true"]);
    for u in &uids {
        e.assert_pod_gone_from_host(u);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_restart_adopts_running_pods() {
    let mut e = Env::start(1).await;
    let img = e.image.clone();
    apply(
        &e.kc,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: steady}}
spec:
  terminationGracePeriodSeconds: 5
  containers: [{{name: c, image: {img}, command: [sh, -c, 'trap "exit 0" TERM; i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done']}}]
"#
        ),
    );
    apply(
        &e.kc,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: orphan}}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: web
    image: {img}
    command: [sh, -c, 'mkdir -p /www && echo shared-net > /www/index.html && exec httpd -f -p 8081 -h /www']
    volumeMounts: [{{name: shared, mountPath: /shared}}]
  - name: sidecar
    image: {img}
    command: [sh, -c, 'trap "exit 0" TERM; while true; do date > /shared/stamp; sleep 1; done']
    volumeMounts: [{{name: shared, mountPath: /shared}}]
  volumes: [{{name: shared, emptyDir: {{}}}}]
"#
        ),
    );
    let before = e.wait_running("steady", 60).await;
    let id_before = container_status(&before, "c").unwrap()["containerID"].clone();
    // A sidecar-style pod: its containers share the network namespace and the volume.
    let orphan = e.wait_running("orphan", 60).await;
    wait_until("the sidecar's file", 20, || async { kubectl_in(&e.kc, &["exec", "orphan", "-c", "web", "--", "cat", "/shared/stamp"], None).is_ok() }).await;
    let via_localhost = k(&e.kc, &["exec", "orphan", "-c", "sidecar", "--", "sh", "-c", "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 127.0.0.1 8081"]);
    assert!(via_localhost.contains("shared-net"), "{via_localhost}");
    // SIGKILL the agent: the container keeps running under its shim.
    e.agents[0].kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // `[s]` keeps pgrep from matching the shell running it.
    let shims = sh(&format!("pgrep -f '[s]him {}' | wc -l", e.agents[0].dir.display()));
    assert_eq!(shims.trim(), "3", "the containers' shims outlive the agent");
    // While the agent is down, one pod is force-deleted: nothing will ever tell the agent to
    // stop it, so the restarted agent must find and remove it on its own.
    let orphan_uid = uid_of(&orphan);
    k(&e.kc, &["delete", "pod", "orphan", "--force", "--grace-period=0"]);
    e.agents[0].start();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = e.wait_running("steady", 30).await;
    let c = container_status(&after, "c").unwrap();
    assert_eq!(c["containerID"], id_before, "the same container was adopted, not restarted");
    assert_eq!(c["restartCount"], 0);
    let log = e.agents[0].log_tail();
    assert!(log.contains("adopting a container"), "{log}");
    let data = e.agents[0].dir.join("data/pods").join(&orphan_uid);
    wait_until("the orphan's remains removed", 30, || {
        let data = data.clone();
        async move { !data.exists() }
    })
    .await;
    e.assert_pod_gone_from_host(&orphan_uid);
    let shims = sh(&format!("pgrep -f '[s]him {}' | wc -l", e.agents[0].dir.display()));
    assert_eq!(shims.trim(), "1", "only the live pod's container is left");
    // Logs and exec work against the adopted container.
    let out = k(&e.kc, &["exec", "steady", "--", "echo", "still here"]);
    assert_eq!(out, "still here\n");
    let tail = k(&e.kc, &["logs", "steady", "--tail=1"]);
    assert!(tail.starts_with("tick "), "{tail}");
    let uid = uid_of(&after);
    k(&e.kc, &["delete", "pod", "steady", "--wait=true"]);
    e.assert_pod_gone_from_host(&uid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_across_two_agents_serves_pod_to_pod() {
    let e = Env::start(2).await;
    let img = e.image.clone();
    apply(
        &e.kc,
        &format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: hello}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: hello}}}}
  template:
    metadata: {{labels: {{app: hello}}}}
    spec:
      terminationGracePeriodSeconds: 2
      topologySpreadConstraints:
      - {{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {{matchLabels: {{app: hello}}}}}}
      containers:
      - name: web
        image: {img}
        command: [sh, -c, 'mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 8080 -h /www']
        ports: [{{containerPort: 8080}}]
        readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
"#
        ),
    );
    wait_until("3 ready replicas", 90, || async {
        kubectl_in(&e.kc, &["get", "deploy", "hello", "-o", "jsonpath={.status.readyReplicas}"], None).map(|o| o == "3").unwrap_or(false)
    })
    .await;
    let list = e.kube.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dhello").await.unwrap().body;
    let pods: Vec<(String, String, String)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p.pointer("/metadata/name").and_then(Value::as_str).unwrap().to_string(),
                p.pointer("/spec/nodeName").and_then(Value::as_str).unwrap().to_string(),
                p.pointer("/status/podIP").and_then(Value::as_str).unwrap().to_string(),
            )
        })
        .collect();
    let nodes: std::collections::BTreeSet<&str> = pods.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(nodes.len(), 2, "the replicas run on both agents: {pods:?}");
    // From a pod on each node, every replica answers (same node and across nodes).
    for (from, from_node, _) in pods.iter().filter(|(_, n, _)| nodes.contains(n.as_str())).take(3) {
        for (to, to_node, ip) in &pods {
            let out = kubectl_in(&e.kc, &["exec", from, "--", "sh", "-c", &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 8080")], None)
                .unwrap_or_else(|err| panic!("{from} ({from_node}) -> {to} ({to_node}, {ip}) failed: {err}\n{}", e.agent_logs()));
            assert!(out.contains(&format!("hello from {to}")), "{from} ({from_node}) -> {to} ({to_node}): {out}");
        }
    }
    k(&e.kc, &["delete", "deployment", "hello"]);
    wait_until("the replicas gone", 60, || async {
        e.kube.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dhello").await.map(|r| r.body["items"].as_array().map(|a| a.is_empty()).unwrap_or(false)).unwrap_or(false)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_context_resources_memory_volumes_and_host_ports() {
    let e = Env::start(1).await;
    let img = e.image.clone();
    apply(
        &e.kc,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: locked}}
spec:
  terminationGracePeriodSeconds: 2
  securityContext: {{runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000}}
  containers:
  - name: c
    image: {img}
    command: [sh, -c, 'trap "exit 0" TERM; while true; do sleep 1; done']
    securityContext:
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {{drop: [ALL], add: [NET_BIND_SERVICE]}}
    resources: {{limits: {{cpu: 250m, memory: 64Mi}}}}
    volumeMounts: [{{name: cache, mountPath: /cache}}]
  volumes: [{{name: cache, emptyDir: {{medium: Memory, sizeLimit: 16Mi}}}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: porty}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: {img}
    command: [sh, -c, 'mkdir -p /www && echo "via hostPort" > /www/index.html && exec httpd -f -p 8080 -h /www']
    ports: [{{containerPort: 8080, hostPort: 18080}}]
    readinessProbe: {{httpGet: {{path: /index.html, port: 8080}}, periodSeconds: 1}}
"#
        ),
    );
    let locked = e.wait_running("locked", 60).await;
    // User, groups, capabilities, read-only root, no_new_privs.
    let id = k(&e.kc, &["exec", "locked", "--", "id"]);
    assert!(id.starts_with("uid=1000 gid=3000"), "{id}");
    assert!(id.contains("2000"), "fsGroup is a supplementary group: {id}");
    let status = k(&e.kc, &["exec", "locked", "--", "cat", "/proc/self/status"]);
    let field = |name: &str| status.lines().find(|l| l.starts_with(name)).map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string()).unwrap_or_default();
    // Only CAP_NET_BIND_SERVICE (bit 10) is bounded; a non-root user has none effective.
    assert_eq!(field("CapBnd:"), "0000000000000400", "{status}");
    assert_eq!(field("NoNewPrivs:"), "1");
    let ro = kubectl_in(&e.kc, &["exec", "locked", "--", "touch", "/not-allowed"], None).unwrap_err();
    assert!(ro.contains("Read-only file system"), "{ro}");
    // The memory emptyDir is a tmpfs of its sizeLimit (mode 0777: the non-root user writes).
    let mounts = k(&e.kc, &["exec", "locked", "--", "cat", "/proc/mounts"]);
    let cache = mounts.lines().find(|l| l.split(' ').nth(1) == Some("/cache")).unwrap_or_else(|| panic!("/cache not mounted:\n{mounts}"));
    assert!(cache.starts_with("tmpfs ") && cache.contains("size=16384k"), "{cache}");
    k(&e.kc, &["exec", "locked", "--", "sh", "-c", "echo data > /cache/f && cat /cache/f"]);
    // cgroup limits from resources.limits, seen on the host.
    let uid = uid_of(&locked);
    let cid = container_status(&locked, "c").unwrap()["containerID"].as_str().unwrap().trim_start_matches("rkube://").to_string();
    let quota = sh(&format!("cat $(ls -d /sys/fs/cgroup/cpu*/rkube/pod{uid}/{cid} | head -1)/cpu.cfs_quota_us"));
    assert_eq!(quota.trim(), "25000");
    let mem = sh(&format!("cat /sys/fs/cgroup/memory/rkube/pod{uid}/{cid}/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/rkube/pod{uid}/{cid}/memory.max"));
    assert_eq!(mem.trim(), (64 * 1024 * 1024).to_string());

    // hostPort: reachable on the node's address from the node's network.
    e.wait_running("porty", 60).await;
    let node_ip = e.net.node_ip(0);
    let out = sh(&format!("ip netns exec {} busybox sh -c \"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {node_ip} 18080\"", e.net.nodes[0]));
    assert!(out.contains("via hostPort"), "{out}");

    let porty_uid = uid_of(&pod(&e.kube, "default", "porty").await.unwrap());
    k(&e.kc, &["delete", "pod", "locked", "porty", "--wait=true"]);
    e.assert_pod_gone_from_host(&uid);
    e.assert_pod_gone_from_host(&porty_uid);
}
