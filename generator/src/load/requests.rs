//! `requests:` (SPEC item 16): `max_days`, the longest temporary access an approver may give.

use super::reader::Reader;
use crate::diagnostic::{Code, Span};
use crate::model::Requests;
use crate::yaml::{Node, NodeKind};

const KEYS: &[&str] = &["max_days"];

pub(super) fn read(r: &mut Reader, node: &Node, key: Span) -> Option<Requests> {
    let f = r.fields(node, "`requests`", KEYS, &["max_days"], key)?;
    let n = f.get("max_days")?;
    let days = match &n.kind {
        NodeKind::Scalar { text, quoted: false } => text.parse::<u32>().ok().filter(|d| *d > 0),
        _ => None,
    };
    if days.is_none() {
        let found = match &n.kind {
            NodeKind::Scalar { text, .. } => format!("`{text}`"),
            _ => n.kind_name().to_owned(),
        };
        r.error(
            Code::NotAPositiveInteger,
            n.span,
            format!("`requests.max_days` must be a positive whole number of days, found {found}"),
            "write e.g. `max_days: 14`",
        );
    }
    Some(Requests { max_days: days? })
}
