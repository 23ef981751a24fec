//! Configuration (owner only: EXECUTE is revoked from PUBLIC) and diagnostics.

use crate::cache;
use crate::catalog::{self, Config};
use crate::citus;
use crate::errors::{require, required, while_doing, OrRaise, RowsecError};
use crate::registry;
use crate::types::{RegClass, SqlName, Text};
use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use rowsec_core::config::Identity;
use rowsec_core::directory::describe_cycles;

const TRIGGER: &str = "rowsec_directory_changed";
/// The row trigger that records directory changes in the audit trail (`rowsec.audit_directory()`).
const AUDIT_TRIGGER: &str = "rowsec_directory_audit";
/// On Citus, the directory's TRUNCATE trigger, apart: Citus puts a table's triggers on its
/// placements (where the invalidation must fire) except those for TRUNCATE (docs/distributed.md).
const TRUNCATE_TRIGGER: &str = "rowsec_directory_truncated";

fn has_unique_index(relid: pg_sys::Oid, column: &str) -> Result<bool, RowsecError> {
    let found = Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a \
           ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0] \
         WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND i.indisunique AND i.indnkeyatts OPERATOR(pg_catalog.=) 1 \
           AND i.indpred IS NULL AND a.attname OPERATOR(pg_catalog.=) $2::pg_catalog.name)",
        &[RegClass(relid).into(), column.into()],
    );
    required(found, "checking the directory's unique indexes", "exists")
}

fn current_config() -> Result<Option<Config>, RowsecError> {
    let Some(oid) = catalog::extension_relation(c"config") else { return Ok(None) };
    let oid = citus::local_placement(oid, "rowsec.config")?;
    let snap = catalog::ScanSnapshot::take();
    catalog::read_config(oid, &snap)
}

/// Validates the directory and stores the configuration; installs the invalidation trigger.
#[pg_extern(volatile, parallel_unsafe)]
#[allow(clippy::too_many_arguments)]
fn configure(
    directory: Option<RegClass>,
    id_column: Option<SqlName>,
    manager_column: Option<SqlName>,
    team_column: default!(Option<SqlName>, "NULL"),
    login_column: default!(Option<SqlName>, "NULL"),
    active_column: default!(Option<SqlName>, "NULL"),
    identity: default!(Option<Text>, "'login'"),
    identity_setting: default!(Option<Text>, "NULL"),
) {
    let directory = require(directory, "directory");
    let (id_column, manager_column) = (require(id_column, "id_column"), require(manager_column, "manager_column"));
    let identity = require(identity, "identity");
    let (identity, identity_setting) = (identity.as_str(), identity_setting.as_ref().map(Text::as_str));
    let login_column = login_column.map(|n| n.0);
    let identity = Identity::from_arguments(identity, identity_setting, login_column.is_some())
        .unwrap_or_else(|e| RowsecError::invalid_argument(&e).raise());
    let config = Config {
        directory: directory.0,
        id_column: id_column.0,
        manager_column: manager_column.0,
        team_column: team_column.map(|n| n.0),
        login_column,
        active_column: active_column.map(|n| n.0),
        identity,
    };
    catalog::directory_shape(&config).or_raise();
    if !has_unique_index(config.directory, &config.id_column).or_raise() {
        RowsecError::new(
            PgSqlErrorCode::ERRCODE_INVALID_TABLE_DEFINITION,
            format!(
                "the id column \"{}\" of {} is not unique",
                config.id_column,
                catalog::relation_name(config.directory)
            ),
            "rowsec needs a PRIMARY KEY or UNIQUE constraint (a non-partial unique index on that column alone).",
            format!(
                "ALTER TABLE {} ADD PRIMARY KEY ({});",
                catalog::relation_name(config.directory),
                pgrx::spi::quote_identifier(&config.id_column)
            ),
        )
        .raise();
    }
    let previous = current_config().or_raise();
    // On a Citus worker the triggers live on the directory's placement, where Citus put them
    // from the coordinator (DDL on a Citus table is the coordinator's).
    let node = citus::node().or_raise();
    let triggers_here = node != citus::Node::Worker;
    if previous.as_ref() == Some(&config)
        && (!triggers_here
            || trigger_exists(config.directory, TRIGGER).or_raise()
                && trigger_exists(config.directory, AUDIT_TRIGGER).or_raise())
    {
        return; // Same arguments: nothing changes.
    }
    citus::share_config().or_raise();
    let (identity_text, setting) = config.identity.to_stored();
    let args: [DatumWithOid; 9] = [
        RegClass(config.directory).into(),
        config.id_column.as_str().into(),
        config.manager_column.as_str().into(),
        config.team_column.clone().into(),
        config.login_column.clone().into(),
        config.active_column.clone().into(),
        identity_text.into(),
        setting.into(),
        catalog::relation_name(config.directory).into(),
    ];
    Spi::run_with_args(
        "INSERT INTO rowsec.config AS c (singleton, directory, id_column, manager_column, team_column, login_column, active_column, identity, identity_setting, directory_name) \
         VALUES (true, $1, $2::pg_catalog.name, $3::pg_catalog.name, $4::pg_catalog.name, $5::pg_catalog.name, $6::pg_catalog.name, $7, $8, $9) \
         ON CONFLICT (singleton) DO UPDATE SET directory = EXCLUDED.directory, id_column = EXCLUDED.id_column, \
           manager_column = EXCLUDED.manager_column, team_column = EXCLUDED.team_column, login_column = EXCLUDED.login_column, \
           active_column = EXCLUDED.active_column, identity = EXCLUDED.identity, identity_setting = EXCLUDED.identity_setting, \
           directory_name = EXCLUDED.directory_name",
        &args,
    )
    .unwrap_or_else(|e| RowsecError::internal("storing the configuration", e).raise());
    if let Some(old) =
        previous.filter(|p| triggers_here && p.directory != config.directory && catalog::relation_exists(p.directory))
    {
        let table = catalog::relation_name(old.directory);
        for trigger in [TRIGGER, AUDIT_TRIGGER, TRUNCATE_TRIGGER] {
            let doing = format!("removing the trigger {trigger} from the previous directory {table}");
            citus::with_triggers_allowed(|| {
                while_doing(&doing, || Spi::run(&format!("DROP TRIGGER IF EXISTS {trigger} ON {table}")))
            })
            .unwrap_or_else(|e| RowsecError::internal(doing.as_str(), e).raise());
        }
    }
    if triggers_here && !trigger_exists(config.directory, TRIGGER).or_raise() {
        let table = catalog::relation_name(config.directory);
        let doing = format!("creating the trigger {TRIGGER} on the directory {table}");
        // One trigger for every event on a single node; on Citus, TRUNCATE in its own.
        let (events, truncate) = if node == citus::Node::Single {
            ("INSERT OR UPDATE OR DELETE OR TRUNCATE", None)
        } else {
            ("INSERT OR UPDATE OR DELETE", Some(TRUNCATE_TRIGGER))
        };
        citus::with_triggers_allowed(|| {
            while_doing(&doing, || {
                Spi::run(&format!(
                    "CREATE TRIGGER {TRIGGER} AFTER {events} ON {table} \
                     FOR EACH STATEMENT EXECUTE FUNCTION rowsec.invalidate_caches()"
                ))?;
                match truncate {
                    Some(name) => Spi::run(&format!(
                        "CREATE TRIGGER {name} AFTER TRUNCATE ON {table} \
                         FOR EACH STATEMENT EXECUTE FUNCTION rowsec.invalidate_caches()"
                    )),
                    None => Ok(()),
                }
            })
        })
        .unwrap_or_else(|e| RowsecError::internal(doing.as_str(), e).raise());
    }
    if triggers_here && !trigger_exists(config.directory, AUDIT_TRIGGER).or_raise() {
        let table = catalog::relation_name(config.directory);
        let doing = format!("creating the trigger {AUDIT_TRIGGER} on the directory {table}");
        citus::with_triggers_allowed(|| {
            while_doing(&doing, || {
                Spi::run(&format!(
                    "CREATE TRIGGER {AUDIT_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION rowsec.audit_directory()"
                ))
            })
        })
        .unwrap_or_else(|e| RowsecError::internal(doing.as_str(), e).raise());
    }
    invalidate_everywhere();
}

