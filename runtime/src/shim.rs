//! `rkube shim <container dir>`: the per-container supervisor (what conmon / containerd-shim are
//! to other runtimes). It runs in a fresh single-threaded process before any async runtime
//! starts: it becomes a child subreaper, creates and starts the container with libcontainer with
//! its stdout/stderr on pipes, reports `started.json` (or the start error) to the agent through
//! the sync pipe on its stdout, copies the output into the CRI log file (rotating it), waits
//! for the container's init process, writes `exit.json` (code, signal, OOM kill from the
//! cgroup's memory events), deletes the container and exits. The exec helper (`rkube shim exec`)
//! lives in `exec`.
//!
//! The process the agent starts forks once and exits at once: the supervisor is then nobody's
//! child but init's (or the node's subreaper's), in a session of its own, so neither an agent
//! restart nor its process group's signals touch it, and the agent has no zombie to reap.
//!
//! Order at the end matters to `Runtime`: the init process is observed with `WNOWAIT` (it stays
//! a zombie, its pid reserved), the rest of the cgroup is killed, the output drained into the
//! log, the OOM counter read, the container deleted (cgroup and libcontainer state) — and only
//! then `exit.json` is written and the zombie reaped. Whoever sees `exit.json` sees complete
//! logs and no cgroup, and a pid from `started.json` is never recycled while `exit.json` is
//! missing.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::container::{
    BUNDLE_DIR, EXIT_FILE, ExitInfo, SHIM_LOCK_FD, SHIM_LOCK_FILE, SHIM_PID_FILE, SPEC_FILE,
    START_FAILED_EXIT_CODE, STARTED_FILE, ShimReport, Started, write_atomic,
};
use crate::logs::{LogWriter, format_timestamp};
use crate::spec::ContainerSpec;

/// linux/capability.h.
const CAP_SYS_RESOURCE: u32 = 24;
/// How long the output of an exited container may take to drain into the log.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Entry point: `args` are the arguments after `shim`. Returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let [dir] = args else {
        eprintln!("usage: rkube shim <container state directory>");
        return 2;
    };
    let dir = PathBuf::from(dir);
    // SAFETY: nothing else runs in this process yet (no threads, no async runtime).
    match unsafe { nix::unistd::fork() } {
        Err(e) => {
            eprintln!("shim: fork failed: {e}");
            return 1;
        }
        Ok(nix::unistd::ForkResult::Parent { .. }) => return 0,
        Ok(nix::unistd::ForkResult::Child) => {}
    }
    let _ = nix::unistd::setsid();
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        eprintln!(
            "shim: cannot become a child subreaper: {}",
            std::io::Error::last_os_error()
        );
    }
    let mut shim = Shim {
        dir,
        reported: false,
    };
    let code = shim.run();
    if !shim.reported {
        // Never leave `run` waiting on the sync pipe.
        shim.report(&ShimReport::Failed(
            "the shim failed before starting the container".into(),
        ));
    }
    code
}

struct Shim {
    dir: PathBuf,
    reported: bool,
}

