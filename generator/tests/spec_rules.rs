//! SPEC.md rules that hold without a database, checked on the reference spec through what
//! `compile` and `matrix` are built from (`resolve::grants`).

use rowsec_generator::model::{Command, QualifiedName, Scope};
use rowsec_generator::resolve::{grants, Columns, Grant};
use rowsec_generator::{load_str, matrix, Spec};

fn crm() -> Spec {
    load_str("crm.yaml", include_str!("../../examples/crm.yaml"), None).unwrap().spec
}

fn find<'a>(g: &'a [Grant<'a>], role: &str, table: &str, command: Command) -> Option<&'a Grant<'a>> {
    let t = QualifiedName::new("crm", table);
    g.iter().find(|x| x.role == role && *x.table == t && x.command == command)
}

#[test]
fn a_named_table_override_beats_the_level_for_the_commands_it_names() {
    let spec = crm();
    let g = grants(&spec);
    assert_eq!(find(&g, "sales_rep", "invoices", Command::Select).unwrap().scope, Scope::Own);
    assert_eq!(find(&g, "sales_rep", "accounts", Command::Select).unwrap().scope, Scope::Team);
    // Not named in the override: keeps the level's.
    assert_eq!(find(&g, "sales_rep", "invoices", Command::Update).unwrap().scope, Scope::Own);
}

#[test]
fn none_on_a_table_means_no_privilege_and_no_policy_for_any_command() {
    let spec = crm();
    let g = grants(&spec);
    for c in Command::ALL {
        assert!(find(&g, "support", "invoices", c).is_none());
        assert!(find(&g, "support", "opportunities", c).is_none());
        assert!(find(&g, "marketer", "invoices", c).is_none());
    }
}

#[test]
fn star_applies_to_every_table_and_a_role_without_level_gets_only_what_star_gives() {
    let spec = crm();
    let g = grants(&spec);
    for t in ["accounts", "contacts", "opportunities", "invoices", "activities"] {
        assert_eq!(find(&g, "data_analyst", t, Command::Select).unwrap().scope, Scope::All);
        for c in [Command::Insert, Command::Update, Command::Delete] {
            assert!(find(&g, "data_analyst", t, c).is_none());
        }
    }
}

#[test]
fn a_role_without_a_class_gets_every_other_column_for_that_command() {
    let spec = crm();
    let g = grants(&spec);
    let support_read = &find(&g, "support", "accounts", Command::Select).unwrap().columns;
    assert_eq!(support_read, &Columns::AllExcept(vec!["annual_revenue", "credit_limit"]));
    // read on financial: may read, may not write.
    assert_eq!(find(&g, "sales_rep", "opportunities", Command::Select).unwrap().columns, Columns::All);
    assert_eq!(
        find(&g, "sales_rep", "opportunities", Command::Update).unwrap().columns,
        Columns::AllExcept(vec!["amount"])
    );
    // write on pii: may read and write contacts' phone and email.
    assert_eq!(find(&g, "sales_rep", "contacts", Command::Insert).unwrap().columns, Columns::All);
    // Delete is never column-restricted.
    assert_eq!(find(&g, "support", "accounts", Command::Delete).unwrap().columns, Columns::All);
    // Tables without classed columns: always whole-table.
    assert_eq!(find(&g, "support", "activities", Command::Select).unwrap().columns, Columns::All);
}

#[test]
fn the_matrix_json_is_stable() {
    let loaded = load_str("examples/crm.yaml", include_str!("../../examples/crm.yaml"), None).unwrap();
    insta::assert_snapshot!("crm_matrix_json", matrix::render(&matrix::build(&loaded), matrix::Format::Json));
    insta::assert_snapshot!("crm_matrix_text", matrix::render(&matrix::build(&loaded), matrix::Format::Text));
}

/// `rowsec check`'s summary, reviewed in diffs like the matrix.
#[test]
fn the_check_summary_is_stable() {
    let loaded = load_str("examples/crm.yaml", include_str!("../../examples/crm.yaml"), None).unwrap();
    insta::assert_snapshot!("crm_summary", rowsec_generator::summary::render(&loaded));
}

#[test]
fn the_reference_spec_audits_three_tables_for_crm_admin_and_takes_requests_for_14_days() {
    let spec = crm();
    let names: Vec<String> = spec.audit.data.iter().map(|t| t.dotted().to_string()).collect();
    assert_eq!(names, ["crm.accounts", "crm.opportunities", "crm.invoices"]);
    assert_eq!(spec.audit.readers, ["crm_admin"]);
    assert_eq!(spec.requests.map(|r| r.max_days), Some(14));
}
