//! Reading the catalog: checks that a command can run at all (who we are, whether the spec's
//! tables and directory exist) and what the spec's objects look like in this database.

use postgres::Client;
use rowsec_generator::model::{QualifiedName, Spec};

use crate::error::{Error, Result};

/// Fails unless the connected role is a superuser (the compiled script creates roles and the
/// extension; the checks read every role's privileges).
pub fn require_superuser(client: &mut Client, to: &str) -> Result<()> {
    let row = client
        .query_one("SELECT current_user::text, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user", &[])
        .map_err(Error::query("reading the connected role"))?;
    if row.get::<_, bool>(1) {
        Ok(())
    } else {
        Err(Error::BadInput {
            what: format!("role {} is not a superuser; rowsec needs one to {to}", row.get::<_, String>(0)),
            fix: "connect as a superuser (the user in --db, or PGUSER)".to_owned(),
        })
    }
}

/// The table as PostgreSQL names it: `"schema"."table"`.
pub fn quoted(t: &QualifiedName) -> String {
    format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name))
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Every table the spec names (directory included) exists with the columns the spec names.
pub fn check_spec_tables(client: &mut Client, spec: &Spec) -> Result<()> {
    let mut wanted: Vec<(&QualifiedName, Vec<&str>, String)> = Vec::new();
    let d = &spec.directory;
    let mut dir_cols = vec![d.id.as_str(), d.manager.as_str()];
    dir_cols.extend(d.team.as_deref());
    dir_cols.extend(d.login.as_deref());
    dir_cols.extend(d.active.as_deref());
    wanted.push((&d.table, dir_cols, "directory.table".to_owned()));
    for t in spec.tables.values() {
        let mut cols = vec![t.key.as_str(), t.owner.as_str()];
        cols.extend(t.columns.keys().map(String::as_str));
        wanted.push((&t.name, cols, format!("tables.{}", t.name.dotted())));
    }
    for (table, columns, place) in wanted {
        let found: Vec<String> = client
            .query(
                "SELECT a.attname::text FROM pg_catalog.pg_attribute a \
                 JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
                &[&table.schema, &table.name],
            )
            .map_err(Error::query(format!("reading the columns of {}", table.dotted())))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if found.is_empty() {
            return Err(Error::Mismatch {
                what: format!("the spec's {place} names table {}, which this database does not have", table.dotted()),
                fix: "create the schema first (the spec protects existing tables), or connect to the right database"
                    .to_owned(),
            });
        }
        if let Some(missing) = columns.iter().find(|c| !found.iter().any(|f| f == *c)) {
            return Err(Error::Mismatch {
                what: format!(
                    "the spec's {place} names column {missing}, which table {} does not have",
                    table.dotted()
                ),
                fix: "fix the column name in the spec, or migrate the table first".to_owned(),
            });
        }
    }
    Ok(())
}

/// Which backend the database runs: the extension, the SQL backend (its schema's comment, set
/// by sql/backend/rowsec.sql, whether installed by the script or through pg_tle), or neither.
pub fn installed_backend(client: &mut Client) -> Result<Option<rowsec_generator::Backend>> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'rowsec'), \
             coalesce((SELECT pg_catalog.obj_description(n.oid, 'pg_namespace') LIKE 'rowsec SQL backend%' \
                       FROM pg_catalog.pg_namespace n WHERE n.nspname = 'rowsec'), false)",
            &[],
        )
        .map_err(Error::query("looking for rowsec's backend"))?;
    Ok(match (row.get::<_, bool>(0), row.get::<_, bool>(1)) {
        (true, _) => Some(rowsec_generator::Backend::Extension),
        (false, true) => Some(rowsec_generator::Backend::Sql),
        (false, false) => None,
    })
}

/// Whether the rowsec extension is installed in this database.
pub fn has_extension(client: &mut Client) -> Result<bool> {
    Ok(installed_backend(client)? == Some(rowsec_generator::Backend::Extension))
}
