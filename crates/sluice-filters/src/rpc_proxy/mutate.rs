//! Route header mutations (`request_headers_to_add` and the rest, at route, virtual host and
//! route config level) applied to RPC frames, by the same code that applies them to HTTP heads.
//!
//! Names to remove and the existence checks of `append_action` ignore case, as the route
//! config writes names in lower case; added headers keep the key as written, since RPC header
//! keys are case-sensitive. A frame is only touched (and so re-encoded) when some level has
//! mutations for it.

use sluice_config::route::{HeaderMutations, HeaderToAdd};
use sluice_xprotocol::Headers;

use crate::http_proxy::mutate::MutableHeaders;

pub use crate::http_proxy::mutate::{apply_request, apply_response};

/// Whether any level changes requests (`request`) or responses.
pub fn any(levels: &[&HeaderMutations], request: bool) -> bool {
    levels.iter().any(|m| {
        if request {
            !m.request_headers_to_add.is_empty() || !m.request_headers_to_remove.is_empty()
        } else {
            !m.response_headers_to_add.is_empty() || !m.response_headers_to_remove.is_empty()
        }
    })
}

impl MutableHeaders for Headers {
    fn remove_all(&mut self, name: &str) -> bool {
        self.remove_ignore_case(name)
    }

    fn contains(&self, name: &str) -> bool {
        self.contains_ignore_case(name)
    }

    fn append(&mut self, header: &HeaderToAdd, value: String) {
        self.push(header.key_as_written.clone(), value);
    }
}
