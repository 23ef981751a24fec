//! `rowsec verify`: does a live database still do what the spec says?
//!
//! Drift: the catalog compared with what the compiled script creates (RLS and FORCE on every
//! protected table, the registry, spec roles that cannot log in or bypass RLS, exactly the
//! spec's policies with the spec's expressions, exactly the spec's privileges). Read-only: the
//! expected policies are created on temporary copies of the tables, in a transaction that is
//! rolled back, so PostgreSQL prints both sides the same way; no lock on a real table is taken
//! beyond reading.
//!
//! Truth: real people from the directory try every protected table and command as themselves
//! (`SET LOCAL ROLE` to their login), in a transaction that is rolled back, and what PostgreSQL
//! lets them do is compared with the oracle (`rowsec_generator::oracle`).

use std::collections::{BTreeMap, BTreeSet};

use postgres::{Client, Transaction};
use rowsec_generator::model::{Command, Identity, QualifiedName, Spec};
use rowsec_generator::oracle::{Oracle, Outcome, Row};
use rowsec_generator::resolve::{self, Columns};
use rowsec_generator::sql::masking;
use rowsec_generator::sql::script::{expected_policies, ExpectedPolicy};
use rowsec_generator::Backend;
use serde::Serialize;

use crate::catalog::{self, quote_ident, quoted};
use crate::error::{Error, Result};
use crate::people::{self, Directory};

/// One thing in the database the spec does not explain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// A stable name: rls-off, force-off, extra-policy, policy-edited, ...
    pub check: &'static str,
    pub object: String,
    pub what: String,
    pub fix: String,
}

/// Where PostgreSQL and the spec disagree for one person, table and command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub person: i64,
    pub login: String,
    pub table: String,
    pub command: String,
    pub expected: String,
    pub actual: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    pub people: usize,
    pub checks: usize,
    pub mismatches: Vec<Mismatch>,
    /// People the check could not run as, and why.
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub spec: String,
    pub database: String,
    pub drift: Vec<Drift>,
    pub truth: Option<Truth>,
}

impl Report {
    pub fn clean(&self) -> bool {
        self.drift.is_empty() && self.truth.as_ref().is_none_or(|t| t.mismatches.is_empty())
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// At most this many people (by id) are tried.
    pub people: usize,
    /// At most this many rows per table (by key) are compared.
    pub rows: i64,
    /// Insert attempts use at most this many owners per table.
    pub owners: usize,
    pub truth: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { people: 500, rows: 2000, owners: 60, truth: true }
    }
}

pub fn run(
    client: &mut Client,
    database: &str,
    loaded: &rowsec_generator::Loaded,
    options: &Options,
    progress: &dyn Fn(&str),
) -> Result<Report> {
    let spec = &loaded.spec;
    catalog::require_superuser(client, "read every role's privileges and act as each person")?;
    catalog::check_spec_tables(client, spec)?;
    let drift = drift(client, spec)?;
    let truth = if options.truth { Some(truth(client, spec, options, progress)?) } else { None };
    Ok(Report { spec: loaded.file.clone(), database: database.to_owned(), drift, truth })
}

