//! Doing network work inside the node's pod-network namespace (when the agent is configured
//! with one): a dedicated thread enters it and runs the work there, so sockets it opens and
//! processes it spawns (CNI plugins, `ip`) belong to that namespace. Without one, the work runs
//! in place.

use std::future::Future;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// Runs `work` in the network namespace at `netns` (or right here for None).
pub async fn run_in<T, F, Fut>(netns: Option<&Path>, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    let Some(path) = netns else {
        return Ok(work().await);
    };
    let path: PathBuf = path.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            let out = (|| -> Result<T> {
                let f = std::fs::File::open(&path).map_err(|e| Error::io(format!("opening the pod network namespace {}", path.display()), e))?;
                nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| Error::Config(format!("entering the pod network namespace {}: {e}", path.display())))?;
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| Error::io("starting a runtime in the pod network namespace", e))?;
                Ok(rt.block_on(work()))
            })();
            let _ = tx.send(out);
        })
        .map_err(|e| Error::io("spawning a thread for the pod network namespace", e))?;
    rx.await.map_err(|_| Error::Config("the pod network namespace thread died".into()))?
}

/// A TCP connection opened from inside `netns` (probes reach pod IPs through it).
pub async fn connect(netns: Option<&Path>, addr: std::net::SocketAddr, timeout: Duration) -> Result<tokio::net::TcpStream> {
    let std_stream = run_in(netns, move || async move {
        let s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
        s.set_nonblocking(true)?;
        Ok::<_, std::io::Error>(s)
    })
    .await?
    .map_err(|e| Error::io(format!("dial tcp {addr}"), e))?;
    tokio::net::TcpStream::from_std(std_stream).map_err(|e| Error::io(format!("dial tcp {addr}"), e))
}
