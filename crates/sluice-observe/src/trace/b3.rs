//! B3, Zipkin's headers, in both forms: one header per field (`x-b3-traceid`, `x-b3-spanid`,
//! `x-b3-parentspanid`, `x-b3-sampled`, `x-b3-flags`) and the single `b3` header
//! (`{traceid}-{spanid}[-{sampled}[-{parentspanid}]]`, or just a sampling state).
//!
//! Trace ids are 64 or 128 bits; a 64-bit one goes upstream in 16 digits, as it came.
//! Sampling states are `1`, `0` and `d` (debug: sample, whatever the rate); the multi-header
//! form also takes `true`/`false`, which old Zipkin clients send.

use http::{HeaderMap, HeaderName};

use super::ids::{is_64_bit, parse_hex, push_hex, widen};
use super::propagation::{header_value, Incoming, Outgoing};

pub const TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
pub const SPAN_ID: HeaderName = HeaderName::from_static("x-b3-spanid");
pub const PARENT_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-parentspanid");
pub const SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
pub const FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");
pub const SINGLE: HeaderName = HeaderName::from_static("b3");

fn trace_id(v: &[u8]) -> Option<[u8; 16]> {
    let id = match v.len() {
        16 => widen(parse_hex(v)?),
        32 => parse_hex(v)?,
        _ => return None,
    };
    (id != [0; 16]).then_some(id)
}

fn span_id(v: &[u8]) -> Option<[u8; 8]> {
    parse_hex(v).filter(|id| *id != [0; 8])
}

/// A sampling state: `Some(Some(b))` a decision, `None` malformed.
fn sampling(v: &[u8], words: bool) -> Option<bool> {
    match v {
        b"1" | b"d" => Some(true),
        b"0" => Some(false),
        b"true" if words => Some(true),
        b"false" if words => Some(false),
        _ => None,
    }
}

/// Reads the multi-header form; `None` when absent or malformed.
pub fn extract_multi(headers: &HeaderMap) -> Option<Incoming> {
    let debug = headers.get(&FLAGS).is_some_and(|v| v.as_bytes() == b"1");
    let sampled = match headers.get(&SAMPLED) {
        Some(v) => Some(sampling(v.as_bytes(), true)?),
        None => None,
    };
    let sampled = if debug { Some(true) } else { sampled };
    match (headers.get(&TRACE_ID), headers.get(&SPAN_ID)) {
        (Some(t), Some(s)) => Some(Incoming::ids(
            trace_id(t.as_bytes())?,
            span_id(s.as_bytes())?,
            sampled,
        )),
        // A sampling decision alone is valid B3: it applies to the trace the proxy starts.
        (None, None) => sampled.map(Incoming::decision),
        _ => None,
    }
}

/// Reads the single `b3` header; `None` when absent or malformed.
pub fn extract_single(headers: &HeaderMap) -> Option<Incoming> {
    let v = headers.get(&SINGLE)?.as_bytes();
    if v.len() == 1 {
        return sampling(v, false).map(Incoming::decision);
    }
    let mut fields = v.split(|c| *c == b'-');
    let trace = trace_id(fields.next()?)?;
    let span = span_id(fields.next()?)?;
    let sampled = match fields.next() {
        Some(s) => Some(sampling(s, false)?),
        None => None,
    };
    if let Some(parent) = fields.next() {
        span_id(parent)?;
    }
    if fields.next().is_some() {
        return None;
    }
    Some(Incoming::ids(trace, span, sampled))
}

fn push_trace_id(id: &[u8; 16], out: &mut Vec<u8>) {
    if is_64_bit(id) {
        push_hex(&id[8..], out);
    } else {
        push_hex(id, out);
    }
}

fn value(f: impl FnOnce(&mut Vec<u8>)) -> Option<http::HeaderValue> {
    let mut v = Vec::with_capacity(32);
    f(&mut v);
    header_value(v)
}

