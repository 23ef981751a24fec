//! What a DDL statement is, from its first words: the few that shape tables and columns, which
//! the reader applies, and the rest, which it skips and counts under a short label such as
//! `CREATE SEQUENCE` or `ALTER TABLE ... OWNER TO`.

use super::split::{Token, TokenKind};

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Kind {
    CreateTable,
    /// An ALTER TABLE that adds, drops, renames or retypes columns, or renames the table.
    AlterTableColumns,
    DropTable,
    /// `ALTER TABLE name SET SCHEMA schema` (which sqlparser does not read): the table's name
    /// parts as written, and its new schema.
    MoveTable(Vec<String>, String),
    /// `SET search_path` or pg_dump's `set_config('search_path', ...)`: where unqualified
    /// tables are created; `None` for the default (`public`).
    SearchPath(Option<String>),
    /// Anything else, under its label.
    Skip(String),
}

/// Words between CREATE and the kind of object: `CREATE OR REPLACE`, `CREATE UNIQUE INDEX`, ...
const CREATE_MODIFIERS: &[&str] = &[
    "or",
    "replace",
    "unique",
    "global",
    "local",
    "temp",
    "temporary",
    "unlogged",
    "recursive",
    "trusted",
    "procedural",
];
/// Objects named by two words.
const TWO_WORD_OBJECTS: &[(&str, &str)] = &[
    ("materialized", "view"),
    ("foreign", "table"),
    ("foreign", "data"),
    ("event", "trigger"),
    ("text", "search"),
    ("user", "mapping"),
    ("access", "method"),
    ("default", "privileges"),
    ("operator", "class"),
    ("operator", "family"),
    ("constraint", "trigger"),
];

