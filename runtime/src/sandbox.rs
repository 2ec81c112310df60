//! Pod sandboxes without a pause process: the pod's network, IPC and UTS namespaces are created
//! once (by a short-lived thread that unshares them and sets the pod's hostname) and pinned by
//! bind-mounting their `/proc/thread-self/ns/*` files under the sandbox directory. Every container
//! of the pod joins them (`spec::NamespaceMode::Join`); unmounting the pins (after the containers
//! are gone) frees them. The loopback interface of the new network namespace is brought up.
//!
//! Layout and mount semantics (the same trick as iproute2's `ip netns add`, which turns
//! `/run/netns` into a mount point of its own before pinning anything in it):
//!
//! * `dir/ns` is made a bind mount of itself and marked `MS_PRIVATE`. Pins made under it then
//!   never propagate to peer mount namespaces, whatever the propagation of the file system that
//!   holds `dir` (systemd makes `/` shared): a propagated copy of a pin in some other mount
//!   namespace would keep the namespace alive after `remove`, and binding nsfs files into some
//!   shared trees is refused by the kernel.
//! * `dir/ns/{net,ipc,uts}` are empty files with the namespace files bind-mounted on them. The
//!   mounts live in the host's mount namespace, so they outlive the process that made them.
//! * A pin is recognised by its file system type (nsfs) — an unmounted pin is a plain empty
//!   file — so `create` after a crash or an agent restart keeps what exists and makes only the
//!   missing namespaces.
//! * `dir/ns/.lock` (flock) serialises `create` and `remove` of one sandbox across processes.
//!
//! hostNetwork: no network namespace is made (`net` is None, there is no `dir/ns/net`) and the
//! `uts` pin is a bind of the caller's own UTS namespace, so containers joining it see the node's
//! hostname and the agent can treat both kinds of sandbox alike. The pod still gets an IPC
//! namespace of its own (hostIPC is the agent's choice: `NamespaceMode::Host`).

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::error::IoContext;
use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxNamespaces {
    /// None with host networking.
    pub net: Option<PathBuf>,
    pub ipc: PathBuf,
    pub uts: PathBuf,
}

/// Kernel limit for a hostname (`__NEW_UTS_LEN`).
const MAX_HOSTNAME: usize = 64;
/// Bound on unmount loops, should pins ever have been stacked on one file.
const MAX_STACKED: usize = 16;

/// Creates the namespaces under `dir` (`dir/ns/{net,ipc,uts}`); idempotent: pins that already
/// exist are kept (an agent restart re-adopts them). With `host_network`, no network namespace
/// is made and the UTS namespace keeps the host's name (Kubernetes: hostNetwork pods see the
/// node's hostname); `hostname` is then ignored.
pub fn create(dir: &Path, hostname: &str, host_network: bool) -> Result<SandboxNamespaces> {
    if !host_network {
        validate_hostname(hostname)?;
    }
    let ns_dir = dir.join("ns");
    fs::create_dir_all(&ns_dir)
        .ctx(|| format!("creating sandbox directory {}", ns_dir.display()))?;
    let _lock = lock(&ns_dir)?;
    let created = create_locked(dir, &ns_dir, hostname, host_network);
    if created.is_err() {
        // Leave nothing mounted behind a failure that pinned nothing (the caller may never
        // call `remove` for a sandbox it could not create); pins that exist are kept for the
        // retry, like the ones of a running pod.
        let any_pinned = ["net", "ipc", "uts"]
            .iter()
            .any(|n| is_pinned(&ns_dir.join(n)).unwrap_or(true));
        if !any_pinned && let Err(e) = teardown(&ns_dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cleaning up a failed sandbox failed");
        }
    }
    created
}

