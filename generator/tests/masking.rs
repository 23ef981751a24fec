//! `classes:` (masked columns): what the loader accepts and rejects, and the SQL the views are
//! made of. What PostgreSQL does with the views is tested in tests/tests/masking.rs.

use rowsec_generator::codes::Code;
use rowsec_generator::model::{Mask, QualifiedName, Scope};
use rowsec_generator::sql::masking;
use rowsec_generator::{compile, load_str, Error, Loaded};

const CRM: &str = include_str!("../../examples/crm.yaml");
const MASKED: &str = include_str!("../../examples/crm-masked.yaml");

fn load(text: &str) -> Result<Loaded, Vec<(Code, usize, usize, String)>> {
    load_str("spec.yaml", text, None).map_err(|e| match e {
        Error::InvalidSpec(r) => {
            r.diagnostics.into_iter().map(|d| (d.code, d.span.line, d.span.col, d.message)).collect()
        }
        other => panic!("{other}"),
    })
}

/// crm.yaml with `extra` appended and `from` replaced by `to`.
fn crm_with(from: &str, to: &str, extra: &str) -> String {
    assert!(CRM.contains(from), "{from}");
    format!("{}\n{extra}", CRM.replacen(from, to, 1))
}

/// Each problem's code and line.
fn codes(text: &str) -> Vec<(Code, usize)> {
    load(text).expect_err("rejected").into_iter().map(|(c, l, _, _)| (c, l)).collect()
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle}")) + 1
}

#[test]
fn the_masked_example_loads_with_its_classes_and_scoped_read() {
    let spec = load(MASKED).expect("crm-masked.yaml loads").spec;
    assert_eq!(spec.classes["pii"].mask, Mask::Partial);
    assert_eq!(spec.classes["contact"].mask, Mask::Email);
    let rep = &spec.roles["sales_rep"];
    assert_eq!(rep.scoped_reads.get("pii"), Some(&Scope::Own));
    // A scoped read grants no column privilege on the table.
    assert_eq!(rep.fields.get("pii"), None);
}

#[test]
fn a_spec_without_classes_compiles_with_only_the_cleanup_of_earlier_views() {
    let loaded = load(CRM).unwrap();
    assert!(loaded.spec.classes.is_empty());
    let script = compile(&loaded);
    assert!(script.contains("rowsec_masked_before"), "the cleanup block is always there");
    assert!(!script.contains("CREATE VIEW"), "no view without classes");
    assert!(script.contains("ARRAY[]::text[]"));
}

#[test]
fn unknown_mask_unused_class_and_scoped_read_without_mask_are_rejected_at_their_place() {
    let text = crm_with("requests:", "requests:", "classes:\n  pii: { mask: blur }\n");
    assert_eq!(codes(&text), vec![(Code::UnknownMask, line_of(&text, "mask: blur"))]);

    let text = crm_with("requests:", "requests:", "classes:\n  pii: { mask: null }\n  secret: { mask: null }\n");
    assert_eq!(codes(&text), vec![(Code::ClassNotUsed, line_of(&text, "secret:"))]);

    let text =
        crm_with("fields: { financial: read, pii: write }", "fields: { financial: read, pii: { read: own } }", "");
    let got = load(&text).expect_err("rejected");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, Code::ScopedReadWithoutMask);
    assert_eq!(got[0].1, line_of(&text, "pii: { read: own }"));

    let text = crm_with(
        "fields: { financial: read, pii: write }",
        "fields: { financial: read, pii: { read: mine } }",
        "classes:\n  pii: { mask: partial }\n",
    );
    assert_eq!(codes(&text)[0].0, Code::UnknownScope);
    let text = crm_with(
        "fields: { financial: read, pii: write }",
        "fields: { financial: read, pii: { write: own } }",
        "classes:\n  pii: { mask: partial }\n",
    );
    assert!(codes(&text).iter().any(|c| c.0 == Code::UnknownKey), "{:?}", codes(&text));

    let text = crm_with("requests:", "requests:", "classes:\n  pii: {}\n");
    assert!(codes(&text).iter().any(|c| c.0 == Code::MissingKey), "{:?}", codes(&text));
}

#[test]
fn a_view_schema_that_is_a_spec_schema_is_rejected() {
    // crm.accounts in schema `crm` and a table in `crm_app`: crm_app would hold both.
    let text = crm_with(
        "  crm.activities:\n    key: id\n    owner: owner_id\n",
        "  crm.activities:\n    key: id\n    owner: owner_id\n  crm_app.notes:\n    key: id\n    owner: owner_id\n",
        "classes:\n  pii: { mask: partial }\n",
    );
    let got = load(&text).expect_err("rejected");
    assert_eq!(got.iter().map(|d| d.0).collect::<Vec<_>>(), vec![Code::ViewSchemaClash], "{got:?}");
    assert_eq!(got[0].1, line_of(&text, "crm.contacts:"));
}

#[test]
fn a_column_reads_clear_for_holders_in_scope_for_scoped_readers_and_masked_otherwise() {
    let spec = load(MASKED).unwrap().spec;
    let contacts = &spec.tables[&QualifiedName::new("crm", "contacts")];
    let phone = masking::column_expression(&spec, contacts, "phone", "pii", rowsec_generator::Backend::Extension);
    assert!(phone.starts_with("CASE WHEN (SELECT pg_catalog.pg_has_role('crm_admin', 'USAGE') OR "), "{phone}");
    assert!(
        phone
            .contains("((SELECT pg_catalog.pg_has_role('sales_rep', 'USAGE')) AND owner_id = rowsec.current_person())"),
        "{phone}"
    );
    assert!(!phone.contains("'support'") && !phone.contains("'data_analyst'"), "{phone}");
    assert!(phone.contains("pg_catalog.concat('****', pg_catalog.\"right\"(phone::text, 4))"), "{phone}");
    let email = masking::column_expression(&spec, contacts, "email", "contact", rowsec_generator::Backend::Extension);
    assert!(email.contains("pg_catalog.split_part(email::text, '@', -1)"), "{email}");
    assert!(!email.contains("sales_rep', 'USAGE')) AND"), "the rep writes `contact`: clear everywhere");
    assert_eq!(masking::view_name(&contacts.name).to_string(), "crm_app.contacts");
    let tables: Vec<String> = masking::masked_tables(&spec).iter().map(|t| t.name.to_string()).collect();
    assert_eq!(tables, vec!["crm.contacts"]);
}

#[test]
fn the_masked_script_creates_one_view_with_its_filter_trigger_and_grants() {
    let script = compile(&load(MASKED).unwrap());
    assert_eq!(script.matches("-- Masked view crm_app.contacts of crm.contacts (spec: classes)").count(), 1);
    assert!(script.contains("'rowsec_sees_contacts'") && script.contains("'rowsec_write_contacts'"));
    // Every role that selects from crm.contacts reads the view; support deletes but does not write pii.
    assert!(
        script.contains("'crm_admin, cxo, data_analyst, marketer, sales_director, sales_manager, sales_rep, support'"),
        "readers"
    );
    assert!(script.contains("rowsec: masked views: %"));
}
