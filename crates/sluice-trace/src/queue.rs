//! The hand-off from workers to the export thread: a bounded lock-free queue of recorded
//! requests. A worker's push is one queue slot and, only when a batch is full, a wake-up;
//! when the queue is full the span is dropped and counted, never waited for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use sluice_observe::trace::SpanSink;
use sluice_observe::RequestRecord;
use sluice_stats::Counter;
use tokio::sync::Notify;

/// Envoy's OpenTelemetry tracer counters (`tracing.opentelemetry.*`).
#[derive(Debug)]
pub struct Stats {
    /// Spans the collector accepted.
    pub spans_sent: Arc<Counter>,
    /// Spans dropped because the queue was full.
    pub spans_dropped: Arc<Counter>,
    /// Exports that failed (connection, timeout, non-OK status); their spans are lost.
    pub export_failures: Arc<Counter>,
    /// Exports started by `flush_interval` rather than by a full batch.
    pub timer_flushed: Arc<Counter>,
}

impl Stats {
    pub fn new() -> Stats {
        let scope = sluice_stats::Scope::new("tracing.opentelemetry");
        Stats {
            spans_sent: scope.counter("spans_sent"),
            spans_dropped: scope.counter("spans_dropped"),
            export_failures: scope.counter("export_failures"),
            timer_flushed: scope.counter("timer_flushed"),
        }
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

/// Recorded requests waiting for export.
pub struct Queue {
    items: ArrayQueue<Arc<RequestRecord>>,
    max_batch: usize,
    /// Wakes the export loop when a batch is full.
    pub(crate) full: Notify,
    /// Asks the export loop to export everything queued and stop (the process is exiting).
    pub(crate) stop: Notify,
    /// Set by the export loop once it has.
    pub(crate) finished: AtomicBool,
    pub stats: Stats,
}

impl Queue {
    pub fn new(capacity: usize, max_batch: usize) -> Queue {
        Queue {
            items: ArrayQueue::new(capacity.max(1)),
            max_batch: max_batch.max(1),
            full: Notify::new(),
            stop: Notify::new(),
            finished: AtomicBool::new(false),
            stats: Stats::new(),
        }
    }

    /// At exit: has the export thread send what is queued, waiting at most `limit` (a
    /// collector that is down loses them, as it would have anyway).
    pub fn finish(&self, limit: Duration) {
        self.stop.notify_one();
        let end = Instant::now() + limit;
        while !self.finished.load(Ordering::Acquire) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Up to `max_batch` records, oldest first.
    pub fn take_batch(&self) -> Vec<Arc<RequestRecord>> {
        let n = self.items.len().min(self.max_batch);
        let mut batch = Vec::with_capacity(n);
        while batch.len() < self.max_batch {
            match self.items.pop() {
                Some(r) => batch.push(r),
                None => break,
            }
        }
        batch
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl SpanSink for Queue {
    fn push(&self, record: &Arc<RequestRecord>) {
        if self.items.push(record.clone()).is_err() {
            self.stats.spans_dropped.inc();
        } else if self.items.len() >= self.max_batch {
            self.full.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_observe::Protocol;

    use super::*;

    #[test]
    fn full_queue_drops_and_counts() {
        let q = Queue::new(2, 2);
        let r = Arc::new(RequestRecord::new(Protocol::Http11, Arc::from("l")));
        let before = q.stats.spans_dropped.get();
        for _ in 0..3 {
            q.push(&r);
        }
        assert_eq!(q.stats.spans_dropped.get() - before, 1);
        assert_eq!(q.take_batch().len(), 2);
        assert!(q.is_empty());
    }
}
