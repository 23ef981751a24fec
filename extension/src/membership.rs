//! `membership` rows of the audit trail: a spec role granted to or revoked from any role, by any
//! statement. Event triggers do not fire for roles, so a ProcessUtility hook (installed in
//! `_PG_init`; the library must be in `shared_preload_libraries` to see every session) lists the
//! members of the spec roles before and after each statement that can change them (GRANT/REVOKE
//! of a role, CREATE ROLE ... IN ROLE / ROLE / ADMIN, ALTER GROUP, DROP ROLE) and records the
//! difference. Spec roles are the roles whose comment starts with
//! `rowsec: group role of spec role ` (generator/src/names.rs).
//!
//! What the hook cannot see, `rowsec.reconcile_memberships()` finds afterwards by comparing
//! `pg_auth_members` with the members last recorded (`rowsec.spec_role_members`): changes made
//! while the library was not loaded, or from a database without rowsec (roles belong to the
//! cluster), and direct writes to the catalog.

use crate::audit::{self, Kind};
use crate::catalog;
use crate::errors::{required, OrRaise, RowsecError};
use crate::owner::{extension_owner_cached, AsRole};
use crate::types::Text;
use pgrx::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;

/// Start of the comment that marks a spec role (generator/src/names.rs, `role_comment_prefix`).
const SPEC_ROLE_COMMENT: &str = "rowsec: group role of spec role ";

static mut PREVIOUS: pg_sys::ProcessUtility_hook_type = None;

/// Installs the hook (from `_PG_init`, once per process).
pub fn install_hook() {
    unsafe {
        PREVIOUS = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
    }
}

/// (role, member) -> (member can log in, admin option).
type Members = BTreeMap<(String, String), (bool, bool)>;

thread_local! {
    /// The members of the spec roles before each membership statement under way (nested
    /// statements stack), kept here rather than on the hook's frame, which an error jumps over.
    static BEFORE: std::cell::RefCell<Vec<Option<(&'static str, Members)>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Not `#[pg_guard]`: the statement's errors pass through unchanged (`crate::boundary`); rowsec's
/// own work runs in the guarded `before_statement` and `after_statement`.
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    let watched = unsafe { membership_statement(pstmt) }.is_some();
    if watched {
        unsafe { before_statement(pstmt) };
    }
    unsafe {
        crate::boundary::passing_errors(
            || match PREVIOUS {
                Some(previous) => previous(pstmt, query, read_only_tree, context, params, env, dest, qc),
                None => crate::boundary::raw::standard_ProcessUtility(
                    pstmt,
                    query,
                    read_only_tree,
                    context,
                    params,
                    env,
                    dest,
                    qc,
                ),
            },
            || {
                if watched {
                    BEFORE.with(|b| b.borrow_mut().pop());
                }
            },
        )
    };
    if watched {
        unsafe { after_statement() };
    }
}

/// Before a membership statement: the spec roles' members, when the trail is installed (an
/// entry either way, which the statement's end pops).
#[pg_guard]
unsafe extern "C-unwind" fn before_statement(pstmt: *mut pg_sys::PlannedStmt) {
    let statement = unsafe { membership_statement(pstmt) };
    let before = statement.filter(|_| audit_installed()).map(|s| (s, spec_role_members()));
    BEFORE.with(|b| b.borrow_mut().push(before));
}

/// After it: the difference, recorded.
#[pg_guard]
unsafe extern "C-unwind" fn after_statement() {
    if let Some((statement, before)) = BEFORE.with(|b| b.borrow_mut().pop()).flatten() {
        record(statement, &before, &spec_role_members(), false);
    }
}

/// The statements that can change who is a member of a role, by their SQL words.
unsafe fn membership_statement(pstmt: *mut pg_sys::PlannedStmt) -> Option<&'static str> {
    unsafe {
        if pstmt.is_null() || (*pstmt).utilityStmt.is_null() {
            return None;
        }
        let node = (*pstmt).utilityStmt;
        match (*node).type_ {
            pg_sys::NodeTag::T_GrantRoleStmt => {
                Some(if (*node.cast::<pg_sys::GrantRoleStmt>()).is_grant { "GRANT" } else { "REVOKE" })
            }
            pg_sys::NodeTag::T_CreateRoleStmt => Some("CREATE ROLE"),
            // ALTER GROUP ... ADD/DROP USER is an AlterRoleStmt.
            pg_sys::NodeTag::T_AlterRoleStmt => Some("ALTER ROLE"),
            pg_sys::NodeTag::T_DropRoleStmt => Some("DROP ROLE"),
            _ => None,
        }
    }
}

