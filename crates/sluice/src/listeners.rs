//! The listeners being served, and the three things a config change does to one: start it,
//! give its new connections a new generation of chains (the old generation drains), or stop
//! it (close its sockets, drain its connections).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use sluice_config::ListenerConfig;
use sluice_net::{BoundListener, Generation, ListenerChains};
use tokio::runtime::Handle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

struct Running {
    config: ListenerConfig,
    /// The address as bound (the port the kernel chose for `:0`).
    shown: String,
    current: Arc<ArcSwap<Generation>>,
    /// Stops this listener's accept loops; its generations' drain tokens are its children.
    stop: CancellationToken,
    loops: TaskTracker,
}

pub struct Listeners {
    running: Vec<Running>,
    /// One runtime per accepting worker (see `Workers::runtimes`).
    runtimes: Vec<Handle>,
    /// The process's drain: every listener's `stop` is its child.
    stop_accepting: CancellationToken,
    /// Every connection of every listener, for the process's drain.
    pub connections: TaskTracker,
    /// Every accept loop.
    pub accept_loops: TaskTracker,
}

impl Listeners {
    pub fn new(runtimes: Vec<Handle>) -> Listeners {
        Listeners {
            running: Vec::new(),
            runtimes,
            stop_accepting: CancellationToken::new(),
            connections: TaskTracker::new(),
            accept_loops: TaskTracker::new(),
        }
    }

    /// Binds `l`'s sockets: one, or one per worker in per-core mode.
    pub fn bind(&self, l: &ListenerConfig) -> anyhow::Result<Vec<BoundListener>> {
        Ok(match self.runtimes.len() {
            1 => vec![sluice_net::bind(l)?],
            n => sluice_net::bind_per_worker(l, n)?,
        })
    }

    /// Serves `l` on `sockets` with `chains`. Accepting starts in the returned task, once
    /// the chains' secrets are all there or `warm_until` passed; meanwhile clients wait in
    /// the accept backlog.
    pub fn add(
        &mut self,
        l: &ListenerConfig,
        sockets: Vec<BoundListener>,
        chains: ListenerChains,
        warm_until: Option<Instant>,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let shown = sockets
            .first()
            .and_then(|s| s.local_addr().ok())
            .map_or_else(|| l.address.to_string(), |a| a.to_string());
        info!(listener = %l.name, address = %shown, sockets = sockets.len(), "listener bound");
        let mut listeners = Vec::with_capacity(sockets.len());
        for (i, socket) in sockets.into_iter().enumerate() {
            let rt = self.runtimes[i % self.runtimes.len()].clone();
            let listener = {
                let _enter = rt.enter();
                socket
                    .into_listener()
                    .with_context(|| format!("listener \"{}\": cannot register socket", l.name))?
            };
            listeners.push((rt, listener));
        }
        let stop = self.stop_accepting.child_token();
        let current = Arc::new(ArcSwap::from_pointee(Generation::new(chains, &stop)));
        let loops = TaskTracker::new();
        let name: Arc<str> = l.name.as_str().into();
        let task = {
            let (current, stop, loops) = (current.clone(), stop.clone(), loops.clone());
            let (all_loops, connections) = (self.accept_loops.clone(), self.connections.clone());
            tokio::spawn(async move {
                if let Some(deadline) = warm_until {
                    let ready = current.load_full().chains.clone();
                    if tokio::time::timeout_at(deadline, ready.ready())
                        .await
                        .is_err()
                    {
                        warn!(listener = %name, missing = ?ready.missing_secrets(), "initial_fetch_timeout passed before these secrets arrived; serving: handshakes that need them fail until they do");
                    }
                }
                for (rt, listener) in listeners {
                    let serve = sluice_net::serve(
                        name.clone(),
                        listener,
                        current.clone(),
                        stop.clone(),
                        connections.clone(),
                    );
                    all_loops.spawn_on(loops.track_future(serve), &rt);
                }
                loops.close();
            })
        };
        self.running.push(Running {
            config: l.clone(),
            shown,
            current,
            stop,
            loops,
        });
        Ok(task)
    }

    /// Whether `new` can take over `name`'s sockets: same address and socket options.
    pub fn same_sockets(&self, name: &str, new: &ListenerConfig) -> bool {
        self.find(name).is_some_and(|r| {
            let old = &r.config;
            old.address == new.address
                && old.reuse_port == new.reuse_port
                && old.backlog == new.backlog
                && old.socket_mode == new.socket_mode
        })
    }

    /// The process's drain (or `/drain_listeners`): every listener stops accepting and
    /// every connection is told to finish.
    pub fn stop_accepting(&self) {
        self.stop_accepting.cancel();
    }

    /// Whether a running listener is bound to `address` (`:0` binds a new port each time).
    pub fn serves_address(&self, address: &sluice_config::Address) -> bool {
        let any_port = address.as_tcp().is_some_and(|a| a.port() == 0);
        !any_port && self.running.iter().any(|r| &r.config.address == address)
    }

    /// New connections of `name` get `chains`; those already open drain and are cut after
    /// `drain_timeout`.
    pub fn replace(&mut self, l: &ListenerConfig, chains: ListenerChains, drain_timeout: Duration) {
        let Some(r) = self.running.iter_mut().find(|r| r.config.name == l.name) else {
            return;
        };
        let old = r.current.swap(Arc::new(Generation::new(chains, &r.stop)));
        r.config = l.clone();
        let name = l.name.clone();
        tokio::spawn(async move {
            old.retire(drain_timeout).await;
            info!(listener = %name, "connections of the replaced listener config drained");
        });
    }

    /// Stops `name`: its sockets close (new connections are refused), its connections
    /// drain and are cut after `drain_timeout`. Returns once the sockets are closed.
    pub async fn remove(&mut self, name: &str, drain_timeout: Duration) {
        let Some(i) = self.running.iter().position(|r| r.config.name == name) else {
            return;
        };
        let r = self.running.remove(i);
        r.stop.cancel();
        r.loops.wait().await;
        info!(listener = %name, address = %r.shown, "listener closed");
        let generation = r.current.load_full();
        let name = name.to_string();
        tokio::spawn(async move {
            generation.retire(drain_timeout).await;
            info!(listener = %name, "connections of the removed listener drained");
        });
    }

    fn find(&self, name: &str) -> Option<&Running> {
        self.running.iter().find(|r| r.config.name == name)
    }

    /// `(name, address)` of each listener, for the admin's `/listeners`.
    pub fn addresses(&self) -> Vec<(String, String)> {
        self.running
            .iter()
            .map(|r| (r.config.name.clone(), r.shown.clone()))
            .collect()
    }
}
