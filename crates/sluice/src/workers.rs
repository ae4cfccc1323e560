//! The data-plane threads, in one of two shapes (see docs/architecture.md for the measurements
//! behind the default):
//!
//! - work stealing (default): one tokio multi-thread runtime with `workers` threads; a
//!   connection may move to an idle thread, so a few heavy connections cannot pin one core
//!   while another idles. With `workers: 1` it is a current-thread runtime.
//! - per core: `workers` current-thread runtimes on their own threads, each accepting from
//!   its own `SO_REUSEPORT` socket; no cross-thread wakeups, but no rebalancing either.

use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use sluice_config::WorkerMode;
use tokio::runtime::{Builder, Handle, Runtime};
use tokio_util::sync::CancellationToken;

pub enum Workers {
    Shared(Runtime),
    PerCore {
        handles: Vec<Handle>,
        threads: Vec<JoinHandle<()>>,
        stop: CancellationToken,
    },
}

impl Workers {
    pub fn start(n: usize, mode: WorkerMode) -> anyhow::Result<Workers> {
        // One metrics shard per worker, fixed before any metric is made.
        sluice_stats::init(n);
        if n > 1 && mode == WorkerMode::WorkStealing {
            let rt = Builder::new_multi_thread()
                .worker_threads(n)
                .enable_all()
                .thread_name("sluice-worker")
                .on_thread_start(sluice_stats::set_worker_shard)
                .build()
                .context("cannot start the worker runtime")?;
            return Ok(Workers::Shared(rt));
        }
        // `workers: 1` in either mode is one current-thread runtime on its own thread.
        Self::per_core(n)
    }

    fn per_core(n: usize) -> anyhow::Result<Workers> {
        let stop = CancellationToken::new();
        let mut handles = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let rt = Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start a worker runtime")?;
            handles.push(rt.handle().clone());
            let stop = stop.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("sluice-worker-{i}"))
                    .spawn(move || {
                        sluice_stats::set_worker_shard();
                        rt.block_on(stop.cancelled());
                        rt.shutdown_timeout(Duration::from_millis(100));
                    })
                    .context("cannot start a worker thread")?,
            );
        }
        Ok(Workers::PerCore {
            handles,
            threads,
            stop,
        })
    }

    /// How many runtimes accept connections (each needs its own listening sockets).
    pub fn runtimes(&self) -> usize {
        match self {
            Workers::Shared(_) => 1,
            Workers::PerCore { handles, .. } => handles.len(),
        }
    }

    pub fn handle(&self, i: usize) -> &Handle {
        match self {
            Workers::Shared(rt) => rt.handle(),
            Workers::PerCore { handles, .. } => &handles[i % handles.len()],
        }
    }

    /// Stops every worker, cutting whatever connections are still open.
    pub fn stop(self) {
        match self {
            Workers::Shared(rt) => rt.shutdown_timeout(Duration::from_millis(100)),
            Workers::PerCore { threads, stop, .. } => {
                stop.cancel();
                for t in threads {
                    let _ = t.join();
                }
            }
        }
    }
}
