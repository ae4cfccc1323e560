//! Turning a finished request into one log line, text or JSON. Runs on the writer thread.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use http::HeaderName;
use sluice_config::access_log::{Command, HeaderKey, JsonField, LogFormat, Operator, Segment};

use crate::{Protocol, RequestRecord};

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

/// One operator's value.
enum Value<'a> {
    Missing,
    Str(Cow<'a, str>),
    Num(u64),
}

impl Format {
    /// Compiles a decoded format; `headers` collects the request and response headers it reads.
    pub fn new(format: &LogFormat, headers: &mut Headers) -> Result<Format, String> {
        Ok(match format {
            LogFormat::Text(segments) => Format::Text(pieces(segments, headers)?),
            LogFormat::Json(fields) => Format::Json(json_fields(fields, headers)?),
        })
    }

    /// Appends the line for `r` to `out`.
    pub fn render(&self, r: &RequestRecord, out: &mut Vec<u8>) {
        match self {
            Format::Text(pieces) => {
                // Rendered in `out`'s own allocation: the writer reuses one line buffer.
                match String::from_utf8(std::mem::take(out)) {
                    Ok(mut s) => {
                        text(pieces, r, &mut s);
                        *out = s.into_bytes();
                    }
                    Err(e) => {
                        *out = e.into_bytes();
                        let mut s = String::new();
                        text(pieces, r, &mut s);
                        out.extend_from_slice(s.as_bytes());
                    }
                }
            }
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

fn text(pieces: &[Piece], r: &RequestRecord, out: &mut String) {
    for p in pieces {
        match p {
            Piece::Literal(l) => out.push_str(l),
            Piece::Op(op) => match op.value(r) {
                Value::Missing => out.push('-'),
                Value::Str(s) => out.push_str(truncate(&s, op.max_len)),
                Value::Num(n) => out.push_str(itoa::Buffer::new().format(n)),
            },
        }
    }
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
                    Value::Str(s) => json_string(truncate(&s, op.max_len), out),
                },
                _ => {
                    let mut s = String::new();
                    text(pieces, r, &mut s);
                    json_string(&s, out);
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

/// At most `max` bytes, cut at a character boundary.
fn truncate(s: &str, max: Option<usize>) -> &str {
    let Some(mut n) = max else { return s };
    if n >= s.len() {
        return s;
    }
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

fn some_str(s: Option<&str>) -> Value<'_> {
    match s {
        Some(s) if !s.is_empty() => Value::Str(Cow::Borrowed(s)),
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
        Some(a) if port => Value::Str(Cow::Owned(a.to_string())),
        Some(a) => Value::Str(Cow::Owned(a.ip().to_string())),
        None => Value::Missing,
    }
}

impl Op {
    fn value<'r>(&self, r: &'r RequestRecord) -> Value<'r> {
        let c = match &self.command {
            Cmd::Req(keys) => return header(keys, r, true),
            Cmd::Resp(keys) => return header(keys, r, false),
            Cmd::Other(c) => c,
        };
        let tcp = r.protocol == Protocol::Tcp;
        match c {
            Command::StartTime(format) => start_time(r, format.as_deref()),
            Command::ResponseCode => match r.response_code {
                Some(code) => Value::Num(u64::from(code)),
                // Envoy: 0 when no response was sent; not applicable to TCP.
                None if tcp => Value::Missing,
                None => Value::Num(0),
            },
            Command::ResponseCodeDetails => some_str(Some(&r.response_code_details)),
            Command::ResponseFlags if r.response_flags.is_empty() => Value::Str(Cow::Borrowed("-")),
            Command::ResponseFlags => {
                let mut codes = String::with_capacity(8);
                r.response_flags.write_codes(&mut codes);
                Value::Str(Cow::Owned(codes))
            }
            Command::Duration => ms(r.duration),
            Command::ResponseDuration => ms(r.response_started),
            Command::BytesReceived => Value::Num(r.bytes_received),
            Command::BytesSent => Value::Num(r.bytes_sent),
            Command::Protocol if tcp => Value::Missing,
            Command::Protocol => Value::Str(Cow::Borrowed(r.protocol.as_str())),
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
                Some(t) => {
                    let mut s = String::with_capacity(32);
                    for b in t.trace_id {
                        let _ = write!(s, "{b:02x}");
                    }
                    Value::Str(Cow::Owned(s))
                }
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
                    r.request_header(name)
                } else {
                    r.response_header(name)
                };
                if let Some(v) = found {
                    return Value::Str(String::from_utf8_lossy(v.as_bytes()));
                }
                None
            }
            _ => None,
        };
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            return Value::Str(Cow::Borrowed(v));
        }
    }
    Value::Missing
}

fn start_time(r: &RequestRecord, format: Option<&str>) -> Value<'static> {
    if format.is_none() {
        if let Some(s) = default_start_time(r.start_time) {
            return Value::Str(Cow::Owned(s));
        }
    }
    let t = chrono::DateTime::<chrono::Utc>::from(r.start_time);
    let mut s = String::new();
    let ok = match format {
        None => write!(s, "{}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
        Some(f) => write!(s, "{}", t.format(f)),
    };
    if ok.is_err() {
        return Value::Missing;
    }
    Value::Str(Cow::Owned(s))
}

/// The default `%START_TIME%` (`2024-05-01T12:00:00.123Z`): the date and time are formatted
/// once per second per writer thread, as most lines of a busy second share them; only the
/// milliseconds are written per line. `None` before 1970 (left to chrono).
fn default_start_time(t: std::time::SystemTime) -> Option<String> {
    thread_local! {
        static SECOND: std::cell::RefCell<(u64, String)> =
            const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let since = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    let (secs, ms) = (since.as_secs(), since.subsec_millis());
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            let dt = chrono::DateTime::<chrono::Utc>::from(t);
            cached.1.clear();
            write!(cached.1, "{}", dt.format("%Y-%m-%dT%H:%M:%S")).ok()?;
            cached.0 = secs;
        }
        let mut s = String::with_capacity(cached.1.len() + 5);
        s.push_str(&cached.1);
        write!(s, ".{ms:03}Z").ok()?;
        Some(s)
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
            assert_eq!(default_start_time(t).unwrap(), want);
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
