//! The OTLP exporter: the listeners' tracers push recorded requests into a bounded
//! [`Queue`]; a thread of its own (one current-thread runtime) turns them into spans and
//! exports them every `flush_interval`, or as soon as `max_batch` are waiting. Conversion,
//! encoding and I/O never touch a worker, and a slow or absent collector costs the workers
//! nothing: the queue fills and further spans are dropped and counted.

pub mod proto;
pub mod queue;
pub mod span;
pub mod transport;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_config::TracingConfig;
use tracing::{debug, warn};

pub use queue::{Queue, Stats};

use crate::proto::{
    ExportTraceServiceRequest, InstrumentationScope, KeyValue, Resource, ResourceSpans, ScopeSpans,
};
use crate::transport::Transport;

/// Failures are logged at most this often (with the count since the last line).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Starts the export thread; the returned queue is the listeners' [`SpanSink`].
///
/// [`SpanSink`]: sluice_observe::trace::SpanSink
pub fn start(config: &TracingConfig, node_id: &str) -> Result<Arc<Queue>, String> {
    let queue = Arc::new(Queue::new(
        config.queue_size as usize,
        config.max_batch as usize,
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tracing runtime: {e}"))?;
    let transport = {
        let _enter = runtime.enter();
        Transport::new(&config.otlp)?
    };
    let exporter = Exporter {
        queue: queue.clone(),
        transport,
        resource: resource(&config.service_name, node_id),
        node_id: node_id.to_string(),
        flush_interval: config.flush_interval,
        timeout: config.timeout,
        failures_unlogged: 0,
        last_log: None,
    };
    std::thread::Builder::new()
        .name("sluice-trace".into())
        .spawn(move || runtime.block_on(exporter.run()))
        .map_err(|e| format!("cannot start the tracing thread: {e}"))?;
    Ok(queue)
}

fn resource(service: &str, node_id: &str) -> Resource {
    Resource {
        attributes: vec![
            KeyValue::new("service.name", service),
            KeyValue::new("service.instance.id", node_id),
        ],
    }
}

struct Exporter {
    queue: Arc<Queue>,
    transport: Transport,
    resource: Resource,
    node_id: String,
    flush_interval: Duration,
    timeout: Duration,
    failures_unlogged: u64,
    last_log: Option<Instant>,
}

impl Exporter {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(self.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let timer = tokio::select! {
                _ = tick.tick() => true,
                _ = self.queue.full.notified() => false,
                _ = self.queue.stop.notified() => {
                    while !self.queue.is_empty() {
                        self.drain().await;
                    }
                    self.queue
                        .finished
                        .store(true, std::sync::atomic::Ordering::Release);
                    return;
                }
            };
            if timer && !self.queue.is_empty() {
                self.queue.stats.timer_flushed.inc();
            }
            self.drain().await;
        }
    }

    /// Exports batches until the queue holds less than a full one.
    async fn drain(&mut self) {
        loop {
            let batch = self.queue.take_batch();
            if batch.is_empty() {
                return;
            }
            let full = batch.len() == self.queue.max_batch();
            let spans: Vec<_> = batch
                .iter()
                .filter_map(|r| span::span(r, &self.node_id))
                .collect();
            drop(batch);
            let n = spans.len() as u64;
            let request = ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(self.resource.clone()),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "sluice".into(),
                            version: env!("CARGO_PKG_VERSION").into(),
                        }),
                        spans,
                    }],
                }],
            };
            let result =
                match tokio::time::timeout(self.timeout, self.transport.export(request)).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("export timed out after {:?}", self.timeout)),
                };
            match result {
                Ok(()) => {
                    debug!(spans = n, "spans exported");
                    self.queue.stats.spans_sent.add(n);
                }
                Err(e) => self.failed(&e, n),
            }
            if !full {
                return;
            }
        }
    }

    fn failed(&mut self, error: &str, spans: u64) {
        self.queue.stats.export_failures.inc();
        self.failures_unlogged += 1;
        let now = Instant::now();
        if self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= LOG_EVERY)
        {
            warn!(
                error,
                spans_lost = spans,
                failures = self.failures_unlogged,
                "cannot export spans to the OTLP collector"
            );
            self.failures_unlogged = 0;
            self.last_log = Some(now);
        }
    }
}