fn create_locked(
    dir: &Path,
    ns_dir: &Path,
    hostname: &str,
    host_network: bool,
) -> Result<SandboxNamespaces> {
    let started = std::time::Instant::now();
    make_private_mount(ns_dir)?;

    let net = ns_dir.join("net");
    let ipc = ns_dir.join("ipc");
    let uts = ns_dir.join("uts");
    let net_pinned = is_pinned(&net)?;
    let ipc_pinned = is_pinned(&ipc)?;
    let uts_pinned = is_pinned(&uts)?;
    if uts_pinned {
        let host_uts = is_callers_uts(&uts)?;
        if host_uts != host_network {
            return Err(Error::Invalid(format!(
                "sandbox {} was created {} host networking; it cannot be reused {}",
                dir.display(),
                if host_uts { "with" } else { "without" },
                if host_network {
                    "with hostNetwork"
                } else {
                    "without hostNetwork"
                },
            )));
        }
    }
    if host_network && (net_pinned || net.exists()) {
        return Err(Error::Invalid(format!(
            "sandbox {} has a network namespace of its own; it cannot be reused with hostNetwork",
            dir.display()
        )));
    }

    // Every pin file is created before any namespace is pinned: `existing` relies on a
    // non-hostNetwork sandbox always having `net` once `ipc` and `uts` are pinned.
    let mut todo = Vec::new();
    if !host_network && !net_pinned {
        todo.push((Kind::Net, net.clone()));
    }
    if !ipc_pinned {
        todo.push((Kind::Ipc, ipc.clone()));
    }
    if !uts_pinned {
        todo.push((
            if host_network {
                Kind::HostUts
            } else {
                Kind::Uts
            },
            uts.clone(),
        ));
    }
    for (_, path) in &todo {
        create_pin_file(path)?;
    }
    if !todo.is_empty() {
        let hostname = hostname.to_owned();
        let dir_name = dir.display().to_string();
        // A dedicated thread: unshare changes the namespaces of the calling thread, which must
        // then die rather than go back to a pool where other work would run in the pod's
        // namespaces.
        let made = std::thread::Builder::new()
            .name("rkube-sandbox".into())
            .spawn(move || pin_new_namespaces(&todo, &hostname))
            .ctx(|| format!("spawning the namespace thread for sandbox {dir_name}"))?
            .join()
            .map_err(|_| {
                Error::Network(format!("namespace thread for sandbox {dir_name} panicked"))
            })?;
        made.map_err(|e| match e {
            Error::Network(m) => Error::Network(format!("sandbox {}: {m}", dir.display())),
            other => other,
        })?;
        tracing::debug!(dir = %dir.display(), elapsed = ?started.elapsed(), "sandbox namespaces pinned");
    }
    Ok(SandboxNamespaces {
        net: (!host_network).then_some(net),
        ipc,
        uts,
    })
}

/// The pinned namespaces of an existing sandbox, if it is complete.
pub fn existing(dir: &Path) -> Option<SandboxNamespaces> {
    let ns_dir = dir.join("ns");
    let net = ns_dir.join("net");
    let ipc = ns_dir.join("ipc");
    let uts = ns_dir.join("uts");
    if !is_pinned(&ipc).ok()? || !is_pinned(&uts).ok()? {
        return None;
    }
    if is_pinned(&net).ok()? {
        return Some(SandboxNamespaces {
            net: Some(net),
            ipc,
            uts,
        });
    }
    // No network pin: complete only as a hostNetwork sandbox (no `net` file at all, and the
    // UTS pin is the node's own).
    if !net.exists() && is_callers_uts(&uts).ok()? {
        return Some(SandboxNamespaces {
            net: None,
            ipc,
            uts,
        });
    }
    None
}

/// Unmounts the pins and removes `dir/ns`. Idempotent.
pub fn remove(dir: &Path) -> Result<()> {
    let ns_dir = dir.join("ns");
    if fs::symlink_metadata(&ns_dir).is_err() {
        return Ok(());
    }
    let _lock = lock(&ns_dir)?;
    teardown(&ns_dir)
}

/// Unmounts everything in and on `ns_dir` and deletes it; the caller holds the lock.
fn teardown(ns_dir: &Path) -> Result<()> {
    for name in ["net", "ipc", "uts"] {
        let pin = ns_dir.join(name);
        for _ in 0..MAX_STACKED {
            if !is_pinned(&pin)? {
                break;
            }
            if !detach(&pin)? {
                break;
            }
        }
    }
    for _ in 0..MAX_STACKED {
        if !is_mount_point(ns_dir)? {
            break;
        }
        if !detach(ns_dir)? {
            break;
        }
    }
    match fs::remove_dir_all(ns_dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(
            format!("removing sandbox namespaces {}", ns_dir.display()),
            e,
        )),
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Net,
    Ipc,
    Uts,
    /// Pin the caller's UTS namespace instead of a new one (hostNetwork).
    HostUts,
}

impl Kind {
    fn proc_name(self) -> &'static str {
        match self {
            Kind::Net => "net",
            Kind::Ipc => "ipc",
            Kind::Uts | Kind::HostUts => "uts",
        }
    }
}

