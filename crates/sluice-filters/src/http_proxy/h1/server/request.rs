//! The request head a client sends, parsed with `httparse` (hyper's own parser), and the
//! framing of the body that follows it, decided strictly (RFC 9112 sections 6.1 and 6.3).
//!
//! A proxy that reads a request's length one way while the next hop reads it another lets a
//! client hide a second request inside the first (request smuggling). So anything two readers
//! could disagree on is refused rather than repaired: both `Content-Length` and
//! `Transfer-Encoding`, differing lengths, a transfer coding that does not end in `chunked`,
//! obsolete line folding, whitespace before a colon, more than one `Host`.

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, HOST, TE, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, Method, Request, StatusCode, Uri, Version};

use crate::http_proxy::h1::{
    field_name, header_map, list, transfer_codings, ConnectionTokens, ContentLength, Framing,
    LengthError,
};

/// Header fields parsed into a stack array up to this many; a larger `max_headers_count`
/// parses into a heap array instead (allocated per head, so only that configuration pays).
const STACK_FIELDS: usize = 128;
/// Request headers the proxy may add before forwarding.
const ADDED_BY_PROXY: usize = 6;
/// The longest request target `http::Uri` can hold.
const MAX_TARGET: usize = u16::MAX as usize - 1;

/// What a listener accepts in a request head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Bytes of request line and header section.
    pub bytes: usize,
    /// Header fields.
    pub fields: usize,
}

/// A request head, with what the connection needs to know about the exchange.
#[derive(Debug)]
pub struct RequestHead {
    pub request: Request<()>,
    /// Never `UntilClose`: a request body is delimited or absent.
    pub framing: Framing,
    /// The client lets the connection carry another request after this one.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on a request with a body: the client may wait for a
    /// `100 Continue` before sending it.
    pub expect_continue: bool,
    /// An HTTP/1.1 request to switch protocols (`Upgrade`, named in `Connection`).
    pub upgrade: bool,
    /// `TE: trailers`: the client reads trailers after a chunked body (RFC 9110 section 10.1.4).
    pub trailers: bool,
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per request, moved once: boxing would allocate
pub enum Parsed {
    /// Not a whole head yet (and not over the limit).
    Partial,
    Complete(RequestHead),
}

/// Why a request is refused before it reaches the proxy; the connection closes after the
/// answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("{0}")]
    Malformed(String),
    #[error("request target longer than {MAX_TARGET} bytes")]
    TargetTooLong,
    #[error("request head over the limits")]
    TooLarge,
    #[error("unsupported transfer-encoding {0:?}")]
    UnsupportedCoding(String),
}

impl Refusal {
    /// Why, as access logs' `%RESPONSE_CODE_DETAILS%` say it (Envoy's codec details).
    pub fn details(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "http1.codec_error",
            Refusal::TargetTooLong => "http1.uri_too_long",
            Refusal::TooLarge => "http1.headers_too_large",
            Refusal::UnsupportedCoding(_) => "http1.invalid_transfer_encoding",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
            Refusal::TargetTooLong => StatusCode::URI_TOO_LONG,
            Refusal::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Refusal::UnsupportedCoding(_) => StatusCode::NOT_IMPLEMENTED,
        }
    }
}

fn malformed(why: impl Into<String>) -> Refusal {
    Refusal::Malformed(why.into())
}

