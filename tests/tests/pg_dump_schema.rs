//! `--schema` takes what DBAs have: the output of `pg_dump --schema-only` of a real database
//! reads as the tables and columns that database has.

use std::collections::BTreeMap;
use std::process::Command;

use rowsec_e2e::cluster::{pg_bin, repo_root};
use rowsec_e2e::fixture::{crm_spec_path, env, schema_path};
use rowsec_generator::schema::ColumnType;
use rowsec_generator::Schema;

/// table -> columns in order, with the type as rowsec classifies it (`Other` for the rest).
type Shape = BTreeMap<String, Vec<(String, Option<ColumnType>)>>;

fn known(t: &ColumnType) -> Option<ColumnType> {
    (!matches!(t, ColumnType::Other(_))).then(|| t.clone())
}

fn shape(schema: &Schema) -> Shape {
    schema
        .tables
        .iter()
        .map(|(q, cols)| (q.dotted().to_string(), cols.iter().map(|(c, t)| (c.clone(), known(t))).collect()))
        .collect()
}

/// The tables (plain and partitioned) of a database, from its catalog.
fn catalog_shape(db: &str) -> Shape {
    let rows = env()
        .cluster
        .admin(db)
        .query(
            "SELECT n.nspname || '.' || c.relname, a.attname::text, format_type(a.atttypid, a.atttypmod) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, a.attnum",
            &[],
        )
        .expect("read the catalog");
    let mut out = Shape::new();
    for r in rows {
        let sql_type: String = r.get(2);
        let t = match sql_type.as_str() {
            "bigint" => Some(ColumnType::BigInt),
            "integer" => Some(ColumnType::Integer),
            "smallint" => Some(ColumnType::SmallInt),
            "boolean" => Some(ColumnType::Boolean),
            t if t == "text" || (t.starts_with("character varying") && !t.ends_with("[]")) => Some(ColumnType::Text),
            _ => None,
        };
        out.entry(r.get(0)).or_default().push((r.get(1), t));
    }
    out
}

/// A fresh database with `ddl` loaded, and its `pg_dump --schema-only`, by the cluster's own
/// pg_dump.
fn dump_of(ddl: &str) -> (String, String) {
    let env = env();
    let db = env.cluster.create_database("dumped", None);
    env.cluster.admin(&db).batch_execute(ddl).expect("load the DDL");
    let out = Command::new(format!("{}/pg_dump", pg_bin()))
        .args(["--schema-only", "-h", "127.0.0.1", "-p", &env.cluster.port.to_string(), "-U", "postgres", &db])
        .output()
        .expect("run pg_dump");
    assert!(out.status.success(), "pg_dump failed: {}", String::from_utf8_lossy(&out.stderr));
    (db, String::from_utf8(out.stdout).expect("pg_dump writes UTF-8"))
}

#[test]
fn a_pg_dump_of_the_crm_schema_reads_as_the_tables_and_columns_of_the_database() {
    let ddl = std::fs::read_to_string(schema_path()).unwrap();
    let (db, dump) = dump_of(&ddl);
    let from_dump = Schema::parse(&dump).unwrap_or_else(|d| panic!("the dump does not read: {d:?}"));
    assert_eq!(shape(&from_dump), shape(&Schema::parse(&ddl).unwrap()), "dump and examples/crm-schema.sql differ");
    assert_eq!(shape(&from_dump), catalog_shape(&db), "dump and catalog differ");
    assert!(from_dump.skipped.contains_key("SET"), "what was skipped is counted: {:?}", from_dump.skipped);

    // And through the library's front door, as `rowsec check --schema dump.sql` reads it.
    let file = std::env::temp_dir().join(format!("rowsec-e2e-dump-{}.sql", std::process::id()));
    std::fs::write(&file, &dump).unwrap();
    let loaded = rowsec_generator::load(&crm_spec_path(), Some(&file));
    std::fs::remove_file(&file).unwrap();
    let loaded = loaded.unwrap_or_else(|e| panic!("crm.yaml against the dump: {e}"));
    assert_eq!(loaded.schema.map(|s| s.tables.len()), Some(6));
}

#[test]
fn a_pg_dump_of_a_varied_schema_reads_as_the_tables_and_columns_of_the_database() {
    // Quoted names, identity columns, domains, arrays, partitions, inheritance, functions with
    // semicolons in their bodies, views, comments, grants, policies.
    let ddl = std::fs::read_to_string(repo_root().join("generator/tests/fixtures/varied-schema.sql")).unwrap();
    let (db, dump) = dump_of(&ddl);
    let from_dump = Schema::parse(&dump).unwrap_or_else(|d| panic!("the dump does not read: {d:?}"));
    assert_eq!(shape(&from_dump), catalog_shape(&db));
    assert_eq!(shape(&Schema::parse(&ddl).unwrap()), catalog_shape(&db), "the DDL it was made from reads alike");
}
