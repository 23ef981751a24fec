//! A YAML document as a tree of spanned nodes.
//!
//! We build our own tree from saphyr's event stream instead of deserializing with serde because
//! a spec must report *every* problem with its line and column, including duplicate keys, which
//! map-based loaders silently overwrite.

use saphyr_parser::{Event, Parser, ScalarStyle};

use crate::diagnostic::{CharOffsets, Code, Diagnostic, Span};

#[derive(Debug, Clone)]
pub enum NodeKind {
    /// A scalar with its text and whether it was quoted (quoted scalars are never null/bool).
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Entries in file order; duplicates are kept so validation can report them.
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// True for an unquoted `~`, `null`, `Null`, `NULL` or an empty plain scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, quoted: false }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "null",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

/// Parses one YAML document. An empty file yields an empty mapping.
pub fn parse(source: &str) -> Result<Node, Diagnostic> {
    let mut builder = Builder::default();
    let offsets = CharOffsets::new(source);
    for item in Parser::new_from_str(source) {
        match item {
            Ok((event, span)) => builder.push(event, Span::from_saphyr(&span, &offsets))?,
            Err(e) => {
                let m = e.marker();
                let span = Span::point(source, m.line(), m.col());
                return Err(Diagnostic::new(Code::YamlSyntax, span, format!("YAML syntax error: {}", e.info()))
                    .with_hint("check the indentation and quoting on this line"));
            }
        }
    }
    builder.finish(source)
}

#[derive(Default)]
struct Builder {
    stack: Vec<Partial>,
    root: Option<Node>,
    documents: usize,
}

enum Partial {
    Seq(Vec<Node>, Span),
    Map(Vec<(Node, Node)>, Option<Node>, Span),
}

impl Builder {
    fn push(&mut self, event: Event<'_>, span: Span) -> Result<(), Diagnostic> {
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(Diagnostic::new(
                        Code::MultipleDocuments,
                        span,
                        "a spec file holds exactly one YAML document",
                    )
                    .with_hint("remove the second `---` document or split it into another file"));
                }
            }
            Event::Alias(_) => {
                return Err(Diagnostic::new(
                    Code::YamlAlias,
                    span,
                    "YAML aliases (`*name`) are not supported in a spec",
                )
                .with_hint("write the value out; a spec should read without jumping around"));
            }
            Event::Scalar(text, style, _, _) => {
                let quoted = !matches!(style, ScalarStyle::Plain);
                self.add(Node { kind: NodeKind::Scalar { text: text.into_owned(), quoted }, span });
            }
            Event::SequenceStart(..) => self.stack.push(Partial::Seq(Vec::new(), span)),
            Event::MappingStart(..) => self.stack.push(Partial::Map(Vec::new(), None, span)),
            Event::SequenceEnd => {
                if let Some(Partial::Seq(items, start)) = self.stack.pop() {
                    let span = start.to(&span);
                    self.add(Node { kind: NodeKind::Seq(items), span });
                }
            }
            Event::MappingEnd => {
                if let Some(Partial::Map(entries, _, start)) = self.stack.pop() {
                    let span = start.to(&span);
                    self.add(Node { kind: NodeKind::Map(entries), span });
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn add(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Partial::Seq(items, _)) => items.push(node),
            Some(Partial::Map(entries, pending_key, _)) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => entries.push((key, node)),
            },
        }
    }

    fn finish(self, source: &str) -> Result<Node, Diagnostic> {
        Ok(self.root.unwrap_or(Node { kind: NodeKind::Map(Vec::new()), span: Span::point(source, 1, 0) }))
    }
}
