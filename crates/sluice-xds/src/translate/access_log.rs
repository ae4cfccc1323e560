//! Envoy access loggers (file, stdout) as native `access_log:` sinks of the listener.
//!
//! Envoy sets access logs on the HTTP connection manager, the TCP proxy or the listener;
//! Sluice keeps them on the listener, which logs every request, call or connection it
//! serves, so each is added there.

use envoy_types::pb::envoy::config::accesslog::v3::access_log::ConfigType;
use envoy_types::pb::envoy::config::accesslog::v3::AccessLog;
use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
use envoy_types::pb::envoy::config::core::v3::substitution_format_string::Format;
use envoy_types::pb::envoy::config::core::v3::SubstitutionFormatString;
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::file_access_log;
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::FileAccessLog;
use envoy_types::pb::envoy::extensions::access_loggers::stream::v3::{
    stderr_access_log, stdout_access_log, StderrAccessLog, StdoutAccessLog,
};
use envoy_types::pb::google::protobuf::value::Kind;
use envoy_types::pb::google::protobuf::{Struct, Value};
use prost::Name;
use sluice_config::yaml::Node;

use super::tree::{boolean, index, join, list, number, text, unpack, unsupported, Map};
use super::{Error, Result};

/// Appends the native sinks of `logs` (at `field`) to `out`.
#[allow(deprecated)] // `text_format`, still what control planes send.
pub fn sinks(logs: &[AccessLog], field: &str, out: &mut Vec<Node>) -> Result<()> {
    for (i, log) in logs.iter().enumerate() {
        let path = index(field, i);
        unsupported(log.filter.is_some(), &join(&path, "filter"))?;
        let Some(ConfigType::TypedConfig(any)) = &log.config_type else {
            return Err(Error::new(join(&path, "typed_config"), "is required"));
        };
        let tpath = join(&path, "typed_config");
        let (target, format) = if any.type_url == FileAccessLog::type_url() {
            let f: FileAccessLog = unpack(any, &FileAccessLog::type_url(), &tpath)?;
            #[allow(deprecated)]
            let format = match f.access_log_format {
                None => None,
                Some(file_access_log::AccessLogFormat::Format(s)) => Some(Format::TextFormat(s)),
                Some(file_access_log::AccessLogFormat::JsonFormat(s))
                | Some(file_access_log::AccessLogFormat::TypedJsonFormat(s)) => {
                    Some(Format::JsonFormat(s))
                }
                Some(file_access_log::AccessLogFormat::LogFormat(s)) => {
                    substitution(&s, &join(&tpath, "log_format"))?
                }
            };
            if f.path.is_empty() {
                return Err(Error::new(join(&tpath, "path"), "is required"));
            }
            // Envoy's way of writing to standard output through the file logger.
            let target = if f.path == "/dev/stdout" {
                "stdout".to_string()
            } else {
                f.path
            };
            (target, format)
        } else if any.type_url == StdoutAccessLog::type_url() {
            let s: StdoutAccessLog = unpack(any, &StdoutAccessLog::type_url(), &tpath)?;
            let format = match s.access_log_format {
                None => None,
                Some(stdout_access_log::AccessLogFormat::LogFormat(s)) => {
                    substitution(&s, &join(&tpath, "log_format"))?
                }
            };
            ("stdout".to_string(), format)
        } else if any.type_url == StderrAccessLog::type_url() {
            let s: StderrAccessLog = unpack(any, &StderrAccessLog::type_url(), &tpath)?;
            let format = match s.access_log_format {
                None => None,
                Some(stderr_access_log::AccessLogFormat::LogFormat(s)) => {
                    substitution(&s, &join(&tpath, "log_format"))?
                }
            };
            ("/dev/stderr".to_string(), format)
        } else {
            return Err(Error::new(
                tpath,
                format!(
                    "access logger {} is not supported by Sluice (file, stdout and stderr are)",
                    any.type_url
                ),
            ));
        };
        let mut m = Map::new();
        m.set("path", text(&target));
        match format {
            None => {}
            Some(Format::TextFormat(s)) => {
                m.set("format", text(&s));
            }
            Some(Format::JsonFormat(s)) => {
                m.set("json_format", structure(&s));
            }
            Some(Format::TextFormatSource(_)) => {}
        }
        out.push(m.build());
    }
    Ok(())
}

/// The format of a `SubstitutionFormatString`, with an inline `text_format_source` read.
#[allow(deprecated)]
fn substitution(s: &SubstitutionFormatString, field: &str) -> Result<Option<Format>> {
    unsupported(s.omit_empty_values, &join(field, "omit_empty_values"))?;
    unsupported(!s.formatters.is_empty(), &join(field, "formatters"))?;
    unsupported(!s.content_type.is_empty(), &join(field, "content_type"))?;
    Ok(match &s.format {
        None => None,
        Some(Format::TextFormatSource(source)) => match &source.specifier {
            Some(Specifier::InlineString(t)) => Some(Format::TextFormat(t.clone())),
            Some(Specifier::InlineBytes(b)) => {
                Some(Format::TextFormat(String::from_utf8_lossy(b).into_owned()))
            }
            _ => {
                return Err(Error::new(
                    join(field, "text_format_source"),
                    "only inline_string and inline_bytes are supported",
                ))
            }
        },
        Some(f) => Some(f.clone()),
    })
}

/// A JSON format dictionary as a native mapping (keys sorted: protobuf maps keep no order).
fn structure(s: &Struct) -> Node {
    let mut keys: Vec<&String> = s.fields.keys().collect();
    keys.sort();
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = s.fields.get(k) {
            m.set(k, value(v));
        }
    }
    m.build()
}

fn value(v: &Value) -> Node {
    match &v.kind {
        Some(Kind::StringValue(s)) => text(s),
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9e15 => {
            number(format!("{n:.0}"))
        }
        Some(Kind::NumberValue(n)) => number(n),
        Some(Kind::BoolValue(b)) => boolean(*b),
        Some(Kind::StructValue(s)) => structure(s),
        Some(Kind::ListValue(l)) => list(l.values.iter().map(value).collect()),
        Some(Kind::NullValue(_)) | None => text("-"),
    }
}
