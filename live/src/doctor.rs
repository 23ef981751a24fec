//! `rowsec doctor`: a scored security health check of a server and database, each finding with
//! severity, what, why and the fix. The server's own views are the sources: pg_hba lines from
//! `pg_hba_file_rules`, settings from `pg_settings`, password hashes from `pg_authid`, the
//! archiver from `pg_stat_archiver`. With a spec, rowsec's own checks are added (the directory's
//! people against the server's logins and the spec's roles, expired shares).
//!
//! Each check fires at most once, listing every object it found: the score counts problems by
//! kind, not by how many tables share one.

use postgres::Client;
use rowsec_generator::model::Spec;
use serde::Serialize;

use crate::catalog::{self, quote_ident, quoted};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Points a finding of this severity takes off 100.
    pub fn weight(self) -> u32 {
        match self {
            Severity::Low => 2,
            Severity::Medium => 5,
            Severity::High => 10,
            Severity::Critical => 20,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub severity: Severity,
    pub what: String,
    pub why: &'static str,
    pub fix: String,
    /// The objects (lines, roles, tables, ...) the check found.
    pub objects: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub database: String,
    pub score: u32,
    pub checks_run: Vec<&'static str>,
    pub findings: Vec<Finding>,
}

struct Check {
    id: &'static str,
    severity: Severity,
    why: &'static str,
    /// Rows of (object) the check finds.
    sql: &'static str,
    what: &'static str,
    fix: &'static str,
}

/// Checks that need only the server: one query each, one row per offending object.
const SERVER_CHECKS: &[Check] = &[
    Check {
        id: "hba-trust",
        severity: Severity::Critical,
        why: "trust lets anyone who reaches the server log in as any role of the line, with no password",
        sql: "SELECT 'pg_hba.conf line ' || line_number || ': ' || type || ' ' || array_to_string(database, ',') || ' ' \
              || array_to_string(user_name, ',') || coalesce(' ' || address, '') || coalesce('/' || netmask, '') || ' trust' \
              FROM pg_catalog.pg_hba_file_rules WHERE auth_method = 'trust' AND error IS NULL ORDER BY line_number",
        what: "pg_hba.conf lets connections in without authentication (trust)",
        fix: "use scram-sha-256 (or peer for local administration) on these lines, then SELECT pg_reload_conf()",
    },
    Check {
        id: "hba-weak-password",
        severity: Severity::High,
        why: "password sends the password in clear text; md5 hashes can be replayed and cracked",
        sql: "SELECT 'pg_hba.conf line ' || line_number || ': ' || type || ' ' || array_to_string(database, ',') || ' ' \
              || array_to_string(user_name, ',') || coalesce(' ' || address, '') || coalesce('/' || netmask, '') || ' ' || auth_method \
              FROM pg_catalog.pg_hba_file_rules WHERE auth_method IN ('password', 'md5') AND error IS NULL ORDER BY line_number",
        what: "pg_hba.conf accepts password or md5 authentication",
        fix: "change these lines to scram-sha-256 (after every role has a SCRAM password), then SELECT pg_reload_conf()",
    },
    Check {
        id: "hba-open-without-ssl",
        severity: Severity::High,
        why: "a line open to every address without SSL lets anyone on the network try to log in and read traffic in clear",
        sql: "SELECT 'pg_hba.conf line ' || line_number || ': ' || type || ' ' || coalesce(address, '') || coalesce('/' || netmask, '') \
              FROM pg_catalog.pg_hba_file_rules WHERE type IN ('host', 'hostnossl') AND error IS NULL \
              AND (address = 'all' OR address IN ('0.0.0.0', '::') AND netmask IN ('0.0.0.0', '::')) ORDER BY line_number",
        what: "pg_hba.conf accepts connections from any address without SSL",
        fix: "use hostssl for lines open to the network, or restrict the address to the networks that need it",
    },
    Check {
        id: "password-encryption",
        severity: Severity::High,
        why: "new passwords are stored as md5 hashes, which are weak",
        sql: "SELECT 'password_encryption = ' || setting FROM pg_catalog.pg_settings \
              WHERE name = 'password_encryption' AND setting <> 'scram-sha-256'",
        what: "password_encryption is not scram-sha-256",
        fix: "ALTER SYSTEM SET password_encryption = 'scram-sha-256'; SELECT pg_reload_conf(); then reset each password",
    },
    Check {
        id: "md5-passwords",
        severity: Severity::High,
        why: "an md5 hash is enough to log in where md5 authentication is accepted, and is easy to crack",
        sql: "SELECT rolname::text FROM pg_catalog.pg_authid WHERE rolpassword LIKE 'md5%' ORDER BY 1",
        what: "roles still hold md5 password hashes",
        fix: "with password_encryption = scram-sha-256, set each of these roles' password again (\\password ROLE)",
    },
    Check {
        id: "ssl-off",
        severity: Severity::High,
        why: "without SSL, passwords (for password/md5) and all data cross the network in clear",
        sql: "SELECT 'ssl = off' FROM pg_catalog.pg_settings WHERE name = 'ssl' AND setting = 'off'",
        what: "the server does not offer SSL",
        fix: "install a certificate (ssl_cert_file, ssl_key_file), ALTER SYSTEM SET ssl = on, SELECT pg_reload_conf()",
    },
    Check {
        id: "login-without-password",
        severity: Severity::Low,
        why: "a login without a password can only get in through trust, peer, ident or a certificate; with trust anyone can be it",
        sql: "SELECT rolname::text FROM pg_catalog.pg_authid WHERE rolcanlogin AND rolpassword IS NULL AND oid <> 10 \
              AND NOT rolsuper ORDER BY 1",
        what: "login roles have no password",
        fix: "give each a password (\\password ROLE), or make it NOLOGIN if nobody logs in as it",
    },
    Check {
        id: "password-without-expiry",
        severity: Severity::Low,
        why: "passwords that never expire stay valid after people leave or leak them",
        sql: "SELECT rolname::text FROM pg_catalog.pg_authid WHERE rolcanlogin AND rolpassword IS NOT NULL \
              AND rolvaliduntil IS NULL AND oid <> 10 ORDER BY 1",
        what: "login roles have a password without VALID UNTIL",
        fix: "ALTER ROLE ... VALID UNTIL 'date' as your password policy requires",
    },
    Check {
        id: "superuser-login",
        severity: Severity::High,
        why: "a superuser bypasses every rule, row-level security included; every extra one is a key to everything",
        sql: "SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolsuper AND rolcanlogin AND oid <> 10 ORDER BY 1",
        what: "superusers other than the bootstrap superuser can log in",
        fix: "ALTER ROLE ... NOSUPERUSER (or NOLOGIN) and grant what the work needs instead",
    },
    Check {
        id: "bypassrls-login",
        severity: Severity::High,
        why: "BYPASSRLS ignores every row-level security policy: the role sees and changes every record",
        sql: "SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolbypassrls AND rolcanlogin AND NOT rolsuper ORDER BY 1",
        what: "roles that bypass row-level security can log in",
        fix: "ALTER ROLE ... NOBYPASSRLS",
    },
    Check {
        id: "owner-column-without-rls",
        severity: Severity::High,
        why: "a table that records an owner is per-person data; without row-level security everyone with a privilege sees every row",
        sql: "SELECT c.oid::regclass::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.relkind IN ('r', 'p') AND NOT c.relrowsecurity \
              AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'rowsec') AND n.nspname NOT LIKE 'pg_temp%' \
              AND n.nspname NOT LIKE 'pg_toast%' \
              AND EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND NOT a.attisdropped \
                          AND a.attname IN ('owner_id', 'owner', 'owned_by', 'assigned_to', 'user_id')) ORDER BY 1",
        what: "tables with an owner column have no row-level security",
        fix: "protect them in the spec (tables: TABLE: { key, owner }) and rowsec apply",
    },
    Check {
        id: "rls-not-forced",
        severity: Severity::Medium,
        why: "the table's owner bypasses row-level security that is not forced",
        sql: "SELECT c.oid::regclass::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.relrowsecurity AND NOT c.relforcerowsecurity AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
              ORDER BY 1",
        what: "tables have row-level security enabled but not forced",
        fix: "ALTER TABLE ... FORCE ROW LEVEL SECURITY",
    },
    Check {
        id: "rls-without-policy",
        severity: Severity::Medium,
        why: "row-level security without a policy hides every row from everyone but the owner: usually a half-done change",
        sql: "SELECT c.oid::regclass::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.relrowsecurity AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
              AND NOT EXISTS (SELECT FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid) ORDER BY 1",
        what: "tables have row-level security but no policy",
        fix: "add the table to the spec and rowsec apply, or write its policies",
    },
    Check {
        id: "policy-always-true",
        severity: Severity::High,
        why: "a permissive policy that is always true gives its roles every row, whatever the other policies say",
        sql: "SELECT p.polrelid::regclass::text || ' ' || quote_ident(p.polname) FROM pg_catalog.pg_policy p \
              WHERE p.polpermissive AND (pg_catalog.pg_get_expr(p.polqual, p.polrelid) = 'true' \
                 OR (p.polqual IS NULL AND pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) = 'true')) ORDER BY 1",
        what: "permissive policies are always true",
        fix: "DROP POLICY ... (rowsec verify shows which policies the spec does not explain)",
    },
    Check {
        id: "security-definer-search-path",
        severity: Severity::High,
        why: "a SECURITY DEFINER function without a pinned search_path can be made to run a caller's objects with its owner's rights",
        sql: "SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
              WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
              AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search\\_path=%') \
              AND (p.proacl IS NULL OR EXISTS (SELECT FROM pg_catalog.aclexplode(p.proacl) x \
                   WHERE x.grantee = 0 AND x.privilege_type = 'EXECUTE')) ORDER BY 1",
        what: "SECURITY DEFINER functions executable by PUBLIC have no pinned search_path",
        fix: "ALTER FUNCTION ... SET search_path = pg_catalog, pg_temp (and REVOKE EXECUTE ... FROM PUBLIC where it is not for everyone)",
    },
    Check {
        id: "public-create-on-schema",
        severity: Severity::Medium,
        why: "anyone can create objects there, e.g. functions or operators that shadow the ones your queries mean",
        sql: "SELECT n.nspname::text FROM pg_catalog.pg_namespace n CROSS JOIN LATERAL pg_catalog.aclexplode(n.nspacl) x \
              WHERE x.grantee = 0 AND x.privilege_type = 'CREATE' ORDER BY 1",
        what: "PUBLIC may CREATE in schemas",
        fix: "REVOKE CREATE ON SCHEMA ... FROM PUBLIC",
    },
    Check {
        id: "backups",
        severity: Severity::High,
        why: "without working WAL archiving there is no point-in-time recovery: a mistake or a breach since the last dump is lost",
        sql: "SELECT 'archive_mode = off' FROM pg_catalog.pg_settings WHERE name = 'archive_mode' AND setting = 'off' \
              UNION ALL \
              SELECT 'archiver failing since ' || last_failed_time || ' (' || coalesce(last_failed_wal, '') || ')' \
              FROM pg_catalog.pg_stat_archiver \
              WHERE last_failed_time IS NOT NULL AND (last_archived_time IS NULL OR last_failed_time > last_archived_time)",
        what: "WAL archiving is off or failing",
        fix: "set archive_mode = on and an archive_command (or a backup tool such as pgBackRest) and watch pg_stat_archiver",
    },
];

pub fn run(client: &mut Client, database: &str, spec: Option<&Spec>) -> Result<Report> {
    catalog::require_superuser(client, "read pg_hba_file_rules, pg_authid and every table")?;
    let mut findings = Vec::new();
    let mut checks_run = Vec::new();
    for c in SERVER_CHECKS {
        checks_run.push(c.id);
        let objects: Vec<String> = client
            .query(c.sql, &[])
            .map_err(Error::query(format!("doctor: check {}", c.id)))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !objects.is_empty() {
            findings.push(Finding {
                check: c.id,
                severity: c.severity,
                what: c.what.to_owned(),
                why: c.why,
                fix: c.fix.to_owned(),
                objects,
            });
        }
    }
    if let Some(spec) = spec {
        catalog::check_spec_tables(client, spec)?;
        rowsec_checks(client, spec, &mut findings, &mut checks_run)?;
    }
    let lost: u32 = findings.iter().map(|f| f.severity.weight()).sum();
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.check.cmp(b.check)));
    Ok(Report { database: database.to_owned(), score: 100u32.saturating_sub(lost), checks_run, findings })
}

