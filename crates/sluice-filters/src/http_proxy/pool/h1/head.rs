//! Message heads on an upstream HTTP/1.1 connection: the request head we write, and the
//! response head we read, with the framing of the body that follows each (RFC 9112 section 6).
//!
//! The request comes from hyper (or from our own HTTP/2 side), so its method, target and
//! fields are already valid; only framing is decided here. The response head comes from the
//! upstream and is parsed with `httparse` (hyper's own parser); how its body is delimited is
//! decided strictly, because a response read two ways desynchronises a pooled connection.

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, Method, Response, StatusCode, Version};

use crate::http_proxy::h1::{
    field_name, fields_len, header_map, put_field, put_length, transfer_codings, ConnectionTokens,
    ContentLength, Framing,
};

/// Largest response head we accept (Envoy's default `max_response_headers_kb` is 60).
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Most header fields in a response head.
const MAX_RESPONSE_FIELDS: usize = 128;

/// How the request body goes out: kept from the client's `Content-Length` when it sent one
/// (hyper has checked the body against it), else from an exact size, else chunked.
pub fn request_framing(headers: &HeaderMap, end_stream: bool, exact: Option<u64>) -> Framing {
    if end_stream {
        return Framing::Empty;
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok()?.parse().ok());
    match declared.or(exact) {
        Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
        None => Framing::Chunked,
    }
}

/// Writes the request line and header section. The framing headers are ours to write:
/// whatever `Content-Length` or `Transfer-Encoding` the request carried is replaced by
/// `framing`'s.
pub fn encode_request(
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    framing: Framing,
    out: &mut BytesMut,
) {
    out.reserve(method.as_str().len() + target.len() + 40 + fields_len(headers));
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(target.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    let mut had_length = false;
    for (name, value) in headers {
        if name == CONTENT_LENGTH {
            had_length = true;
        } else if name != TRANSFER_ENCODING {
            put_field(out, name, value);
        }
    }
    match framing {
        Framing::Length(n) => put_length(out, n),
        Framing::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
        // A method that defines a body says it is empty; others say nothing (RFC 9110
        // section 8.6), unless the client did.
        Framing::Empty | Framing::UntilClose => {
            if had_length || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
                out.put_slice(b"content-length: 0\r\n");
            }
        }
    }
    out.put_slice(b"\r\n");
}

/// A response head read off the connection.
#[derive(Debug)]
pub struct ResponseHead {
    pub response: Response<()>,
    pub framing: Framing,
    /// The connection can carry another request after this response.
    pub keep_alive: bool,
}

/// What the front of the read buffer holds.
#[derive(Debug)]
pub enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// An interim (1xx, not 101) response of this many bytes: skipped.
    Interim(usize),
    Final(ResponseHead),
}

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("invalid response head: {0}")]
    Parse(httparse::Error),
    #[error("response head larger than {MAX_RESPONSE_HEAD} bytes")]
    TooLarge,
    #[error("invalid response header {0:?}")]
    Field(String),
    #[error("invalid content-length in the response")]
    ContentLength,
    #[error("unsupported transfer-encoding {0:?} in the response")]
    TransferEncoding(String),
    #[error("101 Switching Protocols for a request that asked for no upgrade")]
    UnrequestedUpgrade,
}