/// Whether this database has rowsec with its audit trail: elsewhere the hook does nothing.
fn audit_installed() -> bool {
    (unsafe { pg_sys::IsTransactionState() })
        && (unsafe { pg_sys::get_extension_oid(c"rowsec".as_ptr(), true) }) != pg_sys::InvalidOid
        && catalog::extension_relation(c"audit_log").is_some()
        && catalog::extension_relation(c"spec_role_members").is_some()
}

/// Every member of every spec role, read now.
fn spec_role_members() -> Members {
    let _owner = AsRole::switch(extension_owner_cached());
    let what = "listing the members of the spec roles";
    Spi::connect_mut(|c| -> Result<Members, RowsecError> {
        let rows = c
            .update(
                "SELECT r.rolname::pg_catalog.text, m.rolname::pg_catalog.text, m.rolcanlogin, am.admin_option \
                 FROM pg_catalog.pg_auth_members am \
                 JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) am.roleid \
                 JOIN pg_catalog.pg_roles m ON m.oid OPERATOR(pg_catalog.=) am.member \
                 WHERE pg_catalog.starts_with(pg_catalog.shobj_description(r.oid, 'pg_authid'), $1)",
                None,
                &[SPEC_ROLE_COMMENT.into()],
            )
            .map_err(|e| RowsecError::internal(what, e))?;
        rows.map(|r| {
            Ok((
                (required(r.get::<Text>(1), what, "role")?.0, required(r.get::<Text>(2), what, "member")?.0),
                (required(r.get::<bool>(3), what, "rolcanlogin")?, required(r.get::<bool>(4), what, "admin_option")?),
            ))
        })
        .collect()
    })
    .or_raise()
}

/// Records each membership in `before` and not `after` (revoke) and the reverse (grant), in
/// (role, member) order, and keeps `rowsec.spec_role_members` in step. Returns how many.
fn record(statement: &str, before: &Members, after: &Members, reconciled: bool) -> i64 {
    let revoked = before.iter().filter(|(k, _)| !after.contains_key(*k)).map(|(k, v)| ("revoke", k, v));
    let granted = after.iter().filter(|(k, _)| !before.contains_key(*k)).map(|(k, v)| ("grant", k, v));
    let mut changes: Vec<_> = revoked.chain(granted).collect();
    changes.sort_by(|a, b| a.1.cmp(b.1));
    if changes.is_empty() {
        return 0;
    }
    let actor = audit::actor();
    for (op, (role, member), (can_login, admin)) in &changes {
        let mut detail = json!({
            "op": op,
            "role": role,
            "member": member,
            "member_can_login": can_login,
            "admin_option": admin,
            "statement": statement,
        });
        if reconciled {
            detail["reconciled"] = json!(true);
        }
        audit::append(Kind::Membership, Some(role), &detail, if reconciled { None } else { actor });
        let _owner = AsRole::switch(extension_owner_cached());
        let q = if *op == "grant" {
            "INSERT INTO rowsec.spec_role_members (role, member) VALUES ($1::pg_catalog.name, $2::pg_catalog.name) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM rowsec.spec_role_members WHERE role OPERATOR(pg_catalog.=) $1::pg_catalog.name AND member OPERATOR(pg_catalog.=) $2::pg_catalog.name"
        };
        Spi::run_with_args(q, &[role.as_str().into(), member.as_str().into()])
            .unwrap_or_else(|e| RowsecError::internal("keeping rowsec.spec_role_members", e).raise());
    }
    changes.len() as i64
}

/// Records, as `membership` rows with `"reconciled": true` and no actor, every difference
/// between the spec roles' members now and the members rowsec last recorded: what changed while
/// the hook did not see it (the library not loaded, a statement run from another database,
/// catalog writes). When and by whom is unknown. Owner only; the generated script calls it.
/// Returns how many rows it recorded.
#[pg_extern(volatile, parallel_unsafe)]
fn reconcile_memberships() -> i64 {
    let now = spec_role_members();
    let recorded: Members = {
        let _owner = AsRole::switch(extension_owner_cached());
        let what = "reading rowsec.spec_role_members";
        Spi::connect(|c| -> Result<Members, RowsecError> {
            let rows = c
                .select(
                    "SELECT role::pg_catalog.text, member::pg_catalog.text, coalesce(m.rolcanlogin, false) \
                     FROM rowsec.spec_role_members s LEFT JOIN pg_catalog.pg_roles m ON m.rolname OPERATOR(pg_catalog.=) s.member",
                    None,
                    &[],
                )
                .map_err(|e| RowsecError::internal(what, e))?;
            rows.map(|r| {
                Ok((
                    (required(r.get::<Text>(1), what, "role")?.0, required(r.get::<Text>(2), what, "member")?.0),
                    (required(r.get::<bool>(3), what, "rolcanlogin")?, false),
                ))
            })
            .collect()
        })
        .or_raise()
    };
    record("rowsec.reconcile_memberships()", &recorded, &now, true)
}
