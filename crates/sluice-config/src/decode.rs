//! Turning a [`Node`] tree into typed config while collecting every error.
//!
//! Each decoder gets the node, its YAML path (`listeners[0].address`) and a [`Cx`] to report
//! into; it returns `None` when the value is unusable, after reporting why. Mapping decoders use
//! [`Fields`], which also rejects unknown keys with a "did you mean" suggestion.

use std::fmt;
use std::time::Duration;

use crate::units;
use crate::yaml::{Node, NodeKind};

/// One config problem: where (line, YAML path) and what.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub line: usize,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.line, self.message)
        } else {
            write!(f, "{}: {}: {}", self.line, self.path, self.message)
        }
    }
}

/// The decoding context: where diagnostics go, and the cross-references seen on the way.
///
/// References are collected here as they are decoded, not read back from the finished model,
/// so a dangling one is reported even when some other part of the file failed to decode.
#[derive(Debug, Default)]
pub struct Cx {
    pub diagnostics: Vec<Diagnostic>,
    pub cluster_refs: Vec<crate::model::ClusterRef>,
    pub route_config_refs: Vec<crate::model::RouteConfigRef>,
    /// Where a listener turned tracing on (line, path): refused without a top-level exporter.
    pub tracing_uses: Vec<(usize, String)>,
}

impl Cx {
    pub fn error(&mut self, line: usize, path: &str, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            line,
            path: path.to_string(),
            message: message.into(),
        });
    }

    pub fn has_errors(&self) -> bool {
        !self.diagnostics.is_empty()
    }
}

/// `parent.key`, or `key` at the top.
/// `value` if it lies within `range`; otherwise an error "must be from A to B" at
/// `line`/`path`, and `None`. An absent `value` (already reported) stays `None`.
pub fn in_range(
    value: Option<u32>,
    range: std::ops::RangeInclusive<u32>,
    line: usize,
    path: &str,
    cx: &mut Cx,
) -> Option<u32> {
    let value = value?;
    if range.contains(&value) {
        return Some(value);
    }
    cx.error(
        line,
        path,
        format!(
            "must be from {} to {}, found {value}",
            range.start(),
            range.end()
        ),
    );
    None
}

