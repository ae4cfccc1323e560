//! Building the native config tree (`sluice_config::Node`) from translated values, and the
//! small checks every translator shares.
//!
//! Nodes made here have line 0: errors the loader finds in them are located by path, and the
//! xDS client names the resource they came from.

use envoy_types::pb::google::protobuf::{Any, Duration, Struct};
use prost::Message;
use sluice_config::yaml::{Node, NodeKind};

use super::{Error, Result};

/// Field paths are built as the loader builds its own (`parent.key`, `parent[i]`).
pub use sluice_config::decode::{index, join};

fn node(kind: NodeKind) -> Node {
    Node { kind, line: 0 }
}

/// A string (quoted: never read as a number, a bool or null).
pub fn text(s: &str) -> Node {
    node(NodeKind::Scalar {
        text: s.to_string(),
        quoted: true,
    })
}

pub fn number(n: impl fmt::Display) -> Node {
    node(NodeKind::Scalar {
        text: n.to_string(),
        quoted: false,
    })
}

use std::fmt;

pub fn boolean(b: bool) -> Node {
    number(b)
}

pub fn list(items: Vec<Node>) -> Node {
    node(NodeKind::Seq(items))
}

/// A list of strings.
pub fn texts<S: AsRef<str>>(items: &[S]) -> Node {
    list(items.iter().map(|s| text(s.as_ref())).collect())
}

/// A mapping built key by key, in order.
#[derive(Debug, Default)]
pub struct Map(Vec<(String, Node)>);

impl Map {
    pub fn new() -> Map {
        Map::default()
    }

    pub fn set(&mut self, key: &str, value: Node) -> &mut Map {
        self.0.push((key.to_string(), value));
        self
    }

    /// Sets `key` when there is a value.
    pub fn opt(&mut self, key: &str, value: Option<Node>) -> &mut Map {
        if let Some(v) = value {
            self.set(key, v);
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn build(self) -> Node {
        node(NodeKind::Map(self.0))
    }
}

/// A one-key mapping, `{ key: value }` (how filters are written).
pub fn single(key: &str, value: Node) -> Node {
    let mut m = Map::new();
    m.set(key, value);
    m.build()
}

/// A protobuf duration in the native syntax (`1500ms`, `2s`, `250us`); negative ones are an
/// error at `field`.
pub fn duration(d: &Duration, field: &str) -> Result<Node> {
    if d.seconds < 0 || d.nanos < 0 {
        return Err(Error::new(field, "must not be negative"));
    }
    let nanos =
        u128::from(d.seconds.unsigned_abs()) * 1_000_000_000 + u128::from(d.nanos.unsigned_abs());
    let text = if nanos == 0 {
        "0".to_string()
    } else if nanos % 1_000_000_000 == 0 {
        format!("{}s", nanos / 1_000_000_000)
    } else if nanos % 1_000_000 == 0 {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    };
    Ok(number(text))
}

/// An optional duration field.
pub fn opt_duration(d: Option<&Duration>, field: &str) -> Result<Option<Node>> {
    d.map(|d| duration(d, field)).transpose()
}

/// The message inside an `Any`, checked to be of type `T` (`url` is its type URL); `field`
/// names the `Any` in errors.
pub fn unpack<T: Message + Default>(any: &Any, url: &str, field: &str) -> Result<T> {
    if any.type_url != url {
        return Err(Error::new(
            field,
            format!("expected {url}, found {}", any.type_url),
        ));
    }
    T::decode(any.value.as_slice())
        .map_err(|e| Error::new(field, format!("cannot decode {url}: {e}")))
}

/// The full type URL of an Envoy message name.
pub fn type_url(name: &str) -> String {
    format!("type.googleapis.com/{name}")
}

/// An error when a field that changes behaviour, and that Sluice does not do, is set.
pub fn unsupported(set: bool, field: &str) -> Result<()> {
    if set {
        Err(Error::new(field, "is not supported by Sluice"))
    } else {
        Ok(())
    }
}

/// A debug line for a set field that changes nothing a client could see.
pub fn ignored(set: bool, path: &str, field: &str) {
    if set {
        tracing::debug!(field = %join(path, field), "xDS: field ignored (no effect in Sluice)");
    }
}

/// String metadata of the `filter_metadata[namespace]` struct: each value a string, number
/// or bool (rendered as text); anything else is an error at `field`.
pub fn string_metadata(metadata: Option<&Struct>, field: &str) -> Result<Vec<(String, String)>> {
    use envoy_types::pb::google::protobuf::value::Kind;
    let Some(s) = metadata else {
        return Ok(Vec::new());
    };
    let mut out: Vec<(String, String)> = Vec::with_capacity(s.fields.len());
    for (k, v) in &s.fields {
        let text = match &v.kind {
            Some(Kind::StringValue(s)) => s.clone(),
            Some(Kind::BoolValue(b)) => b.to_string(),
            Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9e15 => {
                format!("{n:.0}")
            }
            Some(Kind::NumberValue(n)) => n.to_string(),
            _ => {
                return Err(Error::new(
                    join(field, k),
                    "only string, number and bool metadata values are supported",
                ))
            }
        };
        out.push((k.clone(), text));
    }
    // HashMap order is random: sorted, so the same resource translates to the same tree.
    out.sort();
    Ok(out)
}

/// A mapping of strings.
pub fn string_map(pairs: &[(String, String)]) -> Node {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.set(k, text(v));
    }
    m.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_the_largest_exact_unit() {
        let d = |seconds, nanos| duration(&Duration { seconds, nanos }, "t").unwrap();
        assert_eq!(d(2, 0).as_scalar(), Some("2s"));
        assert_eq!(d(1, 500_000_000).as_scalar(), Some("1500ms"));
        assert_eq!(d(0, 250_000).as_scalar(), Some("250us"));
        assert_eq!(d(0, 7).as_scalar(), Some("7ns"));
        assert_eq!(d(0, 0).as_scalar(), Some("0"));
        let e = duration(
            &Duration {
                seconds: -1,
                nanos: 0,
            },
            "timeout",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "timeout: must not be negative");
    }

    #[test]
    fn unpack_checks_the_type() {
        let any = Any {
            type_url: type_url("x.Y"),
            value: Vec::new(),
        };
        let e = unpack::<Duration>(&any, &type_url("google.protobuf.Duration"), "typed_config")
            .unwrap_err();
        assert!(e
            .to_string()
            .starts_with("typed_config: expected type.googleapis.com/google.protobuf.Duration"));
    }
}
