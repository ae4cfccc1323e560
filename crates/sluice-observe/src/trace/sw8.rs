//! SkyWalking's cross-process propagation, protocol v3: one `sw8` header of eight fields
//! joined by `-`: sample (`0`/`1`), trace id, parent segment id, parent span id (an integer),
//! parent service, parent service instance, parent endpoint, and the address the caller used
//! to reach us. Every string field is base64 (standard alphabet, which has no `-`).
//!
//! SkyWalking ids are free-form strings, not 128-bit numbers. The trace id is kept as it came
//! (so `sw8` goes upstream with the caller's trace) and hashed to 128 bits for the other
//! formats and the exported span; the caller's span (segment id plus span number) is hashed
//! to 64 bits the same way. Upstream, the proxy is the parent: its own span id (hex) is the
//! segment, its span is number 0 in it, the service is the tracing `service_name`, the
//! instance the node id, the endpoint the request path and the address the upstream host.

use std::sync::Arc;

use base64::Engine as _;
use http::{HeaderMap, HeaderName};
use xxhash_rust::xxh64::xxh64;

use super::ids::{hex, parse_hex};
use super::propagation::{header_value, Incoming, Outgoing};

pub const SW8: HeaderName = HeaderName::from_static("sw8");

/// Values longer than this are refused (the protocol's own limit is 2 KiB).
const MAX_LEN: usize = 2048;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn text(field: &[u8]) -> Option<String> {
    String::from_utf8(B64.decode(field).ok()?).ok()
}

/// Reads `sw8`; `None` when absent or malformed.
pub fn extract(headers: &HeaderMap) -> Option<Incoming> {
    let v = headers.get(&SW8)?.as_bytes();
    if v.len() > MAX_LEN {
        return None;
    }
    let fields: Vec<&[u8]> = v.split(|c| *c == b'-').collect();
    let [sample, trace, segment, span, service, instance, endpoint, address] = fields[..] else {
        return None;
    };
    let sampled = match sample {
        b"1" => true,
        b"0" => false,
        _ => return None,
    };
    let trace = text(trace).filter(|t| !t.is_empty())?;
    let segment = text(segment).filter(|s| !s.is_empty())?;
    let span: u32 = std::str::from_utf8(span).ok()?.parse().ok()?;
    for f in [service, instance, endpoint, address] {
        text(f)?;
    }
    let (trace_id, foreign) = match parse_hex::<16>(trace.as_bytes()) {
        Some(id) if id != [0; 16] => (id, None),
        _ => (hash128(&trace), Some(Arc::<str>::from(trace))),
    };
    let parent = xxh64(format!("{segment}-{span}").as_bytes(), 0)
        .max(1)
        .to_be_bytes();
    let mut incoming = Incoming::ids(trace_id, parent, Some(sampled));
    incoming.foreign_trace_id = foreign;
    Some(incoming)
}

fn hash128(s: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&xxh64(s.as_bytes(), 0).to_be_bytes());
    out[8..].copy_from_slice(&xxh64(s.as_bytes(), 1).max(1).to_be_bytes());
    out
}

