//! rowsec: the functions that row-level security policies compiled by `rowsec compile` call.
//!
//! A thin PostgreSQL shell over `rowsec-core` (`core/`), which decides everything that needs no
//! database: the directory graph, subtree/team/share sets, share access, argument and
//! configuration rules. This crate reads tables (`catalog`), caches per backend and invalidates
//! (`cache`) and per call site (`callsite`), resolves the caller (`identity`), answers policies
//! (`policy`), helps the planner (`support`) and resets this backend's cached plans when the person's
//! class changes (`plans`), keeps the protected table registry (`registry`),
//! shares rows (`sharing`, writing as the extension owner through `owner`), lists them to the
//! people concerned (`share_list`) and is configured through `admin`. The audit trail
//! (`audit`: appending, the hash chain sealed at commit, directory and data triggers; `membership`:
//! the ProcessUtility hook that records spec role grants) and access requests and attestations
//! (`requests`) complete it. Errors carry a SQLSTATE, and never a Rust backtrace (`errors`).

use pgrx::prelude::*;

mod activity;
mod admin;
mod audit;
mod boundary;
mod cache;
mod callsite;
mod catalog;
mod citus;
mod compat;
mod errors;
mod identity;
mod limits;
mod membership;
mod owner;
mod plans;
mod policy;
mod registry;
mod requests;
mod share_list;
mod sharing;
mod shmem;
mod support;
mod types;

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    include!("pg_tests.rs");
}

// The module is rowsec, not the cargo package name (rowsec-extension).
::pgrx::pg_module_magic!(name = c"rowsec", version);

pgrx::extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
pgrx::extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // Once per backend: the library is loaded once per process.
    errors::keep_backtraces_out_of_errors();
    cache::register_invalidation_callback();
    // Membership audit: sees every session's role statements when the library is in
    // shared_preload_libraries; a no-op in databases without rowsec.
    membership::install_hook();
    // Limits: executor hooks and the shared memory parallel workers count into; only when
    // preloaded (rowsec.configure_limits refuses limits otherwise).
    limits::install_hooks();
    // Plans shaped for a person carry an item the identity setting's hook can invalidate alone.
    plans::install_planner_hook();
    // Activity: rowsec.clock everywhere; the buffer's size only at server start.
    activity::define_settings(unsafe { pg_sys::process_shared_preload_libraries_in_progress });
}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        // The membership audit hook must see every session (README: postgresql.conf).
        vec!["shared_preload_libraries = 'rowsec'"]
    }
}
