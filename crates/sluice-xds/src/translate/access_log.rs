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

use super::tree::{boolean, ignored, index, join, number, text, unpack, unsupported, Map};
use super::{Error, Result};

/// A sink's native format: `format` (text) or `json_format`, with its value; `None`: the
/// default format, which is Envoy's.
type NativeFormat = Option<(&'static str, Node)>;

/// Appends the native sinks of `logs` (at `field`) to `out`.
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
            #[allow(deprecated)] // `format`, `json_format`, `typed_json_format`: still sent
            let format = match &f.access_log_format {
                None => None,
                // Envoy logs an empty format in its default one.
                Some(file_access_log::AccessLogFormat::Format(s)) if s.is_empty() => None,
                Some(file_access_log::AccessLogFormat::Format(s)) => Some(("format", text(s))),
                Some(file_access_log::AccessLogFormat::JsonFormat(s)) => {
                    Some(("json_format", structure(s, &join(&tpath, "json_format"))?))
                }
                Some(file_access_log::AccessLogFormat::TypedJsonFormat(s)) => Some((
                    "json_format",
                    structure(s, &join(&tpath, "typed_json_format"))?,
                )),
                Some(file_access_log::AccessLogFormat::LogFormat(s)) => {
                    substitution(s, &join(&tpath, "log_format"))?
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
            let format = match &s.access_log_format {
                None => None,
                Some(stdout_access_log::AccessLogFormat::LogFormat(s)) => {
                    substitution(s, &join(&tpath, "log_format"))?
                }
            };
            ("stdout".to_string(), format)
        } else if any.type_url == StderrAccessLog::type_url() {
            let s: StderrAccessLog = unpack(any, &StderrAccessLog::type_url(), &tpath)?;
            let format = match &s.access_log_format {
                None => None,
                Some(stderr_access_log::AccessLogFormat::LogFormat(s)) => {
                    substitution(s, &join(&tpath, "log_format"))?
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
        if let Some((key, value)) = format {
            m.set(key, value);
        }
        out.push(m.build());
    }
    Ok(())
}

/// The format of a `SubstitutionFormatString` at `field`, with an inline
/// `text_format_source` read.
#[allow(deprecated)] // `text_format`, still what control planes send
fn substitution(s: &SubstitutionFormatString, field: &str) -> Result<NativeFormat> {
    unsupported(s.omit_empty_values, &join(field, "omit_empty_values"))?;
    unsupported(!s.formatters.is_empty(), &join(field, "formatters"))?;
    unsupported(!s.content_type.is_empty(), &join(field, "content_type"))?;
    // Its one option sorts the keys, which the translation does anyway.
    ignored(
        s.json_format_options.is_some(),
        field,
        "json_format_options",
    );
    Ok(match &s.format {
        None => None,
        Some(Format::TextFormat(t)) => Some(("format", text(t))),
        Some(Format::JsonFormat(j)) => {
            Some(("json_format", structure(j, &join(field, "json_format"))?))
        }
        Some(Format::TextFormatSource(source)) => match &source.specifier {
            Some(Specifier::InlineString(t)) => Some(("format", text(t))),
            Some(Specifier::InlineBytes(b)) => match std::str::from_utf8(b) {
                Ok(t) => Some(("format", text(t))),
                Err(_) => {
                    return Err(Error::new(
                        join(field, "text_format_source.inline_bytes"),
                        "is not UTF-8",
                    ))
                }
            },
            _ => {
                return Err(Error::new(
                    join(field, "text_format_source"),
                    "only inline_string and inline_bytes are supported by Sluice",
                ))
            }
        },
    })
}

/// A JSON format dictionary as a native mapping (keys sorted: protobuf maps keep no order);
/// `field` names it in errors.
fn structure(s: &Struct, field: &str) -> Result<Node> {
    let mut keys: Vec<&String> = s.fields.keys().collect();
    keys.sort();
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = s.fields.get(k) {
            m.set(k, value(v, &join(field, k))?);
        }
    }
    Ok(m.build())
}

fn value(v: &Value, field: &str) -> Result<Node> {
    Ok(match &v.kind {
        Some(Kind::StringValue(s)) => text(s),
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9e15 => {
            number(format!("{n:.0}"))
        }
        Some(Kind::NumberValue(n)) if n.is_finite() => number(n),
        Some(Kind::BoolValue(b)) => boolean(*b),
        Some(Kind::StructValue(s)) => structure(s, field)?,
        // The native JSON format writes strings, numbers, booleans and objects.
        Some(Kind::ListValue(_)) | Some(Kind::NullValue(_)) | Some(Kind::NumberValue(_)) | None => {
            return Err(Error::new(
                field,
                "only strings, numbers, booleans and nested structs are supported by Sluice in a JSON format",
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::translate::endpoint::tests::assert_yaml;
    use crate::translate::listener::listener;
    use crate::translate::listener::tests::{
        any, chain, envoy_listener, hcm, hcm_filter, load, refused,
    };
    use envoy_types::pb::envoy::config::accesslog::v3::AccessLogFilter;
    use envoy_types::pb::envoy::config::core::v3::DataSource;
    use envoy_types::pb::envoy::config::listener::v3::Listener as EnvoyListener;
    use envoy_types::pb::google::protobuf::{Any, ListValue};
    use prost::Message;
    use sluice_config::access_log::{LogFormat, LogSink};

    fn log_of(config: Any) -> AccessLog {
        AccessLog {
            name: "log".into(),
            config_type: Some(ConfigType::TypedConfig(config)),
            ..Default::default()
        }
    }

    fn file(path: &str, format: Option<file_access_log::AccessLogFormat>) -> AccessLog {
        log_of(any(&FileAccessLog {
            path: path.into(),
            access_log_format: format,
        }))
    }

    #[allow(deprecated)] // `text_format`, what control planes send
    fn text_format(t: &str) -> SubstitutionFormatString {
        SubstitutionFormatString {
            format: Some(Format::TextFormat(t.into())),
            ..Default::default()
        }
    }

    fn string(s: &str) -> Value {
        Value {
            kind: Some(Kind::StringValue(s.into())),
        }
    }

    fn json(pairs: Vec<(&str, Value)>) -> Struct {
        Struct {
            fields: pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }

    /// The native sinks of `logs`, or the error.
    fn translate(logs: &[AccessLog]) -> Result<Node> {
        let mut out = Vec::new();
        sinks(logs, "access_log", &mut out)?;
        Ok(super::super::tree::list(out))
    }

    #[test]
    fn file_stdout_and_stderr_loggers_with_their_formats() {
        let fields = json(vec![
            ("code", string("%RESPONSE_CODE%")),
            ("path", string("%REQ(:PATH)%")),
            (
                "upstream",
                Value {
                    kind: Some(Kind::StructValue(json(vec![(
                        "host",
                        string("%UPSTREAM_HOST%"),
                    )]))),
                },
            ),
            (
                "version",
                Value {
                    kind: Some(Kind::NumberValue(2.0)),
                },
            ),
            (
                "sampled",
                Value {
                    kind: Some(Kind::BoolValue(true)),
                },
            ),
        ]);
        #[allow(deprecated)]
        let logs = vec![
            file(
                "/tmp/access.log",
                Some(file_access_log::AccessLogFormat::LogFormat(text_format(
                    "%START_TIME% %REQ(:PATH)% %RESPONSE_CODE%\n",
                ))),
            ),
            file(
                "/dev/stdout",
                Some(file_access_log::AccessLogFormat::LogFormat(
                    SubstitutionFormatString {
                        format: Some(Format::JsonFormat(fields.clone())),
                        ..Default::default()
                    },
                )),
            ),
            file(
                "/tmp/deprecated.log",
                Some(file_access_log::AccessLogFormat::Format(
                    "%RESPONSE_CODE%\n".into(),
                )),
            ),
            file(
                "/tmp/typed.log",
                Some(file_access_log::AccessLogFormat::TypedJsonFormat(json(
                    vec![("code", string("%RESPONSE_CODE%"))],
                ))),
            ),
            // Envoy's default format for an empty one, and for none.
            file(
                "/tmp/default.log",
                Some(file_access_log::AccessLogFormat::Format(String::new())),
            ),
            log_of(any(&StdoutAccessLog::default())),
            log_of(any(&StdoutAccessLog {
                access_log_format: Some(stdout_access_log::AccessLogFormat::LogFormat(
                    SubstitutionFormatString {
                        format: Some(Format::TextFormatSource(DataSource {
                            specifier: Some(Specifier::InlineString("%PROTOCOL%\n".into())),
                            ..Default::default()
                        })),
                        ..Default::default()
                    },
                )),
            })),
            log_of(any(&StderrAccessLog::default())),
        ];
        let node = translate(&logs).unwrap();
        assert_yaml(
            &node,
            r#"
- { path: "/tmp/access.log", format: "%START_TIME% %REQ(:PATH)% %RESPONSE_CODE%\n" }
- path: "stdout"
  json_format:
    code: "%RESPONSE_CODE%"
    path: "%REQ(:PATH)%"
    sampled: true
    upstream: { host: "%UPSTREAM_HOST%" }
    version: 2
- { path: "/tmp/deprecated.log", format: "%RESPONSE_CODE%\n" }
- { path: "/tmp/typed.log", json_format: { code: "%RESPONSE_CODE%" } }
- { path: "/tmp/default.log" }
- { path: "stdout" }
- { path: "stdout", format: "%PROTOCOL%\n" }
- { path: "/dev/stderr" }
"#,
        );

        // On a listener, the loader takes them all.
        let l = EnvoyListener {
            access_log: logs,
            ..envoy_listener("web", 8080, vec![chain(vec![hcm_filter(&hcm("rc"))])])
        };
        let t = listener(&l).unwrap();
        let mut rc = super::super::tree::Map::new();
        rc.set("name", text("rc"));
        rc.set("virtual_hosts", super::super::tree::list(vec![]));
        let config = load(vec![t.node], vec![rc.build()], false);
        let sinks = &config.listeners[0].access_log;
        assert_eq!(sinks.len(), 8);
        assert_eq!(sinks[0].sink, LogSink::File("/tmp/access.log".into()));
        assert_eq!(sinks[1].sink, LogSink::Stdout);
        assert!(matches!(sinks[1].format, LogFormat::Json(_)));
        let default =
            sluice_config::access_log::format::parse(sluice_config::access_log::DEFAULT_FORMAT)
                .unwrap();
        assert_eq!(sinks[4].format, LogFormat::Text(default));
    }

    #[test]
    fn what_the_native_sinks_cannot_do_is_refused() {
        let filtered = AccessLog {
            filter: Some(AccessLogFilter::default()),
            ..file("/tmp/a.log", None)
        };
        let e = translate(&[file("/tmp/b.log", None), filtered]).unwrap_err();
        assert_eq!(e.field, "access_log[1].filter");
        assert_eq!(e.message, "is not supported by Sluice");

        let list_value = json(vec![(
            "hosts",
            Value {
                kind: Some(Kind::ListValue(ListValue::default())),
            },
        )]);
        let e = translate(&[file(
            "/tmp/a.log",
            Some(file_access_log::AccessLogFormat::LogFormat(
                SubstitutionFormatString {
                    format: Some(Format::JsonFormat(list_value)),
                    ..Default::default()
                },
            )),
        )])
        .unwrap_err();
        assert_eq!(
            e.field,
            "access_log[0].typed_config.log_format.json_format.hosts"
        );

        let omit = SubstitutionFormatString {
            omit_empty_values: true,
            ..text_format("%RESPONSE_CODE%\n")
        };
        let e = translate(&[log_of(any(&StdoutAccessLog {
            access_log_format: Some(stdout_access_log::AccessLogFormat::LogFormat(omit)),
        }))])
        .unwrap_err();
        assert_eq!(
            e.field,
            "access_log[0].typed_config.log_format.omit_empty_values"
        );

        let e = translate(&[file("", None)]).unwrap_err();
        assert_eq!(e.field, "access_log[0].typed_config.path");

        let grpc = Any {
            type_url:
                "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig"
                    .into(),
            value: Vec::new(),
        };
        let e = translate(&[log_of(grpc)]).unwrap_err();
        assert_eq!(e.field, "access_log[0].typed_config");
        assert!(e.message.starts_with("access logger "), "{e}");

        let from_file = SubstitutionFormatString {
            format: Some(Format::TextFormatSource(DataSource {
                specifier: Some(Specifier::Filename("/etc/format".into())),
                ..Default::default()
            })),
            ..Default::default()
        };
        let e = translate(&[log_of(any(&StdoutAccessLog {
            access_log_format: Some(stdout_access_log::AccessLogFormat::LogFormat(from_file)),
        }))])
        .unwrap_err();
        assert_eq!(
            e.field,
            "access_log[0].typed_config.log_format.text_format_source"
        );

        // Refusals carry the whole Envoy path from the listener.
        let l = EnvoyListener {
            access_log: vec![AccessLog {
                filter: Some(AccessLogFilter::default()),
                ..file("/tmp/a.log", None)
            }],
            ..envoy_listener("web", 8080, vec![chain(vec![hcm_filter(&hcm("rc"))])])
        };
        refused(&l, "access_log[0].filter");
        // A logger whose message decodes empty still needs its path.
        let wrong = Any {
            type_url: FileAccessLog::type_url(),
            value: StdoutAccessLog::default().encode_to_vec(),
        };
        let e = translate(&[log_of(wrong)]).unwrap_err();
        assert_eq!(e.field, "access_log[0].typed_config.path");
    }
}