fn rowsec_checks(
    client: &mut Client,
    spec: &Spec,
    findings: &mut Vec<Finding>,
    run: &mut Vec<&'static str>,
) -> Result<()> {
    let d = &spec.directory;
    let has_extension = catalog::has_extension(client)?;
    let roles: Vec<String> = spec.roles.keys().cloned().collect();
    let dir = quoted(&d.table);
    let id = quote_ident(&d.id);
    let mut check = |id: &'static str,
                     severity,
                     what: &str,
                     why,
                     fix: &str,
                     sql: String,
                     params: &[&(dyn postgres::types::ToSql + Sync)]|
     -> Result<()> {
        run.push(id);
        let objects: Vec<String> = client
            .query(&sql, params)
            .map_err(Error::query(format!("doctor: check {id}")))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !objects.is_empty() {
            findings.push(Finding { check: id, severity, what: what.to_owned(), why, fix: fix.to_owned(), objects });
        }
        Ok(())
    };
    if let Some(login) = &d.login {
        let login = quote_ident(login);
        if let Some(active) = &d.active {
            let active = quote_ident(active);
            check(
                "inactive-person-can-log-in",
                Severity::High,
                "people marked inactive in the directory can still log in",
                "rowsec shows them nothing, but a working login of a departed person is an open door for everything else it can reach",
                "ALTER ROLE ... NOLOGIN for each (and revoke their spec roles)",
                format!(
                    "SELECT 'person ' || d.{id} || ' (' || r.rolname || ')' FROM {dir} d JOIN pg_catalog.pg_roles r \
                     ON r.rolname = d.{login}::text WHERE r.rolcanlogin AND NOT coalesce(d.{active}::boolean, false) ORDER BY 1"
                ),
                &[],
            )?;
        }
        check(
            "login-without-spec-role",
            Severity::Low,
            "people with a login hold none of the spec's roles",
            "they can log in but see nothing protected: usually an onboarding step that was missed, or a login that should be gone",
            "GRANT the person's spec role to their login, or make it NOLOGIN",
            format!(
                "SELECT 'person ' || d.{id} || ' (' || r.rolname || ')' FROM {dir} d JOIN pg_catalog.pg_roles r \
                 ON r.rolname = d.{login}::text WHERE r.rolcanlogin \
                 AND NOT EXISTS (SELECT FROM unnest($1::text[]) s JOIN pg_catalog.pg_roles g ON g.rolname = s \
                                 WHERE pg_catalog.pg_has_role(r.oid, g.oid, 'MEMBER')) ORDER BY 1"
            ),
            &[&roles],
        )?;
        check(
            "spec-role-member-not-in-directory",
            Severity::High,
            "logins hold spec roles but are nobody in the directory",
            "rowsec resolves no person for them, so they see nothing today; the grant is left over or was made by hand, and the day someone adds them to the directory they get the role's rights unreviewed",
            "REVOKE the spec role from these logins, or add the person to the directory",
            format!(
                "SELECT DISTINCT m.rolname::text || ' (member of ' || g.rolname || ')' FROM pg_catalog.pg_auth_members am \
                 JOIN pg_catalog.pg_roles g ON g.oid = am.roleid JOIN pg_catalog.pg_roles m ON m.oid = am.member \
                 WHERE g.rolname = ANY ($1::text[]) AND m.rolname <> ALL ($1::text[]) \
                 AND NOT EXISTS (SELECT FROM {dir} d WHERE d.{login}::text = m.rolname) ORDER BY 1"
            ),
            &[&roles],
        )?;
    }
    if has_extension {
        check(
            "expired-shares",
            Severity::Low,
            "expired shares were not cleaned up",
            "they grant nothing, but they clutter reviews and audits; the cleanup job is probably not running",
            "schedule SELECT rowsec.cleanup_expired_shares() (pg_cron or your scheduler)",
            "SELECT 'share ' || id || ' on ' || tbl::text || ' key ' || row_key || ' expired ' || expires_at FROM rowsec.shares \
             WHERE expires_at <= now() ORDER BY id"
                .to_owned(),
            &[],
        )?;
    }
    Ok(())
}

impl Report {
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "rowsec doctor: database {}\nscore: {}/100 ({} checks, {} finding(s))",
            self.database,
            self.score,
            self.checks_run.len(),
            self.findings.len()
        );
        for f in &self.findings {
            let sev = format!("{:?}", f.severity).to_uppercase();
            let _ = writeln!(s, "\n[{sev}] {}: {}", f.check, f.what);
            for o in f.objects.iter().take(20) {
                let _ = writeln!(s, "    - {o}");
            }
            if f.objects.len() > 20 {
                let _ = writeln!(s, "    ... and {} more", f.objects.len() - 20);
            }
            let _ = writeln!(s, "  why: {}\n  fix: {}", f.why, f.fix);
        }
        if self.findings.is_empty() {
            let _ = writeln!(s, "\nno findings");
        }
        s
    }
}