/// Parses a request head from the front of `buf`. On `Complete` the head's bytes have been
/// split off `buf` (the target and header values share them) and the body starts at its
/// front. `fields_scratch` is working space the connection keeps, so that it is allocated once.
pub fn parse_request(
    buf: &mut BytesMut,
    limits: HeadLimits,
    fields_scratch: &mut Vec<(HeaderName, Range<usize>)>,
) -> Result<Parsed, Refusal> {
    // Left uninitialised: zeroing the array per request costs more than parsing into it.
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_FIELDS];
    let mut heap = Vec::new();
    let fields = if limits.fields <= STACK_FIELDS {
        &mut stack[..limits.fields]
    } else {
        heap.resize(limits.fields, MaybeUninit::uninit());
        &mut heap[..]
    };
    let mut parsed = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut parsed,
        buf,
        fields,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() <= limits.bytes => return Ok(Parsed::Partial),
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal::TooLarge)
        }
        Err(httparse::Error::Version) => return Err(malformed("unsupported HTTP version")),
        Err(e) => return Err(malformed(e.to_string())),
    };
    if len > limits.bytes {
        return Err(Refusal::TooLarge);
    }
    let method = parsed
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or_else(|| malformed("invalid method"))?;
    let version = if parsed.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let base = buf.as_ptr() as usize;
    let target = parsed.path.unwrap_or("");
    if target.len() > MAX_TARGET {
        return Err(Refusal::TargetTooLong);
    }
    let target_start = target.as_ptr() as usize - base;
    let target_span = target_start..target_start + target.len();

    // Names now; values once the head is split off the buffer, so that they share its bytes.
    fields_scratch.clear();
    let (mut connection, mut hosts) = (ConnectionTokens::default(), 0);
    // The framing fields, noted on the way: no lookups in the finished map.
    let (mut length, mut chunked_or_coded, mut expect) = (ContentLength::default(), false, false);
    // And what the server needs to know of the rest, likewise.
    let (mut upgrade_field, mut trailers) = (false, false);
    for f in parsed.headers.iter() {
        let name = field_name(f.name.as_bytes())
            .map_err(|_| malformed(format!("invalid header name {:?}", f.name)))?;
        // `Connection: close`/`keep-alive` and `Keep-Alive` describe this hop only: noted
        // here rather than stored and then removed with the other hop-by-hop fields. A
        // `Connection` naming other fields (`upgrade`) stays for the proxy to act on.
        if name == CONNECTION {
            if connection.add(f.value) {
                continue;
            }
        } else if name.as_str() == "keep-alive" {
            continue;
        } else if name == HOST {
            hosts += 1;
        } else if name == CONTENT_LENGTH {
            length.add(f.value);
        } else if name == TRANSFER_ENCODING {
            chunked_or_coded = true;
        } else if name == EXPECT {
            expect = true;
        } else if name == UPGRADE {
            upgrade_field = true;
        } else if name == TE {
            trailers |= list(f.value).any(|t| t.eq_ignore_ascii_case(b"trailers"));
        }
        let start = f.value.as_ptr() as usize - base;
        fields_scratch.push((name, start..start + f.value.len()));
    }
    if hosts > 1 {
        return Err(malformed("more than one host header"));
    }
    let head: Bytes = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target_span))
        .map_err(|_| malformed("invalid request target"))?;
    // Room for what the proxy adds (x-forwarded-*, x-request-id, via...).
    let headers = header_map(&head, fields_scratch, ADDED_BY_PROXY)
        .map_err(|name| malformed(format!("invalid value in header {name}")))?;
    let framing = request_framing(&headers, version, chunked_or_coded, length)?;
    let keep_alive = match version {
        Version::HTTP_10 => connection.keep_alive && !connection.close,
        _ => !connection.close,
    };
    let expect_continue = version == Version::HTTP_11
        && framing != Framing::Empty
        && expect
        && headers
            .get(EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Parsed::Complete(RequestHead {
        request,
        framing,
        keep_alive,
        expect_continue,
        upgrade: version == Version::HTTP_11 && upgrade_field && connection.upgrade,
        trailers,
    }))
}

