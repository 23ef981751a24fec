//! The SQL script `rowsec compile` writes: one transaction that makes PostgreSQL enforce the
//! spec and converges the database to it.
//!
//! Converging compares before it touches: each protected table has one DO block that first asks
//! whether the table is as this very block left it (the block's SHA-256 and the catalog state it
//! left, sealed in the registry: `sql/compile/table_functions.sql`). If so it does nothing, so an
//! unchanged re-run runs no DDL and takes no table's ACCESS EXCLUSIVE lock. Otherwise it rebuilds
//! the table: rowsec's policies and its roles' privileges on it are removed, then the spec's are
//! created, all in the script's one transaction, so the end state depends only on the spec and no
//! reader ever sees the gap. Tables the spec no longer has are released by the converge step.
//! What rowsec manages is snapshotted first, so the script ends with a summary of what it really
//! created, changed and removed (a re-run says "nothing changed"), not with hundreds of
//! statement echoes.
//!
//! Policies are grouped by condition: one permissive policy per table, command and condition,
//! `TO` every role that has it (`policy_groups`), its comment naming each role and the part of
//! the spec that gave it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::model::{Command, QualifiedName, Scope, Spec, Table};
use crate::names::{
    always_comment, owned_comment_pattern, policy_name, policy_name_pattern, references_comment, role_comment_prefix,
    ADOPTED_MARK, ADOPTED_WITHOUT_COMMENT_MARK, ALWAYS_POLICY, OWNER_MARK, REFERENCES_POLICY,
};
use crate::resolve::{self, Columns, Grant, Source};
use crate::schema::Schema;
use crate::sql::condition::Condition;
use crate::sql::extension_api::{self as api, Backend};
use crate::sql::ident::{Comment, Ident, Literal};
use crate::sql::policy::ConditionKey;
use crate::sql::statement::{
    privilege, AlterTableRowSecurity, CommentOnPolicy, CreatePolicy, GrantOnTable, GrantSchemaUsage, Grantee,
    PolicyKind, Privilege, Quoted, RowSecurity,
};
use crate::sql::template::{self, Value};

/// What the header says about where the script came from.
pub struct Provenance<'a> {
    pub file: &'a str,
    pub sha256: &'a str,
}

/// How the script behaves, beyond what the spec says (`rowsec compile` flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `lock_timeout` while the script runs: policy DDL takes the ACCESS EXCLUSIVE lock of each
    /// table whose block changes it.
    pub lock_timeout: LockTimeout,
    /// Drop spec roles the spec no longer has even when logins are members (ending those
    /// memberships); without it such roles are kept and the script says so.
    pub drop_roles_with_members: bool,
    /// The caller runs the script inside its own transaction (`rowsec plan`/`apply`): no BEGIN
    /// and COMMIT, so the caller reads `pg_temp.rowsec_changes` and then commits or rolls back.
    pub embedded: bool,
    /// The extension (`CREATE EXTENSION rowsec`) or the SQL backend (sql/backend/rowsec.sql).
    pub backend: Backend,
    /// On the SQL backend, leave out what it cannot enforce (limits, monitoring, audit.data,
    /// requests) instead of refusing the spec (E1701): the user said so (`--accept-unenforced`),
    /// and the script's header names what was left out.
    pub accept_unenforced: bool,
    /// On the SQL backend, install its schema as a `pg_tle` trusted-language extension
    /// (`rowsec_sql`, through `pgtle.install_extension`) instead of running it in the script.
    pub pg_tle: bool,
}

/// A `lock_timeout` value: a whole number with a unit (`ms`, `s`, `min`, `h`), or `0` for none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockTimeout(String);

impl Default for LockTimeout {
    fn default() -> Self {
        LockTimeout("10s".to_owned())
    }
}

impl std::str::FromStr for LockTimeout {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = text.split_at(digits);
        let ok = match unit {
            "" => number == "0",
            "ms" | "s" | "min" | "h" => !number.is_empty() && number.len() <= 9,
            _ => false,
        };
        if ok {
            Ok(LockTimeout(text.to_owned()))
        } else {
            Err(format!(
                "`{text}` is not a lock timeout: write a whole number with a unit (500ms, 10s, 2min, 1h), or 0 to wait without limit"
            ))
        }
    }
}

