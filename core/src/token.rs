//! Signed identity for pooled connections (issue 14): the value an application puts in the
//! identity setting when the spec says `identity: { setting: NAME, signed: true }`.
//!
//! ```text
//! v1.<key id>.<person id>.<expires, unix seconds>.<hex(database)>.<hex(roles joined by NUL)>.<hex(mac)>
//! mac = HMAC-SHA256(secret of <key id>, everything before ".<hex(mac)>")
//! ```
//!
//! The key id names one of the secrets in `rowsec.identity_keys` (two are valid at once during a
//! rotation). The database name is signed so a token made for one database means nobody in
//! another that shares the key; the roles are signed so that the pool's login gains nothing from
//! being a member of every group role: only a role the token names sees anything.
//!
//! Made here, checked here: the application's helper ([`sign`]) and the extension's check
//! ([`verify`]) are the same code.

use sha2::{Digest, Sha256};
use std::fmt;

const VERSION: &str = "v1";
const BLOCK: usize = 64;

/// What a token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub key_id: String,
    pub person: i64,
    /// Unix seconds; the token names nobody from then on.
    pub expires_at: i64,
    pub database: String,
    /// The spec roles the person may act as; the current role must be one of them.
    pub roles: Vec<String>,
}

/// Why a token names nobody. Told to the server log only, never to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    UnknownKey,
    BadSignature,
    Expired,
    OtherDatabase,
    RoleNotNamed,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejection::Malformed => "the token is malformed",
            Rejection::UnknownKey => "the token's key id is not in rowsec.identity_keys",
            Rejection::BadSignature => "the token's signature does not match",
            Rejection::Expired => "the token has expired",
            Rejection::OtherDatabase => "the token was made for another database",
            Rejection::RoleNotNamed => "the current role is not one the token names",
        })
    }
}

/// Why [`sign`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("a key id is 1 to 64 letters, digits, '_' or '-'")]
    BadKeyId,
    #[error("a secret has at least 32 bytes")]
    ShortSecret,
    #[error("a role name may not contain a NUL byte")]
    NulInRole,
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

pub fn valid_key_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The token an application puts in the identity setting (`SET LOCAL app.person_id = '<token>'`).
pub fn sign(secret: &[u8], claims: &Claims) -> Result<String, SignError> {
    if !valid_key_id(&claims.key_id) {
        return Err(SignError::BadKeyId);
    }
    if secret.len() < 32 {
        return Err(SignError::ShortSecret);
    }
    if claims.roles.iter().any(|r| r.contains('\0')) {
        return Err(SignError::NulInRole);
    }
    let body = format!(
        "{VERSION}.{}.{}.{}.{}.{}",
        claims.key_id,
        claims.person,
        claims.expires_at,
        hex(claims.database.as_bytes()),
        hex(claims.roles.join("\0").as_bytes())
    );
    let mac = hmac_sha256(secret, body.as_bytes());
    Ok(format!("{body}.{}", hex(&mac)))
}

/// Compares without stopping at the first difference, so the time taken says nothing.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The claims of a well-formed token whose signature is right under the key it names; `secret`
/// gives a key id's secret. Expiry, database and role are the caller's to check ([`Claims::check`]),
/// since they change while the verified token does not.
pub fn verify<'k>(token: &[u8], secret: impl Fn(&str) -> Option<&'k [u8]>) -> Result<Claims, Rejection> {
    let token = std::str::from_utf8(token).map_err(|_| Rejection::Malformed)?.trim();
    let (body, mac) = token.rsplit_once('.').ok_or(Rejection::Malformed)?;
    let parts: Vec<&str> = body.split('.').collect();
    let [version, key_id, person, expires_at, database, roles] = parts[..] else { return Err(Rejection::Malformed) };
    if version != VERSION || !valid_key_id(key_id) {
        return Err(Rejection::Malformed);
    }
    let mac = unhex(mac).filter(|m| m.len() == 32).ok_or(Rejection::Malformed)?;
    let person: i64 = person.parse().map_err(|_| Rejection::Malformed)?;
    let expires_at: i64 = expires_at.parse().map_err(|_| Rejection::Malformed)?;
    let text = |s: &str| unhex(s).and_then(|b| String::from_utf8(b).ok()).ok_or(Rejection::Malformed);
    let (database, roles) = (text(database)?, text(roles)?);
    let key = secret(key_id).ok_or(Rejection::UnknownKey)?;
    if !same(&hmac_sha256(key, body.as_bytes()), &mac) {
        return Err(Rejection::BadSignature);
    }
    let roles = if roles.is_empty() { Vec::new() } else { roles.split('\0').map(str::to_owned).collect() };
    Ok(Claims { key_id: key_id.to_owned(), person, expires_at, database, roles })
}

