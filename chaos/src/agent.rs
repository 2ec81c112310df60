//! Cleanup of what a `rkube agent` under test leaves on the host. An agent is meant to leave
//! its containers running when it dies (they belong to their shims), so a test or benchmark
//! that kills it must remove them itself.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Kills the shims and container processes of the agent whose data dir is `data` (pods under
/// `data/pods/<uid>`), unmounts everything below `data` (deepest first), and removes the pods'
/// cgroups. Best effort and idempotent.
pub fn sweep(data: &Path) {
    let data_s = data.to_string_lossy().to_string();
    let uids: Vec<String> = std::fs::read_dir(data.join("pods")).into_iter().flatten().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    // Shims first (they would report exits), then container processes by cgroup.
    let _ = Command::new("pkill").args(["-KILL", "-f", &format!("shim {data_s}")]).status();
    for uid in &uids {
        for _ in 0..3 {
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!("for f in $(find /sys/fs/cgroup/*/rkube/pod{uid} -name cgroup.procs 2>/dev/null); do for p in $(cat $f); do kill -9 $p; done; done"))
                .status();
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mounts.lines().filter_map(|l| l.split(' ').nth(4)).filter(|p| p.starts_with(&data_s)).collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").args(["-l", p]).status();
    }
    for uid in &uids {
        let _ = Command::new("sh").arg("-c").arg(format!("find /sys/fs/cgroup/*/rkube/pod{uid} -depth -type d -exec rmdir {{}} \\; 2>/dev/null")).status();
    }
}