/// Everything about the spec's tables and roles that the spec does not explain.
pub fn drift(client: &mut Client, spec: &Spec) -> Result<Vec<Drift>> {
    let mut out = Vec::new();
    let q = |what: &str| Error::query(format!("verify: reading {what}"));
    // The SQL backend (sql/backend/rowsec.sql) has the same rowsec.config and its own policies.
    let backend = catalog::installed_backend(client)?;
    if backend.is_none() {
        out.push(Drift {
            check: "extension-missing",
            object: "rowsec".into(),
            what: "the rowsec extension is not installed in this database (nor the SQL backend)".into(),
            fix: "rowsec apply SPEC".into(),
        });
    } else {
        config_drift(client, spec, &mut out)?;
    }
    for t in spec.tables.values() {
        let name = t.name.dotted().to_string();
        let r = client
            .query_one(
                "SELECT relrowsecurity, relforcerowsecurity FROM pg_catalog.pg_class WHERE oid = $1::text::regclass",
                &[&quoted(&t.name)],
            )
            .map_err(q("row-level security flags"))?;
        if !r.get::<_, bool>(0) {
            out.push(Drift {
                check: "rls-off",
                object: name.clone(),
                what: format!("row-level security is disabled on {name}: every role with a privilege sees every row"),
                fix: format!("ALTER TABLE {} ENABLE ROW LEVEL SECURITY (or rowsec apply SPEC)", quoted(&t.name)),
            });
        }
        if !r.get::<_, bool>(1) {
            out.push(Drift {
                check: "force-off",
                object: name.clone(),
                what: format!("row-level security is not forced on {name}: the table's owner bypasses it"),
                fix: format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY (or rowsec apply SPEC)", quoted(&t.name)),
            });
        }
        if backend.is_some() {
            let reg = client
                .query_opt(
                    "SELECT key_column::text, owner_column::text, sharing FROM rowsec.protected_tables \
                     WHERE tbl = $1::text::regclass",
                    &[&quoted(&t.name)],
                )
                .map_err(q("rowsec.protected_tables"))?;
            let ok = reg.as_ref().is_some_and(|r| {
                r.get::<_, String>(0) == t.key && r.get::<_, String>(1) == t.owner && r.get::<_, bool>(2) == t.sharing
            });
            if !ok {
                out.push(Drift {
                    check: "registry",
                    object: name.clone(),
                    what: format!(
                        "rowsec.protected_tables does not register {name} with key {}, owner {} and sharing {}",
                        t.key, t.owner, t.sharing
                    ),
                    fix: "rowsec apply SPEC".into(),
                });
            }
        }
    }
    for role in spec.roles.keys() {
        let r = client
            .query_opt(
                "SELECT rolcanlogin, rolbypassrls, rolsuper FROM pg_catalog.pg_roles WHERE rolname = $1",
                &[role],
            )
            .map_err(q("roles"))?;
        let Some(r) = r else {
            out.push(Drift {
                check: "role-missing",
                object: role.clone(),
                what: format!("spec role {role} does not exist"),
                fix: "rowsec apply SPEC".into(),
            });
            continue;
        };
        for (i, check, flag, why) in [
            (0, "role-login", "LOGIN", "anyone with its password logs in with every right of the role"),
            (1, "role-bypassrls", "BYPASSRLS", "its members see and change every row of every protected table"),
            (2, "role-superuser", "SUPERUSER", "its members bypass every rule"),
        ] {
            if r.get::<_, bool>(i) {
                out.push(Drift {
                    check,
                    object: role.clone(),
                    what: format!("spec role {role} has {flag}: {why}"),
                    fix: format!("ALTER ROLE {} NO{flag}", quote_ident(role)),
                });
            }
        }
    }
    policy_drift(client, spec, backend.unwrap_or_default(), &mut out)?;
    privilege_drift(client, spec, &mut out)?;
    masked_view_drift(client, spec, &mut out)?;
    Ok(out)
}

/// The masked views (`classes:`) the script makes: each present with its options, a superuser
/// owner (a non-superuser's would show no row), the reader's row filter, the write trigger and
/// nothing for PUBLIC; and no rowsec masked view left for a table the spec no longer masks. The
/// columns' expressions are not compared (the script builds them from the catalog).
fn masked_view_drift(client: &mut Client, spec: &Spec, out: &mut Vec<Drift>) -> Result<()> {
    let wanted: Vec<(String, String)> = masking::masked_tables(spec)
        .iter()
        .map(|t| (masking::view_name(&t.name).to_string(), masking::visible_function(&t.name.name)))
        .collect();
    let fix = "rowsec apply SPEC (it recreates the masked views)";
    for (view, filter) in &wanted {
        let row = client
            .query_opt(
                "SELECT c.reloptions::text[], r.rolsuper, pg_catalog.pg_get_viewdef(c.oid), \
                        EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgrelid = c.oid AND tgname = 'rowsec_write'), \
                        pg_catalog.has_table_privilege('public', c.oid, 'SELECT, INSERT, UPDATE, DELETE') \
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles r ON r.oid = c.relowner \
                 WHERE c.oid = pg_catalog.to_regclass($1) AND c.relkind = 'v'",
                &[view],
            )
            .map_err(Error::query("verify: reading the masked views"))?;
        let Some(row) = row else {
            out.push(Drift {
                check: "masked-view-missing",
                object: view.clone(),
                what: format!("the masked view {view} does not exist: SELECT * through it fails"),
                fix: fix.into(),
            });
            continue;
        };
        let options: Vec<String> = row.get::<_, Option<Vec<String>>>(0).unwrap_or_default();
        let mut wrong = Vec::new();
        if !options.iter().any(|o| o == "security_barrier=true") {
            wrong.push("it is not security_barrier (a leaky function could see rows the reader may not)");
        }
        if !row.get::<_, bool>(1) {
            wrong.push("its owner is not a superuser (it shows no row)");
        }
        if !row.get::<_, String>(2).contains(&format!("{filter}(")) {
            wrong.push("its definition lacks the reader's row filter (it could show every row)");
        }
        if !row.get::<_, bool>(3) {
            wrong.push("its write trigger rowsec_write is missing");
        }
        if row.get::<_, bool>(4) {
            wrong.push("PUBLIC holds a privilege on it");
        }
        if !wrong.is_empty() {
            out.push(Drift {
                check: "masked-view-altered",
                object: view.clone(),
                what: format!("the masked view {view} was changed: {}", wrong.join("; ")),
                fix: fix.into(),
            });
        }
    }
    let rows = client
        .query(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'v' AND pg_catalog.obj_description(n.oid, 'pg_namespace') = $1 \
               AND pg_catalog.obj_description(c.oid, 'pg_class') LIKE $2 ORDER BY 1",
            &[&masking::SCHEMA_MARK, &format!("{}%", masking::OBJECT_MARK)],
        )
        .map_err(Error::query("verify: reading rowsec's masked views"))?;
    for row in rows {
        let view: String = row.get(0);
        if !wanted.iter().any(|(w, _)| *w == view) {
            out.push(Drift {
                check: "masked-view-extra",
                object: view.clone(),
                what: format!("rowsec's masked view {view} is for a table the spec no longer masks"),
                fix: "rowsec apply SPEC (it removes it)".into(),
            });
        }
    }
    Ok(())
}

