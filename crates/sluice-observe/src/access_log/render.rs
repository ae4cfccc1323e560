//! Turning a finished request into one log line, text or JSON. Runs on the writer thread.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use http::HeaderName;
use sluice_config::access_log::{Command, HeaderKey, JsonField, LogFormat, Operator, Segment};

use crate::trace::ids::push_hex;
use crate::{Protocol, RequestRecord, ResponseFlags};

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A format ready to render: header names resolved once.
#[derive(Debug)]
pub enum Format {
    Text(Vec<Piece>),
    Json(Vec<(String, JsonPiece)>),
}

#[derive(Debug)]
pub enum Piece {
    Literal(String),
    Op(Op),
}

#[derive(Debug)]
pub struct Op {
    command: Cmd,
    max_len: Option<usize>,
}

/// [`Command`] with `REQ`/`RESP` names made `HeaderName`s.
#[derive(Debug)]
enum Cmd {
    Req(Vec<Key>),
    Resp(Vec<Key>),
    Other(Command),
}

#[derive(Debug)]
enum Key {
    Method,
    Path,
    Authority,
    Scheme,
    Named(HeaderName),
}

#[derive(Debug)]
pub enum JsonPiece {
    Template(Vec<Piece>),
    Raw(String),
    Map(Vec<(String, JsonPiece)>),
}

/// One operator's value, borrowed from the record where it can be; what needs formatting
/// (addresses, flags, times, ids) is written straight into the line, never into a string of
/// its own.
enum Value<'a> {
    Missing,
    Str(&'a str),
    /// A header's value as it came: raw in a text line; JSON gets it as UTF-8 with invalid
    /// bytes replaced.
    Bytes(&'a [u8]),
    Num(u64),
    Addr(SocketAddr),
    Ip(IpAddr),
    Flags(ResponseFlags),
    TraceId(&'a [u8; 16]),
    StartTime(SystemTime, Option<&'a str>),
}

impl Format {
    /// Compiles a decoded format; `headers` collects the request and response headers it reads.
    pub fn new(format: &LogFormat, headers: &mut Headers) -> Result<Format, String> {
        Ok(match format {
            LogFormat::Text(segments) => Format::Text(pieces(segments, headers)?),
            LogFormat::Json(fields) => Format::Json(json_fields(fields, headers)?),
        })
    }

    /// Appends the line for `r` to `out` (the writer's reused line buffer).
    pub fn render(&self, r: &RequestRecord, out: &mut Vec<u8>) {
        match self {
            Format::Text(pieces) => text(pieces, r, out),
            Format::Json(fields) => {
                json_object(fields, r, out);
                out.push(b'\n');
            }
        }
    }
}

/// The headers a format reads, so the proxy captures only those.
#[derive(Debug, Default)]
pub struct Headers {
    pub request: Vec<HeaderName>,
    pub response: Vec<HeaderName>,
}

fn pieces(segments: &[Segment], headers: &mut Headers) -> Result<Vec<Piece>, String> {
    segments
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => Ok(Piece::Literal(l.clone())),
            Segment::Op(op) => compile(op, headers).map(Piece::Op),
        })
        .collect()
}

fn json_fields(
    fields: &[(String, JsonField)],
    headers: &mut Headers,
) -> Result<Vec<(String, JsonPiece)>, String> {
    fields
        .iter()
        .map(|(k, v)| {
            let v = match v {
                JsonField::Template(s) => JsonPiece::Template(pieces(s, headers)?),
                JsonField::Raw(r) => JsonPiece::Raw(r.clone()),
                JsonField::Map(m) => JsonPiece::Map(json_fields(m, headers)?),
            };
            Ok((k.clone(), v))
        })
        .collect()
}

fn compile(op: &Operator, headers: &mut Headers) -> Result<Op, String> {
    let keys = |list: &[HeaderKey], into: &mut Vec<HeaderName>| -> Result<Vec<Key>, String> {
        list.iter()
            .map(|k| {
                Ok(match k {
                    HeaderKey::Method => Key::Method,
                    HeaderKey::Path => Key::Path,
                    HeaderKey::Authority => Key::Authority,
                    HeaderKey::Scheme => Key::Scheme,
                    HeaderKey::Named(n) => {
                        let name = HeaderName::from_bytes(n.as_bytes())
                            .map_err(|_| format!("\"{n}\" is not a header name"))?;
                        if !into.contains(&name) {
                            into.push(name.clone());
                        }
                        Key::Named(name)
                    }
                })
            })
            .collect()
    };
    let command = match &op.command {
        Command::Req(list) => Cmd::Req(keys(list, &mut headers.request)?),
        Command::Resp(list) => Cmd::Resp(keys(list, &mut headers.response)?),
        other => Cmd::Other(other.clone()),
    };
    Ok(Op {
        command,
        max_len: op.max_len,
    })
}

fn text(pieces: &[Piece], r: &RequestRecord, out: &mut Vec<u8>) {
    for p in pieces {
        match p {
            Piece::Literal(l) => out.extend_from_slice(l.as_bytes()),
            Piece::Op(op) => {
                let start = out.len();
                if write(op.value(r), out) {
                    cut(out, start, op.max_len);
                } else {
                    out.push(b'-');
                }
            }
        }
    }
}

/// Appends a value's text; false, with nothing written, when it is missing. Inlined with
/// [`Op::value`] so that the value is written where it is found, without a `Value` in between.
#[inline(always)]
fn write(v: Value<'_>, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    // Writing into a Vec fails only on a formatting error (a bad strftime pattern).
    let written = match v {
        Value::Missing => return false,
        Value::Str(s) => {
            out.extend_from_slice(s.as_bytes());
            Ok(())
        }
        Value::Bytes(b) => {
            out.extend_from_slice(b);
            Ok(())
        }
        Value::Num(n) => {
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            Ok(())
        }
        Value::Addr(a) => write!(out, "{a}"),
        Value::Ip(ip) => write!(out, "{ip}"),
        Value::Flags(f) => {
            let mut codes = String::with_capacity(8);
            f.write_codes(&mut codes);
            out.extend_from_slice(codes.as_bytes());
            Ok(())
        }
        Value::TraceId(id) => {
            push_hex(id, out);
            Ok(())
        }
        Value::StartTime(t, format) => start_time(t, format, out),
    };
    if written.is_err() {
        out.truncate(start);
        return false;
    }
    true
}

/// Cuts what was written from `start` to at most `max` bytes, at a character boundary.
fn cut(out: &mut Vec<u8>, start: usize, max: Option<usize>) {
    let Some(max) = max else { return };
    let mut end = start + max;
    if end >= out.len() {
        return;
    }
    // Back off continuation bytes of a UTF-8 sequence.
    while end > start && out[end] & 0xc0 == 0x80 {
        end -= 1;
    }
    out.truncate(end);
}

fn json_object(fields: &[(String, JsonPiece)], r: &RequestRecord, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_string(key, out);
        out.push(b':');
        match value {
            JsonPiece::Raw(raw) => out.extend_from_slice(raw.as_bytes()),
            JsonPiece::Map(m) => json_object(m, r, out),
            // One operator alone keeps its type: a number, or null when missing.
            JsonPiece::Template(pieces) => match pieces.as_slice() {
                [Piece::Op(op)] => match op.value(r) {
                    Value::Missing => out.extend_from_slice(b"null"),
                    Value::Num(n) => {
                        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes())
                    }
                    Value::Str(s) if op.max_len.is_none() => json_string(s, out),
                    v => {
                        let mut s = Vec::new();
                        if write(v, &mut s) {
                            cut(&mut s, 0, op.max_len);
                            json_string(&String::from_utf8_lossy(&s), out);
                        } else {
                            out.extend_from_slice(b"null");
                        }
                    }
                },
                _ => {
                    let mut s = Vec::new();
                    text(pieces, r, &mut s);
                    json_string(&String::from_utf8_lossy(&s), out);
                }
            },
        }
    }
    out.push(b'}');
}