impl Shim {
    fn run(&mut self) -> i32 {
        let _lock = match take_lock(&self.dir) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("shim: {e}");
                self.report(&ShimReport::Failed(e));
                return 1;
            }
        };
        let _ = std::fs::write(
            self.dir.join(SHIM_PID_FILE),
            format!("{}\n", std::process::id()),
        );
        let spec = match read_spec(&self.dir) {
            Ok(s) => s,
            Err(e) => {
                self.fail(&e);
                return 1;
            }
        };
        let runtime_root = match self.dir.parent().and_then(Path::parent) {
            Some(r) => r.to_path_buf(),
            None => {
                self.fail(&format!(
                    "{} is not a runtime container directory",
                    self.dir.display()
                ));
                return 1;
            }
        };
        let lc_root = runtime_root.join("libcontainer");
        let running = match self.start(&spec, &lc_root) {
            Ok(r) => r,
            Err(message) => {
                self.fail(&message);
                return 1;
            }
        };
        self.supervise(&spec, running);
        0
    }

    /// Creates and starts the container; reports `started.json` to the agent.
    fn start(&mut self, spec: &ContainerSpec, lc_root: &Path) -> Result<Running, String> {
        let bundle = self.dir.join(BUNDLE_DIR);
        std::fs::create_dir_all(&bundle)
            .map_err(|e| format!("creating {}: {e}", bundle.display()))?;
        let oci = crate::spec::oci_spec(spec).map_err(|e| e.to_string())?;
        let mut oci =
            serde_json::to_value(&oci).map_err(|e| format!("encoding config.json: {e}"))?;
        fit_rlimits(&mut oci);
        let config =
            serde_json::to_vec_pretty(&oci).map_err(|e| format!("encoding config.json: {e}"))?;
        write_atomic(&bundle.join("config.json"), &config).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(lc_root)
            .map_err(|e| format!("creating {}: {e}", lc_root.display()))?;

        let log = LogWriter::open(&spec.log_path, spec.log_max_bytes, spec.log_max_files)
            .map_err(|e| e.to_string())?;
        let (out_r, out_w) = pipe().map_err(|e| format!("creating the stdout pipe: {e}"))?;
        let (err_r, err_w) = pipe().map_err(|e| format!("creating the stderr pipe: {e}"))?;
        let devnull = File::open("/dev/null").map_err(|e| format!("opening /dev/null: {e}"))?;

        // libcontainer writes the container's oomScoreAdj into its own process (so that the
        // container inherits it); the supervisor keeps its own.
        let own_oom_score_adj = std::fs::read_to_string("/proc/self/oom_score_adj").ok();
        // Still single-threaded here: libcontainer clones, and a clone of a threaded process
        // could inherit a lock some other thread held.
        let built = ContainerBuilder::new(spec.id.clone(), SyscallType::default())
            .with_executor(ShimExecutor)
            .with_root_path(lc_root)
            .map(|b| {
                b.with_stdin(devnull)
                    .with_stdout(out_w)
                    .with_stderr(err_w)
                    .as_init(&bundle)
                    .with_systemd(false)
                    .with_detach(true)
            })
            .and_then(|b| b.build());
        if let Some(adj) = own_oom_score_adj {
            let _ = std::fs::write("/proc/self/oom_score_adj", adj.trim());
        }
        let mut container = built.map_err(|e| start_error_message(&e, &spec.args[0]))?;
        // The builder owned the pipes' write ends and has closed them: only the container
        // holds them now, so EOF means its processes are gone.

        let log = Arc::new(Mutex::new(log));
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        for (fd, stream) in [(out_r, "stdout"), (err_r, "stderr")] {
            let log = log.clone();
            let done = done_tx.clone();
            std::thread::Builder::new()
                .name(format!("shim-{stream}"))
                .spawn(move || {
                    pump(fd, stream, &log);
                    let _ = done.send(());
                })
                .map_err(|e| format!("starting the log thread: {e}"))?;
        }
        drop(done_tx);

        if let Err(e) = container.start() {
            let message = start_error_message(&e, &spec.args[0]);
            if let Err(e) = container.delete(true) {
                eprintln!("shim: deleting the container that failed to start: {e}");
            }
            crate::container::kill_cgroup(&spec.cgroup_path);
            let _ = crate::stats::remove_cgroup(&spec.cgroup_path);
            return Err(message);
        }
        let started_at = format_timestamp(SystemTime::now());
        let pid = match container.pid() {
            Some(p) => p.as_raw(),
            None => {
                let _ = container.delete(true);
                return Err("libcontainer did not record the container's pid".into());
            }
        };
        let started = Started { pid, started_at };
        let json = serde_json::to_vec(&started).map_err(|e| e.to_string())?;
        write_atomic(&self.dir.join(STARTED_FILE), &json).map_err(|e| e.to_string())?;
        self.report(&ShimReport::Started(started.clone()));
        Ok(Running {
            container,
            started,
            pumps_done: done_rx,
        })
    }

    /// Waits for the init process and records its exit (see the module doc for the order).
    fn supervise(&mut self, spec: &ContainerSpec, mut running: Running) {
        let init = Pid::from_raw(running.started.pid);
        let status = wait_for_init(init);
        let finished_at = format_timestamp(SystemTime::now());
        let (exit_code, signal) = match status {
            WaitStatus::Exited(_, code) => (code, None),
            WaitStatus::Signaled(_, sig, _) => (128 + sig as i32, Some(sig as i32)),
            other => {
                eprintln!("shim: unexpected wait status {other:?}");
                (255, None)
            }
        };
        // With a pid namespace of its own the kernel has killed the rest already; with the
        // host's, whatever the init process left behind goes now (Kubernetes semantics: the
        // container is its main process).
        crate::container::kill_cgroup(&spec.cgroup_path);
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        for _ in 0..2 {
            let left = deadline.saturating_duration_since(Instant::now());
            if running.pumps_done.recv_timeout(left).is_err() {
                eprintln!("shim: container output did not drain within {DRAIN_TIMEOUT:?}");
                break;
            }
        }
        let oom_killed = crate::stats::oom_kills(&spec.cgroup_path).unwrap_or(0) > 0;
        if let Err(e) = running.container.delete(true) {
            eprintln!("shim: libcontainer could not delete the container: {e}");
        }
        if let Err(e) = crate::stats::remove_cgroup(&spec.cgroup_path) {
            eprintln!("shim: removing cgroup {}: {e}", spec.cgroup_path);
        }
        let exit = ExitInfo {
            exit_code,
            signal,
            oom_killed,
            started_at: Some(running.started.started_at.clone()),
            finished_at,
            message: None,
        };
        self.write_exit(&exit);
        let _ = nix::sys::wait::waitpid(init, None);
    }

    /// The container could not start: record it and tell the agent.
    fn fail(&mut self, message: &str) {
        eprintln!("shim: {message}");
        self.write_exit(&ExitInfo {
            exit_code: START_FAILED_EXIT_CODE,
            signal: None,
            oom_killed: false,
            started_at: None,
            finished_at: format_timestamp(SystemTime::now()),
            message: Some(message.to_string()),
        });
        self.report(&ShimReport::Failed(message.to_string()));
    }

    fn write_exit(&self, exit: &ExitInfo) {
        match serde_json::to_vec(exit) {
            Ok(json) => {
                if let Err(e) = write_atomic(&self.dir.join(EXIT_FILE), &json) {
                    eprintln!("shim: {e}");
                }
            }
            Err(e) => eprintln!("shim: encoding exit.json: {e}"),
        }
    }

    /// One line on the sync pipe, then the pipe is closed (stdout becomes /dev/null).
    fn report(&mut self, report: &ShimReport) {
        if self.reported {
            return;
        }
        self.reported = true;
        if let Ok(mut line) = serde_json::to_vec(report) {
            line.push(b'\n');
            let mut out = std::io::stdout().lock();
            // The agent may be gone (EPIPE): the container runs on regardless.
            let _ = out.write_all(&line);
            let _ = out.flush();
        }
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            // SAFETY: dup2 onto our own stdout.
            unsafe { libc::dup2(null.as_raw_fd(), 1) };
        }
    }
}

