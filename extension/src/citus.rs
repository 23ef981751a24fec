//! rowsec on Citus (docs/distributed.md): every node enforces, each from its own copy.
//!
//! Citus runs the policies of a distributed table on the workers, against the shards, so every
//! node needs rowsec's configuration and the directory. The directory is a reference table: each
//! node reads it from its local placement (a shard table of the same columns), and the statement
//! trigger that invalidates caches, created on the coordinator's table, is propagated by Citus to
//! every placement, so a change reaches each node's backends at their next transaction. rowsec's
//! configuration is a reference table too ([`share_config`]), read the same way. Nothing here
//! runs without the `citus` extension.

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
    if !installed() {
        return Ok(relid);
    }
    // Citus's catalogs live in pg_catalog; operators are qualified so that no search_path of the
    // caller's can change what this reads.
    let found = Spi::connect(|c| {
        let rows = c.select(
            "SELECT p.partmethod::pg_catalog.text, \
               (SELECT pg_catalog.to_regclass(pg_catalog.shard_name(p.logicalrelid, s.shardid))::pg_catalog.oid \
                FROM pg_catalog.pg_dist_shard s JOIN pg_catalog.pg_dist_placement pl \
                  ON pl.shardid OPERATOR(pg_catalog.=) s.shardid \
                WHERE s.logicalrelid OPERATOR(pg_catalog.=) p.logicalrelid \
                  AND pl.groupid OPERATOR(pg_catalog.=) (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g) \
                LIMIT 1) \
             FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1",
            Some(1),
            &[RegClass(relid).into()],
        )?;
        match rows.into_iter().next() {
            None => Ok(None),
            Some(row) => Ok(Some((row.get::<String>(1)?, row.get::<pg_sys::Oid>(2)?))),
        }
    })
    .map_err(|e: pgrx::spi::SpiError| {
        RowsecError::internal(format!("finding the placement of {what} on this node"), e)
    })?;
    let name = crate::catalog::relation_name(relid);
    match found {
        // Not a Citus table: a plain local table.
        None => Ok(relid),
        Some((method, _)) if method.as_deref() != Some("n") => Err(RowsecError::new(
            PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            format!("{what} {name} is a distributed table"),
            "Every Citus node reads the whole directory when it enforces a policy: each node needs all of its rows.",
            format!("Make it a reference table on the coordinator: SELECT undistribute_table('{name}'); SELECT create_reference_table('{name}');"),
        )),
        Some((_, Some(placement))) if placement != pg_sys::InvalidOid => Ok(placement),
        Some(_) => Err(RowsecError::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("{what} {name} has no placement on this node"),
            "rowsec reads the directory on every Citus node from the node's own copy of the reference table.",
            "Make it a reference table (SELECT create_reference_table(...)), register the coordinator \
             (SELECT citus_set_coordinator_host(...)) and, after adding a worker, SELECT replicate_reference_tables();",
        )),
    }
}

/// The directory on this node: the stored OID on a single node; on Citus the relation that
/// `name` (rowsec.config.directory_name) names here, since a worker that received the row by a
/// binary copy (a worker added later) holds the coordinator's OID.
pub fn directory_here(stored: pg_sys::Oid, name: Option<&str>) -> Result<pg_sys::Oid, RowsecError> {
    let Some(name) = name.filter(|_| installed()) else { return Ok(stored) };
    let found =
        Spi::get_one_with_args::<pg_sys::Oid>("SELECT pg_catalog.to_regclass($1)::pg_catalog.oid", &[name.into()])
            .map_err(|e| RowsecError::internal("looking up the rowsec directory by name", e))?;
    found.filter(|o| *o != pg_sys::InvalidOid).ok_or_else(|| {
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

/// On a Citus coordinator, makes rowsec.config a reference table (once); elsewhere nothing.
/// Called by rowsec.configure before it writes the configuration, so that the write reaches every
/// worker in the writer's transaction (and a worker added later gets it with
/// `replicate_reference_tables()`). Every node reads it with a scan of its placement, never with a
/// query: a query of a Citus table from inside a shard's query on a worker is refused. Its
/// statement trigger invalidates the caches of every backend on the node it fires on.
///
/// Not the registry of protected tables (rowsec queries it, on the coordinator only: sharing,
/// requests, limits), nor yet rowsec.shares (queried too, and Citus re-creates its foreign key
/// to itself on the workers, where the extension made it already): a worker has no shares, so a
/// row shared to a person is not readable through Citus (docs/distributed.md).
pub fn share_config() -> Result<(), RowsecError> {
    if node()? != Node::Coordinator {
        return Ok(());
    }
    let distributed = Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p \
                        WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'rowsec.config'::pg_catalog.regclass)",
    )
    .map_err(|e| RowsecError::internal("asking Citus whether rowsec.config is a reference table", e))?;
    if distributed == Some(true) {
        return Ok(());
    }
    let doing = "making rowsec.config a Citus reference table";
    with_triggers_allowed(|| {
        while_doing(doing, || {
            Spi::run(
                "CREATE TRIGGER rowsec_config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rowsec.config \
                 FOR EACH STATEMENT EXECUTE FUNCTION rowsec.invalidate_caches()",
            )?;
            Spi::run("SELECT pg_catalog.create_reference_table('rowsec.config'::pg_catalog.regclass)")
        })
    })
    .map_err(|e| RowsecError::internal(doing, e))
}