/// Parses a response head from the front of `buf`; on `Final`, the head's bytes have been
/// split off `buf` (header values share them) and the body starts at its front.
/// `method` is the request's (a response to HEAD has no body whatever it says);
/// `upgrade`, whether the request asked to switch protocols; `fields_scratch` is working
/// space, kept by the caller so that it is allocated once per connection.
pub fn parse_response(
    buf: &mut BytesMut,
    method: &Method,
    upgrade: bool,
    fields_scratch: &mut Vec<(HeaderName, Range<usize>)>,
) -> Result<Parsed, HeadError> {
    // Left uninitialised: zeroing 128 fields per response cost more than parsing them.
    let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_RESPONSE_FIELDS];
    let mut parsed = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut parsed,
        buf,
        &mut fields,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_RESPONSE_HEAD => {
            return Ok(Parsed::Partial)
        }
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            return Err(HeadError::TooLarge)
        }
        Err(e) => return Err(HeadError::Parse(e)),
    };
    if len > MAX_RESPONSE_HEAD {
        return Err(HeadError::TooLarge);
    }
    let code = parsed.code.unwrap_or(0);
    let status =
        StatusCode::from_u16(code).map_err(|_| HeadError::Parse(httparse::Error::Status))?;
    if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(Parsed::Interim(len));
    }
    if status == StatusCode::SWITCHING_PROTOCOLS && !upgrade {
        return Err(HeadError::UnrequestedUpgrade);
    }
    let version = if parsed.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    // Names now; values once the head is split off the buffer, so that they can share its
    // bytes (where each value sits is kept in `fields`, a scratch list the connection reuses).
    let base = buf.as_ptr() as usize;
    fields_scratch.clear();
    let mut connection = ConnectionTokens::default();
    // The framing fields, noted on the way: no lookups in the finished map.
    let (mut length, mut coded) = (ContentLength::default(), false);
    for f in parsed.headers.iter() {
        let name =
            field_name(f.name.as_bytes()).map_err(|_| HeadError::Field(f.name.to_owned()))?;
        // `Connection: keep-alive` (or `close`) and `Keep-Alive` describe this hop only, and
        // nearly every response carries one: noted here rather than stored and then removed
        // with the other hop-by-hop fields. A `Connection` naming other fields stays, for the
        // hop-by-hop pass to act on.
        if name == CONNECTION {
            if connection.add(f.value) {
                continue;
            }
        } else if name.as_str() == "keep-alive" {
            continue;
        } else if name == CONTENT_LENGTH {
            length.add(f.value);
        } else if name == TRANSFER_ENCODING {
            coded = true;
        }
        let start = f.value.as_ptr() as usize - base;
        fields_scratch.push((name, start..start + f.value.len()));
    }
    let head: Bytes = buf.split_to(len).freeze();
    // Room for what the proxy adds (x-request-id, via).
    let mut headers =
        header_map(&head, fields_scratch, 2).map_err(|name| HeadError::Field(name.to_string()))?;

    let (framing, mut keep_alive) =
        response_framing(&headers, status, method, version, coded, length)?;
    if framing == Framing::Chunked && length.seen() {
        // Chunked overrides any length (RFC 9112 section 6.3), which must not travel on.
        headers.remove(CONTENT_LENGTH);
    }
    if framing == Framing::UntilClose || connection.close {
        keep_alive = false;
    }
    if status == StatusCode::SWITCHING_PROTOCOLS {
        keep_alive = false;
    }
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = version;
    *response.headers_mut() = headers;
    Ok(Parsed::Final(ResponseHead {
        response,
        framing,
        keep_alive,
    }))
}

