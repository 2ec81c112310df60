//! What a container should be, in runtime terms (the agent derives it from a PodSpec), and its
//! translation into an OCI runtime spec (`config.json`) for libcontainer.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Error, Result};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamespaceMode {
    /// A namespace of its own.
    #[default]
    New,
    /// Join the namespace pinned at this path (a pod sandbox's, see `sandbox`).
    Join(PathBuf),
    /// Stay in the host's (hostNetwork, hostPID, hostIPC).
    Host,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespaces {
    pub network: NamespaceMode,
    pub ipc: NamespaceMode,
    pub uts: NamespaceMode,
    pub pid: NamespaceMode,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// Bind mount of a host path (a volume's directory or file).
    Bind,
    /// A fresh tmpfs (emptyDir medium Memory); `size_bytes` 0 = kernel default.
    Tmpfs { size_bytes: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Path inside the container.
    pub destination: String,
    /// Host path (ignored for tmpfs).
    pub source: PathBuf,
    pub kind: MountKind,
    pub readonly: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// cgroup cpu.shares (Kubernetes: requests.cpu in millicores * 1024 / 1000, min 2).
    pub cpu_shares: Option<u64>,
    /// CFS quota and period in µs (limits.cpu: quota = millicores * period / 1000).
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    /// Memory limit in bytes (limits.memory).
    pub memory_limit: Option<i64>,
    pub pids_limit: Option<i64>,
}

/// Everything needed to create and start one container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Unique on the node; `[a-z0-9][a-z0-9_.-]*`, at most 128 bytes.
    pub id: String,
    /// Free-form labels persisted with the container (the agent stores pod uid, namespace,
    /// name, container name, attempt): `Runtime::list` returns them after a restart.
    pub labels: BTreeMap<String, String>,
    /// The mounted root filesystem (see `rootfs::Rootfs::merged`).
    pub rootfs: PathBuf,
    /// argv; args[0] is resolved against PATH inside the container like runc does.
    pub args: Vec<String>,
    /// `KEY=value`.
    pub env: Vec<String>,
    /// Working directory (absolute); "" = "/".
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// Set only when the UTS namespace is `New` (a joined sandbox namespace already has the
    /// pod's hostname; a host namespace keeps the node's).
    pub hostname: Option<String>,
    /// Capabilities of the process (bounding, effective, permitted, inheritable, ambient when
    /// not root), e.g. `CAP_NET_BIND_SERVICE`. `None` = the runtime default set (runc's).
    pub capabilities: Option<Vec<String>>,
    /// All capabilities, all host devices, no masked/readonly paths, /sys read-write.
    pub privileged: bool,
    pub readonly_rootfs: bool,
    /// allowPrivilegeEscalation: false → no_new_privileges.
    pub no_new_privileges: bool,
    pub mounts: Vec<MountSpec>,
    pub namespaces: Namespaces,
    /// cgroup path relative to each hierarchy's root, e.g. `rkube/pod<uid>/<id>`.
    pub cgroup_path: String,
    pub resources: Resources,
    pub oom_score_adj: Option<i32>,
    /// stdout/stderr go here in CRI log format (`<RFC3339Nano> <stream> <P|F> <line>`).
    pub log_path: PathBuf,
    /// Rotate the log when it reaches this size (0 = never); keep this many rotated files.
    pub log_max_bytes: u64,
    pub log_max_files: u32,
}

/// The capabilities a container gets when the spec names none: containerd's and Docker's
/// default set (what "runc's defaults" means for Kubernetes workloads).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the OCI spec (and libcontainer) knows: what privileged containers get.
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_AUDIT_CONTROL",
    "CAP_AUDIT_READ",
    "CAP_AUDIT_WRITE",
    "CAP_BLOCK_SUSPEND",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_KILL",
    "CAP_LEASE",
    "CAP_LINUX_IMMUTABLE",
    "CAP_MAC_ADMIN",
    "CAP_MAC_OVERRIDE",
    "CAP_MKNOD",
    "CAP_NET_ADMIN",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_RAW",
    "CAP_PERFMON",
    "CAP_SETGID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_CHROOT",
    "CAP_SYS_MODULE",
    "CAP_SYS_NICE",
    "CAP_SYS_PACCT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
];

