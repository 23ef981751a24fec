//! `rowsec doctor`: a scored security health check of a server and database, each finding with
//! severity, what, why and the fix. The server's own views are the sources: pg_hba lines from
//! `pg_hba_file_rules`, settings from `pg_settings`, password hashes from `pg_authid`, the
//! archiver from `pg_stat_archiver`. With a spec, rowsec's own checks are added (the directory's
//! people against the server's logins and the spec's roles, expired shares).
//!
//! Each check fires at most once, listing every object it found: the score counts problems by
//! kind, not by how many tables share one.

use postgres::Client;
use rowsec_generator::model::{Identity, Spec};
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
/// The SQL backend's own schema (`rowsec`, its comment set by sql/backend/rowsec.sql, as
/// `catalog::installed_backend` reads it), for the checks that leave its objects out as they
/// leave out the extension's: a condition on `n`, pg_namespace.
macro_rules! sql_backend_schema {
    () => {
        "(n.nspname = 'rowsec' AND coalesce(pg_catalog.obj_description(n.oid, 'pg_namespace') LIKE 'rowsec SQL backend%', false))"
    };
}

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
        sql: concat!(
            "SELECT c.oid::regclass::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.relrowsecurity AND NOT c.relforcerowsecurity AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
              AND NOT (c.relowner = n.nspowner AND \n",
            sql_backend_schema!(),
            ") ORDER BY 1"
        ),
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
        id: "leakproof-functions",
        severity: Severity::High,
        why: "the planner may run a LEAKPROOF function before the row-level security policies, on rows they would hide; one that is not truly leakproof (an error or a notice with its argument) shows hidden values",
        sql: "SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
              WHERE p.proleakproof AND n.nspname <> 'pg_catalog' ORDER BY 1",
        what: "functions outside pg_catalog are marked LEAKPROOF",
        fix: "ALTER FUNCTION ... NOT LEAKPROOF, unless you have proven it reveals nothing of its arguments, whatever they are",
    },
    Check {
        id: "views-over-protected-tables",
        severity: Severity::High,
        // A view reads its tables as its owner unless it is security_invoker; a view of a
        // security_invoker view still reads as its own owner, so those are followed through.
        sql: r"WITH RECURSIVE reads (view, tbl) AS (
                 SELECT r.ev_class, d.refobjid FROM pg_catalog.pg_rewrite r
                 JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
                   AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> r.ev_class
                 JOIN pg_catalog.pg_class t ON t.oid = d.refobjid AND t.relkind IN ('r', 'p') AND t.relrowsecurity
               UNION
                 SELECT r.ev_class, reads.tbl FROM reads
                 JOIN pg_catalog.pg_class iv ON iv.oid = reads.view
                   AND EXISTS (SELECT FROM unnest(iv.reloptions) o
                               WHERE lower(o) IN ('security_invoker=true', 'security_invoker=on', 'security_invoker=yes', 'security_invoker=1'))
                 JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass
                   AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = iv.oid
                 JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid AND r.ev_class <> iv.oid)
             SELECT v.oid::regclass::text || ' (owner ' || o.rolname
                    || CASE WHEN o.rolsuper THEN ', superuser' WHEN o.rolbypassrls THEN ', BYPASSRLS' ELSE ', owner of the table' END
                    || ') reads ' || string_agg(DISTINCT t.oid::regclass::text, ', ')
             FROM reads JOIN pg_catalog.pg_class v ON v.oid = reads.view AND v.relkind IN ('v', 'm')
             JOIN pg_catalog.pg_class t ON t.oid = reads.tbl JOIN pg_catalog.pg_roles o ON o.oid = v.relowner
             WHERE NOT EXISTS (SELECT FROM unnest(v.reloptions) opt
                               WHERE lower(opt) IN ('security_invoker=true', 'security_invoker=on', 'security_invoker=yes', 'security_invoker=1'))
               AND (o.rolsuper OR o.rolbypassrls OR (v.relowner = t.relowner AND NOT t.relforcerowsecurity))
             GROUP BY v.oid, o.rolname, o.rolsuper, o.rolbypassrls ORDER BY 1",
        what: "views over tables with row-level security run as an owner that bypasses it",
        why: "a view reads its tables with its owner's rights: everyone who may select from it sees every row, whatever the policies say",
        fix: "ALTER VIEW ... SET (security_invoker = true) (PostgreSQL 15 and later), or give the view an owner under the policies; DROP a materialized view of such a table",
    },
    Check {
        id: "definer-functions-over-protected-tables",
        severity: Severity::High,
        // The body is text (names matched as whole words) except for SQL-standard bodies,
        // whose tables pg_depend records. rowsec's own helpers check the caller's rights
        // through the caller's policies (docs/security.md entry 19); the SQL backend's, owned by
        // its schema's owner, act only on proofs the caller's policies admitted, or on the
        // caller's own identity (sql/backend/rowsec.sql).
        sql: concat!(
            r"SELECT p.oid::regprocedure::text || ' (owner ' || o.rolname
                    || CASE WHEN o.rolsuper THEN ', superuser' WHEN o.rolbypassrls THEN ', BYPASSRLS' ELSE ', owner of the table' END
                    || ') names ' || string_agg(DISTINCT t.oid::regclass::text, ', ')
             FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
             JOIN pg_catalog.pg_roles o ON o.oid = p.proowner
             JOIN pg_catalog.pg_class t ON t.relkind IN ('r', 'p') AND t.relrowsecurity
             WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend e JOIN pg_catalog.pg_extension x ON x.oid = e.refobjid
                               WHERE e.classid = 'pg_catalog.pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e'
                                 AND x.extname = 'rowsec')
               AND NOT (p.proowner = n.nspowner AND ",
            sql_backend_schema!(),
            r")
               AND (o.rolsuper OR o.rolbypassrls OR (o.oid = t.relowner AND NOT t.relforcerowsecurity))
               AND (p.prosrc ~* ('\m' || regexp_replace(t.relname, '([^[:alnum:]_])', '\\\1', 'g') || '\M')
                    OR EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::regclass
                               AND d.objid = p.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = t.oid))
             GROUP BY p.oid, o.rolname, o.rolsuper, o.rolbypassrls ORDER BY 1"
        ),
        what: "SECURITY DEFINER functions that bypass row-level security name tables protected by it",
        why: "the function reads those tables with its owner's rights, so whoever may run it gets rows the policies hide from them",
        fix: "make it SECURITY INVOKER, or give it an owner under the policies (FORCE ROW LEVEL SECURITY on the table) with only the privileges it needs",
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

