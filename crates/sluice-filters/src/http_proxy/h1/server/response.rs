//! The response head we write to the client, and how its body is framed.
//!
//! The framing headers are ours to write: whatever `Content-Length` or `Transfer-Encoding`
//! the response carried describes another hop (or nothing, for a local reply), so the body
//! is framed from what the body itself says it is.

use bytes::{BufMut, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode, Version};
use http_body::Body as _;

use super::date;
use crate::http_proxy::body::Body;
use crate::http_proxy::h1::{fields_len, put_field, put_length, Framing};

/// How the response body is sent (an unknown length to an HTTP/1.0 client means the
/// connection closes after it).
pub fn response_framing(
    status: StatusCode,
    head_request: bool,
    body: &Body,
    client: Version,
) -> Framing {
    // These have no body whatever the headers say (RFC 9112 section 6.3).
    if head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Framing::Empty;
    }
    if body.is_end_stream() {
        return Framing::Length(0);
    }
    match body.size_hint().exact() {
        Some(n) => Framing::Length(n),
        None if client == Version::HTTP_11 => Framing::Chunked,
        // An HTTP/1.0 client knows no chunked coding: the close ends the body.
        None => Framing::UntilClose,
    }
}

/// Writes the status line and header section. `keep_alive` is what the connection will do
/// after this response; `client` the request's version (an HTTP/1.0 client is told that the
/// connection stays open, since it would assume the opposite).
pub fn encode_response(
    status: StatusCode,
    headers: &HeaderMap,
    framing: Framing,
    body: &Body,
    keep_alive: bool,
    client: Version,
    out: &mut BytesMut,
) {
    out.reserve(64 + fields_len(headers));
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.put_slice(b"\r\n");
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    // A bodiless response (HEAD, 204, 304) may say what the body would have been; one with a
    // body gets our framing in place of whatever it carried.
    let bodiless = framing == Framing::Empty;
    let mut dated = false;
    for (name, value) in headers {
        dated |= name == DATE;
        let skip = name == TRANSFER_ENCODING
            || (name == CONTENT_LENGTH && !bodiless)
            || (name == CONNECTION && !switching);
        if !skip {
            put_field(out, name, value);
        }
    }
    match framing {
        Framing::Length(n) => put_length(out, n),
        Framing::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
        Framing::Empty => {
            // A HEAD answer from a local reply: the length its body would have had.
            let exact = body.size_hint().exact().filter(|&n| n > 0);
            if let (Some(n), false) = (exact, headers.contains_key(CONTENT_LENGTH)) {
                if !switching && !status.is_informational() && status != StatusCode::NO_CONTENT {
                    put_length(out, n);
                }
            }
        }
        Framing::UntilClose => {}
    }
    if !switching {
        if !keep_alive {
            out.put_slice(b"connection: close\r\n");
        } else if client == Version::HTTP_10 {
            out.put_slice(b"connection: keep-alive\r\n");
        }
    }
    if !dated {
        out.put_slice(b"date: ");
        date::put(out);
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_proxy::body::{empty, full};
    use http::HeaderValue;

    fn encode(status: u16, headers: &[(&str, &str)], framing: Framing, body: &Body) -> String {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let mut out = BytesMut::new();
        let status = StatusCode::from_u16(status).unwrap();
        encode_response(
            status,
            &map,
            framing,
            body,
            true,
            Version::HTTP_11,
            &mut out,
        );
        String::from_utf8(out.to_vec()).unwrap()
    }

    /// A body that does not know its length.
    struct Unsized;

    impl http_body::Body for Unsized {
        type Data = bytes::Bytes;
        type Error = crate::http_proxy::body::BoxError;

        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            std::task::Poll::Ready(None)
        }
    }

    #[test]
    fn framing_choices() {
        let ok = StatusCode::OK;
        assert_eq!(
            response_framing(ok, false, &empty(), Version::HTTP_11),
            Framing::Length(0)
        );
        assert_eq!(
            response_framing(ok, false, &full("abc"), Version::HTTP_11),
            Framing::Length(3)
        );
        assert_eq!(
            response_framing(ok, true, &full("abc"), Version::HTTP_11),
            Framing::Empty
        );
        let no_content = StatusCode::NO_CONTENT;
        assert_eq!(
            response_framing(no_content, false, &full("x"), Version::HTTP_11),
            Framing::Empty
        );
        let streamed: Body = http_body_util::BodyExt::boxed(Unsized);
        assert_eq!(
            response_framing(ok, false, &streamed, Version::HTTP_11),
            Framing::Chunked
        );
        assert_eq!(
            response_framing(ok, false, &streamed, Version::HTTP_10),
            Framing::UntilClose
        );
    }

    #[test]
    fn our_framing_replaces_theirs() {
        let wire = encode(
            200,
            &[
                ("content-length", "99"),
                ("transfer-encoding", "chunked"),
                ("x-a", "1"),
                ("date", "d"),
            ],
            Framing::Length(3),
            &full("abc"),
        );
        assert_eq!(
            wire,
            "HTTP/1.1 200 OK\r\nx-a: 1\r\ndate: d\r\ncontent-length: 3\r\n\r\n"
        );
    }

    #[test]
    fn head_answers_keep_or_state_the_length() {
        let kept = encode(
            200,
            &[("content-length", "99"), ("date", "d")],
            Framing::Empty,
            &empty(),
        );
        assert_eq!(
            kept,
            "HTTP/1.1 200 OK\r\ncontent-length: 99\r\ndate: d\r\n\r\n"
        );
        let local = encode(200, &[("date", "d")], Framing::Empty, &full("ok"));
        assert_eq!(
            local,
            "HTTP/1.1 200 OK\r\ndate: d\r\ncontent-length: 2\r\n\r\n"
        );
    }

    #[test]
    fn a_date_is_added() {
        let wire = encode(404, &[], Framing::Length(0), &empty());
        assert!(
            wire.starts_with("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\ndate: "),
            "{wire}"
        );
        assert!(wire.ends_with(" GMT\r\n\r\n"), "{wire}");
    }
}
