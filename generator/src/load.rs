//! Turns the spanned YAML tree into a [`Spec`], checking structure and references and
//! collecting every problem with its place in the file.

use std::collections::{BTreeMap, BTreeSet};

use crate::always;
use crate::diagnostic::{suggestion, Diagnostic, Span};
use crate::model::*;
use crate::names::{longest_policy_name, MAX_IDENTIFIER_BYTES};
use crate::schema::{ColumnType, Schema};
use crate::yaml::{Node, NodeKind};

const TOP_KEYS: &[&str] = &["version", "directory", "identity", "levels", "tables", "roles"];
const DIRECTORY_KEYS: &[&str] = &["table", "id", "manager", "team", "login", "active"];
const TABLE_KEYS: &[&str] = &["key", "owner", "columns", "always", "sharing"];
const ROLE_KEYS: &[&str] = &["level", "tables", "fields"];

/// Loads a spec from its text. `schema`, when given, is checked against every table and column
/// the spec names.
pub fn load_spec(source: &str, schema: Option<&Schema>) -> Result<Spec, Vec<Diagnostic>> {
    let root = crate::yaml::parse(source).map_err(|d| vec![d])?;
    let mut loader = Loader { diagnostics: Vec::new(), schema };
    let spec = loader.spec(&root);
    match spec {
        Some(spec) if loader.diagnostics.is_empty() => Ok(spec),
        _ => Err(loader.diagnostics),
    }
}

/// Whether a column type is acceptable for a given use.
type TypeCheck = fn(&ColumnType) -> bool;

struct Loader<'s> {
    diagnostics: Vec<Diagnostic>,
    schema: Option<&'s Schema>,
}

/// The entries of a mapping, with its keys as text.
struct Entries<'n> {
    span: Span,
    items: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Entries<'n> {
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.items.iter().find(|(k, _, _)| *k == key).map(|(_, _, v)| *v)
    }
}

