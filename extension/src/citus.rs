//! rowsec on Citus (docs/distributed.md): every node enforces, each from its own copy.
//!
//! Citus runs the policies of a distributed table on the workers, against the shards, so every
//! node needs rowsec's configuration and the directory. The directory is a reference table: each
//! node reads it from its local placement (a shard table of the same columns), and the statement
//! trigger that invalidates caches, created on the coordinator's table, is propagated by Citus to
//! every placement, so a change reaches each node's backends at their next transaction. rowsec's
//! configuration and the shares are reference tables too ([`share_config`]), read the same way.
//! Nothing here runs without the `citus` extension.

use crate::errors::{while_doing, RowsecError};
use crate::types::RegClass;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

/// Whether the `citus` extension exists in this database.
pub fn installed() -> bool {
    unsafe { pg_sys::get_extension_oid(c"citus".as_ptr(), true) != pg_sys::InvalidOid }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// No Citus: a single PostgreSQL.
    Single,
    /// The node that holds the metadata and receives the application's statements.
    Coordinator,
    /// A worker: it holds shards and enforces the policies on them.
    Worker,
}

/// What this node is in a Citus cluster.
pub fn node() -> Result<Node, RowsecError> {
    if !installed() {
        return Ok(Node::Single);
    }
    let coordinator = Spi::get_one::<bool>("SELECT pg_catalog.citus_is_coordinator()")
        .map_err(|e| RowsecError::internal("asking Citus whether this node is the coordinator", e))?;
    Ok(if coordinator == Some(true) { Node::Coordinator } else { Node::Worker })
}

/// The relation to read the rows of `relid` from on this node: `relid` itself, or for a Citus
/// reference table its placement on this node (the shell table on a node is empty or stale).
pub fn local_placement(relid: pg_sys::Oid, what: &str) -> Result<pg_sys::Oid, RowsecError> {
    let name = || crate::catalog::relation_name(relid);
    match distribution_column(relid)? {
        // Not a Citus table (or no Citus): a plain local table.
        None => Ok(relid),
        Some(Some(_)) => Err(RowsecError::new(
            PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            format!("{what} {} is a distributed table", name()),
            "Every Citus node reads the whole directory when it enforces a policy: each node needs all of its rows.",
            format!(
                "Make it a reference table on the coordinator: SELECT undistribute_table('{0}'); SELECT create_reference_table('{0}');",
                name()
            ),
        )),
        Some(None) => local_shards(relid, what)?.into_iter().next().ok_or_else(|| {
            RowsecError::new(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("{what} {} has no placement on this node", name()),
                "rowsec reads the directory on every Citus node from the node's own copy of the reference table.",
                "Make it a reference table (SELECT create_reference_table(...)), register the coordinator \
                 (SELECT citus_set_coordinator_host(...)) and, after adding a worker, SELECT replicate_reference_tables();",
            )
        }),
    }
}

/// The shards of the Citus table `relid` that this node holds (a reference table: its one
/// placement), as relations here. Citus's catalogs live in pg_catalog; operators are qualified
/// so that no search_path of the caller's can change what this reads.
fn local_shards(relid: pg_sys::Oid, what: &str) -> Result<Vec<pg_sys::Oid>, RowsecError> {
    let shards = Spi::connect(|c| {
        let rows = c.select(
            "SELECT pg_catalog.to_regclass(pg_catalog.shard_name(s.logicalrelid, s.shardid))::pg_catalog.oid \
             FROM pg_catalog.pg_dist_shard s JOIN pg_catalog.pg_dist_placement pl ON pl.shardid OPERATOR(pg_catalog.=) s.shardid \
             WHERE s.logicalrelid OPERATOR(pg_catalog.=) $1 \
               AND pl.groupid OPERATOR(pg_catalog.=) (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g)",
            None,
            &[RegClass(relid).into()],
        )?;
        rows.map(|r| r.get::<pg_sys::Oid>(1)).collect::<Result<Vec<_>, _>>()
    })
    .map_err(|e: pgrx::spi::SpiError| {
        RowsecError::internal(format!("finding the placements of {what} on this node"), e)
    })?;
    Ok(shards.into_iter().flatten().filter(|s| *s != pg_sys::InvalidOid).collect())
}

/// The relation `name` (a qualified name) names on this node, if any.
pub fn relation_named(name: &str) -> Result<Option<pg_sys::Oid>, RowsecError> {
    Spi::get_one_with_args::<pg_sys::Oid>("SELECT pg_catalog.to_regclass($1)::pg_catalog.oid", &[name.into()])
        .map(|o| o.filter(|o| *o != pg_sys::InvalidOid))
        .map_err(|e| RowsecError::internal(format!("looking up {name} by name"), e))
}

/// How the Citus table `relid` is distributed: `None` when it is not a Citus table (or there is
/// no Citus), `Some(None)` for a reference table, `Some(Some(column))` for a distributed one.
pub fn distribution_column(relid: pg_sys::Oid) -> Result<Option<Option<String>>, RowsecError> {
    if !installed() {
        return Ok(None);
    }
    Spi::connect(|c| {
        let rows = c.select(
            "SELECT CASE WHEN p.partkey IS NOT NULL AND p.partkey OPERATOR(pg_catalog.<>) '' \
                    THEN pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) END \
             FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1",
            Some(1),
            &[RegClass(relid).into()],
        )?;
        match rows.into_iter().next() {
            None => Ok(None),
            Some(row) => Ok(Some(row.get::<String>(1)?)),
        }
    })
    .map_err(|e: pgrx::spi::SpiError| {
        RowsecError::internal(format!("asking Citus how {} is distributed", crate::catalog::relation_name(relid)), e)
    })
}

