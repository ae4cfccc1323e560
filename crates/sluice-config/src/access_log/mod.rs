//! A listener's `access_log:`: a list of sinks, each a path (or `stdout`), a format and an
//! optional filter.

pub mod filter;
pub mod format;

use std::path::PathBuf;

use crate::decode::{join, Cx, Decode, Fields};
use crate::yaml::{Node, NodeKind};

pub use filter::{CmpOp, Comparison, LogFilter, RESPONSE_FLAG_CODES};
pub use format::{Command, HeaderKey, Operator, Segment, DEFAULT_FORMAT};

/// Records a sink may queue before new ones are dropped (and counted).
pub const DEFAULT_BUFFER_SIZE: usize = 1024;

/// One sink of a listener's access log.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessLogConfig {
    pub sink: LogSink,
    pub format: LogFormat,
    pub filter: Option<LogFilter>,
    /// How many finished requests may wait for the writer; beyond that they are dropped.
    pub buffer_size: usize,
    /// Where it was written (`listeners[0].access_log[1]`), for startup errors.
    pub path: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LogSink {
    Stdout,
    /// Opened for appending, created if missing, reopened on SIGUSR1.
    File(PathBuf),
}

impl std::fmt::Display for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogSink::Stdout => f.write_str("stdout"),
            LogSink::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum LogFormat {
    /// A format string; no newline is added (Envoy's rule: end the format with `\n`).
    Text(Vec<Segment>),
    /// One JSON object per line.
    Json(Vec<(String, JsonField)>),
}

/// A value of `json_format`.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonField {
    /// A string with operators: typed when it is exactly one operator (a number for
    /// `%RESPONSE_CODE%`, `null` when missing), else a string.
    Template(Vec<Segment>),
    /// An unquoted number or boolean, written as is.
    Raw(String),
    Map(Vec<(String, JsonField)>),
}

impl Decode for AccessLogConfig {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let sink = match f.node("path") {
            Some(n) => decode_sink(n, &join(path, "path"), cx),
            None => {
                cx.error(f.line(), path, "missing required field \"path\"");
                None
            }
        };
        let text = f.node("format");
        let json = f.node("json_format");
        let format = match (text, json) {
            (Some(t), Some(_)) => {
                cx.error(t.line, path, "has both format and json_format: choose one");
                None
            }
            (Some(t), None) => text_format(t, &join(path, "format"), cx).map(LogFormat::Text),
            (None, Some(j)) => json_map(j, &join(path, "json_format"), cx).map(LogFormat::Json),
            (None, None) => format::parse(DEFAULT_FORMAT).ok().map(LogFormat::Text),
        };
        let filter = f.optional::<LogFilter>("filter", cx);
        let buffer_size = f.or("buffer_size", DEFAULT_BUFFER_SIZE, cx);
        let size_line = f.line_of("buffer_size");
        f.finish(cx);
        if buffer_size == Some(0) {
            cx.error(size_line, &join(path, "buffer_size"), "must be at least 1");
            return None;
        }
        Some(AccessLogConfig {
            sink: sink?,
            format: format?,
            filter: filter.ok()?,
            buffer_size: buffer_size?,
            path: path.to_string(),
            line: node.line,
        })
    }
}

fn decode_sink(node: &Node, path: &str, cx: &mut Cx) -> Option<LogSink> {
    let text = String::decode(node, path, cx)?;
    if text == "stdout" {
        return Some(LogSink::Stdout);
    }
    if text.is_empty() {
        cx.error(node.line, path, "cannot be empty (a file path or stdout)");
        return None;
    }
    let file = PathBuf::from(&text);
    // The file itself is created when the listener starts; a missing directory is surely a
    // mistake, and reported with the others.
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            cx.error(
                node.line,
                path,
                format!("directory \"{}\" does not exist", dir.display()),
            );
            return None;
        }
    }
    Some(LogSink::File(file))
}

fn text_format(node: &Node, path: &str, cx: &mut Cx) -> Option<Vec<Segment>> {
    let text = String::decode(node, path, cx)?;
    match format::parse(&text) {
        Ok(s) => Some(s),
        Err(e) => {
            cx.error(node.line, path, e);
            None
        }
    }
}

