//! Which per-worker slot a metric update lands in.
//!
//! Every counter, gauge and histogram holds one cache-line-padded slot per shard, so workers
//! bumping the same counter never write the same cache line; a read sums the slots. Shard 0
//! is shared by every thread that is not a worker (the admin, the control runtime, tests);
//! workers take shards 1.. in the order they call [`set_worker_shard`]. The number of shards
//! is fixed the first time it is read, so every metric has the same layout.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

static SHARDS: OnceLock<usize> = OnceLock::new();
static NEXT_WORKER: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(0) };
}

/// Fixes the shard count for `workers` worker threads (one shard each plus the shared one).
/// Call before any metric is made; later calls, and calls after a metric was made, keep the
/// count already in force. Returns the count in force.
pub fn init(workers: usize) -> usize {
    *SHARDS.get_or_init(|| workers.max(1) + 1)
}

/// The shard count: as [`init`] fixed it, or the machine's parallelism plus one.
pub fn shards() -> usize {
    *SHARDS.get_or_init(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get) + 1
    })
}

/// Gives the calling thread its own shard; called by each worker thread as it starts. Past
/// the shard count, workers share shards round-robin (still correct, only less spread).
pub fn set_worker_shard() {
    let n = shards();
    let worker = NEXT_WORKER.fetch_add(1, Ordering::Relaxed);
    let shard = if n > 1 { 1 + worker % (n - 1) } else { 0 };
    SHARD.with(|s| s.set(shard));
}

/// The calling thread's shard: always below [`shards`].
#[inline]
pub(crate) fn current() -> usize {
    SHARD.with(Cell::get)
}

/// A value alone on its cache line (two lines on x86-64, whose prefetcher pulls pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub T);

/// One padded slot per shard.
pub(crate) fn slots<T: Default>() -> Box<[Padded<T>]> {
    (0..shards()).map(|_| Padded::default()).collect()
}

/// The calling thread's slot among `slots` (the first if the layout is somehow shorter).
#[inline]
pub(crate) fn mine<T>(slots: &[Padded<T>]) -> &T {
    match slots.get(current()) {
        Some(p) => &p.0,
        None => &slots[0].0,
    }
}
