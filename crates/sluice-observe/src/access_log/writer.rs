//! Where lines go: one writer thread per destination, fed through a bounded lock-free queue.
//!
//! Workers never format or write, and do not wake the writer per line: they push the record
//! (an `Arc`) and its format onto the queue, and a full queue drops the record (the caller
//! counts it) rather than making a worker wait on a slow disk. The thread wakes every
//! [`FLUSH_INTERVAL`], or as soon as the queue is half full, formats everything waiting,
//! writes it through a `BufWriter` and flushes: a quiet proxy's lines reach the file within
//! the interval, a busy one's go in large writes, and a worker pays one queue push per line
//! (a wake-up only when the writer is behind).
//!
//! Sinks are shared by destination (a process-wide registry), so two listeners logging to one
//! file share one writer and their lines never interleave mid-line. The registry is also how
//! SIGUSR1 reaches every open file: [`reopen_all`] sets each file sink's flag and wakes its
//! thread, which reopens the path before its next batch (logrotate renamed the old file away).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use parking_lot::Mutex;
use sluice_config::access_log::LogSink;
use sluice_stats::Counter;
use tracing::warn;

use super::render::Format;
use crate::RequestRecord;

/// How long a line may wait in the queue before the writer takes it.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Lines are rendered into a buffer of this size, written out when it fills and after each
/// batch.
const BUFFER: usize = 64 * 1024;

type Entry = (Arc<Format>, Arc<RequestRecord>);

/// What the workers and the writer thread share.
struct Shared {
    queue: ArrayQueue<Entry>,
    /// Set by SIGUSR1: reopen the file before the next batch.
    reopen: AtomicBool,
    /// Set when the last listener using this sink is gone: drain and end.
    closed: AtomicBool,
    /// The writer is rendering or writing a batch (for [`flush_all`]).
    busy: AtomicBool,
}

/// One destination and its writer thread (which ends when the last `Sink` is dropped).
pub struct Sink {
    shared: Arc<Shared>,
    /// The writer thread, to wake it.
    writer: std::thread::Thread,
    target: LogSink,
    /// Queue length at which a push wakes the writer early.
    high_water: usize,
}

static SINKS: Mutex<Vec<Weak<Sink>>> = Mutex::new(Vec::new());

impl Sink {
    /// The sink writing to `target`, started (the file opened) if none is running. A file is
    /// opened here, so a path that cannot be written fails the start; something other than a
    /// regular file (a FIFO, a device) is opened by the writer thread, where blocking is fine.
    pub fn get(target: &LogSink, buffer_size: usize) -> Result<Arc<Sink>, String> {
        let mut sinks = SINKS.lock();
        sinks.retain(|s| s.strong_count() > 0);
        if let Some(s) = sinks
            .iter()
            .filter_map(Weak::upgrade)
            .find(|s| &s.target == target)
        {
            return Ok(s);
        }
        let first = match target {
            LogSink::File(path) if opens_now(path) => {
                Some(open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?)
            }
            _ => None,
        };
        let shared = Arc::new(Shared {
            queue: ArrayQueue::new(buffer_size.max(1)),
            reopen: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            busy: AtomicBool::new(false),
        });
        let thread = Writer {
            shared: shared.clone(),
            target: target.clone(),
            out: first.map(Output::File),
            buf: Vec::with_capacity(BUFFER),
            write_failed: sluice_stats::Scope::new("access_log_file").counter("write_failed"),
            reopen_failed: sluice_stats::Scope::new("access_log_file").counter("reopen_failed"),
        };
        let handle = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || thread.run())
            .map_err(|e| format!("cannot start the access-log writer: {e}"))?;
        let sink = Arc::new(Sink {
            shared,
            writer: handle.thread().clone(),
            target: target.clone(),
            high_water: (buffer_size / 2).max(1),
        });
        sinks.push(Arc::downgrade(&sink));
        Ok(sink)
    }

    /// Queues a record; false when the queue is full (the record is dropped).
    pub fn try_send(&self, format: &Arc<Format>, record: &Arc<RequestRecord>) -> bool {
        if self
            .shared
            .queue
            .push((format.clone(), record.clone()))
            .is_err()
        {
            return false;
        }
        if self.shared.queue.len() >= self.high_water {
            self.writer.unpark();
        }
        true
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.writer.unpark();
    }
}

