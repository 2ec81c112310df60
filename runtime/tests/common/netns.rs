//! Network-namespace fixtures for tests that need root: throwaway "node" network namespaces
//! (`ip netns add rkt-<pid>-<n>`), running async code with a thread moved into one, and guards
//! that undo everything on drop (also when the test panics).
//!
//! Nothing here touches the host's own network: devices, routes and iptables rules are made
//! inside namespaces that are deleted at the end.

#![allow(dead_code)]

use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A number unique within this process (tests of one binary may share a process).
pub fn unique() -> u32 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A /24 inside 100.80.0.0/12 (so inside 100.64.0.0/10) derived from the pid and `n`, and its
/// first three octets ("100.80.7.").
pub fn pod_cidr(n: u32) -> (String, String) {
    let idx = (std::process::id().wrapping_mul(16).wrapping_add(n)) % 4096;
    let prefix = format!("100.{}.{}.", 80 + idx / 256, idx % 256);
    (format!("{prefix}0/24"), prefix)
}

/// A per-test third octet for point-to-point links and node addresses in 100.65/16, 100.66/16.
pub fn octet(n: u32) -> u32 {
    (std::process::id().wrapping_mul(16).wrapping_add(n)) % 256
}

/// A network namespace standing in for a node; deleted on drop (which removes every device in
/// it and its iptables state).
pub struct NodeNs {
    pub name: String,
    pub path: PathBuf,
}

impl NodeNs {
    pub fn new() -> NodeNs {
        let name = format!("rkt-{}-{}", std::process::id(), unique());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("running ip netns add");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let node = NodeNs {
            path: PathBuf::from(format!("/run/netns/{name}")),
            name,
        };
        node.ok(&["ip", "link", "set", "lo", "up"]);
        node
    }

    /// Runs a command inside this namespace.
    pub fn sh(&self, args: &[&str]) -> Output {
        nsenter(&[("--net", &self.path)], args)
    }

    /// Runs a command inside this namespace, asserting success; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.sh(args);
        assert!(
            out.status.success(),
            "{args:?} in {}: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `f` on a thread inside this namespace (see `run_in`).
    pub fn run<T, F, Fut>(&self, f: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        run_in(&self.path, f)
    }

    /// Names of the veth devices in this namespace.
    pub fn veths(&self) -> Vec<String> {
        let text = self.ok(&["ip", "-j", "link", "show", "type", "veth"]);
        let links: Vec<serde_json::Value> = serde_json::from_str(text.trim()).unwrap_or_default();
        links
            .iter()
            .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
            .collect()
    }
}

impl Drop for NodeNs {
    fn drop(&mut self) {
        let out = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        if !matches!(&out, Ok(o) if o.status.success()) {
            eprintln!("warning: ip netns del {} failed: {out:?}", self.name);
        }
    }
}

/// `nsenter <flag>=<path>... <args>`.
pub fn nsenter(namespaces: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut cmd = Command::new("nsenter");
    for (flag, path) in namespaces {
        cmd.arg(format!("{flag}={}", path.display()));
    }
    cmd.arg("--").args(args).output().expect("running nsenter")
}

/// Runs `f` to completion on a fresh thread that has joined the network namespace at `netns`,
/// on a current-thread tokio runtime: processes it spawns (CNI plugins, `ip`) are forked by that
/// thread and so start in that namespace. Panics in `f` propagate.
pub fn run_in<T, F, Fut>(netns: &Path, f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let ns = File::open(netns).unwrap_or_else(|e| panic!("opening {}: {e}", netns.display()));
    let handle = std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("setns into the node netns");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(f())
    });
    match handle.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Runs the closure on drop.
pub struct Defer<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for Defer<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// Kills and reaps the child on drop.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes; whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lines of /proc/self/mountinfo that mention `needle`.
pub fn mounts_under(needle: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let needle = needle.to_string_lossy().into_owned();
    info.lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_owned)
        .collect()
}

/// Whether the test runs as root (everything here needs it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