impl std::fmt::Display for LockTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn compile(spec: &Spec, schema: Option<&Schema>, provenance: &Provenance<'_>, options: &Options) -> String {
    let resolver = resolve::Resolver::new(spec);
    let mut s = String::new();
    header(&mut s, spec, provenance, options);
    extension(&mut s, spec, options.backend, options.pg_tle);
    table_functions(&mut s);
    snapshot(&mut s, spec);
    roles(&mut s, spec, options.backend);
    let usage = schema_usage_pairs(spec, &resolver);
    converge(&mut s, spec, &usage);
    public_check(&mut s, spec);
    schema_usage(&mut s, &usage);
    let names = RoleNames::all(spec);
    // One table's grants at a time, ordered by role, then command.
    let mut table_grants = Vec::new();
    for table in spec.tables.values() {
        table_grants.clear();
        resolver.table_grants(table, &mut table_grants);
        protect(&mut s, spec, &names, table, &table_grants, schema, options.backend);
    }
    crate::sql::masking::section(&mut s, spec, &resolver, options.backend);
    drop_roles(&mut s, spec, options);
    crate::sql::audit::section(&mut s, spec, options);
    s.push('\n');
    let (record_apply, spec_counts) = (api::record_apply(), crate::sql::audit::spec_counts(spec));
    let (owned, policies, protected) = (owned_comment_pattern(), policy_name_pattern(), api::protected_tables());
    template::SUMMARY.render(
        &mut s,
        &[
            ("spec_sha256", Value::Literal(provenance.sha256)),
            ("record_apply", Value::Name(&record_apply)),
            ("rowsec_version", Value::Literal(env!("CARGO_PKG_VERSION"))),
            ("spec_counts", Value::Literal(&spec_counts)),
            ("protected_tables", Value::Name(&protected)),
            ("owned_comment", Value::Literal(&owned)),
            ("policy_names", Value::Literal(&policies)),
        ],
    );
    if !options.embedded {
        s.push_str("COMMIT;\n");
    }
    s
}

