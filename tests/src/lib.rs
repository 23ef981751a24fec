//! End-to-end harness for rowsec: a throwaway cluster, the CRM fixture, and an oracle of
//! SPEC.md that the tests in `tests/tests/` compare the database against.

pub mod cluster;
pub mod fixture;
pub mod oracle;
