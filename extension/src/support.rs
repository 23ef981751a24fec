//! Planner support for `in_subtree`, `in_team`, `is_shared` and `in_all`.
//!
//! PostgreSQL 15 hashes `x = ANY(array)` only for constant arrays, and cannot see inside a
//! function call at all. The support functions let the planner (1) turn the call into the index
//! condition `owner = ANY(rowsec.subtree())` when `owner` is the leading column of a btree
//! integer index, (2) estimate its selectivity from the cached set size, and (3) cost it as the
//! cheap probe it is.

use crate::cache;
use crate::identity::Caller;
use crate::types::RegClass;
use pgrx::prelude::*;
use pgrx::Internal;
use rowsec_core::access::ShareAccess;
use std::ffi::CStr;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Subtree,
    Team,
    Shared,
    /// `in_all(owner)`: every row or none; no index condition.
    All,
}

impl Kind {
    /// The argument that the index condition constrains.
    fn key_arg(self) -> usize {
        match self {
            Kind::Shared => 1,
            Kind::Subtree | Kind::Team | Kind::All => 0,
        }
    }

    /// The array function of the index condition and its argument types.
    fn array_function(self) -> (&'static CStr, &'static [pg_sys::Oid]) {
        match self {
            Kind::Subtree => (c"subtree", &[]),
            Kind::Team => (c"team", &[]),
            Kind::Shared => (c"shared_keys", &[pg_sys::REGCLASSOID, pg_sys::TEXTOID]),
            // Never asked: index_condition offers nothing for `in_all`.
            Kind::All => (c"current_person", &[]),
        }
    }
}

#[pg_extern(immutable, parallel_safe)]
pub fn in_subtree_support(req: Internal) -> Internal {
    unsafe { support(req, Kind::Subtree) }
}

#[pg_extern(immutable, parallel_safe)]
pub fn in_team_support(req: Internal) -> Internal {
    unsafe { support(req, Kind::Team) }
}

#[pg_extern(immutable, parallel_safe)]
pub fn in_all_support(req: Internal) -> Internal {
    unsafe { support(req, Kind::All) }
}

#[pg_extern(immutable, parallel_safe)]
pub fn is_shared_support(req: Internal) -> Internal {
    unsafe { support(req, Kind::Shared) }
}

/// The planner calls support functions through `OidFunctionCall1`, which rejects an SQL NULL:
/// "no answer" is a non-null datum holding a null pointer.
fn no_answer() -> Internal {
    Internal::from(Some(pg_sys::Datum::from(0usize)))
}

unsafe fn support(req: Internal, kind: Kind) -> Internal {
    let Some(datum) = req.unwrap() else { return no_answer() };
    let node = datum.cast_mut_ptr::<pg_sys::Node>();
    if node.is_null() {
        return no_answer();
    }
    let answered: *mut pg_sys::Node = unsafe {
        match (*node).type_ {
            pg_sys::NodeTag::T_SupportRequestSelectivity => selectivity(node.cast(), kind),
            pg_sys::NodeTag::T_SupportRequestCost => cost(node.cast()),
            pg_sys::NodeTag::T_SupportRequestIndexCondition => index_condition(node.cast(), kind).cast(),
            _ => std::ptr::null_mut(),
        }
    };
    if answered.is_null() {
        no_answer()
    } else {
        Internal::from(Some(pg_sys::Datum::from(answered)))
    }
}

unsafe fn list_nth(list: *mut pg_sys::List, n: usize) -> *mut pg_sys::Node {
    unsafe {
        if list.is_null() || (*list).length as usize <= n {
            return std::ptr::null_mut();
        }
        (*(*list).elements.add(n)).ptr_value.cast()
    }
}

unsafe fn is_const(node: *mut pg_sys::Node) -> bool {
    !node.is_null()
        && unsafe { (*node).type_ } == pg_sys::NodeTag::T_Const
        && !unsafe { (*node.cast::<pg_sys::Const>()).constisnull }
}

