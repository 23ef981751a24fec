//! Reading values out of the YAML tree: mappings with known keys, names, booleans, table names.
//! Every part of the spec reads through these, so a problem is reported the same way wherever
//! it occurs.

use std::collections::BTreeMap;

use crate::diagnostic::{suggestion, Code, Diagnostic, Span};
use crate::model::QualifiedName;
use crate::names::MAX_IDENTIFIER_BYTES;
use crate::yaml::{Node, NodeKind};

/// Collects the problems found while reading a spec.
#[derive(Default)]
pub(super) struct Reader {
    pub diagnostics: Vec<Diagnostic>,
}

/// The entries of a mapping, with its keys as text.
pub(super) struct Entries<'n> {
    pub items: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Entries<'n> {
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.items.iter().find(|(k, _, _)| *k == key).map(|(_, _, v)| *v)
    }

    /// Where the key itself was written.
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.items.iter().find(|(k, _, _)| *k == key).map(|(_, k, _)| k.span)
    }
}

impl Reader {
    pub fn error(&mut self, code: Code, span: Span, message: impl Into<String>, hint: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(code, span, message).with_hint(hint));
    }

    /// A mapping's entries; reports duplicate keys and non-scalar keys. `None` (and no problem
    /// reported) for a null node: an empty part.
    pub fn entries<'n>(&mut self, node: &'n Node, what: &str) -> Option<Entries<'n>> {
        let NodeKind::Map(pairs) = &node.kind else {
            if !node.is_null() {
                self.error(
                    Code::NotAMapping,
                    node.span,
                    format!("{what} must be a mapping, found {}", node.kind_name()),
                    "write `key: value` pairs, one per line, indented under it",
                );
            }
            return None;
        };
        let mut items = Vec::new();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (k, v) in pairs {
            let Some(key) = k.as_str() else {
                self.error(
                    Code::KeyNotAName,
                    k.span,
                    format!("a key in {what} must be a plain name, found {}", k.kind_name()),
                    "use a scalar key",
                );
                continue;
            };
            if let Some(first_line) = seen.get(key) {
                self.error(
                    Code::DuplicateKey,
                    k.span,
                    format!("duplicate key `{key}` in {what} (first given on line {first_line})"),
                    "remove one of them; YAML would silently keep only the last",
                );
                continue;
            }
            seen.insert(key, k.span.line);
            items.push((key, k, v));
        }
        Some(Entries { items })
    }

    /// Like [`Self::entries`], for mappings with a fixed set of keys. A missing required key is
    /// reported at `owner` (where the mapping is named).
    pub fn fields<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
        required: &[&str],
        owner: Span,
    ) -> Option<Entries<'n>> {
        let entries = self.entries(node, what)?;
        for (key, k, _) in &entries.items {
            if !allowed.contains(key) {
                self.error(
                    Code::UnknownKey,
                    k.span,
                    format!("unknown key `{key}` in {what}"),
                    suggestion(key, allowed, "key"),
                );
            }
        }
        for key in required {
            if entries.get(key).is_none() {
                self.error(
                    Code::MissingKey,
                    owner,
                    format!("{what} is missing the required key `{key}`"),
                    format!("add `{key}:` under it"),
                );
            }
        }
        Some(entries)
    }

    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            NodeKind::Scalar { text, .. } if !node.is_null() => Some(text.clone()),
            _ => {
                self.error(
                    Code::NotAValue,
                    node.span,
                    format!("{what} must be a name, found {}", node.kind_name()),
                    "write a single value",
                );
                None
            }
        }
    }

    /// A name PostgreSQL accepts (quoted) without truncating it.
    pub fn identifier(&mut self, node: &Node, what: &str) -> Option<String> {
        let text = self.string(node, what)?;
        self.check_identifier(&text, node.span, what).then_some(text)
    }

    pub fn check_identifier(&mut self, text: &str, span: Span, what: &str) -> bool {
        if text.is_empty() {
            self.error(Code::EmptyName, span, format!("{what} is empty"), "give a name");
            false
        } else if text.contains('\0') {
            self.error(
                Code::NulInName,
                span,
                format!("{what} `{}` contains a NUL character", text.escape_debug()),
                "PostgreSQL identifiers cannot contain NUL",
            );
            false
        } else if text.len() > MAX_IDENTIFIER_BYTES {
            self.error(
                Code::NameTooLong,
                span,
                format!(
                    "{what} `{text}` is {} bytes; PostgreSQL truncates names to {MAX_IDENTIFIER_BYTES}",
                    text.len()
                ),
                "shorten it: rowsec never lets PostgreSQL truncate a name silently",
            );
            false
        } else {
            true
        }
    }

    /// `schema.table` or `table` (schema `public`), parts quoted with `"` when they hold dots.
    pub fn qualified_name(&mut self, node: &Node, what: &str) -> Option<QualifiedName> {
        let text = self.string(node, what)?;
        let Some(parts) = split_qualified(&text) else {
            self.error(
                Code::BadTableName,
                node.span,
                format!("{what} `{text}` is not a table name"),
                "write `schema.table`; quote parts with \"double quotes\" if they contain dots",
            );
            return None;
        };
        let (schema, name) = match parts.as_slice() {
            [name] => ("public".to_owned(), name.clone()),
            [schema, name] => (schema.clone(), name.clone()),
            _ => {
                self.error(
                    Code::BadTableName,
                    node.span,
                    format!("{what} `{text}` has too many parts"),
                    "write `schema.table`",
                );
                return None;
            }
        };
        let ok = self.check_identifier(&schema, node.span, "the schema name")
            & self.check_identifier(&name, node.span, "the table name");
        ok.then(|| QualifiedName::new(&schema, &name))
    }

    /// A table rowsec may protect: not in a schema of PostgreSQL's or the extension's.
    pub fn check_not_reserved_schema(&mut self, t: &QualifiedName, span: Span, what: &str) {
        let s = t.schema.as_str();
        let owner = if s == crate::sql::extension_api::SCHEMA {
            "the rowsec extension"
        } else if s == "pg_catalog" || s == "information_schema" || s.starts_with("pg_") {
            "PostgreSQL"
        } else {
            return;
        };
        self.error(
            Code::ReservedSchema,
            span,
            format!("{what} `{}` is in schema `{s}`, which belongs to {owner}", t.dotted()),
            "protect tables in your own schemas",
        );
    }

    pub fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.kind {
            NodeKind::Scalar { text, quoted: false } if text.eq_ignore_ascii_case("true") => Some(true),
            NodeKind::Scalar { text, quoted: false } if text.eq_ignore_ascii_case("false") => Some(false),
            _ => {
                self.error(
                    Code::NotABoolean,
                    node.span,
                    format!("{what} must be `true` or `false`"),
                    "write true or false without quotes",
                );
                None
            }
        }
    }
}

/// Splits `schema.table`, honouring double quotes (`"my.schema".t`); `None` if malformed.
fn split_qualified(text: &str) -> Option<Vec<String>> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if parts.last()?.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                parts.last_mut()?.push('"');
            }
            ('"', true) => quoted = false,
            ('.', false) => {
                if parts.last()?.is_empty() {
                    return None;
                }
                parts.push(String::new());
                was_quoted = false;
            }
            ('"', false) => return None,
            // Text after a closing quote, before the next dot.
            (_, _) if was_quoted && !quoted => return None,
            (c, _) => parts.last_mut()?.push(c),
        }
    }
    (!quoted && parts.iter().all(|p| !p.is_empty())).then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::split_qualified;

    #[test]
    fn splits_plain_and_quoted_names() {
        assert_eq!(split_qualified("crm.accounts").unwrap(), ["crm", "accounts"]);
        assert_eq!(split_qualified("\"My.Schema\".\"T\"\"x\"").unwrap(), ["My.Schema", "T\"x"]);
        assert_eq!(split_qualified("accounts").unwrap(), ["accounts"]);
        assert!(split_qualified("crm.").is_none());
        assert!(split_qualified("\"open").is_none());
        assert!(split_qualified("a\"b").is_none());
    }
}