/// runc's (and containerd's) default masked paths.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// runc's (and containerd's) default read-only paths.
pub const READONLY_PATHS: &[&str] =
    &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// What images without a PATH get (Docker and containerd do the same), so that args[0] can be
/// resolved.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const NOFILE_LIMIT: u64 = 1_048_576;

/// Checks the parts of a spec that would otherwise fail late (in the shim) or dangerously
/// (paths used to build host paths).
pub fn validate(spec: &ContainerSpec) -> Result<()> {
    validate_id(&spec.id)?;
    if spec.args.is_empty() || spec.args[0].is_empty() {
        return Err(Error::Invalid(format!("container {}: args must not be empty", spec.id)));
    }
    if !spec.cwd.is_empty() && !spec.cwd.starts_with('/') {
        return Err(Error::Invalid(format!(
            "container {}: working directory {:?} is not absolute",
            spec.id, spec.cwd
        )));
    }
    if !spec.rootfs.is_absolute() {
        return Err(Error::Invalid(format!(
            "container {}: rootfs {} is not absolute",
            spec.id,
            spec.rootfs.display()
        )));
    }
    validate_cgroup_path(&spec.cgroup_path)
        .map_err(|m| Error::Invalid(format!("container {}: cgroup path: {m}", spec.id)))?;
    for e in &spec.env {
        if !e.contains('=') || e.starts_with('=') {
            return Err(Error::Invalid(format!(
                "container {}: env entry {e:?} is not KEY=value",
                spec.id
            )));
        }
    }
    for m in &spec.mounts {
        if !m.destination.starts_with('/') || m.destination.split('/').any(|c| c == "..") {
            return Err(Error::Invalid(format!(
                "container {}: mount destination {:?} must be an absolute path without ..",
                spec.id, m.destination
            )));
        }
        if m.kind == MountKind::Bind && !m.source.is_absolute() {
            return Err(Error::Invalid(format!(
                "container {}: bind mount source {} is not absolute",
                spec.id,
                m.source.display()
            )));
        }
    }
    if spec.hostname.is_some() && spec.namespaces.uts == NamespaceMode::New {
        let h = spec.hostname.as_deref().unwrap_or_default();
        if h.is_empty() || h.len() > 64 {
            return Err(Error::Invalid(format!(
                "container {}: hostname {h:?} must be 1 to 64 bytes",
                spec.id
            )));
        }
    }
    Ok(())
}

/// `[a-z0-9][a-z0-9_.-]*`, at most 128 bytes: the id names directories and a cgroup.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid container id {id:?}: must match [a-z0-9][a-z0-9_.-]* and be at most 128 bytes"
        )))
    }
}

pub(crate) fn validate_cgroup_path(path: &str) -> std::result::Result<(), String> {
    let p = path.trim_start_matches('/');
    if p.is_empty() {
        return Err("must not be empty (containers never run in a hierarchy's root)".into());
    }
    if p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(format!("{path:?} has empty, . or .. components"));
    }
    Ok(())
}

/// The OCI runtime spec for `spec` (default mounts /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue,
/// /sys, masked and read-only paths like runc's defaults unless privileged).
///
/// Privileged containers get every capability, `/sys` and `/sys/fs/cgroup` read-write, no
/// masked or read-only paths, a devices cgroup that allows everything, and the host's device
/// nodes: every character and block device directly under the host's `/dev` and one level
/// below it (e.g. `/dev/net/tun`, `/dev/mapper/*`), except the pty, shm and mqueue trees and the
/// defaults the runtime creates anyway.
pub fn oci_spec(spec: &ContainerSpec) -> Result<oci_spec::runtime::Spec> {
    let value = oci_spec_json(spec, &host_devices)?;
    serde_json::from_value(value).map_err(|e| {
        Error::Invalid(format!("container {}: cannot build its OCI runtime spec: {e}", spec.id))
    })
}