fn trigger_exists(relid: pg_sys::Oid, trigger: &str) -> Result<bool, RowsecError> {
    let found = Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid OPERATOR(pg_catalog.=) $1 AND tgname OPERATOR(pg_catalog.=) $2::pg_catalog.name)",
        &[RegClass(relid).into(), trigger.into()],
    );
    required(found, "looking for the directory triggers", "exists")
}

/// Every backend reloads: others after commit, this one at its next command.
fn invalidate_everywhere() {
    if let Some(oid) = catalog::extension_relation(c"config") {
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(oid) };
    }
    cache::invalidate_local();
}

/// Registers (or updates) a protected table.
#[pg_extern(volatile, parallel_unsafe)]
fn protect_table(tbl: RegClass, key_column: SqlName, owner_column: SqlName, sharing: bool) {
    registry::register(tbl.0, &key_column.0, &owner_column.0, sharing).or_raise();
}

/// Forgets a protected table (its shares stay, for the record, but grant nothing without policies).
#[pg_extern(volatile, parallel_unsafe)]
fn unprotect_table(tbl: RegClass) {
    registry::forget(tbl.0).or_raise();
}

/// The cache of this backend: version (per-backend load number), people, when and how fast it
/// was loaded, the manager cycles found and ids that appear more than once (these two are also
/// written to the server log, once per version, and never sent to clients).
#[pg_extern(stable, parallel_safe)]
// pgrx reads the column names from the signature, so the tuple type cannot be an alias.
#[allow(clippy::type_complexity)]
fn directory_status() -> TableIterator<
    'static,
    (
        name!(version, i64),
        name!(people, i64),
        name!(active_people, i64),
        name!(loaded_at, Option<TimestampWithTimeZone>),
        name!(load_ms, f64),
        name!(cycles, Vec<String>),
        name!(duplicate_ids, Vec<i64>),
    ),
> {
    let dir = cache::directory();
    let d = dir.directory();
    let active = (0..d.len() as u32).filter(|&p| d.is_active(p)).count();
    TableIterator::once((
        dir.version as i64,
        d.len() as i64,
        active as i64,
        TimestampWithTimeZone::try_from(dir.loaded_at).ok(),
        dir.load_ms,
        describe_cycles(d.cycles()),
        d.duplicate_ids().to_vec(),
    ))
}
