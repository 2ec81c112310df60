//! Control loops. They run only on the Raft leader: started when this master becomes leader and
//! aborted the moment it is not (invariant 7). Every write they make is conditional on the
//! revision they read, so a loop that has not yet noticed it lost leadership cannot clobber the
//! new leader's work.

pub mod client;
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
        let mut ctx: Option<Arc<controllers::Ctx>> = None;
        let stop = |running: &mut Vec<JoinHandle<()>>, ctx: &mut Option<Arc<controllers::Ctx>>| {
            for t in running.drain(..) {
                t.abort();
            }
            if let Some(c) = ctx.take() {
                c.informers.stop_all();
            }
        };
        loop {
            let leader = api.node.is_leader();
            if leader && running.is_empty() {
                tracing::info!("became leader: starting the scheduler and controllers");
                let c = controllers::Ctx::new(Arc::new(client::ApiClient { api: api.clone() }), api.controller_config.clone());
                running = start(api.clone());
                // The scheduler and controllers get their own threads: under a storm of API
                // requests they still get their share of the CPU and keep up.
                let _guard = controllers_runtime().enter();
                running.extend(controllers::start_all(c.clone()));
                ctx = Some(c);
            } else if !leader && !running.is_empty() {
                tracing::info!("lost leadership: stopping the scheduler and controllers");
                stop(&mut running, &mut ctx);
            }
            if !state.changed().await {
                stop(&mut running, &mut ctx);
                return;
            }
        }
    })
}

fn controllers_runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("controllers")
            .enable_all()
            .build()
            .expect("building the controllers runtime")
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
