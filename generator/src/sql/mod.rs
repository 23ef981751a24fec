//! SQL generation: plain Rust, no database.
pub mod extension_api;
pub mod ident;
pub mod script;
