//! Alert rules of `monitoring.alerts` (SPEC item 14) as the compiled script hands them to
//! `rowsec.configure_monitoring` (JSON), and the check of that JSON: the extension refuses what
//! the compiler would never write, naming the rule and the fix.
//!
//! The JSON form (one object per rule):
//! - `{"name": "bulk_read", "rows": 2000, "within_seconds": 600, "within": "10m"}`
//! - `{"name": "off_hours", "from": "08:00", "to": "20:00", "days": [1, 2, 3, 4, 5],
//!   "timezone": "Asia/Shanghai"}` (days: ISO, 1 = Monday; the timezone is checked by the
//!   extension against `pg_timezone_names`).

use crate::diagnostic::{quoted, Diagnostic};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    BulkRead { rows: u64, within_seconds: u64 },
    OffHours { from_minute: u32, to_minute: u32, days: Vec<u8>, timezone: String },
}

impl Rule {
    pub fn name(&self) -> &'static str {
        match self {
            Rule::BulkRead { .. } => "bulk_read",
            Rule::OffHours { .. } => "off_hours",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("monitoring alerts must be a JSON array of rules")]
    NotAnArray,
    #[error("alert rule {index} has no name")]
    NoName { index: usize },
    #[error("unknown alert rule {}", quoted(.name))]
    UnknownRule { name: String },
    #[error("alert rule {} appears twice", quoted(.name))]
    Duplicate { name: String },
    #[error("alert rule {} has a bad {field}: {found}", quoted(.name))]
    BadField { name: String, field: &'static str, found: String },
    #[error("monitoring alerts need monitoring reads")]
    AlertsWithoutReads,
}

impl Diagnostic for RuleError {
    fn detail(&self) -> String {
        match self {
            RuleError::NotAnArray | RuleError::NoName { .. } | RuleError::BadField { .. } => {
                "rowsec.configure_monitoring takes the rules the compiled script writes from monitoring.alerts.".into()
            }
            RuleError::UnknownRule { .. } => "The rules are bulk_read and off_hours.".into(),
            RuleError::Duplicate { .. } => "Each rule is given once, with its own thresholds.".into(),
            RuleError::AlertsWithoutReads => "Alerts are evaluated over the recorded activity.".into(),
        }
    }

    fn hint(&self) -> String {
        match self {
            RuleError::AlertsWithoutReads => "Set monitoring.reads: true in the spec, or remove the alerts.".into(),
            _ => crate::diagnostic::HINT_COMPILE.into(),
        }
    }
}

fn field<'a>(
    rule: &'a serde_json::Map<String, Value>,
    name: &str,
    field: &'static str,
) -> Result<&'a Value, RuleError> {
    rule.get(field).ok_or_else(|| RuleError::BadField { name: name.into(), field, found: "nothing".into() })
}

fn positive(rule: &serde_json::Map<String, Value>, name: &str, f: &'static str) -> Result<u64, RuleError> {
    let v = field(rule, name, f)?;
    v.as_u64().filter(|n| *n > 0).ok_or_else(|| RuleError::BadField {
        name: name.into(),
        field: f,
        found: v.to_string(),
    })
}