fn json_map(node: &Node, path: &str, cx: &mut Cx) -> Option<Vec<(String, JsonField)>> {
    let NodeKind::Map(entries) = &node.kind else {
        cx.error(
            node.line,
            path,
            format!(
                "expected a mapping of JSON keys to values, found {}",
                node.type_name()
            ),
        );
        return None;
    };
    let mut out = Vec::with_capacity(entries.len());
    let mut ok = true;
    for (key, value) in entries {
        match json_field(value, &join(path, key), cx) {
            Some(v) => out.push((key.clone(), v)),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn json_field(node: &Node, path: &str, cx: &mut Cx) -> Option<JsonField> {
    match &node.kind {
        NodeKind::Map(_) => json_map(node, path, cx).map(JsonField::Map),
        NodeKind::Scalar { text, quoted } => {
            if let Some(raw) = (!quoted).then(|| json_literal(text)).flatten() {
                return Some(JsonField::Raw(raw));
            }
            match format::parse(text) {
                Ok(s) => Some(JsonField::Template(s)),
                Err(e) => {
                    cx.error(node.line, path, e);
                    None
                }
            }
        }
        _ => {
            cx.error(
                node.line,
                path,
                format!(
                    "expected a string, number, boolean or mapping, found {}",
                    node.type_name()
                ),
            );
            None
        }
    }
}

/// An unquoted boolean or number as JSON writes it (YAML's `+1` or `1.` are not JSON).
fn json_literal(text: &str) -> Option<String> {
    if text == "true" || text == "false" {
        return Some(text.to_string());
    }
    if let Ok(i) = text.parse::<i64>() {
        return Some(i.to_string());
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(|f| f.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::yaml::parse;

    fn decode(src: &str) -> (Option<AccessLogConfig>, Vec<String>) {
        let doc = parse(src).unwrap();
        let mut cx = Cx::default();
        let c = AccessLogConfig::decode(&doc, "listeners[0].access_log[1]", &mut cx);
        (c, cx.diagnostics.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn text_json_and_default() {
        let (c, e) = decode("path: stdout\nformat: \"%REQ(:PATH)% %RESPONSE_CODE%\\n\"\n");
        assert!(e.is_empty(), "{e:?}");
        let c = c.unwrap();
        assert_eq!(c.sink, LogSink::Stdout);
        assert_eq!(c.buffer_size, DEFAULT_BUFFER_SIZE);
        let (c, e) = decode(
            "path: stdout\njson_format: { path: \"%REQ(:PATH)%\", code: \"%RESPONSE_CODE%\", v: 2, m: { d: \"%DURATION%\" } }\n",
        );
        assert!(e.is_empty(), "{e:?}");
        let LogFormat::Json(fields) = c.unwrap().format else {
            panic!("json")
        };
        assert_eq!(fields[2], ("v".to_string(), JsonField::Raw("2".into())));
        assert_eq!(json_literal("+1").as_deref(), Some("1"));
        assert_eq!(json_literal("1.").as_deref(), Some("1"));
        assert_eq!(json_literal("0.5").as_deref(), Some("0.5"));
        assert_eq!(json_literal("inf"), None);
        assert_eq!(json_literal("yes"), None);
        assert!(matches!(fields[3].1, JsonField::Map(_)));
        let (c, _) = decode("path: stdout\n");
        assert_eq!(
            c.unwrap().format,
            LogFormat::Text(format::parse(DEFAULT_FORMAT).unwrap())
        );
    }

    #[test]
    fn errors_name_the_path() {
        let (_, e) = decode("path: stdout\nformat: \"%FOO%\"\n");
        assert_eq!(
            e,
            vec!["2: listeners[0].access_log[1].format: unknown command operator %FOO%"]
        );
        let (_, e) = decode("path: /no/such/dir/a.log\n");
        assert_eq!(
            e,
            vec!["1: listeners[0].access_log[1].path: directory \"/no/such/dir\" does not exist"]
        );
        let (_, e) = decode(
            "path: stdout\nfilter: { status_code: { op: gte, value: 500 }, response_flags: [UX] }\n",
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].contains("filter.status_code.op: unknown comparison \"gte\""));
        assert!(e[1].contains("filter.response_flags[0]: unknown response flag \"UX\""));
        let (_, e) = decode("path: stdout\njson_format: { a: \"%BAD(\" }\n");
        assert!(e[0].contains("json_format.a:"), "{e:?}");
    }

    #[test]
    fn filters_combine() {
        let (c, e) = decode(
            "path: stdout\nfilter: { or: [ { status_code: { op: ge, value: 500 } }, { duration: { op: gt, value: 100 }, sample: 50 } ] }\n",
        );
        assert!(e.is_empty(), "{e:?}");
        let Some(LogFilter::Or(list)) = c.unwrap().filter else {
            panic!("or")
        };
        assert!(matches!(&list[1], LogFilter::And(v) if v.len() == 2));
    }
}