pub fn inject_multi(out: &Outgoing<'_>, headers: &mut HeaderMap) {
    let ctx = out.ctx;
    if let Some(v) = value(|v| push_trace_id(&ctx.trace_id, v)) {
        headers.insert(TRACE_ID, v);
    }
    if let Some(v) = value(|v| push_hex(&ctx.span_id, v)) {
        headers.insert(SPAN_ID, v);
    }
    match ctx.parent_span_id.and_then(|p| value(|v| push_hex(&p, v))) {
        Some(v) => {
            headers.insert(PARENT_SPAN_ID, v);
        }
        None => {
            headers.remove(PARENT_SPAN_ID);
        }
    }
    headers.insert(
        SAMPLED,
        http::HeaderValue::from_static(if ctx.sampled { "1" } else { "0" }),
    );
    // A debug flag became a sampled trace here; the decision travels as x-b3-sampled.
    headers.remove(FLAGS);
}

pub fn inject_single(out: &Outgoing<'_>, headers: &mut HeaderMap) {
    let ctx = out.ctx;
    let v = value(|v| {
        push_trace_id(&ctx.trace_id, v);
        v.push(b'-');
        push_hex(&ctx.span_id, v);
        v.extend_from_slice(if ctx.sampled { b"-1" } else { b"-0" });
        if let Some(p) = ctx.parent_span_id {
            v.push(b'-');
            push_hex(&p, v);
        }
    });
    if let Some(v) = v {
        headers.insert(SINGLE, v);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::ids::hex;
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn multi_takes_64_and_128_bit_ids() {
        let i = extract_multi(&map(&[
            ("x-b3-traceid", "463ac35c9f6413ad"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ("x-b3-parentspanid", "0020000000000001"),
            ("x-b3-sampled", "1"),
        ]))
        .unwrap();
        let ids = i.ids.unwrap();
        assert_eq!(hex(&ids.trace_id), "0000000000000000463ac35c9f6413ad");
        assert_eq!(hex(&ids.span_id), "a2fb4a1d1a96d312");
        assert_eq!(i.sampled, Some(true));
        let i = extract_multi(&map(&[
            ("x-b3-traceid", "463ac35c9f6413ad463ac35c9f6413ad"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ("x-b3-flags", "1"),
            ("x-b3-sampled", "0"),
        ]))
        .unwrap();
        assert_eq!(i.sampled, Some(true), "debug wins");
        assert_eq!(
            extract_multi(&map(&[("x-b3-sampled", "0")])),
            Some(Incoming::decision(false))
        );
    }

    #[test]
    fn multi_refuses_malformed() {
        for bad in [
            &[("x-b3-traceid", "463ac35c9f6413ad")][..],
            &[
                ("x-b3-traceid", "463ac35c9f6413a"),
                ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ],
            &[
                ("x-b3-traceid", "463ac35c9f6413ad"),
                ("x-b3-spanid", "0000000000000000"),
            ],
            &[
                ("x-b3-traceid", "463ac35c9f6413ad"),
                ("x-b3-spanid", "a2fb4a1d1a96d312"),
                ("x-b3-sampled", "yes"),
            ],
        ] {
            assert!(extract_multi(&map(bad)).is_none(), "{bad:?}");
        }
        assert!(extract_multi(&HeaderMap::new()).is_none());
    }

    #[test]
    fn single_forms() {
        let i = extract_single(&map(&[(
            "b3",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
        )]))
        .unwrap();
        assert_eq!(hex(&i.ids.unwrap().span_id), "e457b5a2e4d86bd1");
        assert_eq!(i.sampled, Some(true));
        let i = extract_single(&map(&[("b3", "80f198ee56343ba8-e457b5a2e4d86bd1")])).unwrap();
        assert_eq!(i.sampled, None);
        assert_eq!(
            extract_single(&map(&[("b3", "0")])),
            Some(Incoming::decision(false))
        );
        assert_eq!(
            extract_single(&map(&[("b3", "d")])),
            Some(Incoming::decision(true))
        );
        for bad in [
            "",
            "x",
            "80f198ee56343ba8",
            "80f198ee56343ba8-e457b5a2e4d86bd1-2",
            "80f198ee56343ba8-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b9",
            "80f198ee56343ba8-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90-x",
            "80f198ee56343ba8--1",
        ] {
            assert!(extract_single(&map(&[("b3", bad)])).is_none(), "{bad}");
        }
    }
}
