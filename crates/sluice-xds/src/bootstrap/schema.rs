//! Envoy YAML read against Envoy's own protobuf schema, into the `envoy-types` messages the
//! translators take.
//!
//! The descriptors come from the `.proto` files `envoy-types` ships (compiled by
//! `build.rs`). The reading follows the protobuf JSON mapping as Envoy applies it to YAML:
//! field names in snake_case or lowerCamelCase, enums by name in any case (`strict_dns`) or
//! by number, durations as `1.5s`, wrapper types as their bare value, `Struct` as any
//! mapping, and `typed_config` (`Any`) as a mapping whose `@type` names the message. An
//! unknown field is an error, as in Envoy, located by line and path. An `Any` whose type
//! Sluice has no schema for is passed on empty: the translators name it as unsupported.

use std::sync::LazyLock;

use base64::Engine as _;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MapKey, MessageDescriptor, Value};
use sluice_config::decode::{index, join};
use sluice_config::yaml::{Node, NodeKind};

/// A place in the YAML and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub line: usize,
    pub path: String,
    pub message: String,
}

type Result<T> = std::result::Result<T, Error>;

static POOL: LazyLock<std::result::Result<DescriptorPool, String>> = LazyLock::new(|| {
    DescriptorPool::decode(&include_bytes!(concat!(env!("OUT_DIR"), "/envoy.fds"))[..])
        .map_err(|e| format!("the built-in Envoy schema cannot be read: {e}"))
});

/// Reads `node` as the Envoy message `M` (e.g. a `Bootstrap`).
pub fn decode<M: prost::Message + prost::Name + Default>(node: &Node) -> Result<M> {
    let fail = |message: String| Error {
        line: node.line,
        path: String::new(),
        message,
    };
    let pool = POOL.as_ref().map_err(|e| fail(e.clone()))?;
    let md = pool
        .get_message_by_name(&M::full_name())
        .ok_or_else(|| fail(format!("no schema for {}", M::full_name())))?;
    let reader = Reader { pool };
    let msg = reader.message(node, &md, "")?;
    msg.transcode_to::<M>()
        .map_err(|e| fail(format!("cannot convert to {}: {e}", M::full_name())))
}

struct Reader<'a> {
    pool: &'a DescriptorPool,
}

fn error(node: &Node, path: &str, message: impl Into<String>) -> Error {
    Error {
        line: node.line,
        path: path.to_string(),
        message: message.into(),
    }
}

/// The text of a scalar, or an error naming what was found instead.
fn scalar<'n>(node: &'n Node, path: &str, expected: &str) -> Result<&'n str> {
    match &node.kind {
        NodeKind::Scalar { text, .. } => Ok(text),
        _ => Err(error(
            node,
            path,
            format!("expected {expected}, found {}", node.type_name()),
        )),
    }
}

const WRAPPERS: &[&str] = &[
    "google.protobuf.BoolValue",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.FloatValue",
    "google.protobuf.DoubleValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
];

