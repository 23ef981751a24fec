//! The `rowsec` command line: a thin shell over the libraries (`rowsec_generator` for the spec
//! and its SQL, `rowsec_live` for a live database): parsing arguments, printing, exit statuses.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use rowsec_generator::init::Template;
use rowsec_generator::matrix::{self, Format};
// The spec report's closing words (`Outcome` below is this command's exit).
use rowsec_generator::{Backend, LockTimeout, Options, Outcome as ReportOutcome};
use rowsec_live::connect::Target;
use rowsec_live::plan::{self, Mode, Retry};
use rowsec_live::verify;

mod color;
mod exit;

use color::ColorChoice;

/// Each command's help ends with this; the table itself is `exit::STATUSES`.
const EXIT_STATUSES: &str =
    "Exit status: 0 ok, 1 changes or findings, 2 bad input, 3 the run failed (the table: rowsec --help, man rowsec, docs/cli.md).";

#[derive(Parser)]
#[command(
    name = "rowsec",
    version,
    about = "Compile a declarative CRM access spec into PostgreSQL row-level security, and check a live database against it",
    after_help = exit::help()
)]
struct Cli {
    /// Colour diagnostics and errors on standard error: auto (a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    color: ColorChoice,
    /// No notes or progress on standard error, and no summary from a successful `check`; errors are always printed.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

/// Where the database is, and how to print.
#[derive(Args, Clone)]
struct Db {
    /// postgresql://USER@HOST:PORT/DATABASE or "host=... dbname=..."; without it PGHOST, PGPORT,
    /// PGUSER, PGPASSWORD and PGDATABASE are used, as psql does.
    #[arg(long, value_name = "URL")]
    db: Option<String>,
    /// text for people, json for machines.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReviewFormat {
    Markdown,
    Html,
    Json,
}

/// How `plan` and `apply` run the compiled script.
#[derive(Args, Clone)]
struct Run {
    /// A DDL file to check the spec against first (as `compile --schema`).
    #[arg(long)]
    schema: Option<PathBuf>,
    /// How long each attempt waits for a table's (or the apply lock's) lock.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    lock_timeout: LockTimeout,
    /// Attempts when a lock is not granted in time; waits 1s, 2s, 4s, ... between them.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=20))]
    attempts: u32,
    /// As `compile --drop-roles-with-members`.
    #[arg(long)]
    drop_roles_with_members: bool,
    /// As `compile --backend`: extension (the default) or sql.
    #[arg(long, default_value = "extension", value_name = "BACKEND")]
    backend: Backend,
    /// As `compile --accept-unenforced` (with --backend sql).
    #[arg(long)]
    accept_unenforced: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Write a commented starter spec that compiles as it is.
    #[command(after_help = format!("Templates: three-level (full, manager, individual: the levels CRM vendors describe), \
two-level (manager, staff: for small firms where the same people sell and serve), blank (the required parts, no \
role). Without --schema the spec protects the CRM example's tables; with it, the directory, each table's key and \
owner columns and sensitive columns are guessed from the DDL's names and types, each guess marked in a comment.\n\n\
Example:\n  rowsec init --template two-level --schema schema.sql -o spec.yaml\n  rowsec check spec.yaml --schema schema.sql\n\n\
{EXIT_STATUSES}"))]
    Init {
        #[arg(long, value_enum, default_value_t = TemplateArg::ThreeLevel)]
        template: TemplateArg,
        /// The database's DDL (plain, or pg_dump --schema-only output) to guess tables and columns from.
        #[arg(long)]
        schema: Option<PathBuf>,
        /// Write the spec here instead of standard output (an existing file is kept unless --force).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Overwrite the --output file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Validate a spec and print a one-screen summary.
    #[command(
        after_help = format!("Example:\n  rowsec check examples/crm.yaml --schema examples/crm-schema.sql\n\n{EXIT_STATUSES}")
    )]
    Check {
        /// The spec file (YAML).
        spec: PathBuf,
        /// The database's DDL (plain CREATE TABLE ..., or pg_dump --schema-only output) to check
        /// every table and column against.
        #[arg(long)]
        schema: Option<PathBuf>,
    },
    /// Compile a spec into one SQL script (a single transaction, safe to re-run).
    #[command(
        after_help = format!("Example:\n  rowsec compile examples/crm.yaml --schema examples/crm-schema.sql -o crm.sql\n  psql -v ON_ERROR_STOP=1 -f crm.sql\n\nWithout --schema, the script checks the tables and columns it names when it runs.\n\n{EXIT_STATUSES}")
    )]
    Compile {
        spec: PathBuf,
        /// Check against this DDL (plain, or pg_dump --schema-only output) and write explicit
        /// column lists in column-level GRANTs.
        #[arg(long)]
        schema: Option<PathBuf>,
        /// Write the script here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// How long the script waits for each table's lock before failing (500ms, 10s, 2min; 0: no limit).
        #[arg(long, default_value = "10s", value_name = "DURATION")]
        lock_timeout: LockTimeout,
        /// Drop roles the spec no longer has even when logins are members of them (the script names
        /// each membership it ends). Without it such roles are kept, without privileges.
        #[arg(long)]
        drop_roles_with_members: bool,
        /// extension (CREATE EXTENSION rowsec) or sql: the rowsec schema in plain SQL and PL/pgSQL,
        /// for managed PostgreSQL where no C extension may be installed (README).
        #[arg(long, default_value = "extension", value_name = "BACKEND")]
        backend: Backend,
        /// With --backend sql: compile a spec that has limits, monitoring, audit.data or requests
        /// without them (the SQL backend cannot enforce them; E1701 otherwise).
        #[arg(long)]
        accept_unenforced: bool,
        /// With --backend sql: install the SQL backend as a pg_tle trusted-language extension
        /// (rowsec_sql, pgtle.install_extension) where the service offers pg_tle.
        #[arg(long)]
        pg_tle: bool,
    },
    /// Print the role x table x command matrix with column rights.
    #[command(
        after_help = format!("Example:\n  rowsec matrix examples/crm.yaml --format markdown\n  rowsec matrix examples/crm.yaml --format html > matrix.html\n\nJSON (--format json) is stable: see docs/matrix.md.\n\n{EXIT_STATUSES}")
    )]
    Matrix {
        spec: PathBuf,
        #[arg(long, value_enum, default_value_t = FormatArg::Text)]
        format: FormatArg,
    },
    /// Show what applying the spec would change in a live database, grouped per table and role.
    #[command(after_help = format!("Runs the compiled script in a transaction and rolls it back: it takes the \
