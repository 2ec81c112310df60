//! cpu and memory usage from cgroups (v1 hierarchies as on these machines, and v2), for pods
//! (a pod's cgroup contains its containers') and the node (/proc/stat, /proc/meminfo): what the
//! agent reports for `kubectl top`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::IoContext;
use crate::{Error, Result};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Cumulative cpu time, nanoseconds.
    pub cpu_usage_ns: u64,
    /// Memory working set (usage minus inactive file cache), bytes — what kubectl top shows.
    pub memory_working_set_bytes: u64,
    pub memory_usage_bytes: u64,
    /// When it was read (unix nanoseconds).
    pub timestamp_ns: u64,
}

/// The cgroup hierarchies mounted on this machine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Hierarchies {
    /// v1 hierarchies: (mount point, controllers / names in its super options).
    pub v1: Vec<(PathBuf, Vec<String>)>,
    /// The cgroup2 mount, if any. On hybrid systems (v1 controllers plus an empty cgroup2
    /// at /sys/fs/cgroup/unified) usage comes from v1.
    pub v2: Option<PathBuf>,
}

impl Hierarchies {
    pub fn read() -> Result<Hierarchies> {
        let text = std::fs::read_to_string("/proc/self/mountinfo")
            .ctx(|| "reading /proc/self/mountinfo".into())?;
        Ok(Self::parse(&text))
    }

    /// mountinfo: `id parent major:minor root mountpoint options [optional...] - fstype source superoptions`.
    pub fn parse(mountinfo: &str) -> Hierarchies {
        let mut h = Hierarchies::default();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else { continue };
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            if left.len() < 5 || right.len() < 3 {
                continue;
            }
            let mount_point = PathBuf::from(unescape_mountinfo(left[4]));
            match right[0] {
                "cgroup" => {
                    let opts: Vec<String> = right[2]
                        .split(',')
                        .filter(|o| !matches!(*o, "rw" | "ro" | "relatime" | "noatime" | "nosuid" | "nodev" | "noexec"))
                        .map(str::to_string)
                        .collect();
                    if !h.v1.iter().any(|(p, _)| *p == mount_point) {
                        h.v1.push((mount_point, opts));
                    }
                }
                "cgroup2" => {
                    if h.v2.is_none() {
                        h.v2 = Some(mount_point);
                    }
                }
                _ => {}
            }
        }
        h
    }

    pub fn v1_controller(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(_, opts)| opts.iter().any(|o| o == controller))
            .map(|(p, _)| p.as_path())
    }

    /// Every hierarchy a cgroup directory may exist in.
    pub fn all(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self.v1.iter().map(|(p, _)| p.clone()).collect();
        out.extend(self.v2.clone());
        out
    }
}

fn unescape_mountinfo(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn rel(cgroup_path: &str) -> Result<&str> {
    crate::spec::validate_cgroup_path(cgroup_path)
        .map_err(|m| Error::Invalid(format!("cgroup path {cgroup_path:?}: {m}")))?;
    Ok(cgroup_path.trim_start_matches('/'))
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

fn read_u64(path: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(path).ctx(|| format!("reading {}", path.display()))?;
    text.trim().parse().map_err(|_| Error::Path {
        path: path.to_path_buf(),
        message: format!("not a number: {:?}", text.trim()),
    })
}

/// `key value` lines (memory.stat, cpu.stat, memory.events, memory.oom_control).
pub(crate) fn flat_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        if k == key { v.trim().parse().ok() } else { None }
    })
}

fn not_found(path: &Path) -> Error {
    Error::Path { path: path.to_path_buf(), message: "no such cgroup".into() }
}

