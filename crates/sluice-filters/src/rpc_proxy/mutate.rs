//! Route header mutations (`request_headers_to_add` and the rest, at route, virtual host and
//! route config level) applied to RPC frames, as `http_proxy` applies them to HTTP heads.
//!
//! Names to remove and the existence checks of `append_action` ignore case, as the route
//! config writes names in lower case; added headers keep the key as written, since RPC header
//! keys are case-sensitive. A frame is only touched (and so re-encoded) when some level has
//! mutations for it.

use sluice_config::route::{AppendAction, HeaderMutations, HeaderToAdd};
use sluice_xprotocol::{Frame, Headers};

use crate::http_proxy::mutate::{render, Vars};

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

/// Applies the request mutations of each level, route first.
pub fn apply_request(frame: &mut Frame, levels: &[&HeaderMutations], vars: &Vars<'_>) {
    let headers = frame.headers_mut();
    for m in levels {
        apply(
            headers,
            &m.request_headers_to_add,
            &m.request_headers_to_remove,
            vars,
        );
    }
}

/// Applies the response mutations of each level, route first.
pub fn apply_response(frame: &mut Frame, levels: &[&HeaderMutations], vars: &Vars<'_>) {
    let headers = frame.headers_mut();
    for m in levels {
        apply(
            headers,
            &m.response_headers_to_add,
            &m.response_headers_to_remove,
            vars,
        );
    }
}

fn apply(headers: &mut Headers, add: &[HeaderToAdd], remove: &[String], vars: &Vars<'_>) {
    for name in remove {
        headers.remove_ignore_case(name);
    }
    for h in add {
        let value = render(&h.value, vars);
        // An empty value is skipped, as for HTTP (%REQ(x)% of an absent header).
        if value.is_empty() {
            continue;
        }
        let key = h.key_as_written.clone();
        match h.append_action {
            AppendAction::AppendIfExistsOrAdd => headers.push(key, value),
            AppendAction::AddIfAbsent => {
                if !headers.contains_ignore_case(&key) {
                    headers.push(key, value);
                }
            }
            AppendAction::OverwriteIfExistsOrAdd => {
                headers.remove_ignore_case(&key);
                headers.push(key, value);
            }
            AppendAction::OverwriteIfExists => {
                if headers.remove_ignore_case(&key) {
                    headers.push(key, value);
                }
            }
        }
    }
}