/// The directory on this node: the stored OID on a single node; on Citus the relation that
/// `name` (rowsec.config.directory_name) names here, since a worker that received the row by a
/// binary copy (a worker added later) holds the coordinator's OID.
pub fn directory_here(stored: pg_sys::Oid, name: Option<&str>) -> Result<pg_sys::Oid, RowsecError> {
    let Some(name) = name.filter(|_| installed()) else { return Ok(stored) };
    relation_named(name)?.ok_or_else(|| {
        RowsecError::new(
            PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
            format!("the rowsec directory {name} does not exist on this node"),
            "rowsec.config names the directory by the name it had when rowsec.configure ran.",
            crate::errors::HINT_COMPILE,
        )
    })
}

/// Runs `f` (DDL on the directory) with `citus.enable_unsafe_triggers` on, as Citus asks for
/// triggers on its tables, and back to what it was afterwards. rowsec's triggers on the directory
/// touch nothing but the node they fire on (its caches, its audit trail).
pub fn with_triggers_allowed<R>(f: impl FnOnce() -> R) -> R {
    if !installed() {
        return f();
    }
    let before = Spi::get_one::<String>("SELECT pg_catalog.current_setting('citus.enable_unsafe_triggers')")
        .ok()
        .flatten()
        .unwrap_or_else(|| "off".to_owned());
    let set = |v: &str| {
        Spi::run_with_args("SELECT pg_catalog.set_config('citus.enable_unsafe_triggers', $1, true)", &[v.into()])
            .unwrap_or_else(|e| RowsecError::internal("setting citus.enable_unsafe_triggers", e).raise())
    };
    set("on");
    let r = f();
    set(&before);
    r
}

/// On a Citus coordinator, makes rowsec.config and rowsec.shares reference tables (once each);
/// elsewhere nothing. Called by rowsec.configure before it writes the configuration, so that the
/// write reaches every worker in the writer's transaction, as does every later share or unshare
/// (and a worker added later gets both with `replicate_reference_tables()`). Every node reads
/// them with scans of its placements, never with a query: a query of a Citus table from inside a
/// shard's query on a worker is refused. Their statement triggers, which Citus copies to every
/// placement, invalidate the caches of every backend on the node they fire on.
///
/// rowsec.shares has no foreign key to itself (sql/schema.sql says why). Its `tbl` is an OID,
/// the coordinator's or (rows Citus copied by a statement) the worker's own: Citus nodes match
/// shares by `tbl_name` instead (catalog.rs).
///
/// Not the registry of protected tables, nor the requests: rowsec queries them on the
/// coordinator only (`rowsec.share`, requests, limits).
pub fn share_config() -> Result<(), RowsecError> {
    if node()? != Node::Coordinator {
        return Ok(());
    }
    let table = |name: &std::ffi::CStr| {
        crate::catalog::extension_relation(name)
            .ok_or_else(|| RowsecError::not_configured("The rowsec extension's tables are missing."))
    };
    make_reference_table(
        table(c"config")?,
        "CREATE TRIGGER rowsec_config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rowsec.config \
         FOR EACH STATEMENT EXECUTE FUNCTION rowsec.invalidate_caches()",
    )?;
    // Its trigger, rowsec_shares_changed, is the extension's (sql/finalize.sql).
    make_reference_table(table(c"shares")?, "")
}

/// The owner of row `key` of the distributed table `tbl`, on a worker, for a write share's
/// check (`rowsec.shared_write_keeps_owner`, whose policy passes the key and owner columns:
/// `key_att` and `owner_att` are their numbers in the shard the policy runs on). The registry of
/// protected tables is the coordinator's, and a query of a Citus table is refused inside a
/// shard's query: the row is read from this node's shards of `tbl`, as the extension owner,
/// under the statement's snapshot. `Ok(None)` when this node has no such row (the check then
/// fails: the update is refused, never let through).
pub fn row_owner_here(tbl: pg_sys::Oid, key: i64, key_att: i16, owner_att: i16) -> Result<Option<i64>, RowsecError> {
    let shards = local_shards(tbl, &crate::catalog::relation_name(tbl))?;
    let _owner = crate::owner::AsRole::switch(crate::owner::extension_owner());
    for shard in shards {
        let column = |att: i16| unsafe {
            let n = pg_sys::get_attname(shard, att, true);
            (!n.is_null()).then(|| std::ffi::CStr::from_ptr(n).to_string_lossy().into_owned())
        };
        let (Some(key_column), Some(owner_column)) = (column(key_att), column(owner_att)) else { continue };
        let q = format!(
            "SELECT {}::pg_catalog.int8 FROM {} WHERE {} OPERATOR(pg_catalog.=) $1",
            pgrx::spi::quote_identifier(&owner_column),
            crate::catalog::relation_name(shard),
            pgrx::spi::quote_identifier(&key_column),
        );
        if let Some(owner) = crate::registry::select_int8_read_only(&q, key)? {
            return Ok(Some(owner));
        }
    }
    Ok(None)
}

/// Makes rowsec's table `relid` a reference table unless it is a Citus table already, creating
/// its invalidation trigger first (`trigger`, when not empty).
fn make_reference_table(relid: pg_sys::Oid, trigger: &str) -> Result<(), RowsecError> {
    if distribution_column(relid)?.is_some() {
        return Ok(());
    }
    let doing = format!("making {} a Citus reference table", crate::catalog::relation_name(relid));
    with_triggers_allowed(|| {
        while_doing(&doing, || {
            if !trigger.is_empty() {
                Spi::run(trigger)?;
            }
            Spi::run_with_args("SELECT pg_catalog.create_reference_table($1)", &[RegClass(relid).into()])
        })
    })
    .map_err(|e| RowsecError::internal(&doing, e))
}