fn header(s: &mut String, spec: &Spec, p: &Provenance<'_>, options: &Options) {
    let _ = writeln!(s, "-- Generated by rowsec {} from {}", env!("CARGO_PKG_VERSION"), Comment(p.file));
    let _ = writeln!(s, "-- spec sha256: {}", p.sha256);
    s.push_str(
        "--
-- Apply as a superuser: psql -v ON_ERROR_STOP=1 -f THIS_FILE
-- One transaction: it applies whole or not at all. Running it again changes nothing and locks no
-- table (each table's block compares before it touches); running the script of a changed spec
-- rebuilds only the tables that differ, removes the policies, privileges and roles rowsec created
-- for what the spec no longer has, and touches nothing rowsec does not own.
",
    );
    if options.backend == Backend::Sql {
        s.push_str("-- Backend: sql (plain SQL and PL/pgSQL, no C extension: sql/backend/rowsec.sql).\n");
        let left_out = crate::sql::audit::unenforced_on_sql_backend(spec);
        if options.accept_unenforced && !left_out.is_empty() {
            let _ = writeln!(
                s,
                "-- NOT ENFORCED (--accept-unenforced): {} of the spec; the SQL backend cannot do them.",
                left_out.join(", ")
            );
        }
    }
    if !options.embedded {
        s.push_str("BEGIN;\n");
    }
    // Policy DDL locks each table it changes; fail fast rather than queue behind long transactions.
    let _ = writeln!(
        s,
        "-- Policy DDL locks each table it changes: fail fast rather than queue behind long transactions (--lock-timeout).\n\
         SET LOCAL lock_timeout = {};",
        Literal(&options.lock_timeout.to_string())
    );
}

fn extension(s: &mut String, spec: &Spec, backend: Backend, pg_tle: bool) {
    s.push_str("\n-- Extension and directory (spec: directory, identity)\n");
    let version = ("rowsec_version", Value::Literal(env!("CARGO_PKG_VERSION")));
    match backend {
        Backend::Extension => {
            let _ = writeln!(s, "CREATE EXTENSION IF NOT EXISTS {};", Ident(api::EXTENSION));
        }
        Backend::Sql if pg_tle => {
            let mut body = String::new();
            template::SQL_BACKEND.render(&mut body, &[version]);
            // The version names the body, not only the release: every build's SQL installs as its
            // own version, reached from the installed one by an update path that is the same
            // body (it converges whatever it finds), so a database never keeps an older body
            // under an unchanged release number.
            let tle_version = format!("{}-{}", env!("CARGO_PKG_VERSION"), &hex_sha256(&body)[..12]);
            let install = format!(
                "IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_tle') THEN\n    \
                 RAISE EXCEPTION 'pg_tle is not installed in this database' USING ERRCODE = 'undefined_object',\n        \
                 HINT = 'CREATE EXTENSION pg_tle (pg_tle must be in shared_preload_libraries), or compile without --pg-tle.';\n\
                 END IF;\n\
                 IF NOT EXISTS (SELECT FROM pgtle.available_extensions() a WHERE a.name = {name}) THEN\n    \
                 PERFORM pgtle.install_extension({name}, {version}, 'rowsec: the SQL backend (rowsec compile --backend sql)', {body});\n\
                 ELSIF NOT EXISTS (SELECT FROM pgtle.available_extension_versions() a WHERE a.name = {name} AND a.version = {version}) THEN\n    \
                 IF EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname = {name}) THEN\n        \
                 PERFORM pgtle.install_update_path({name}, (SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname = {name}), {version}, {body});\n    \
                 END IF;\n    \
                 PERFORM pgtle.install_extension_version_sql({name}, {version}, {body});\n\
                 END IF;\n\
                 IF (SELECT a.default_version FROM pgtle.available_extensions() a WHERE a.name = {name}) IS DISTINCT FROM {version} THEN\n    \
                 PERFORM pgtle.set_default_version({name}, {version});\n\
                 END IF;\n",
                name = Literal(api::PG_TLE_EXTENSION),
                version = Literal(&tle_version),
                body = Literal(&body),
            );
            s.push_str("-- The SQL backend as a pg_tle trusted-language extension (--pg-tle)\n");
            template::do_block(s, &install);
            let _ = writeln!(s, "CREATE EXTENSION IF NOT EXISTS {};", Ident(api::PG_TLE_EXTENSION));
            // To this build's version where an older one is installed (nothing where it is current).
            template::do_block(
                s,
                &format!(
                    "IF (SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname = {name}) IS DISTINCT FROM {version} THEN\n    \
                     ALTER EXTENSION {ident} UPDATE TO {version};\n\
                     END IF;\n",
                    name = Literal(api::PG_TLE_EXTENSION),
                    ident = Ident(api::PG_TLE_EXTENSION),
                    version = Literal(&tle_version),
                ),
            );
        }
        Backend::Sql => template::SQL_BACKEND.render(s, &[version]),
    }
    template::do_block(s, &format!("PERFORM {};\n", api::configure(&spec.directory, &spec.identity)));
}

fn snapshot(s: &mut String, spec: &Spec) {
    s.push('\n');
    let (owned, policies) = (owned_comment_pattern(), policy_name_pattern());
    let protected = api::protected_tables();
    template::STATE.render(
        s,
        &[
            ("spec_roles", role_names(spec)),
            ("protected_tables", Value::Name(&protected)),
            ("owned_comment", Value::Literal(&owned)),
            ("policy_names", Value::Literal(&policies)),
        ],
    );
}

fn roles(s: &mut String, spec: &Spec, backend: Backend) {
    s.push('\n');
    match backend {
        Backend::Extension => s.push_str("LOCK TABLE pg_catalog.pg_authid IN SHARE ROW EXCLUSIVE MODE;\n"),
        // A managed service's administrator (CREATEROLE, not a superuser) may not lock pg_authid:
        // scripts applied to one database are serialised by an advisory lock instead; two
        // databases at once may then race on a role, and the loser fails whole (a unique
        // violation on CREATE ROLE) and can be re-run.
        Backend::Sql => template::do_block(
            s,
            "IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER) THEN\n    \
             LOCK TABLE pg_catalog.pg_authid IN SHARE ROW EXCLUSIVE MODE;\n\
             ELSE\n    \
             PERFORM pg_catalog.pg_advisory_xact_lock(125823070987619); -- the key rowsec apply holds (live/src/plan.rs)\n\
             END IF;\n",
        ),
    }
    let prefix = role_comment_prefix();
    let adopt = spec.roles.values().filter(|r| r.adopt).map(|r| r.name.as_str()).collect();
    template::ROLES.render(
        s,
        &[
            ("spec_roles", role_names(spec)),
            ("adopt_roles", Value::TextArray(adopt)),
            ("role_comment", Value::Literal(&prefix)),
            ("adopted", Value::Literal(ADOPTED_MARK)),
            ("adopted_bare", Value::Literal(ADOPTED_WITHOUT_COMMENT_MARK)),
        ],
    );
}

fn role_names(spec: &Spec) -> Value<'_> {
    Value::TextArray(spec.roles.keys().map(String::as_str).collect())
}

