//! Entry points for the cargo-fuzz targets in `fuzz/`: the HTTP/1 parsers on arbitrary bytes,
//! each checking the invariants the proxy relies on. A panic is a finding.

use bytes::BytesMut;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::Method;

use super::chunked::{ChunkedDecoder, Decoded};
use super::server::request::{parse_request, HeadLimits, Parsed};
use super::Framing;
use crate::http_proxy::pool::h1::head::{parse_response, Parsed as ResponseParsed};

/// A request head: never both framing headers on an accepted request, chunked only when asked
/// for, and what is left in the buffer is a suffix of the input.
pub fn request_head(data: &[u8]) {
    let limits = HeadLimits {
        bytes: 8192,
        fields: 64,
    };
    let mut buf = BytesMut::from(data);
    if let Ok(Parsed::Complete(head)) = parse_request(&mut buf, limits, &mut Vec::new()) {
        let headers = head.request.headers();
        assert!(!(headers.contains_key(CONTENT_LENGTH) && headers.contains_key(TRANSFER_ENCODING)));
        assert_eq!(
            head.framing == Framing::Chunked,
            headers.contains_key(TRANSFER_ENCODING)
        );
        assert_ne!(head.framing, Framing::UntilClose);
        assert!(data.ends_with(&buf));
    }
}

/// A response head, as read from an upstream: a chunked response carries no length on.
pub fn response_head(data: &[u8]) {
    // A 101 is accepted only when the request asked for an upgrade: both ways are parsed.
    for (method, upgrade) in [
        (Method::GET, false),
        (Method::GET, true),
        (Method::HEAD, false),
    ] {
        let mut buf = BytesMut::from(data);
        if let Ok(ResponseParsed::Final(head)) =
            parse_response(&mut buf, &method, upgrade, &mut Vec::new())
        {
            if head.framing == Framing::Chunked {
                assert!(!head.response.headers().contains_key(CONTENT_LENGTH));
            }
            assert!(data.ends_with(&buf));
        }
    }
}

/// The chunked decoder reads the same data, to the same end, whether the bytes arrive at once
/// or one at a time.
pub fn chunked(data: &[u8]) {
    assert_eq!(decode(data, data.len().max(1)), decode(data, 1));
}

/// Data decoded, and how decoding ended (`None`: more bytes needed).
fn decode(data: &[u8], step: usize) -> (Vec<u8>, Option<Result<bool, String>>) {
    let mut decoder = ChunkedDecoder::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in data.chunks(step) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(Decoded::Data(d))) => out.extend_from_slice(&d),
                Ok(Some(Decoded::Trailers(_) | Decoded::End)) => return (out, Some(Ok(true))),
                Ok(None) => break,
                Err(e) => return (out, Some(Err(e.to_string()))),
            }
        }
    }
    (out, None)
}