/// For `is_shared('t'::regclass, k, 'read')`: the table and the access asked for, when both are
/// valid constants (an invalid access gets no estimate; the call itself raises).
unsafe fn shared_args(args: *mut pg_sys::List) -> Option<(pg_sys::Oid, ShareAccess)> {
    unsafe {
        let (tbl, access) = (list_nth(args, 0), list_nth(args, 2));
        if !is_const(tbl) || !is_const(access) {
            return None;
        }
        let tbl = RegClass::from_datum((*tbl.cast::<pg_sys::Const>()).constvalue, false)?;
        let access = String::from_datum((*access.cast::<pg_sys::Const>()).constvalue, false)?;
        Some((tbl.0, ShareAccess::parse(&access).ok()?))
    }
}

/// Fraction of rows passing: members of the caller's set over the directory size (owners are
/// assumed evenly spread), or shared keys over the table's row count.
unsafe fn selectivity(req: *mut pg_sys::SupportRequestSelectivity, kind: Kind) -> *mut pg_sys::Node {
    unsafe {
        let r = &mut *req;
        if r.is_join {
            return std::ptr::null_mut();
        }
        let Some(dir) = cache::directory_if_configured() else { return std::ptr::null_mut() };
        let person = Caller::current(&dir.config.identity).person(&dir);
        // The plan being made is shaped for this person's class (see `plans`), unless the scan
        // is pinned to one row by a unique key: its estimate is one row whatever the class (the
        // planner rounds up to one), and no index on the owner is offered there, so a change of
        // class need not plan it again.
        if !pinned_to_one_row(r.root, list_nth(r.args, kind.key_arg())) {
            crate::plans::planning_for(crate::plans::class_of(&dir, person));
        }
        let selectivity = match kind {
            Kind::Subtree | Kind::Team => {
                let members = match (kind, person) {
                    (_, None) => 0,
                    (Kind::Subtree, Some(p)) => dir.subtree(p).len(),
                    (_, Some(p)) => dir.team(p).len(),
                };
                members.max(1) as f64 / dir.directory().len().max(1) as f64
            }
            // Every row for a person, none for nobody: the one-time filter it replaces.
            Kind::All => {
                if person.is_some() {
                    1.0
                } else {
                    0.0
                }
            }
            Kind::Shared => {
                let Some((tbl, access)) = shared_args(r.args) else { return std::ptr::null_mut() };
                let keys = match person {
                    Some(p) => {
                        let now = pg_sys::GetCurrentTransactionStartTimestamp();
                        cache::shared(&dir, tbl, access, p, now).keys.len()
                    }
                    None => 0,
                };
                keys.max(1) as f64 / relation_rows(r.root, list_nth(r.args, 1)).max(1.0)
            }
        };
        r.selectivity = selectivity.clamp(1e-9, 1.0);
        req.cast()
    }
}

/// The relation a key Var of this query level belongs to, if the planner has it.
unsafe fn relation_of(root: *mut pg_sys::PlannerInfo, key: *mut pg_sys::Node) -> Option<*mut pg_sys::RelOptInfo> {
    unsafe {
        if root.is_null() || key.is_null() || (*key).type_ != pg_sys::NodeTag::T_Var {
            return None;
        }
        let var = key.cast::<pg_sys::Var>();
        let varno = (*var).varno;
        if (*var).varlevelsup != 0
            || varno <= 0
            || varno >= (*root).simple_rel_array_size
            || (*root).simple_rel_array.is_null()
        {
            return None;
        }
        let rel = *(*root).simple_rel_array.add(varno as usize);
        (!rel.is_null()).then_some(rel)
    }
}

/// Whether the scan of the key Var's relation is a point lookup (see `unique_lookup`).
unsafe fn pinned_to_one_row(root: *mut pg_sys::PlannerInfo, key: *mut pg_sys::Node) -> bool {
    unsafe { relation_of(root, key).is_some_and(|rel| unique_lookup(rel)) }
}

/// Estimated rows of the relation a key Var belongs to (1000 when unknown, the planner's guess).
unsafe fn relation_rows(root: *mut pg_sys::PlannerInfo, key: *mut pg_sys::Node) -> f64 {
    unsafe {
        match relation_of(root, key) {
            Some(rel) if (*rel).tuples > 0.0 => (*rel).tuples,
            _ => 1000.0,
        }
    }
}

/// A probe: as cheap as one operator, loading the set is a one-off at startup.
unsafe fn cost(req: *mut pg_sys::SupportRequestCost) -> *mut pg_sys::Node {
    unsafe {
        (*req).startup = 0.0;
        (*req).per_tuple = pg_sys::cpu_operator_cost;
    }
    req.cast()
}