same locks as apply (each protected table's, briefly, bounded by --lock-timeout).\n\nExample:\n  rowsec plan \
examples/crm.yaml --db postgresql://postgres@db.internal/crm\n\n{EXIT_STATUSES}"))]
    Plan {
        spec: PathBuf,
        #[command(flatten)]
        db: Db,
        #[command(flatten)]
        run: Run,
    },
    /// Apply the spec to a live database in one transaction (retrying on lock timeouts).
    #[command(after_help = format!("Two applies never interleave (a transaction-level advisory lock); a killed \
client or backend leaves the database as it was.\n\nExample:\n  rowsec apply examples/crm.yaml --db \
postgresql://postgres@db.internal/crm\n\n{EXIT_STATUSES}"))]
    Apply {
        spec: PathBuf,
        #[command(flatten)]
        db: Db,
        #[command(flatten)]
        run: Run,
        /// Apply, print what changed, and roll back.
        #[arg(long)]
        dry_run: bool,
    },
    /// Why a person may or may not read, insert, update, delete one row, and their column rights.
    #[command(after_help = format!("Each verdict is also tried as the person, in a transaction that is rolled \
back, and a disagreement with the spec is reported (exit 1).\n\nExample:\n  rowsec explain examples/crm.yaml \
--db postgresql://postgres@db.internal/crm --person bob crm.invoices 42\n\n{EXIT_STATUSES}"))]
    Explain {
        spec: PathBuf,
        #[command(flatten)]
        db: Db,
        /// The person: an id of the directory, or a login.
        #[arg(long)]
        person: String,
        /// A protected table, schema.table.
        table: String,
        /// The row's key.
        key: i64,
    },
    /// Run a read-only query as a person (their login role) and print the result as psql would.
    #[command(after_help = format!("The query runs in a read-only transaction that is rolled back; anything but \
one query is refused.\n\nExample:\n  rowsec preview examples/crm.yaml --db postgresql://postgres@db.internal/crm \
--person bob -c 'SELECT name FROM crm.accounts'\n\n{EXIT_STATUSES}"))]
    Preview {
        spec: PathBuf,
        #[command(flatten)]
        db: Db,
        /// The person: an id of the directory, or a login.
        #[arg(long)]
        person: String,
        /// The query.
        #[arg(short = 'c', long = "command", value_name = "SQL")]
        sql: String,
    },
    /// The manager review (SPEC item 17): per manager, each person below them, their roles, rows and shares.
    #[command(after_help = format!("Built from the directory, the spec's roles, rowsec.shares and rowsec.share_audit; \
the parts with no data source in this database (audit trail, activity, alerts, attestations) are named as \
such, never filled in.\n\nExample:\n  rowsec review examples/crm.yaml --db postgresql://postgres@db.internal/crm \
--since 2026-01-01 --format html > review.html\n\n{EXIT_STATUSES}"))]
    Review {
        spec: PathBuf,
        /// As for the other commands.
        #[arg(long, value_name = "URL")]
        db: Option<String>,
        /// Share changes from this date or time on.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        #[arg(long, value_enum, default_value_t = ReviewFormat::Markdown)]
        format: ReviewFormat,
    },
    /// A scored security health check of the server and database (and rowsec's own, with a spec).
    #[command(after_help = format!("Each finding has a severity, what was found, why it matters and the fix; the \
score starts at 100 and loses 20/10/5/2 points per critical/high/medium/low finding.\n\nExample:\n  rowsec \
doctor --db postgresql://postgres@db.internal/crm examples/crm.yaml\n\n{EXIT_STATUSES}"))]
    Doctor {
        /// The spec, for rowsec's own checks (people, logins, spec roles, shares).
        spec: Option<PathBuf>,
        #[command(flatten)]
        db: Db,
    },
    /// Check a live database against the spec: drift in the catalog, and what real people can do.
    #[command(after_help = format!("Drift: RLS or FORCE off, extra or edited policies, extra grants, spec roles \
with LOGIN or BYPASSRLS, ... Truth: each person of the directory (up to --people) tries every protected \
table and command as their login, in a transaction that is rolled back, compared with the spec's \
meaning.\n\nExample:\n  rowsec verify examples/crm.yaml --db postgresql://postgres@db.internal/crm\n\n{EXIT_STATUSES}"))]
    Verify {
        spec: PathBuf,
        #[command(flatten)]
        db: Db,
        /// Try at most this many people (by id).
        #[arg(long, default_value_t = 500)]
        people: usize,
        /// Compare at most this many rows per table (by key).
        #[arg(long, default_value_t = 2000)]
        rows: i64,
        /// Only the drift check.
        #[arg(long)]
        no_truth: bool,
        /// Also write the checks as a pgTAP file (run it with pg_prove).
        #[arg(long, value_name = "FILE", num_args = 2, value_names = ["pgtap", "FILE"])]
        emit: Option<Vec<String>>,
    },
    /// Print the JSON Schema of the spec (draft-07), for editors' completion and checks.
    #[command(
        after_help = "Example:\n  rowsec schema > rowsec.schema.json\n  # then, as the first line of a spec:\n  \
# yaml-language-server: $schema=rowsec.schema.json\n\nIt checks the shape of a spec only; rowsec check says whether it is valid."
    )]
    Schema,
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  rowsec completions bash > /etc/bash_completion.d/rowsec\n  \
rowsec completions zsh > \"${fpath[1]}/_rowsec\"\n  rowsec completions fish > ~/.config/fish/completions/rowsec.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into a directory.
    #[command(after_help = "Example:\n  rowsec man | man -l -\n  rowsec man --out-dir /usr/share/man/man1")]
    Man {
        /// Write rowsec.1 and rowsec-COMMAND.1 here instead of printing rowsec.1.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// `--template` of `rowsec init`.
#[derive(Clone, Copy, ValueEnum)]
enum TemplateArg {
    ThreeLevel,
    TwoLevel,
    Blank,
}

impl From<TemplateArg> for Template {
    fn from(t: TemplateArg) -> Template {
        match t {
            TemplateArg::ThreeLevel => Template::ThreeLevel,
            TemplateArg::TwoLevel => Template::TwoLevel,
            TemplateArg::Blank => Template::Blank,
        }
    }
}

/// `--format` of `rowsec matrix`.
#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Text,
    Markdown,
    Json,
    /// One self-contained page (no script, nothing fetched), readable on a phone.
    Html,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Text => Format::Text,
            FormatArg::Markdown => Format::Markdown,
            FormatArg::Json => Format::Json,
            FormatArg::Html => Format::Html,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = color::enabled(
        cli.color,
        std::env::var("NO_COLOR").ok().as_deref(),
        std::env::var("TERM").ok().as_deref(),
        std::io::stderr().is_terminal(),
    );
    let prefixed = |message: &str| match message.strip_prefix("rowsec:") {
        Some(rest) => format!("{}{rest}", color::prefix(color)),
        None => message.to_owned(),
    };
    match run(cli) {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(1),
        Err(Failure::Spec(e)) => {
            eprintln!("{}", e.render(color));
            ExitCode::from(2)
        }
        Err(Failure::BadInput(message)) => {
            eprintln!("{}", prefixed(&message));
            ExitCode::from(2)
        }
        Err(Failure::Failed(message)) => {
            eprintln!("{} {message}", color::prefix(color));
            ExitCode::from(3)
        }
        Err(Failure::Internal(message)) => {
            eprintln!("{} internal error: {message}", color::prefix(color));
            ExitCode::from(3)
        }
    }
}

