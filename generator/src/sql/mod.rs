//! SQL generation: plain Rust, no database.
pub mod audit;
pub mod condition;
pub mod extension_api;
pub mod ident;
pub mod masking;
pub mod policy;
pub mod script;
pub mod statement;
pub mod template;
