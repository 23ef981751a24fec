//! The one-screen summary `rowsec check` prints for a valid spec.

use std::fmt::Write;

use crate::model::{Command, Identity, Scope};
use crate::resolve::scope;
use crate::Loaded;

/// The summary: the spec's parts and each role's scope per table and command.
pub fn render(loaded: &Loaded) -> String {
    let spec = &loaded.spec;
    let d = &spec.directory;
    let mut s = String::new();
    let _ = writeln!(s, "{}: valid (version {}, sha256 {})", loaded.file, spec.version, &loaded.sha256[..12]);
    if loaded.schema.is_some() {
        let _ = writeln!(s, "  tables and columns checked against the schema");
    }
    let opt = |c: &Option<String>| c.clone().unwrap_or_else(|| "-".into());
    let _ = writeln!(
        s,
        "directory: {}.{} (id {}, manager {}, team {}, login {}, active {})",
        d.table.schema,
        d.table.name,
        d.id,
        d.manager,
        opt(&d.team),
        opt(&d.login),
        opt(&d.active)
    );
    let _ = match &spec.identity {
        Identity::Login => writeln!(s, "identity:  login (current_user matched against {})", opt(&d.login)),
        Identity::Setting(n) => writeln!(s, "identity:  setting {n} (the person's id, set per transaction)"),
    };
    let _ = writeln!(s, "tables ({}):", spec.tables.len());
    for t in spec.tables.values() {
        let mut notes = vec![format!("key {}, owner {}", t.key, t.owner)];
        if t.sharing {
            notes.push("sharing".into());
        }
        if spec.audit.records_data_of(&t.name) {
            notes.push("audited".into());
        }
        if let Some(a) = &t.always {
            notes.push(format!("always {a}"));
        }
        for (c, k) in &t.columns {
            notes.push(format!("{c}:{k}"));
        }
        let _ = writeln!(s, "  {}.{}  {}", t.name.schema, t.name.name, notes.join(", "));
    }
    let _ = writeln!(s, "roles ({}), scope per table as select/insert/update/delete:", spec.roles.len());
    let letter = |sc: Scope| match sc {
        Scope::None => '-',
        Scope::Own => 'o',
        Scope::Team => 't',
        Scope::Subtree => 's',
        Scope::All => 'A',
    };
    let width = spec.roles.keys().map(String::len).max().unwrap_or(4).max(4);
    let header: Vec<String> =
        spec.tables.values().map(|t| format!("{:<8}", t.name.name.chars().take(8).collect::<String>())).collect();
    let _ = writeln!(s, "  {:<width$}  {}  fields", "role", header.join(" "));
    for r in spec.roles.values() {
        let cells: Vec<String> = spec
            .tables
            .values()
            .map(|t| {
                let c: String = Command::ALL.iter().map(|&c| letter(scope(&spec.levels, r, &t.name, c))).collect();
                format!("{c:<8}")
            })
            .collect();
        let fields: Vec<String> = r.fields.iter().map(|(k, v)| format!("{k}={}", v.as_str())).collect();
        let _ = writeln!(
            s,
            "  {:<width$}  {}  {}",
            r.name,
            cells.join(" "),
            if fields.is_empty() { "-".into() } else { fields.join(", ") }
        );
    }
    let _ = writeln!(s, "  (A all, s subtree, t team, o own, - none; `rowsec matrix` has the full table)");
    let readers =
        if spec.audit.readers.is_empty() { "superusers only".to_owned() } else { spec.audit.readers.join(", ") };
    let _ = writeln!(
        s,
        "audit: {} table(s) with every row change recorded; trail readers: {readers}",
        spec.audit.data.len()
    );
    let _ = match spec.requests {
        Some(r) => writeln!(s, "requests: access requests up to {} days", r.max_days),
        None => writeln!(s, "requests: none (no `requests:` key)"),
    };
    s
}
