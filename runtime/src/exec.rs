//! Processes run inside a running container: `kubectl exec` (with or without a TTY) and exec
//! probes. Each session is a child process `rkube shim exec <container id> ...` that joins the
//! container through libcontainer's tenant builder; its stdio are pipes to the agent, and with a
//! TTY it owns the pty master and relays it, taking window-size changes on a fourth pipe.
//!
//! The helper's command line: `exec <container id> --root <runtime root> [--tty] [--env K=V]...
//! -- <command>...`. Besides stdio it gets a status pipe on fd 3 — one line, `ok` once the
//! process runs or `error <message>` when it could not start, so `Runtime::exec` fails instead
//! of returning a session that only ever reports an exit code — and, with a TTY, the resize
//! pipe on fd 4 (`<cols> <rows>\n` lines). Without a TTY the process gets the helper's stdio
//! pipes themselves (no copying); with one, libcontainer creates the pty inside the container
//! (its devpts, made the controlling terminal) and sends the master over a console socket.
//!
//! The exec'd process is the helper's child. SIGTERM, SIGINT or SIGHUP to the helper become
//! SIGKILL to the process (`kill`), and the helper exits with the process's code (128 + signal
//! when killed).

use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStderr, ChildStdin, ChildStdout};

use crate::container::{BUNDLE_DIR, Runtime, pass_fd};
use crate::shim::{ShimExecutor, start_error_message};
use crate::{Error, Result};

const STATUS_FD: RawFd = 3;
const RESIZE_FD: RawFd = 4;
/// How long the helper waits for libcontainer to send the pty master.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the terminal output may take to drain after the process exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Exit code of a helper whose process could not be started.
const START_FAILED: i32 = 126;

#[derive(Clone, Debug, Default)]
pub struct ExecRequest {
    pub command: Vec<String>,
    pub tty: bool,
    /// Give the process a stdin (else /dev/null).
    pub stdin: bool,
    /// Extra `KEY=value` env on top of the container's.
    pub env: Vec<String>,
}

/// A running exec. With a TTY, stdout carries the terminal's output and stderr is `None`.
/// Dropping a session that was not waited for kills its process.
pub struct ExecSession {
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
    child: tokio::process::Child,
    resize: Option<tokio::net::unix::pipe::Sender>,
    exit: Option<i32>,
}

impl ExecSession {
    /// Terminal size change (TTY sessions; ignored otherwise).
    pub async fn resize(&mut self, cols: u16, rows: u16) -> Result<()> {
        let Some(pipe) = &mut self.resize else {
            return Ok(());
        };
        match pipe.write_all(format!("{cols} {rows}\n").as_bytes()).await {
            Ok(()) => Ok(()),
            // The session is over; a late resize is not an error.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(Error::io("sending a terminal resize to the exec helper", e)),
        }
    }

    /// The process's exit code (128 + signal if killed).
    pub async fn wait(&mut self) -> Result<i32> {
        if let Some(code) = self.exit {
            return Ok(code);
        }
        let status = self
            .child
            .wait()
            .await
            .map_err(|e| Error::io("waiting for the exec helper", e))?;
        let code = exit_code(status);
        self.exit = Some(code);
        Ok(code)
    }

    /// Kills the exec'd process (probe timeouts, a client that went away).
    pub async fn kill(&mut self) -> Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        if let Some(pid) = self.child.id() {
            // The helper turns SIGTERM into SIGKILL for the process and then exits with its code.
            match nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(Error::Container(format!("killing exec helper {pid}: {e}"))),
            }
        }
        Ok(())
    }
}

