pub mod always;
pub mod diagnostic;
pub mod model;
pub mod schema;
pub mod sql;
pub mod yaml;