fn json_string(s: &str, out: &mut Vec<u8>) {
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn some_str(s: Option<&str>) -> Value<'_> {
    match s {
        Some(s) if !s.is_empty() => Value::Str(s),
        _ => Value::Missing,
    }
}

fn ms(d: Option<Duration>) -> Value<'static> {
    d.map_or(Value::Missing, |d| {
        Value::Num(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    })
}

fn addr(a: Option<SocketAddr>, port: bool) -> Value<'static> {
    match a {
        Some(a) if port => Value::Addr(a),
        Some(a) => Value::Ip(a.ip()),
        None => Value::Missing,
    }
}

impl Op {
    #[inline(always)]
    fn value<'a>(&'a self, r: &'a RequestRecord) -> Value<'a> {
        let c = match &self.command {
            Cmd::Req(keys) => return header(keys, r, true),
            Cmd::Resp(keys) => return header(keys, r, false),
            Cmd::Other(c) => c,
        };
        let tcp = r.protocol == Protocol::Tcp;
        match c {
            Command::StartTime(format) => Value::StartTime(r.start_time, format.as_deref()),
            Command::ResponseCode => match r.response_code {
                Some(code) => Value::Num(u64::from(code)),
                // Envoy: 0 when no response was sent; not applicable to TCP.
                None if tcp => Value::Missing,
                None => Value::Num(0),
            },
            Command::ResponseCodeDetails => some_str(Some(&r.response_code_details)),
            Command::ResponseFlags if r.response_flags.is_empty() => Value::Str("-"),
            Command::ResponseFlags => Value::Flags(r.response_flags),
            Command::Duration => ms(r.duration),
            Command::ResponseDuration => ms(r.response_started),
            Command::BytesReceived => Value::Num(r.bytes_received),
            Command::BytesSent => Value::Num(r.bytes_sent),
            Command::Protocol if tcp => Value::Missing,
            Command::Protocol => Value::Str(r.protocol.as_str()),
            Command::UpstreamHost => some_str(r.upstream_host.as_deref()),
            Command::UpstreamCluster => some_str(r.upstream_cluster.as_deref()),
            Command::UpstreamTransportFailureReason => {
                some_str(r.upstream_failure_reason.as_deref())
            }
            Command::UpstreamRequestAttemptCount => Value::Num(u64::from(r.upstream_attempts)),
            Command::DownstreamRemoteAddress => addr(r.downstream_remote, true),
            Command::DownstreamRemoteAddressWithoutPort => addr(r.downstream_remote, false),
            Command::DownstreamLocalAddress => addr(r.downstream_local, true),
            Command::DownstreamLocalAddressWithoutPort => addr(r.downstream_local, false),
            Command::RequestedServerName => some_str(r.requested_server_name.as_deref()),
            Command::DownstreamPeerUriSan => some_str(r.downstream_peer_uri_san.as_deref()),
            Command::RouteName => some_str(r.route_name.as_deref()),
            Command::Hostname => some_str(Some(hostname())),
            Command::TraceId => match &r.trace {
                // A SkyWalking trace id as the client wrote it.
                Some(t) if t.foreign_trace_id.is_some() => some_str(t.foreign_trace_id.as_deref()),
                Some(t) => Value::TraceId(&t.trace_id),
                None => Value::Missing,
            },
            // Resolved in `compile`.
            Command::Req(_) | Command::Resp(_) => Value::Missing,
        }
    }
}