/// Usage of the cgroup at `cgroup_path` (relative, e.g. `rkube/pod<uid>`).
pub fn cgroup_usage(cgroup_path: &str) -> Result<Usage> {
    let rel = rel(cgroup_path)?;
    let h = Hierarchies::read()?;
    let timestamp_ns = now_ns();
    if let (Some(cpuacct), Some(memory)) = (h.v1_controller("cpuacct"), h.v1_controller("memory")) {
        let cpu_dir = cpuacct.join(rel);
        let mem_dir = memory.join(rel);
        if !mem_dir.is_dir() {
            return Err(not_found(&mem_dir));
        }
        let cpu_usage_ns = read_u64(&cpu_dir.join("cpuacct.usage"))?;
        let usage = read_u64(&mem_dir.join("memory.usage_in_bytes"))?;
        let stat_path = mem_dir.join("memory.stat");
        let stat = std::fs::read_to_string(&stat_path).ctx(|| format!("reading {}", stat_path.display()))?;
        let inactive = flat_keyed(&stat, "total_inactive_file").unwrap_or(0);
        return Ok(Usage {
            cpu_usage_ns,
            memory_working_set_bytes: usage.saturating_sub(inactive),
            memory_usage_bytes: usage,
            timestamp_ns,
        });
    }
    let Some(v2) = &h.v2 else {
        return Err(Error::Container("no cgroup cpu/memory hierarchy is mounted".into()));
    };
    let dir = v2.join(rel);
    if !dir.is_dir() {
        return Err(not_found(&dir));
    }
    let cpu_stat_path = dir.join("cpu.stat");
    let cpu_stat =
        std::fs::read_to_string(&cpu_stat_path).ctx(|| format!("reading {}", cpu_stat_path.display()))?;
    let cpu_usage_ns = flat_keyed(&cpu_stat, "usage_usec").unwrap_or(0).saturating_mul(1000);
    let usage = read_u64(&dir.join("memory.current"))?;
    let stat_path = dir.join("memory.stat");
    let stat = std::fs::read_to_string(&stat_path).ctx(|| format!("reading {}", stat_path.display()))?;
    let inactive = flat_keyed(&stat, "inactive_file").unwrap_or(0);
    Ok(Usage {
        cpu_usage_ns,
        memory_working_set_bytes: usage.saturating_sub(inactive),
        memory_usage_bytes: usage,
        timestamp_ns,
    })
}

/// How many processes of the cgroup the kernel's OOM killer killed (v1: `oom_kill` in
/// memory.oom_control; v2: memory.events). None if the cgroup or counter is missing.
pub(crate) fn oom_kills(cgroup_path: &str) -> Option<u64> {
    let rel = rel(cgroup_path).ok()?;
    let h = Hierarchies::read().ok()?;
    if let Some(memory) = h.v1_controller("memory") {
        let text = std::fs::read_to_string(memory.join(rel).join("memory.oom_control")).ok()?;
        return flat_keyed(&text, "oom_kill");
    }
    let text = std::fs::read_to_string(h.v2?.join(rel).join("memory.events")).ok()?;
    flat_keyed(&text, "oom_kill")
}

/// Pids of every process in the cgroup (any hierarchy that has it).
pub(crate) fn cgroup_pids(cgroup_path: &str) -> Vec<i32> {
    let (Ok(rel), Ok(h)) = (rel(cgroup_path), Hierarchies::read()) else { return Vec::new() };
    let mut pids = Vec::new();
    for root in h.all() {
        let Ok(text) = std::fs::read_to_string(root.join(rel).join("cgroup.procs")) else { continue };
        for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Usage of the whole node.
pub fn node_usage() -> Result<Usage> {
    let stat = std::fs::read_to_string("/proc/stat").ctx(|| "reading /proc/stat".into())?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").ctx(|| "reading /proc/meminfo".into())?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    parse_node_usage(&stat, &meminfo, if hz > 0 { hz as u64 } else { 100 })
}

fn parse_node_usage(stat: &str, meminfo: &str, clk_tck: u64) -> Result<Usage> {
    let cpu = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| Error::Path { path: "/proc/stat".into(), message: "no cpu line".into() })?;
    let fields: Vec<u64> = cpu.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    let busy_ticks: u64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| *v)
        .sum();
    let kb = |key: &str| -> Option<u64> {
        meminfo.lines().find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok().map(|v| v * 1024)
        })
    };
    let missing = |k: &str| Error::Path { path: "/proc/meminfo".into(), message: format!("no {k}") };
    let total = kb("MemTotal").ok_or_else(|| missing("MemTotal"))?;
    let available = kb("MemAvailable").ok_or_else(|| missing("MemAvailable"))?;
    let free = kb("MemFree").unwrap_or(available);
    Ok(Usage {
        cpu_usage_ns: busy_ticks.saturating_mul(1_000_000_000 / clk_tck.max(1)),
        memory_working_set_bytes: total.saturating_sub(available),
        memory_usage_bytes: total.saturating_sub(free),
        timestamp_ns: now_ns(),
    })
}

