//! Where lines go: one writer thread per destination, fed through a bounded queue.
//!
//! Workers never format or write: they `try_send` the record (an `Arc`) and its format, and a
//! full queue drops the record (the caller counts it) rather than making a worker wait on a
//! slow disk. The thread formats, writes through a `BufWriter`, and flushes whenever its queue
//! runs empty, so a quiet proxy's lines reach the file at once and a busy one's in large writes.
//!
//! Sinks are shared by destination (a process-wide registry), so two listeners logging to one
//! file share one writer and their lines never interleave mid-line. The registry is also how
//! SIGUSR1 reaches every open file: [`reopen_all`] sets each file sink's flag, and its thread
//! reopens the path before its next batch (logrotate renamed the old file away).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use sluice_config::access_log::LogSink;
use sluice_stats::Counter;
use tracing::warn;

use super::render::Format;
use crate::RequestRecord;

enum Entry {
    Line(Arc<Format>, Arc<RequestRecord>),
    /// Nothing to write: look at the reopen flag now.
    Wake,
}

/// One destination and its writer thread (which ends when the last `Sink` is dropped).
pub struct Sink {
    tx: SyncSender<Entry>,
    target: LogSink,
    reopen: Arc<AtomicBool>,
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
        let (tx, rx) = sync_channel(buffer_size);
        let reopen = Arc::new(AtomicBool::new(false));
        let thread = Writer {
            rx,
            target: target.clone(),
            reopen: reopen.clone(),
            out: first.map(|f| BufWriter::with_capacity(64 * 1024, Output::File(f))),
            line: Vec::with_capacity(512),
            write_failed: sluice_stats::Scope::new("access_log_file").counter("write_failed"),
            reopen_failed: sluice_stats::Scope::new("access_log_file").counter("reopen_failed"),
        };
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || thread.run())
            .map_err(|e| format!("cannot start the access-log writer: {e}"))?;
        let sink = Arc::new(Sink {
            tx,
            target: target.clone(),
            reopen,
        });
        sinks.push(Arc::downgrade(&sink));
        Ok(sink)
    }

    /// Queues a record; false when the queue is full (the record is dropped).
    pub fn try_send(&self, format: &Arc<Format>, record: &Arc<RequestRecord>) -> bool {
        match self
            .tx
            .try_send(Entry::Line(format.clone(), record.clone()))
        {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

/// Makes every file sink reopen its path (SIGUSR1, after logrotate moved the files).
pub fn reopen_all() {
    let sinks: Vec<Arc<Sink>> = SINKS.lock().iter().filter_map(Weak::upgrade).collect();
    for s in sinks {
        if matches!(s.target, LogSink::File(_)) {
            s.reopen.store(true, Ordering::Release);
            // A full queue wakes the writer anyway.
            let _ = s.tx.try_send(Entry::Wake);
        }
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
    rx: Receiver<Entry>,
    target: LogSink,
    reopen: Arc<AtomicBool>,
    out: Option<BufWriter<Output>>,
    line: Vec<u8>,
    write_failed: Arc<Counter>,
    reopen_failed: Arc<Counter>,
}

impl Writer {
    fn run(mut self) {
        // Ends when every sender (every listener using this sink) is gone.
        while let Ok(first) = self.rx.recv() {
            if self.reopen.swap(false, Ordering::AcqRel) {
                if let Some(mut old) = self.out.take() {
                    let _ = old.flush();
                }
            }
            if self.out.is_none() {
                self.out = self.open();
            }
            self.write(first);
            while let Ok(next) = self.rx.try_recv() {
                self.write(next);
            }
            if let Some(out) = &mut self.out {
                if out.flush().is_err() {
                    self.write_failed.inc();
                }
            }
        }
        if let Some(mut out) = self.out.take() {
            let _ = out.flush();
        }
    }

    fn open(&self) -> Option<BufWriter<Output>> {
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
        Some(BufWriter::with_capacity(64 * 1024, out))
    }

    fn write(&mut self, entry: Entry) {
        let Entry::Line(format, record) = entry else {
            return;
        };
        let Some(out) = &mut self.out else { return };
        self.line.clear();
        format.render(&record, &mut self.line);
        if out.write_all(&self.line).is_err() {
            self.write_failed.inc();
        }
    }
}