fn oci_spec_json(spec: &ContainerSpec, host_devices: &dyn Fn() -> Vec<Value>) -> Result<Value> {
    validate(spec)?;

    let caps = capabilities(spec)?;
    let mut capabilities = json!({
        "bounding": caps, "effective": caps, "permitted": caps,
    });
    // Without ambient (and so inheritable) capabilities a non-root process loses its effective
    // set at execve, which would make the capability list meaningless for it.
    if spec.uid != 0 {
        capabilities["inheritable"] = json!(caps);
        capabilities["ambient"] = json!(caps);
    }

    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }

    let mut process = json!({
        "terminal": false,
        "user": { "uid": spec.uid, "gid": spec.gid },
        "args": spec.args,
        "env": env,
        "cwd": if spec.cwd.is_empty() { "/" } else { spec.cwd.as_str() },
        "capabilities": capabilities,
        "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": NOFILE_LIMIT, "soft": NOFILE_LIMIT }],
        "noNewPrivileges": spec.no_new_privileges,
    });
    if !spec.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(spec.additional_gids);
    }
    if let Some(adj) = spec.oom_score_adj {
        process["oomScoreAdj"] = json!(adj);
    }

    let mut namespaces = vec![json!({ "type": "mount" })];
    for (kind, mode) in [
        ("pid", &spec.namespaces.pid),
        ("network", &spec.namespaces.network),
        ("ipc", &spec.namespaces.ipc),
        ("uts", &spec.namespaces.uts),
    ] {
        match mode {
            NamespaceMode::New => namespaces.push(json!({ "type": kind })),
            NamespaceMode::Join(path) => {
                if !path.is_absolute() {
                    return Err(Error::Invalid(format!(
                        "container {}: {kind} namespace path {} is not absolute",
                        spec.id,
                        path.display()
                    )));
                }
                namespaces.push(json!({ "type": kind, "path": path }))
            }
            NamespaceMode::Host => {}
        }
    }

    let mut resources = json!({});
    let mut cpu = serde_json::Map::new();
    if let Some(shares) = spec.resources.cpu_shares {
        cpu.insert("shares".into(), json!(shares.max(2)));
    }
    if let Some(quota) = spec.resources.cpu_quota {
        cpu.insert("quota".into(), json!(quota));
    }
    if let Some(period) = spec.resources.cpu_period {
        cpu.insert("period".into(), json!(period));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if let Some(limit) = spec.resources.memory_limit {
        // swap = limit: the container cannot page out instead of being OOM-killed at its limit.
        resources["memory"] = json!({ "limit": limit, "swap": limit });
    }
    if let Some(pids) = spec.resources.pids_limit {
        resources["pids"] = json!({ "limit": pids });
    }
    resources["devices"] = if spec.privileged {
        json!([{ "allow": true, "access": "rwm" }])
    } else {
        default_device_rules()
    };

    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": format!("/{}", spec.cgroup_path.trim_start_matches('/')),
        "resources": resources,
    });
    if spec.privileged {
        let devices = host_devices();
        if !devices.is_empty() {
            linux["devices"] = json!(devices);
        }
    } else {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }

    let mut value = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": { "path": spec.rootfs, "readonly": spec.readonly_rootfs },
        "mounts": mounts(spec),
        "linux": linux,
    });
    if let (Some(h), NamespaceMode::New) = (&spec.hostname, &spec.namespaces.uts) {
        value["hostname"] = json!(h);
    }
    Ok(value)
}

