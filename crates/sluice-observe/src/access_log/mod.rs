//! Access logs: each finished request, as a line in a file or on stdout.
//!
//! A listener's `access_log` sinks become one [`AccessLog`] observer each. On the worker it
//! only runs the sink's filter and queues the record; formatting and writing happen on the
//! sink's writer thread (`writer.rs`).

mod filter;
mod render;
mod writer;

use std::sync::Arc;

use http::HeaderName;
use sluice_config::AccessLogConfig;
use sluice_stats::Counter;

pub use filter::Filter;
pub use render::Format;
pub use writer::{flush_all, reopen_all};

use crate::{Observer, RequestRecord};

/// One sink of a listener's access log.
pub struct AccessLog {
    format: Arc<Format>,
    filter: Option<Filter>,
    sink: Arc<writer::Sink>,
    request_headers: Vec<HeaderName>,
    response_headers: Vec<HeaderName>,
    /// `access_log.<listener>.dropped`: records lost to a full queue.
    dropped: Arc<Counter>,
}

impl AccessLog {
    /// Starts (or joins) the sink's writer; fails when its file cannot be opened.
    pub fn new(listener: &str, config: &AccessLogConfig) -> Result<AccessLog, String> {
        let mut headers = render::Headers::default();
        let format = Arc::new(Format::new(&config.format, &mut headers)?);
        let filter = config.filter.as_ref().map(Filter::new).transpose()?;
        let sink = writer::Sink::get(&config.sink, config.buffer_size)?;
        Ok(AccessLog {
            format,
            filter,
            sink,
            request_headers: headers.request,
            response_headers: headers.response,
            dropped: sluice_stats::Scope::new(&format!("access_log.{listener}")).counter("dropped"),
        })
    }
}

/// The observers for a listener's `access_log` list; the error names the sink's YAML path.
pub fn observers(
    listener: &str,
    configs: &[AccessLogConfig],
) -> Result<Vec<Arc<dyn Observer>>, String> {
    configs
        .iter()
        .map(|c| {
            AccessLog::new(listener, c)
                .map(|a| Arc::new(a) as Arc<dyn Observer>)
                .map_err(|e| format!("{}: {e}", c.path))
        })
        .collect()
}

impl Observer for AccessLog {
    fn request_headers(&self) -> &[HeaderName] {
        &self.request_headers
    }

    fn response_headers(&self) -> &[HeaderName] {
        &self.response_headers
    }

    fn on_complete(&self, record: &Arc<RequestRecord>) {
        if self.filter.as_ref().is_some_and(|f| !f.matches(record)) {
            return;
        }
        if !self.sink.try_send(&self.format, record) {
            self.dropped.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Protocol;
    use sluice_config::access_log::{format::parse, LogFormat, LogSink};
    use std::time::{Duration, Instant};

    fn config(path: &std::path::Path) -> AccessLogConfig {
        AccessLogConfig {
            sink: LogSink::File(path.to_path_buf()),
            format: LogFormat::Text(parse("%REQ(:PATH)% %RESPONSE_CODE%\n").unwrap()),
            filter: None,
            buffer_size: 16,
            path: "listeners[0].access_log[0]".into(),
            line: 1,
        }
    }

    fn wait_for(path: &std::path::Path, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.contains(want) || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn log(a: &AccessLog, path: &str) {
        let mut r = RequestRecord::new(Protocol::Http11, "l".into());
        r.path = path.to_string().into();
        r.response_code = Some(200);
        a.on_complete(&Arc::new(r));
    }

    #[test]
    fn writes_lines_and_reopens_after_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let a = AccessLog::new("l", &config(&path)).unwrap();
        log(&a, "/one");
        assert_eq!(wait_for(&path, "/one"), "/one 200\n");
        let old = dir.path().join("access.log.1");
        std::fs::rename(&path, &old).unwrap();
        reopen_all();
        log(&a, "/two");
        assert_eq!(wait_for(&path, "/two"), "/two 200\n");
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "/one 200\n");
    }

    #[test]
    fn a_missing_directory_fails_with_the_path() {
        let err = observers("l", &[config(std::path::Path::new("/no/such/dir/x.log"))])
            .err()
            .unwrap();
        assert!(
            err.starts_with("listeners[0].access_log[0]: cannot open /no/such/dir/x.log"),
            "{err}"
        );
    }
}
