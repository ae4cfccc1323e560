//! The extension point: whatever wants to hear about finished requests.

use std::sync::Arc;

use http::HeaderName;

use crate::RequestRecord;

/// Hears about each request once it is over. Called on the worker that served the request,
/// so an implementation does its slow work (formatting, I/O, export) elsewhere: it hands the
/// record to its own thread or task, and drops it (counting the drop) when that is behind.
pub trait Observer: Send + Sync + 'static {
    /// The request headers this observer reads; the proxy copies only these into the record.
    fn request_headers(&self) -> &[HeaderName] {
        &[]
    }

    /// The response headers this observer reads.
    fn response_headers(&self) -> &[HeaderName] {
        &[]
    }

    /// The request is over (the last response byte went out, or either side went away).
    fn on_complete(&self, record: &Arc<RequestRecord>);
}

/// The observers of one listener, with the union of the headers they read. Empty means no
/// record is made at all.
#[derive(Clone, Default)]
pub struct Observers {
    list: Vec<Arc<dyn Observer>>,
    request_headers: Vec<HeaderName>,
    response_headers: Vec<HeaderName>,
}

impl Observers {
    pub fn new(list: Vec<Arc<dyn Observer>>) -> Observers {
        let mut request_headers: Vec<HeaderName> = Vec::new();
        let mut response_headers: Vec<HeaderName> = Vec::new();
        for o in &list {
            for h in o.request_headers() {
                if !request_headers.contains(h) {
                    request_headers.push(h.clone());
                }
            }
            for h in o.response_headers() {
                if !response_headers.contains(h) {
                    response_headers.push(h.clone());
                }
            }
        }
        Observers {
            list,
            request_headers,
            response_headers,
        }
    }

    /// These observers and one more (a listener's tracer joining the process's access logs).
    pub fn with(&self, extra: Arc<dyn Observer>) -> Observers {
        let mut list = self.list.clone();
        list.push(extra);
        Observers::new(list)
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn request_headers(&self) -> &[HeaderName] {
        &self.request_headers
    }

    pub fn response_headers(&self) -> &[HeaderName] {
        &self.response_headers
    }

    /// Finishes the record and hands it to every observer. The record was made in its `Arc`
    /// when the request started, so handing it over neither copies nor allocates.
    pub fn complete(&self, mut record: Arc<RequestRecord>) {
        if self.list.is_empty() {
            return;
        }
        if let Some(r) = Arc::get_mut(&mut record) {
            r.finish();
        }
        for o in &self.list {
            o.on_complete(&record);
        }
    }
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observers")
            .field("count", &self.list.len())
            .finish()
    }
}