impl<'s> Loader<'s> {
    fn error(&mut self, span: Span, message: impl Into<String>, hint: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(span, message).with_hint(hint));
    }

    /// A mapping's entries; reports duplicate keys and non-scalar keys.
    fn entries<'n>(&mut self, node: &'n Node, what: &str) -> Option<Entries<'n>> {
        let NodeKind::Map(pairs) = &node.kind else {
            if !node.is_null() {
                self.error(
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
                    k.span,
                    format!("a key in {what} must be a plain name, found {}", k.kind_name()),
                    "use a scalar key",
                );
                continue;
            };
            if let Some(first_line) = seen.get(key) {
                self.error(
                    k.span,
                    format!("duplicate key `{key}` in {what} (first given on line {first_line})"),
                    "remove one of them; YAML would silently keep only the last",
                );
                continue;
            }
            seen.insert(key, k.span.line);
            items.push((key, k, v));
        }
        Some(Entries { span: node.span, items })
    }

    /// Like [`Self::entries`], for mappings with a fixed set of keys.
    fn fields<'n>(
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
                self.error(k.span, format!("unknown key `{key}` in {what}"), suggestion(key, allowed, "key"));
            }
        }
        for key in required {
            if entries.get(key).is_none() {
                self.error(
                    owner,
                    format!("{what} is missing the required key `{key}`"),
                    format!("add `{key}:` under it"),
                );
            }
        }
        Some(entries)
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            NodeKind::Scalar { text, .. } if !node.is_null() => Some(text.clone()),
            _ => {
                self.error(
                    node.span,
                    format!("{what} must be a name, found {}", node.kind_name()),
                    "write a single value",
                );
                None
            }
        }
    }

    /// A name PostgreSQL accepts (quoted) without truncating it.
    fn identifier(&mut self, node: &Node, what: &str) -> Option<String> {
        let text = self.string(node, what)?;
        self.check_identifier(&text, node.span, what).then_some(text)
    }

    fn check_identifier(&mut self, text: &str, span: Span, what: &str) -> bool {
        if text.is_empty() {
            self.error(span, format!("{what} is empty"), "give a name");
            false
        } else if text.contains('\0') {
            self.error(
                span,
                format!("{what} `{}` contains a NUL character", text.escape_debug()),
                "PostgreSQL identifiers cannot contain NUL",
            );
            false
        } else if text.len() > MAX_IDENTIFIER_BYTES {
            self.error(
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

    fn qualified_name(&mut self, node: &Node, what: &str) -> Option<QualifiedName> {
        let text = self.string(node, what)?;
        let Some(parts) = split_qualified(&text) else {
            self.error(
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
                self.error(node.span, format!("{what} `{text}` has too many parts"), "write `schema.table`");
                return None;
            }
        };
        let ok = self.check_identifier(&schema, node.span, "the schema name")
            & self.check_identifier(&name, node.span, "the table name");
        ok.then(|| QualifiedName::new(&schema, &name))
    }

    fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.kind {
            NodeKind::Scalar { text, quoted: false } if text.eq_ignore_ascii_case("true") => Some(true),
            NodeKind::Scalar { text, quoted: false } if text.eq_ignore_ascii_case("false") => Some(false),
            _ => {
                self.error(
                    node.span,
                    format!("{what} must be `true` or `false`"),
                    "write true or false without quotes",
                );
                None
            }
        }
    }

    fn spec(&mut self, root: &Node) -> Option<Spec> {
        let top = self.fields(
            root,
            "the spec",
            TOP_KEYS,
            &["version", "directory", "identity", "tables", "roles"],
            Span { end: root.span.start, ..root.span },
        )?;
        let key_span = |key: &str| top.items.iter().find(|(k, _, _)| *k == key).map(|(_, k, _)| k.span);

        let version = top.get("version").and_then(|v| {
            if v.as_str() == Some("1") {
                Some(1)
            } else {
                self.error(
                    v.span,
                    format!("unsupported spec version `{}`", v.as_str().unwrap_or("?")),
                    "this rowsec understands `version: 1`",
                );
                None
            }
        });
        let directory = top.get("directory").and_then(|d| self.directory(d, key_span("directory").unwrap()));
        let identity = top.get("identity").and_then(|i| self.identity(i, directory.as_ref()));
        let levels = top.get("levels").map(|l| self.levels(l, directory.as_ref())).unwrap_or_default();
        let tables = top.get("tables").map(|t| self.tables(t, directory.as_ref())).unwrap_or_default();
        let roles = top.get("roles").map(|r| self.roles(r, &levels, &tables)).unwrap_or_default();
        if let (Some(directory), Some(schema)) = (&directory, self.schema) {
            self.check_directory_schema(directory, schema, top.get("directory").unwrap());
        }

        Some(Spec {
            version: version?,
            directory: directory?,
            identity: identity?,
            levels,
            tables: tables.into_iter().map(|(k, (_, v))| (k, v)).collect(),
            roles,
        })
    }

    fn directory(&mut self, node: &Node, key_span: Span) -> Option<Directory> {
        let e = self.fields(node, "`directory`", DIRECTORY_KEYS, &["table", "id", "manager"], key_span)?;
        let table = e.get("table").and_then(|n| self.qualified_name(n, "`directory.table`"));
        let column =
            |this: &mut Self, key: &str| e.get(key).and_then(|n| this.identifier(n, &format!("`directory.{key}`")));
        let id = column(self, "id");
        let manager = column(self, "manager");
        let team = column(self, "team");
        let login = column(self, "login");
        let active = column(self, "active");
        if let Some(t) = &table {
            self.check_not_reserved_schema(t, e.get("table").unwrap().span, "the directory table");
        }
        Some(Directory { table: table?, id: id?, manager: manager?, team, login, active })
    }

    fn check_directory_schema(&mut self, d: &Directory, schema: &Schema, node: &Node) {
        let Some(e) = self.entries(node, "`directory`") else { return };
        let table_span = e.get("table").map_or(e.span, |n| n.span);
        if !schema.tables.contains_key(&d.table) {
            let names: Vec<String> = schema.tables.keys().map(|q| format!("{}.{}", q.schema, q.name)).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            self.error(
                table_span,
                format!("the directory table `{}.{}` is not in the schema", d.table.schema, d.table.name),
                suggestion(&format!("{}.{}", d.table.schema, d.table.name), &names, "table"),
            );
            return;
        }
        let want: [(&str, Option<&String>, TypeCheck, &str); 5] = [
            ("id", Some(&d.id), |t| *t == ColumnType::BigInt, "bigint"),
            ("manager", Some(&d.manager), |t| *t == ColumnType::BigInt, "bigint (the same type as id)"),
            ("team", d.team.as_ref(), |_| true, "any type"),
            ("login", d.login.as_ref(), |t| *t == ColumnType::Text, "text"),
            ("active", d.active.as_ref(), |t| *t == ColumnType::Boolean, "boolean"),
        ];
        for (key, column, ok, wanted) in want {
            let (Some(column), Some(node)) = (column, e.get(key)) else { continue };
            self.check_column(&d.table, column, node.span, ok, wanted, &format!("`directory.{key}`"));
        }
    }

    /// Reports a column missing from the schema or of the wrong type.
    fn check_column(
        &mut self,
        table: &QualifiedName,
        column: &str,
        span: Span,
        ok: TypeCheck,
        wanted: &str,
        what: &str,
    ) {
        let Some(schema) = self.schema else { return };
        match schema.column(table, column) {
            None => {
                let names: Vec<&str> = schema.columns(table).map(|c| c.collect()).unwrap_or_default();
                self.error(
                    span,
                    format!("{what}: table `{}.{}` has no column `{column}`", table.schema, table.name),
                    suggestion(column, &names, "column"),
                );
            }
            Some(t) if !ok(t) => {
                self.error(
                    span,
                    format!(
                        "{what}: column `{column}` of `{}.{}` is {}, rowsec needs {wanted}",
                        table.schema,
                        table.name,
                        t.describe()
                    ),
                    format!("point it at a column of type {wanted}, or change the column's type"),
                );
            }
            Some(_) => {}
        }
    }

    fn check_not_reserved_schema(&mut self, t: &QualifiedName, span: Span, what: &str) {
        let s = t.schema.as_str();
        if s == "rowsec" || s == "pg_catalog" || s == "information_schema" || s.starts_with("pg_") {
            self.error(
                span,
                format!(
                    "{what} `{}.{}` is in schema `{s}`, which belongs to {}",
                    t.schema,
                    t.name,
                    if s == "rowsec" { "the rowsec extension" } else { "PostgreSQL" }
                ),
                "protect tables in your own schemas",
            );
        }
    }

    fn identity(&mut self, node: &Node, directory: Option<&Directory>) -> Option<Identity> {
        let identity = match &node.kind {
            NodeKind::Scalar { text, .. } if text == "login" => Identity::Login,
            NodeKind::Scalar { text, .. } => {
                let hint = suggestion(text, &["login"], "identity")
                    .replace("expected one of: `login`", "write `login` or `{ setting: app.person_id }`");
                self.error(node.span, format!("unknown identity `{text}`"), hint);
                return None;
            }
            _ => {
                let e = self.fields(node, "`identity`", &["setting"], &["setting"], node.span)?;
                let setting_node = e.get("setting")?;
                let name = self.string(setting_node, "`identity.setting`")?;
                let valid = name.split('.').count() >= 2
                    && name.split('.').all(|p| {
                        !p.is_empty()
                            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
                            && !p.starts_with(|c: char| c.is_ascii_digit())
                    });
                if !valid || name.len() > MAX_IDENTIFIER_BYTES {
                    self.error(
                        setting_node.span,
                        format!("`{name}` is not a custom setting name PostgreSQL accepts"),
                        "use a two-part name such as `app.person_id` (letters, digits, underscores)",
                    );
                    return None;
                }
                Identity::Setting(name)
            }
        };
        if identity == Identity::Login && directory.is_some_and(|d| d.login.is_none()) {
            self.error(
                node.span,
                "`identity: login` needs `directory.login`",
                "add `login: <column>` to `directory`, the column holding each person's PostgreSQL role name",
            );
        }
        Some(identity)
    }

    /// A command -> scope mapping (a level body or a role's table override).
    fn scopes(&mut self, node: &Node, what: &str, directory: Option<&Directory>) -> BTreeMap<Command, Scope> {
        let mut out = BTreeMap::new();
        let Some(e) = self.entries(node, what) else { return out };
        for (key, k, v) in &e.items {
            let Some(command) = Command::parse(key) else {
                self.error(
                    k.span,
                    format!("unknown command `{key}` in {what}"),
                    suggestion(key, &Command::ALL.map(Command::as_str), "command"),
                );
                continue;
            };
            let Some(text) = self.string(v, &format!("the scope for `{key}`")) else { continue };
            let Some(scope) = Scope::parse(&text) else {
                self.error(
                    v.span,
                    format!("unknown scope `{text}` for `{key}` in {what}"),
                    suggestion(&text, &Scope::NAMES, "scope"),
                );
                continue;
            };
            if scope == Scope::Team && directory.is_some_and(|d| d.team.is_none()) {
                self.error(
                    v.span,
                    "scope `team` needs `directory.team`",
                    "add `team: <column>` to `directory`, or use another scope",
                );
            }
            out.insert(command, scope);
        }
        out
    }

    fn levels(&mut self, node: &Node, directory: Option<&Directory>) -> BTreeMap<String, Level> {
        let mut out = BTreeMap::new();
        let Some(e) = self.entries(node, "`levels`") else { return out };
        for (name, _, v) in e.items {
            let scopes = self.scopes(v, &format!("level `{name}`"), directory);
            out.insert(name.to_owned(), Level { scopes });
        }
        out
    }

    fn tables(&mut self, node: &Node, directory: Option<&Directory>) -> BTreeMap<QualifiedName, (Span, Table)> {
        let mut out = BTreeMap::new();
        let Some(e) = self.entries(node, "`tables`") else { return out };
        for (text, k, v) in e.items {
            let Some(name) = self.qualified_name(k, "a table name") else { continue };
            self.check_not_reserved_schema(&name, k.span, "the table");
            if out.contains_key(&name) {
                self.error(k.span, format!("table `{text}` is listed twice"), "merge the two entries");
                continue;
            }
            let what = format!("table `{text}`");
            let Some(f) = self.fields(v, &what, TABLE_KEYS, &["key", "owner"], k.span) else { continue };
            let key = f.get("key").and_then(|n| self.identifier(n, "`key`"));
            let owner = f.get("owner").and_then(|n| self.identifier(n, "`owner`"));
            let sharing = f.get("sharing").and_then(|n| self.boolean(n, "`sharing`")).unwrap_or(false);
            let mut columns = BTreeMap::new();
            if let Some(cols) = f.get("columns").and_then(|n| self.entries(n, &format!("`columns` of {what}"))) {
                for (column, ck, cv) in cols.items {
                    if !self.check_identifier(column, ck.span, "a column name") {
                        continue;
                    }
                    let Some(class) = self.string(cv, &format!("the class of column `{column}`")) else { continue };
                    if !class.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || class.is_empty() {
                        self.error(
                            cv.span,
                            format!("class name `{class}` must be letters, digits and underscores"),
                            "for example `financial` or `pii`",
                        );
                        continue;
                    }
                    self.check_column(&name, column, ck.span, |_| true, "", "`columns`");
                    columns.insert(column.to_owned(), class);
                }
            }
            let always = f.get("always").and_then(|n| {
                let sql = self.string(n, "`always`")?;
                let known = self.schema.and_then(|s| s.tables.get(&name)).map(Vec::as_slice);
                for p in always::check(&sql, known) {
                    self.error(n.span, p.message, p.hint);
                }
                Some(sql)
            });
            if let Some(schema) = self.schema {
                if !schema.tables.contains_key(&name) {
                    let names: Vec<String> = schema.tables.keys().map(|q| format!("{}.{}", q.schema, q.name)).collect();
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    self.error(
                        k.span,
                        format!("table `{text}` is not in the schema"),
                        suggestion(text, &names, "table"),
                    );
                } else {
                    // The extension keys shares and its registry by bigint (protect_table checks it too).
                    if let (Some(key), Some(n)) = (&key, f.get("key")) {
                        self.check_column(&name, key, n.span, |t| *t == ColumnType::BigInt, "bigint", "`key`");
                    }
                    if let (Some(owner), Some(n)) = (&owner, f.get("owner")) {
                        self.check_column(
                            &name,
                            owner,
                            n.span,
                            |t| *t == ColumnType::BigInt,
                            "bigint (the directory id's type)",
                            "`owner`",
                        );
                    }
                }
            }
            if directory.is_some_and(|d| d.table == name) {
                self.error(k.span, format!("{what} is the directory table"), "the directory is read by the rowsec extension with its own rights; protect it with ordinary GRANTs");
            }
            let (Some(key), Some(owner)) = (key, owner) else { continue };
            out.insert(name.clone(), (k.span, Table { name, key, owner, columns, always, sharing }));
        }
        out
    }

    fn roles(
        &mut self,
        node: &Node,
        levels: &BTreeMap<String, Level>,
        tables: &BTreeMap<QualifiedName, (Span, Table)>,
    ) -> BTreeMap<String, Role> {
        let mut out = BTreeMap::new();
        let Some(e) = self.entries(node, "`roles`") else { return out };
        let level_names: Vec<&str> = levels.keys().map(String::as_str).collect();
        let classes: BTreeSet<&str> = tables.values().flat_map(|(_, t)| t.classes()).collect();
        let classes: Vec<&str> = classes.into_iter().collect();
        let table_names: Vec<String> = tables.keys().map(|q| format!("{}.{}", q.schema, q.name)).collect();
        let table_names: Vec<&str> = table_names.iter().map(String::as_str).collect();

        for (name, k, v) in e.items {
            if !self.check_role_name(name, k.span) {
                continue;
            }
            let what = format!("role `{name}`");
            let Some(f) = self.fields(v, &what, ROLE_KEYS, &[], k.span) else {
                if v.is_null() {
                    out.insert(
                        name.to_owned(),
                        Role { name: name.to_owned(), level: None, tables: BTreeMap::new(), fields: BTreeMap::new() },
                    );
                }
                continue;
            };
            let level = f.get("level").and_then(|n| {
                let level = self.string(n, "`level`")?;
                if !levels.contains_key(&level) {
                    self.error(
                        n.span,
                        format!("{what} uses level `{level}`, which is not defined"),
                        suggestion(&level, &level_names, "level"),
                    );
                }
                Some(level)
            });
            let mut overrides = BTreeMap::new();
            if let Some(t) = f.get("tables").and_then(|n| self.entries(n, &format!("`tables` of {what}"))) {
                for (selector, sk, sv) in t.items {
                    let selector = if selector == "*" {
                        TableSelector::Every
                    } else {
                        let Some(q) = self.qualified_name(sk, "a table name") else { continue };
                        if !tables.contains_key(&q) {
                            self.error(
                                sk.span,
                                format!("{what} names table `{selector}`, which is not in `tables`"),
                                suggestion(selector, &table_names, "table"),
                            );
                            continue;
                        }
                        TableSelector::Named(q)
                    };
                    let o = match &sv.kind {
                        NodeKind::Scalar { text, .. } if text == "none" => TableOverride::None,
                        NodeKind::Scalar { text, .. } => {
                            self.error(
                                sv.span,
                                format!("`{text}` is not a table override"),
                                "write `none`, or a mapping of command to scope such as `{ select: own }`",
                            );
                            continue;
                        }
                        _ => TableOverride::Commands(self.scopes(
                            sv,
                            &format!("{what} on `{}`", sk.as_str().unwrap_or("")),
                            None,
                        )),
                    };
                    overrides.insert(selector, o);
                }
            }
            let mut fields = BTreeMap::new();
            if let Some(fl) = f.get("fields").and_then(|n| self.entries(n, &format!("`fields` of {what}"))) {
                for (class, ck, cv) in fl.items {
                    if !classes.contains(&class) {
                        self.error(
                            ck.span,
                            format!("{what} grants class `{class}`, which no table uses"),
                            suggestion(class, &classes, "class"),
                        );
                        continue;
                    }
                    let Some(text) = self.string(cv, &format!("the access to `{class}`")) else { continue };
                    match Access::parse(&text) {
                        Some(a) => {
                            fields.insert(class.to_owned(), a);
                        }
                        None => self.error(
                            cv.span,
                            format!("unknown access `{text}` for class `{class}`"),
                            suggestion(&text, &Access::NAMES, "access"),
                        ),
                    }
                }
            }
            let role = Role { name: name.to_owned(), level, tables: overrides, fields };
            self.check_visibility(&role, levels, tables, k.span);
            out.insert(name.to_owned(), role);
        }
        out
    }

    fn check_role_name(&mut self, name: &str, span: Span) -> bool {
        if !self.check_identifier(name, span, "the role name") {
            return false;
        }
        let lower = name.to_lowercase();
        let reserved = lower == "public"
            || lower == "none"
            || lower.starts_with("pg_")
            || lower == "rowsec"
            || matches!(lower.as_str(), "current_user" | "current_role" | "session_user" | "user");
        if reserved {
            self.error(
                span,
                format!("role name `{name}` is reserved by PostgreSQL or by rowsec"),
                "choose another name (not `public`, `none`, `pg_*`, `current_user`, `session_user` or `rowsec`)",
            );
            return false;
        }
        // The longest policy name this role produces must fit without truncation.
        let longest = longest_policy_name(name);
        if longest.len() > MAX_IDENTIFIER_BYTES {
            self.error(span, format!("role name `{name}` makes the policy name `{longest}` ({} bytes), longer than PostgreSQL's {MAX_IDENTIFIER_BYTES}", longest.len()), format!("shorten the role name to at most {} bytes", MAX_IDENTIFIER_BYTES - (longest.len() - name.len())));
            return false;
        }
        true
    }

    /// Update and delete act on visible rows only: a role that can change a table it cannot see
    /// is a spec mistake, not something to compile silently.
    fn check_visibility(
        &mut self,
        role: &Role,
        levels: &BTreeMap<String, Level>,
        tables: &BTreeMap<QualifiedName, (Span, Table)>,
        span: Span,
    ) {
        for name in tables.keys() {
            let scope = |c| crate::resolve::scope(levels, role, name, c);
            if scope(Command::Select) != Scope::None {
                continue;
            }
            for c in [Command::Update, Command::Delete] {
                if scope(c) != Scope::None {
                    self.error(
                        span,
                        format!(
                            "role `{}` may {} rows of `{}.{}` but may not select any",
                            role.name,
                            c.as_str(),
                            name.schema,
                            name.name
                        ),
                        format!("give it a select scope on that table, or set `{}: none`", c.as_str()),
                    );
                }
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
            (c, _) if was_quoted && !quoted => {
                let _ = c;
                return None;
            }
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