/// Reports each `(value, line, key)` under `path` that is shorter than `min`; whether none was.
pub fn durations_at_least(
    path: &str,
    min: Duration,
    items: &[(Duration, usize, &str)],
    cx: &mut Cx,
) -> bool {
    let mut ok = true;
    for &(value, line, key) in items {
        if value < min {
            cx.error(
                line,
                &join(path, key),
                format!("must be at least {min:?}, found {value:?}"),
            );
            ok = false;
        }
    }
    ok
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `parent[i]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// The closest candidate to a misspelt name, if one is close enough to be a plausible typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// ` (did you mean "x"?)` or nothing.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    suggest(name, candidates)
        .map(|s| format!(" (did you mean \"{s}\"?)"))
        .unwrap_or_default()
}

/// Decodes a keyword from a fixed set (`what` names it in messages), suggesting the closest
/// one on a typo.
pub fn keyword<T>(
    node: &Node,
    path: &str,
    cx: &mut Cx,
    what: &str,
    names: &[&'static str],
    from_name: fn(&str) -> Option<T>,
) -> Option<T> {
    let text = String::decode(node, path, cx)?;
    from_name(&text).or_else(|| {
        let hint = did_you_mean(&text, names.iter().copied());
        cx.error(
            node.line,
            path,
            format!(
                "unknown {what} \"{text}\"{hint}; expected one of: {}",
                names.join(", ")
            ),
        );
        None
    })
}

/// Marks a value that failed to decode; the reason is already in the [`Cx`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported;

/// A value that can be read from config.
pub trait Decode: Sized {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self>;
}

/// Reads a scalar or reports that one was expected.
/// A percentage from 0 to 100, decimals and a trailing `%` allowed (`0.5`, `10%`).
pub(crate) fn percent(node: &Node, path: &str, cx: &mut Cx) -> Option<f64> {
    let text = scalar(node, path, cx, "a percentage from 0 to 100")?;
    match text.trim_end_matches('%').parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Some(p),
        _ => {
            cx.error(
                node.line,
                path,
                format!("expected a percentage from 0 to 100, found \"{text}\""),
            );
            None
        }
    }
}

pub(crate) fn scalar<'n>(node: &'n Node, path: &str, cx: &mut Cx, what: &str) -> Option<&'n str> {
    match node.as_scalar() {
        Some(s) => Some(s),
        None => {
            cx.error(
                node.line,
                path,
                format!("expected {what}, found {}", node.type_name()),
            );
            None
        }
    }
}

impl Decode for String {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        scalar(node, path, cx, "a string").map(str::to_string)
    }
}

impl Decode for bool {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        match scalar(node, path, cx, "true or false")? {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            other => {
                cx.error(
                    node.line,
                    path,
                    format!("expected true or false, found \"{other}\""),
                );
                None
            }
        }
    }
}

macro_rules! decode_int {
    ($($t:ty),*) => {$(
        impl Decode for $t {
            fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
                let text = scalar(node, path, cx, "a whole number")?;
                match text.replace('_', "").parse::<$t>() {
                    Ok(v) => Some(v),
                    Err(_) => {
                        cx.error(node.line, path, format!(
                            "expected a whole number from {} to {}, found \"{text}\"",
                            <$t>::MIN, <$t>::MAX));
                        None
                    }
                }
            }
        }
    )*};
}
decode_int!(u8, u16, u32, u64, usize);

impl Decode for Duration {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let text = scalar(node, path, cx, "a duration such as 250ms, 5s or 1m")?;
        match units::parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                cx.error(node.line, path, e);
                None
            }
        }
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        seq(node, path, cx, T::decode)
    }
}

/// Decodes a list with a per-item decoder (one that may need extra context), reporting
/// every bad item; `None` if any was.
pub fn seq<T>(
    node: &Node,
    path: &str,
    cx: &mut Cx,
    mut item: impl FnMut(&Node, &str, &mut Cx) -> Option<T>,
) -> Option<Vec<T>> {
    let NodeKind::Seq(items) = &node.kind else {
        cx.error(
            node.line,
            path,
            format!("expected a list, found {}", node.type_name()),
        );
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, n) in items.iter().enumerate() {
        match item(n, &index(path, i), cx) {
            Some(v) => out.push(v),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// The fields of one YAML mapping, read one key at a time.
///
/// Call [`Fields::finish`] last: it reports every key nobody asked for as unknown, suggesting
/// the closest known key.
pub struct Fields<'n> {
    node: &'n Node,
    path: String,
    entries: &'n [(String, Node)],
    used: Vec<bool>,
    known: Vec<&'static str>,
}

impl<'n> Fields<'n> {
    /// Starts reading `node` as a mapping; `None` (after reporting) if it is something else.
    /// A null node reads as an empty mapping, so `admin:` alone means "all defaults".
    pub fn new(node: &'n Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let entries: &'n [(String, Node)] = match &node.kind {
            NodeKind::Map(entries) => entries,
            NodeKind::Null => &[],
            _ => {
                cx.error(
                    node.line,
                    path,
                    format!("expected a mapping, found {}", node.type_name()),
                );
                return None;
            }
        };
        Some(Fields {
            node,
            path: path.to_string(),
            entries,
            used: vec![false; entries.len()],
            known: Vec::new(),
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn line(&self) -> usize {
        self.node.line
    }

    /// The line of `key`'s value, or of the mapping when `key` is absent (where an error about
    /// it should point).
    pub fn line_of(&mut self, key: &'static str) -> usize {
        self.node(key).map_or(self.line(), |n| n.line)
    }

    /// Whether `key` is present (marks nothing: the form of a mapping may depend on it).
    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// The raw node of `key`, marking it known and used. Explicit nulls read as absent.
    pub fn node(&mut self, key: &'static str) -> Option<&'n Node> {
        self.known.push(key);
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        self.used[i] = true;
        let node = &self.entries[i].1;
        (!matches!(node.kind, NodeKind::Null)).then_some(node)
    }

    /// An optional field: `Ok(None)` when absent, `Err` when present but invalid.
    pub fn optional<T: Decode>(
        &mut self,
        key: &'static str,
        cx: &mut Cx,
    ) -> Result<Option<T>, Reported> {
        match self.node(key) {
            None => Ok(None),
            Some(node) => T::decode(node, &join(&self.path, key), cx)
                .map(Some)
                .ok_or(Reported),
        }
    }

    /// A field with a default when absent; `None` when present but invalid.
    pub fn or<T: Decode>(&mut self, key: &'static str, default: T, cx: &mut Cx) -> Option<T> {
        self.optional(key, cx).ok().map(|v| v.unwrap_or(default))
    }

    /// A required field; reports it missing.
    pub fn required<T: Decode>(&mut self, key: &'static str, cx: &mut Cx) -> Option<T> {
        match self.optional(key, cx) {
            Ok(Some(v)) => Some(v),
            Ok(None) => {
                cx.error(
                    self.node.line,
                    &self.path,
                    format!("missing required field \"{key}\""),
                );
                None
            }
            Err(Reported) => None,
        }
    }

    /// Reports unknown keys. Returns false if there were any.
    pub fn finish(self, cx: &mut Cx) -> bool {
        let mut clean = true;
        for ((key, node), used) in self.entries.iter().zip(&self.used) {
            if !used {
                clean = false;
                let hint = did_you_mean(key, self.known.iter().copied());
                cx.error(
                    node.line,
                    &join(&self.path, key),
                    format!("unknown field \"{key}\"{hint}"),
                );
            }
        }
        clean
    }
}

/// Reads a one-key mapping `{ name: body }`, the shape of a filter entry.
pub fn single_key<'n>(node: &'n Node, path: &str, cx: &mut Cx) -> Option<(&'n str, &'n Node)> {
    match &node.kind {
        NodeKind::Map(entries) if entries.len() == 1 => {
            let (k, v) = &entries[0];
            Some((k.as_str(), v))
        }
        NodeKind::Scalar { text, .. } => Some((text.as_str(), node_null())),
        _ => {
            cx.error(
                node.line,
                path,
                format!(
                    "expected a mapping with exactly one key (the filter name), found {}",
                    node.type_name()
                ),
            );
            None
        }
    }
}

fn node_null() -> &'static Node {
    static NULL: Node = Node {
        kind: NodeKind::Null,
        line: 0,
    };
    &NULL
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    #[test]
    fn unknown_fields_suggest_the_closest_key() {
        let doc = parse("adress: x\nname: n\n").unwrap();
        let mut cx = Cx::default();
        let mut f = Fields::new(&doc, "listeners[0]", &mut cx).unwrap();
        let _: Option<String> = f.required("name", &mut cx);
        let _: Option<String> = f.required("address", &mut cx);
        f.finish(&mut cx);
        let msgs: Vec<String> = cx.diagnostics.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                "1: listeners[0]: missing required field \"address\"",
                "1: listeners[0].adress: unknown field \"adress\" (did you mean \"address\"?)",
            ]
        );
    }

    #[test]
    fn wrong_types_are_named() {
        let doc = parse("n: [1]\nb: maybe\nu: 70000\n").unwrap();
        let mut cx = Cx::default();
        let mut f = Fields::new(&doc, "", &mut cx).unwrap();
        assert!(f.required::<String>("n", &mut cx).is_none());
        assert!(f.required::<bool>("b", &mut cx).is_none());
        assert!(f.required::<u16>("u", &mut cx).is_none());
        assert!(f.finish(&mut cx));
        let msgs: Vec<String> = cx.diagnostics.iter().map(|d| d.to_string()).collect();
        assert_eq!(msgs[0], "1: n: expected a string, found a list");
        assert_eq!(msgs[1], "2: b: expected true or false, found \"maybe\"");
        assert_eq!(
            msgs[2],
            "3: u: expected a whole number from 0 to 65535, found \"70000\""
        );
    }

    #[test]
    fn suggestions_need_to_be_close() {
        assert_eq!(suggest("clustr", ["cluster", "listeners"]), Some("cluster"));
        assert_eq!(suggest("zzz", ["cluster", "listeners"]), None);
    }
}
