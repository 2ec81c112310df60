//! Pod sandboxes, CNI and host-gw routes against the real kernel and Debian's CNI plugins.
//! Needs root. Every test builds its own "node" network namespaces (`rkt-<pid>-<n>`) and does
//! all bridge, veth, iptables and route work inside them; pod CIDRs are in 100.80.0.0/12, links
//! and node addresses in 100.65/16 and 100.66/16. Guards undo everything, also on failure.

#[path = "common/netns.rs"]
mod netns;

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use netns::{
    ChildGuard, Defer, NodeNs, mounts_under, nsenter, octet, pod_cidr, unique, wait_until,
};
use runtime::cni::{Attachment, Cni, CniConfig, PortMapping};
use runtime::routes::{self, PodRoute};
use runtime::sandbox::{self, SandboxNamespaces};

fn init() {
    assert!(netns::is_root(), "the network tests need root");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "runtime=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A sandbox that is removed on drop.
struct Sandbox {
    dir: PathBuf,
    ns: SandboxNamespaces,
}

impl Sandbox {
    fn new(parent: &Path, name: &str) -> Sandbox {
        let dir = parent.join(name);
        let started = Instant::now();
        let ns = sandbox::create(&dir, name, false).unwrap_or_else(|e| {
            let _ = sandbox::remove(&dir);
            panic!("sandbox::create {}: {e}", dir.display())
        });
        eprintln!("timing: sandbox::create {name}: {:?}", started.elapsed());
        Sandbox { dir, ns }
    }

    fn net(&self) -> PathBuf {
        self.ns.net.clone().unwrap()
    }

    /// Runs a command in the sandbox's network namespace.
    fn sh(&self, args: &[&str]) -> std::process::Output {
        nsenter(&[("--net", &self.net())], args)
    }

    fn ping(&self, ip: &str) -> bool {
        // The first echo may be lost to ARP resolution on a fresh bridge.
        (0..5).any(|_| {
            self.sh(&["busybox", "ping", "-c1", "-W1", ip])
                .status
                .success()
        })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Err(e) = sandbox::remove(&self.dir) {
            eprintln!("warning: removing sandbox {}: {e}", self.dir.display());
        }
    }
}

fn cni_config(state: &Path, cidr: &str) -> CniConfig {
    CniConfig {
        plugin_dirs: vec![PathBuf::from("/usr/lib/cni")],
        network_name: "rkube-test".into(),
        bridge: "rkt0".into(),
        pod_cidr: cidr.into(),
        mtu: Some(1450),
        ip_masq: false,
        state_dir: state.to_owned(),
    }
}

fn ns_id(path: &Path) -> (u64, u64) {
    let m = std::fs::metadata(path).unwrap();
    (m.dev(), m.ino())
}

fn ipam_file(state: &Path, ip: &std::net::IpAddr) -> PathBuf {
    state.join("ipam").join("rkube-test").join(ip.to_string())
}

fn v4(attachment: &Attachment) -> String {
    attachment
        .ips
        .iter()
        .find(|ip| ip.is_ipv4())
        .expect("an IPv4 address")
        .to_string()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn spawned_processes_inherit_the_threads_network_namespace() {
    init();
    let node = NodeNs::new();
    let node_path = node.path.clone();
    let (inside, links) = node.run(move || async move {
        let me = ns_id(Path::new("/proc/thread-self/ns/net"));
        let out = tokio::process::Command::new("ip")
            .args(["-j", "link", "show"])
            .output()
            .await
            .unwrap();
        (
            me == ns_id(&node_path),
            String::from_utf8(out.stdout).unwrap(),
        )
    });
    assert!(inside);
    let links: Vec<serde_json::Value> = serde_json::from_str(links.trim()).unwrap();
    let names: Vec<_> = links
        .iter()
        .map(|l| l["ifname"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["lo"],
        "a child of the netns thread should see only the node netns' devices"
    );
}

#[test]
fn sandbox_pins_namespaces_and_is_idempotent() {
    init();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pod");
    let _cleanup = Defer(|| {
        let _ = sandbox::remove(&dir);
    });

    let started = Instant::now();
    let ns = sandbox::create(&dir, "pod-hostname-1", false).unwrap();
    eprintln!("timing: sandbox::create: {:?}", started.elapsed());
    let net = ns.net.clone().unwrap();
    assert_eq!(net, dir.join("ns/net"));
    assert_eq!(ns.ipc, dir.join("ns/ipc"));
    assert_eq!(ns.uts, dir.join("ns/uts"));
    for (pin, own) in [(&net, "net"), (&ns.ipc, "ipc"), (&ns.uts, "uts")] {
        assert_ne!(
            ns_id(pin),
            ns_id(&Path::new("/proc/self/ns").join(own)),
            "{own} must be a new namespace"
        );
    }

    let hostname = nsenter(&[("--uts", &ns.uts)], &["hostname"]);
    assert_eq!(stdout(&hostname), "pod-hostname-1");
    let lo = nsenter(&[("--net", &net)], &["ip", "-j", "link", "show", "lo"]);
    let lo: serde_json::Value = serde_json::from_str(&stdout(&lo)).unwrap();
    let flags: Vec<_> = lo[0]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(flags.contains(&"UP"), "lo flags {flags:?}");
    assert!(
        nsenter(
            &[("--net", &net)],
            &["busybox", "ping", "-c1", "-W1", "127.0.0.1"]
        )
        .status
        .success()
    );

    // The pins live on a private mount of dir/ns, so they propagate nowhere.
    let mounts = mounts_under(&dir);
    assert_eq!(mounts.len(), 4, "{mounts:#?}");
    assert!(mounts.iter().all(|m| !m.contains("shared:")), "{mounts:#?}");

    let ids = [ns_id(&net), ns_id(&ns.ipc), ns_id(&ns.uts)];
    let again = sandbox::create(&dir, "pod-hostname-1", false).unwrap();
    assert_eq!(again, ns);
    assert_eq!(
        [ns_id(&net), ns_id(&ns.ipc), ns_id(&ns.uts)],
        ids,
        "create must keep existing pins"
    );
    assert_eq!(mounts_under(&dir).len(), 4, "create must not stack pins");
    assert_eq!(sandbox::existing(&dir), Some(ns.clone()));
    assert!(matches!(
        sandbox::create(&dir, "x", true),
        Err(runtime::Error::Invalid(_))
    ));

    // A lost pin (say, unmounted by hand) is re-made; the others are kept.
    nix::mount::umount2(&ns.ipc, nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert_eq!(
        sandbox::existing(&dir),
        None,
        "an incomplete sandbox is not `existing`"
    );
    sandbox::create(&dir, "pod-hostname-1", false).unwrap();
    assert_eq!(ns_id(&net), ids[0]);
    assert_ne!(ns_id(&ns.ipc), ids[1]);
    assert_eq!(sandbox::existing(&dir), Some(ns.clone()));

    let started = Instant::now();
    sandbox::remove(&dir).unwrap();
    eprintln!("timing: sandbox::remove: {:?}", started.elapsed());
    assert_eq!(mounts_under(&dir), Vec::<String>::new());
    assert!(!dir.join("ns").exists());
    assert_eq!(sandbox::existing(&dir), None);
    sandbox::remove(&dir).unwrap();
}

// The widths differ between architectures.
#[allow(clippy::unnecessary_cast)]
fn is_nsfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type().0 as i64 == libc::NSFS_MAGIC as i64)
}

fn mount_cmd(args: &[&str]) {
    let out = std::process::Command::new("mount")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mount {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Under a shared mount (systemd makes `/` shared), pins must not propagate to peers: a copy
/// elsewhere would keep the namespace alive after `remove`.
#[test]
fn pins_do_not_propagate_from_a_shared_parent() {
    init();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("shared");
    let peer = tmp.path().join("peer");
    std::fs::create_dir(&base).unwrap();
    std::fs::create_dir(&peer).unwrap();
    let (b, p) = (
        base.to_str().unwrap().to_owned(),
        peer.to_str().unwrap().to_owned(),
    );
    mount_cmd(&["--bind", &b, &b]);
    let _unmount_base = Defer(|| {
        let _ = nix::mount::umount2(base.as_path(), nix::mount::MntFlags::MNT_DETACH);
    });
    mount_cmd(&["--make-shared", &b]);
    mount_cmd(&["--bind", &b, &p]);
    let _unmount_peer = Defer(|| {
        let _ = nix::mount::umount2(peer.as_path(), nix::mount::MntFlags::MNT_DETACH);
    });

    let dir = base.join("pod");
    let _cleanup = Defer(|| {
        let _ = sandbox::remove(&dir);
    });
    let ns = sandbox::create(&dir, "shared-pod", false).unwrap();
    assert!(is_nsfs(ns.net.as_ref().unwrap()) && is_nsfs(&ns.ipc) && is_nsfs(&ns.uts));
    for name in ["net", "ipc", "uts"] {
        assert!(
            !is_nsfs(&peer.join("pod/ns").join(name)),
            "{name} pin propagated to the peer mount"
        );
    }
    assert!(
        mounts_under(&peer).iter().all(|m| !m.contains("/ns/")),
        "{:#?}",
        mounts_under(&peer)
    );
    sandbox::remove(&dir).unwrap();
    assert!(
        mounts_under(tmp.path()).iter().all(|m| !m.contains("/pod")),
        "{:#?}",
        mounts_under(tmp.path())
    );
}

/// A create that fails before pinning anything leaves nothing mounted.
#[test]
fn failed_create_leaves_no_mounts() {
    init();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("broken");
    let _cleanup = Defer(|| {
        let _ = sandbox::remove(&dir);
    });
    // A directory where the net pin file should go makes pinning fail.
    std::fs::create_dir_all(dir.join("ns/net")).unwrap();
    let err = sandbox::create(&dir, "broken", false).unwrap_err();
    assert!(err.to_string().contains("ns/net"), "{err}");
    assert_eq!(mounts_under(&dir), Vec::<String>::new());
    assert_eq!(sandbox::existing(&dir), None);
}

#[test]
fn host_network_sandbox_shares_the_nodes_uts_namespace() {
    init();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hostnet");
    let _cleanup = Defer(|| {
        let _ = sandbox::remove(&dir);
    });
    let ns = sandbox::create(&dir, "ignored", true).unwrap();
    assert_eq!(ns.net, None);
    assert!(!dir.join("ns/net").exists());
    assert_eq!(ns_id(&ns.uts), ns_id(Path::new("/proc/self/ns/uts")));
    assert_ne!(ns_id(&ns.ipc), ns_id(Path::new("/proc/self/ns/ipc")));
    let host = std::process::Command::new("hostname").output().unwrap();
    assert_eq!(
        stdout(&nsenter(&[("--uts", &ns.uts)], &["hostname"])),
        stdout(&host)
    );
    assert_eq!(sandbox::create(&dir, "ignored", true).unwrap(), ns);
    assert_eq!(sandbox::existing(&dir), Some(ns.clone()));
    assert!(matches!(
        sandbox::create(&dir, "pod", false),
        Err(runtime::Error::Invalid(_))
    ));
    sandbox::remove(&dir).unwrap();
    assert_eq!(mounts_under(&dir), Vec::<String>::new());
}

#[test]
fn cni_add_is_idempotent_and_del_releases_everything() {
    init();
    let node = NodeNs::new();
    let tmp = tempfile::tempdir().unwrap();
    let (cidr, prefix) = pod_cidr(unique());
    let pod = Sandbox::new(tmp.path(), "pod-a");
    let state = tmp.path().join("cni");
    let netns = pod.net();

    let (first, second, ids_before) = node.run({
        let (state, cidr, netns) = (state.clone(), cidr.clone(), netns.clone());
        move || async move {
            let cni = Cni::new(cni_config(&state, &cidr)).unwrap();
            let started = Instant::now();
            let first = cni.add("pod-a", &netns, &[]).await.unwrap();
            eprintln!("timing: cni add: {:?}", started.elapsed());
            let started = Instant::now();
            let second = cni.add("pod-a", &netns, &[]).await.unwrap();
            eprintln!("timing: cni add (cached): {:?}", started.elapsed());
            (first, second, cni.attachments().unwrap())
        }
    });
    assert_eq!(first, second, "add twice must give the same attachment");
    assert_eq!(first.interface, "eth0");
    let ip = v4(&first);
    assert!(ip.starts_with(&prefix), "{ip} not in {cidr}");
    assert_eq!(ids_before, ["pod-a"]);
    assert!(ipam_file(&state, &first.ips[0]).exists());
    assert_eq!(node.veths().len(), 1);

    let route = stdout(&pod.sh(&["ip", "-j", "route", "show", "default"]));
    let route: serde_json::Value = serde_json::from_str(&route).unwrap();
    assert_eq!(route[0]["gateway"], format!("{prefix}1"));
    let addr = stdout(&pod.sh(&["ip", "-j", "-4", "addr", "show", "eth0"]));
    assert!(addr.contains(&ip), "{addr}");
    assert!(
        pod.ping(&format!("{prefix}1")),
        "pod cannot reach its gateway"
    );

    let (ids, second_del) = node.run({
        let (state, cidr, netns) = (state.clone(), cidr.clone(), netns.clone());
        move || async move {
            let cni = Cni::new(cni_config(&state, &cidr)).unwrap();
            let started = Instant::now();
            cni.del("pod-a", Some(&netns)).await.unwrap();
            eprintln!("timing: cni del: {:?}", started.elapsed());
            let ids = cni.attachments().unwrap();
            (ids, cni.del("pod-a", Some(&netns)).await)
        }
    });
    assert!(ids.is_empty());
    second_del.unwrap();
    assert!(
        !ipam_file(&state, &first.ips[0]).exists(),
        "the IP must be released"
    );
    assert_eq!(node.veths(), Vec::<String>::new());
    assert!(
        stdout(&pod.sh(&["ip", "-j", "link", "show", "type", "veth"]))
            .trim_matches(['[', ']'])
            .is_empty()
    );
}

#[test]
fn two_pods_on_one_bridge_reach_each_other() {
    init();
    let node = NodeNs::new();
    let tmp = tempfile::tempdir().unwrap();
    let (cidr, prefix) = pod_cidr(unique());
    let a = Sandbox::new(tmp.path(), "pod-a");
    let b = Sandbox::new(tmp.path(), "pod-b");
    let state = tmp.path().join("cni");
    let (net_a, net_b) = (a.net(), b.net());
    let (att_a, att_b) = node.run(move || async move {
        let cni = Cni::new(cni_config(&state, &cidr)).unwrap();
        let (x, y) = tokio::join!(cni.add("pod-a", &net_a, &[]), cni.add("pod-b", &net_b, &[]));
        (x.unwrap(), y.unwrap())
    });
    let (ip_a, ip_b) = (v4(&att_a), v4(&att_b));
    assert_ne!(ip_a, ip_b);
    assert!(ip_a.starts_with(&prefix) && ip_b.starts_with(&prefix));
    assert!(a.ping(&ip_b), "{ip_a} cannot ping {ip_b}");
    assert!(b.ping(&ip_a), "{ip_b} cannot ping {ip_a}");
}

#[test]
fn del_works_after_the_namespace_is_gone() {
    init();
    let node = NodeNs::new();
    let tmp = tempfile::tempdir().unwrap();
    let (cidr, _) = pod_cidr(unique());
    let pod = Sandbox::new(tmp.path(), "pod-gone");
    let state = tmp.path().join("cni");
    let netns = pod.net();
    let attachment = node.run({
        let (state, cidr, netns) = (state.clone(), cidr.clone(), netns.clone());
        move || async move {
            Cni::new(cni_config(&state, &cidr))
                .unwrap()
                .add("pod-gone", &netns, &[])
                .await
                .unwrap()
        }
    });
    assert_eq!(node.veths().len(), 1);
    drop(pod); // unpins: the namespace (and its end of the veth) goes away

    // A fresh Cni, as after an agent restart: everything comes from the cache.
    node.run({
        let (state, netns) = (state.clone(), netns.clone());
        move || async move {
            let cni = Cni::new(cni_config(&state, &cidr)).unwrap();
            assert_eq!(cni.attachments().unwrap(), ["pod-gone"]);
            cni.del("pod-gone", Some(&netns)).await.unwrap();
            cni.del("pod-gone", None).await.unwrap();
            assert!(cni.attachments().unwrap().is_empty());
        }
    });
    assert!(
        !ipam_file(&state, &attachment.ips[0]).exists(),
        "the IP must be released"
    );
    // The kernel tears a namespace down asynchronously.
    assert!(
        wait_until(Duration::from_secs(10), || node.veths().is_empty()),
        "veths left: {:?}",
        node.veths()
    );
}

/// After a reboot (or a sandbox re-created at the same path) the cache still says "attached",
/// but the new namespace has no eth0: add must notice and attach again.
#[test]
fn add_reattaches_a_recreated_namespace() {
    init();
    let node = NodeNs::new();
    let tmp = tempfile::tempdir().unwrap();
    let (cidr, prefix) = pod_cidr(unique());
    let state = tmp.path().join("cni");
    let pod = Sandbox::new(tmp.path(), "pod-re");
    let netns = pod.net();
    let add = |node: &NodeNs| {
        let (state, cidr, netns) = (state.clone(), cidr.clone(), netns.clone());
        node.run(move || async move {
            Cni::new(cni_config(&state, &cidr))
                .unwrap()
                .add("pod-re", &netns, &[])
                .await
                .unwrap()
        })
    };
    let first = add(&node);
    let old_ns = ns_id(&netns);
    drop(pod);
    let pod = Sandbox::new(tmp.path(), "pod-re");
    assert_ne!(ns_id(&netns), old_ns);
    let second = add(&node);
    let ip = v4(&second);
    assert!(ip.starts_with(&prefix));
    assert!(stdout(&pod.sh(&["ip", "-4", "addr", "show", "eth0"])).contains(&ip));
    assert!(pod.ping(&format!("{prefix}1")));
    if first.ips != second.ips {
        assert!(
            !ipam_file(&state, &first.ips[0]).exists(),
            "the old IP must be released"
        );
    }
    assert!(
        wait_until(Duration::from_secs(10), || node.veths().len() == 1),
        "veths: {:?}",
        node.veths()
    );
}

/// ipMasq on (as in production): DEL removes the masquerade rules, with or without the
/// namespace.
#[test]
fn masquerade_rules_are_removed_even_without_the_namespace() {
    init();
    let node = NodeNs::new();
    let tmp = tempfile::tempdir().unwrap();
    let (cidr, _) = pod_cidr(unique());
    let state = tmp.path().join("cni");
    let live = Sandbox::new(tmp.path(), "pod-live");
    let gone = Sandbox::new(tmp.path(), "pod-gone");
    let (live_net, gone_net) = (live.net(), gone.net());
    let masq_config = move |state: &Path, cidr: &str| CniConfig { ip_masq: true, ..cni_config(state, cidr) };
    node.run({
        let (state, cidr, live_net, gone_net) = (state.clone(), cidr.clone(), live_net.clone(), gone_net.clone());
        move || async move {
            let cni = Cni::new(masq_config(&state, &cidr)).unwrap();
            cni.add("pod-live", &live_net, &[]).await.unwrap();
            cni.add("pod-gone", &gone_net, &[]).await.unwrap();
        }
    });
    let rules = node.ok(&["iptables-save", "-t", "nat"]);
    assert!(rules.contains("id: \\\"pod-live\\\"") && rules.contains("id: \\\"pod-gone\\\""), "{rules}");
    drop(gone);
    node.run(move || async move {
        let cni = Cni::new(masq_config(&state, &cidr)).unwrap();
        cni.del("pod-gone", None).await.unwrap();
        cni.del("pod-live", Some(&live_net)).await.unwrap();
    });
    let rules = node.ok(&["iptables-save", "-t", "nat"]);
    assert!(!rules.contains("pod-live") && !rules.contains("pod-gone"), "{rules}");
    assert!(!rules.lines().any(|l| l.starts_with(":CNI-") && !l.contains("HOSTPORT")), "{rules}");
}

#[test]
fn host_port_reaches_the_pod() {
    init();
    let node = NodeNs::new();
    let tmp = tempfile::tempdir().unwrap();
    let n = unique();
    let (cidr, _) = pod_cidr(n);
    let node_ip = format!("100.66.{}.1", octet(n));
    // The node's own address, on a veth pair kept entirely inside the node netns.
    node.ok(&[
        "ip", "link", "add", "rkn0", "type", "veth", "peer", "name", "rkn1",
    ]);
    node.ok(&["ip", "addr", "add", &format!("{node_ip}/24"), "dev", "rkn0"]);
    node.ok(&["ip", "link", "set", "rkn0", "up"]);
    node.ok(&["ip", "link", "set", "rkn1", "up"]);

    let pod = Sandbox::new(tmp.path(), "pod-web");
    let www = tmp.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from the pod\n").unwrap();
    let net = pod.net();
    let _httpd = ChildGuard(
        std::process::Command::new("nsenter")
            .arg(format!("--net={}", net.display()))
            .args(["--", "busybox", "httpd", "-f", "-p", "80", "-h"])
            .arg(&www)
            .spawn()
            .unwrap(),
    );
    let state = tmp.path().join("cni");
    let ports = vec![PortMapping {
        host_port: 8080,
        container_port: 80,
        protocol: "tcp".into(),
        host_ip: None,
    }];

    let (body, body_loopback) = node.run({
        let (state, cidr, net, ports, node_ip) = (
            state.clone(),
            cidr.clone(),
            net.clone(),
            ports.clone(),
            node_ip.clone(),
        );
        move || async move {
            let cni = Cni::new(cni_config(&state, &cidr)).unwrap();
            let started = Instant::now();
            cni.add("pod-web", &net, &ports).await.unwrap();
            eprintln!("timing: cni add with portmap: {:?}", started.elapsed());
            // portmap DNATs locally generated traffic too (OUTPUT chain, and route_localnet on
            // the bridge for 127.0.0.1), so the node netns itself can be the client.
            let a = tokio::task::spawn_blocking(move || http_get(&format!("{node_ip}:8080")))
                .await
                .unwrap();
            let b = tokio::task::spawn_blocking(|| http_get("127.0.0.1:8080"))
                .await
                .unwrap();
            (a, b)
        }
    });
    assert!(body.contains("hello from the pod"), "{body}");
    assert!(
        body_loopback.contains("hello from the pod"),
        "{body_loopback}"
    );
    let rules = node.ok(&["iptables-save", "-t", "nat"]);
    assert!(
        rules.contains("dnat name: \\\"rkube-test\\\" id: \\\"pod-web\\\""),
        "{rules}"
    );

    // Same id without the hostPort: the cached attachment is replaced, the mapping removed.
    node.run({
        let (state, cidr, net) = (state.clone(), cidr.clone(), net.clone());
        move || async move {
            let cni = Cni::new(cni_config(&state, &cidr)).unwrap();
            cni.add("pod-web", &net, &[]).await.unwrap();
        }
    });
    assert!(!node.ok(&["iptables-save", "-t", "nat"]).contains("pod-web"));

    node.run({
        let (state, net) = (state.clone(), net.clone());
        move || async move {
            let cni = Cni::new(cni_config(&state, &cidr)).unwrap();
            cni.add("pod-web", &net, &ports).await.unwrap();
            let started = Instant::now();
            cni.del("pod-web", Some(&net)).await.unwrap();
            eprintln!("timing: cni del with portmap: {:?}", started.elapsed());
        }
    });
    let rules = node.ok(&["iptables-save", "-t", "nat"]);
    assert!(
        !rules.contains("pod-web") && !rules.contains("-A CNI-DN-"),
        "{rules}"
    );
    let mut veths = node.veths();
    veths.sort();
    assert_eq!(
        veths,
        ["rkn0", "rkn1"],
        "only the node's own veth pair may remain"
    );
}

/// A minimal HTTP/1.0 GET with retries (the server may still be starting); the response.
fn http_get(addr: &str) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        match std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
                let mut body = String::new();
                let _ = s.read_to_string(&mut body);
                if !body.is_empty() {
                    return body;
                }
                last = "empty response".into();
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    format!("no response from {addr}: {last}")
}

#[test]
fn host_gw_routes_connect_pods_on_two_nodes() {
    init();
    let node_a = NodeNs::new();
    let node_b = NodeNs::new();
    let tmp = tempfile::tempdir().unwrap();
    let n = unique();
    let link = octet(n);
    let (cidr_a, _) = pod_cidr(n);
    let (cidr_b, _) = pod_cidr(unique());
    let (addr_a, addr_b) = (format!("100.65.{link}.1"), format!("100.65.{link}.2"));
    node_a.ok(&[
        "ip",
        "link",
        "add",
        "rkl0",
        "type",
        "veth",
        "peer",
        "name",
        "rkl1",
        "netns",
        &node_b.name,
    ]);
    node_a.ok(&["ip", "addr", "add", &format!("{addr_a}/30"), "dev", "rkl0"]);
    node_b.ok(&["ip", "addr", "add", &format!("{addr_b}/30"), "dev", "rkl1"]);
    node_a.ok(&["ip", "link", "set", "rkl0", "up"]);
    node_b.ok(&["ip", "link", "set", "rkl1", "up"]);

    let pod_a = Sandbox::new(tmp.path(), "pod-a");
    let pod_b = Sandbox::new(tmp.path(), "pod-b");
    let attach = |node: &NodeNs,
                  state: PathBuf,
                  cidr: String,
                  id: &'static str,
                  net: PathBuf,
                  route: PodRoute| {
        node.run(move || async move {
            let cni = Cni::new(cni_config(&state, &cidr)).unwrap();
            let attachment = cni.add(id, &net, &[]).await.unwrap();
            let started = Instant::now();
            routes::sync(std::slice::from_ref(&route)).await.unwrap();
            eprintln!("timing: routes::sync: {:?}", started.elapsed());
            routes::sync(&[route]).await.unwrap();
            attachment
        })
    };
    let att_a = attach(
        &node_a,
        tmp.path().join("cni-a"),
        cidr_a.clone(),
        "pod-a",
        pod_a.net(),
        PodRoute {
            cidr: cidr_b.clone(),
            via: addr_b.clone(),
        },
    );
    let att_b = attach(
        &node_b,
        tmp.path().join("cni-b"),
        cidr_b.clone(),
        "pod-b",
        pod_b.net(),
        PodRoute {
            cidr: cidr_a.clone(),
            via: addr_a.clone(),
        },
    );
    let shown = node_a.ok(&["ip", "-j", "route", "show", "proto", "77"]);
    let shown: serde_json::Value = serde_json::from_str(shown.trim()).unwrap();
    assert_eq!(shown.as_array().unwrap().len(), 1, "{shown}");
    assert_eq!(shown[0]["dst"], cidr_b);
    assert_eq!(shown[0]["gateway"], addr_b);

    let (ip_a, ip_b) = (v4(&att_a), v4(&att_b));
    assert!(
        pod_a.ping(&ip_b),
        "pod {ip_a} on node A cannot ping pod {ip_b} on node B"
    );
    assert!(
        pod_b.ping(&ip_a),
        "pod {ip_b} on node B cannot ping pod {ip_a} on node A"
    );

    // Someone else's route survives; ours go.
    let (foreign, _) = pod_cidr(unique());
    node_a.ok(&[
        "ip", "route", "add", &foreign, "via", &addr_b, "proto", "static",
    ]);
    node_a.run(|| async { routes::sync(&[]).await.unwrap() });
    assert_eq!(
        node_a
            .ok(&["ip", "-j", "route", "show", "proto", "77"])
            .trim(),
        "[]"
    );
    assert!(
        node_a
            .ok(&["ip", "route", "show", &foreign])
            .contains(&addr_b)
    );
    assert!(
        !pod_a
            .sh(&["busybox", "ping", "-c1", "-W1", &ip_b])
            .status
            .success()
    );

    // Bad input is rejected before anything changes.
    let bad = node_b.run(|| async {
        routes::sync(&[PodRoute {
            cidr: "bogus".into(),
            via: "1.2.3.4".into(),
        }])
        .await
    });
    assert!(matches!(bad, Err(runtime::Error::Invalid(_))));
    assert!(
        node_b
            .ok(&["ip", "route", "show", "proto", "77"])
            .contains(&cidr_a)
    );
    // An unreachable gateway is an error naming the route.
    let (other, _) = pod_cidr(unique());
    let unreachable = node_b.run({
        let (cidr_a, addr_a, other) = (cidr_a.clone(), addr_a.clone(), other.clone());
        move || async move {
            routes::sync(&[
                PodRoute {
                    cidr: cidr_a,
                    via: addr_a,
                },
                PodRoute {
                    cidr: other,
                    via: "100.65.255.254".into(),
                },
            ])
            .await
        }
    });
    let msg = unreachable.unwrap_err().to_string();
    assert!(msg.contains(&other), "{msg}");
    assert!(
        node_b
            .ok(&["ip", "route", "show", "proto", "77"])
            .contains(&cidr_a)
    );
}

#[test]
fn plugin_errors_name_the_plugin_and_carry_its_message() {
    init();
    let node = NodeNs::new();
    let tmp = tempfile::tempdir().unwrap();
    let (cidr, _) = pod_cidr(unique());
    let pod = Sandbox::new(tmp.path(), "pod-err");
    let net = pod.net();
    // An interface named eth0 already in the pod: bridge ADD must fail ("already exists").
    pod.sh(&[
        "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth1",
    ]);
    let state = tmp.path().join("cni");
    let result = node.run({
        let (state, net) = (state.clone(), net.clone());
        move || async move {
            let cni = Cni::new(cni_config(&state, &cidr)).unwrap();
            let r = cni.add("pod-err", &net, &[]).await;
            (r, cni.attachments().unwrap())
        }
    });
    let (r, ids) = result;
    let msg = r.unwrap_err().to_string();
    assert!(
        msg.contains("bridge") && msg.contains("already exists") && msg.contains("pod-err"),
        "{msg}"
    );
    assert!(ids.is_empty(), "a failed ADD is undone: {ids:?}");
    let leftover: Vec<_> = std::fs::read_dir(state.join("ipam/rkube-test"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        leftover.iter().all(|f| !f.starts_with("100.")),
        "IPs left allocated: {leftover:?}"
    );

    // A path that is not a namespace is refused up front.
    let not_ns = tmp.path().join("not-a-netns");
    std::fs::write(&not_ns, "").unwrap();
    let r = node.run(move || async move {
        Cni::new(cni_config(&state, "100.80.0.0/24"))
            .unwrap()
            .add("pod-x", &not_ns, &[])
            .await
    });
    assert!(
        r.unwrap_err()
            .to_string()
            .contains("not a network namespace")
    );
}
