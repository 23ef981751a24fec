//! The one-screen summary `rowsec check` prints for a valid spec.

use std::fmt::Write;

use crate::model::{AlertRule, Command, Identity, Scope};
use crate::resolve::scope;
use crate::Loaded;

/// The summary: the spec's parts and each role's scope per table and command.
pub fn render(loaded: &Loaded) -> String {
    let spec = &loaded.spec;
    let d = &spec.directory;
    let mut s = String::new();
    let _ = writeln!(s, "{}: valid (version {}, sha256 {})", loaded.file, spec.version, &loaded.sha256[..12]);
    if let Some(schema) = &loaded.schema {
        let _ = writeln!(s, "  tables and columns checked against the schema");
        let _ = writeln!(s, "  schema: {}", schema.describe());
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
        Identity::SignedSetting(n) => {
            writeln!(s, "identity:  setting {n}, signed (a token: person, expiry, database, roles; keys in rowsec.identity_keys)")
        }
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
    let width = spec.roles.keys().map(|r| r.chars().count()).max().unwrap_or(4).max(4);
    // Each column as wide as its table's name, which is never cut: names alike but for their
    // ends (`opportunities`, `opportunity_lines`) must stay apart. The schema is left out
    // unless two tables share a name.
    let short = |t: &crate::model::Table| {
        let shared = spec.tables.keys().filter(|q| q.name == t.name.name).count() > 1;
        if shared {
            t.name.dotted().to_string()
        } else {
            t.name.name.clone()
        }
    };
    let names: Vec<String> = spec.tables.values().map(short).collect();
    let widths: Vec<usize> = names.iter().map(|n| n.chars().count().max(Command::ALL.len())).collect();
    let header: Vec<String> = names.iter().zip(&widths).map(|(n, w)| format!("{n:<w$}")).collect();
    let _ = writeln!(s, "  {:<width$}  {}  fields", "role", header.join(" "));
    for r in spec.roles.values() {
        let cells: Vec<String> = spec
            .tables
            .values()
            .zip(&widths)
            .map(|(t, w)| {
                let c: String = Command::ALL.iter().map(|&c| letter(scope(&spec.levels, r, &t.name, c))).collect();
                format!("{c:<w$}")
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
    let m = &spec.monitoring;
    if !m.reads {
        let _ = writeln!(s, "monitoring: none (no `monitoring.reads`)");
    } else {
        let rules: Vec<String> = m
            .alerts
            .iter()
            .map(|rule| match rule {
                AlertRule::BulkRead { rows, within, .. } => format!("bulk_read over {rows} rows in {within}"),
                AlertRule::OffHours { from, to, days, timezone } => {
                    let days: Vec<&str> = days.iter().map(|d| DAY_NAMES[usize::from(*d - 1) % 7]).collect();
                    format!("off_hours outside {from}-{to} on {} ({timezone})", days.join(","))
                }
            })
            .collect();
        let rules = if rules.is_empty() { "none".to_owned() } else { rules.join("; ") };
        let _ = writeln!(s, "monitoring: every statement on a protected table recorded; alerts: {rules}");
    }
    s
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[cfg(test)]
mod tests {
    use super::render;
    use crate::load_str;

    fn grid(spec: &str) -> Vec<String> {
        let summary = render(&load_str("s.yaml", spec, None).unwrap());
        summary.lines().skip_while(|l| !l.starts_with("roles (")).skip(1).map(str::to_owned).collect()
    }

    #[test]
    fn the_role_grid_names_every_table_in_full_and_keeps_its_columns_aligned() {
        let lines = grid(include_str!("../../examples/crm.yaml"));
        assert_eq!(lines[0], "  role            accounts activities contacts invoices opportunities  fields");
        let opportunities = lines[0].find("opportunities").unwrap();
        let sales_rep = lines.iter().find(|l| l.starts_with("  sales_rep ")).unwrap();
        assert_eq!(&sales_rep[opportunities..opportunities + 4], "tooo");
    }

    #[test]
    fn tables_of_the_same_name_in_two_schemas_are_told_apart() {
        let spec = "version: 1\n\
            directory: { table: hr.people, id: id, manager: manager_id }\n\
            identity: { setting: app.person }\n\
            tables:\n  eu.deals: { key: id, owner: owner_id }\n  us.deals: { key: id, owner: owner_id }\n  us.x: { key: id, owner: owner_id }\n\
            roles:\n  rep: { tables: { us.deals: { select: own } } }\n";
        let lines = grid(spec);
        assert_eq!(lines[0], "  role  eu.deals us.deals x     fields");
        assert_eq!(lines[1], "  rep   ----     o---     ----  -");
    }
}