impl Drop for ExecSession {
    fn drop(&mut self) {
        if self.exit.is_none()
            && let Some(pid) = self.child.id()
        {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 255,
    }
}

/// Starts a helper for `req` in container `id` (which `Runtime::exec` checked is running).
pub(crate) async fn spawn(rt: &Runtime, id: &str, req: ExecRequest) -> Result<ExecSession> {
    if req.command.is_empty() || req.command[0].is_empty() {
        return Err(Error::Invalid(format!(
            "exec in container {id}: the command must not be empty"
        )));
    }
    for e in &req.env {
        if !e.contains('=') || e.starts_with('=') {
            return Err(Error::Invalid(format!(
                "exec in container {id}: env entry {e:?} is not KEY=value"
            )));
        }
    }
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::io("creating a pipe", e.into()))
    };
    let (status_r, status_w) = pipe()?;
    let resize = if req.tty { Some(pipe()?) } else { None };

    let shim = rt.shim_command();
    let mut cmd = tokio::process::Command::new(&shim.program);
    cmd.args(&shim.args)
        .arg("exec")
        .arg(id)
        .arg("--root")
        .arg(rt.root());
    if req.tty {
        cmd.arg("--tty");
    }
    for e in &req.env {
        cmd.arg("--env").arg(e);
    }
    cmd.arg("--").args(&req.command);
    cmd.stdin(if req.stdin {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::null()
    })
    .stdout(std::process::Stdio::piped())
    .stderr(if req.tty {
        std::process::Stdio::null()
    } else {
        std::process::Stdio::piped()
    });
    let status_fd = status_w.as_raw_fd();
    let resize_fd = resize.as_ref().map(|(r, _)| r.as_raw_fd());
    // SAFETY: the closure only calls dup2/fcntl, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            // fd 4 first: the status pipe's source could be 4 itself.
            if let Some(r) = resize_fd {
                if status_fd == RESIZE_FD {
                    return Err(std::io::Error::other("descriptor clash"));
                }
                pass_fd(r, RESIZE_FD)?;
            }
            pass_fd(status_fd, STATUS_FD)
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        Error::io(
            format!(
                "starting the exec helper {} for container {id}",
                shim.program.display()
            ),
            e,
        )
    })?;
    drop(status_w);
    let resize = match resize {
        Some((r, w)) => {
            drop(r);
            Some(
                tokio::net::unix::pipe::Sender::from_owned_fd(w)
                    .map_err(|e| Error::io("setting up the resize pipe", e))?,
            )
        }
        None => None,
    };

    let report = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        let _ = File::from(status_r).read_to_string(&mut text);
        text
    })
    .await
    .map_err(|e| Error::Container(format!("reading the exec helper's status: {e}")))?;
    let line = report.lines().next().unwrap_or_default();
    if line == "ok" {
        return Ok(ExecSession {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            child,
            resize,
            exit: None,
        });
    }
    let _ = child.start_kill();
    let status = child.wait().await.ok();
    Err(Error::Container(match line.strip_prefix("error ") {
        Some(message) => message.to_string(),
        None => format!(
            "exec in container {id}: the helper exited ({}) without starting the process",
            status
                .map(|s| exit_code(s).to_string())
                .unwrap_or_else(|| "?".into())
        ),
    }))
}

struct Args {
    id: String,
    root: PathBuf,
    tty: bool,
    env: Vec<String>,
    command: Vec<String>,
}

fn parse(args: &[String]) -> std::result::Result<Args, String> {
    let mut it = args.iter();
    let id = it.next().ok_or("missing container id")?.clone();
    crate::spec::validate_id(&id).map_err(|e| e.to_string())?;
    let (mut root, mut tty, mut env) = (None, false, Vec::new());
    loop {
        match it.next().map(String::as_str) {
            Some("--root") => root = Some(PathBuf::from(it.next().ok_or("--root needs a value")?)),
            Some("--tty") => tty = true,
            Some("--env") => env.push(it.next().ok_or("--env needs a value")?.clone()),
            Some("--") => break,
            Some(other) => return Err(format!("unknown argument {other:?}")),
            None => return Err("missing -- <command>".into()),
        }
    }
    let command: Vec<String> = it.cloned().collect();
    if command.is_empty() {
        return Err("missing command".into());
    }
    Ok(Args {
        id,
        root: root.ok_or("missing --root")?,
        tty,
        env,
        command,
    })
}

