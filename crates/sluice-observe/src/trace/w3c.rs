//! W3C Trace Context: `traceparent: 00-<trace-id>-<parent-id>-<flags>`.
//!
//! `tracestate` is vendors' business: it travels upstream untouched, except that a trace the
//! proxy starts afresh (no valid `traceparent` came in) drops it, since it described a trace
//! that is no longer the one going upstream.

use http::{HeaderMap, HeaderName};

use super::ids::{parse_hex, push_hex};
use super::propagation::{header_value, Incoming, Outgoing};

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Reads `traceparent`; `None` when absent or malformed.
pub fn extract(headers: &HeaderMap) -> Option<Incoming> {
    parse(headers.get(&TRACEPARENT)?.as_bytes())
}

fn parse(v: &[u8]) -> Option<Incoming> {
    // version(2) - trace-id(32) - parent-id(16) - flags(2) = 55 bytes.
    if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let version: [u8; 1] = parse_hex(&v[..2])?;
    match version[0] {
        0xff => return None,
        // Version 00 is exactly 55 bytes; a later version may append fields after a dash.
        0 if v.len() != 55 => return None,
        _ if v.len() > 55 && v[55] != b'-' => return None,
        _ => {}
    }
    let trace_id: [u8; 16] = parse_hex(&v[3..35])?;
    let span_id: [u8; 8] = parse_hex(&v[36..52])?;
    let flags: [u8; 1] = parse_hex(&v[53..55])?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(Incoming::ids(trace_id, span_id, Some(flags[0] & 1 == 1)))
}

pub fn inject(out: &Outgoing<'_>, headers: &mut HeaderMap) {
    let ctx = out.ctx;
    let mut v = Vec::with_capacity(55);
    v.extend_from_slice(b"00-");
    push_hex(&ctx.trace_id, &mut v);
    v.push(b'-');
    push_hex(&ctx.span_id, &mut v);
    v.extend_from_slice(if ctx.sampled { b"-01" } else { b"-00" });
    if let Some(value) = header_value(v) {
        headers.insert(TRACEPARENT, value);
    }
    if ctx.parent_span_id.is_none() {
        headers.remove(TRACESTATE);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example() {
        let i = parse(GOOD.as_bytes()).unwrap();
        let ids = i.ids.unwrap();
        assert_eq!(
            super::super::ids::hex(&ids.trace_id),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(super::super::ids::hex(&ids.span_id), "00f067aa0ba902b7");
        assert_eq!(i.sampled, Some(true));
        let unsampled = GOOD.replace("-01", "-00");
        assert_eq!(parse(unsampled.as_bytes()).unwrap().sampled, Some(false));
    }

    #[test]
    fn refuses_malformed_values() {
        for bad in [
            "",
            "00",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        ] {
            assert!(parse(bad.as_bytes()).is_none(), "{bad}");
        }
        // A later version may carry more fields.
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what";
        assert!(parse(future.as_bytes()).is_some());
    }
}
