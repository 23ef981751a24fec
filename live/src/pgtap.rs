//! `rowsec verify --emit pgtap FILE`: the verify checks as a pgTAP script, for `pg_prove` in
//! CI. Expected values are computed now (from the spec, the oracle and the catalog's printing of
//! the spec's policies); the script checks the database as it is when it runs, in one
//! transaction that it rolls back.
//!
//! It carries the drift checks, the truth of reads (which rows each person sees) and of column
//! rights (which classed columns they may read and write); which rows they may insert, update
//! and delete is checked by `rowsec verify` itself (pgTAP cannot compare the rows of an
//! UPDATE ... RETURNING).

use std::fmt::Write;

use postgres::Client;
use rowsec_generator::model::Command;
use rowsec_generator::oracle::Oracle;
use rowsec_generator::Loaded;

use crate::catalog::{self, quote_ident, quoted};
use crate::error::{Error, Result};
use crate::people::{self, Directory};
use crate::verify::{self, Options};

/// A SQL string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub fn emit(client: &mut Client, loaded: &Loaded, options: &Options, progress: &dyn Fn(&str)) -> Result<String> {
    let spec = &loaded.spec;
    // The file runs later, under pg_prove: a token made now would have expired by then, and a
    // long-lived one written into a file would be a credential anyone holding it could replay.
    if let rowsec_generator::model::Identity::SignedSetting(name) = &spec.identity {
        return Err(Error::BadInput {
            what: format!(
                "the spec's identity is the signed setting {name}: pgTAP tests cannot act as people without writing signed tokens into the file"
            ),
            fix: "run `rowsec verify` (it signs a short-lived token per person with the database's key), or emit the tests for a copy of the spec whose identity is the unsigned setting, on a test database".to_owned(),
        });
    }
    let mut tests: Vec<String> = Vec::new();
    for t in spec.tables.values() {
        let (real, name) = (quoted(&t.name), t.name.dotted().to_string());
        tests.push(format!(
            "SELECT ok((SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = {}::regclass), {});",
            lit(&real),
            lit(&format!("row-level security is enabled on {name}"))
        ));
        tests.push(format!(
            "SELECT ok((SELECT relforcerowsecurity FROM pg_catalog.pg_class WHERE oid = {}::regclass), {});",
            lit(&real),
            lit(&format!("row-level security is forced on {name}"))
        ));
    }
    for role in spec.roles.keys() {
        tests.push(format!(
            "SELECT ok((SELECT NOT (rolcanlogin OR rolbypassrls OR rolsuper) FROM pg_catalog.pg_roles WHERE rolname = {}), {});",
            lit(role),
            lit(&format!("spec role {role} exists without LOGIN, BYPASSRLS or SUPERUSER"))
        ));
    }
    let backend = catalog::installed_backend(client)?.unwrap_or_default();
    for (table, want, _) in verify::policy_shapes(client, spec, backend)? {
        let (real, name) = (quoted(&table), table.dotted().to_string());
        let names: Vec<String> = want.keys().map(|n| lit(n)).collect();
        tests.push(format!(
            "SELECT set_eq('SELECT polname::text FROM pg_catalog.pg_policy WHERE polrelid = {}::regclass', ARRAY[{}]::text[], {});",
            lit(&real).replace('\'', "''"),
            names.join(", "),
            lit(&format!("{name} has exactly the spec's policies"))
        ));
        for (pname, shape) in &want {
            // One line per policy: record comparisons of catalog text need collations spelled out.
            let want_line = format!(
                "{} | {} | {} | {} | {}",
                shape.command,
                shape.permissive,
                shape.roles,
                shape.using.as_deref().unwrap_or("-"),
                shape.with_check.as_deref().unwrap_or("-")
            );
            tests.push(format!(
                "SELECT is((SELECT polcmd::text || ' | ' || polpermissive || ' | ' || polroles::pg_catalog.regrole[]::text \
                 || ' | ' || coalesce(pg_catalog.pg_get_expr(polqual, polrelid), '-') || ' | ' \
                 || coalesce(pg_catalog.pg_get_expr(polwithcheck, polrelid), '-') \
                 FROM pg_catalog.pg_policy WHERE polrelid = {}::regclass AND polname = {}), {}, {});",
                lit(&real),
                lit(pname),
                lit(&want_line),
                lit(&format!("policy {pname} on {name} is the spec's"))
            ));
        }
    }
    for (table, want, _) in verify::privileges(client, spec)? {
        let (real, name) = (quoted(&table), table.dotted().to_string());
        let rows: Vec<String> =
            want.iter().map(|(r, p, c)| format!("({}::text, {}::text, {}::text)", lit(r), lit(p), lit(c))).collect();
        let expected = if rows.is_empty() {
            "SELECT NULL::text, NULL::text, NULL::text WHERE false".to_owned()
        } else {
            format!("VALUES {}", rows.join(", "))
        };
        tests.push(format!(
            "SELECT set_eq({}, {}, {});",
            lit(&verify::PRIVILEGES.replace("$1::text", &lit(&real))),
            lit(&expected),
            lit(&format!("privileges on {name} are exactly the spec's"))
        ));
    }
    // Truth of reads, as each person.
    let directory = Directory::read(client, spec)?;
    let mut oracle = Oracle::new(spec, directory.people());
    oracle.shares = people::shares(client)?;
    let mut rows = Vec::new();
    for t in spec.tables.keys() {
        rows.push((t.clone(), people::rows(client, spec, t, options.rows)?));
    }
    for (i, m) in directory.members.values().take(options.people).enumerate() {
        progress(&format!("pgtap: person {i} ({})", m.id));
        let Some(login) = &m.login else { continue };
        let exists: bool = client
            .query_one("SELECT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = $1)", &[login])
            .map_err(Error::query("pgtap: roles"))?
            .get(0);
        if !exists {
            continue;
        }
        tests.push(format!("SET LOCAL ROLE {};", quote_ident(login)));
        if let rowsec_generator::model::Identity::Setting(name) = &spec.identity {
            tests.push(format!("SELECT set_config({}, {}, true);", lit(name), lit(&m.id.to_string())));
        }
        for (t, table_rows) in &rows {
            let st = &spec.tables[t];
            let (real, key, name) = (quoted(t), quote_ident(&st.key), t.dotted().to_string());
            let known: Vec<String> = table_rows.iter().map(|r| r.key.to_string()).collect();
            let query =
                format!("SELECT {key}::bigint FROM {real} WHERE {key} = ANY ('{{{}}}'::bigint[])", known.join(","));
            let what = format!("person {} ({login}) reads {name}", m.id);
            if oracle.has_privilege(m.id, t, Command::Select) {
                let visible: Vec<String> =
                    table_rows.iter().filter(|r| oracle.visible(m.id, t, r)).map(|r| r.key.to_string()).collect();
                tests.push(format!(
                    "SELECT set_eq({}, '{{{}}}'::bigint[], {});",
                    lit(&query),
                    visible.join(","),
                    lit(&format!("{what}: exactly the rows the spec allows"))
                ));
            } else {
                tests.push(format!(
                    "SELECT throws_ok({}, '42501', NULL, {});",
                    lit(&query),
                    lit(&format!("{what}: no privilege"))
                ));
            }
            for column in st.columns.keys() {
                let q = format!("SELECT {} FROM {real} LIMIT 0", quote_ident(column));
                let d = format!("person {} ({login}) column {name}.{column}", m.id);
                if oracle.column_allowed(m.id, t, column, Command::Select) {
                    tests.push(format!("SELECT lives_ok({}, {});", lit(&q), lit(&format!("{d}: readable"))));
                } else {
                    tests.push(format!(
                        "SELECT throws_ok({}, '42501', NULL, {});",
                        lit(&q),
                        lit(&format!("{d}: not readable"))
                    ));
                }
                // Writing it: privileges are checked before any row is read.
                let col = quote_ident(column);
                let q = format!("UPDATE {real} SET {col} = {col} WHERE false");
                if oracle.column_allowed(m.id, t, column, Command::Update) {
                    tests.push(format!("SELECT lives_ok({}, {});", lit(&q), lit(&format!("{d}: writable"))));
                } else {
                    tests.push(format!(
                        "SELECT throws_ok({}, '42501', NULL, {});",
                        lit(&q),
                        lit(&format!("{d}: not writable"))
                    ));
                }
            }
        }
        tests.push("RESET ROLE;".to_owned());
    }
    let count = tests.iter().filter(|t| t.starts_with("SELECT ") && !t.starts_with("SELECT set_config")).count();
    let mut s = String::new();
    let _ = writeln!(s, "-- Generated by rowsec verify --emit pgtap from {} (sha256 {})", loaded.file, loaded.sha256);
    let _ = writeln!(s, "-- Run as a superuser: pg_prove -d DATABASE THIS_FILE. Changes nothing: it rolls back.");
    s.push_str(
        "\\set ON_ERROR_STOP 1\n\\set QUIET 1\n\\pset format unaligned\n\\pset tuples_only true\n\\pset pager off\n",
    );
    s.push_str("BEGIN;\nCREATE EXTENSION IF NOT EXISTS pgtap;\n");
    let _ = writeln!(s, "SELECT plan({count});");
    for t in tests {
        s.push_str(&t);
        s.push('\n');
    }
    s.push_str("SELECT * FROM finish();\nROLLBACK;\n");
    Ok(s)
}