/// Entry point of `rkube shim exec ...` (arguments after `exec`). Returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let status = status_pipe();
    let args = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            let message = format!(
                "exec helper: {e}; usage: rkube shim exec <container id> --root <dir> [--tty] [--env K=V]... -- <command>..."
            );
            report(status, &format!("error {message}"));
            return 2;
        }
    };
    let started = match start(&args) {
        Ok(s) => s,
        Err(message) => {
            report(status, &format!("error {}", message.replace('\n', " ")));
            return START_FAILED;
        }
    };
    // From here on termination requests are forwarded as SIGKILL to the process. Blocked
    // before any thread starts, so that every thread has them blocked.
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    let _ = set.thread_block();
    let pid = started.pid;
    let _ = std::thread::Builder::new()
        .name("exec-signals".into())
        .spawn(move || {
            loop {
                if set.wait().is_ok() {
                    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                }
            }
        });
    report(status, "ok");

    let output_done = match started.master {
        Some(master) => Some(relay_terminal(master)),
        None => {
            // The process has its own copies of the stdio pipes; ours must not keep the
            // agent's stdout open after it exits.
            if let Ok(null) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                // SAFETY: dup2 onto our own stdin/stdout.
                unsafe {
                    libc::dup2(null.as_raw_fd(), 0);
                    libc::dup2(null.as_raw_fd(), 1);
                }
            }
            None
        }
    };
    let code = loop {
        match nix::sys::wait::waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("exec helper: waiting for pid {pid}: {e}");
                break 255;
            }
        }
    };
    if let Some(done) = output_done {
        let _ = done.recv_timeout(DRAIN_TIMEOUT);
    }
    code
}