/// RFC 9112 section 6.3, in its order. Returns the framing and whether the connection may
/// stay open (a response that sends both framing headers is an attempt at smuggling, or a
/// broken server: it is read as chunked, and the connection is not reused).
fn response_framing(
    headers: &HeaderMap,
    status: StatusCode,
    method: &Method,
    version: Version,
    coded: bool,
    length: ContentLength,
) -> Result<(Framing, bool), HeadError> {
    let keep_alive = version == Version::HTTP_11;
    if *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status == StatusCode::SWITCHING_PROTOCOLS
    {
        return Ok((Framing::Empty, keep_alive));
    }
    if coded {
        // Only `chunked` alone: another coding under it would reach the client undeclared.
        let mut codings = transfer_codings(headers);
        let only_chunked = matches!(
            (codings.next(), codings.next()),
            (Some(c), None) if c.eq_ignore_ascii_case(b"chunked")
        );
        if !only_chunked || version == Version::HTTP_10 {
            let value = headers
                .get(TRANSFER_ENCODING)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            return Err(HeadError::TransferEncoding(value));
        }
        return Ok((Framing::Chunked, keep_alive && !length.seen()));
    }
    let length = length.get().map_err(|_| HeadError::ContentLength)?;
    Ok(match length {
        Some(0) => (Framing::Empty, keep_alive),
        Some(n) => (Framing::Length(n), keep_alive),
        None => (Framing::UntilClose, false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn parse(wire: &str, method: Method) -> Result<Parsed, HeadError> {
        let mut buf = BytesMut::from(wire.as_bytes());
        parse_response(&mut buf, &method, false, &mut Vec::new())
    }

    fn final_head(wire: &str, method: Method) -> ResponseHead {
        match parse(wire, method) {
            Ok(Parsed::Final(h)) => h,
            other => panic!("{wire:?}: {other:?}"),
        }
    }

    #[test]
    fn request_head_replaces_framing_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("a"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("5"));
        let framing = request_framing(&headers, false, None);
        assert_eq!(framing, Framing::Length(5));
        let mut out = BytesMut::new();
        encode_request(&Method::POST, "/x?y", &headers, framing, &mut out);
        assert_eq!(
            &out[..],
            b"POST /x?y HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\n"
        );

        headers.remove(CONTENT_LENGTH);
        headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        let framing = request_framing(&headers, false, None);
        let mut out = BytesMut::new();
        encode_request(&Method::PUT, "/", &headers, framing, &mut out);
        assert_eq!(
            &out[..],
            b"PUT / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n"
        );

        let mut out = BytesMut::new();
        encode_request(
            &Method::GET,
            "/",
            &HeaderMap::new(),
            Framing::Empty,
            &mut out,
        );
        assert_eq!(&out[..], b"GET / HTTP/1.1\r\n\r\n");
        let mut out = BytesMut::new();
        encode_request(
            &Method::POST,
            "/",
            &HeaderMap::new(),
            Framing::Empty,
            &mut out,
        );
        assert_eq!(&out[..], b"POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n");
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        let h = final_head(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
            Method::GET,
        );
        assert_eq!(h.framing, Framing::Length(3));
        assert!(h.keep_alive);
        assert_eq!(h.response.headers()["content-length"], "3");

        let h = final_head("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", Method::HEAD);
        assert_eq!(h.framing, Framing::Empty);
        let h = final_head("HTTP/1.1 204 No Content\r\n\r\n", Method::GET);
        assert_eq!(h.framing, Framing::Empty);
        let h = final_head(
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            Method::GET,
        );
        assert_eq!(h.framing, Framing::Empty);

        let h = final_head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n",
            Method::GET,
        );
        assert_eq!(h.framing, Framing::Chunked);
        assert!(h.keep_alive);
        // Both: chunked wins, and the connection is not reused.
        let h = final_head(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            Method::GET,
        );
        assert_eq!(h.framing, Framing::Chunked);
        assert!(!h.keep_alive);
        assert!(!h.response.headers().contains_key(CONTENT_LENGTH));

        let h = final_head("HTTP/1.1 200 OK\r\n\r\n", Method::GET);
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(!h.keep_alive);
        let h = final_head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", Method::GET);
        assert!(!h.keep_alive);
        let h = final_head(
            "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 1\r\n\r\n",
            Method::GET,
        );
        assert!(!h.keep_alive);
        // Repeated identical lengths are one length.
        let h = final_head(
            "HTTP/1.1 200 OK\r\nContent-Length: 4, 4\r\nContent-Length: 4\r\n\r\n",
            Method::GET,
        );
        assert_eq!(h.framing, Framing::Length(4));
    }

    #[test]
    fn persistence_fields_are_read_not_kept() {
        let h = final_head(
            "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 1\r\n\r\n",
            Method::GET,
        );
        assert!(!h.keep_alive);
        assert!(!h.response.headers().contains_key(CONNECTION));
        let h = final_head(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 1\r\n\r\n",
            Method::GET,
        );
        assert!(h.keep_alive);
        let names: Vec<&str> = h.response.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["content-length"]);
        // A `Connection` that names fields stays, for the hop-by-hop pass.
        let h = final_head(
            "HTTP/1.1 200 OK\r\nConnection: close, x-private\r\nx-private: 1\r\nContent-Length: 1\r\n\r\n",
            Method::GET,
        );
        assert!(!h.keep_alive);
        assert_eq!(h.response.headers()[CONNECTION], "close, x-private");
    }

    #[test]
    fn ambiguous_framing_is_an_error() {
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0x3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/2.0 200 OK\r\n\r\n",
        ] {
            assert!(
                !matches!(
                    parse(bad, Method::GET),
                    Ok(Parsed::Final(_)) | Ok(Parsed::Partial)
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn interim_partial_and_oversized_heads() {
        assert!(matches!(
            parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200", Method::GET),
            Ok(Parsed::Interim(25))
        ));
        assert!(matches!(
            parse("HTTP/1.1 200 OK\r\nA: b", Method::GET),
            Ok(Parsed::Partial)
        ));
        let big = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_RESPONSE_HEAD));
        assert!(matches!(parse(&big, Method::GET), Err(HeadError::TooLarge)));
        let many: String = (0..200).map(|i| format!("x-{i}: v\r\n")).collect();
        let many = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert!(matches!(
            parse(&many, Method::GET),
            Err(HeadError::TooLarge)
        ));
    }

    #[test]
    fn upgrade_answer_is_read_when_asked_for() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: ws\r\nConnection: upgrade\r\n\r\nxyz"[..],
        );
        let Ok(Parsed::Final(h)) = parse_response(&mut buf, &Method::GET, true, &mut Vec::new())
        else {
            panic!()
        };
        assert_eq!(h.response.status(), 101);
        assert!(!h.keep_alive);
        assert_eq!(&buf[..], b"xyz");
    }

    proptest::proptest! {
        /// Whatever an upstream sends, parsing returns (no panic), and a final head never
        /// claims more bytes than were there.
        #[test]
        fn arbitrary_responses_never_panic(
            prefix in proptest::sample::select(vec!["", "HTTP/1.1 200 OK\r\n", "HTTP/1.0 101 X\r\n"]),
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            upgrade in proptest::prelude::any::<bool>(),
        ) {
            let mut buf = BytesMut::from(prefix.as_bytes());
            buf.extend_from_slice(&input);
            let before = buf.len();
            if let Ok(Parsed::Interim(n)) =
                parse_response(&mut buf, &Method::GET, upgrade, &mut Vec::new())
            {
                proptest::prop_assert!(n <= before);
            }
        }
    }
}
