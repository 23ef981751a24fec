//! End-to-end harness for rowsec: a throwaway cluster and the CRM fixture. The tests in
//! `tests/tests/` compare the database against the oracle of SPEC.md in
//! `rowsec_generator::oracle`.

pub mod citus;
pub mod cluster;
pub mod differential;
pub mod fixture;
