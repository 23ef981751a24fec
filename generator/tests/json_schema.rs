//! The JSON Schema (docs/rowsec.schema.json) agrees with the compiler on shape: every spec the
//! repository holds as valid passes it, and every bad spec is classified below by hand: the
//! ones a YAML parser refuses, the structurally invalid ones (the schema must reject them,
//! which is what an editor shows while typing), and the ones only `rowsec check` can find
//! (names that must agree across parts or with the database: the schema must accept them, or
//! it would be stricter than the language).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rowsec_generator::init::{self, Template};
use rowsec_generator::json_schema::JSON_SCHEMA;
use rowsec_generator::Schema;

/// Refused by the YAML parser (serde_yaml, as an editor's): the schema never sees them.
const NOT_YAML: &[&str] = &[
    "01-yaml-syntax-error.yaml",
    "16-duplicate-role.yaml",
    "36-duplicate-directory-key.yaml",
    "38-two-documents.yaml",
    "40-role-key-is-a-list.yaml",
];

/// Wrong shape: an unknown or missing key, a value of the wrong type, an unknown scope,
/// command, access or identity. The schema must reject each.
const STRUCTURAL: &[&str] = &[
    "02-unknown-top-level-key.yaml",
    "03-unknown-table-key-and-missing-owner.yaml",
    "04-unknown-role-key.yaml",
    "05-missing-directory.yaml",
    "07-unknown-scope.yaml",
    "08-unknown-command.yaml",
    "10-unknown-access.yaml",
    "24-identity-setting-invalid.yaml",
    "27-unsupported-version.yaml",
    "29-many-problems-at-once.yaml",
    "31-bad-table-override.yaml",
    "32-empty-file.yaml",
    "33-yaml-alias.yaml",
    "37-unknown-class-and-access.yaml",
    "39-tables-as-a-list.yaml",
    "40-adopt-not-boolean.yaml",
    "41-level-is-a-list.yaml",
    "42-empty-and-nul-names.yaml",
    "46-unknown-identity.yaml",
    "50-unknown-scope-in-a-level.yaml",
    "51-requests-max-days-zero.yaml",
    "51-unknown-command-in-a-level.yaml",
    "52-requests-max-days-not-a-number.yaml",
    "52-unknown-scope-in-a-role-override.yaml",
    "53-audit-and-requests-shape.yaml",
    "53-scope-not-a-name.yaml",
    "55-unreadable-table.yaml",
    "56-unreadable-tables-and-levels.yaml",
    "57-unreadable-directory-columns.yaml",
    "62-table-without-a-body.yaml",
    "63-limits-unknown-command-and-negative.yaml",
    "65-identity-signed-not-a-boolean.yaml",
    "66-null-document.yaml",
    "67-monitoring-bad-rules.yaml",
    "71-classes-unknown-mask.yaml",
];

/// Well shaped, wrong in meaning: a name another part or the database must have, a rule
/// across parts, an identifier PostgreSQL would refuse. The schema accepts each.
const SEMANTIC: &[&str] = &[
    "06-unknown-level.yaml",
    "09-unknown-class.yaml",
    "11-role-names-unknown-table.yaml",
    "12-table-not-in-schema.yaml",
    "13-owner-column-not-in-schema.yaml",
    "14-classed-column-not-in-schema.yaml",
    "15-key-and-owner-of-wrong-type.yaml",
    "17-always-not-boolean.yaml",
    "18-always-subquery.yaml",
    "19-always-volatile-function.yaml",
    "20-always-unknown-column.yaml",
    "21-reserved-role-names.yaml",
    "23-table-in-reserved-schema.yaml",
    "25-identity-login-without-login-column.yaml",
    "26-team-scope-without-team-column.yaml",
    "28-update-without-select.yaml",
    "30-directory-column-types.yaml",
    "34-directory-table-protected.yaml",
    "35-always-with-a-second-statement.yaml",
    "43-column-name-too-long.yaml",
    "44-bad-table-names.yaml",
    "45-bad-class-name.yaml",
    "47-table-listed-twice.yaml",
    "48-always-syntax-error.yaml",
    "49-always-session-value.yaml",
    "50-audit-unknown-table-and-reader.yaml",
    "54-unknown-level-with-overrides.yaml",
    "58-table-not-in-schema-with-classed-columns.yaml",
    "59-update-without-select-on-every-table.yaml",
    "60-bad-class-name-granted-by-a-role.yaml",
    "61-team-scope-used-many-times-without-team-column.yaml",
    "63-references-names-a-table-not-under-tables.yaml",
    "64-limit-on-a-command-the-role-cannot-do.yaml",
    "64-references-column-not-bigint.yaml",
    "68-monitoring-alerts-without-reads.yaml",
    "69-monitoring-duplicate-rule.yaml",
    "70-masked-view-schema-holds-spec-tables.yaml",
    "72-classes-class-no-table-uses.yaml",
    "73-scoped-read-of-a-class-not-masked.yaml",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(JSON_SCHEMA).expect("the schema is JSON");
    jsonschema::draft7::new(&schema).expect("the schema is a valid draft-07 schema")
}

