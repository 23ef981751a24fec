//! rowsec's core: everything the extension decides that needs no database, so it is tested with
//! plain `cargo test -p rowsec-core` (no pgrx, no PostgreSQL). The extension (`extension/`) reads
//! rows through PostgreSQL, hands them to these types and answers SQL calls with their results.

pub mod access;
pub mod audit;
pub mod config;
pub mod diagnostic;
pub mod directory;
pub mod idset;
pub mod limits;
pub mod monitoring;
pub mod plans;
pub mod requests;
pub mod sets;
pub mod shares;
pub mod token;