/// How a command that ran ended: exit 0, or 1 (changes, drift, findings).
enum Outcome {
    Clean,
    Findings,
}

enum Failure {
    /// The spec or the DDL, with its diagnostics (exit 2).
    Spec(rowsec_generator::Error),
    BadInput(String),
    /// The run failed against the database (exit 3).
    Failed(String),
    Internal(String),
}

impl From<rowsec_live::Error> for Failure {
    fn from(e: rowsec_live::Error) -> Self {
        if e.is_bad_input() {
            Failure::BadInput(format!("rowsec: {e}"))
        } else {
            Failure::Failed(e.to_string())
        }
    }
}

/// Progress goes to standard error, and only when it is a terminal and not `--quiet`.
fn progress(quiet: bool) -> impl Fn(&str) {
    let tty = std::io::stderr().is_terminal() && !quiet;
    move |line: &str| {
        if tty {
            eprintln!("rowsec: {line}");
        }
    }
}

fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    std::io::stdout().write_all(bytes).map_err(|e| Failure::Internal(format!("cannot write to standard output: {e}")))
}

/// A man page from clap's description of `cmd`, with the exit statuses.
fn man_page(cmd: &clap::Command) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out).map_err(|e| Failure::Internal(e.to_string()))?;
    out.extend_from_slice(exit::roff().as_bytes());
    Ok(out)
}

fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::Internal(e.to_string()))?;
    println!("{text}");
    Ok(())
}

fn plan_or_apply(
    spec: PathBuf,
    db: Db,
    run: Run,
    mode: Mode,
    exit_on_changes: bool,
    quiet: bool,
) -> Result<Outcome, Failure> {
    let loaded = rowsec_generator::load(&spec, run.schema.as_deref())?;
    let options = Options {
        lock_timeout: run.lock_timeout,
        drop_roles_with_members: run.drop_roles_with_members,
        embedded: false,
        backend: run.backend,
        accept_unenforced: run.accept_unenforced,
        ..Options::default()
    };
    // A spec the backend cannot enforce is refused before anything connects.
    rowsec_generator::check_backend(&loaded, &options)?;
    let target = Target::new(db.db.as_deref())?;
    let mut client = target.connect()?;
    let retry = Retry { attempts: run.attempts, first_wait: Duration::from_secs(1) };
    let plan = plan::run(&mut client, &target.database(), &loaded, &options, mode, &retry, &progress(quiet))?;
    match db.format {
        OutputFormat::Text => print!("{}", plan.render()),
        OutputFormat::Json => print_json(&plan)?,
    }
    Ok(if exit_on_changes && !plan.changes.is_empty() { Outcome::Findings } else { Outcome::Clean })
}

impl From<rowsec_generator::Error> for Failure {
    fn from(e: rowsec_generator::Error) -> Self {
        // Every library error is about the user's input.
        Failure::Spec(e)
    }
}

/// What was and was not checked against a database schema, on stderr: standard output is the
/// summary or the SQL. `compile` scripts check names when they run.
fn schema_note(loaded: &rowsec_generator::Loaded, at_apply_time: &str, quiet: bool) {
    if quiet {
        return;
    }
    match &loaded.schema {
        Some(schema) => eprintln!("note: schema: {}", schema.describe()),
        None => eprintln!(
            "note: no --schema given: table and column names were not checked against a database schema; {at_apply_time}"
        ),
    }
}