struct Running {
    container: libcontainer::container::Container,
    started: Started,
    pumps_done: std::sync::mpsc::Receiver<()>,
}

/// Takes over the lock `Runtime::run` passed as fd 3 (or takes it, when started by hand).
fn take_lock(dir: &Path) -> Result<File, String> {
    let path = dir.join(SHIM_LOCK_FILE);
    let want = std::fs::metadata(&path).ok().map(|m| (m.dev(), m.ino()));
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on a descriptor number that may or may not be open, into a local buffer.
    let inherited =
        unsafe { libc::fstat(SHIM_LOCK_FD, &mut st) } == 0 && want == Some((st.st_dev, st.st_ino));
    if inherited {
        // SAFETY: fd 3 is the lock file handed to us and nothing else in this process uses it.
        let file = unsafe { File::from_raw_fd(SHIM_LOCK_FD) };
        // Close-on-exec: the container's processes must not keep the shim "alive".
        unsafe { libc::fcntl(SHIM_LOCK_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
        return Ok(file);
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    match crate::container::try_lock(&file) {
        Ok(true) => Ok(file),
        Ok(false) => Err(format!("another shim holds {}", path.display())),
        Err(e) => Err(format!("locking {}: {e}", path.display())),
    }
}

fn read_spec(dir: &Path) -> Result<ContainerSpec, String> {
    let path = dir.join(SPEC_FILE);
    let data = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_slice(&data)
        .map_err(|e| format!("{}: not a container spec: {e}", path.display()))
}

fn pipe() -> nix::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
}

/// Copies one output stream of the container into the log until EOF.
fn pump(fd: OwnedFd, stream: &str, log: &Mutex<LogWriter>) {
    let mut file = File::from(fd);
    let mut buf = vec![0u8; 32 * 1024];
    let mut warned = false;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                // Keep reading even when the log cannot be written (disk full): a container
                // blocked on a full pipe would hang.
                if let Err(e) = log.write(stream, &buf[..n])
                    && !warned
                {
                    eprintln!("shim: writing the container's {stream} to its log: {e}");
                    warned = true;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("shim: reading the container's {stream}: {e}");
                return;
            }
        }
    }
}