/// The extension's configuration row against the spec's directory and identity.
fn config_drift(client: &mut Client, spec: &Spec, out: &mut Vec<Drift>) -> Result<()> {
    let d = &spec.directory;
    let (identity, setting) = match &spec.identity {
        Identity::Login => ("login", None),
        Identity::Setting(name) => ("setting", Some(name.clone())),
        Identity::SignedSetting(name) => ("signed_setting", Some(name.clone())),
    };
    let row = client
        .query_opt(
            "SELECT directory = $1::text::regclass, id_column::text, manager_column::text, team_column::text, \
             login_column::text, active_column::text, identity, identity_setting FROM rowsec.config",
            &[&quoted(&d.table)],
        )
        .map_err(Error::query("verify: reading rowsec.config"))?;
    let expected = (
        true,
        d.id.clone(),
        d.manager.clone(),
        d.team.clone(),
        d.login.clone(),
        d.active.clone(),
        identity.to_owned(),
        setting,
    );
    let actual = row.map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7)));
    if actual.as_ref() != Some(&expected) {
        out.push(Drift {
            check: "config",
            object: "rowsec.config".into(),
            what: format!(
                "rowsec.config is not the spec's directory and identity: it holds {}",
                actual.map_or("no row".to_owned(), |a| format!(
                    "id {}, manager {}, team {:?}, login {:?}, active {:?}, identity {}{}",
                    a.1,
                    a.2,
                    a.3,
                    a.4,
                    a.5,
                    a.6,
                    a.7.map(|s| format!(" ({s})")).unwrap_or_default()
                ))
            ),
            fix: "rowsec apply SPEC (it calls rowsec.configure with the spec's directory)".into(),
        });
    }
    Ok(())
}

/// A policy as PostgreSQL prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyShape {
    pub command: String,
    pub permissive: bool,
    pub roles: String,
    pub using: Option<String>,
    pub with_check: Option<String>,
}

const POLICY_SHAPES: &str = "SELECT polname::text, polcmd::text, polpermissive, polroles::pg_catalog.regrole[]::text, \
    pg_catalog.pg_get_expr(polqual, polrelid), pg_catalog.pg_get_expr(polwithcheck, polrelid) \
    FROM pg_catalog.pg_policy WHERE polrelid = $1::text::regclass ORDER BY 1";

fn shapes(tx: &mut Transaction<'_>, table: &str) -> Result<BTreeMap<String, PolicyShape>> {
    let rows =
        tx.query(POLICY_SHAPES, &[&table]).map_err(Error::query(format!("verify: reading policies of {table}")))?;
    Ok(rows
        .iter()
        .map(|r| {
            let shape = PolicyShape {
                command: r.get(1),
                permissive: r.get(2),
                roles: r.get(3),
                using: r.get(4),
                with_check: r.get(5),
            };
            (r.get(0), shape)
        })
        .collect())
}

