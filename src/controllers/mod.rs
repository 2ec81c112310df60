//! Control loops. They run only on the Raft leader: started when this master becomes leader and
//! aborted the moment it is not (invariant 7). Every write they make is conditional on the
//! revision they read, so a loop that has not yet noticed it lost leadership cannot clobber the
//! new leader's work.

pub mod namespace;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::api::Api;

/// Watches leadership and starts/stops the leader-only loops.
pub fn spawn_leader_loops(api: Arc<Api>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut state = api.node.state_watch();
        let mut running: Vec<JoinHandle<()>> = Vec::new();
        loop {
            let leader = api.node.is_leader();
            if leader && running.is_empty() {
                tracing::info!("became leader: starting control loops");
                running = start(api.clone());
            } else if !leader && !running.is_empty() {
                tracing::info!("lost leadership: stopping control loops");
                for t in running.drain(..) {
                    t.abort();
                }
            }
            if !state.changed().await {
                for t in running.drain(..) {
                    t.abort();
                }
                return;
            }
        }
    })
}

fn start(api: Arc<Api>) -> Vec<JoinHandle<()>> {
    let bootstrap = {
        let api = api.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(100);
            loop {
                match crate::api::bootstrap::ensure_defaults(&api).await {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(error = %e, "bootstrap objects not created yet; retrying"),
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        })
    };
    vec![bootstrap, tokio::spawn(namespace::run(api))]
}
