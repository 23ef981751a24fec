//! rowsec against a live database, through the `postgres` crate: reading the catalog, planning
//! and applying a compiled spec, verifying a database against its spec, explaining and
//! previewing a person's access, a security health check and the manager review.
//!
//! The spec itself, the SQL it compiles to and the oracle of what it means are
//! `rowsec_generator`'s, which stays database-free.

pub mod catalog;
pub mod connect;
pub mod doctor;
pub mod error;
pub mod explain;
pub mod people;
pub mod pgtap;
pub mod plan;
pub mod preview;
pub mod review;
pub mod verify;

pub use error::Error;
