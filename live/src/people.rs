//! The people of a live database as the oracle sees them: the directory table, each login's
//! spec roles (memberships, direct or inherited), the shares and the rows of protected tables.
//! Read as a superuser: this is the ground truth the spec is compared with.

use std::collections::BTreeMap;

use postgres::GenericClient;
use rowsec_generator::model::{QualifiedName, Spec};
use rowsec_generator::oracle::{Person, Row, Share};
use serde::Serialize;

use crate::catalog::{quote_ident, quoted};
use crate::error::{Error, Result};

/// A person of the directory with what the oracle does not need.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub id: i64,
    pub login: Option<String>,
    /// Whether `login` names a role that exists and can log in.
    pub can_login: bool,
    #[serde(skip)]
    pub person: Person,
}

pub struct Directory {
    pub members: BTreeMap<i64, Member>,
}

impl Directory {
    pub fn read(client: &mut impl GenericClient, spec: &Spec) -> Result<Directory> {
        let d = &spec.directory;
        let col = |c: &Option<String>, default: &str| c.as_deref().map_or(default.to_owned(), quote_ident);
        let sql = format!(
            "SELECT {id}::bigint, {manager}::bigint, ({team})::text, ({active})::boolean, ({login})::text, \
             r.rolcanlogin, \
             ARRAY(SELECT s FROM unnest($1::text[]) s WHERE r.oid IS NOT NULL \
                   AND EXISTS (SELECT FROM pg_catalog.pg_roles g WHERE g.rolname = s) \
                   AND pg_catalog.pg_has_role(r.oid, s, 'MEMBER')) \
             FROM {table} d LEFT JOIN pg_catalog.pg_roles r ON r.rolname = ({login})::text \
             ORDER BY 1",
            id = quote_ident(&d.id),
            manager = quote_ident(&d.manager),
            team = col(&d.team, "NULL"),
            active = col(&d.active, "true"),
            login = col(&d.login, "NULL"),
            table = quoted(&d.table),
        );
        let roles: Vec<String> = spec.roles.keys().cloned().collect();
        let rows = client
            .query(&sql, &[&roles])
            .map_err(Error::query(format!("reading the directory {}", d.table.dotted())))?;
        let members = rows
            .iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let member = Member {
                    id,
                    login: r.get(4),
                    can_login: r.get::<_, Option<bool>>(5).unwrap_or(false),
                    person: Person {
                        id,
                        manager: r.get(1),
                        team: r.get(2),
                        active: r.get::<_, Option<bool>>(3).unwrap_or(false),
                        roles: r.get(6),
                    },
                };
                (id, member)
            })
            .collect();
        Ok(Directory { members })
    }

    pub fn people(&self) -> impl Iterator<Item = &Person> {
        self.members.values().map(|m| &m.person)
    }

    /// A person by id or login name, or a clear error.
    pub fn find(&self, who: &str) -> Result<&Member> {
        let found = match who.parse::<i64>() {
            Ok(id) => self.members.get(&id),
            Err(_) => self.members.values().find(|m| m.login.as_deref() == Some(who)),
        };
        found.ok_or_else(|| Error::BadInput {
            what: format!("no person {who} in the directory ({} people)", self.members.len()),
            fix: "give a person's id or login as it is in the directory table".to_owned(),
        })
    }
}

/// Every share in `rowsec.shares`, expired ones marked.
pub fn shares(client: &mut impl GenericClient) -> Result<Vec<Share>> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text, s.row_key, s.grantee_person, s.grantee_team, \
                    s.access = 'write', coalesce(s.expires_at <= now(), false) \
             FROM rowsec.shares s JOIN pg_catalog.pg_class c ON c.oid = s.tbl \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace",
            &[],
        )
        .map_err(Error::query("reading rowsec.shares"))?;
    Ok(rows
        .iter()
        .map(|r| Share {
            table: QualifiedName::new(r.get::<_, &str>(0), r.get::<_, &str>(1)),
            key: r.get(2),
            to_person: r.get(3),
            to_team: r.get(4),
            write: r.get(5),
            expired: r.get(6),
        })
        .collect())
}

