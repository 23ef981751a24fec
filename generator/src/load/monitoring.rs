//! `monitoring:` (SPEC items 13, 14): `reads` (record every statement on a protected table) and
//! `alerts` (`bulk_read`, `off_hours`), each problem reported where it was written.

use super::reader::Reader;
use crate::diagnostic::{suggestion, Code, Span};
use crate::model::{AlertRule, Monitoring};
use crate::yaml::{Node, NodeKind};

const KEYS: &[&str] = &["reads", "alerts"];
const RULES: &[&str] = &["bulk_read", "off_hours"];
const BULK_READ_KEYS: &[&str] = &["name", "rows", "within"];
const OFF_HOURS_KEYS: &[&str] = &["name", "outside", "days", "timezone"];
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

pub(super) fn read(r: &mut Reader, node: &Node, key: Span) -> Monitoring {
    let Some(f) = r.fields(node, "`monitoring`", KEYS, &[], key) else { return Monitoring::default() };
    let reads = f.get("reads").and_then(|n| r.boolean(n, "`monitoring.reads`")).unwrap_or(false);
    let mut alerts: Vec<AlertRule> = Vec::new();
    if let Some(list) = f.get("alerts") {
        let items: &[Node] = match &list.kind {
            NodeKind::Seq(items) => items,
            _ if list.is_null() => &[],
            _ => {
                r.error(
                    Code::NotAValue,
                    list.span,
                    format!("`monitoring.alerts` must be a list of rules, found {}", list.kind_name()),
                    "write `- { name: bulk_read, rows: 2000, within: 10m }`, one rule per line",
                );
                &[]
            }
        };
        let mut seen: Vec<(&'static str, usize)> = Vec::new();
        for item in items {
            let Some(rule) = read_rule(r, item) else { continue };
            if let Some((_, line)) = seen.iter().find(|(n, _)| *n == rule.name()) {
                r.error(
                    Code::DuplicateAlertRule,
                    item.span,
                    format!("alert rule `{}` is given twice (first on line {line})", rule.name()),
                    "give each rule once, with one threshold",
                );
                continue;
            }
            seen.push((rule.name(), item.span.line));
            alerts.push(rule);
        }
        if !alerts.is_empty() && !reads {
            r.error(
                Code::AlertsWithoutReads,
                list.span,
                "`monitoring.alerts` needs `monitoring.reads: true`",
                "alerts are evaluated over the recorded activity: add `reads: true` under `monitoring`",
            );
        }
    }
    Monitoring { reads, alerts }
}

fn read_rule(r: &mut Reader, item: &Node) -> Option<AlertRule> {
    let what = "an alert rule of `monitoring.alerts`";
    let NodeKind::Map(pairs) = &item.kind else {
        // Reports what the rule is instead of a mapping.
        r.entries(item, what);
        return None;
    };
    let Some(name_node) = pairs.iter().find(|(k, _)| k.as_str() == Some("name")).map(|(_, v)| v) else {
        r.error(
            Code::MissingKey,
            item.span,
            format!("{what} is missing the required key `name`"),
            "add `name: bulk_read` or `name: off_hours`",
        );
        return None;
    };
    let name = r.string(name_node, "an alert rule's `name`")?;
    let (keys, required): (&[&str], &[&str]) = match name.as_str() {
        "bulk_read" => (BULK_READ_KEYS, &["rows", "within"]),
        "off_hours" => (OFF_HOURS_KEYS, &["outside", "days", "timezone"]),
        _ => {
            r.error(
                Code::UnknownAlertRule,
                name_node.span,
                format!("unknown alert rule `{name}`"),
                suggestion(&name, RULES, "rule"),
            );
            return None;
        }
    };
    let what = format!("alert rule `{name}`");
    let f = r.fields(item, &what, keys, required, item.span)?;
    match name.as_str() {
        "bulk_read" => {
            let rows = f.get("rows").and_then(|n| positive_rows(r, n));
            let within = f.get("within").and_then(|n| duration(r, n));
            let (within, within_seconds) = within?;
            Some(AlertRule::BulkRead { rows: rows?, within_seconds, within })
        }
        _ => {
            let hours = f.get("outside").and_then(|n| hours(r, n));
            let days = f.get("days").and_then(|n| days(r, n));
            let timezone = f.get("timezone").and_then(|n| timezone(r, n));
            let (from, to) = hours?;
            Some(AlertRule::OffHours { from, to, days: days?, timezone: timezone? })
        }
    }
}

fn scalar(node: &Node) -> Option<&str> {
    match &node.kind {
        NodeKind::Scalar { text, .. } if !node.is_null() => Some(text),
        _ => None,
    }
}

fn found(node: &Node) -> String {
    scalar(node).map_or_else(|| node.kind_name().to_owned(), |t| format!("`{t}`"))
}

fn positive_rows(r: &mut Reader, n: &Node) -> Option<u64> {
    let rows = match &n.kind {
        NodeKind::Scalar { text, quoted: false } => text.parse::<u64>().ok().filter(|v| *v > 0),
        _ => None,
    };
    if rows.is_none() {
        r.error(
            Code::NotAPositiveInteger,
            n.span,
            format!("`bulk_read.rows` must be a positive whole number of rows, found {}", found(n)),
            "write e.g. `rows: 2000`",
        );
    }
    rows
}

/// `30s`, `10m`, `2h`, `1d`: the text as written and the seconds.
fn duration(r: &mut Reader, n: &Node) -> Option<(String, u64)> {
    let parsed = scalar(n).and_then(|t| {
        let unit = t.chars().last()?;
        let factor = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        let count: u64 = t[..t.len() - 1].parse().ok().filter(|c| *c > 0)?;
        Some((t.to_owned(), count.checked_mul(factor)?))
    });
    if parsed.is_none() {
        r.error(
            Code::BadDuration,
            n.span,
            format!("`bulk_read.within` must be a duration, found {}", found(n)),
            "write a positive number with s, m, h or d: `within: 10m`",
        );
    }
    parsed
}

/// `08:00-20:00`: the hours inside which nothing fires.
fn hours(r: &mut Reader, n: &Node) -> Option<(String, String)> {
    let parsed = scalar(n).and_then(|t| {
        let (from, to) = t.split_once('-')?;
        let (from, to) = (from.trim(), to.trim());
        let ok = parse_clock(from)? != parse_clock(to)?;
        ok.then(|| (from.to_owned(), to.to_owned()))
    });
    if parsed.is_none() {
        r.error(
            Code::BadHours,
            n.span,
            format!("`off_hours.outside` must be hours `HH:MM-HH:MM`, found {}", found(n)),
            "write the working hours, e.g. `outside: \"08:00-20:00\"`",
        );
    }
    parsed
}

/// `HH:MM` (00:00 to 24:00) as minutes since midnight; the extension reads the same form
/// (`rowsec_core::monitoring::parse_clock`).
fn parse_clock(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

/// `mon-fri`, `sat`, `mon,wed,fri` or a list of these: ISO day numbers (1 = Monday), sorted.
fn days(r: &mut Reader, n: &Node) -> Option<Vec<u8>> {
    let texts: Option<Vec<&str>> = match &n.kind {
        NodeKind::Seq(items) => items.iter().map(scalar).collect(),
        _ => scalar(n).map(|t| vec![t]),
    };
    let mut days: Vec<u8> = Vec::new();
    let ok = texts.is_some_and(|texts| {
        texts.iter().flat_map(|t| t.split(',')).all(|part| {
            let day = |d: &str| DAYS.iter().position(|x| x.eq_ignore_ascii_case(d.trim())).map(|i| i as u8 + 1);
            let range = match part.split_once('-') {
                Some((a, b)) => day(a).zip(day(b)),
                None => day(part).map(|d| (d, d)),
            };
            let Some((a, b)) = range else { return false };
            // A range may wrap around the week: fri-mon.
            let mut d = a;
            loop {
                if !days.contains(&d) {
                    days.push(d);
                }
                if d == b {
                    break;
                }
                d = d % 7 + 1;
            }
            true
        })
    });
    if !ok || days.is_empty() {
        r.error(
            Code::BadDays,
            n.span,
            format!("`off_hours.days` must be days of the week, found {}", found(n)),
            "write a range or a list of mon, tue, wed, thu, fri, sat, sun: `days: mon-fri`",
        );
        return None;
    }
    days.sort_unstable();
    Some(days)
}

/// A time zone name as PostgreSQL spells them (`Asia/Shanghai`, `UTC`); whether the server
/// knows it is checked when the script runs (rowsec.configure_monitoring, pg_timezone_names).
fn timezone(r: &mut Reader, n: &Node) -> Option<String> {
    let ok = scalar(n).filter(|t| {
        !t.is_empty()
            && t.len() <= 64
            && !t.starts_with('/')
            && !t.contains("..")
            && t.chars().all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
    });
    if ok.is_none() {
        r.error(
            Code::BadTimezone,
            n.span,
            format!("`off_hours.timezone` must be a time zone name, found {}", found(n)),
            "write a name from pg_timezone_names, e.g. `timezone: Asia/Shanghai` or `timezone: UTC`",
        );
    }
    ok.map(str::to_owned)
}
