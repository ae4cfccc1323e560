//! HTTP/1.1 on the wire (RFC 9112), the pieces both directions share: how a body is framed,
//! the chunked coding, and the sending half of a message. The upstream client lives in
//! `pool/h1`, the downstream server in [`server`].

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::TRANSFER_ENCODING;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::http_proxy::recycle;

pub mod chunked;
pub mod fuzz;
pub mod outgoing;
pub mod server;

/// How a message body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// `Content-Length`.
    Length(u64),
    Chunked,
    /// Responses only: the body runs until the sender closes the connection.
    UntilClose,
}

/// The decimal digits of `n`, written into `buf`.
pub fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Why a message's `Content-Length` cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthError {
    /// A value that is not plain digits (no sign, no whitespace inside, at most 19).
    Invalid,
    /// Values (in one field as a list, or in several fields) that disagree.
    Differing,
}

/// A message's `Content-Length`, gathered field by field while its head is parsed (a lookup
/// in the finished header map costs a hash per message). Repeated identical values are one
/// length (RFC 9110 section 8.6); anything else is an error, never a guess.
#[derive(Debug, Default, Clone, Copy)]
pub struct ContentLength {
    seen: bool,
    value: Option<u64>,
    error: Option<LengthError>,
}

impl ContentLength {
    /// Takes one `Content-Length` field's value.
    pub fn add(&mut self, field: &[u8]) {
        self.seen = true;
        if self.error.is_some() {
            return;
        }
        for part in list(field) {
            match parse_decimal(part) {
                None => {
                    self.error = Some(LengthError::Invalid);
                    return;
                }
                Some(n) if self.value.is_some_and(|l| l != n) => {
                    self.error = Some(LengthError::Differing);
                    return;
                }
                Some(n) => self.value = Some(n),
            }
        }
    }

    /// Whether the message had a `Content-Length` field at all (valid or not).
    pub fn seen(&self) -> bool {
        self.seen
    }

    /// The length, if the message declared one.
    pub fn get(&self) -> Result<Option<u64>, LengthError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.value),
        }
    }
}

/// Digits only (no sign, no whitespace), at most 19 of them (so no overflow). By hand: a
/// UTF-8 check and `str::parse` were most of the cost of a length, paid per message.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// The transfer codings a message lists, in order, across all its `Transfer-Encoding` fields.
pub fn transfer_codings(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| list(v.as_bytes()))
        .filter(|t| !t.is_empty())
}

/// The elements of a comma-separated field value, trimmed (empty ones included).
pub fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}

/// What a head's `Connection` fields say, gathered field by field while it is parsed.
/// `close` and `keep-alive` describe this hop only and are consumed there; a field naming
/// anything else (`upgrade`, or fields to drop) is kept for the proxy to act on.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConnectionTokens {
    pub close: bool,
    pub keep_alive: bool,
    pub upgrade: bool,
}

impl ConnectionTokens {
    /// Takes one `Connection` field's value; true when it names only `close`/`keep-alive`
    /// (the field need not be kept).
    pub fn add(&mut self, value: &[u8]) -> bool {
        let mut only_persistence = true;
        for token in list(value) {
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else {
                self.upgrade |= token.eq_ignore_ascii_case(b"upgrade");
                only_persistence = false;
            }
        }
        only_persistence
    }
}

/// The header map of a head split off the read buffer: each value shares `head`'s bytes at
/// the span noted for it while parsing (`fields` is emptied). `room`: extra slots for what
/// the proxy adds, since growing a map rehashes it. On a value that is not a valid field
/// value, the name of its field.
pub fn header_map(
    head: &Bytes,
    fields: &mut Vec<(HeaderName, Range<usize>)>,
    room: usize,
) -> Result<HeaderMap, HeaderName> {
    let mut headers = recycle::header_map(fields.len() + room);
    for (name, span) in fields.drain(..) {
        match head
            .get(span.clone())
            .map(|_| head.slice(span))
            .and_then(|v| HeaderValue::from_maybe_shared(v).ok())
        {
            Some(value) => {
                headers.append(name, value);
            }
            None => return Err(name),
        }
    }
    Ok(headers)
}

/// A field name off the wire, which the parser has checked is a token. The names nearly
/// every message carries are recognised by length and a word-wise case-insensitive compare;
/// `HeaderName::from_bytes` lowercases a copy of the name and then matches it against every
/// standard name, several times the work per field. Anything else goes the general way.
pub fn field_name(name: &[u8]) -> Result<HeaderName, http::header::InvalidHeaderName> {
    use http::header::{
        ACCEPT, ACCEPT_ENCODING, ACCEPT_LANGUAGE, CACHE_CONTROL, CONNECTION, CONTENT_LENGTH,
        CONTENT_TYPE, DATE, ETAG, HOST, LAST_MODIFIED, SERVER, USER_AGENT,
    };
    let is = |known: &[u8]| same_name(name, known);
    Ok(match name.len() {
        4 if is(b"host") => HOST,
        4 if is(b"date") => DATE,
        4 if is(b"etag") => ETAG,
        6 if is(b"server") => SERVER,
        6 if is(b"accept") => ACCEPT,
        10 if is(b"user-agent") => USER_AGENT,
        10 if is(b"connection") => CONNECTION,
        12 if is(b"content-type") => CONTENT_TYPE,
        13 if is(b"cache-control") => CACHE_CONTROL,
        13 if is(b"last-modified") => LAST_MODIFIED,
        14 if is(b"content-length") => CONTENT_LENGTH,
        15 if is(b"accept-encoding") => ACCEPT_ENCODING,
        15 if is(b"accept-language") => ACCEPT_LANGUAGE,
        _ => return HeaderName::from_bytes(name),
    })
}