fn table_functions(s: &mut String) {
    s.push('\n');
    let (owned, policies) = (owned_comment_pattern(), policy_name_pattern());
    let protected = api::protected_tables();
    template::TABLE_FUNCTIONS.render(
        s,
        &[
            ("protected_tables", Value::Name(&protected)),
            ("owned_comment", Value::Literal(&owned)),
            ("policy_names", Value::Literal(&policies)),
        ],
    );
}

fn converge(s: &mut String, spec: &Spec, usage: &SchemaUsage<'_>) {
    s.push('\n');
    let (owned, policies) = (owned_comment_pattern(), policy_name_pattern());
    let (protected, unprotect) = (api::protected_tables(), api::unprotect_table());
    let (schemas, roles): (Vec<&str>, Vec<&str>) =
        usage.iter().flat_map(|(schema, roles)| roles.iter().map(move |r| (*schema, *r))).unzip();
    template::CONVERGE.render(
        s,
        &[
            ("spec_tables", Value::RegclassArray(spec.tables.keys().collect())),
            ("protected_tables", Value::Name(&protected)),
            ("unprotect_table", Value::Name(&unprotect)),
            ("owned_comment", Value::Literal(&owned)),
            ("policy_names", Value::Literal(&policies)),
            ("usage_schemas", Value::TextArray(schemas)),
            ("usage_roles", Value::TextArray(roles)),
        ],
    );
}

/// Roles rowsec owns that the spec no longer has: after the tables' blocks, which took their
/// privileges and policies away.
fn drop_roles(s: &mut String, spec: &Spec, options: &Options) {
    s.push('\n');
    let owned = owned_comment_pattern();
    let prefix = role_comment_prefix();
    template::DROP_ROLES.render(
        s,
        &[
            ("spec_roles", role_names(spec)),
            ("owned_comment", Value::Literal(&owned)),
            ("role_comment", Value::Literal(&prefix)),
            ("adopted", Value::Literal(ADOPTED_MARK)),
            ("adopted_bare", Value::Literal(ADOPTED_WITHOUT_COMMENT_MARK)),
            ("drop_roles_with_members", Value::Bool(options.drop_roles_with_members)),
        ],
    );
}

/// A PUBLIC privilege on a table with classed columns would hand those columns to everyone,
/// whatever the spec says, so the script refuses to go on.
fn public_check(s: &mut String, spec: &Spec) {
    let classed: Vec<&QualifiedName> =
        spec.tables.values().filter(|t| !t.columns.is_empty()).map(|t| &t.name).collect();
    if classed.is_empty() {
        return;
    }
    s.push('\n');
    template::PUBLIC_CHECK.render(s, &[("classed_tables", Value::RegclassArray(classed))]);
}

/// Per schema, the roles with any privilege on a table in it: they get USAGE on it.
type SchemaUsage<'g> = BTreeMap<&'g str, BTreeSet<&'g str>>;

fn schema_usage_pairs<'s>(spec: &'s Spec, resolver: &resolve::Resolver<'s>) -> SchemaUsage<'s> {
    let roles: Vec<&str> = resolver.role_names().collect();
    // Per schema, which roles (by index) have anything on one of its tables.
    let mut by_schema: BTreeMap<&str, Vec<bool>> = BTreeMap::new();
    for table in spec.tables.values() {
        let has = by_schema.entry(table.name.schema.as_str()).or_insert_with(|| vec![false; roles.len()]);
        for (i, has) in has.iter_mut().enumerate() {
            *has = *has || resolver.has_any(i, table);
        }
    }
    by_schema
        .into_iter()
        .map(|(schema, has)| (schema, roles.iter().zip(has).filter(|(_, h)| *h).map(|(r, _)| *r).collect()))
        .filter(|(_, roles): &(&str, BTreeSet<&str>)| !roles.is_empty())
        .collect()
}

fn schema_usage(s: &mut String, usage: &SchemaUsage<'_>) {
    if usage.is_empty() {
        return;
    }
    s.push_str("\n-- Schema access for roles with any privilege on a table in it\n");
    for (schema, roles) in usage {
        let roles: Vec<&str> = roles.iter().copied().collect();
        let _ = writeln!(s, "{}", GrantSchemaUsage { schema, roles: &roles });
    }
}

/// Every spec role, in name order (the order of `resolve::grants`), with its name quoted once
/// for the whole script. Grants are matched to it by position, not looked up by name: a large
/// spec writes millions of role names.
struct RoleNames<'s> {
    name: &'s str,
    role: Quoted,
    level: &'s str,
}

