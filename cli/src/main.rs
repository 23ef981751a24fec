//! The `rowsec` command line: a thin shell over the library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use rowsec_generator::matrix::{self, Format};
use rowsec_generator::{LockTimeout, Options, Outcome};

#[derive(Parser)]
#[command(name = "rowsec", version, about = "Compile a declarative CRM access spec into PostgreSQL row-level security")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a spec and print a one-screen summary.
    #[command(
        after_help = "Example:\n  rowsec check examples/crm.yaml --schema examples/crm-schema.sql\n\nExit status: 0 valid, 2 invalid spec/schema or unreadable file, 1 internal error."
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
        after_help = "Example:\n  rowsec compile examples/crm.yaml --schema examples/crm-schema.sql -o crm.sql\n  psql -v ON_ERROR_STOP=1 -f crm.sql\n\nExit status: 0 written, 2 invalid input (nothing written), 1 internal error.\nWithout --schema, the script checks the tables and columns it names when it runs."
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
    },
    /// Print the role x table x command matrix with column rights.
    #[command(
        after_help = "Example:\n  rowsec matrix examples/crm.yaml --format markdown\n\nJSON (--format json) is stable: see docs/matrix.md."
    )]
    Matrix {
        spec: PathBuf,
        #[arg(long, value_enum, default_value_t = FormatArg::Text)]
        format: FormatArg,
    },
}

/// `--format` of `rowsec matrix`.
#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Text,
    Markdown,
    Json,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Text => Format::Text,
            FormatArg::Markdown => Format::Markdown,
            FormatArg::Json => Format::Json,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::BadInput(message)) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
        Err(Failure::Internal(message)) => {
            eprintln!("rowsec: internal error: {message}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    BadInput(String),
    Internal(String),
}

impl From<rowsec_generator::Error> for Failure {
    fn from(e: rowsec_generator::Error) -> Self {
        // Every library error is about the user's input.
        Failure::BadInput(e.to_string())
    }
}

/// What was and was not checked against a database schema, on stderr: standard output is the
/// summary or the SQL. `compile` scripts check names when they run.
fn schema_note(loaded: &rowsec_generator::Loaded, at_apply_time: &str) {
    match &loaded.schema {
        Some(schema) => eprintln!("note: schema: {}", schema.describe()),
        None => eprintln!(
            "note: no --schema given: table and column names were not checked against a database schema; {at_apply_time}"
        ),
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Check { spec, schema } => {
            let loaded = rowsec_generator::load(&spec, schema.as_deref())
                .map_err(|e| e.with_outcome(Outcome::SpecInvalid, Outcome::SpecNotChecked))?;
            print!("{}", rowsec_generator::summary::render(&loaded));
            if loaded.schema.is_none() {
                schema_note(&loaded, "give --schema with the database's DDL (pg_dump --schema-only) to check them");
            }
            Ok(())
        }
        Command::Compile { spec, schema, output, lock_timeout, drop_roles_with_members } => {
            let loaded = rowsec_generator::load(&spec, schema.as_deref())?;
            schema_note(&loaded, "the script checks them when it runs");
            let options = Options { lock_timeout, drop_roles_with_members };
            let sql = rowsec_generator::compile_with(&loaded, &options);
            match output {
                Some(path) => std::fs::write(&path, sql)
                    .map_err(|e| Failure::BadInput(format!("cannot write {}: {e}", path.display()))),
                None => std::io::stdout().write_all(sql.as_bytes()).map_err(|e| Failure::Internal(e.to_string())),
            }
        }
        Command::Matrix { spec, format } => {
            let loaded = rowsec_generator::load(&spec, None)
                .map_err(|e| e.with_outcome(Outcome::SpecInvalid, Outcome::SpecInvalid))?;
            print!("{}", matrix::render(&matrix::build(&loaded), format.into()));
            Ok(())
        }
    }
}