/// How old an identity key may get before `identity-keys` asks for a rotation.
pub const KEY_ROTATION_DAYS: i32 = 90;

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
    let backend = catalog::installed_backend(client)?;
    let has_extension = backend == Some(rowsec_generator::Backend::Extension);
    let roles: Vec<String> = spec.roles.keys().cloned().collect();
    let dir = quoted(&d.table);
    let id = quote_ident(&d.id);
    // The spec alone says whether the identity setting is signed.
    if let Identity::Setting(name) | Identity::SignedSetting(name) = &spec.identity {
        run.push("unsigned-setting-identity");
        if matches!(spec.identity, Identity::Setting(_)) {
            findings.push(Finding {
                check: "unsigned-setting-identity",
                severity: Severity::Medium,
                what: "the person comes from a setting that anyone running SQL on the connection can set".to_owned(),
                why: "a SQL injection in the application (or anyone with the pool's password) sets the setting to any person's id and acts as them",
                fix: "use identity: { setting: NAME, signed: true } and sign a token per transaction in the application (docs/spec.md)"
                    .to_owned(),
                objects: vec![format!("identity: {{ setting: {name} }} without signed: true")],
            });
        }
    }
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
        // Under setting identity the person comes from the setting, not the login, and the
        // pool's login is nobody in the directory by design (pool-login-roles looks at it).
        if spec.identity == Identity::Login {
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
    }
    // Members of a spec role, directly or through other roles, with the spec roles each holds.
    let members = "WITH RECURSIVE m (member, spec_role) AS ( \
                     SELECT am.member, g.rolname::text FROM pg_catalog.pg_auth_members am \
                     JOIN pg_catalog.pg_roles g ON g.oid = am.roleid WHERE g.rolname = ANY ($1::text[]) \
                   UNION \
                     SELECT am.member, m.spec_role FROM m JOIN pg_catalog.pg_auth_members am ON am.roleid = m.member)";
    check(
        "bypassing-members",
        Severity::High,
        "members of spec roles are superusers or have BYPASSRLS",
        "the spec's policies do not apply to them: whoever logs in as them, or SET ROLEs to them, sees and changes every row",
        "ALTER ROLE ... NOSUPERUSER NOBYPASSRLS, or REVOKE the spec role from them",
        format!(
            "{members} SELECT r.rolname::text || ' (' || CASE WHEN r.rolsuper THEN 'SUPERUSER' ELSE 'BYPASSRLS' END \
             || ', member of ' || string_agg(DISTINCT m.spec_role, ', ' ORDER BY m.spec_role) || ')' \
             FROM m JOIN pg_catalog.pg_roles r ON r.oid = m.member WHERE r.rolsuper OR r.rolbypassrls \
             GROUP BY r.rolname, r.rolsuper ORDER BY 1"
        ),
        &[&roles],
    )?;
    // The spec's tables and references rules as parameters: (table, column, referenced table).
    let tables: Vec<String> = spec.tables.values().map(|t| quoted(&t.name)).collect();
    let (mut ref_tables, mut ref_columns, mut ref_targets) = (Vec::new(), Vec::new(), Vec::new());
    for t in spec.tables.values() {
        for (column, target) in &t.references {
            ref_tables.push(quoted(&t.name));
            ref_columns.push(column.clone());
            ref_targets.push(quoted(target));
        }
    }
    check(
        "unguarded-foreign-keys",
        Severity::Medium,
        "foreign keys onto protected tables have no references rule",
        "a foreign key's check ignores row-level security: an insert naming a hidden row tells that it exists (and links to it), and deleting a visible row tells that a hidden row refers to it",
        "add tables.<table>.references: { <column>: <protected table> } to the spec for each (docs/spec.md) and rowsec apply; a referencing table outside the spec must be protected first",
        "SELECT c.conrelid::regclass::text || ' (' || (SELECT string_agg(a.attname::text, ', ' ORDER BY k.n) \
                FROM unnest(c.conkey) WITH ORDINALITY k (attnum, n) JOIN pg_catalog.pg_attribute a \
                  ON a.attrelid = c.conrelid AND a.attnum = k.attnum) || ') -> ' || c.confrelid::regclass::text \
         FROM pg_catalog.pg_constraint c \
         WHERE c.contype = 'f' AND c.confrelid IN (SELECT pg_catalog.to_regclass(t) FROM unnest($1::text[]) t) \
           AND NOT EXISTS (SELECT FROM unnest($2::text[], $3::text[], $4::text[]) r (tbl, col, target) \
                           JOIN pg_catalog.pg_attribute a ON a.attrelid = pg_catalog.to_regclass(r.tbl) AND a.attname = r.col \
                           WHERE c.conrelid = pg_catalog.to_regclass(r.tbl) AND c.confrelid = pg_catalog.to_regclass(r.target) \
                             AND c.conkey = ARRAY[a.attnum]) \
         ORDER BY 1"
            .to_owned(),
        &[&tables, &ref_tables, &ref_columns, &ref_targets],
    )?;
    let keys: Vec<String> = spec.tables.values().map(|t| t.key.clone()).collect();
    check(
        "natural-unique-keys",
        Severity::Medium,
        "protected tables have unique constraints or indexes other than their key",
        "a unique violation (or ON CONFLICT) on a value of a hidden row tells that the row exists: an email, a name, a number is confirmed to someone who cannot see it",
        "drop the unique constraint where the business does not need it, or accept and document the leak (docs/security.md entry 10)",
        "SELECT pg_catalog.pg_get_indexdef(i.indexrelid) FROM unnest($1::text[], $2::text[]) s (tbl, key) \
         JOIN pg_catalog.pg_index i ON i.indrelid = pg_catalog.to_regclass(s.tbl) AND i.indisunique \
         WHERE NOT (i.indnatts = 1 AND i.indexprs IS NULL AND i.indpred IS NULL AND i.indkey[0] = \
                    (SELECT a.attnum FROM pg_catalog.pg_attribute a WHERE a.attrelid = i.indrelid AND a.attname = s.key)) \
         ORDER BY 1"
            .to_owned(),
        &[&tables, &keys],
    )?;
    match &spec.identity {
        Identity::Login => {}
        Identity::Setting(_) => {
            // The pool: a login that holds several spec roles and is nobody in the directory.
            let not_a_person = match &d.login {
                Some(login) => {
                    format!(" AND NOT EXISTS (SELECT FROM {dir} d WHERE d.{}::text = r.rolname)", quote_ident(login))
                }
                None => String::new(),
            };
            check(
                "pool-login-roles",
                Severity::Medium,
                "under setting identity, logins hold more than one spec role",
                "whoever runs SQL on such a connection can SET ROLE to the strongest role it holds and name any person with the setting: a rep's session becomes the admin's",
                "give each spec role its own pool login, or use signed: true (a role the token does not name sees nothing)",
                format!(
                    "{members} SELECT r.rolname::text || ' (member of ' || string_agg(DISTINCT m.spec_role, ', ' ORDER BY m.spec_role) \
                     || ')' FROM m JOIN pg_catalog.pg_roles r ON r.oid = m.member WHERE r.rolcanlogin{not_a_person} \
                     GROUP BY r.rolname HAVING count(DISTINCT m.spec_role) > 1 ORDER BY 1"
                ),
                &[&roles],
            )?;
        }
        Identity::SignedSetting(_) if has_extension => {
            check(
                "identity-keys",
                Severity::Medium,
                "the keys that sign identity tokens are missing, old or too many",
                "with no key every token names nobody; a key kept for long, or an old one not deleted after a rotation, gives whoever holds it (a former employee, an old backup of the application's configuration) tokens that name anyone",
                "INSERT a new key, switch the application to it, then DELETE the old ones from rowsec.identity_keys (rotation, docs/spec.md)",
                "SELECT 'no key in rowsec.identity_keys: every token names nobody' \
                 WHERE NOT EXISTS (SELECT FROM rowsec.identity_keys) \
                 UNION ALL \
                 SELECT 'key ' || key_id || ' is ' || date_part('day', now() - created_at)::int || ' days old (created ' \
                        || created_at::date || ', rotate every ' || $1::int || ' days)' \
                 FROM rowsec.identity_keys WHERE created_at < now() - make_interval(days => $1::int) \
                 UNION ALL \
                 SELECT count(*) || ' keys (' || string_agg(key_id, ', ' ORDER BY key_id) || '): a rotation needs two at most' \
                 FROM rowsec.identity_keys HAVING count(*) > 2"
                    .to_owned(),
                &[&KEY_ROTATION_DAYS],
            )?;
        }
        Identity::SignedSetting(_) => {}
    }
    // Both backends keep their copy of the directory current with triggers on it (the extension
    // its caches and the audit trail, the SQL backend its tables): a trigger that does not fire
    // leaves rowsec answering from the directory as it was.
    check(
        "directory-triggers-not-firing",
        Severity::High,
        "rowsec's triggers on the directory are disabled or do not fire for the changes it gets",
        "hires, moves and departures do not reach rowsec: people keep what their old place gave them, a departed person keeps their subtree, and the audit trail misses the change",
        "ALTER TABLE <directory> ENABLE TRIGGER <name> (ENABLE ALWAYS TRIGGER where a logical replication subscription writes the directory); on the SQL backend then run SELECT rowsec.directory_rebuild() as rowsec's owner",
        "SELECT t.tgname::text || ' on ' || t.tgrelid::regclass::text || CASE \
                WHEN t.tgenabled = 'D' THEN ' (disabled)' \
                WHEN t.tgenabled = 'R' THEN ' (fires only under session_replication_role = replica)' \
                ELSE ' (does not fire for the changes a logical replication subscription applies)' END \
         FROM pg_catalog.pg_trigger t \
         WHERE t.tgrelid = pg_catalog.to_regclass($1) AND t.tgname LIKE 'rowsec\\_directory\\_%' AND NOT t.tgisinternal \
           AND (t.tgenabled IN ('D', 'R') \
                OR t.tgenabled = 'O' AND EXISTS (SELECT FROM pg_catalog.pg_subscription_rel r WHERE r.srrelid = t.tgrelid)) \
         ORDER BY 1"
            .to_owned(),
        &[&dir],
    )?;
    if backend == Some(rowsec_generator::Backend::Sql) {
        check(
            "directory-copy-out-of-date",
            Severity::High,
            "the SQL backend's copy of the directory differs from the directory",
            "the policies read the copy (rowsec.people, rowsec.closure): people see what the copy says, not what the directory says; something changed the directory without its triggers (a restore or replication under session_replication_role = replica, DISABLE TRIGGER)",
            "SELECT rowsec.directory_rebuild() as rowsec's owner, and find what wrote the directory without its triggers",
            directory_copy_check(spec),
            &[&d.table.dotted().to_string()],
        )?;
        // The SQL backend keeps each share's row owner with triggers on the tables that allow
        // sharing (the extension reads it from the row).
        check(
            "shared-row-triggers-not-firing",
            Severity::Low,
            "the SQL backend's triggers that keep a share's row owner are missing or do not fire",
            "rowsec.my_shares lists a share to the row's former owner and their managers after the row changed hands or was deleted, and not to the new owner and theirs; who sees the row is not affected",
            "apply the spec again (the script makes the missing ones), or ALTER TABLE <table> ENABLE TRIGGER <name>",
            "SELECT p.tbl::text || ': ' || x.name || CASE WHEN t.oid IS NULL THEN ' is missing' \
                    WHEN t.tgenabled = 'D' THEN ' is disabled' \
                    ELSE ' fires only under session_replication_role = replica' END \
             FROM rowsec.protected_tables p \
             CROSS JOIN (VALUES ('rowsec_shared_row_moved'), ('rowsec_shared_rows_gone'), ('rowsec_shared_rows_truncated')) x (name) \
             LEFT JOIN pg_catalog.pg_trigger t ON t.tgrelid = p.tbl AND t.tgname = x.name \
             WHERE p.sharing AND (t.oid IS NULL OR t.tgenabled IN ('D', 'R')) \
             ORDER BY 1"
                .to_owned(),
            &[],
        )?;
    }
    if backend.is_some() {
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

/// The SQL backend's copy against the directory, as `rowsec.directory_sync` and
/// `rowsec.closure_refresh` write it: one line when the people or the subtrees differ ($1: the
/// directory's name to print).
fn directory_copy_check(spec: &Spec) -> String {
    let d = &spec.directory;
    let login = d.login.as_ref().map_or_else(|| "NULL::text".to_owned(), |c| format!("d.{}::text", quote_ident(c)));
    // The team as its type's output, as rowsec.text_of_column writes it for directory_sync (a
    // cast to text could be a function the type's owner wrote, and doctor runs as a superuser).
    let team = d.team.as_ref().map_or_else(
        || "NULL::text".to_owned(),
        |c| {
            let c = quote_ident(c);
            format!("CASE WHEN pg_catalog.num_nulls(d.{c}) = 1 THEN NULL ELSE pg_catalog.format('%s', d.{c}) END")
        },
    );
    let active =
        d.active.as_ref().map_or_else(|| "true".to_owned(), |a| format!("coalesce(d.{}, false)", quote_ident(a)));
    format!(
        "WITH RECURSIVE dir AS (SELECT d.{id}::bigint AS id, d.{manager}::bigint AS manager, {team} AS team, \
                                       {login} AS login, {active} AS active FROM {table} d), \
              copy AS (SELECT p.id, p.manager, p.team, p.login, p.active FROM rowsec.people p), \
              differ AS (SELECT DISTINCT id FROM ((TABLE dir EXCEPT TABLE copy) UNION (TABLE copy EXCEPT TABLE dir)) x), \
              up (descendant, ancestor) AS ( \
                  SELECT p.id, p.id FROM rowsec.people p \
                  UNION \
                  SELECT u.descendant, m.id FROM up u JOIN rowsec.people p ON p.id = u.ancestor \
                  JOIN rowsec.people m ON m.id = p.manager), \
              pairs AS ((TABLE up EXCEPT SELECT c.descendant, c.ancestor FROM rowsec.closure c) \
                        UNION ALL (SELECT c.descendant, c.ancestor FROM rowsec.closure c EXCEPT TABLE up)) \
         SELECT 'rowsec.people differs from ' || $1 || ' for ' || (SELECT count(*) FROM differ) || ' people' \
                || coalesce(' (' || (SELECT string_agg(f.id::text, ', ' ORDER BY f.id) \
                                     FROM (SELECT id FROM differ ORDER BY id LIMIT 10) f) || ')', '') \
                || ', rowsec.closure from the subtrees rowsec.people gives in ' || (SELECT count(*) FROM pairs) || ' pairs' \
         WHERE EXISTS (SELECT FROM differ) OR EXISTS (SELECT FROM pairs)",
        id = quote_ident(&d.id),
        manager = quote_ident(&d.manager),
        table = quoted(&d.table),
    )
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
