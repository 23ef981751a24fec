//! The part of the script for SPEC Part 2's `audit:` and `requests:` keys, and what the script's
//! own `apply` row of the audit trail says about the spec. The row is written by the summary at
//! the end of the script (sql/compile/summary.sql), in the script's transaction, so a rolled-back
//! apply leaves none.

use std::fmt::Write;

use serde_json::json;

use crate::model::{AlertRule, Spec};
use crate::sql::extension_api::{self as api, Backend};
use crate::sql::script::Options;
use crate::sql::template;

/// Readers, audited tables (and converging away the tables that left `audit.data`), requests,
/// and a reconciliation of spec role memberships changed while nothing recorded them: one DO
/// block, so psql prints no result sets.
pub fn section(s: &mut String, spec: &Spec, options: &Options) {
    s.push_str("\n-- ===== Audit trail and access requests (spec: audit, requests) =====\n");
    // The SQL backend refuses what it cannot enforce (its functions raise 0A000); a script
    // compiled with --accept-unenforced asks it for nothing of it (the header lists it).
    let leave_out = options.backend == Backend::Sql && options.accept_unenforced;
    let stripped;
    let spec = if leave_out {
        let mut s = spec.clone();
        s.monitoring = Default::default();
        for role in s.roles.values_mut() {
            role.limits.clear();
        }
        stripped = s;
        &stripped
    } else {
        spec
    };
    let mut body = String::new();
    let b = &mut body;
    let _ = writeln!(b, "PERFORM {};", api::set_audit_readers(&spec.audit.readers));
    for name in &spec.audit.data {
        let Some(table) = spec.tables.get(name) else { continue };
        let redacted: Vec<&str> = table.columns.keys().map(String::as_str).collect();
        let _ = writeln!(b, "PERFORM {};", api::audit_table(name, &table.key, &redacted));
    }
    b.push_str("-- Tables that left audit.data: their row changes are no longer recorded\n");
    let _ = writeln!(b, "PERFORM {};", api::audit_only(&spec.audit.data));
    let _ = writeln!(b, "PERFORM {};", api::configure_requests(spec.requests.map(|r| r.max_days)));
    b.push_str("-- Limits of roles.<name>.limits (every spec role: a role or command left out has none)\n");
    let _ = writeln!(b, "PERFORM {};", api::configure_limits(&limits_json(spec)));
    b.push_str("-- monitoring: activity of every statement on a protected table, and the alert rules\n");
    let _ = writeln!(b, "PERFORM {};", api::configure_monitoring(spec.monitoring.reads, &alerts_json(spec)));
    b.push_str(
        "-- Spec role grants and revokes the membership hook did not see (another database, library not loaded)\n",
    );
    let _ = writeln!(b, "PERFORM {};", api::reconcile_memberships());
    template::do_block(s, &body);
}

/// `{"role": {"select": 500, ...}, "other": {}}` for every spec role.
pub fn limits_json(spec: &Spec) -> String {
    let roles: serde_json::Map<String, serde_json::Value> = spec
        .roles
        .values()
        .map(|r| {
            let limits: serde_json::Map<String, serde_json::Value> =
                r.limits.iter().map(|(c, n)| (c.as_str().to_owned(), json!(n))).collect();
            (r.name.clone(), serde_json::Value::Object(limits))
        })
        .collect();
    serde_json::Value::Object(roles).to_string()
}

/// The rules of `monitoring.alerts` as rowsec.configure_monitoring reads them
/// (`rowsec_core::monitoring`).
pub fn alerts_json(spec: &Spec) -> String {
    let rules: Vec<serde_json::Value> = spec
        .monitoring
        .alerts
        .iter()
        .map(|rule| match rule {
            AlertRule::BulkRead { rows, within_seconds, within } => {
                json!({"name": "bulk_read", "rows": rows, "within_seconds": within_seconds, "within": within})
            }
            AlertRule::OffHours { from, to, days, timezone } => {
                json!({"name": "off_hours", "from": from, "to": to, "days": days, "timezone": timezone})
            }
        })
        .collect();
    serde_json::Value::Array(rules).to_string()
}

/// What the spec holds, for the script's `apply` row (summary.sql adds what the script changed).
pub fn spec_counts(spec: &Spec) -> String {
    json!({
        "tables": spec.tables.len(),
        "roles": spec.roles.len(),
        "audited_tables": spec.audit.data.len(),
    })
    .to_string()
}

/// What a spec asks for that the SQL backend cannot enforce (executor hooks, shared memory, a
/// background writer): the spec keys, in the order docs/diagnostics.md (E1701) lists them.
/// Empty on a spec that uses none.
pub fn unenforced_on_sql_backend(spec: &Spec) -> Vec<&'static str> {
    let mut out = Vec::new();
    if spec.roles.values().any(|r| !r.limits.is_empty()) {
        out.push("limits");
    }
    if spec.monitoring.reads || !spec.monitoring.alerts.is_empty() {
        out.push("monitoring");
    }
    out
}
