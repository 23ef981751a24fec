//! The stable code of every problem rowsec reports about its input, e.g. `E1104 unknown-key`.
//!
//! A code never changes meaning and is never reused; tests and scripts match codes, not
//! message text. Every code is explained, with an example and the fix, in
//! docs/diagnostics.md (a unit test keeps the two in step). Groups: E10xx input files and YAML,
//! E11xx the shape of the spec, E12xx names, E13xx values of each part, E14xx references
//! between parts, E15xx the `--schema` DDL, E16xx `always` rules.

use std::fmt;

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal $name:literal, )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in code order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// `E1104`
            pub fn code(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// `unknown-key`
            pub fn name(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }
        }
    };
}

codes! {
    /// A spec or schema file cannot be read.
    UnreadableFile = "E1000" "unreadable-file",
    YamlSyntax = "E1001" "yaml-syntax",
    MultipleDocuments = "E1002" "multiple-documents",
    YamlAlias = "E1003" "yaml-alias",

    /// Something that must be a mapping (`key: value` pairs) is not.
    NotAMapping = "E1101" "not-a-mapping",
    /// A mapping key that is itself a list or mapping.
    KeyNotAName = "E1102" "key-not-a-name",
    DuplicateKey = "E1103" "duplicate-key",
    UnknownKey = "E1104" "unknown-key",
    MissingKey = "E1105" "missing-key",
    /// A list, mapping or null where a single value belongs.
    NotAValue = "E1106" "not-a-value",
    NotABoolean = "E1107" "not-a-boolean",

    EmptyName = "E1201" "empty-name",
    NulInName = "E1202" "nul-in-name",
    /// Longer than PostgreSQL's 63 bytes.
    NameTooLong = "E1203" "name-too-long",
    BadTableName = "E1204" "bad-table-name",
    ReservedSchema = "E1205" "reserved-schema",
    ReservedRoleName = "E1206" "reserved-role-name",
    BadClassName = "E1208" "bad-class-name",
    BadSettingName = "E1209" "bad-setting-name",
    /// The schema of a table's masked view (`<schema>_app`) is one of the spec's own or reserved.
    ViewSchemaClash = "E1210" "view-schema-clash",

    UnsupportedVersion = "E1301" "unsupported-version",
    UnknownIdentity = "E1302" "unknown-identity",
    UnknownCommand = "E1303" "unknown-command",
    UnknownScope = "E1304" "unknown-scope",
    UnknownAccess = "E1305" "unknown-access",
    BadTableOverride = "E1306" "bad-table-override",
    DuplicateTable = "E1307" "duplicate-table",
    /// `requests.max_days` that is not a whole number of days above zero.
    NotAPositiveInteger = "E1308" "not-a-positive-integer",
    /// A role's limit that is not a whole number of rows, zero or more.
    NotARowCount = "E1309" "not-a-row-count",
    /// `monitoring.alerts` names a rule other than `bulk_read` and `off_hours`.
    UnknownAlertRule = "E1310" "unknown-alert-rule",
    /// A rule's `within` is not a duration such as `10m`.
    BadDuration = "E1311" "bad-duration",
    /// `off_hours.outside` is not `HH:MM-HH:MM`.
    BadHours = "E1312" "bad-hours",
    /// `off_hours.days` is not a day, a range of days or a list of them.
    BadDays = "E1313" "bad-days",
    /// `off_hours.timezone` is not a time zone name.
    BadTimezone = "E1314" "bad-timezone",
    /// The same alert rule given twice.
    DuplicateAlertRule = "E1315" "duplicate-alert-rule",
    /// `classes.<name>.mask` that is not `partial`, `email` or `null`.
    UnknownMask = "E1316" "unknown-mask",

    /// `identity: login` without `directory.login`.
    LoginColumnNeeded = "E1401" "login-column-needed",
    /// Scope `team` in a level without `directory.team`.
    TeamColumnNeeded = "E1402" "team-column-needed",
    DirectoryTableProtected = "E1403" "directory-table-protected",
    UnknownLevel = "E1404" "unknown-level",
    UnknownTable = "E1405" "unknown-table",
    UnknownClass = "E1406" "unknown-class",
    /// Update or delete on a table the role may not select from.
    ChangeWithoutSelect = "E1407" "change-without-select",
    /// `audit.readers` names a role the spec does not define.
    UnknownRole = "E1408" "unknown-role",
    /// A limit for a command the role may not run on any table.
    LimitWithoutPrivilege = "E1409" "limit-without-privilege",
    /// `monitoring.alerts` without `monitoring.reads: true`: alerts are evaluated over the activity.
    AlertsWithoutReads = "E1410" "alerts-without-reads",
    /// `classes` names a class no table uses.
    ClassNotUsed = "E1411" "class-not-used",
    /// `fields: { <class>: { read: <scope> } }` for a class `classes` does not mask.
    ScopedReadWithoutMask = "E1412" "scoped-read-without-mask",

    SchemaSyntax = "E1501" "schema-syntax",
    TableNotInSchema = "E1502" "table-not-in-schema",
    ColumnNotInSchema = "E1503" "column-not-in-schema",
    ColumnType = "E1504" "column-type",
    /// A CREATE or ALTER TABLE in `--schema` whose columns rowsec cannot know.
    SchemaUnsupported = "E1505" "schema-unsupported",
    /// `rowsec init --schema`: no table of the DDL can be the directory of people.
    NoDirectoryTable = "E1506" "no-directory-table",

    AlwaysSyntax = "E1601" "always-syntax",
    AlwaysNotOneExpression = "E1602" "always-not-one-expression",
    AlwaysSubquery = "E1603" "always-subquery",
    AlwaysFunction = "E1604" "always-function",
    AlwaysSessionValue = "E1605" "always-session-value",
    AlwaysQualifiedColumn = "E1606" "always-qualified-column",
    AlwaysUnknownColumn = "E1607" "always-unknown-column",
    AlwaysNotBoolean = "E1608" "always-not-boolean",

    /// `--backend sql` and a spec key the SQL backend cannot enforce (limits, monitoring),
    /// without `--accept-unenforced`.
    UnenforcedOnSqlBackend = "E1701" "unenforced-on-sql-backend",
    /// `--backend sql` and a signed identity (`identity: { setting: NAME, signed: true }`).
    SignedIdentityOnSqlBackend = "E1702" "signed-identity-on-sql-backend",
    /// `--backend sql` and an identity setting name with a `$` (written into dollar-quoted bodies).
    DollarInSettingOnSqlBackend = "E1703" "dollar-in-setting-on-sql-backend",
}