fn header<'r>(keys: &[Key], r: &'r RequestRecord, request: bool) -> Value<'r> {
    for key in keys {
        let v: Option<&'r str> = match key {
            Key::Method if request => Some(&r.method),
            Key::Path if request => Some(&r.path),
            Key::Authority if request => Some(&r.authority),
            Key::Scheme if request => r.scheme,
            Key::Named(name) => {
                let found = if request {
                    // The id as it went upstream: the proxy makes one when the client sent
                    // none, after the headers were captured.
                    match r.request_id.as_ref() {
                        Some(id) if name == X_REQUEST_ID => Some(id),
                        _ => r.request_header(name),
                    }
                } else {
                    r.response_header(name)
                };
                if let Some(v) = found {
                    return Value::Bytes(v.as_bytes());
                }
                None
            }
            _ => None,
        };
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            return Value::Str(v);
        }
    }
    Value::Missing
}

fn start_time(t: SystemTime, format: Option<&str>, out: &mut Vec<u8>) -> std::io::Result<()> {
    if format.is_none() && default_start_time(t, out) {
        return Ok(());
    }
    let dt = chrono::DateTime::<chrono::Utc>::from(t);
    match format {
        None => write!(out, "{}", dt.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
        Some(f) => write!(out, "{}", dt.format(f)),
    }
}

/// The default `%START_TIME%` (`2024-05-01T12:00:00.123Z`): the date and time are formatted
/// once per second per writer thread, as most lines of a busy second share them; only the
/// milliseconds are written per line. False before 1970 (left to chrono).
fn default_start_time(t: SystemTime, out: &mut Vec<u8>) -> bool {
    thread_local! {
        static SECOND: std::cell::RefCell<(u64, Vec<u8>)> =
            const { std::cell::RefCell::new((u64::MAX, Vec::new())) };
    }
    let Ok(since) = t.duration_since(std::time::UNIX_EPOCH) else {
        return false;
    };
    let (secs, ms) = (since.as_secs(), since.subsec_millis());
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            let dt = chrono::DateTime::<chrono::Utc>::from(t);
            cached.1.clear();
            if write!(cached.1, "{}", dt.format("%Y-%m-%dT%H:%M:%S")).is_err() {
                cached.0 = u64::MAX;
                return false;
            }
            cached.0 = secs;
        }
        out.extend_from_slice(&cached.1);
        // Milliseconds are below 1000: three digits, by hand.
        let digit = |d: u32| b'0' + (d % 10) as u8;
        out.extend_from_slice(&[b'.', digit(ms / 100), digit(ms / 10), digit(ms), b'Z']);
        true
    })
}

