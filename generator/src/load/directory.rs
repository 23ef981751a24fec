//! `directory`: the table of people and its columns.

use std::collections::BTreeMap;

use super::reader::Reader;
use crate::diagnostic::{Code, Span};
use crate::model::Directory;
use crate::yaml::Node;

const KEYS: &[&str] = &["table", "id", "manager", "team", "login", "active"];
/// The keys naming a column of the directory table.
pub(super) const COLUMN_KEYS: [&str; 5] = ["id", "manager", "team", "login", "active"];

/// Where `directory`'s values were written.
pub(super) struct DirectoryPlaces {
    pub table: Span,
    /// key (`id`, `manager`, ...) -> its value
    pub columns: BTreeMap<&'static str, Span>,
}

/// `key_span` is where `directory:` itself was written.
pub(super) fn read(r: &mut Reader, node: &Node, key_span: Span) -> Option<(Directory, DirectoryPlaces)> {
    if node.is_null() {
        // `directory:` with nothing under it is no empty part: the spec cannot do without it
        // (found by fuzzing: such a spec was rejected without a diagnostic).
        r.error(
            Code::MissingKey,
            key_span,
            "`directory` is missing the required keys `table`, `id` and `manager`",
            "add `table: <schema.table>`, `id: <column>` and `manager: <column>` under it",
        );
        return None;
    }
    let e = r.fields(node, "`directory`", KEYS, &["table", "id", "manager"], key_span)?;
    let table_node = e.get("table");
    let table = table_node.and_then(|n| r.qualified_name(n, "`directory.table`"));
    let mut columns: BTreeMap<&'static str, Option<String>> = BTreeMap::new();
    let mut places = BTreeMap::new();
    for key in COLUMN_KEYS {
        let Some(n) = e.get(key) else { continue };
        places.insert(key, n.span);
        columns.insert(key, r.identifier(n, &format!("`directory.{key}`")));
    }
    if let (Some(t), Some(n)) = (&table, table_node) {
        r.check_not_reserved_schema(t, n.span, "the directory table");
    }
    let mut column = |key| columns.remove(key).flatten();
    let directory = Directory {
        table: table?,
        id: column("id")?,
        manager: column("manager")?,
        team: column("team"),
        login: column("login"),
        active: column("active"),
    };
    Some((directory, DirectoryPlaces { table: table_node?.span, columns: places }))
}