/// `HH:MM` (00:00 to 24:00) as minutes since midnight.
pub fn parse_clock(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

/// Checks the rules' JSON; `reads`: whether activity is recorded at all.
pub fn parse_rules(alerts: &Value, reads: bool) -> Result<Vec<Rule>, RuleError> {
    let Value::Array(items) = alerts else { return Err(RuleError::NotAnArray) };
    let mut rules: Vec<Rule> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some(rule) = item.as_object() else { return Err(RuleError::NoName { index }) };
        let Some(name) = rule.get("name").and_then(Value::as_str) else { return Err(RuleError::NoName { index }) };
        let parsed = match name {
            "bulk_read" => Rule::BulkRead {
                rows: positive(rule, name, "rows")?,
                within_seconds: positive(rule, name, "within_seconds")?,
            },
            "off_hours" => {
                let clock = |f: &'static str| -> Result<u32, RuleError> {
                    let v = field(rule, name, f)?;
                    v.as_str().and_then(parse_clock).ok_or_else(|| RuleError::BadField {
                        name: name.into(),
                        field: f,
                        found: v.to_string(),
                    })
                };
                let (from_minute, to_minute) = (clock("from")?, clock("to")?);
                let days_value = field(rule, name, "days")?;
                let bad_days =
                    || RuleError::BadField { name: name.into(), field: "days", found: days_value.to_string() };
                let mut days: Vec<u8> = Vec::new();
                for d in days_value.as_array().ok_or_else(bad_days)? {
                    let d = d.as_u64().filter(|d| (1..=7).contains(d)).ok_or_else(bad_days)? as u8;
                    if !days.contains(&d) {
                        days.push(d);
                    }
                }
                if days.is_empty() {
                    return Err(bad_days());
                }
                days.sort_unstable();
                let tz = field(rule, name, "timezone")?;
                let timezone = tz
                    .as_str()
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| RuleError::BadField { name: name.into(), field: "timezone", found: tz.to_string() })?
                    .to_owned();
                Rule::OffHours { from_minute, to_minute, days, timezone }
            }
            other => return Err(RuleError::UnknownRule { name: other.into() }),
        };
        if rules.iter().any(|r| r.name() == parsed.name()) {
            return Err(RuleError::Duplicate { name: name.into() });
        }
        rules.push(parsed);
    }
    if !reads && !rules.is_empty() {
        return Err(RuleError::AlertsWithoutReads);
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_reference_rules_parse() {
        let rules = parse_rules(
            &json!([
                {"name": "bulk_read", "rows": 2000, "within_seconds": 600, "within": "10m"},
                {"name": "off_hours", "from": "08:00", "to": "20:00", "days": [5, 1, 2, 3, 4], "timezone": "Asia/Shanghai"}
            ]),
            true,
        )
        .unwrap();
        assert_eq!(rules[0], Rule::BulkRead { rows: 2000, within_seconds: 600 });
        assert_eq!(
            rules[1],
            Rule::OffHours {
                from_minute: 480,
                to_minute: 1200,
                days: vec![1, 2, 3, 4, 5],
                timezone: "Asia/Shanghai".into()
            }
        );
    }

    #[test]
    fn bad_rules_are_named() {
        let e = parse_rules(&json!([{"name": "bulk_write"}]), true).unwrap_err();
        assert_eq!(e.to_string(), "unknown alert rule \"bulk_write\"");
        let e = parse_rules(&json!([{"name": "bulk_read", "rows": 0, "within_seconds": 60}]), true).unwrap_err();
        assert_eq!(e.to_string(), "alert rule \"bulk_read\" has a bad rows: 0");
        let twice = json!({"name": "bulk_read", "rows": 1, "within_seconds": 60});
        let e = parse_rules(&json!([twice, twice]), true).unwrap_err();
        assert_eq!(e, RuleError::Duplicate { name: "bulk_read".into() });
        let e = parse_rules(
            &json!([{"name": "off_hours", "from": "8:00", "to": "20:00", "days": [1], "timezone": "UTC"}]),
            true,
        )
        .unwrap_err();
        assert!(matches!(e, RuleError::BadField { field: "from", .. }));
        let e = parse_rules(
            &json!([{"name": "off_hours", "from": "08:00", "to": "20:00", "days": [8], "timezone": "UTC"}]),
            true,
        )
        .unwrap_err();
        assert!(matches!(e, RuleError::BadField { field: "days", .. }));
        assert_eq!(parse_rules(&json!([twice]), false).unwrap_err(), RuleError::AlertsWithoutReads);
        assert_eq!(parse_rules(&json!({}), true).unwrap_err(), RuleError::NotAnArray);
    }

    #[test]
    fn clocks_run_from_midnight_to_midnight() {
        assert_eq!(parse_clock("00:00"), Some(0));
        assert_eq!(parse_clock("24:00"), Some(1440));
        assert_eq!(parse_clock("23:59"), Some(1439));
        assert_eq!(parse_clock("24:01"), None);
        assert_eq!(parse_clock("12:60"), None);
        assert_eq!(parse_clock("7:00"), None);
    }
}
