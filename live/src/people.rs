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

/// Acting as a person (explain, preview, verify's truth check) sets their login role and, for the
/// setting identity, the setting. A signed identity would need a token signed with the
/// database's key, which these commands do not make yet: refuse rather than try as nobody.
pub fn check_can_act_as_people(spec: &rowsec_generator::Spec) -> crate::error::Result<()> {
    match &spec.identity {
        rowsec_generator::model::Identity::SignedSetting(name) => Err(crate::error::Error::BadInput {
            what: format!("the spec's identity is the signed setting {name}: this command cannot act as a person under it yet"),
            fix: "for verify, pass --no-truth to check drift only; explain and preview need the setting identity or login".to_owned(),
        }),
        _ => Ok(()),
    }
}
