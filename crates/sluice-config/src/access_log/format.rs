//! Envoy's access-log format strings: literal text with `%COMMAND(arg):N%` operators.
//!
//! Parsed here, when the config loads, so a typo (`%RESPONSE_COD%`) is a config error with its
//! YAML path rather than a log full of dashes; `sluice-observe` renders the parsed pieces.

use std::fmt::Write as _;

/// Envoy's default format, used when a sink names neither `format` nor `json_format`.
pub const DEFAULT_FORMAT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

/// One piece of a format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Op(Operator),
}

/// A command operator with its optional maximum length (`%REQ(USER-AGENT):10%`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub command: Command,
    pub max_len: Option<usize>,
}

/// A header as `REQ`/`RESP` name it: a pseudo-header read from the record's fields, or a
/// header by its lower-case name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderKey {
    Method,
    Path,
    Authority,
    Scheme,
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// With a strftime format (chrono's syntax, `%3f`/`%6f`/`%9f` for fractions); `None`: ISO
    /// 8601 with milliseconds, UTC.
    StartTime(Option<String>),
    /// The first header of the list that is present (`X?Y`).
    Req(Vec<HeaderKey>),
    Resp(Vec<HeaderKey>),
    ResponseCode,
    ResponseCodeDetails,
    ResponseFlags,
    Duration,
    ResponseDuration,
    BytesReceived,
    BytesSent,
    Protocol,
    UpstreamHost,
    UpstreamCluster,
    UpstreamTransportFailureReason,
    UpstreamRequestAttemptCount,
    DownstreamRemoteAddress,
    DownstreamRemoteAddressWithoutPort,
    DownstreamLocalAddress,
    DownstreamLocalAddressWithoutPort,
    RequestedServerName,
    DownstreamPeerUriSan,
    RouteName,
    Hostname,
    TraceId,
}

impl Command {
    /// Whether Envoy types this operator's value as a number in JSON.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            Command::ResponseCode
                | Command::Duration
                | Command::ResponseDuration
                | Command::BytesReceived
                | Command::BytesSent
                | Command::UpstreamRequestAttemptCount
        )
    }
}

/// The operators that take no argument, by name.
const PLAIN: &[(&str, Command)] = &[
    ("RESPONSE_CODE", Command::ResponseCode),
    ("RESPONSE_CODE_DETAILS", Command::ResponseCodeDetails),
    ("RESPONSE_FLAGS", Command::ResponseFlags),
    ("DURATION", Command::Duration),
    ("RESPONSE_DURATION", Command::ResponseDuration),
    ("BYTES_RECEIVED", Command::BytesReceived),
    ("BYTES_SENT", Command::BytesSent),
    ("PROTOCOL", Command::Protocol),
    ("UPSTREAM_HOST", Command::UpstreamHost),
    ("UPSTREAM_CLUSTER", Command::UpstreamCluster),
    (
        "UPSTREAM_TRANSPORT_FAILURE_REASON",
        Command::UpstreamTransportFailureReason,
    ),
    (
        "UPSTREAM_REQUEST_ATTEMPT_COUNT",
        Command::UpstreamRequestAttemptCount,
    ),
    (
        "DOWNSTREAM_REMOTE_ADDRESS",
        Command::DownstreamRemoteAddress,
    ),
    (
        "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
        Command::DownstreamRemoteAddressWithoutPort,
    ),
    ("DOWNSTREAM_LOCAL_ADDRESS", Command::DownstreamLocalAddress),
    (
        "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
        Command::DownstreamLocalAddressWithoutPort,
    ),
    ("REQUESTED_SERVER_NAME", Command::RequestedServerName),
    ("DOWNSTREAM_PEER_URI_SAN", Command::DownstreamPeerUriSan),
    ("ROUTE_NAME", Command::RouteName),
    ("HOSTNAME", Command::Hostname),
    ("TRACE_ID", Command::TraceId),
];

/// Every operator name, for messages and suggestions.
pub fn operator_names() -> impl Iterator<Item = &'static str> {
    ["START_TIME", "REQ", "RESP"]
        .into_iter()
        .chain(PLAIN.iter().map(|(n, _)| *n))
}

/// Parses a format string. `%%` is a literal `%`. The error says what is wrong, for the
/// caller to put after the YAML path.
pub fn parse(text: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        literal.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('%') {
            literal.push('%');
            rest = after;
            continue;
        }
        let (op, after) = operator(rest)?;
        if !literal.is_empty() {
            out.push(Segment::Literal(std::mem::take(&mut literal)));
        }
        out.push(Segment::Op(op));
        rest = after;
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        out.push(Segment::Literal(literal));
    }
    Ok(out)
}