/// RFC 9112 section 6.3 for requests: chunked if `Transfer-Encoding` says so, else
/// `Content-Length`, else no body. `coded`: whether the head has a `Transfer-Encoding`.
fn request_framing(
    headers: &HeaderMap,
    version: Version,
    coded: bool,
    length: ContentLength,
) -> Result<Framing, Refusal> {
    let te = if coded {
        headers.get(TRANSFER_ENCODING)
    } else {
        None
    };
    if let Some(te) = te {
        if version == Version::HTTP_10 {
            return Err(malformed("transfer-encoding in an HTTP/1.0 request"));
        }
        if length.seen() {
            return Err(malformed("both content-length and transfer-encoding"));
        }
        let codings: Vec<&[u8]> = transfer_codings(headers).collect();
        let chunked = |c: &[u8]| c.eq_ignore_ascii_case(b"chunked");
        if !codings.last().is_some_and(|c| chunked(c)) {
            return Err(malformed("transfer-encoding does not end in chunked"));
        }
        if codings.iter().filter(|c| chunked(c)).count() > 1 {
            return Err(malformed("chunked applied more than once"));
        }
        // Another coding under `chunked` would reach the upstream undeclared once the
        // hop-by-hop `Transfer-Encoding` is dropped.
        if codings.len() > 1 {
            let value = String::from_utf8_lossy(te.as_bytes()).into_owned();
            return Err(Refusal::UnsupportedCoding(value));
        }
        return Ok(Framing::Chunked);
    }
    let length = length.get().map_err(|e| match e {
        LengthError::Invalid => malformed("invalid content-length"),
        LengthError::Differing => malformed("differing content-length values"),
    })?;
    Ok(match length {
        None | Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        bytes: 8192,
        fields: 100,
    };

    fn parse(wire: &str) -> Result<Parsed, Refusal> {
        let mut buf = BytesMut::from(wire.as_bytes());
        parse_request(&mut buf, LIMITS, &mut Vec::new())
    }

    fn head(wire: &str) -> RequestHead {
        match parse(wire) {
            Ok(Parsed::Complete(h)) => h,
            other => panic!("{wire:?}: {other:?}"),
        }
    }

    fn refused(wire: &str) -> Refusal {
        match parse(wire) {
            Err(r) => r,
            other => panic!("{wire:?} was accepted: {other:?}"),
        }
    }

    #[test]
    fn a_simple_get() {
        let h = head("GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\n\r\n");
        assert_eq!(h.request.method(), Method::GET);
        assert_eq!(h.request.uri().path_and_query().unwrap().as_str(), "/a?b=c");
        assert_eq!(h.request.version(), Version::HTTP_11);
        assert_eq!(h.request.headers()["host"], "x");
        assert_eq!(h.request.headers().get_all("x-a").iter().count(), 2);
        assert_eq!(h.framing, Framing::Empty);
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
    }

    #[test]
    fn the_body_starts_after_the_head() {
        let mut buf = BytesMut::from(&b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET"[..]);
        let Ok(Parsed::Complete(h)) = parse_request(&mut buf, LIMITS, &mut Vec::new()) else {
            panic!()
        };
        assert_eq!(h.framing, Framing::Length(3));
        assert_eq!(&buf[..], b"abcGET");
    }

    #[test]
    fn partial_heads_wait_for_more() {
        assert!(matches!(
            parse("GET / HTTP/1.1\r\nHost: x\r\n"),
            Ok(Parsed::Partial)
        ));
        assert!(matches!(parse("GE"), Ok(Parsed::Partial)));
    }

    #[test]
    fn persistence() {
        assert!(!head("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
        let h = head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5\r\n\r\n");
        assert!(h.keep_alive);
        assert!(h.request.headers().is_empty(), "{:?}", h.request.headers());
        let h = head("GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: ws\r\n\r\n");
        assert!(h.keep_alive);
        assert!(h.request.headers().contains_key(CONNECTION));
    }

    #[test]
    fn framing() {
        let chunked = head("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(chunked.framing, Framing::Chunked);
        let same = head("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(same.framing, Framing::Length(5));
        assert_eq!(
            head("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").framing,
            Framing::Empty
        );
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        for wire in [
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 0x3\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            "GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "GET /a b HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(refused(wire).status(), StatusCode::BAD_REQUEST, "{wire:?}");
        }
        assert_eq!(
            refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").status(),
            StatusCode::NOT_IMPLEMENTED
        );
    }

    #[test]
    fn limits() {
        let big = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(9000));
        assert_eq!(refused(&big), Refusal::TooLarge);
        let partial = format!("GET /{}", "a".repeat(9000));
        assert_eq!(refused(&partial), Refusal::TooLarge);
        let many: String = (0..101).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(
            refused(&format!("GET / HTTP/1.1\r\n{many}\r\n")),
            Refusal::TooLarge
        );
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(70_000));
        let mut buf = BytesMut::from(long.as_bytes());
        let roomy = HeadLimits {
            bytes: 200_000,
            fields: 200,
        };
        let got = parse_request(&mut buf, roomy, &mut Vec::new());
        assert_eq!(got.err(), Some(Refusal::TargetTooLong));
        // Over the stack array: parsed into a heap one.
        let many: String = (0..150).map(|i| format!("X-{i}: y\r\n")).collect();
        let wire = format!("GET / HTTP/1.1\r\n{many}\r\n");
        let mut buf = BytesMut::from(wire.as_bytes());
        let Ok(Parsed::Complete(h)) = parse_request(&mut buf, roomy, &mut Vec::new()) else {
            panic!()
        };
        assert_eq!(h.request.headers().len(), 150);
    }

    #[test]
    fn expect_continue_only_with_a_body() {
        let with = head("PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
        assert!(with.expect_continue);
        let without = head("GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
        assert!(!without.expect_continue);
    }

    #[test]
    fn upgrades_and_trailers_are_told_while_parsing() {
        let ws = "GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n";
        let h = head(ws);
        assert!(h.upgrade);
        // The `Connection` naming `upgrade` stays for the proxy to act on.
        assert!(h.request.headers().contains_key(CONNECTION));
        for not in [
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n",
            "GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        ] {
            assert!(!head(not).upgrade, "{not:?}");
        }
        assert!(head("GET / HTTP/1.1\r\nTE: gzip\r\nTE: Trailers\r\n\r\n").trailers);
        assert!(!head("GET / HTTP/1.1\r\nTE: gzip\r\n\r\n").trailers);
        assert!(!head("GET / HTTP/1.1\r\nX-TE: trailers\r\n\r\n").trailers);
    }

    proptest::proptest! {
        /// Whatever arrives, parsing returns (no panic), and an accepted head never leaves both
        /// framing headers or a body framing the request did not ask for.
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let mut buf = BytesMut::from(&bytes[..]);
            if let Ok(Parsed::Complete(h)) = parse_request(&mut buf, LIMITS, &mut Vec::new()) {
                let headers = h.request.headers();
                proptest::prop_assert!(!(headers.contains_key(CONTENT_LENGTH) && headers.contains_key(TRANSFER_ENCODING)));
            }
        }

        /// A head split anywhere parses once whole, and leaves exactly the body behind.
        #[test]
        fn split_heads(cut in 0usize..60) {
            let wire = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok";
            let head_len = wire.len() - 2;
            let cut = cut.min(wire.len());
            let mut buf = BytesMut::from(&wire[..cut]);
            let mut scratch = Vec::new();
            let first = parse_request(&mut buf, LIMITS, &mut scratch);
            if cut < head_len {
                proptest::prop_assert!(matches!(first, Ok(Parsed::Partial)));
                buf.extend_from_slice(&wire[cut..]);
                let second = parse_request(&mut buf, LIMITS, &mut scratch);
                proptest::prop_assert!(matches!(second, Ok(Parsed::Complete(_))));
                proptest::prop_assert_eq!(&buf[..], b"ok");
            } else {
                proptest::prop_assert!(matches!(first, Ok(Parsed::Complete(_))));
                proptest::prop_assert_eq!(&buf[..], &wire[head_len..cut]);
            }
        }
    }
}
