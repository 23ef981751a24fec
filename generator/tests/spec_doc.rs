//! What a user reads must live in the repository and agree with the shared contract: the
//! language reference (docs/spec.md) holds the contract verbatim, the example schema is the
//! contract's, and every relative link in the README resolves in a plain clone.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The shared contract beside the repository (present here and in CI, absent in a user's clone).
fn shared(file: &str) -> Option<String> {
    std::fs::read_to_string(root().join("../shared/spec").join(file)).ok()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_language_reference_holds_the_contract_verbatim() {
    let doc = read("docs/spec.md");
    let start =
        doc.find("\n# rowsec spec, version 1").map(|i| i + 1).expect("docs/spec.md starts the contract with its title");
    let end = doc.find("\n# rowsec's additions").expect("docs/spec.md has rowsec's additions after the contract");
    let copied = &doc[start..end];
    match shared("SPEC.md") {
        Some(contract) => assert_eq!(
            copied.trim_end(),
            contract.trim_end(),
            "docs/spec.md is out of step with ../shared/spec/SPEC.md: copy it again"
        ),
        None => eprintln!("../shared/spec/SPEC.md is not here: compared nothing"),
    }
}

#[test]
fn the_example_schema_is_the_contracts() {
    if let Some(contract) = shared("crm-schema.sql") {
        assert_eq!(read("examples/crm-schema.sql"), contract, "examples/crm-schema.sql differs from the contract's");
    }
}

#[test]
fn every_relative_link_in_the_readme_resolves_in_the_repository() {
    let readme = read("README.md");
    let mut checked = 0;
    for (i, _) in readme.match_indices("](") {
        let target = &readme[i + 2..];
        let target = &target[..target.find(')').unwrap()];
        if target.starts_with("http") || target.starts_with('#') {
            continue;
        }
        let path = target.split('#').next().unwrap();
        let resolved = root().join(path);
        assert!(
            resolved.exists() && resolved.canonicalize().unwrap().starts_with(root().canonicalize().unwrap()),
            "README.md links to {target}, which is not in the repository"
        );
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} links checked");
}
