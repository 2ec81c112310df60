//! The node's containers. Each container is created and started by its own supervisor process,
//! `rkube shim` (see `shim`): the shim is the container's parent (child subreaper), pumps its
//! stdout/stderr into the CRI log file, records its exit (code, signal, OOM kill, times) and
//! deletes it through libcontainer. Shims are detached from the agent (own session), so an agent
//! that dies or restarts leaves its containers running; `list` + `status` + `wait` re-attach.
//!
//! State under the runtime root: `containers/<id>/` with `spec.json` (the ContainerSpec),
//! `bundle/config.json`, `shim.pid`, `started.json`, `exit.json`; libcontainer's own state in
//! `libcontainer/<id>/`.
//!
//! Liveness of a shim is an exclusive `flock` on `containers/<id>/shim.lock`: `run` takes it
//! before the shim exists and hands the locked descriptor to the shim (fd 3), which holds it
//! until it exits, so "lock free" means "shim gone" with no pid-reuse ambiguity. The shim
//! writes `exit.json` before it reaps the container's init process, so while `exit.json` is
//! missing the pid in `started.json` still names the container (alive or a zombie) and
//! signalling it through a pidfd cannot hit a recycled pid.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::IoContext;
use crate::exec::{ExecRequest, ExecSession};
use crate::spec::ContainerSpec;
use crate::stats::Usage;
use crate::{Error, Result};

pub(crate) const SPEC_FILE: &str = "spec.json";
pub(crate) const BUNDLE_DIR: &str = "bundle";
pub(crate) const SHIM_PID_FILE: &str = "shim.pid";
pub(crate) const SHIM_LOCK_FILE: &str = "shim.lock";
pub(crate) const SHIM_LOG_FILE: &str = "shim.log";
pub(crate) const STARTED_FILE: &str = "started.json";
pub(crate) const EXIT_FILE: &str = "exit.json";
/// The descriptor number under which `run` hands the locked `shim.lock` to the shim.
pub(crate) const SHIM_LOCK_FD: i32 = 3;

/// How often `wait` looks for the exit.
const WAIT_POLL: Duration = Duration::from_millis(50);
/// How long `run` waits for the shim to report the start (libcontainer takes ~25 ms).
const SHIM_REPORT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `remove` waits for a shim to finish after its container exited.
const SHIM_EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `stop` and `remove` wait for a container that is still being created.
const CREATING_TIMEOUT: Duration = Duration::from_secs(60);
/// Exit code reported when the shim died without recording the exit (containerd uses 255 for
/// "unknown" too).
const UNKNOWN_EXIT_CODE: i32 = 255;
/// Exit code of a container that never ran (runc's).
pub(crate) const START_FAILED_EXIT_CODE: i32 = 128;

/// How to start a shim: the program and its leading arguments (the agent passes its own
/// executable and `["shim"]`; `shim::main` takes it from there).
#[derive(Clone, Debug)]
pub struct ShimCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    pub exit_code: i32,
    /// The signal that killed it, if one did (exit_code is then 128 + signal).
    pub signal: Option<i32>,
    /// The kernel's OOM killer killed a process of this container's cgroup.
    pub oom_killed: bool,
    /// RFC 3339 times.
    pub started_at: Option<String>,
    pub finished_at: String,
    /// Why it never ran when start failed (e.g. `exec: "foo": executable file not found in
    /// $PATH`); exit_code is then 128 like runc's.
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerStatus {
    /// The shim is setting it up.
    Creating,
    Running {
        pid: i32,
        started_at: String,
    },
    Exited(ExitInfo),
}

#[derive(Clone, Debug)]
pub struct ContainerRecord {
    pub id: String,
    pub labels: BTreeMap<String, String>,
    pub status: ContainerStatus,
}

/// `started.json`: the container's init process (host pid) and when it started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Started {
    pub pid: i32,
    pub started_at: String,
}