/// int8 `=` (`int8eq`), in the btree `integer_ops` family.
const INT8_EQUAL_OPERATOR: pg_sys::Oid = pg_sys::Oid::from_u32(410);

unsafe fn index_condition(req: *mut pg_sys::SupportRequestIndexCondition, kind: Kind) -> *mut pg_sys::List {
    unsafe {
        let r = &mut *req;
        let none = std::ptr::null_mut();
        if kind == Kind::All {
            return none;
        }
        if r.opfamily != pg_sys::INTEGER_BTREE_FAM_OID || r.indexarg as usize != kind.key_arg() {
            return none;
        }
        // To cost the index condition the planner evaluates the array and estimates each element
        // (scalararraysel): planning time grows with the set. Offer it only where it can win.
        if !r.index.is_null() && unique_lookup((*r.index).rel) {
            return none;
        }
        if too_large_for_an_index(kind) {
            return none;
        }
        if r.node.is_null() || (*r.node).type_ != pg_sys::NodeTag::T_FuncExpr {
            return none;
        }
        let call = r.node.cast::<pg_sys::FuncExpr>();
        let key = list_nth((*call).args, kind.key_arg());
        if key.is_null() || pg_sys::exprType(key) != pg_sys::INT8OID {
            return none;
        }
        // The array function's arguments must not depend on the indexed row.
        let array_args = match kind {
            Kind::Shared => {
                let (tbl, access) = (list_nth((*call).args, 0), list_nth((*call).args, 2));
                if !is_const(tbl) || !is_const(access) {
                    return none;
                }
                let l = pg_sys::lappend(std::ptr::null_mut(), pg_sys::copyObjectImpl(tbl.cast()));
                pg_sys::lappend(l, pg_sys::copyObjectImpl(access.cast()))
            }
            Kind::Subtree | Kind::Team | Kind::All => std::ptr::null_mut(),
        };
        let (name, argtypes) = kind.array_function();
        let names = pg_sys::lappend(
            pg_sys::lappend(
                std::ptr::null_mut(),
                pg_sys::makeString(pg_sys::pstrdup(crate::catalog::SCHEMA.as_ptr())).cast(),
            ),
            pg_sys::makeString(pg_sys::pstrdup(name.as_ptr())).cast(),
        );
        let funcid = pg_sys::LookupFuncName(names, argtypes.len() as i32, argtypes.as_ptr(), true);
        if funcid == pg_sys::InvalidOid {
            return none;
        }
        let array = pg_sys::palloc0(std::mem::size_of::<pg_sys::FuncExpr>()).cast::<pg_sys::FuncExpr>();
        (*array).xpr.type_ = pg_sys::NodeTag::T_FuncExpr;
        (*array).funcid = funcid;
        (*array).funcresulttype = pg_sys::INT8ARRAYOID;
        (*array).funcretset = false;
        (*array).funcvariadic = false;
        (*array).funcformat = pg_sys::CoercionForm::COERCE_EXPLICIT_CALL;
        (*array).funccollid = pg_sys::InvalidOid;
        (*array).inputcollid = (*call).inputcollid;
        (*array).args = array_args;
        (*array).location = -1;

        let saop =
            pg_sys::palloc0(std::mem::size_of::<pg_sys::ScalarArrayOpExpr>()).cast::<pg_sys::ScalarArrayOpExpr>();
        (*saop).xpr.type_ = pg_sys::NodeTag::T_ScalarArrayOpExpr;
        (*saop).opno = INT8_EQUAL_OPERATOR;
        (*saop).opfuncid = pg_sys::Oid::from_u32(pg_sys::F_INT8EQ);
        (*saop).hashfuncid = pg_sys::InvalidOid;
        (*saop).negfuncid = pg_sys::InvalidOid;
        (*saop).useOr = true;
        (*saop).inputcollid = pg_sys::InvalidOid;
        let operands = pg_sys::lappend(std::ptr::null_mut(), pg_sys::copyObjectImpl(key.cast()));
        (*saop).args = pg_sys::lappend(operands, array.cast());
        (*saop).location = -1;

        // Exact: `f(owner)` is true iff `owner = ANY(set)`, so no recheck of the call is needed.
        r.lossy = false;
        pg_sys::lappend(std::ptr::null_mut(), saop.cast())
    }
}