impl<'s> RoleNames<'s> {
    fn all(spec: &'s Spec) -> Vec<RoleNames<'s>> {
        spec.roles
            .values()
            .map(|r| RoleNames { name: &r.name, role: Quoted::ident(&r.name), level: r.level.as_deref().unwrap_or("") })
            .collect()
    }
}

/// The grants of one table, one chunk per role, each with the role's index in `names`.
fn by_role<'a, 'g>(grants: &'a [Grant<'g>], names: &[RoleNames<'_>]) -> Vec<(usize, &'a [Grant<'g>])> {
    let mut next = 0;
    let mut out = Vec::new();
    for chunk in grants.chunk_by(|a, b| a.role == b.role) {
        // Both in role name order: walk forward to this chunk's role.
        while names[next].name != chunk[0].role {
            next += 1;
        }
        out.push((next, chunk));
    }
    out
}

fn protect(
    s: &mut String,
    spec: &Spec,
    names: &[RoleNames<'_>],
    table: &Table,
    grants: &[Grant<'_>],
    schema: Option<&Schema>,
    backend: Backend,
) {
    let t = &table.name;
    let quoted = Quoted::table(t);
    let _ = writeln!(s, "\n-- ===== {} (spec: tables.{}) =====", Comment(&quoted), Comment(t.dotted()));
    if !table.columns.is_empty() && schema.is_none() {
        classed_columns(s, table);
    }
    let regclass = api::regclass(t);
    let mut body = String::new();
    let b = &mut body;
    let _ = writeln!(b, "PERFORM pg_temp.rowsec_release_table({regclass});");
    let _ = writeln!(b, "PERFORM {};", api::protect_table(t, &table.key, &table.owner, table.sharing));
    let _ = writeln!(b, "{}", AlterTableRowSecurity { table: &quoted, action: RowSecurity::Enable });
    let _ = writeln!(b, "{}", AlterTableRowSecurity { table: &quoted, action: RowSecurity::Force });
    if !table.columns.is_empty() {
        let classes: Vec<String> = table.columns.iter().map(|(c, k)| format!("{c}: {k}")).collect();
        let _ = writeln!(b, "-- Classed columns: {}", Comment(classes.join(", ")));
    }

    // Column grants read from the catalog are blocks of their own, after the rest.
    let mut after = String::new();
    privileges(b, &mut after, names, t, &quoted, grants, schema);
    policies(b, names, table, &quoted, grants, backend, api::Plans::of(&spec.identity));

    if let Some(always) = &table.always {
        let expr = crate::always::normalize(always);
        let name = Quoted::ident(ALWAYS_POLICY);
        let _ = writeln!(b, "-- always: {} (restrictive: every role, every command)", Comment(always));
        let policy = CreatePolicy {
            name: &name,
            table: &quoted,
            kind: PolicyKind::Restrictive,
            command: None,
            to: Grantee::Public,
            // No WITH CHECK: PostgreSQL checks new rows with USING (see `bodies`).
            using: Some(&expr),
            with_check: None,
        };
        let _ = writeln!(b, "{policy}");
        let comment = always_comment(&quoted.to_string());
        let _ = writeln!(b, "{}", CommentOnPolicy { name: &name, table: &quoted, comment: &comment });
    }
    if !table.references.is_empty() {
        references(b, spec, table, &quoted);
    }
    sequences(b, names, t, grants);
    b.push_str(&after);

    // Compare before touch: the block's own hash, and the state it leaves, sealed in the
    // registry; a re-run finding both unchanged does nothing to the table (no DDL, no lock).
    let wanted = hex_sha256(&body);
    let mut block = String::new();
    let _ = writeln!(
        block,
        "IF pg_temp.rowsec_table_is({regclass}, '{wanted}') THEN\n    RETURN;  -- as this block left it: nothing to change, no lock taken\nEND IF;"
    );
    block.push_str(&body);
    let _ = writeln!(block, "PERFORM pg_temp.rowsec_seal_table({regclass}, '{wanted}');");
    template::do_block(s, &block);
}

/// The SHA-256 of `text`, in hex.
fn hex_sha256(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes()).iter().fold(String::with_capacity(64), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// `references`: a restrictive policy whose WITH CHECK (insert, update) asks, through the
/// person's own policies on the referenced table, that each named row be visible. The foreign
/// key's own check ignores row-level security; this one runs first (before the row is written),
/// so a hidden row and a missing one fail alike, with 42501.
fn references(b: &mut String, spec: &Spec, table: &Table, quoted: &Quoted) {
    let outer = Ident(&table.name.name);
    let mut checks = Vec::new();
    for (column, target) in &table.references {
        let Some(referenced) = spec.tables.get(target) else { continue };
        let _ = writeln!(b, "-- references: {} -> {}", Comment(column), Comment(target.dotted()));
        // The subquery's alias keeps the outer column from being captured by a same-named one.
        checks.push(format!(
            "({outer}.{c} IS NULL OR EXISTS (SELECT FROM {t} AS rowsec_referenced WHERE rowsec_referenced.{k} = {outer}.{c}))",
            c = Ident(column),
            t = Quoted::table(target),
            k = Ident(&referenced.key),
        ));
    }
    let check = checks.join("\n        AND ");
    let name = Quoted::ident(REFERENCES_POLICY);
    let policy = CreatePolicy {
        name: &name,
        table: quoted,
        kind: PolicyKind::Restrictive,
        command: None,
        to: Grantee::Public,
        using: Some("true"),
        with_check: Some(&check),
    };
    let _ = writeln!(b, "{policy}");
    let comment = references_comment(&quoted.to_string());
    let _ = writeln!(b, "{}", CommentOnPolicy { name: &name, table: quoted, comment: &comment });
}

/// Without `--schema` nothing checked the classed columns' names: the script stops, naming
/// the table and the columns, before anything depends on them.
fn classed_columns(s: &mut String, table: &Table) {
    let classed: Vec<&str> = table.columns.keys().map(String::as_str).collect();
    template::CLASSED_COLUMNS
        .render(s, &[("table", Value::Regclass(&table.name)), ("classed", Value::Literals(classed))]);
}

/// GRANTs into `s`; the blocks of column grants whose columns are read when the script runs
/// into `deferred_blocks`.
fn privileges(
    s: &mut String,
    deferred_blocks: &mut String,
    names: &[RoleNames<'_>],
    t: &QualifiedName,
    quoted: &Quoted,
    grants: &[Grant<'_>],
    schema: Option<&Schema>,
) {
    if grants.is_empty() {
        s.push_str("-- No role has any privilege on this table.\n");
        return;
    }
    s.push_str(
        "-- Privileges: one GRANT per set of privileges, to every role with it; a role lacking a column class gets column-level grants\n",
    );
    let columns = schema.and_then(|sc| sc.columns(t)).map(|c| c.collect::<Vec<_>>());
    // Roles with the same privileges share their statements: (notes, privileges, deferred
    // column grants) and the roles, in the order of each first role.
    let mut shapes: Vec<(PrivilegeShape<'_>, Vec<usize>)> = Vec::new();
    for (role, grants) in by_role(grants, names) {
        let mut shape = PrivilegeShape::default();
        let mut notes: BTreeMap<&[&str], BTreeSet<&str>> = BTreeMap::new();
        for g in grants {
            if let Columns::AllExcept(hidden) = &g.columns {
                notes.entry(hidden).or_default().insert(if g.command == Command::Select { "read" } else { "write" });
            }
        }
        shape.notes = notes.into_iter().map(|(hidden, verbs)| (hidden, verbs.into_iter().collect())).collect();
        // Without --schema, column lists are read from the catalog when the script runs.
        let mut deferred: BTreeMap<&[&str], Vec<&'static str>> = BTreeMap::new();
        for g in grants {
            match (&g.columns, &columns) {
                (Columns::All, _) => shape.items.push(Privilege { command: g.command, columns: None }),
                (Columns::AllExcept(hidden), Some(columns)) => {
                    let visible: Vec<&str> =
                        columns.iter().copied().filter(|c| !hidden.iter().any(|h| h == c)).collect();
                    if !visible.is_empty() {
                        shape.items.push(Privilege { command: g.command, columns: Some(visible) });
                    }
                }
                (Columns::AllExcept(hidden), None) => deferred.entry(hidden).or_default().push(privilege(g.command)),
            }
        }
        shape.deferred = deferred.into_iter().collect();
        match shapes.iter_mut().find(|(s, _)| *s == shape) {
            Some((_, roles)) => roles.push(role),
            None => shapes.push((shape, vec![role])),
        }
    }
    for (shape, roles) in &shapes {
        // The statements below name the roles.
        for (hidden, verbs) in &shape.notes {
            let _ = writeln!(s, "-- these roles may not {} {}", verbs.join(" or "), Comment(hidden.join(", ")));
        }
        if !shape.items.is_empty() {
            let quoted_roles: Vec<&Quoted> = roles.iter().map(|&r| &names[r].role).collect();
            let _ = writeln!(s, "{}", GrantOnTable { privileges: &shape.items, table: quoted, roles: &quoted_roles });
        }
        for (hidden, privileges) in &shape.deferred {
            // format()'s arguments: 1 the visible columns, 2 the table, 3 the roles (quoted).
            let list: Vec<String> = privileges.iter().map(|p| format!("{p} (%1$s)")).collect();
            let grant = format!("GRANT {} ON %2$s TO %3$s", list.join(", "));
            template::COLUMN_GRANTS.render(
                deferred_blocks,
                &[
                    ("hidden_columns", Value::Literals(hidden.to_vec())),
                    ("table", Value::Regclass(t)),
                    ("grant", Value::Literal(&grant)),
                    ("roles", Value::QuotedListLiteral(roles.iter().map(|&r| &names[r].role).collect())),
                ],
            );
        }
    }
}

/// What one role gets on a table, as the script writes it: roles with equal shapes share one
/// GRANT (and one column-grant block).
#[derive(Default, PartialEq)]
struct PrivilegeShape<'g> {
    /// The classed columns the role may not read or write, and which of the two.
    notes: Vec<(&'g [&'g str], Vec<&'g str>)>,
    items: Vec<Privilege<'g>>,
    /// Column grants whose columns are read when the script runs: hidden columns, privileges.
    deferred: Vec<(&'g [&'g str], Vec<&'static str>)>,
}

/// `bigserial` defaults call nextval(): roles that insert need USAGE on those sequences.
fn sequences(s: &mut String, names: &[RoleNames<'_>], t: &QualifiedName, grants: &[Grant<'_>]) {
    // In role name order, as before: `names` is.
    let inserters: Vec<&Quoted> = by_role(grants, names)
        .into_iter()
        .filter(|(_, g)| g.iter().any(|g| g.command == Command::Insert))
        .map(|(r, _)| &names[r].role)
        .collect();
    if inserters.is_empty() {
        return;
    }
    let _ =
        writeln!(s, "-- Sequences owned by {}'s columns (serial defaults): USAGE for roles that insert", Comment(t));
    template::SEQUENCE_GRANTS
        .render(s, &[("table", Value::Regclass(t)), ("roles", Value::QuotedListLiteral(inserters))]);
}

/// The permissive policies of one table: one per condition, with every role that has it (and
/// which part of the spec gave it), in the order of the keys. `grants` is one table's, ordered by
/// role, then command.
fn policy_groups(grants: &[Grant<'_>], names: &[RoleNames<'_>]) -> BTreeMap<ConditionKey, Vec<(usize, Source)>> {
    let mut groups: BTreeMap<ConditionKey, Vec<(usize, Source)>> = BTreeMap::new();
    for (role, role_grants) in by_role(grants, names) {
        let select = role_grants.iter().find(|g| g.command == Command::Select).map_or(Scope::None, |g| g.scope);
        for g in role_grants {
            groups.entry(ConditionKey::new(g.command, g.scope, select)).or_default().push((role, g.source));
        }
    }
    groups
}

/// A policy's USING and WITH CHECK conditions as SQL. A WITH CHECK that would say what USING says
/// is left out: PostgreSQL then checks new rows with USING, the same rule, and every backend that
/// reads the table holds one expression less per such policy in its relation cache (issue 12).
fn bodies(key: ConditionKey, table: &Table, backend: Backend, plans: api::Plans) -> (Option<String>, Option<String>) {
    let c = key.conditions(table.sharing);
    let sql = |c: Option<Condition>, clause| c.map(|c| c.sql(table, backend, clause, plans).to_string());
    let (using, with_check) = (sql(c.using, api::Clause::Using), sql(c.with_check, api::Clause::Check));
    let with_check = with_check.filter(|check| using.as_ref() != Some(check));
    (using, with_check)
}

fn key_name(key: ConditionKey) -> String {
    policy_name(key.command, key.scope, key.seeing)
}

fn policies(
    s: &mut String,
    names: &[RoleNames<'_>],
    table: &Table,
    quoted: &Quoted,
    grants: &[Grant<'_>],
    backend: Backend,
    plans: api::Plans,
) {
    if grants.is_empty() {
        return;
    }
    s.push_str(
        "-- Policies: one per command and condition, for every role with it; PostgreSQL ORs the permissive ones a person holds\n",
    );
    let mut comment = String::new();
    for (key, roles) in policy_groups(grants, names) {
        let (using, with_check) = bodies(key, table, backend, plans);
        let name = Quoted::ident(&key_name(key));
        let to: Vec<&Quoted> = roles.iter().map(|&(r, _)| &names[r].role).collect();
        let policy = CreatePolicy {
            name: &name,
            table: quoted,
            kind: PolicyKind::Permissive,
            command: Some(key.command),
            to: Grantee::Roles(&to),
            using: using.as_deref(),
            with_check: with_check.as_deref(),
        };
        let _ = writeln!(s, "{policy}");
        comment.clear();
        policy_comment(&mut comment, names, &table.name, key, &roles);
        let _ = writeln!(s, "{}", CommentOnPolicy { name: &name, table: quoted, comment: &comment });
    }
}

/// `rowsec: update own for sales_rep, support (level individual); marketer (roles.marketer...)`:
/// what the policy grants and every role it is for, grouped by the part of the spec that gave it.
fn policy_comment(
    out: &mut String,
    names: &[RoleNames<'_>],
    table: &QualifiedName,
    key: ConditionKey,
    roles: &[(usize, Source)],
) {
    for part in [OWNER_MARK, " ", key.command.as_str(), " ", key.scope.as_str()] {
        out.push_str(part);
    }
    if let Some(seeing) = key.seeing {
        out.push_str(" of the rows it sees (select ");
        out.push_str(seeing.as_str());
        out.push(')');
    }
    out.push_str(" for ");
    // Sources in the order of their first role; roles in name order within each. A level is
    // shared by every role on it; the other sources name their role.
    let mut by_source: Vec<((Source, &str), Vec<usize>)> = Vec::new();
    for &(role, source) in roles {
        let key = match source {
            Source::Level => (source, names[role].level),
            _ => (source, names[role].name),
        };
        match by_source.iter_mut().find(|(k, _)| *k == key) {
            Some((_, of)) => of.push(role),
            None => by_source.push((key, vec![role])),
        }
    }
    for (i, ((source, _), of)) in by_source.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        for (j, &role) in of.iter().enumerate() {
            if j > 0 {
                out.push_str(", ");
            }
            out.push_str(names[role].name);
        }
        out.push_str(" (");
        source_of(out, &names[of[0]], table, *source);
        out.push(')');
    }
}

/// Which part of the spec gave a role its scope, for the comments a reviewer reads.
fn source_of(out: &mut String, role: &RoleNames<'_>, table: &QualifiedName, source: Source) {
    let name = role.name;
    match source {
        Source::NamedTable => {
            let _ = write!(out, "roles.{name}.tables.{}", table.dotted());
        }
        Source::EveryTable => {
            let _ = write!(out, "roles.{name}.tables.\"*\"");
        }
        Source::Level => {
            out.push_str("level ");
            out.push_str(role.level);
        }
        Source::Nothing => out.push_str("no grant"),
    }
}

/// A policy the compiled script creates, as data: `rowsec verify` compares a database's
/// policies with these (the script itself writes them as SQL in `policies` and `protect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedPolicy {
    pub table: QualifiedName,
    pub name: String,
    /// The roles it applies to, in name order; empty: PUBLIC (the `always` rule).
    pub roles: Vec<String>,
    /// `None`: every command.
    pub command: Option<Command>,
    pub permissive: bool,
    pub using: Option<String>,
    pub with_check: Option<String>,
}

/// Every policy the script for `spec` creates on `backend`, table by table.
pub fn expected_policies(spec: &Spec, backend: Backend) -> Vec<ExpectedPolicy> {
    let grants = resolve::grants(spec);
    let names = RoleNames::all(spec);
    let mut out = Vec::new();
    let mut by_table = grants.chunk_by(|a, b| a.table == b.table).peekable();
    for table in spec.tables.values() {
        let table_grants = by_table.next_if(|g| *g[0].table == table.name).unwrap_or_default();
        for (key, roles) in policy_groups(table_grants, &names) {
            let (using, with_check) = bodies(key, table, backend, api::Plans::of(&spec.identity));
            out.push(ExpectedPolicy {
                table: table.name.clone(),
                name: key_name(key),
                roles: roles.iter().map(|&(r, _)| names[r].name.to_owned()).collect(),
                command: Some(key.command),
                permissive: true,
                using,
                with_check,
            });
        }
        if let Some(always) = &table.always {
            let expr = crate::always::normalize(always);
            out.push(ExpectedPolicy {
                table: table.name.clone(),
                name: ALWAYS_POLICY.to_owned(),
                roles: Vec::new(),
                command: None,
                permissive: false,
                using: Some(expr),
                with_check: None,
            });
        }
    }
    out
}
