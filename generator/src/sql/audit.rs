//! The part of the script for SPEC Part 2's `audit:` and `requests:` keys, and the script's own
//! `apply` row of the audit trail. Rendered after every table is protected, right before COMMIT:
//! the row is written in the script's transaction, so a rolled-back apply leaves none.

use std::fmt::Write;

use serde_json::json;

use crate::model::Spec;
use crate::sql::extension_api as api;

/// Readers, audited tables (and converging away the tables that left `audit.data`), requests,
/// and a reconciliation of spec role memberships changed while nothing recorded them.
pub fn section(s: &mut String, spec: &Spec) {
    s.push_str("\n-- ===== Audit trail and access requests (spec: audit, requests) =====\n");
    let _ = writeln!(s, "{}", api::set_audit_readers(&spec.audit.readers));
    for name in &spec.audit.data {
        let Some(table) = spec.tables.get(name) else { continue };
        let redacted: Vec<&str> = table.columns.keys().map(String::as_str).collect();
        let _ = writeln!(s, "{}", api::audit_table(name, &table.key, &redacted));
    }
    s.push_str("-- Tables that left audit.data: their row changes are no longer recorded\n");
    let _ = writeln!(s, "{}", api::audit_only(&spec.audit.data));
    let _ = writeln!(s, "{}", api::configure_requests(spec.requests.map(|r| r.max_days)));
    s.push_str(
        "-- Spec role grants and revokes the membership hook did not see (another database, library not loaded)\n",
    );
    let _ = writeln!(s, "{}", api::reconcile_memberships());
}

/// The `apply` row: the spec's SHA-256, this rowsec's version and what the script knows of what
/// it applies.
pub fn record_apply(s: &mut String, spec: &Spec, sha256: &str) {
    let changes = json!({
        "spec": {
            "tables": spec.tables.len(),
            "roles": spec.roles.len(),
            "audited_tables": spec.audit.data.len(),
        }
    });
    s.push_str("\n-- The audit trail records this apply, in this transaction\n");
    let _ = writeln!(s, "{}", api::record_apply(sha256, env!("CARGO_PKG_VERSION"), &changes.to_string()));
}