/// This machine's name (`uname -n`), read once.
fn hostname() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{ResponseFlags, TraceContext};
    use sluice_config::access_log::format::parse;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn cached_start_time_matches_chrono() {
        for ms in [
            1_700_000_000_123u64,
            1_700_000_000_999,
            1_700_000_001_000,
            5,
        ] {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            let want = chrono::DateTime::<chrono::Utc>::from(t)
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string();
            let mut out = Vec::new();
            assert!(default_start_time(t, &mut out));
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    fn record() -> RequestRecord {
        let mut r = RequestRecord::new(Protocol::Http11, "web".into());
        r.start_time = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        r.method = "GET".into();
        r.path = "/a?b=1".into();
        r.authority = "example.com".into();
        r.response_code = Some(503);
        r.response_flags = ResponseFlags::UPSTREAM_CONNECTION_FAILURE
            | ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED;
        r.duration = Some(Duration::from_millis(42));
        r.upstream_host = Some("10.0.0.1:80".into());
        r.downstream_remote = Some("127.0.0.1:5555".parse().unwrap());
        r.request_headers.push((
            HeaderName::from_static("user-agent"),
            http::HeaderValue::from_static("curl/8.5.0"),
        ));
        r.trace = Some(TraceContext {
            trace_id: [0xab; 16],
            span_id: [1; 8],
            parent_span_id: None,
            sampled: true,
            foreign_trace_id: None,
        });
        r
    }

    fn render_text(f: &str, r: &RequestRecord) -> (String, Headers) {
        let mut h = Headers::default();
        let f = Format::new(&LogFormat::Text(parse(f).unwrap()), &mut h).unwrap();
        let mut out = Vec::new();
        f.render(r, &mut out);
        (String::from_utf8(out).unwrap(), h)
    }

    #[test]
    fn text_operators() {
        let r = record();
        let (line, h) = render_text(
            "[%START_TIME%] %REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS% %DURATION% %UPSTREAM_HOST% %REQ(USER-AGENT):4% %REQ(X-MISSING?USER-AGENT)% %RESP(X-NONE)% %ROUTE_NAME% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%\n",
            &r,
        );
        assert_eq!(
            line,
            "[2023-11-14T22:13:20.123Z] GET /a?b=1 HTTP/1.1 503 UF,URX 42 10.0.0.1:80 curl curl/8.5.0 - - 127.0.0.1\n"
        );
        assert_eq!(
            h.request,
            vec![
                HeaderName::from_static("user-agent"),
                HeaderName::from_static("x-missing")
            ]
        );
        assert_eq!(h.response, vec![HeaderName::from_static("x-none")]);
        let mut with_id = record();
        with_id.request_id = Some(http::HeaderValue::from_static("made-by-proxy"));
        let (line, _) = render_text("%REQ(X-REQUEST-ID)%", &with_id);
        assert_eq!(line, "made-by-proxy");
        let (line, _) = render_text(
            "%START_TIME(%Y/%m/%d %H:%M:%S.%3f|%6f|%9f|%f %s)% %TRACE_ID%",
            &r,
        );
        assert_eq!(
            line,
            format!(
                "2023/11/14 22:13:20.123|123000|123000000|123000000 1700000000 {}",
                "ab".repeat(16)
            )
        );
    }

    #[test]
    fn missing_values_and_tcp() {
        let mut r = RequestRecord::new(Protocol::Tcp, "t".into());
        r.start_time = SystemTime::now();
        r.bytes_received = 5;
        let (line, _) = render_text(
            "%RESPONSE_CODE% %PROTOCOL% %BYTES_RECEIVED% %DURATION% %UPSTREAM_HOST% %RESPONSE_FLAGS%",
            &r,
        );
        assert_eq!(line, "- - 5 - - -");
        let r = RequestRecord::new(Protocol::Http2, "h".into());
        let (line, _) = render_text("%RESPONSE_CODE% %PROTOCOL%", &r);
        assert_eq!(line, "0 HTTP/2");
    }

    #[test]
    fn json_keeps_types() {
        let yaml = "path: stdout\njson_format:\n  path: \"%REQ(:PATH)%\"\n  code: \"%RESPONSE_CODE%\"\n  host: \"%UPSTREAM_HOST%\"\n  route: \"%ROUTE_NAME%\"\n  mix: \"%RESPONSE_CODE% via %ROUTE_NAME%\"\n  n: 7\n  in: { d: \"%DURATION%\" }\n";
        let doc = sluice_config::yaml::parse(yaml).unwrap();
        let mut cx = sluice_config::Cx::default();
        let c =
            <sluice_config::AccessLogConfig as sluice_config::Decode>::decode(&doc, "a", &mut cx)
                .unwrap();
        let f = Format::new(&c.format, &mut Headers::default()).unwrap();
        let mut out = Vec::new();
        f.render(&record(), &mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "path": "/a?b=1", "code": 503, "host": "10.0.0.1:80", "route": null,
                "mix": "503 via -", "n": 7, "in": { "d": 42 }
            })
        );
    }
}