/// Runs on the dedicated thread: unshares what `todo` needs, configures it, pins it.
fn pin_new_namespaces(todo: &[(Kind, PathBuf)], hostname: &str) -> Result<()> {
    let mut flags = CloneFlags::empty();
    for (kind, _) in todo {
        flags |= match kind {
            Kind::Net => CloneFlags::CLONE_NEWNET,
            Kind::Ipc => CloneFlags::CLONE_NEWIPC,
            Kind::Uts => CloneFlags::CLONE_NEWUTS,
            Kind::HostUts => CloneFlags::empty(),
        };
    }
    if !flags.is_empty() {
        nix::sched::unshare(flags)
            .map_err(|e| Error::Network(format!("unshare({flags:?}) failed: {e}")))?;
    }
    for (kind, _) in todo {
        match kind {
            Kind::Uts => nix::unistd::sethostname(hostname).map_err(|e| {
                Error::Network(format!("setting hostname {hostname:?} failed: {e}"))
            })?,
            Kind::Net => {
                loopback_up().map_err(|e| Error::Network(format!("bringing up lo failed: {e}")))?
            }
            Kind::Ipc | Kind::HostUts => {}
        }
    }
    for (kind, pin) in todo {
        let source = PathBuf::from(format!("/proc/thread-self/ns/{}", kind.proc_name()));
        nix::mount::mount(
            Some(&source),
            pin,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| {
            Error::Network(format!(
                "pinning {} on {} failed: {e}",
                source.display(),
                pin.display()
            ))
        })?;
    }
    Ok(())
}

fn validate_hostname(hostname: &str) -> Result<()> {
    let ok = !hostname.is_empty()
        && hostname.len() <= MAX_HOSTNAME
        && hostname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid pod hostname {hostname:?}: want 1-{MAX_HOSTNAME} characters of [A-Za-z0-9._-]"
        )))
    }
}

/// An exclusive flock on `ns_dir/.lock`, retried if `remove` deleted the directory (and with it
/// the locked file) while we waited.
fn lock(ns_dir: &Path) -> Result<Flock<File>> {
    let path = ns_dir.join(".lock");
    loop {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .ctx(|| format!("opening sandbox lock {}", path.display()))?;
        let locked = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::io(format!("locking {}", path.display()), e.into()))?;
        let held = locked
            .metadata()
            .ctx(|| format!("stat {}", path.display()))?;
        match fs::metadata(&path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => return Ok(locked),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Removed under us: recreate the directory, then the lock.
                fs::create_dir_all(ns_dir).ctx(|| format!("creating {}", ns_dir.display()))?;
                continue;
            }
            Err(e) => return Err(Error::io(format!("stat {}", path.display()), e)),
        }
    }
}

/// Makes `ns_dir` a private mount point (bind of itself) unless it already is one.
fn make_private_mount(ns_dir: &Path) -> Result<()> {
    if !is_mount_point(ns_dir)? {
        nix::mount::mount(
            Some(ns_dir),
            ns_dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| {
            Error::Network(format!(
                "bind-mounting {} on itself failed: {e}",
                ns_dir.display()
            ))
        })?;
    }
    nix::mount::mount(
        None::<&str>,
        ns_dir,
        None::<&str>,
        MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| {
        Error::Network(format!(
            "making {} a private mount failed: {e}",
            ns_dir.display()
        ))
    })
}

fn create_pin_file(path: &Path) -> Result<()> {
    match OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o444)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::io(
            format!("creating namespace pin {}", path.display()),
            e,
        )),
    }
}

/// Lazily unmounts `path`; false when it was not a mount point.
fn detach(path: &Path) -> Result<bool> {
    match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => Ok(false),
        Err(e) => Err(Error::Network(format!(
            "unmounting {} failed: {e}",
            path.display()
        ))),
    }
}

fn cstring(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Path {
        path: path.to_owned(),
        message: "path contains a NUL byte".into(),
    })
}

/// True when `path` is a namespace file (a mounted pin or a /proc ns link); false when it is
/// missing or anything else.
pub(crate) fn is_pinned(path: &Path) -> Result<bool> {
    let c = cstring(path)?;
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid NUL-terminated path and a properly sized out buffer.
    if unsafe { libc::statfs(c.as_ptr(), &mut buf) } != 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::NotFound => Ok(false),
            _ => Err(Error::io(format!("statfs {}", path.display()), e)),
        };
    }
    // f_type's and the constant's widths differ between architectures.
    #[allow(clippy::unnecessary_cast)]
    let nsfs = buf.f_type as i64 == libc::NSFS_MAGIC as i64;
    Ok(nsfs)
}