fn capabilities(spec: &ContainerSpec) -> Result<Vec<String>> {
    if spec.privileged {
        return Ok(ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect());
    }
    let Some(given) = &spec.capabilities else {
        return Ok(DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect());
    };
    let mut out: Vec<String> = Vec::new();
    for c in given {
        // Kubernetes writes capabilities without the CAP_ prefix; accept both spellings.
        let upper = c.trim().to_ascii_uppercase();
        let name = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
        if name == "CAP_ALL" {
            return Ok(ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect());
        }
        if !ALL_CAPABILITIES.contains(&name.as_str()) {
            return Err(Error::Invalid(format!("container {}: unknown capability {c:?}", spec.id)));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

fn mounts(spec: &ContainerSpec) -> Vec<Value> {
    let sys_ro = if spec.privileged { "rw" } else { "ro" };
    let mut out = vec![
        json!({ "destination": "/proc", "type": "proc", "source": "proc",
                "options": ["nosuid", "noexec", "nodev"] }),
        json!({ "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] }),
        json!({ "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] }),
        json!({ "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] }),
        json!({ "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"] }),
        json!({ "destination": "/sys", "type": "sysfs", "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", sys_ro] }),
        json!({ "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", sys_ro] }),
    ];
    for m in &spec.mounts {
        let rw = if m.readonly { "ro" } else { "rw" };
        out.push(match &m.kind {
            MountKind::Bind => json!({
                "destination": m.destination, "type": "bind", "source": m.source,
                "options": ["rbind", "rprivate", rw],
            }),
            MountKind::Tmpfs { size_bytes } => {
                let mut options = vec!["nosuid".to_string(), "nodev".into(), "mode=1777".into(), rw.into()];
                if *size_bytes > 0 {
                    options.push(format!("size={size_bytes}"));
                }
                json!({ "destination": m.destination, "type": "tmpfs", "source": "tmpfs",
                        "options": options })
            }
        });
    }
    out
}

/// Deny everything, then allow what containerd allows by default: mknod of anything (so
/// images can carry device nodes), the standard pseudo devices, ptys and /dev/net/tun.
fn default_device_rules() -> Value {
    let c = |major: i64, minor: Option<i64>, access: &str| {
        let mut v = json!({ "allow": true, "type": "c", "major": major, "access": access });
        if let Some(m) = minor {
            v["minor"] = json!(m);
        }
        v
    };
    json!([
        { "allow": false, "access": "rwm" },
        { "allow": true, "type": "c", "access": "m" },
        { "allow": true, "type": "b", "access": "m" },
        c(1, Some(3), "rwm"),   // null
        c(1, Some(5), "rwm"),   // zero
        c(1, Some(7), "rwm"),   // full
        c(1, Some(8), "rwm"),   // random
        c(1, Some(9), "rwm"),   // urandom
        c(5, Some(0), "rwm"),   // tty
        c(5, Some(1), "rwm"),   // console
        c(5, Some(2), "rwm"),   // ptmx
        c(136, None, "rwm"),    // pty slaves
        c(10, Some(200), "rwm"), // net/tun
    ])
}

/// Device nodes of the host for privileged containers (see `oci_spec`).
fn host_devices() -> Vec<Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    const SKIP_DIRS: &[&str] = &["pts", "shm", "mqueue", "fd", "hugepages"];
    const DEFAULTS: &[&str] =
        &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/console", "/dev/ptmx"];
    let mut out = Vec::new();
    let mut dirs = vec![(PathBuf::from("/dev"), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            // symlink_metadata: links such as /dev/stdin or /dev/core must not be followed.
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            let ft = meta.file_type();
            if ft.is_dir() {
                let name = entry.file_name();
                if depth == 0 && !SKIP_DIRS.iter().any(|s| name == *s) {
                    dirs.push((path, depth + 1));
                }
                continue;
            }
            let typ = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else {
                continue;
            };
            if DEFAULTS.iter().any(|d| path == std::path::Path::new(d)) {
                continue;
            }
            let rdev = meta.rdev();
            out.push(json!({
                "path": path, "type": typ,
                "major": libc::major(rdev), "minor": libc::minor(rdev),
                "fileMode": meta.mode() & 0o7777, "uid": meta.uid(), "gid": meta.gid(),
            }));
        }
    }
    out.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ContainerSpec {
        ContainerSpec {
            id: "c1".into(),
            rootfs: "/tmp/rootfs".into(),
            args: vec!["sh".into(), "-c".into(), "true".into()],
            cgroup_path: "rkube/pod1/c1".into(),
            log_path: "/tmp/c1.log".into(),
            ..Default::default()
        }
    }

    fn translate(spec: &ContainerSpec) -> Value {
        let fake_devices = || vec![json!({"path": "/dev/sda", "type": "b", "major": 8, "minor": 0})];
        oci_spec_json(spec, &fake_devices).expect("translates")
    }

    fn ns_types(v: &Value) -> Vec<(String, Option<String>)> {
        v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (n["type"].as_str().unwrap().to_string(), n["path"].as_str().map(str::to_string))
            })
            .collect()
    }

    fn mount<'a>(v: &'a Value, dest: &str) -> Option<&'a Value> {
        v["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == dest)
    }

    #[test]
    fn translation_table() {
        type Check = fn(&Value);
        let cases: Vec<(&str, Box<dyn Fn(&mut ContainerSpec)>, Check)> = vec![
            ("defaults", Box::new(|_| {}), |v| {
                assert_eq!(v["process"]["cwd"], "/");
                assert_eq!(v["process"]["env"][0], DEFAULT_PATH);
                assert_eq!(v["process"]["user"]["uid"], 0);
                assert_eq!(v["process"]["capabilities"]["bounding"], json!(DEFAULT_CAPABILITIES));
                assert!(v["process"]["capabilities"].get("ambient").is_none());
                assert_eq!(v["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
                assert_eq!(v["process"]["rlimits"][0]["soft"], 1_048_576);
                assert_eq!(v["process"]["noNewPrivileges"], false);
                assert_eq!(v["linux"]["cgroupsPath"], "/rkube/pod1/c1");
                assert_eq!(v["linux"]["maskedPaths"], json!(MASKED_PATHS));
                assert_eq!(v["linux"]["readonlyPaths"], json!(READONLY_PATHS));
                assert_eq!(v["linux"]["resources"]["devices"][0]["allow"], false);
                assert!(v["linux"].get("devices").is_none());
                assert!(v.get("hostname").is_none());
                assert_eq!(v["root"]["readonly"], false);
                for dest in ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"] {
                    assert!(mount(v, dest).is_some(), "{dest}");
                }
                assert!(mount(v, "/sys").unwrap()["options"].as_array().unwrap().contains(&json!("ro")));
                assert_eq!(
                    ns_types(v),
                    vec![
                        ("mount".into(), None),
                        ("pid".into(), None),
                        ("network".into(), None),
                        ("ipc".into(), None),
                        ("uts".into(), None)
                    ]
                );
            }),
            ("env keeps PATH", Box::new(|s| s.env = vec!["PATH=/x".into(), "A=b".into()]), |v| {
                assert_eq!(v["process"]["env"], json!(["PATH=/x", "A=b"]));
            }),
            ("user", Box::new(|s| {
                s.uid = 65534;
                s.gid = 65533;
                s.additional_gids = vec![1, 2];
                s.cwd = "/work".into();
            }), |v| {
                assert_eq!(v["process"]["user"], json!({"uid": 65534, "gid": 65533, "additionalGids": [1, 2]}));
                assert_eq!(v["process"]["cwd"], "/work");
                // non-root keeps its capabilities across execve only through the ambient set
                assert_eq!(v["process"]["capabilities"]["ambient"], json!(DEFAULT_CAPABILITIES));
                assert_eq!(v["process"]["capabilities"]["inheritable"], json!(DEFAULT_CAPABILITIES));
            }),
            ("explicit capabilities", Box::new(|s| {
                s.capabilities = Some(vec!["NET_ADMIN".into(), "CAP_KILL".into(), "net_admin".into()]);
            }), |v| {
                assert_eq!(v["process"]["capabilities"]["effective"], json!(["CAP_NET_ADMIN", "CAP_KILL"]));
            }),
            ("privileged", Box::new(|s| s.privileged = true), |v| {
                assert_eq!(v["process"]["capabilities"]["bounding"], json!(ALL_CAPABILITIES));
                assert!(v["linux"].get("maskedPaths").is_none());
                assert!(v["linux"].get("readonlyPaths").is_none());
                assert_eq!(v["linux"]["resources"]["devices"], json!([{"allow": true, "access": "rwm"}]));
                assert_eq!(v["linux"]["devices"][0]["path"], "/dev/sda");
                assert!(mount(v, "/sys").unwrap()["options"].as_array().unwrap().contains(&json!("rw")));
            }),
            ("readonly rootfs, no_new_privileges, oom", Box::new(|s| {
                s.readonly_rootfs = true;
                s.no_new_privileges = true;
                s.oom_score_adj = Some(-997);
            }), |v| {
                assert_eq!(v["root"]["readonly"], true);
                assert_eq!(v["process"]["noNewPrivileges"], true);
                assert_eq!(v["process"]["oomScoreAdj"], -997);
            }),
            ("namespaces", Box::new(|s| {
                s.namespaces = Namespaces {
                    network: NamespaceMode::Join("/run/ns/net".into()),
                    ipc: NamespaceMode::Host,
                    uts: NamespaceMode::Join("/run/ns/uts".into()),
                    pid: NamespaceMode::Host,
                };
                s.hostname = Some("ignored".into());
            }), |v| {
                assert_eq!(
                    ns_types(v),
                    vec![
                        ("mount".into(), None),
                        ("network".into(), Some("/run/ns/net".into())),
                        ("uts".into(), Some("/run/ns/uts".into()))
                    ]
                );
                assert!(v.get("hostname").is_none());
            }),
            ("hostname", Box::new(|s| s.hostname = Some("web-0".into())), |v| {
                assert_eq!(v["hostname"], "web-0");
            }),
            ("resources", Box::new(|s| {
                s.resources = Resources {
                    cpu_shares: Some(1),
                    cpu_quota: Some(50_000),
                    cpu_period: Some(100_000),
                    memory_limit: Some(32 << 20),
                    pids_limit: Some(100),
                };
            }), |v| {
                let r = &v["linux"]["resources"];
                assert_eq!(r["cpu"], json!({"shares": 2, "quota": 50_000, "period": 100_000}));
                assert_eq!(r["memory"], json!({"limit": 32 << 20, "swap": 32 << 20}));
                assert_eq!(r["pids"], json!({"limit": 100}));
            }),
            ("mounts", Box::new(|s| {
                s.mounts = vec![
                    MountSpec { destination: "/data".into(), source: "/host/data".into(), kind: MountKind::Bind, readonly: true },
                    MountSpec { destination: "/rw".into(), source: "/host/rw".into(), kind: MountKind::Bind, readonly: false },
                    MountSpec { destination: "/mem".into(), source: "".into(), kind: MountKind::Tmpfs { size_bytes: 1 << 20 }, readonly: false },
                ];
            }), |v| {
                assert_eq!(mount(v, "/data").unwrap()["options"], json!(["rbind", "rprivate", "ro"]));
                assert_eq!(mount(v, "/data").unwrap()["source"], "/host/data");
                assert_eq!(mount(v, "/rw").unwrap()["options"], json!(["rbind", "rprivate", "rw"]));
                let mem = mount(v, "/mem").unwrap();
                assert_eq!(mem["type"], "tmpfs");
                assert!(mem["options"].as_array().unwrap().contains(&json!("size=1048576")));
            }),
        ];
        for (name, modify, check) in cases {
            let mut spec = base();
            modify(&mut spec);
            let v = translate(&spec);
            check(&v);
            // and libcontainer's types accept it
            serde_json::from_value::<oci_spec::runtime::Spec>(v)
                .unwrap_or_else(|e| panic!("{name}: not a valid OCI spec: {e}"));
        }
    }

    #[test]
    fn rejects_bad_input() {
        let cases: Vec<(&str, Box<dyn Fn(&mut ContainerSpec)>)> = vec![
            ("empty id", Box::new(|s| s.id = "".into())),
            ("upper id", Box::new(|s| s.id = "Abc".into())),
            ("slash id", Box::new(|s| s.id = "a/b".into())),
            ("long id", Box::new(|s| s.id = "a".repeat(129))),
            ("no args", Box::new(|s| s.args.clear())),
            ("relative cwd", Box::new(|s| s.cwd = "work".into())),
            ("relative rootfs", Box::new(|s| s.rootfs = "rootfs".into())),
            ("empty cgroup", Box::new(|s| s.cgroup_path = "".into())),
            ("dotdot cgroup", Box::new(|s| s.cgroup_path = "rkube/../x".into())),
            ("bad env", Box::new(|s| s.env = vec!["NOEQUALS".into()])),
            ("bad cap", Box::new(|s| s.capabilities = Some(vec!["CAP_FLY".into()]))),
            ("relative mount", Box::new(|s| s.mounts = vec![MountSpec {
                destination: "data".into(), source: "/x".into(), kind: MountKind::Bind, readonly: false }])),
            ("dotdot mount", Box::new(|s| s.mounts = vec![MountSpec {
                destination: "/a/../../etc".into(), source: "/x".into(), kind: MountKind::Bind, readonly: false }])),
            ("relative ns", Box::new(|s| s.namespaces.network = NamespaceMode::Join("ns/net".into()))),
        ];
        for (name, modify) in cases {
            let mut spec = base();
            modify(&mut spec);
            match oci_spec(&spec) {
                Err(Error::Invalid(msg)) => assert!(!msg.is_empty(), "{name}"),
                other => panic!("{name}: expected Invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn host_devices_are_real_devices() {
        for d in host_devices() {
            let path = d["path"].as_str().unwrap();
            assert!(path.starts_with("/dev/"));
            assert!(!path.starts_with("/dev/pts/"));
            assert!(d["type"] == "c" || d["type"] == "b");
        }
    }
}