/// What the shim tells `run` on its sync pipe (one JSON line).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum ShimReport {
    Started(Started),
    Failed(String),
}

pub struct Runtime {
    root: PathBuf,
    shim: ShimCommand,
}

impl Runtime {
    /// Opens (creating) the runtime state root.
    pub fn new(root: &Path, shim: ShimCommand) -> Result<Runtime> {
        for dir in [root.join("containers"), root.join("libcontainer")] {
            std::fs::create_dir_all(&dir)
                .ctx(|| format!("creating runtime state {}", dir.display()))?;
        }
        let root = std::fs::canonicalize(root)
            .ctx(|| format!("resolving runtime root {}", root.display()))?;
        Ok(Runtime { root, shim })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn shim_command(&self) -> &ShimCommand {
        &self.shim
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// The state directory of a known container.
    fn known_dir(&self, id: &str) -> Result<PathBuf> {
        crate::spec::validate_id(id)?;
        let dir = self.container_dir(id);
        if dir.join(SPEC_FILE).is_file() {
            Ok(dir)
        } else {
            Err(Error::ContainerNotFound(id.to_string()))
        }
    }

    /// Creates and starts the container through a new shim; returns once its process runs
    /// (`Running`) or has already exited, or with the reason it could not start (bad spec,
    /// executable not found, mount failure...).
    pub async fn run(&self, spec: &ContainerSpec) -> Result<ContainerStatus> {
        // Translating now reports a bad spec before any state exists.
        crate::spec::oci_spec(spec)?;
        if !spec.log_path.is_absolute() {
            return Err(Error::Invalid(format!(
                "container {}: log path {} is not absolute",
                spec.id,
                spec.log_path.display()
            )));
        }
        if !spec.rootfs.is_dir() {
            return Err(Error::Path {
                path: spec.rootfs.clone(),
                message: format!("rootfs of container {} is not a directory", spec.id),
            });
        }
        let dir = self.container_dir(&spec.id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Container(format!(
                    "container {} already exists",
                    spec.id
                )));
            }
            Err(e) => return Err(Error::io(format!("creating {}", dir.display()), e)),
        }
        match self.spawn_shim(&dir, spec).await {
            Ok(Some(ShimReport::Started(_))) => self.status(&spec.id),
            Ok(Some(ShimReport::Failed(message))) => Err(Error::Container(message)),
            Ok(None) => {
                let log = std::fs::read_to_string(dir.join(SHIM_LOG_FILE)).unwrap_or_default();
                Err(Error::Container(format!(
                    "the shim of container {} exited without reporting a start: {}",
                    spec.id,
                    last_lines(&log, 5)
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// Starts the shim and reads its report; None when the shim ended without one.
    async fn spawn_shim(&self, dir: &Path, spec: &ContainerSpec) -> Result<Option<ShimReport>> {
        use tokio::io::AsyncReadExt;

        let mut child = match self.start_shim(dir, spec) {
            Ok(child) => child,
            Err(e) => {
                // Nothing runs: leave no half-made state behind.
                let _ = std::fs::remove_dir_all(dir);
                return Err(e);
            }
        };
        let mut out = Vec::new();
        if let Some(mut stdout) = child.stdout.take() {
            match tokio::time::timeout(SHIM_REPORT_TIMEOUT, stdout.read_to_end(&mut out)).await {
                Ok(read) => {
                    read.ctx(|| {
                        format!("reading the report of the shim of container {}", spec.id)
                    })?;
                }
                // Not killed: should it still start the container, `status` and `list` show it.
                Err(_) => {
                    return Err(Error::Container(format!(
                        "the shim of container {} did not report within {SHIM_REPORT_TIMEOUT:?}",
                        spec.id
                    )));
                }
            }
        }
        // The first shim process only forks the supervisor and exits.
        let _ = child.wait().await;
        let text = String::from_utf8_lossy(&out);
        Ok(text
            .lines()
            .find_map(|l| serde_json::from_str::<ShimReport>(l).ok()))
    }

    /// Writes the container's state and starts its shim with the lock on fd 3.
    fn start_shim(&self, dir: &Path, spec: &ContainerSpec) -> Result<tokio::process::Child> {
        // The lock first, so that the moment spec.json makes the container visible its shim
        // already counts as alive.
        let lock_path = dir.join(SHIM_LOCK_FILE);
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .ctx(|| format!("creating {}", lock_path.display()))?;
        // A plain flock, not nix's Flock: dropping that would unlock the shim's copy too (one
        // open file description).
        if !try_lock(&lock_file).ctx(|| format!("locking {}", lock_path.display()))? {
            return Err(Error::Container(format!(
                "container {} already has a shim",
                spec.id
            )));
        }
        let lock = lock_file;
        let spec_json = serde_json::to_vec_pretty(spec).map_err(|e| {
            Error::Invalid(format!(
                "container {}: cannot encode its spec: {e}",
                spec.id
            ))
        })?;
        write_atomic(&dir.join(SPEC_FILE), &spec_json)?;

        let log_path = dir.join(SHIM_LOG_FILE);
        let shim_log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .ctx(|| format!("opening {}", log_path.display()))?;

        let mut cmd = tokio::process::Command::new(&self.shim.program);
        cmd.args(&self.shim.args)
            .arg(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(shim_log);
        let lock_fd = lock.as_raw_fd();
        // SAFETY: the closure only calls dup2/fcntl, which are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || pass_fd(lock_fd, SHIM_LOCK_FD));
        }
        let child = cmd.spawn().ctx(|| {
            format!(
                "starting the shim {} for container {}",
                self.shim.program.display(),
                spec.id
            )
        })?;
        // The shim holds the lock now (through the inherited descriptor); closing ours keeps it.
        drop(lock);
        Ok(child)
    }

    pub fn status(&self, id: &str) -> Result<ContainerStatus> {
        let dir = self.known_dir(id)?;
        status_of(&dir)
    }

    /// Resolves when the container has exited (at once if it already has). Works for
    /// containers started before this process did (after an agent restart).
    pub async fn wait(&self, id: &str) -> Result<ExitInfo> {
        loop {
            if let ContainerStatus::Exited(info) = self.status(id)? {
                return Ok(info);
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// Sends a signal to the container's init process (no-op if it has exited).
    pub fn signal(&self, id: &str, signal: i32) -> Result<()> {
        let dir = self.known_dir(id)?;
        let pid = match status_of(&dir)? {
            ContainerStatus::Exited(_) => return Ok(()),
            ContainerStatus::Creating => {
                return Err(Error::Container(format!(
                    "container {id} is still being created"
                )));
            }
            ContainerStatus::Running { pid, .. } => pid,
        };
        let pidfd = match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(()),
            Err(e) => {
                return Err(Error::io(
                    format!("opening a pidfd for container {id} (pid {pid})"),
                    e,
                ));
            }
        };
        // exit.json is written before the pid is reaped: if it is still missing now, the pidfd
        // opened above refers to the container's process and not to a recycled pid.
        if dir.join(EXIT_FILE).exists() {
            return Ok(());
        }
        match pidfd_send_signal(&pidfd, signal) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            Err(e) => Err(Error::Container(format!(
                "signalling container {id} with {signal}: {e}"
            ))),
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; resolves with its exit.
    pub async fn stop(&self, id: &str, grace: Duration) -> Result<ExitInfo> {
        if !self.wait_created(id).await? {
            return self.wait(id).await;
        }
        self.signal(id, libc::SIGTERM)?;
        match tokio::time::timeout(grace, self.wait(id)).await {
            Ok(exit) => exit,
            Err(_) => {
                self.signal(id, libc::SIGKILL)?;
                self.wait(id).await
            }
        }
    }

    /// Waits while the container is `Creating`; true if it runs, false if it has exited.
    async fn wait_created(&self, id: &str) -> Result<bool> {
        let deadline = Instant::now() + CREATING_TIMEOUT;
        loop {
            match self.status(id)? {
                ContainerStatus::Running { .. } => return Ok(true),
                ContainerStatus::Exited(_) => return Ok(false),
                ContainerStatus::Creating if Instant::now() >= deadline => {
                    return Err(Error::Container(format!(
                        "container {id} is still being created after {CREATING_TIMEOUT:?}"
                    )));
                }
                ContainerStatus::Creating => tokio::time::sleep(WAIT_POLL).await,
            }
        }
    }

    /// Forgets an exited container: its state directory and libcontainer state (the cgroup is
    /// gone already); kills it first if it still runs. Logs are not touched. Idempotent.
    pub async fn remove(&self, id: &str) -> Result<()> {
        crate::spec::validate_id(id)?;
        let dir = self.container_dir(id);
        let lc_dir = self.root.join("libcontainer").join(id);
        if !dir.exists() && !lc_dir.exists() {
            return Ok(());
        }
        let spec = read_spec(&dir).ok();
        if spec.is_some() && self.wait_created(id).await? {
            self.signal(id, libc::SIGKILL)?;
            self.wait(id).await?;
        }
        // The shim deletes the libcontainer state and the cgroup after it recorded the exit;
        // let it finish, and do its work if it died.
        let deadline = Instant::now() + SHIM_EXIT_TIMEOUT;
        while shim_alive(&dir) {
            if Instant::now() >= deadline {
                if let Some(pid) = read_shim_pid(&dir) {
                    tracing::warn!(
                        id,
                        pid,
                        "shim did not exit after its container did; killing it"
                    );
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::SIGKILL,
                    );
                }
                tokio::time::sleep(WAIT_POLL).await;
                break;
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
        let lc_root = self.root.join("libcontainer");
        let id_owned = id.to_string();
        let cgroup = spec.as_ref().map(|s| s.cgroup_path.clone());
        tokio::task::spawn_blocking(move || {
            cleanup_leftovers(&lc_root, &id_owned, cgroup.as_deref())
        })
        .await
        .map_err(|e| Error::Container(format!("cleaning up container {id}: {e}")))??;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("removing {}", dir.display()), e)),
        }
    }

    /// Every container the runtime knows, with its labels: what the agent reconciles against.
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        let containers = self.root.join("containers");
        let entries =
            std::fs::read_dir(&containers).ctx(|| format!("listing {}", containers.display()))?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let Some(id) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if crate::spec::validate_id(&id).is_err() {
                continue;
            }
            let dir = entry.path();
            let spec = match read_spec(&dir) {
                Ok(s) => s,
                // Half-made (run is writing it) or foreign: not a container yet.
                Err(_) => continue,
            };
            match status_of(&dir) {
                Ok(status) => out.push(ContainerRecord {
                    id,
                    labels: spec.labels,
                    status,
                }),
                Err(e) => tracing::warn!(id, error = %e, "cannot read container status"),
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    pub fn spec(&self, id: &str) -> Result<ContainerSpec> {
        let dir = self.known_dir(id)?;
        read_spec(&dir)
    }

    /// Runs a process inside a running container (its namespaces, cgroup, user and
    /// capabilities) — `kubectl exec` and exec probes.
    pub async fn exec(&self, id: &str, req: ExecRequest) -> Result<ExecSession> {
        match self.status(id)? {
            ContainerStatus::Running { .. } => {}
            ContainerStatus::Creating => {
                return Err(Error::Container(format!(
                    "cannot exec in container {id}: it is still being created"
                )));
            }
            ContainerStatus::Exited(_) => {
                return Err(Error::Container(format!(
                    "cannot exec in container {id}: it is not running"
                )));
            }
        }
        crate::exec::spawn(self, id, req).await
    }

    /// cpu and memory of the container's cgroup.
    pub fn usage(&self, id: &str) -> Result<Usage> {
        let spec = self.spec(id)?;
        crate::stats::cgroup_usage(&spec.cgroup_path)
    }
}

/// The status recorded in a container directory.
fn status_of(dir: &Path) -> Result<ContainerStatus> {
    if let Some(exit) = read_json::<ExitInfo>(&dir.join(EXIT_FILE))? {
        return Ok(ContainerStatus::Exited(exit));
    }
    let alive = shim_alive(dir);
    // Read again: the shim may have finished between the two looks.
    if let Some(exit) = read_json::<ExitInfo>(&dir.join(EXIT_FILE))? {
        return Ok(ContainerStatus::Exited(exit));
    }
    let started = read_json::<Started>(&dir.join(STARTED_FILE))?;
    match (started, alive) {
        (Some(s), true) => Ok(ContainerStatus::Running {
            pid: s.pid,
            started_at: s.started_at,
        }),
        (None, true) => Ok(ContainerStatus::Creating),
        (Some(s), false) => {
            // The shim died without recording the exit (killed, crashed). The container's
            // process may live on, reparented; it runs while its pid does.
            if process_alive(s.pid) {
                Ok(ContainerStatus::Running {
                    pid: s.pid,
                    started_at: s.started_at,
                })
            } else {
                Ok(ContainerStatus::Exited(ExitInfo {
                    exit_code: UNKNOWN_EXIT_CODE,
                    signal: None,
                    oom_killed: false,
                    started_at: Some(s.started_at),
                    finished_at: modified_rfc3339(&dir.join(STARTED_FILE)),
                    message: Some("the container's shim exited without recording its exit".into()),
                }))
            }
        }
        (None, false) => {
            let log = std::fs::read_to_string(dir.join(SHIM_LOG_FILE)).unwrap_or_default();
            let detail = last_lines(&log, 3);
            Ok(ContainerStatus::Exited(ExitInfo {
                exit_code: START_FAILED_EXIT_CODE,
                signal: None,
                oom_killed: false,
                started_at: None,
                finished_at: modified_rfc3339(&dir.join(SPEC_FILE)),
                message: Some(if detail.is_empty() {
                    "the container's shim exited before starting it".into()
                } else {
                    format!("the container's shim exited before starting it: {detail}")
                }),
            }))
        }
    }
}

fn read_spec(dir: &Path) -> Result<ContainerSpec> {
    let path = dir.join(SPEC_FILE);
    let data = std::fs::read(&path).ctx(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&data).map_err(|e| Error::Path {
        path,
        message: format!("not a container spec: {e}"),
    })
}

/// A JSON state file; None if it does not exist (yet).
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| Error::Path {
                path: path.to_path_buf(),
                message: format!("corrupt state file: {e}"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

/// Writes through a temporary file and a rename, so readers never see half a file.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, data).ctx(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).ctx(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Whether the shim of the container in `dir` still runs (holds its lock).
pub(crate) fn shim_alive(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(SHIM_LOCK_FILE)) else {
        return false;
    };
    // Got it: nobody holds it (closing the file drops it again).
    !try_lock(&file).unwrap_or(true)
}

/// A non-blocking exclusive flock; false if someone else holds it.
pub(crate) fn try_lock(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

fn read_shim_pid(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join(SHIM_PID_FILE))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Alive and not a zombie.
fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself contain ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X"),
        Err(_) => false,
    }
}

fn modified_rfc3339(path: &Path) -> String {
    let t = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| std::time::SystemTime::now());
    crate::logs::format_timestamp(t)
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("; ")
}

/// Deletes what a dead shim would have deleted: libcontainer's state and the cgroup (killing
/// what is left in it).
fn cleanup_leftovers(lc_root: &Path, id: &str, cgroup_path: Option<&str>) -> Result<()> {
    let lc_dir = lc_root.join(id);
    if lc_dir.exists() {
        match libcontainer::container::Container::load(lc_dir.clone()) {
            Ok(mut c) => {
                if let Err(e) = c.delete(true) {
                    tracing::warn!(id, error = %e, "libcontainer could not delete the container");
                }
            }
            Err(e) => tracing::warn!(id, error = %e, "cannot load libcontainer state"),
        }
        match std::fs::remove_dir_all(&lc_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing {}", lc_dir.display()), e)),
        }
    }
    if let Some(cgroup) = cgroup_path {
        kill_cgroup(cgroup);
        crate::stats::remove_cgroup(cgroup)?;
    }
    Ok(())
}

/// SIGKILLs every process of the cgroup until it is empty (bounded).
pub(crate) fn kill_cgroup(cgroup_path: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = crate::stats::cgroup_pids(cgroup_path);
        if pids.is_empty() || Instant::now() >= deadline {
            return;
        }
        for pid in pids {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// In a forked child before exec: puts `fd` at `target` without close-on-exec.
pub(crate) fn pass_fd(fd: i32, target: i32) -> std::io::Result<()> {
    // SAFETY: plain fd syscalls on descriptors the child owns.
    unsafe {
        if fd == target {
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        } else if libc::dup2(fd, target) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_send_signal(pidfd: &OwnedFd, signal: i32) -> std::io::Result<()> {
    // SAFETY: valid pidfd, no siginfo, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_files() {
        let tmp = std::env::temp_dir().join(format!("rkube-status-unit-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        // No shim, nothing started: it never ran.
        std::fs::write(tmp.join(SPEC_FILE), "{}").unwrap();
        std::fs::write(tmp.join(SHIM_LOG_FILE), "boom\n").unwrap();
        match status_of(&tmp).unwrap() {
            ContainerStatus::Exited(e) => {
                assert_eq!(e.exit_code, START_FAILED_EXIT_CODE);
                assert!(e.message.unwrap().contains("boom"));
            }
            other => panic!("{other:?}"),
        }
        // A held lock and no started.json: creating.
        let lock = File::create(tmp.join(SHIM_LOCK_FILE)).unwrap();
        assert!(try_lock(&lock).unwrap());
        assert!(shim_alive(&tmp));
        assert_eq!(status_of(&tmp).unwrap(), ContainerStatus::Creating);
        let started = Started {
            pid: std::process::id() as i32,
            started_at: "2026-01-01T00:00:00.000000000Z".into(),
        };
        std::fs::write(
            tmp.join(STARTED_FILE),
            serde_json::to_vec(&started).unwrap(),
        )
        .unwrap();
        assert_eq!(
            status_of(&tmp).unwrap(),
            ContainerStatus::Running {
                pid: started.pid,
                started_at: started.started_at.clone()
            }
        );
        // Shim gone, but the (here: our own) process lives on: still running.
        drop(lock);
        assert!(!shim_alive(&tmp));
        assert!(matches!(
            status_of(&tmp).unwrap(),
            ContainerStatus::Running { .. }
        ));
        // exit.json wins.
        let exit = ExitInfo {
            exit_code: 3,
            signal: None,
            oom_killed: false,
            started_at: Some(started.started_at.clone()),
            finished_at: "2026-01-01T00:00:01.000000000Z".into(),
            message: None,
        };
        write_atomic(&tmp.join(EXIT_FILE), &serde_json::to_vec(&exit).unwrap()).unwrap();
        assert_eq!(status_of(&tmp).unwrap(), ContainerStatus::Exited(exit));
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn liveness_of_processes() {
        assert!(process_alive(std::process::id() as i32));
        assert!(!process_alive(0));
        assert!(!process_alive(i32::MAX));
    }

    #[test]
    fn tail_of_logs() {
        assert_eq!(last_lines("a\n\nb\nc\n", 2), "b; c");
        assert_eq!(last_lines("", 2), "");
    }
}
