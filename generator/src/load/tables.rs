//! `tables`: each protected table, its key and owner columns, classed columns, `always` rule
//! and sharing.

use std::collections::{BTreeMap, BTreeSet};

use super::reader::Reader;
use crate::diagnostic::{Code, Span};
use crate::model::{QualifiedName, Table};
use crate::yaml::Node;

const KEYS: &[&str] = &["key", "owner", "columns", "always", "sharing", "references"];

/// A table as written; `key` or `owner` is `None` when it is missing or invalid (already
/// reported), so later checks still see the rest of the table.
pub(super) struct TableDraft {
    pub name: QualifiedName,
    pub key: Option<String>,
    pub owner: Option<String>,
    /// column -> class
    pub columns: BTreeMap<String, String>,
    pub always: Option<String>,
    pub sharing: bool,
    /// column -> referenced table
    pub references: BTreeMap<String, QualifiedName>,
}

impl TableDraft {
    pub fn finish(self) -> Option<Table> {
        let TableDraft { name, key, owner, columns, always, sharing, references } = self;
        Some(Table { name, key: key?, owner: owner?, columns, always, sharing, references })
    }

    pub fn classes(&self) -> impl Iterator<Item = &str> {
        self.columns.values().map(String::as_str)
    }
}

/// Where a table's parts were written.
pub(super) struct TablePlaces {
    /// The table's name (the key under `tables`), and its text as written.
    pub name: Span,
    pub written: String,
    pub key: Option<Span>,
    pub owner: Option<Span>,
    /// column -> where the column was named
    pub columns: BTreeMap<String, Span>,
    pub always: Option<Span>,
    /// column -> (where the column was named, where the table was named, the table as written)
    pub references: BTreeMap<String, (Span, Span, String)>,
}

/// What of `tables` could not be read (already reported): a role naming a table or class there
/// is not told that it is unknown, which would be a consequence, not a second mistake.
#[derive(Default)]
pub(super) struct Unread {
    /// `tables` is not a mapping, or a table's name could not be read: any table may be meant.
    pub any_table: bool,
    /// Tables whose entry could not be read.
    pub tables: BTreeSet<QualifiedName>,
    /// Class names written in `columns`, also where the column or the class name was rejected.
    pub classes: BTreeSet<String>,
    /// Some table's `columns` could not be read: any class may be meant.
    pub any_class: bool,
}

pub(super) fn read(
    r: &mut Reader,
    node: &Node,
) -> (BTreeMap<QualifiedName, TableDraft>, BTreeMap<QualifiedName, TablePlaces>, Unread) {
    let mut tables = BTreeMap::new();
    let mut places = BTreeMap::new();
    let mut unread = Unread::default();
    let Some(e) = r.entries(node, "`tables`") else {
        unread.any_table = !node.is_null();
        unread.any_class = unread.any_table;
        return (tables, places, unread);
    };
    for (text, k, v) in e.items {
        let Some(name) = r.qualified_name(k, "a table name") else {
            unread.any_table = true;
            unread.any_class = true;
            continue;
        };
        r.check_not_reserved_schema(&name, k.span, "the table");
        if tables.contains_key(&name) {
            r.error(Code::DuplicateTable, k.span, format!("table `{text}` is listed twice"), "merge the two entries");
            continue;
        }
        let what = format!("table `{text}`");
        if v.is_null() {
            // `crm.accounts:` with nothing under it: named, not described (one problem).
            r.error(
                Code::MissingKey,
                k.span,
                format!("{what} is missing the required keys `key` and `owner`"),
                "add `key: <column>` and `owner: <column>` under it",
            );
        }
        let Some(f) = r.fields(v, &what, KEYS, &["key", "owner"], k.span) else {
            unread.tables.insert(name);
            unread.any_class = true;
            continue;
        };
        let key = f.get("key").and_then(|n| r.identifier(n, "`key`"));
        let owner = f.get("owner").and_then(|n| r.identifier(n, "`owner`"));
        let sharing = f.get("sharing").and_then(|n| r.boolean(n, "`sharing`")).unwrap_or(false);
        let mut columns = BTreeMap::new();
        let mut column_places = BTreeMap::new();
        let columns_node = f.get("columns");
        let cols = columns_node.and_then(|n| r.entries(n, &format!("`columns` of {what}")));
        unread.any_class |= cols.is_none() && columns_node.is_some_and(|n| !n.is_null());
        if let Some(cols) = cols {
            for (column, ck, cv) in cols.items {
                let class = cv.as_str().map(str::to_owned);
                unread.any_class |= class.is_none();
                unread.classes.extend(class);
                if !r.check_identifier(column, ck.span, "a column name") {
                    continue;
                }
                let Some(class) = r.string(cv, &format!("the class of column `{column}`")) else { continue };
                if class.is_empty() || !class.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    r.error(
                        Code::BadClassName,
                        cv.span,
                        format!("class name `{class}` must be letters, digits and underscores"),
                        "for example `financial` or `pii`",
                    );
                    continue;
                }
                columns.insert(column.to_owned(), class);
                column_places.insert(column.to_owned(), ck.span);
            }
        }
        let mut references = BTreeMap::new();
        let mut reference_places = BTreeMap::new();
        let refs = f.get("references").and_then(|n| r.entries(n, &format!("`references` of {what}")));
        for (column, ck, cv) in refs.map(|e| e.items).unwrap_or_default() {
            if !r.check_identifier(column, ck.span, "a column name") {
                continue;
            }
            let Some(target) = r.qualified_name(cv, "the referenced table") else { continue };
            let written = cv.as_str().unwrap_or_default().to_owned();
            references.insert(column.to_owned(), target);
            reference_places.insert(column.to_owned(), (ck.span, cv.span, written));
        }
        let always_node = f.get("always");
        let always = always_node.and_then(|n| r.string(n, "`always`"));
        places.insert(
            name.clone(),
            TablePlaces {
                name: k.span,
                written: text.to_owned(),
                key: f.get("key").map(|n| n.span),
                owner: f.get("owner").map(|n| n.span),
                columns: column_places,
                always: always_node.map(|n| n.span),
                references: reference_places,
            },
        );
        tables.insert(name.clone(), TableDraft { name, key, owner, columns, always, sharing, references });
    }
    (tables, places, unread)
}