/// YAML as an editor reads it: through serde_yaml's own value, which refuses duplicate keys
/// (straight into JSON, a later key would silently win), then as JSON.
fn yaml(text: &str) -> Result<serde_json::Value, String> {
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    serde_json::to_value(value).map_err(|e| e.to_string())
}

/// The schema's complaints about `text`, one line each.
fn errors(v: &jsonschema::Validator, text: &str, label: &str) -> Vec<String> {
    let value = yaml(text).unwrap_or_else(|e| panic!("{label}: not YAML: {e}"));
    v.iter_errors(&value).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    out.sort();
    out
}

#[test]
fn every_valid_spec_of_the_repository_passes() {
    let v = validator();
    let mut checked = 0;
    for path in files("examples").into_iter().chain(files("tests/fixtures")) {
        let text = std::fs::read_to_string(&path).unwrap();
        let label = path.display().to_string();
        assert!(rowsec_generator::load_str(&label, &text, None).is_ok(), "{label} is not a valid spec");
        let errors = errors(&v, &text, &label);
        assert!(errors.is_empty(), "{label}: {errors:#?}");
        checked += 1;
    }
    assert!(checked >= 6, "{checked}");
}

#[test]
fn the_contracts_crm_yaml_with_its_monitoring_part_passes() {
    // Beside the repository here and in CI; absent in a user's clone.
    let Ok(text) = std::fs::read_to_string(root().join("../shared/spec/crm.yaml")) else {
        eprintln!("../shared/spec/crm.yaml is not here: checked the example's monitoring below only");
        return;
    };
    assert!(text.contains("monitoring:"));
    let errors = errors(&validator(), &text, "shared/spec/crm.yaml");
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn monitoring_alerts_are_checked_by_name() {
    let v = validator();
    // The example without its own `monitoring:` block (up to `requests:`), so each case adds one.
    let example = std::fs::read_to_string(root().join("examples/crm.yaml")).unwrap();
    let (before, rest) = example.split_once("\nmonitoring:").expect("the example has monitoring:");
    let base = format!("{before}\n{}", &rest[rest.find("\nrequests:").expect("requests: follows")..]);
    let with = |monitoring: &str| format!("{base}\nmonitoring:\n{monitoring}");
    let good = "  reads: true\n  alerts:\n    - { name: bulk_read, rows: 2000, within: 10m }\n    - { name: off_hours, outside: \"08:00-20:00\", days: mon-fri, timezone: Asia/Shanghai }\n";
    assert_eq!(errors(&v, &with(good), "good"), Vec::<String>::new());
    for bad in [
        "  reads: sometimes\n",
        "  alerts:\n    - { name: bulk_read, rows: 2000 }\n",
        "  alerts:\n    - { name: bulk_read, rows: 2000, within: ten minutes }\n",
        "  alerts:\n    - { name: off_hours, outside: \"8-20\" }\n",
        "  alerts:\n    - { name: off_hours, outside: \"08:00-20:00\", days: weekdays }\n",
        "  alerts:\n    - { name: slow_read, rows: 1 }\n",
    ] {
        assert!(!errors(&v, &with(bad), bad).is_empty(), "accepted:\n{bad}");
    }
}

#[test]
fn every_template_of_rowsec_init_passes() {
    let v = validator();
    let crm = Schema::parse(&std::fs::read_to_string(root().join("examples/crm-schema.sql")).unwrap()).unwrap();
    let guessed = init::guess(&crm, "crm-schema.sql").unwrap();
    for template in [Template::ThreeLevel, Template::TwoLevel, Template::Blank] {
        for layout in [init::crm_example(), guessed.clone()] {
            let text = init::render(template, &layout, "rowsec init");
            let errors = errors(&v, &text, template.name());
            assert!(errors.is_empty(), "{}: {errors:#?}\n{text}", template.name());
        }
    }
}

#[test]
fn every_bad_spec_is_classified_and_the_schema_agrees() {
    let v = validator();
    let all: BTreeSet<String> = files("generator/tests/bad-specs")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let classified: BTreeSet<String> =
        NOT_YAML.iter().chain(STRUCTURAL).chain(SEMANTIC).map(|s| (*s).to_owned()).collect();
    assert_eq!(classified.len(), NOT_YAML.len() + STRUCTURAL.len() + SEMANTIC.len(), "a file is listed twice");
    assert_eq!(all, classified, "classify each new bad spec in one list of this file");
    let read = |name: &str| std::fs::read_to_string(root().join("generator/tests/bad-specs").join(name)).unwrap();
    for name in NOT_YAML {
        assert!(yaml(&read(name)).is_err(), "{name} parses as YAML");
    }
    for name in STRUCTURAL {
        assert!(!errors(&v, &read(name), name).is_empty(), "{name}: the schema accepts it");
    }
    for name in SEMANTIC {
        let errors = errors(&v, &read(name), name);
        assert!(errors.is_empty(), "{name}: the schema rejects what only check should: {errors:#?}");
    }
}