/// Per spec table: its policies as the spec makes them on `backend` and as they are, both printed by
/// PostgreSQL (the spec's are created on an empty temporary copy, in a transaction rolled back).
pub(crate) type PolicyShapes = Vec<(QualifiedName, BTreeMap<String, PolicyShape>, BTreeMap<String, PolicyShape>)>;

pub(crate) fn policy_shapes(client: &mut Client, spec: &Spec, backend: Backend) -> Result<PolicyShapes> {
    let expected = expected_policies(spec, backend);
    let mut out = Vec::new();
    let mut tx = client.transaction().map_err(Error::query("verify: begin"))?;
    let spec_roles: Vec<&str> = spec.roles.keys().map(String::as_str).collect();
    let existing: BTreeSet<String> = tx
        .query("SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolname = ANY ($1)", &[&spec_roles])
        .map_err(Error::query("verify: roles"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for t in spec.tables.values() {
        let name = t.name.dotted().to_string();
        let real = quoted(&t.name);
        // The copy has the table's own name (the SQL backend's policies qualify its columns by
        // it), one table at a time: two spec tables of one name in two schemas never meet.
        let copy = format!("pg_temp.{}", quote_ident(&t.name.name));
        tx.batch_execute(&format!("CREATE TEMP TABLE {} (LIKE {real})", quote_ident(&t.name.name)))
            .map_err(Error::query(format!("verify: copying {name}")))?;
        for p in expected.iter().filter(|p| p.table == t.name) {
            // Roles the database lacks are left out (the roles check reports them); a policy
            // none of whose roles exist is left out too.
            let roles: Vec<&str> = p.roles.iter().filter(|r| existing.contains(*r)).map(String::as_str).collect();
            if p.roles.is_empty() || !roles.is_empty() {
                tx.batch_execute(&create_policy(p, &roles, &copy))
                    .map_err(Error::query(format!("verify: the spec's policy {} on a copy of {name}", p.name)))?;
            }
        }
        let want = shapes(&mut tx, &copy)?;
        let have = shapes(&mut tx, &real)?;
        tx.batch_execute(&format!("DROP TABLE {copy}")).map_err(Error::query(format!("verify: the copy of {name}")))?;
        out.push((t.name.clone(), want, have));
    }
    tx.rollback().map_err(Error::query("verify: rollback"))?;
    Ok(out)
}

fn policy_drift(client: &mut Client, spec: &Spec, backend: Backend, out: &mut Vec<Drift>) -> Result<()> {
    for (table, want, have) in policy_shapes(client, spec, backend)? {
        let name = table.dotted().to_string();
        let real = quoted(&table);
        for (pname, shape) in &have {
            match want.get(pname) {
                None => out.push(Drift {
                    check: "extra-policy",
                    object: format!("{name} {pname}"),
                    what: format!(
                        "policy {pname} on {name} is not the spec's ({} {} TO {} USING {})",
                        if shape.permissive { "PERMISSIVE" } else { "RESTRICTIVE" },
                        command_word(&shape.command),
                        shape.roles,
                        shape.using.as_deref().unwrap_or("-")
                    ),
                    fix: format!("DROP POLICY {} ON {real}, or add what it grants to the spec", quote_ident(pname)),
                }),
                Some(w) if w != shape => out.push(Drift {
                    check: "policy-edited",
                    object: format!("{name} {pname}"),
                    what: format!(
                        "policy {pname} on {name} differs from the spec's: {}",
                        describe_difference(w, shape)
                    ),
                    fix: "rowsec apply SPEC (it re-creates the spec's policy)".into(),
                }),
                Some(_) => {}
            }
        }
        for pname in want.keys().filter(|p| !have.contains_key(*p)) {
            out.push(Drift {
                check: "missing-policy",
                object: format!("{name} {pname}"),
                what: format!("the spec's policy {pname} on {name} is missing"),
                fix: "rowsec apply SPEC".into(),
            });
        }
    }
    Ok(())
}

fn command_word(polcmd: &str) -> &'static str {
    match polcmd {
        "r" => "FOR SELECT",
        "a" => "FOR INSERT",
        "w" => "FOR UPDATE",
        "d" => "FOR DELETE",
        _ => "FOR ALL",
    }
}

fn describe_difference(want: &PolicyShape, have: &PolicyShape) -> String {
    let mut parts = Vec::new();
    let show = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    if want.using != have.using {
        parts.push(format!("USING is ({}), the spec says ({})", show(&have.using), show(&want.using)));
    }
    if want.with_check != have.with_check {
        parts.push(format!("WITH CHECK is ({}), the spec says ({})", show(&have.with_check), show(&want.with_check)));
    }
    if want.roles != have.roles {
        parts.push(format!("TO {}, the spec says TO {}", have.roles, want.roles));
    }
    if want.command != have.command || want.permissive != have.permissive {
        parts.push("its command or kind changed".into());
    }
    parts.join("; ")
}

/// `roles`: those of the policy's roles that exist (none: PUBLIC, for a policy without roles).
fn create_policy(p: &ExpectedPolicy, roles: &[&str], table: &str) -> String {
    let to = if roles.is_empty() {
        "PUBLIC".to_owned()
    } else {
        roles.iter().map(|r| quote_ident(r)).collect::<Vec<_>>().join(", ")
    };
    let mut s = format!(
        "CREATE POLICY {} ON {table} AS {} FOR {} TO {}",
        quote_ident(&p.name),
        if p.permissive { "PERMISSIVE" } else { "RESTRICTIVE" },
        p.command.map_or("ALL", |c| c.as_str()),
        to
    );
    if let Some(u) = &p.using {
        s.push_str(&format!(" USING ({u})"));
    }
    if let Some(w) = &p.with_check {
        s.push_str(&format!(" WITH CHECK ({w})"));
    }
    s
}

/// (grantee or PUBLIC, privilege, column or "" for the whole table)
pub(crate) type Privileges = BTreeSet<(String, String, String)>;

/// What the table's owner did not grant itself, table and column privileges alike.
pub(crate) const PRIVILEGES: &str = "SELECT coalesce(r.rolname::text, 'PUBLIC'), x.privilege_type, ''::text \
     FROM pg_catalog.pg_class c CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) x \
     LEFT JOIN pg_catalog.pg_roles r ON r.oid = x.grantee \
     WHERE c.oid = $1::text::regclass AND x.grantee <> c.relowner \
     UNION ALL \
     SELECT coalesce(r.rolname::text, 'PUBLIC'), x.privilege_type, a.attname::text \
     FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
     CROSS JOIN LATERAL pg_catalog.aclexplode(a.attacl) x \
     LEFT JOIN pg_catalog.pg_roles r ON r.oid = x.grantee \
     WHERE a.attrelid = $1::text::regclass AND x.grantee <> c.relowner";

/// Per spec table: the privileges the spec grants, and those held.
pub(crate) fn privileges(client: &mut Client, spec: &Spec) -> Result<Vec<(QualifiedName, Privileges, Privileges)>> {
    let resolver = resolve::Resolver::new(spec);
    let mut grants = Vec::new();
    let mut out = Vec::new();
    for t in spec.tables.values() {
        grants.clear();
        resolver.table_grants(t, &mut grants);
        let name = t.name.dotted().to_string();
        let real = quoted(&t.name);
        let columns: Vec<String> = client
            .query(
                "SELECT attname::text FROM pg_catalog.pg_attribute WHERE attrelid = $1::text::regclass \
                 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                &[&real],
            )
            .map_err(Error::query(format!("verify: columns of {name}")))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        // (grantee, privilege, column or "" for the table)
        let mut want = Privileges::new();
        for g in &grants {
            let privilege = g.command.as_str().to_uppercase();
            match &g.columns {
                Columns::All => {
                    want.insert((g.role.to_owned(), privilege, String::new()));
                }
                Columns::AllExcept(hidden) => {
                    for c in columns.iter().filter(|c| !hidden.contains(&c.as_str())) {
                        want.insert((g.role.to_owned(), privilege.clone(), c.clone()));
                    }
                }
            }
        }
        let have: Privileges = client
            .query(PRIVILEGES, &[&real])
            .map_err(Error::query(format!("verify: privileges on {name}")))?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        out.push((t.name.clone(), want, have));
    }
    Ok(out)
}

fn privilege_drift(client: &mut Client, spec: &Spec, out: &mut Vec<Drift>) -> Result<()> {
    for (table, want, have) in privileges(client, spec)? {
        let name = table.dotted().to_string();
        let real = quoted(&table);
        let on = |col: &str| if col.is_empty() { name.clone() } else { format!("{name}.{col}") };
        for (role, privilege, col) in have.difference(&want) {
            out.push(Drift {
                check: "extra-grant",
                object: format!("{} {role} {privilege}", on(col)),
                what: format!("{role} holds {privilege} on {}, which the spec does not grant", on(col)),
                fix: format!(
                    "REVOKE {privilege}{} ON {real} FROM {}",
                    if col.is_empty() { String::new() } else { format!(" ({})", quote_ident(col)) },
                    if role == "PUBLIC" { "PUBLIC".to_owned() } else { quote_ident(role) }
                ),
            });
        }
        for (role, privilege, col) in want.difference(&have) {
            out.push(Drift {
                check: "missing-grant",
                object: format!("{} {role} {privilege}", on(col)),
                what: format!("{role} lacks {privilege} on {}, which the spec grants", on(col)),
                fix: "rowsec apply SPEC".into(),
            });
        }
    }
    Ok(())
}

/// Maps a statement's result onto the oracle's outcomes. Constraint errors (class 23) come
/// after PostgreSQL's row-level security check, so the statement was allowed.
pub(crate) fn classify(r: std::result::Result<u64, postgres::Error>) -> Outcome {
    match r {
        Ok(n) => Outcome::Rows(n),
        Err(e) => match e.as_db_error() {
            Some(d) if d.code().code() == "42501" && d.message().contains("row-level security") => {
                Outcome::RlsViolation
            }
            Some(d) if d.code().code() == "42501" => Outcome::PermissionDenied,
            Some(d) if d.code().code().starts_with("23") => Outcome::Rows(1),
            _ => Outcome::Error(crate::error::describe(&e)),
        },
    }
}

/// Runs one statement in a savepoint that is rolled back, returning the first column of each row.
pub(crate) fn attempt(
    tx: &mut Transaction<'_>,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<std::result::Result<Vec<i64>, Outcome>> {
    let mut sp = tx.transaction().map_err(Error::query("verify: savepoint"))?;
    let r = sp.query(sql, params);
    sp.rollback().map_err(Error::query("verify: rollback to savepoint"))?;
    Ok(match r {
        Ok(rows) => Ok(rows.iter().map(|r| r.get::<_, i64>(0)).collect()),
        Err(e) => Err(classify(Err(e))),
    })
}

/// The set a statement returned, or how it failed, for messages.
fn show(r: &std::result::Result<BTreeSet<i64>, Outcome>) -> String {
    match r {
        Ok(keys) if keys.len() <= 12 => format!("rows {keys:?}"),
        Ok(keys) => format!("{} rows", keys.len()),
        Err(o) => format!("{o:?}"),
    }
}

fn keys_differ(expected: &BTreeSet<i64>, actual: &BTreeSet<i64>) -> String {
    let extra: Vec<_> = actual.difference(expected).take(10).collect();
    let missing: Vec<_> = expected.difference(actual).take(10).collect();
    format!("PostgreSQL also gives keys {extra:?} and withholds keys {missing:?}")
}

pub fn truth(client: &mut Client, spec: &Spec, options: &Options, progress: &dyn Fn(&str)) -> Result<Truth> {
    let directory = Directory::read(client, spec)?;
    let mut oracle = Oracle::new(spec, directory.people());
    oracle.shares = people::shares(client)?;
    let mut rows: BTreeMap<QualifiedName, Vec<Row>> = BTreeMap::new();
    let mut templates: BTreeMap<QualifiedName, (Row, String)> = BTreeMap::new();
    for t in spec.tables.keys() {
        let r = people::rows(client, spec, t, options.rows)?;
        // The first row the `always` rule keeps serves as the model of inserted rows.
        if let Some(model) = r.iter().find(|r| !r.voided) {
            let json: String = client
                .query_one(
                    &format!(
                        "SELECT row_to_json(t)::text FROM {} t WHERE {} = $1",
                        quoted(t),
                        quote_ident(&spec.tables[t].key)
                    ),
                    &[&model.key],
                )
                .map_err(Error::query(format!("verify: a model row of {}", t.dotted())))?
                .get(0);
            templates.insert(t.clone(), (*model, json));
        }
        rows.insert(t.clone(), r);
    }
    let insertable = insert_columns(client, spec)?;
    let acting = people::Impersonation::new(client, spec)?;
    let mut skipped: Vec<String> = spec
        .tables
        .keys()
        .filter(|t| !templates.contains_key(*t))
        .map(|t| format!("inserts into {}: it has no row the always rule keeps to copy", t.dotted()))
        .collect();
    let mut checks = 0;
    let mut tried = 0;
    let mut mismatches = Vec::new();
    let candidates: Vec<&crate::people::Member> = directory.members.values().take(options.people).collect();
    let owners: Vec<i64> = directory.members.keys().copied().take(options.owners).collect();
    for (i, m) in candidates.iter().enumerate() {
        progress(&format!("verify: person {} of {} ({})", i + 1, candidates.len(), m.id));
        let Some(login) = m.login.clone() else {
            skipped.push(format!("person {}: no login in the directory", m.id));
            continue;
        };
        let exists: bool = client
            .query_one("SELECT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = $1)", &[&login])
            .map_err(Error::query("verify: roles"))?
            .get(0);
        if !exists {
            skipped.push(format!("person {}: login {login} is not a role of this server", m.id));
            continue;
        }
        tried += 1;
        let mut tx = client.transaction().map_err(Error::query("verify: begin"))?;
        acting.enter(&mut tx, m.id, &login, "verify")?;
        let mut report = |table: &QualifiedName, command: &str, expected: String, actual: String| {
            mismatches.push(Mismatch {
                person: m.id,
                login: login.clone(),
                table: table.dotted().to_string(),
                command: command.to_owned(),
                expected,
                actual,
            })
        };
        for (t, table_rows) in &rows {
            let st = &spec.tables[t];
            let (real, key) = (quoted(t), quote_ident(&st.key));
            let known: BTreeSet<i64> = table_rows.iter().map(|r| r.key).collect();
            let within = |r: std::result::Result<Vec<i64>, Outcome>| {
                r.map(|k| k.into_iter().filter(|k| known.contains(k)).collect::<BTreeSet<i64>>())
            };
            // select
            let expected = if oracle.has_privilege(m.id, t, Command::Select) {
                Ok(table_rows.iter().filter(|r| oracle.visible(m.id, t, r)).map(|r| r.key).collect())
            } else {
                Err(Outcome::PermissionDenied)
            };
            let actual = within(attempt(&mut tx, &format!("SELECT {key}::bigint FROM {real}"), &[])?);
            checks += 1;
            if expected != actual {
                let detail = match (&expected, &actual) {
                    (Ok(e), Ok(a)) => keys_differ(e, a),
                    _ => String::new(),
                };
                report(t, "select", show(&expected), format!("{} {detail}", show(&actual)));
            }
            // classed columns
            for column in st.columns.keys() {
                let expected = oracle.column_allowed(m.id, t, column, Command::Select);
                let actual = attempt(
                    &mut tx,
                    &format!("SELECT 0::bigint FROM {real} WHERE {} IS NULL AND false", quote_ident(column)),
                    &[],
                )?;
                checks += 1;
                let allowed = actual.is_ok();
                if expected != allowed {
                    report(t, &format!("select column {column}"), allowed_word(expected), format!("{actual:?}"));
                }
            }
            // writing classed columns: privileges are checked before any row is read
            for column in st.columns.keys() {
                let col = quote_ident(column);
                for (cmd, sql) in [
                    (Command::Update, format!("UPDATE {real} SET {col} = {col} WHERE false RETURNING 0::bigint")),
                    (
                        Command::Insert,
                        format!("INSERT INTO {real} ({col}) SELECT NULL WHERE false RETURNING 0::bigint"),
                    ),
                ] {
                    let expected = oracle.column_allowed(m.id, t, column, cmd);
                    let actual = attempt(&mut tx, &sql, &[])?;
                    checks += 1;
                    if expected != actual.is_ok() {
                        report(
                            t,
                            &format!("{} column {column}", cmd.as_str()),
                            allowed_word(expected),
                            format!("{actual:?}"),
                        );
                    }
                }
            }
            // update (a no-op update of every row: the new row equals the old one)
            let expected =
                if oracle.has_privilege(m.id, t, Command::Update) && oracle.has_privilege(m.id, t, Command::Select) {
                    Ok(table_rows.iter().filter(|r| oracle.updatable(m.id, t, r)).map(|r| r.key).collect())
                } else {
                    Err(Outcome::PermissionDenied)
                };
            let actual =
                within(attempt(&mut tx, &format!("UPDATE {real} SET {key} = {key} RETURNING {key}::bigint"), &[])?);
            checks += 1;
            if expected != actual {
                let detail = match (&expected, &actual) {
                    (Ok(e), Ok(a)) => keys_differ(e, a),
                    _ => String::new(),
                };
                report(t, "update", show(&expected), format!("{} {detail}", show(&actual)));
            }
            // delete, row by row: a foreign key error only comes after the row passed the policies
            for r in table_rows {
                let expected = if oracle.has_privilege(m.id, t, Command::Delete)
                    && oracle.has_privilege(m.id, t, Command::Select)
                {
                    Outcome::Rows(u64::from(oracle.deletable(m.id, t, r)))
                } else {
                    Outcome::PermissionDenied
                };
                let actual = match attempt(
                    &mut tx,
                    &format!("DELETE FROM {real} WHERE {key} = $1 RETURNING {key}::bigint"),
                    &[&r.key],
                )? {
                    Ok(k) => Outcome::Rows(k.len() as u64),
                    Err(o) => o,
                };
                checks += 1;
                if expected != actual {
                    report(t, &format!("delete key {}", r.key), format!("{expected:?}"), format!("{actual:?}"));
                }
            }
            // insert: a copy of a model row (its unclassed columns) for each owner
            if let (Some((model, json)), Some(cols)) = (templates.get(t), insertable.get(t)) {
                let list = cols.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
                let sql = format!(
                    "INSERT INTO {real} ({list}) SELECT {list} FROM pg_catalog.json_populate_record(NULL::{real}, $1::text::json) RETURNING 0::bigint"
                );
                for owner in &owners {
                    let mut value: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
                    value[st.owner.as_str()] = serde_json::json!(owner);
                    let row = Row { key: model.key, owner: *owner, voided: model.voided };
                    let expected = oracle.insert(m.id, t, &row);
                    let actual = match attempt(&mut tx, &sql, &[&value.to_string()])? {
                        Ok(k) => Outcome::Rows(k.len() as u64),
                        Err(o) => o,
                    };
                    checks += 1;
                    if expected != actual {
                        report(t, &format!("insert owner {owner}"), format!("{expected:?}"), format!("{actual:?}"));
                    }
                }
            }
        }
        tx.rollback().map_err(Error::query("verify: rollback"))?;
    }
    Ok(Truth { people: tried, checks, mismatches, skipped })
}

fn allowed_word(b: bool) -> String {
    if b { "allowed" } else { "permission denied" }.to_owned()
}

/// Per table, the columns an insert names: not classed (column rights are checked on their
/// own), not generated.
fn insert_columns(client: &mut Client, spec: &Spec) -> Result<BTreeMap<QualifiedName, Vec<String>>> {
    let mut out = BTreeMap::new();
    for t in spec.tables.values() {
        let cols: Vec<String> = client
            .query(
                "SELECT attname::text FROM pg_catalog.pg_attribute WHERE attrelid = $1::text::regclass \
                 AND attnum > 0 AND NOT attisdropped AND attgenerated = '' AND attidentity <> 'a' ORDER BY attnum",
                &[&quoted(&t.name)],
            )
            .map_err(Error::query(format!("verify: columns of {}", t.name.dotted())))?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .filter(|c| !t.columns.contains_key(c))
            .collect();
        out.insert(t.name.clone(), cols);
    }
    Ok(out)
}

impl Report {
    /// For people: drift first, then the truth check.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "rowsec verify: spec {} on database {}", self.spec, self.database);
        if self.drift.is_empty() {
            let _ = writeln!(s, "\ndrift: none (the catalog is what the spec makes)");
        } else {
            let _ = writeln!(s, "\ndrift: {} finding(s)", self.drift.len());
            for d in &self.drift {
                let _ = writeln!(s, "  [{}] {}\n      fix: {}", d.check, d.what, d.fix);
            }
        }
        match &self.truth {
            None => {
                let _ = writeln!(s, "\ntruth: not checked (--no-truth)");
            }
            Some(t) => {
                let _ = writeln!(
                    s,
                    "\ntruth: {} people, {} checks, {} mismatch(es) with the spec",
                    t.people,
                    t.checks,
                    t.mismatches.len()
                );
                for m in t.mismatches.iter().take(50) {
                    let _ = writeln!(
                        s,
                        "  person {} ({}) {} {}: the spec says {}, PostgreSQL: {}",
                        m.person, m.login, m.table, m.command, m.expected, m.actual
                    );
                }
                if t.mismatches.len() > 50 {
                    let _ = writeln!(s, "  ... and {} more (--format json lists all)", t.mismatches.len() - 50);
                }
                if !t.skipped.is_empty() {
                    let _ = writeln!(s, "  not tried:");
                    for why in &t.skipped {
                        let _ = writeln!(s, "    - {why}");
                    }
                }
            }
        }
        let _ = writeln!(
            s,
            "\n{}",
            if self.clean() {
                "ok: the database does what the spec says"
            } else {
                "FAILED: the database differs from the spec"
            }
        );
        s
    }
}