/// Removes a (now empty) cgroup directory from every hierarchy; children first. Idempotent.
pub fn remove_cgroup(cgroup_path: &str) -> Result<()> {
    let rel = rel(cgroup_path)?;
    let h = Hierarchies::read()?;
    let mut first_err = None;
    for root in h.all() {
        let dir = root.join(rel);
        if let Err(e) = remove_tree(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove cgroup");
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("listing cgroup {}", dir.display()), e)),
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&entry.path())?;
        }
    }
    // A cgroup whose last process is still exiting answers EBUSY for a moment.
    let mut delay = Duration::from_millis(5);
    for attempt in 0.. {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 10 => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(200));
            }
            Err(e) => return Err(Error::io(format!("removing cgroup {}", dir.display()), e)),
        }
    }
    unreachable!("the retry loop returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
34 33 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 33 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
36 33 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 33 0:32 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
38 33 0:33 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
39 33 0:34 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,nosuid,cpu,cpuacct
";

    #[test]
    fn parses_hierarchies() {
        let h = Hierarchies::parse(MOUNTINFO);
        assert_eq!(h.v1_controller("cpuacct"), Some(Path::new("/sys/fs/cgroup/cpuacct")));
        assert_eq!(h.v1_controller("memory"), Some(Path::new("/sys/fs/cgroup/memory")));
        assert_eq!(h.v1_controller("name=systemd"), Some(Path::new("/sys/fs/cgroup/systemd")));
        assert_eq!(h.v1_controller("pids"), None);
        assert_eq!(h.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
        assert_eq!(h.all().len(), 6);
        assert_eq!(h.v1[4].1, vec!["cpu".to_string(), "cpuacct".to_string()]);
    }

    #[test]
    fn unescapes_mount_points() {
        assert_eq!(unescape_mountinfo(r"/a\040b"), "/a b");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
    }

    #[test]
    fn flat_keyed_files() {
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(flat_keyed(oom, "oom_kill"), Some(3));
        assert_eq!(flat_keyed(oom, "missing"), None);
        let stat = "cache 10\ntotal_inactive_file 4096\n";
        assert_eq!(flat_keyed(stat, "total_inactive_file"), Some(4096));
    }

    #[test]
    fn node_usage_from_proc() {
        let stat = "cpu  100 5 50 1000 20 3 2 0 0 0\ncpu0 1 2 3 4\n";
        let meminfo = "MemTotal:       1000 kB\nMemFree:         300 kB\nMemAvailable:    600 kB\n";
        let u = parse_node_usage(stat, meminfo, 100).unwrap();
        assert_eq!(u.cpu_usage_ns, 160 * 10_000_000);
        assert_eq!(u.memory_working_set_bytes, 400 * 1024);
        assert_eq!(u.memory_usage_bytes, 700 * 1024);
        assert!(parse_node_usage("", meminfo, 100).is_err());
        assert!(parse_node_usage(stat, "MemTotal: 1 kB\n", 100).is_err());
    }

    #[test]
    fn real_node_usage() {
        let u = node_usage().unwrap();
        assert!(u.cpu_usage_ns > 0 && u.memory_working_set_bytes > 0 && u.timestamp_ns > 0);
    }

    #[test]
    fn rejects_bad_paths() {
        assert!(matches!(cgroup_usage(""), Err(Error::Invalid(_))));
        assert!(matches!(remove_cgroup("a/../b"), Err(Error::Invalid(_))));
        assert!(remove_cgroup("rkube-unit-test-never-exists/x").is_ok());
        assert!(matches!(cgroup_usage("rkube-unit-test-never-exists"), Err(Error::Path { .. })));
    }
}
