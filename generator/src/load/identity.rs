//! `identity`: how the database learns who the current person is.

use super::reader::Reader;
use crate::diagnostic::{suggestion, Code};
use crate::model::Identity;
use crate::names::MAX_IDENTIFIER_BYTES;
use crate::yaml::{Node, NodeKind};

/// `login`, or `{ setting: NAME }` with a custom setting name PostgreSQL accepts, optionally
/// `signed: true`.
pub(super) fn read(r: &mut Reader, node: &Node) -> Option<Identity> {
    match &node.kind {
        NodeKind::Scalar { text, .. } if text == "login" => Some(Identity::Login),
        NodeKind::Scalar { text, .. } => {
            let hint = suggestion(text, &["login"], "identity")
                .replace("expected one of: `login`", "write `login` or `{ setting: app.person_id }`");
            r.error(Code::UnknownIdentity, node.span, format!("unknown identity `{text}`"), hint);
            None
        }
        _ => {
            let e = r.fields(node, "`identity`", &["setting", "signed"], &["setting"], node.span)?;
            let signed = match e.get("signed") {
                Some(n) => r.boolean(n, "`identity.signed`")?,
                None => false,
            };
            let setting_node = e.get("setting")?;
            let name = r.string(setting_node, "`identity.setting`")?;
            if !is_setting_name(&name) {
                r.error(
                    Code::BadSettingName,
                    setting_node.span,
                    format!("`{name}` is not a custom setting name PostgreSQL accepts"),
                    "use a two-part name such as `app.person_id` (letters, digits, underscores)",
                );
                return None;
            }
            Some(if signed { Identity::SignedSetting(name) } else { Identity::Setting(name) })
        }
    }
}

/// `prefix.name` (two parts or more), each part a plain identifier.
fn is_setting_name(name: &str) -> bool {
    name.len() <= MAX_IDENTIFIER_BYTES
        && name.split('.').count() >= 2
        && name.split('.').all(|p| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
                && !p.starts_with(|c: char| c.is_ascii_digit())
        })
}
