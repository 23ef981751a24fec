//! Every file in bad-specs/ is a spec rowsec must reject; the snapshot is exactly what the user
//! reads (place, offending text, fix), reviewed in diffs like squawk's rule tests.

use std::collections::BTreeSet;
use std::path::Path;

use rowsec_generator::codes::Code;
use rowsec_generator::{load_str, Error, Schema};

fn schema() -> Schema {
    Schema::parse(include_str!("../../examples/crm-schema.sql")).unwrap()
}

#[test]
fn every_bad_spec_is_rejected_with_its_place_and_a_fix() {
    insta::glob!("bad-specs/*.yaml", |path| {
        let source = std::fs::read_to_string(path).unwrap();
        let label = Path::new(path).file_name().unwrap().to_string_lossy();
        match load_str(&label, &source, Some(schema())) {
            Err(Error::InvalidSpec(report)) => insta::assert_snapshot!(report.to_string()),
            Err(other) => panic!("{label}: unexpected error kind: {other}"),
            Ok(_) => panic!("{label}: was accepted"),
        }
    });
}

/// Like squawk's rules, each code has a small file that shows it. The four about files rather
/// than specs, and the three about `--backend sql` (a valid spec the SQL backend cannot
/// enforce), are shown in cli.rs.
#[test]
fn every_diagnostic_code_has_a_bad_spec_that_shows_it() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-specs");
    let mut shown = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        if let Err(Error::InvalidSpec(report)) = load_str("x.yaml", &source, Some(schema())) {
            shown.extend(report.diagnostics.iter().map(|d| d.code.code()));
        }
    }
    for code in Code::ALL.iter().filter(|c| {
        ![
            Code::UnreadableFile,
            Code::SchemaSyntax,
            Code::SchemaUnsupported,
            Code::NoDirectoryTable,
            Code::UnenforcedOnSqlBackend,
            Code::SignedIdentityOnSqlBackend,
            Code::DollarInSettingOnSqlBackend,
        ]
        .contains(c)
    }) {
        assert!(shown.contains(code.code()), "no file in tests/bad-specs shows {code}");
    }
}

/// One mistake, one problem: a file that starts with `# problems: N` is rejected with exactly N
/// problems, none of them a consequence of another (a misspelt scope is not reported again as
/// every role's "may update but may not select").
#[test]
fn a_mistake_is_reported_once_and_not_again_through_what_follows_from_it() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-specs");
    let mut counted = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        let Some(n) = source.lines().next().and_then(|l| l.strip_prefix("# problems: ")) else { continue };
        let n: usize = n.trim().parse().unwrap();
        let label = path.file_name().unwrap().to_string_lossy();
        let Err(Error::InvalidSpec(report)) = load_str(&label, &source, Some(schema())) else {
            panic!("{label} accepted")
        };
        assert_eq!(report.diagnostics.len(), n, "{report}");
        counted += 1;
    }
    assert!(counted >= 12, "only {counted} files say how many problems they have");
}

#[test]
fn there_are_at_least_25_bad_specs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-specs");
    assert!(std::fs::read_dir(dir).unwrap().count() >= 25);
}

#[test]
fn all_problems_of_a_file_are_reported_not_only_the_first() {
    let source = include_str!("bad-specs/29-many-problems-at-once.yaml");
    let Err(Error::InvalidSpec(report)) = load_str("many.yaml", source, Some(schema())) else { panic!("accepted") };
    assert!(report.diagnostics.len() >= 7, "{report}");
}

#[test]
fn the_reference_spec_is_valid_with_and_without_the_schema() {
    let source = include_str!("../../examples/crm.yaml");
    load_str("crm.yaml", source, Some(schema())).unwrap();
    load_str("crm.yaml", source, None).unwrap();
}
