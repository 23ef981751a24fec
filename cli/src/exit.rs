//! The exit statuses of every command: one table, printed by `--help`, the man page and
//! docs/cli.md (a test keeps the document equal to it).

/// (status, what it means, when each command returns it).
pub const STATUSES: &[(u8, &str, &str)] = &[
    (
        0,
        "ok",
        "nothing to report: the spec is valid (`check`), written (`compile`, `init`, `matrix`, `schema`, \
`completions`, `man`, `review`), no change (`plan`), applied (`apply`), no drift and no mismatch (`verify`), \
no finding (`doctor`), verdicts agree with PostgreSQL (`explain`), the query ran (`preview`)",
    ),
    (
        1,
        "changes or findings",
        "changes (`plan`), drift or mismatches (`verify`), findings (`doctor`), a verdict PostgreSQL does not \
share (`explain`), PostgreSQL refused the query for the person (`preview`)",
    ),
    (
        2,
        "bad input",
        "the spec, `--schema` DDL, a flag, `--db`, a server that cannot be reached or refuses the login, a \
database that does not match the spec (a table or column missing, the script's own refusals), an unknown \
person, table or key, a query that is not read-only, an output file that cannot be written: the message names \
the place and the fix; nothing is written or applied",
    ),
    (
        3,
        "the run failed",
        "a query failed, every attempt timed out on a lock, another apply holds the apply lock, or rowsec itself \
failed (standard output closed, an internal error)",
    ),
];

/// For `--help`: one line per status.
pub fn help() -> String {
    let mut out = String::from("Exit status (all commands; docs/cli.md, man rowsec):\n");
    for (code, short, _) in STATUSES {
        out.push_str(&format!("  {code}  {short}\n"));
    }
    out.trim_end().to_owned()
}

/// The table of docs/cli.md.
#[cfg(test)]
pub fn markdown() -> String {
    let mut out = String::from("| status | meaning | when |\n|---|---|---|\n");
    for (code, short, long) in STATUSES {
        out.push_str(&format!("| {code} | {short} | {long} |\n"));
    }
    out
}

/// The man page's EXIT STATUS section, in roff.
pub fn roff() -> String {
    let mut out = String::from(".SH \"EXIT STATUS\"\n");
    for (code, short, long) in STATUSES {
        // Backticks mark code in Markdown; roff shows them as they are, so they go.
        let long = long.replace('`', "").replace('\\', "\\\\").replace('-', "\\-");
        out.push_str(&format!(".TP\n.B {code}\n{short}: {long}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn docs_cli_md_holds_the_table() {
        let doc = include_str!("../../docs/cli.md");
        assert!(
            doc.contains(&super::markdown()),
            "docs/cli.md's exit status table differs; paste:\n{}",
            super::markdown()
        );
    }
}