/// The rows of a protected table (at most `limit`, by key), with the `always` rule evaluated by
/// PostgreSQL on the spec's own text.
pub fn rows(client: &mut impl GenericClient, spec: &Spec, table: &QualifiedName, limit: i64) -> Result<Vec<Row>> {
    let t = &spec.tables[table];
    let always = t.always.as_deref().map_or("true".to_owned(), |a| format!("coalesce(({a}), false)"));
    let sql = format!(
        "SELECT {key}::bigint, {owner}::bigint, NOT {always} FROM {table} ORDER BY 1 LIMIT $1",
        key = quote_ident(&t.key),
        owner = quote_ident(&t.owner),
        table = quoted(table),
    );
    let rows =
        client.query(&sql, &[&limit]).map_err(Error::query(format!("reading the rows of {}", table.dotted())))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            // A row without an owner belongs to nobody's scope; the oracle cannot place it.
            let owner: Option<i64> = r.get(1);
            owner.map(|owner| Row { key: r.get(0), owner, voided: r.get(2) })
        })
        .collect())
}

/// How explain, preview and verify's truth check become a person: `SET LOCAL ROLE` to the
/// person's login, then the identity: nothing more under login identity, the person's id in the
/// setting, or under the signed setting a token for the person that names the login role the
/// session acts as, signed with the database's newest key in `rowsec.identity_keys` (read by the
/// command's own superuser connection before it becomes anyone) and valid for five minutes.
pub struct Impersonation {
    identity: Acting,
}

enum Acting {
    Login,
    Setting(String),
    Signed { setting: String, key_id: String, secret: Vec<u8>, database: String },
}

/// How long a token the live commands make is valid: one command's run as one person.
const TOKEN_SECONDS: i64 = 300;

impl Impersonation {
    pub fn new(client: &mut impl GenericClient, spec: &Spec) -> Result<Impersonation> {
        use rowsec_generator::model::Identity;
        let identity = match &spec.identity {
            Identity::Login => Acting::Login,
            Identity::Setting(name) => Acting::Setting(name.clone()),
            Identity::SignedSetting(name) => {
                let row = client
                    .query_opt(
                        "SELECT k.key_id, k.secret, pg_catalog.current_database()::text FROM rowsec.identity_keys k \
                         ORDER BY k.created_at DESC, k.key_id LIMIT 1",
                        &[],
                    )
                    .map_err(Error::query("reading rowsec.identity_keys"))?;
                let Some(row) = row else {
                    return Err(Error::BadInput {
                        what: format!(
                            "the spec's identity is the signed setting {name}, and rowsec.identity_keys has no key: nobody can be anyone"
                        ),
                        fix: "add the application's key: INSERT INTO rowsec.identity_keys (key_id, secret) VALUES ('k1', '\\x...') (docs/spec.md)".to_owned(),
                    });
                };
                Acting::Signed { setting: name.clone(), key_id: row.get(0), secret: row.get(1), database: row.get(2) }
            }
        };
        Ok(Impersonation { identity })
    }

    /// Makes the transaction's session `person`, through `login`; `what` names the command in errors.
    pub fn enter(&self, tx: &mut impl GenericClient, person: i64, login: &str, what: &str) -> Result<()> {
        tx.batch_execute(&format!("SET LOCAL statement_timeout = '60s'; SET LOCAL ROLE {}", quote_ident(login)))
            .map_err(Error::query(format!("{what}: SET ROLE {login}")))?;
        let (setting, value) = match &self.identity {
            Acting::Login => return Ok(()),
            Acting::Setting(name) => (name, person.to_string()),
            Acting::Signed { setting, key_id, secret, database } => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let claims = rowsec_core::token::Claims {
                    key_id: key_id.clone(),
                    person,
                    expires_at: now + TOKEN_SECONDS,
                    database: database.clone(),
                    roles: vec![login.to_owned()],
                };
                let token = rowsec_core::token::sign(secret, &claims).map_err(|e| Error::BadInput {
                    what: format!("{what}: cannot sign a token with key {key_id} of rowsec.identity_keys: {e}"),
                    fix: "fix or replace the key (docs/spec.md)".to_owned(),
                })?;
                (setting, token)
            }
        };
        tx.execute("SELECT pg_catalog.set_config($1, $2, true)", &[setting, &value])
            .map_err(Error::query(format!("{what}: the identity setting")))?;
        Ok(())
    }
}