/// fd 3 when `Runtime::exec` passed the status pipe.
fn status_pipe() -> Option<File> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat into a local buffer.
    if unsafe { libc::fstat(STATUS_FD, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFIFO
    {
        return None;
    }
    // SAFETY: fd 3 is the status pipe handed to us; nothing else owns it. Close-on-exec, so
    // that the exec'd process does not hold it.
    unsafe { libc::fcntl(STATUS_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    Some(unsafe { File::from_raw_fd(STATUS_FD) })
}

fn report(status: Option<File>, line: &str) {
    match status {
        Some(mut f) => {
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
        None => eprintln!("{line}"),
    }
}

struct Started {
    pid: Pid,
    master: Option<OwnedFd>,
}

/// Temporary files of one start attempt, removed however it ends.
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn start(args: &Args) -> std::result::Result<Started, String> {
    let container_dir = args.root.join("containers").join(&args.id);
    let lc_root = args.root.join("libcontainer");
    let config_path = container_dir.join(BUNDLE_DIR).join("config.json");
    let config: serde_json::Value = std::fs::read(&config_path)
        .map_err(|e| {
            format!(
                "container {}: reading {}: {e}",
                args.id,
                config_path.display()
            )
        })
        .and_then(|d| {
            serde_json::from_slice(&d).map_err(|e| format!("{}: {e}", config_path.display()))
        })?;
    let process = exec_process(&config, &args.command, &args.env, args.tty)?;

    let me = std::process::id();
    let process_path = container_dir.join(format!("exec-{me}.json"));
    let mut temp = TempFiles(vec![process_path.clone()]);
    let json =
        serde_json::to_vec(&process).map_err(|e| format!("encoding the exec process: {e}"))?;
    std::fs::write(&process_path, json)
        .map_err(|e| format!("writing {}: {e}", process_path.display()))?;

    let console = if args.tty {
        let name = format!("exec-{me}.sock");
        let listener = bind_short(&container_dir, &name)?;
        temp.0.push(container_dir.join(&name));
        Some((listener, container_dir.join(&name)))
    } else {
        None
    };

    let mut builder = ContainerBuilder::new(args.id.clone(), SyscallType::default())
        .with_executor(ShimExecutor)
        .with_root_path(&lc_root)
        .map_err(|e| e.to_string())?;
    match &console {
        Some((_, path)) => builder = builder.with_console_socket(Some(path)),
        None => {
            let dup = |fd: RawFd| -> std::result::Result<OwnedFd, String> {
                // SAFETY: fd 0-2 are ours; the duplicate is a fresh descriptor we own.
                let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
                if new < 0 {
                    return Err(format!(
                        "duplicating fd {fd}: {}",
                        std::io::Error::last_os_error()
                    ));
                }
                Ok(unsafe { OwnedFd::from_raw_fd(new) })
            };
            builder = builder
                .with_stdin(dup(0)?)
                .with_stdout(dup(1)?)
                .with_stderr(dup(2)?);
        }
    }
    let pid = builder
        .as_tenant()
        .with_process(Some(&process_path))
        .with_detach(args.tty)
        .build()
        .map_err(|e| start_error_message(&e, &args.command[0]))?;

    let master = match console {
        Some((listener, _)) => match receive_master(&listener) {
            Ok(m) => Some(m),
            Err(e) => {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
                return Err(e);
            }
        },
        None => None,
    };
    Ok(Started { pid, master })
}

/// The container's process spec with the exec's command, env and terminal.
fn exec_process(
    config: &serde_json::Value,
    command: &[String],
    extra_env: &[String],
    tty: bool,
) -> std::result::Result<serde_json::Value, String> {
    let mut process = config
        .get("process")
        .cloned()
        .ok_or("the container's config.json has no process")?;
    let mut env: Vec<String> = process
        .get("env")
        .and_then(|e| e.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for e in extra_env {
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|old| old.split('=').next() != Some(key));
        env.push(e.clone());
    }
    process["args"] = serde_json::json!(command);
    process["env"] = serde_json::json!(env);
    process["terminal"] = serde_json::json!(tty);
    if let Some(obj) = process.as_object_mut() {
        // The container's init settings that are not the exec's to repeat.
        obj.remove("consoleSize");
        obj.remove("oomScoreAdj");
    }
    Ok(process)
}

/// A listening unix socket at `dir/name` however long `dir` is (sun_path holds 108 bytes):
/// bound relative to `dir` (single-threaded here, so changing directory is safe).
fn bind_short(dir: &Path, name: &str) -> std::result::Result<UnixListener, String> {
    let previous = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    std::env::set_current_dir(dir).map_err(|e| format!("entering {}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(name);
    let bound = UnixListener::bind(name);
    let _ = std::env::set_current_dir(previous);
    bound.map_err(|e| format!("binding the console socket {}/{name}: {e}", dir.display()))
}

/// The pty master libcontainer sends over the console socket.
fn receive_master(listener: &UnixListener) -> std::result::Result<OwnedFd, String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + CONSOLE_TIMEOUT;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() >= deadline {
                    return Err("the container did not send its terminal in time".into());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(format!("accepting the console socket: {e}")),
        }
    };
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(CONSOLE_TIMEOUT))
        .map_err(|e| e.to_string())?;
    recv_fd(stream.as_raw_fd())
        .map_err(|e| format!("receiving the terminal from the container: {e}"))
}

/// One descriptor passed with SCM_RIGHTS.
fn recv_fd(sock: RawFd) -> std::io::Result<OwnedFd> {
    let mut data = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for one control message with a few descriptors.
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: recvmsg into the buffers described by msg.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut received: Vec<OwnedFd> = Vec::new();
    // SAFETY: walking the control messages the kernel wrote into `control`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg) as *const RawFd;
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    received.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if received.is_empty() {
        return Err(std::io::Error::other("no descriptor in the message"));
    }
    Ok(received.swap_remove(0))
}

/// Relays stdin → master, master → stdout and resize requests; the receiver fires when the
/// terminal's output has ended (every slave closed).
fn relay_terminal(master: OwnedFd) -> std::sync::mpsc::Receiver<()> {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let master = std::sync::Arc::new(File::from(master));

    let m = master.clone();
    let _ = std::thread::Builder::new()
        .name("exec-tty-out".into())
        .spawn(move || {
            let mut buf = vec![0u8; 32 * 1024];
            // SAFETY: fd 1 stays open for the life of the process.
            let mut out = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
            loop {
                match (&*m).read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    // EIO: the last slave descriptor closed.
                    Err(_) => break,
                }
            }
            let _ = done_tx.send(());
        });

    let m = master.clone();
    let _ = std::thread::Builder::new()
        .name("exec-tty-in".into())
        .spawn(move || {
            let mut buf = vec![0u8; 32 * 1024];
            // SAFETY: fd 0 stays open for the life of the process.
            let mut input = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(0) });
            loop {
                match input.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if (&*m).write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        });

    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat into a local buffer.
    let has_resize = unsafe { libc::fstat(RESIZE_FD, &mut st) } == 0
        && st.st_mode & libc::S_IFMT == libc::S_IFIFO;
    if has_resize {
        // SAFETY: fd 4 is the resize pipe handed to us; only this thread uses it.
        let pipe = unsafe { File::from_raw_fd(RESIZE_FD) };
        unsafe { libc::fcntl(RESIZE_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
        let m = master;
        let _ = std::thread::Builder::new()
            .name("exec-tty-resize".into())
            .spawn(move || {
                for line in std::io::BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut parts = line.split_whitespace().map(|p| p.parse::<u16>());
                    if let (Some(Ok(cols)), Some(Ok(rows))) = (parts.next(), parts.next()) {
                        set_window_size(m.as_raw_fd(), cols, rows);
                    }
                }
            });
    }
    done_rx
}

fn set_window_size(fd: RawFd, cols: u16, rows: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize, which `ws` is.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_arguments() {
        let a = parse(&strings(&[
            "c1", "--root", "/r", "--tty", "--env", "A=b", "--", "sh", "-c", "echo --",
        ]))
        .unwrap();
        assert_eq!(a.id, "c1");
        assert_eq!(a.root, PathBuf::from("/r"));
        assert!(a.tty);
        assert_eq!(a.env, strings(&["A=b"]));
        assert_eq!(a.command, strings(&["sh", "-c", "echo --"]));
        assert!(parse(&strings(&["c1", "--root", "/r", "--"])).is_err());
        assert!(parse(&strings(&["c1", "--", "sh"])).is_err());
        assert!(parse(&strings(&["Bad/Id", "--root", "/r", "--", "sh"])).is_err());
        assert!(parse(&strings(&["c1", "--bogus", "--", "sh"])).is_err());
    }

    #[test]
    fn exec_process_overrides_command_env_and_terminal() {
        let config = serde_json::json!({
            "process": {
                "args": ["sleep", "1000"], "env": ["PATH=/bin", "A=1"], "cwd": "/w",
                "user": {"uid": 5, "gid": 6}, "terminal": false, "oomScoreAdj": 100
            }
        });
        let p = exec_process(&config, &strings(&["id"]), &strings(&["A=2", "B=3"]), true).unwrap();
        assert_eq!(p["args"], serde_json::json!(["id"]));
        assert_eq!(p["env"], serde_json::json!(["PATH=/bin", "A=2", "B=3"]));
        assert_eq!(p["terminal"], true);
        assert_eq!(p["cwd"], "/w");
        assert_eq!(p["user"]["uid"], 5);
        assert!(p.get("oomScoreAdj").is_none());
        assert!(exec_process(&serde_json::json!({}), &strings(&["id"]), &[], false).is_err());
    }
}