/// The part of the directory above which an index on the owner is not offered: the rows of more
/// than this share of the people are spread over nearly every page, where a sequential scan
/// with the O(1) probe is as fast, and estimating the array would cost more than it saves.
const INDEX_SHARE_OF_DIRECTORY: f64 = 0.05;

/// Whether the current person's set (subtree or team) is larger than an index can help with.
/// Shares are per table and few: always offered.
fn too_large_for_an_index(kind: Kind) -> bool {
    if kind == Kind::Shared {
        return false;
    }
    let Some(dir) = cache::directory_if_configured() else { return false };
    let Some(person) = Caller::current(&dir.config.identity).person(&dir) else { return false };
    let members = match kind {
        Kind::Team => dir.team(person).len(),
        _ => dir.subtree(person).len(),
    };
    members as f64 > INDEX_SHARE_OF_DIRECTORY * dir.directory().len().max(1) as f64
}

/// BTEqualStrategyNumber.
const BTREE_EQUAL: i32 = 3;

/// Whether the scan's own conditions pin at most one row through a unique index (`id = $1`,
/// every key column equal to a constant or parameter): a point lookup, which an index on the
/// owner cannot beat, so offering one would only make the planner estimate the person's set.
unsafe fn unique_lookup(rel: *mut pg_sys::RelOptInfo) -> bool {
    unsafe {
        if rel.is_null() {
            return false;
        }
        let indexes = (*rel).indexlist;
        let n = if indexes.is_null() { 0 } else { (*indexes).length as usize };
        (0..n).any(|i| {
            let index = list_nth(indexes, i).cast::<pg_sys::IndexOptInfo>();
            if !(*index).unique || !(*index).indpred.is_null() || (*index).nkeycolumns <= 0 {
                return false;
            }
            (0..(*index).nkeycolumns as usize).all(|col| {
                let attno = *(*index).indexkeys.add(col);
                let family = *(*index).opfamily.add(col);
                attno > 0 && has_equality(rel, attno, family)
            })
        })
    }
}

/// Whether `rel` has a restriction `column = constant or parameter` with an equality operator of
/// `family` (either side).
unsafe fn has_equality(rel: *mut pg_sys::RelOptInfo, attno: i32, family: pg_sys::Oid) -> bool {
    unsafe {
        let quals = (*rel).baserestrictinfo;
        let n = if quals.is_null() { 0 } else { (*quals).length as usize };
        (0..n).any(|i| {
            let rinfo = list_nth(quals, i).cast::<pg_sys::RestrictInfo>();
            let clause = (*rinfo).clause.cast::<pg_sys::Node>();
            if clause.is_null() || (*clause).type_ != pg_sys::NodeTag::T_OpExpr {
                return false;
            }
            let op = clause.cast::<pg_sys::OpExpr>();
            let (a, b) = (strip(list_nth((*op).args, 0)), strip(list_nth((*op).args, 1)));
            let is_column = |n: *mut pg_sys::Node| {
                !n.is_null()
                    && (*n).type_ == pg_sys::NodeTag::T_Var
                    && i64::from((*n.cast::<pg_sys::Var>()).varno) == i64::from((*rel).relid)
                    && i32::from((*n.cast::<pg_sys::Var>()).varattno) == attno
            };
            let is_value = |n: *mut pg_sys::Node| {
                !n.is_null() && matches!((*n).type_, pg_sys::NodeTag::T_Const | pg_sys::NodeTag::T_Param)
            };
            ((is_column(a) && is_value(b)) || (is_column(b) && is_value(a)))
                && pg_sys::get_op_opfamily_strategy((*op).opno, family) == BTREE_EQUAL
        })
    }
}

/// The expression under binary-compatible casts.
unsafe fn strip(mut node: *mut pg_sys::Node) -> *mut pg_sys::Node {
    unsafe {
        while !node.is_null() && (*node).type_ == pg_sys::NodeTag::T_RelabelType {
            node = (*node.cast::<pg_sys::RelabelType>()).arg.cast();
        }
        node
    }
}
