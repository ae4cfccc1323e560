//! A YAML document as a tree whose every node remembers its line.
//!
//! Why not serde: serde stops at the first error and forgets where a value stood. `sluice check`
//! must report *every* mistake with its line, so we parse into this tree once and let the
//! decoder (`decode.rs`) walk it, collecting diagnostics as it goes.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, SpannedEventReceiver};

/// One YAML value with the 1-based line it starts on; for a block mapping or list under a
/// key, the key's line (what an error about the value as a whole should point at).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `~`, `null`, or an absent value (`key:`).
    Null,
    /// A scalar as written; `quoted` scalars are always strings.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Entries in document order; duplicate keys are rejected while parsing.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// A short name of the node's type for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Null => "null",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// The scalar text, if this is a scalar.
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }
}

/// A YAML syntax error, located.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// Parses one YAML document. An empty document yields `Null`.
pub fn parse(src: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(src);
    parser.load(&mut builder, true).map_err(|e| SyntaxError {
        line: e.marker().line(),
        message: e.info().to_string(),
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    let mut docs = builder.docs.into_iter();
    let first = docs.next().unwrap_or(Node {
        kind: NodeKind::Null,
        line: 1,
    });
    if let Some(extra) = docs.next() {
        return Err(SyntaxError {
            line: extra.line,
            message: "a config file holds one YAML document; found a second one".into(),
        });
    }
    Ok(first)
}

enum Frame {
    Seq(Node),
    /// A mapping being built, and the key waiting for its value.
    Map(Node, Option<(String, usize)>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Frame, usize)>,
    anchors: HashMap<usize, Node>,
    docs: Vec<Node>,
    error: Option<SyntaxError>,
}

impl Builder {
    fn fail(&mut self, line: usize, message: String) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { line, message });
        }
    }

    /// Attaches a finished node to its parent (or ends the document).
    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some((Frame::Seq(seq), _)) => {
                if let NodeKind::Seq(items) = &mut seq.kind {
                    items.push(node);
                }
            }
            Some((Frame::Map(map, pending), _)) => match pending.take() {
                None => {
                    // This node is a key; only scalar keys make sense in a config.
                    match node.kind {
                        NodeKind::Scalar { text, .. } => *pending = Some((text, node.line)),
                        NodeKind::Null => *pending = Some((String::new(), node.line)),
                        _ => {
                            let line = node.line;
                            self.fail(line, "mapping keys must be plain scalars".into());
                        }
                    }
                }
                Some((key, key_line)) => {
                    let mut node = node;
                    // A block mapping or list starts on the line below its key; an error about
                    // the value as a whole (an unknown key, a wrong type) names the key's line.
                    if matches!(node.kind, NodeKind::Map(_) | NodeKind::Seq(_)) {
                        node.line = node.line.min(key_line);
                    }
                    if let NodeKind::Map(entries) = &mut map.kind {
                        if entries.iter().any(|(k, _)| *k == key) {
                            self.fail(key_line, format!("duplicate key \"{key}\""));
                        } else {
                            entries.push((key, node));
                        }
                    }
                }
            },
        }
    }
}

impl<'input> SpannedEventReceiver<'input> for Builder {
    fn on_event(&mut self, ev: Event<'input>, span: Span) {
        let line = span.start.line();
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = !matches!(style, ScalarStyle::Plain) || tag.is_some();
                let kind = if !quoted && is_null(&text) {
                    NodeKind::Null
                } else {
                    NodeKind::Scalar {
                        text: Cow::into_owned(text),
                        quoted,
                    }
                };
                self.push_value(Node { kind, line }, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push((
                Frame::Seq(Node {
                    kind: NodeKind::Seq(Vec::new()),
                    line,
                }),
                anchor,
            )),
            Event::MappingStart(anchor, _) => self.stack.push((
                Frame::Map(
                    Node {
                        kind: NodeKind::Map(Vec::new()),
                        line,
                    },
                    None,
                ),
                anchor,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((frame, anchor)) = self.stack.pop() {
                    let node = match frame {
                        Frame::Seq(n) | Frame::Map(n, _) => n,
                    };
                    self.push_value(node, anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    node.line = line;
                    self.push_value(node, 0);
                }
                None => self.fail(line, "alias refers to an unknown anchor".into()),
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => {}
        }
    }
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_remembered() {
        let doc = parse("a: 1\nb:\n  - x\n  - { c: d }\n").unwrap();
        let NodeKind::Map(entries) = &doc.kind else {
            panic!("not a map")
        };
        assert_eq!(entries[0].1.line, 1);
        let NodeKind::Seq(items) = &entries[1].1.kind else {
            panic!("not a seq")
        };
        assert_eq!(items[0].line, 3);
        assert_eq!(items[1].line, 4);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("duplicate key \"a\""));
    }

    #[test]
    fn anchors_and_nulls() {
        let doc = parse("x: &v { k: 1 }\ny: *v\nz: ~\n").unwrap();
        let NodeKind::Map(entries) = &doc.kind else {
            panic!()
        };
        assert_eq!(entries[0].1.kind, entries[1].1.kind);
        assert_eq!(entries[2].1.kind, NodeKind::Null);
    }

    #[test]
    fn syntax_errors_have_lines() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.line >= 1);
    }

    #[test]
    fn second_document_is_rejected() {
        assert!(parse("a: 1\n---\nb: 2\n").is_err());
    }
}