/// Makes every file sink reopen its path (SIGUSR1, after logrotate moved the files).
pub fn reopen_all() {
    let sinks: Vec<Arc<Sink>> = SINKS.lock().iter().filter_map(Weak::upgrade).collect();
    for s in sinks {
        if matches!(s.target, LogSink::File(_)) {
            s.shared.reopen.store(true, Ordering::Release);
            s.writer.unpark();
        }
    }
}

/// At exit, once the workers have stopped: wakes every writer and waits (at most `limit`)
/// until each has written what its queue held, so the last requests' lines are not lost.
pub fn flush_all(limit: Duration) {
    let sinks: Vec<Arc<Sink>> = SINKS.lock().iter().filter_map(Weak::upgrade).collect();
    for s in &sinks {
        s.writer.unpark();
    }
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end
        && sinks
            .iter()
            .any(|s| !s.shared.queue.is_empty() || s.shared.busy.load(Ordering::Acquire))
    {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether to open `path` at startup: anything but a FIFO or a device, whose open may block
/// until a reader comes (a directory, say, fails there with a clear error).
fn opens_now(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).map_or(true, |m| {
        let t = m.file_type();
        !(t.is_fifo() || t.is_char_device() || t.is_block_device() || t.is_socket())
    })
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

enum Output {
    File(File),
    Stdout(std::io::Stdout),
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Output::File(f) => f.write(buf),
            Output::Stdout(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::File(f) => f.flush(),
            Output::Stdout(s) => s.flush(),
        }
    }
}

struct Writer {
    shared: Arc<Shared>,
    target: LogSink,
    out: Option<Output>,
    /// Rendered lines not yet written (lines are rendered straight into it).
    buf: Vec<u8>,
    write_failed: Arc<Counter>,
    reopen_failed: Arc<Counter>,
}

impl Writer {
    fn run(mut self) {
        loop {
            // Read before draining: lines queued before the close are still written.
            let closed = self.shared.closed.load(Ordering::Acquire);
            if self.shared.reopen.swap(false, Ordering::AcqRel) {
                self.write_out();
                self.out = None;
                // Reopened now, not at the next line: the rotated file is released at once.
                if matches!(self.target, LogSink::File(_)) {
                    self.out = self.open();
                }
            }
            if !self.shared.queue.is_empty() {
                self.shared.busy.store(true, Ordering::Release);
                if self.out.is_none() {
                    self.out = self.open();
                }
                while let Some(entry) = self.shared.queue.pop() {
                    self.render(entry);
                }
                self.write_out();
                self.shared.busy.store(false, Ordering::Release);
            }
            if closed {
                break;
            }
            std::thread::park_timeout(FLUSH_INTERVAL);
        }
        self.write_out();
    }

    fn open(&self) -> Option<Output> {
        let out = match &self.target {
            LogSink::Stdout => Output::Stdout(std::io::stdout()),
            LogSink::File(path) => match open(path) {
                Ok(f) => Output::File(f),
                Err(e) => {
                    self.reopen_failed.inc();
                    warn!(path = %path.display(), error = %e, "access log: cannot open the file; lines are lost until it can be");
                    return None;
                }
            },
        };
        Some(out)
    }

    /// Renders one line into the buffer (written out when full). Lines are lost while the
    /// file cannot be opened.
    fn render(&mut self, (format, record): Entry) {
        if self.out.is_none() {
            return;
        }
        format.render(&record, &mut self.buf);
        if self.buf.len() >= BUFFER {
            self.write_out();
        }
    }

    /// Writes the buffered lines out.
    fn write_out(&mut self) {
        if let Some(out) = &mut self.out {
            if !self.buf.is_empty() && (out.write_all(&self.buf).is_err() || out.flush().is_err()) {
                self.write_failed.inc();
            }
        }
        self.buf.clear();
    }
}