/// Whether the namespace pinned at `uts` is the calling thread's own UTS namespace.
fn is_callers_uts(uts: &Path) -> Result<bool> {
    let pin = fs::metadata(uts).ctx(|| format!("stat {}", uts.display()))?;
    let own = fs::metadata("/proc/thread-self/ns/uts")
        .ctx(|| "stat /proc/thread-self/ns/uts".to_string())?;
    Ok(pin.dev() == own.dev() && pin.ino() == own.ino())
}

/// Whether `path` is the root of a mount in this mount namespace, per /proc/self/mountinfo.
fn is_mount_point(path: &Path) -> Result<bool> {
    let canonical = fs::canonicalize(path).ctx(|| format!("resolving {}", path.display()))?;
    let info = fs::read_to_string("/proc/self/mountinfo")
        .ctx(|| "reading /proc/self/mountinfo".to_string())?;
    let want = canonical.as_os_str().as_bytes();
    Ok(info.lines().any(|line| {
        line.split(' ')
            .nth(4)
            .is_some_and(|mount_point| unescape_mountinfo(mount_point) == want)
    }))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') as u32 * 64
                + (bytes[i + 2] - b'0') as u32 * 8
                + (bytes[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn inet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.is_empty() || name.len() >= req.ifr_name.len() || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?}"),
        ));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

/// `ip link set lo up` through SIOCSIFFLAGS on a socket of the current thread's netns.
fn loopback_up() -> io::Result<()> {
    let sock = inet_socket()?;
    let mut req = ifreq("lo")?;
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write an ifreq, which `req` is.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) != 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The primary IPv4 address of `ifname` inside the network namespace pinned at `netns`
/// (None when the interface is missing or has no IPv4 address). Runs on a throwaway thread,
/// because setns moves the calling thread.
pub(crate) fn interface_ipv4(netns: &Path, ifname: &str) -> Result<Option<Ipv4Addr>> {
    let ns = File::open(netns).ctx(|| format!("opening network namespace {}", netns.display()))?;
    let ifname = ifname.to_owned();
    let netns_name = netns.display().to_string();
    std::thread::Builder::new()
        .name("rkube-netns-probe".into())
        .spawn(move || -> Result<Option<Ipv4Addr>> {
            nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| {
                Error::Network(format!(
                    "entering network namespace {netns_name} failed: {e}"
                ))
            })?;
            let sock = inet_socket().ctx(|| format!("socket in {netns_name}"))?;
            let mut req = ifreq(&ifname).map_err(|e| Error::Invalid(e.to_string()))?;
            // SAFETY: SIOCGIFADDR fills the ifreq's sockaddr union member.
            let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFADDR, &mut req) };
            if rc != 0 {
                let e = io::Error::last_os_error();
                return match e.raw_os_error() {
                    Some(libc::ENODEV) | Some(libc::EADDRNOTAVAIL) => Ok(None),
                    _ => Err(Error::io(
                        format!("reading the address of {ifname} in {netns_name}"),
                        e,
                    )),
                };
            }
            // SAFETY: for AF_INET the kernel stored a sockaddr_in in the union.
            let addr = unsafe {
                let sa =
                    &req.ifr_ifru.ifru_addr as *const libc::sockaddr as *const libc::sockaddr_in;
                (*sa).sin_addr.s_addr
            };
            Ok(Some(Ipv4Addr::from(u32::from_be(addr))))
        })
        .ctx(|| "spawning the network namespace probe thread".to_string())?
        .join()
        .map_err(|_| Error::Network("network namespace probe thread panicked".into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(r"/a\040b\134c"), b"/a b\\c".to_vec());
        assert_eq!(unescape_mountinfo(r"/plain"), b"/plain".to_vec());
        assert_eq!(unescape_mountinfo(r"/trail\04"), b"/trail\\04".to_vec());
    }

    #[test]
    fn hostnames() {
        assert!(validate_hostname("web-0.svc").is_ok());
        assert!(validate_hostname("").is_err());
        assert!(validate_hostname("a b").is_err());
        assert!(validate_hostname(&"x".repeat(65)).is_err());
        assert!(validate_hostname(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn bad_hostname_is_rejected_before_touching_anything() {
        let dir = std::env::temp_dir().join(format!("rkube-sandbox-unit-{}", std::process::id()));
        assert!(matches!(
            create(&dir, "bad name", false),
            Err(Error::Invalid(_))
        ));
        assert!(!dir.exists());
    }

    #[test]
    fn missing_sandbox() {
        let dir = Path::new("/nonexistent/rkube-sandbox");
        assert_eq!(existing(dir), None);
        remove(dir).unwrap();
    }
}