impl Claims {
    /// Whether a verified token names a person now (`now`: unix seconds), in `database`, for
    /// the current role `role`.
    pub fn check(&self, now: i64, database: &str, role: &str) -> Result<i64, Rejection> {
        if now >= self.expires_at {
            Err(Rejection::Expired)
        } else if self.database != database {
            Err(Rejection::OtherDatabase)
        } else if !self.roles.iter().any(|r| r == role) {
            Err(Rejection::RoleNotNamed)
        } else {
            Ok(self.person)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims() -> Claims {
        Claims {
            key_id: "k2026".into(),
            person: 21,
            expires_at: 2_000_000_000,
            database: "crm".into(),
            roles: vec!["sales_rep".into(), "support".into()],
        }
    }

    fn keys(id: &str) -> Option<&'static [u8]> {
        (id == "k2026").then_some(SECRET)
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex(&mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        // Case 6: a key longer than the block is hashed first.
        let mac = hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(hex(&mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    }

    #[test]
    fn a_signed_token_verifies_and_names_its_person_for_a_named_role() {
        let t = sign(SECRET, &claims()).unwrap();
        let c = verify(t.as_bytes(), keys).unwrap();
        assert_eq!(c, claims());
        assert_eq!(c.check(1_900_000_000, "crm", "support"), Ok(21));
    }

    #[test]
    fn a_changed_field_breaks_the_signature() {
        let t = sign(SECRET, &claims()).unwrap();
        let forged = t.replacen(".21.", ".1.", 1);
        assert_eq!(verify(forged.as_bytes(), keys), Err(Rejection::BadSignature));
        let later = t.replacen(".2000000000.", ".2000000001.", 1);
        assert_eq!(verify(later.as_bytes(), keys), Err(Rejection::BadSignature));
        let other_key = sign(b"another secret of thirty-two bytes!", &claims()).unwrap();
        assert_eq!(verify(other_key.as_bytes(), keys), Err(Rejection::BadSignature));
    }

    #[test]
    fn expiry_database_and_role_are_checked() {
        let c = verify(sign(SECRET, &claims()).unwrap().as_bytes(), keys).unwrap();
        assert_eq!(c.check(2_000_000_000, "crm", "sales_rep"), Err(Rejection::Expired));
        assert_eq!(c.check(0, "crm_copy", "sales_rep"), Err(Rejection::OtherDatabase));
        assert_eq!(c.check(0, "crm", "crm_admin"), Err(Rejection::RoleNotNamed));
        let none = Claims { roles: vec![], ..claims() };
        let c = verify(sign(SECRET, &none).unwrap().as_bytes(), keys).unwrap();
        assert_eq!(c.check(0, "crm", "sales_rep"), Err(Rejection::RoleNotNamed), "no role named: none");
    }

    #[test]
    fn malformed_and_unknown_key_tokens_name_nobody() {
        let good = sign(SECRET, &claims()).unwrap();
        for bad in [
            "",
            "21",
            "v1",
            "v2.k.1.1.00.00.00",
            "v1..1.1.00.00.",
            &good[..good.len() - 1],
            &good.replace("v1.", "v1.x."),
        ] {
            assert_eq!(verify(bad.as_bytes(), keys), Err(Rejection::Malformed), "{bad:?}");
        }
        assert_eq!(verify(b"\xff\xfe", keys), Err(Rejection::Malformed));
        let unknown = sign(SECRET, &Claims { key_id: "old".into(), ..claims() }).unwrap();
        assert_eq!(verify(unknown.as_bytes(), keys), Err(Rejection::UnknownKey));
    }

    #[test]
    fn two_keys_are_valid_during_a_rotation() {
        let new_secret = b"fedcba9876543210fedcba9876543210";
        let both = |id: &str| match id {
            "k2026" => Some(SECRET),
            "k2027" => Some(&new_secret[..]),
            _ => None,
        };
        let old = sign(SECRET, &claims()).unwrap();
        let new = sign(new_secret, &Claims { key_id: "k2027".into(), ..claims() }).unwrap();
        assert!(verify(old.as_bytes(), both).is_ok() && verify(new.as_bytes(), both).is_ok());
    }

    #[test]
    fn signing_refuses_what_could_not_be_verified() {
        assert_eq!(sign(b"short", &claims()), Err(SignError::ShortSecret));
        assert_eq!(sign(SECRET, &Claims { key_id: "a.b".into(), ..claims() }), Err(SignError::BadKeyId));
        assert_eq!(sign(SECRET, &Claims { roles: vec!["a\0b".into()], ..claims() }), Err(SignError::NulInRole));
    }
}