/// Reads `NAME(arg):N%` (the opening `%` already consumed); returns the rest after the closing `%`.
fn operator(text: &str) -> Result<(Operator, &str), String> {
    let name_len = text
        .bytes()
        .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
        .count();
    let name = &text[..name_len];
    let mut rest = &text[name_len..];
    if name.is_empty() {
        let shown: String = text.chars().take(12).collect();
        return Err(format!(
            "a lone % before \"{shown}\": operators are written %NAME% (use %% for a percent sign)"
        ));
    }
    let mut arg = None;
    if let Some(after) = rest.strip_prefix('(') {
        let close = after
            .find(')')
            .ok_or_else(|| format!("%{name}(: the argument has no closing parenthesis"))?;
        arg = Some(&after[..close]);
        rest = &after[close + 1..];
    }
    let mut max_len = None;
    if let Some(after) = rest.strip_prefix(':') {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let n = after[..digits]
            .parse::<usize>()
            .map_err(|_| format!("%{name}: expected a length after ':'"))?;
        max_len = Some(n);
        rest = &after[digits..];
    }
    let Some(rest) = rest.strip_prefix('%') else {
        return Err(format!("%{name}: missing the closing %"));
    };
    let command = command(name, arg)?;
    Ok((Operator { command, max_len }, rest))
}

fn command(name: &str, arg: Option<&str>) -> Result<Command, String> {
    match name {
        "START_TIME" => {
            if let Some(f) = arg {
                check_strftime(f)?;
            }
            Ok(Command::StartTime(arg.map(str::to_string)))
        }
        "REQ" | "RESP" => {
            let arg = arg.ok_or_else(|| format!("%{name}%: needs a header, as %{name}(X?Y)%"))?;
            let keys = arg
                .split('?')
                .map(|h| header_key(name, h))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if name == "REQ" {
                Command::Req(keys)
            } else {
                Command::Resp(keys)
            })
        }
        _ => {
            let Some((_, c)) = PLAIN.iter().find(|(n, _)| *n == name) else {
                let hint = crate::decode::did_you_mean(name, operator_names());
                return Err(format!("unknown command operator %{name}%{hint}"));
            };
            if arg.is_some() {
                return Err(format!("%{name}% takes no argument"));
            }
            Ok(c.clone())
        }
    }
}

fn header_key(op: &str, name: &str) -> Result<HeaderKey, String> {
    let lower = name.to_ascii_lowercase();
    Ok(match lower.as_str() {
        ":method" => HeaderKey::Method,
        ":path" => HeaderKey::Path,
        ":authority" | "host" => HeaderKey::Authority,
        ":scheme" => HeaderKey::Scheme,
        _ if is_token(&lower) => HeaderKey::Named(lower),
        _ => return Err(format!("%{op}({name})%: \"{name}\" is not a header name")),
    })
}

/// RFC 9110 token characters: what a header name may hold.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// chrono reports a bad specifier only when formatting; try it once on a fixed time.
fn check_strftime(f: &str) -> Result<(), String> {
    use chrono::format::{Item, StrftimeItems};
    if StrftimeItems::new(f).any(|i| matches!(i, Item::Error)) {
        return Err(format!("%START_TIME({f})%: invalid time format"));
    }
    let mut s = String::new();
    write!(s, "{}", chrono::DateTime::UNIX_EPOCH.format(f))
        .map_err(|_| format!("%START_TIME({f})%: invalid time format"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_operators_and_literals() {
        let s = parse("%REQ(:PATH)% %RESPONSE_CODE% 100%% %REQ(X-A?Y-B):5%\n").unwrap();
        assert_eq!(
            s,
            vec![
                Segment::Op(Operator {
                    command: Command::Req(vec![HeaderKey::Path]),
                    max_len: None
                }),
                Segment::Literal(" ".into()),
                Segment::Op(Operator {
                    command: Command::ResponseCode,
                    max_len: None
                }),
                Segment::Literal(" 100% ".into()),
                Segment::Op(Operator {
                    command: Command::Req(vec![
                        HeaderKey::Named("x-a".into()),
                        HeaderKey::Named("y-b".into())
                    ]),
                    max_len: Some(5)
                }),
                Segment::Literal("\n".into()),
            ]
        );
        assert!(parse(DEFAULT_FORMAT).is_ok());
    }

    #[test]
    fn start_time_takes_a_strftime_format() {
        let s = parse("%START_TIME(%Y/%m/%dT%H:%M:%S.%3f %s)%").unwrap();
        assert_eq!(
            s,
            vec![Segment::Op(Operator {
                command: Command::StartTime(Some("%Y/%m/%dT%H:%M:%S.%3f %s".into())),
                max_len: None
            })]
        );
        assert!(parse("%START_TIME(%Q)%").is_err());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(
            parse("%FOO%").unwrap_err(),
            "unknown command operator %FOO%"
        );
        assert_eq!(
            parse("%RESPONSE_COD%").unwrap_err(),
            "unknown command operator %RESPONSE_COD% (did you mean \"RESPONSE_CODE\"?)"
        );
        assert!(parse("%REQ%").unwrap_err().contains("needs a header"));
        assert!(parse("%REQ(:path").unwrap_err().contains("parenthesis"));
        assert!(parse("%DURATION").unwrap_err().contains("closing %"));
        assert!(parse("50% off").unwrap_err().contains("lone %"));
        assert!(parse("%DURATION(x)%").unwrap_err().contains("no argument"));
        assert!(parse("%REQ(a b)%").unwrap_err().contains("not a header"));
    }
}