/// `E1104 unknown-key`
impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::Code;

    const REFERENCE: &str = include_str!("../../docs/diagnostics.md");

    #[test]
    fn codes_and_names_are_unique_and_in_order() {
        let codes: Vec<&str> = Code::ALL.iter().map(|c| c.code()).collect();
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "{codes:?}");
        let names: BTreeSet<&str> = Code::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Code::ALL.len());
        for c in Code::ALL {
            assert!(c.code().len() == 5 && c.code().starts_with('E'), "{c}");
            assert!(c.name().chars().all(|ch| ch.is_ascii_lowercase() || ch == '-'), "{c}");
        }
    }

    /// The headings of docs/diagnostics.md: `## E1104 unknown-key`.
    fn documented() -> Vec<&'static str> {
        REFERENCE.lines().filter_map(|l| l.strip_prefix("## ")).filter(|h| h.starts_with('E')).collect()
    }

    #[test]
    fn every_code_is_documented_with_an_example_and_a_fix() {
        let headings = documented();
        for c in Code::ALL {
            let heading = c.to_string();
            assert!(headings.contains(&heading.as_str()), "docs/diagnostics.md lacks `## {heading}`");
            let section = REFERENCE.split(&format!("## {heading}\n")).nth(1).unwrap();
            let section = section.split("\n## ").next().unwrap();
            assert!(section.contains("Example"), "{heading}: no example");
            assert!(section.contains("Fix"), "{heading}: no fix");
        }
    }

    #[test]
    fn the_reference_documents_no_other_code() {
        let known: Vec<String> = Code::ALL.iter().map(Code::to_string).collect();
        let headings = documented();
        for h in &headings {
            assert!(known.iter().any(|k| k == h), "docs/diagnostics.md documents `{h}`, which rowsec does not have");
        }
        assert_eq!(headings.len(), known.len(), "a code is documented twice");
    }
}
