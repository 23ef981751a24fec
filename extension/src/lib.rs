//! rowsec: the functions that row-level security policies compiled by `rowsec compile` call.
//!
//! Layout: the decisions that need no database (directory graph, membership sets) live in the
//! `rowsec-core` crate; this crate is the PostgreSQL shell around it. It reads tables
//! (`catalog`), caches per backend (`cache`) and per call site (`callsite`), resolves the caller
//! (`identity`), answers policies (`policy`), helps the planner (`support`), shares rows
//! (`sharing`) and is configured through `admin`.

use pgrx::prelude::*;

mod admin;
mod cache;
mod callsite;
mod catalog;
mod errors;
mod identity;
mod owner;
mod policy;
mod registry;
mod sharing;
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
    cache::register_invalidation_callback();
}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