/// Whether `name` (a token of `known`'s length, at least 4 bytes) is `known` (lowercase
/// letters and `-`) in any case. Two overlapping words are compared with the case bit (0x20)
/// set in each byte: that lowercases letters and leaves `-` alone, and of the bytes it could
/// confuse with a letter or `-`, only CR (for `-`) is outside the others' ranges, and a token
/// has none.
fn same_name(name: &[u8], known: &[u8]) -> bool {
    let len = known.len();
    let (width, case) = if len >= 8 {
        (8, 0x2020_2020_2020_2020)
    } else {
        (4, 0x2020_2020)
    };
    let word = |bytes: &[u8], at: usize| {
        let mut buf = [0u8; 8];
        match (bytes.get(at..at + width), buf.get_mut(..width)) {
            (Some(src), Some(dst)) => {
                dst.copy_from_slice(src);
                Some(u64::from_le_bytes(buf))
            }
            _ => None,
        }
    };
    let tail = len.saturating_sub(width);
    name.len() == len
        && len >= 4
        && matches!((word(name, 0), word(known, 0)), (Some(a), Some(b)) if a | case == b)
        && matches!((word(name, tail), word(known, tail)), (Some(a), Some(b)) if a | case == b)
}

/// Bytes the header section of `headers` takes on the wire (for reserving once).
pub fn fields_len(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

/// Writes one header field line.
pub fn put_field(out: &mut BytesMut, name: &HeaderName, value: &HeaderValue) {
    out.put_slice(name.as_str().as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

/// Writes our `content-length` field.
pub fn put_length(out: &mut BytesMut, n: u64) {
    out.put_slice(b"content-length: ");
    out.put_slice(itoa(n, &mut [0; 20]));
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_digits() {
        assert_eq!(itoa(0, &mut [0; 20]), b"0");
        assert_eq!(itoa(u64::MAX, &mut [0; 20]), b"18446744073709551615");
    }

    #[test]
    fn field_names_known_or_not() {
        for name in [
            "Host",
            "DATE",
            "etag",
            "Server",
            "accept",
            "User-Agent",
            "connection",
            "Content-Type",
            "cache-control",
            "Last-Modified",
            "Content-Length",
            "Accept-Encoding",
            "accept-language",
            "X-Custom",
            "te",
            "Hostx",
        ] {
            let ours = field_name(name.as_bytes()).unwrap();
            assert_eq!(
                ours,
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                "{name}"
            );
            assert_eq!(ours.as_str(), name.to_ascii_lowercase());
        }
        // Case differences anywhere, in either word.
        for name in [
            "hOST",
            "hosT",
            "content-lengtH",
            "CONTENT-length",
            "Accept-EncodinG",
        ] {
            let ours = field_name(name.as_bytes()).unwrap();
            assert_eq!(ours.as_str(), name.to_ascii_lowercase(), "{name}");
        }
        // A near miss in the middle or at either end is another name.
        for name in [
            "hist",
            "content_length",
            "xontent-length",
            "content-lengtx",
            "dat3",
        ] {
            let ours = field_name(name.as_bytes()).unwrap();
            assert_eq!(ours.as_str(), name.to_ascii_lowercase(), "{name}");
        }
        // Same length as a known name, but not a token: refused as before.
        assert!(field_name(b"ho t").is_err());
        assert!(field_name(b"content-typ\xff").is_err());
        assert!(field_name(b"").is_err());
    }

    #[test]
    fn connection_tokens() {
        let mut c = ConnectionTokens::default();
        assert!(c.add(b"Keep-Alive , close"));
        assert!(!c.add(b"upgrade, x-drop"));
        assert!((c.close, c.keep_alive, c.upgrade) == (true, true, true));
        let mut c = ConnectionTokens::default();
        assert!(!c.add(b"x-drop"));
        assert!(!c.upgrade && !c.close);
    }

    #[test]
    fn content_lengths() {
        let length = |values: &[&str]| {
            let mut l = ContentLength::default();
            for v in values {
                l.add(v.as_bytes());
            }
            l
        };
        assert_eq!(length(&[]).get(), Ok(None));
        assert!(!length(&[]).seen());
        assert_eq!(length(&["5, 5", "5"]).get(), Ok(Some(5)));
        assert_eq!(length(&["007"]).get(), Ok(Some(7)));
        let most = "9".repeat(19);
        assert_eq!(length(&[&most]).get(), Ok(Some(9_999_999_999_999_999_999)));
        assert_eq!(length(&["5", "6"]).get(), Err(LengthError::Differing));
        // The first fault is the one reported.
        assert_eq!(length(&["x", "5", "6"]).get(), Err(LengthError::Invalid));
        for bad in ["+5", "0x5", "5 5", "", "99999999999999999999"] {
            assert_eq!(length(&[bad]).get(), Err(LengthError::Invalid), "{bad:?}");
            assert!(length(&[bad]).seen());
        }
    }
}