pub fn inject(out: &Outgoing<'_>, headers: &mut HeaderMap) {
    let ctx = out.ctx;
    let trace = match &ctx.foreign_trace_id {
        Some(t) => t.to_string(),
        None => hex(&ctx.trace_id),
    };
    let mut v = Vec::with_capacity(160);
    v.extend_from_slice(if ctx.sampled { b"1-" } else { b"0-" });
    let field = |s: &str, v: &mut Vec<u8>| {
        let start = v.len();
        v.resize(start + base64::encoded_len(s.len(), true).unwrap_or(0), 0);
        let n = B64.encode_slice(s, &mut v[start..]).unwrap_or(0);
        v.truncate(start + n);
    };
    field(&trace, &mut v);
    v.push(b'-');
    field(&hex(&ctx.span_id), &mut v);
    v.extend_from_slice(b"-0-");
    field(out.service, &mut v);
    v.push(b'-');
    field(out.instance, &mut v);
    v.push(b'-');
    field(out.endpoint, &mut v);
    v.push(b'-');
    field(out.peer, &mut v);
    if let Some(value) = header_value(v) {
        headers.insert(SW8, value);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::TraceContext;

    // The trace "a4ec6fc8ccab4bb4b682064698cc97e6.74.16218381104550009", parent segment
    // "…0008", span 2, service "onemore-a", endpoint "/onemore-a/get".
    const SAMPLE: &str = "1-YTRlYzZmYzhjY2FiNGJiNGI2ODIwNjQ2OThjYzk3ZTYuNzQuMTYyMTgzODExMDQ1NTAwMDk=-YTRlYzZmYzhjY2FiNGJiNGI2ODIwNjQ2OThjYzk3ZTYuNzQuMTYyMTgzODExMDQ1NTAwMDg=-2-b25lbW9yZS1h-ZTFkMmZiYjYzYmJhNDMwNDk5YWY4OTVjMDQwZTMyZmVAMTkyLjE2OC4xLjEwMQ==-L29uZW1vcmUtYS9nZXQ=-MTkyLjE2OC4xLjEwMjo4MA==";

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SW8, http::HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn keeps_a_free_form_trace_id_and_writes_it_back() {
        let i = extract(&with(SAMPLE)).unwrap();
        assert_eq!(i.sampled, Some(true));
        assert_eq!(
            i.foreign_trace_id.as_deref(),
            Some("a4ec6fc8ccab4bb4b682064698cc97e6.74.16218381104550009")
        );
        let ids = i.ids.unwrap();
        let ctx = TraceContext {
            trace_id: ids.trace_id,
            span_id: [0, 0, 0, 0, 0, 0, 0, 7],
            parent_span_id: Some(ids.span_id),
            sampled: true,
            foreign_trace_id: i.foreign_trace_id.clone(),
        };
        let mut h = HeaderMap::new();
        let out = Outgoing {
            ctx: &ctx,
            service: "sluice",
            instance: "node-1",
            endpoint: "/get",
            peer: "10.0.0.1:80",
        };
        inject(&out, &mut h);
        let written = h.get(&SW8).unwrap().to_str().unwrap().to_string();
        let back = extract(&h).unwrap();
        assert_eq!(back.foreign_trace_id, i.foreign_trace_id);
        assert_eq!(back.ids.unwrap().trace_id, ids.trace_id);
        let fields: Vec<&str> = written.split('-').collect();
        assert_eq!(fields[3], "0");
        assert_eq!(text(fields[2].as_bytes()).unwrap(), "0000000000000007");
        assert_eq!(text(fields[4].as_bytes()).unwrap(), "sluice");
        assert_eq!(text(fields[7].as_bytes()).unwrap(), "10.0.0.1:80");
    }

    #[test]
    fn refuses_malformed_values() {
        for bad in [
            "",
            "1-a-b",
            &SAMPLE.replacen('1', "2", 1),
            &SAMPLE.replacen("-2-", "-x-", 1),
            &SAMPLE.replacen("-2-", "--", 1),
            &format!("{SAMPLE}-extra"),
            "1-!!!-YQ==-0-YQ==-YQ==-YQ==-YQ==",
            "1--YQ==-0-YQ==-YQ==-YQ==-YQ==",
        ] {
            assert!(extract(&with(bad)).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_hex_trace_id_is_used_as_is() {
        let trace = B64.encode("4bf92f3577b34da6a3ce929d0e0e4736");
        let v = format!("0-{trace}-YQ==-0-YQ==-YQ==-YQ==-YQ==");
        let i = extract(&with(&v)).unwrap();
        assert_eq!(i.foreign_trace_id, None);
        assert_eq!(i.sampled, Some(false));
        assert_eq!(
            hex(&i.ids.unwrap().trace_id),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }
}