/// Reaps every other child (orphans reparented to us) and returns once `init` has exited,
/// leaving it a zombie.
fn wait_for_init(init: Pid) -> WaitStatus {
    loop {
        match nix::sys::wait::waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Ok(status) => match status.pid() {
                Some(pid) if pid == init => return status,
                Some(pid) => {
                    let _ = nix::sys::wait::waitpid(pid, Some(WaitPidFlag::WNOHANG));
                }
                None => {}
            },
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                // ECHILD: someone else reaped it; nothing to learn any more.
                eprintln!("shim: waiting for the container's process: {e}");
                return WaitStatus::Exited(init, 255);
            }
        }
    }
}

/// Without CAP_SYS_RESOURCE no process may raise a hard rlimit, and libcontainer would fail
/// the whole start (EPERM) over a NOFILE limit the node cannot grant: limits above what this
/// process holds are lowered to it instead, as the node's administrator decided.
fn fit_rlimits(config: &mut serde_json::Value) {
    if has_capability(CAP_SYS_RESOURCE) {
        return;
    }
    let Some(rlimits) = config
        .pointer_mut("/process/rlimits")
        .and_then(|r| r.as_array_mut())
    else {
        return;
    };
    for limit in rlimits {
        let Some(resource) = limit
            .get("type")
            .and_then(|t| t.as_str())
            .and_then(rlimit_resource)
        else {
            continue;
        };
        let mut current = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit into a local struct.
        if unsafe { libc::getrlimit(resource, &mut current) } != 0 {
            continue;
        }
        let hard = limit
            .get("hard")
            .and_then(|h| h.as_u64())
            .unwrap_or(u64::MAX);
        if hard > current.rlim_max {
            limit["hard"] = serde_json::json!(current.rlim_max);
            let soft = limit
                .get("soft")
                .and_then(|s| s.as_u64())
                .unwrap_or(u64::MAX);
            limit["soft"] = serde_json::json!(soft.min(current.rlim_max));
        }
    }
}

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        _ => return None,
    })
}

/// Whether capability `cap` is in this process's effective set.
fn has_capability(cap: u32) -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|mask| cap < 64 && mask & (1u64 << cap) != 0)
}

/// The payload's executor: libcontainer's default, after restoring the signal state a Rust
/// parent leaves behind (SIGPIPE ignored, which execve would keep) so the container's process
/// starts with default dispositions and an empty mask.
#[derive(Clone)]
pub(crate) struct ShimExecutor;

impl Executor for ShimExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        reset_signals();
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}

pub(crate) fn reset_signals() {
    /// The kernel's `struct sigaction` (x86_64 and arm64 share this layout). The raw syscall,
    /// because glibc refuses to touch the signals it reserves (32, 33), which can still arrive
    /// ignored from an ancestor.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing the default disposition; the kernel reads `default` only.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                std::mem::size_of::<u64>(),
            )
        };
    }
    let empty = nix::sys::signal::SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&empty),
        None,
    );
}

/// The reason a container (or an exec) could not start, in the words kubelet users know from
/// runc: `exec: "foo": executable file not found in $PATH`, else libcontainer's error chain.
pub(crate) fn start_error_message(err: &dyn std::error::Error, arg0: &str) -> String {
    let chain = error_chain(err);
    if chain.contains("not found in $PATH") {
        if arg0.contains('/') {
            return format!("exec: \"{arg0}\": stat {arg0}: no such file or directory");
        }
        return format!("exec: \"{arg0}\": executable file not found in $PATH");
    }
    if chain.contains("does not have correct permissions") {
        return format!("exec: \"{arg0}\": permission denied");
    }
    chain
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn runc_style_messages() {
        let nf = E(
            "failed to create container",
            Some(Box::new(E("executable 'foo' not found in $PATH", None))),
        );
        assert_eq!(
            start_error_message(&nf, "foo"),
            "exec: \"foo\": executable file not found in $PATH"
        );
        assert_eq!(
            start_error_message(&nf, "/bin/foo"),
            "exec: \"/bin/foo\": stat /bin/foo: no such file or directory"
        );
        let perm = E(
            "executable 'x' at path '\"/x\"' does not have correct permissions",
            None,
        );
        assert_eq!(
            start_error_message(&perm, "x"),
            "exec: \"x\": permission denied"
        );
        let other = E(
            "failed to create container",
            Some(Box::new(E("cgroup: boom", None))),
        );
        assert_eq!(
            start_error_message(&other, "x"),
            "failed to create container: cgroup: boom"
        );
        let dup = E("a: b", Some(Box::new(E("b", None))));
        assert_eq!(error_chain(&dup), "a: b");
    }
}
