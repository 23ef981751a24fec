//! The properties every fuzzer of rowsec checks, shared by the stable loop (tests/fuzz.rs) and
//! the libFuzzer targets (generator/fuzz/, which includes this file by path): an input is
//! accepted and compiles, or rejected with diagnostics that each have a message and a valid
//! position; the `always` checker gives every problem a message.
#![allow(dead_code)] // each libFuzzer target uses only its own half

use rowsec_generator::always;
use rowsec_generator::schema::ColumnType;
use rowsec_generator::{load_str, Error, Schema};

pub fn schema() -> Schema {
    Schema::parse(include_str!("../../../examples/crm-schema.sql")).unwrap()
}

/// The properties for one spec text; `Err` says which failed.
pub fn check_spec(source: &str, schema: &Schema) -> Result<(), String> {
    match load_str("fuzz.yaml", source, Some(schema.clone())) {
        Ok(loaded) => {
            let _ = rowsec_generator::compile(&loaded);
            Ok(())
        }
        Err(Error::InvalidSpec(report)) => {
            if report.diagnostics.is_empty() {
                return Err("rejected without a diagnostic".into());
            }
            for d in &report.diagnostics {
                if !valid_position(source, d.span) {
                    return Err(format!("{} has an invalid position {:?}", d.code, d.span));
                }
                if d.message.is_empty() {
                    return Err(format!("{} has no message", d.code));
                }
            }
            let _ = report.to_string();
            Ok(())
        }
        Err(other) => Err(format!("unexpected error kind: {other}")),
    }
}

/// Line 1 or more and within the text (lines as YAML counts them); byte offsets inside it, on character boundaries.
pub fn valid_position(source: &str, s: rowsec_generator::diagnostic::Span) -> bool {
    let lines = rowsec_generator::diagnostic::lines(source).len();
    s.line >= 1
        && s.line <= lines + 1
        && s.start <= s.end
        && s.end <= source.len()
        && source.is_char_boundary(s.start)
        && source.is_char_boundary(s.end)
}

pub fn invoice_columns() -> Vec<(String, ColumnType)> {
    let s = schema();
    let t = rowsec_generator::model::QualifiedName::new("crm", "invoices");
    s.tables.get(&t).cloned().unwrap_or_default()
}

/// The properties for one `always` expression: checked alone (with and without the table's
/// columns), and inside a spec, where a rejection must point into the file.
pub fn check_always(expr: &str, columns: &[(String, ColumnType)], schema: &Schema) -> Result<(), String> {
    for known in [Some(columns), None] {
        let problems = always::check(expr, known);
        if problems.iter().any(|p| p.message.is_empty()) {
            return Err("a problem without a message".into());
        }
        if problems.is_empty() {
            let _ = always::normalize(expr);
        }
    }
    let quoted =
        expr.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").replace('\r', "\\r").replace('\t', "\\t");
    let quoted: String =
        quoted.chars().map(|c| if c.is_control() { format!("\\u{:04x}", c as u32) } else { c.to_string() }).collect();
    let spec = format!(
        "version: 1\ndirectory: {{ table: crm.app_users, id: id, manager: manager_id, login: db_login }}\nidentity: login\n\
         tables:\n  crm.invoices: {{ key: id, owner: owner_id, always: \"{quoted}\" }}\nroles:\n  r: {{ tables: {{ \"*\": {{ select: own }} }} }}\n"
    );
    check_spec(&spec, schema)
}