fn run(cli: Cli) -> Result<Outcome, Failure> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Init { template, schema, output, force } => {
            let template = Template::from(template);
            let layout = match &schema {
                Some(path) => {
                    let file = path.display().to_string();
                    let schema = rowsec_generator::load_schema(path)?;
                    rowsec_generator::init::guess(&schema, &file).map_err(|e| Failure::BadInput(e.to_string()))?
                }
                None => rowsec_generator::init::crm_example(),
            };
            let mut command = format!("rowsec init --template {}", template.name());
            if let Some(path) = &schema {
                command.push_str(&format!(" --schema {}", path.display()));
            }
            let text = rowsec_generator::init::render(template, &layout, &command);
            match output {
                Some(path) => {
                    let mut file = std::fs::OpenOptions::new();
                    file.write(true);
                    if force {
                        file.create(true).truncate(true);
                    } else {
                        file.create_new(true);
                    }
                    file.open(&path).and_then(|mut f| f.write_all(text.as_bytes())).map_err(|e| {
                        let fix =
                            if e.kind() == std::io::ErrorKind::AlreadyExists { " (--force overwrites it)" } else { "" };
                        Failure::BadInput(format!("rowsec: cannot write {}: {e}{fix}", path.display()))
                    })?;
                }
                None => std::io::stdout().write_all(text.as_bytes()).map_err(|e| Failure::Internal(e.to_string()))?,
            }
            Ok(Outcome::Clean)
        }
        Command::Check { spec, schema } => {
            let loaded = rowsec_generator::load(&spec, schema.as_deref())
                .map_err(|e| e.with_outcome(ReportOutcome::SpecInvalid, ReportOutcome::SpecNotChecked))?;
            if !quiet {
                print!("{}", rowsec_generator::summary::render(&loaded));
            }
            if loaded.schema.is_none() {
                schema_note(
                    &loaded,
                    "give --schema with the database's DDL (pg_dump --schema-only) to check them",
                    quiet,
                );
            }
            Ok(Outcome::Clean)
        }
        Command::Compile {
            spec,
            schema,
            output,
            lock_timeout,
            drop_roles_with_members,
            backend,
            accept_unenforced,
            pg_tle,
        } => {
            if pg_tle && backend != Backend::Sql {
                return Err(Failure::BadInput(
                    "rowsec: --pg-tle packages the SQL backend: give it with --backend sql".to_owned(),
                ));
            }
            let loaded = rowsec_generator::load(&spec, schema.as_deref())?;
            let options =
                Options { lock_timeout, drop_roles_with_members, embedded: false, backend, accept_unenforced, pg_tle };
            let left_out = rowsec_generator::check_backend(&loaded, &options)?;
            schema_note(&loaded, "the script checks them when it runs", quiet);
            if !left_out.is_empty() && !quiet {
                eprintln!(
                    "note: --accept-unenforced: {} of the spec left out: the SQL backend cannot enforce them",
                    left_out.join(", ")
                );
            }
            let sql = rowsec_generator::compile_with(&loaded, &options);
            match output {
                Some(path) => std::fs::write(&path, sql)
                    .map_err(|e| Failure::BadInput(format!("cannot write {}: {e}", path.display()))),
                None => std::io::stdout().write_all(sql.as_bytes()).map_err(|e| Failure::Internal(e.to_string())),
            }?;
            Ok(Outcome::Clean)
        }
        Command::Matrix { spec, format } => {
            let loaded = rowsec_generator::load(&spec, None)
                .map_err(|e| e.with_outcome(ReportOutcome::SpecInvalid, ReportOutcome::SpecInvalid))?;
            print!("{}", matrix::render(&matrix::build(&loaded), format.into()));
            Ok(Outcome::Clean)
        }
        Command::Explain { spec, db, person, table, key } => {
            let loaded = rowsec_generator::load(&spec, None)?;
            let target = Target::new(db.db.as_deref())?;
            let mut client = target.connect()?;
            let e = rowsec_live::explain::run(&mut client, &loaded.spec, &person, &table, key)?;
            match db.format {
                OutputFormat::Text => print!("{}", e.render()),
                OutputFormat::Json => print_json(&e)?,
            }
            Ok(if e.agrees() { Outcome::Clean } else { Outcome::Findings })
        }
        Command::Preview { spec, db, person, sql } => {
            let loaded = rowsec_generator::load(&spec, None)?;
            rowsec_live::preview::check_read_only(&sql)?;
            let target = Target::new(db.db.as_deref())?;
            let mut client = target.connect()?;
            let p = rowsec_live::preview::run(&mut client, &loaded.spec, &person, &sql)?;
            match db.format {
                OutputFormat::Text => print!("{}", p.render()),
                OutputFormat::Json => print_json(&p)?,
            }
            Ok(if p.error.is_none() { Outcome::Clean } else { Outcome::Findings })
        }
        Command::Review { spec, db, since, format } => {
            let loaded = rowsec_generator::load(&spec, None)?;
            let target = Target::new(db.as_deref())?;
            let mut client = target.connect()?;
            let review = rowsec_live::review::run(&mut client, &target.database(), &loaded, since.as_deref())?;
            match format {
                ReviewFormat::Markdown => print!("{}", review.markdown()),
                ReviewFormat::Html => print!("{}", review.html()),
                ReviewFormat::Json => print_json(&review)?,
            }
            Ok(Outcome::Clean)
        }
        Command::Doctor { spec, db } => {
            let loaded = spec.map(|s| rowsec_generator::load(&s, None)).transpose()?;
            let target = Target::new(db.db.as_deref())?;
            let mut client = target.connect()?;
            let report = rowsec_live::doctor::run(&mut client, &target.database(), loaded.as_ref().map(|l| &l.spec))?;
            match db.format {
                OutputFormat::Text => print!("{}", report.render()),
                OutputFormat::Json => print_json(&report)?,
            }
            Ok(if report.findings.is_empty() { Outcome::Clean } else { Outcome::Findings })
        }
        Command::Verify { spec, db, people, rows, no_truth, emit } => {
            let loaded = rowsec_generator::load(&spec, None)?;
            let target = Target::new(db.db.as_deref())?;
            let emit = match emit.as_deref() {
                None => None,
                Some([kind, file]) if kind == "pgtap" => Some(PathBuf::from(file)),
                Some(other) => {
                    return Err(Failure::BadInput(format!(
                        "rowsec: --emit {}: unknown format\n  fix: --emit pgtap FILE",
                        other.join(" ")
                    )))
                }
            };
            let mut client = target.connect()?;
            let options = verify::Options { people, rows, truth: !no_truth, ..verify::Options::default() };
            let report = verify::run(&mut client, &target.database(), &loaded, &options, &progress(quiet))?;
            if let Some(file) = emit {
                let tap = rowsec_live::pgtap::emit(&mut client, &loaded, &options, &progress(quiet))?;
                std::fs::write(&file, tap)
                    .map_err(|e| Failure::BadInput(format!("rowsec: cannot write {}: {e}", file.display())))?;
            }
            match db.format {
                OutputFormat::Text => print!("{}", report.render()),
                OutputFormat::Json => print_json(&report)?,
            }
            Ok(if report.clean() { Outcome::Clean } else { Outcome::Findings })
        }
        Command::Plan { spec, db, run } => plan_or_apply(spec, db, run, Mode::DryRun, true, quiet),
        Command::Apply { spec, db, run, dry_run } => {
            plan_or_apply(spec, db, run, if dry_run { Mode::DryRun } else { Mode::Commit }, false, quiet)
        }
        Command::Schema => {
            write_stdout(rowsec_generator::json_schema::JSON_SCHEMA.as_bytes())?;
            Ok(Outcome::Clean)
        }
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "rowsec", &mut out);
            write_stdout(&out)?;
            Ok(Outcome::Clean)
        }
        Command::Man { out_dir } => {
            let cli = Cli::command();
            match out_dir {
                None => write_stdout(&man_page(&cli)?)?,
                Some(dir) => {
                    let cannot = |e: std::io::Error| {
                        Failure::BadInput(format!("rowsec: cannot write into {}: {e}", dir.display()))
                    };
                    std::fs::create_dir_all(&dir).map_err(cannot)?;
                    std::fs::write(dir.join("rowsec.1"), man_page(&cli)?).map_err(cannot)?;
                    for sub in cli.get_subcommands() {
                        let name = format!("rowsec-{}", sub.get_name());
                        let sub =
                            sub.clone().name(name.clone()).version(cli.get_version().unwrap_or_default().to_owned());
                        std::fs::write(dir.join(format!("{name}.1")), man_page(&sub)?).map_err(cannot)?;
                    }
                }
            }
            Ok(Outcome::Clean)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_commands_help_names_the_statuses_of_the_table() {
        let brief: Vec<String> =
            super::exit::STATUSES.iter().map(|(code, short, _)| format!("{code} {short}")).collect();
        assert!(super::EXIT_STATUSES.contains(&brief.join(", ")), "{}", super::EXIT_STATUSES);
    }
}