pub(super) fn classify(tokens: &[Token<'_>]) -> Kind {
    let word = |i: usize| tokens.get(i).filter(|t| t.kind == TokenKind::Word).map(|t| t.text.to_uppercase());
    let Some(first) = word(0) else { return Kind::Skip(tokens.first().map_or("", |t| t.text).to_owned()) };
    match first.as_str() {
        "CREATE" => {
            let mut i = 1;
            while tokens.get(i).is_some_and(|t| CREATE_MODIFIERS.iter().any(|m| t.is_word(m))) {
                i += 1;
            }
            let object = object_words(tokens, i);
            if object == "TABLE" {
                Kind::CreateTable
            } else {
                Kind::Skip(format!("CREATE {object}"))
            }
        }
        "ALTER" => {
            let object = object_words(tokens, 1);
            if object == "TABLE" {
                alter_table(tokens)
            } else {
                let suffix = if has_words(tokens, &["owner", "to"]) {
                    " ... OWNER TO"
                } else if has_words(tokens, &["owned", "by"]) {
                    " ... OWNED BY"
                } else {
                    ""
                };
                Kind::Skip(format!("ALTER {object}{suffix}"))
            }
        }
        "DROP" if tokens.get(1).is_some_and(|t| t.is_word("table")) => Kind::DropTable,
        "DROP" => Kind::Skip(format!("DROP {}", object_words(tokens, 1))),
        "SET" => {
            let i = if tokens.get(1).is_some_and(|t| t.is_word("session") || t.is_word("local")) { 2 } else { 1 };
            if tokens.get(i).is_some_and(|t| t.is_word("search_path")) {
                Kind::SearchPath(search_path_setting(&tokens[i + 1..]))
            } else {
                Kind::Skip("SET".to_owned())
            }
        }
        "SELECT" if has_words(tokens, &["set_config"]) => {
            let args: Vec<String> = tokens.iter().filter_map(Token::string_value).collect();
            match args.as_slice() {
                [name, value, ..] if name.eq_ignore_ascii_case("search_path") => {
                    Kind::SearchPath(first_schema(split_list(value)))
                }
                _ => Kind::Skip("SELECT pg_catalog.set_config".to_owned()),
            }
        }
        "COMMENT" | "SECURITY" => Kind::Skip(format!("{first} {}", word(1).unwrap_or_default())),
        _ => Kind::Skip(first),
    }
}

/// The kind of object at `i`: `TABLE`, `SEQUENCE`, `MATERIALIZED VIEW`, ...
fn object_words(tokens: &[Token<'_>], i: usize) -> String {
    let upper = |t: &Token<'_>| t.text.to_uppercase();
    let Some(first) = tokens.get(i).filter(|t| t.kind == TokenKind::Word) else { return String::new() };
    match tokens.get(i + 1) {
        Some(second) if TWO_WORD_OBJECTS.iter().any(|(a, b)| first.is_word(a) && second.is_word(b)) => {
            format!("{} {}", upper(first), upper(second))
        }
        _ => upper(first),
    }
}

fn has_words(tokens: &[Token<'_>], words: &[&str]) -> bool {
    tokens.windows(words.len()).any(|w| w.iter().zip(words).all(|(t, word)| t.is_word(word)))
}

/// `ALTER TABLE [IF EXISTS] [ONLY] name [*] action [, action ...]`
fn alter_table(tokens: &[Token<'_>]) -> Kind {
    let mut i = 2;
    for skip in [&["if", "exists"][..], &["only"]] {
        if skip.iter().enumerate().all(|(k, w)| tokens.get(i + k).is_some_and(|t| t.is_word(w))) {
            i += skip.len();
        }
    }
    // The table's name: name parts separated by dots.
    let mut name: Vec<String> = tokens.get(i).and_then(Token::name).into_iter().collect();
    i += 1;
    while tokens.get(i).is_some_and(|t| t.is_punct('.')) {
        name.extend(tokens.get(i + 1).and_then(Token::name));
        i += 2;
    }
    if tokens.get(i).is_some_and(|t| t.is_punct('*')) {
        i += 1;
    }
    let actions = top_level_split(&tokens[i.min(tokens.len())..]);
    if let [[set, schema, new_schema]] = actions.as_slice() {
        if set.is_word("set") && schema.is_word("schema") {
            if let Some(new_schema) = new_schema.name() {
                return Kind::MoveTable(name, new_schema);
            }
        }
    }
    if actions.iter().any(|a| changes_columns(a)) {
        return Kind::AlterTableColumns;
    }
    Kind::Skip(format!("ALTER TABLE ... {}", actions.first().map_or(String::new(), |a| action_label(a))))
}

/// Splits at commas outside parentheses.
fn top_level_split<'t, 'a>(tokens: &'t [Token<'a>]) -> Vec<&'t [Token<'a>]> {
    let mut out = Vec::new();
    let (mut depth, mut from) = (0i32, 0);
    for (k, t) in tokens.iter().enumerate() {
        match t.kind {
            TokenKind::Punct('(') => depth += 1,
            TokenKind::Punct(')') => depth -= 1,
            TokenKind::Punct(',') if depth == 0 => {
                out.push(&tokens[from..k]);
                from = k + 1;
            }
            _ => {}
        }
    }
    out.push(&tokens[from..]);
    out
}

/// Words that start a table constraint (ADD ... / DROP CONSTRAINT), not a column.
const CONSTRAINT_WORDS: &[&str] = &["constraint", "primary", "unique", "foreign", "check", "exclude"];

fn changes_columns(action: &[Token<'_>]) -> bool {
    let w = |i: usize, word: &str| action.get(i).is_some_and(|t| t.is_word(word));
    let column_at = |i: usize| if w(i, "column") { i + 1 } else { i };
    if w(0, "add") {
        let i = column_at(1);
        !CONSTRAINT_WORDS.iter().any(|c| w(i, c))
    } else if w(0, "drop") || w(0, "rename") {
        !w(1, "constraint")
    } else if w(0, "set") {
        w(1, "schema")
    } else if w(0, "alter") {
        // ALTER [COLUMN] name [SET DATA] TYPE ...
        let i = column_at(1) + 1;
        w(i, "type") || (w(i, "set") && w(i + 1, "data"))
    } else {
        false
    }
}

/// `OWNER TO`, `ADD CONSTRAINT`, `ALTER COLUMN ... SET DEFAULT`, `ENABLE ROW LEVEL SECURITY`, ...
fn action_label(action: &[Token<'_>]) -> String {
    // Names and literals are "": labels are made of keywords only.
    let words: Vec<String> =
        action.iter().map(|t| if t.kind == TokenKind::Word { t.text.to_uppercase() } else { String::new() }).collect();
    let w = |i: usize| words.get(i).map_or("", String::as_str);
    match w(0) {
        "ALTER" => {
            // ALTER [COLUMN] name SET DEFAULT / DROP NOT NULL / ADD GENERATED ...
            let i = if w(1) == "COLUMN" { 3 } else { 2 };
            let mut what = vec![w(i)];
            if matches!(w(i), "SET" | "DROP" | "ADD" | "RESET") {
                what.push(w(i + 1));
                if w(i + 1) == "NOT" {
                    what.push(w(i + 2));
                }
            }
            format!("ALTER COLUMN ... {}", what.join(" ").trim_end())
        }
        // ENABLE / DISABLE / FORCE / NO FORCE ROW LEVEL SECURITY
        _ if w(1) == "ROW" || w(2) == "ROW" => {
            let end = words.iter().position(|x| x == "SECURITY").map_or(words.len(), |p| p + 1);
            words[..end].join(" ")
        }
        "ADD" | "DROP" | "OWNER" | "ATTACH" | "DETACH" | "ENABLE" | "DISABLE" | "REPLICA" | "CLUSTER" | "SET"
        | "VALIDATE" | "NO" | "INHERIT" => format!("{} {}", w(0), w(1)),
        other => other.to_owned(),
    }
}

/// `TO crm, public` / `= 'crm'` / `= DEFAULT`: the first schema tables are created in.
fn search_path_setting(tokens: &[Token<'_>]) -> Option<String> {
    let values = tokens.iter().skip_while(|t| t.is_word("to") || t.is_punct('=')).filter(|t| !t.is_punct(','));
    first_schema(values.filter_map(|t| if t.is_word("default") { None } else { t.string_value().or_else(|| t.name()) }))
}

/// The elements of a search_path given as one string: `crm, "Sales"`.
fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => s.to_lowercase(),
        })
        .collect()
}

fn first_schema(elements: impl IntoIterator<Item = String>) -> Option<String> {
    elements.into_iter().find(|s| s != "$user")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::split::{split, Piece};

    fn kind(sql: &str) -> Kind {
        match split(sql).unwrap().pop().unwrap() {
            Piece::Sql { tokens, .. } => classify(&tokens),
            Piece::Meta { .. } => panic!("meta"),
        }
    }

    fn skip(label: &str) -> Kind {
        Kind::Skip(label.to_owned())
    }

    #[test]
    fn pg_dump_statements_get_short_labels() {
        assert_eq!(kind("SET statement_timeout = 0"), skip("SET"));
        assert_eq!(kind("SELECT pg_catalog.set_config('search_path', '', false)"), Kind::SearchPath(None));
        assert_eq!(kind("CREATE SEQUENCE crm.a_id_seq START WITH 1 INCREMENT BY 1"), skip("CREATE SEQUENCE"));
        assert_eq!(kind("ALTER TABLE crm.accounts OWNER TO postgres"), skip("ALTER TABLE ... OWNER TO"));
        assert_eq!(
            kind("ALTER TABLE ONLY crm.a\n ADD CONSTRAINT a_pkey PRIMARY KEY (id)"),
            skip("ALTER TABLE ... ADD CONSTRAINT")
        );
        assert_eq!(
            kind("ALTER TABLE ONLY crm.a ALTER COLUMN id SET DEFAULT nextval('crm.a_id_seq'::regclass)"),
            skip("ALTER TABLE ... ALTER COLUMN ... SET DEFAULT")
        );
        assert_eq!(
            kind("ALTER TABLE \"S\".\"T\" ALTER COLUMN \"Id\" ADD GENERATED BY DEFAULT AS IDENTITY (SEQUENCE NAME s)"),
            skip("ALTER TABLE ... ALTER COLUMN ... ADD GENERATED")
        );
        assert_eq!(kind("ALTER TABLE t ENABLE ROW LEVEL SECURITY"), skip("ALTER TABLE ... ENABLE ROW LEVEL SECURITY"));
        assert_eq!(kind("ALTER SEQUENCE crm.a_id_seq OWNED BY crm.a.id"), skip("ALTER SEQUENCE ... OWNED BY"));
        assert_eq!(kind("ALTER SCHEMA crm OWNER TO postgres"), skip("ALTER SCHEMA ... OWNER TO"));
        assert_eq!(kind("CREATE UNIQUE INDEX i ON t (a)"), skip("CREATE INDEX"));
        assert_eq!(
            kind("CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql"),
            skip("CREATE FUNCTION")
        );
        assert_eq!(kind("CREATE MATERIALIZED VIEW v AS SELECT 1"), skip("CREATE MATERIALIZED VIEW"));
        assert_eq!(kind("COMMENT ON TABLE t IS 'x'"), skip("COMMENT ON"));
        assert_eq!(kind("GRANT SELECT ON t TO PUBLIC"), skip("GRANT"));
    }

    #[test]
    fn statements_that_shape_columns_are_recognised() {
        assert_eq!(kind("CREATE UNLOGGED TABLE t (a int)"), Kind::CreateTable);
        assert_eq!(kind("create table if not exists t (a int)"), Kind::CreateTable);
        assert_eq!(kind("ALTER TABLE t ADD COLUMN a int"), Kind::AlterTableColumns);
        assert_eq!(kind("ALTER TABLE t ADD a int"), Kind::AlterTableColumns);
        assert_eq!(kind("ALTER TABLE t OWNER TO x, DROP COLUMN a"), Kind::AlterTableColumns);
        assert_eq!(kind("ALTER TABLE t RENAME COLUMN a TO b"), Kind::AlterTableColumns);
        assert_eq!(kind("ALTER TABLE t RENAME TO u"), Kind::AlterTableColumns);
        assert_eq!(kind("ALTER TABLE t ALTER COLUMN a TYPE bigint"), Kind::AlterTableColumns);
        assert_eq!(kind("ALTER TABLE t ALTER a SET DATA TYPE bigint"), Kind::AlterTableColumns);
        assert_eq!(kind("ALTER TABLE t DROP CONSTRAINT c"), skip("ALTER TABLE ... DROP CONSTRAINT"));
        assert_eq!(kind("DROP TABLE t"), Kind::DropTable);
        assert_eq!(
            kind("ALTER TABLE \"S\".t SET SCHEMA crm"),
            Kind::MoveTable(vec!["S".into(), "t".into()], "crm".into())
        );
        assert_eq!(kind("CREATE FOREIGN TABLE f (a int) SERVER s"), skip("CREATE FOREIGN TABLE"));
    }

    #[test]
    fn search_path_settings_name_the_schema_of_unqualified_tables() {
        assert_eq!(kind("SET search_path TO crm, public"), Kind::SearchPath(Some("crm".into())));
        assert_eq!(kind("SET search_path = \"$user\", \"Sales\""), Kind::SearchPath(Some("Sales".into())));
        assert_eq!(kind("SET LOCAL search_path = DEFAULT"), Kind::SearchPath(None));
        assert_eq!(
            kind("SELECT pg_catalog.set_config('search_path', 'crm', false)"),
            Kind::SearchPath(Some("crm".into()))
        );
    }
}