impl Reader<'_> {
    /// A message written as a mapping of its fields.
    fn message(&self, node: &Node, md: &MessageDescriptor, path: &str) -> Result<DynamicMessage> {
        let mut msg = DynamicMessage::new(md.clone());
        let entries = match &node.kind {
            NodeKind::Null => return Ok(msg),
            NodeKind::Map(entries) => entries,
            _ => {
                return Err(error(
                    node,
                    path,
                    format!(
                        "expected a mapping ({}), found {}",
                        md.name(),
                        node.type_name()
                    ),
                ))
            }
        };
        for (key, value) in entries {
            let at = join(path, key);
            let Some(field) = md
                .get_field_by_name(key)
                .or_else(|| md.get_field_by_json_name(key))
            else {
                return Err(error(
                    value,
                    &at,
                    format!("unknown field (not in {})", md.full_name()),
                ));
            };
            if matches!(value.kind, NodeKind::Null) {
                continue;
            }
            if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic()) {
                if let Some(other) = oneof
                    .fields()
                    .find(|f| f.number() != field.number() && msg.has_field(f))
                {
                    return Err(error(
                        value,
                        &at,
                        format!(
                            "only one of {} and {} may be set",
                            other.name(),
                            field.name()
                        ),
                    ));
                }
            }
            let v = if field.is_map() {
                self.map(value, &field.kind(), &at)?
            } else if field.is_list() {
                let NodeKind::Seq(items) = &value.kind else {
                    return Err(error(
                        value,
                        &at,
                        format!("expected a list, found {}", value.type_name()),
                    ));
                };
                let mut list = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    list.push(self.single(item, &field.kind(), &index(&at, i))?);
                }
                Value::List(list)
            } else {
                self.single(value, &field.kind(), &at)?
            };
            msg.try_set_field(&field, v)
                .map_err(|e| error(value, &at, format!("cannot set: {e}")))?;
        }
        Ok(msg)
    }

    /// A protobuf map field, written as a mapping.
    fn map(&self, node: &Node, entry: &Kind, path: &str) -> Result<Value> {
        let Kind::Message(entry) = entry else {
            return Err(error(node, path, "malformed map schema"));
        };
        let NodeKind::Map(entries) = &node.kind else {
            return Err(error(
                node,
                path,
                format!("expected a mapping, found {}", node.type_name()),
            ));
        };
        let key_kind = entry.map_entry_key_field().kind();
        let value_kind = entry.map_entry_value_field().kind();
        let mut map = std::collections::HashMap::with_capacity(entries.len());
        for (k, v) in entries {
            let at = join(path, k);
            let key = match key_kind {
                Kind::String => MapKey::String(k.clone()),
                Kind::Bool => MapKey::Bool(
                    parse_bool(k).ok_or_else(|| error(v, &at, "the key must be true or false"))?,
                ),
                Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(parse_int(k, v, &at)?),
                Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(parse_int(k, v, &at)?),
                Kind::Uint32 | Kind::Fixed32 => MapKey::U32(parse_int(k, v, &at)?),
                _ => MapKey::U64(parse_int(k, v, &at)?),
            };
            map.insert(key, self.single(v, &value_kind, &at)?);
        }
        Ok(Value::Map(map))
    }

    /// One value of a field's type.
    fn single(&self, node: &Node, kind: &Kind, path: &str) -> Result<Value> {
        Ok(match kind {
            Kind::Message(md) => Value::Message(self.message_value(node, md, path)?),
            Kind::Enum(ed) => {
                let text = scalar(node, path, "an enum value")?;
                let found = ed
                    .values()
                    .find(|v| v.name().eq_ignore_ascii_case(text))
                    .map(|v| v.number())
                    .or_else(|| text.parse::<i32>().ok());
                match found {
                    Some(n) => Value::EnumNumber(n),
                    None => {
                        let names: Vec<String> =
                            ed.values().map(|v| v.name().to_string()).collect();
                        return Err(error(
                            node,
                            path,
                            format!(
                                "unknown value {text:?}; expected one of {}",
                                names.join(", ")
                            ),
                        ));
                    }
                }
            }
            Kind::Bool => {
                let text = scalar(node, path, "true or false")?;
                Value::Bool(parse_bool(text).ok_or_else(|| {
                    error(
                        node,
                        path,
                        format!("expected true or false, found {text:?}"),
                    )
                })?)
            }
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                Value::I32(parse_int(scalar(node, path, "an integer")?, node, path)?)
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                Value::I64(parse_int(scalar(node, path, "an integer")?, node, path)?)
            }
            Kind::Uint32 | Kind::Fixed32 => {
                Value::U32(parse_int(scalar(node, path, "an integer")?, node, path)?)
            }
            Kind::Uint64 | Kind::Fixed64 => {
                Value::U64(parse_int(scalar(node, path, "an integer")?, node, path)?)
            }
            Kind::Float => Value::F32(parse_float(node, path)? as f32),
            Kind::Double => Value::F64(parse_float(node, path)?),
            Kind::String => Value::String(scalar(node, path, "a string")?.to_string()),
            Kind::Bytes => {
                let text = scalar(node, path, "base64 bytes")?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
                    .map_err(|e| error(node, path, format!("not base64: {e}")))?;
                Value::Bytes(bytes.into())
            }
        })
    }

    /// A message value: the well-known types have their own JSON forms.
    fn message_value(
        &self,
        node: &Node,
        md: &MessageDescriptor,
        path: &str,
    ) -> Result<DynamicMessage> {
        let name = md.full_name();
        if WRAPPERS.contains(&name) {
            let mut msg = DynamicMessage::new(md.clone());
            if let Some(field) = md.get_field_by_name("value") {
                let v = self.single(node, &field.kind(), path)?;
                msg.try_set_field(&field, v)
                    .map_err(|e| error(node, path, format!("cannot set: {e}")))?;
            }
            return Ok(msg);
        }
        match name {
            "google.protobuf.Duration" => self.duration(node, md, path),
            "google.protobuf.Any" => self.any(node, md, path),
            "google.protobuf.Struct" => self.structure(node, md, path),
            "google.protobuf.Value" => self.json_value(node, md, path),
            "google.protobuf.ListValue" => self.json_list(node, md, path),
            "google.protobuf.Timestamp" | "google.protobuf.FieldMask" => Err(error(
                node,
                path,
                format!("{name} values are not supported in Envoy files by Sluice"),
            )),
            _ => self.message(node, md, path),
        }
    }

    /// `1.5s`, `0.25s`, `30s`: seconds with the `s`, as protobuf's JSON mapping (and so
    /// Envoy) requires.
    fn duration(&self, node: &Node, md: &MessageDescriptor, path: &str) -> Result<DynamicMessage> {
        let text = scalar(node, path, "a duration such as 1.5s")?;
        let bad = || {
            error(
                node,
                path,
                format!("expected a duration such as 1.5s, found {text:?}"),
            )
        };
        let number = text.strip_suffix('s').ok_or_else(bad)?;
        let (negative, number) = match number.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, number),
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty() || frac.len() > 9 {
            return Err(bad());
        }
        let seconds: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let nanos: i32 = if frac.is_empty() {
            0
        } else {
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            format!("{frac:0<9}").parse().map_err(|_| bad())?
        };
        let sign = if negative { -1 } else { 1 };
        let mut msg = DynamicMessage::new(md.clone());
        msg.set_field_by_name("seconds", Value::I64(sign * seconds));
        msg.set_field_by_name("nanos", Value::I32(sign as i32 * nanos));
        Ok(msg)
    }

    /// `{ "@type": type.googleapis.com/NAME, ...fields }`, packed as the `Any` it stands for.
    fn any(&self, node: &Node, md: &MessageDescriptor, path: &str) -> Result<DynamicMessage> {
        let NodeKind::Map(entries) = &node.kind else {
            return Err(error(
                node,
                path,
                format!(
                    "expected a mapping with \"@type\", found {}",
                    node.type_name()
                ),
            ));
        };
        let Some((_, type_node)) = entries.iter().find(|(k, _)| k == "@type") else {
            return Err(error(node, path, "\"@type\" is required"));
        };
        let type_url = scalar(type_node, &join(path, "@type"), "a type URL")?.to_string();
        let type_name = type_url.rsplit('/').next().unwrap_or(&type_url);
        let mut value = Vec::new();
        if let Some(inner) = self.pool.get_message_by_name(type_name) {
            let special = WRAPPERS.contains(&type_name)
                || matches!(
                    type_name,
                    "google.protobuf.Duration"
                        | "google.protobuf.Struct"
                        | "google.protobuf.Value"
                        | "google.protobuf.ListValue"
                        | "google.protobuf.Any"
                );
            let msg = if special {
                match entries.iter().find(|(k, _)| k == "value") {
                    Some((_, v)) => self.message_value(v, &inner, &join(path, "value"))?,
                    None => DynamicMessage::new(inner),
                }
            } else {
                let rest = Node {
                    kind: NodeKind::Map(
                        entries
                            .iter()
                            .filter(|(k, _)| k != "@type")
                            .cloned()
                            .collect(),
                    ),
                    line: node.line,
                };
                self.message(&rest, &inner, path)?
            };
            value = prost::Message::encode_to_vec(&msg);
        }
        let mut any = DynamicMessage::new(md.clone());
        any.set_field_by_name("type_url", Value::String(type_url));
        any.set_field_by_name("value", Value::Bytes(value.into()));
        Ok(any)
    }

    fn structure(&self, node: &Node, md: &MessageDescriptor, path: &str) -> Result<DynamicMessage> {
        let NodeKind::Map(entries) = &node.kind else {
            return Err(error(
                node,
                path,
                format!("expected a mapping, found {}", node.type_name()),
            ));
        };
        let value_md = self.well_known("google.protobuf.Value", node, path)?;
        let mut fields = std::collections::HashMap::with_capacity(entries.len());
        for (k, v) in entries {
            let value = self.json_value(v, &value_md, &join(path, k))?;
            fields.insert(MapKey::String(k.clone()), Value::Message(value));
        }
        let mut msg = DynamicMessage::new(md.clone());
        msg.set_field_by_name("fields", Value::Map(fields));
        Ok(msg)
    }

    fn json_list(&self, node: &Node, md: &MessageDescriptor, path: &str) -> Result<DynamicMessage> {
        let NodeKind::Seq(items) = &node.kind else {
            return Err(error(
                node,
                path,
                format!("expected a list, found {}", node.type_name()),
            ));
        };
        let value_md = self.well_known("google.protobuf.Value", node, path)?;
        let mut values = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            values.push(Value::Message(self.json_value(
                item,
                &value_md,
                &index(path, i),
            )?));
        }
        let mut msg = DynamicMessage::new(md.clone());
        msg.set_field_by_name("values", Value::List(values));
        Ok(msg)
    }

    /// Any YAML value as a `google.protobuf.Value`; unquoted scalars are read as YAML reads
    /// them (null, bools, numbers), everything else is a string.
    fn json_value(
        &self,
        node: &Node,
        md: &MessageDescriptor,
        path: &str,
    ) -> Result<DynamicMessage> {
        let mut msg = DynamicMessage::new(md.clone());
        match &node.kind {
            NodeKind::Null => msg.set_field_by_name("null_value", Value::EnumNumber(0)),
            NodeKind::Scalar { text, quoted } => {
                if !quoted && text == "null" {
                    msg.set_field_by_name("null_value", Value::EnumNumber(0));
                } else if let (false, Some(b)) = (*quoted, parse_bool(text)) {
                    msg.set_field_by_name("bool_value", Value::Bool(b));
                } else if let (false, Ok(n)) = (*quoted, text.parse::<f64>()) {
                    msg.set_field_by_name("number_value", Value::F64(n));
                } else {
                    msg.set_field_by_name("string_value", Value::String(text.clone()));
                }
            }
            NodeKind::Map(_) => {
                let md = self.well_known("google.protobuf.Struct", node, path)?;
                msg.set_field_by_name(
                    "struct_value",
                    Value::Message(self.structure(node, &md, path)?),
                );
            }
            NodeKind::Seq(_) => {
                let md = self.well_known("google.protobuf.ListValue", node, path)?;
                msg.set_field_by_name(
                    "list_value",
                    Value::Message(self.json_list(node, &md, path)?),
                );
            }
        }
        Ok(msg)
    }

    fn well_known(&self, name: &str, node: &Node, path: &str) -> Result<MessageDescriptor> {
        self.pool
            .get_message_by_name(name)
            .ok_or_else(|| error(node, path, format!("no schema for {name}")))
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn parse_int<T: std::str::FromStr>(text: &str, node: &Node, path: &str) -> Result<T> {
    text.parse().map_err(|_| {
        error(
            node,
            path,
            format!("expected an integer in range, found {text:?}"),
        )
    })
}

fn parse_float(node: &Node, path: &str) -> Result<f64> {
    let text = scalar(node, path, "a number")?;
    match text {
        "Infinity" | ".inf" => Ok(f64::INFINITY),
        "-Infinity" | "-.inf" => Ok(f64::NEG_INFINITY),
        "NaN" | ".nan" => Ok(f64::NAN),
        _ => text
            .parse()
            .map_err(|_| error(node, path, format!("expected a number, found {text:?}"))),
    }
}
