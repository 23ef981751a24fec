//! rowsec's compiler: a declarative access spec in, the SQL that makes PostgreSQL enforce it out.
//!
//! Stages, each plain data: YAML text -> [`yaml::Node`] tree -> [`model::Spec`] (read and
//! checked by [`mod@load`], one module per part of the spec) -> [`resolve::Grant`]s -> SQL
//! ([`sql::script`]), a [`matrix`] or a [`summary`].
//!
//! Where to look: a problem in a spec is a [`diagnostic::Diagnostic`] with a stable
//! [`codes::Code`]; a scope becomes a policy's conditions in [`sql::policy`]; statements print
//! themselves ([`sql::statement`], [`sql::condition`]) through the one quoting routine
//! ([`sql::ident`]); the script's PL/pgSQL blocks are `sql/compile/*.sql` ([`sql::template`]);
//! the names rowsec gives its objects are in [`names`], the extension's in
//! [`sql::extension_api`].

pub mod always;
pub mod codes;
pub mod diagnostic;
pub mod init;
pub mod json_schema;
pub mod load;
pub mod matrix;
pub mod model;
pub mod names;
pub mod oracle;
pub mod resolve;
pub mod schema;
pub mod sql;
pub mod summary;
pub mod yaml;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use diagnostic::{Outcome, Report};
pub use model::Spec;
pub use schema::Schema;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("error[{}]: cannot read {}: {source}", codes::Code::UnreadableFile, path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    InvalidSpec(Report),
    #[error("{0}")]
    InvalidSchema(Report),
}

/// A checked spec with what `compile` needs to say where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub spec: Spec,
    pub schema: Option<Schema>,
    /// The spec's path as given, used in messages and the script's header.
    pub file: String,
    pub sha256: String,
    /// The spec's text, for diagnostics found after loading ([`check_backend`]).
    pub source: String,
}

fn read(p: &Path) -> Result<String, Error> {
    std::fs::read_to_string(p).map_err(|source| Error::Read { path: p.to_owned(), source })
}

/// Reads and checks a spec file, and the DDL file it must match when given.
pub fn load(spec_path: &Path, schema_path: Option<&Path>) -> Result<Loaded, Error> {
    let source = read(spec_path)?;
    let schema = schema_path.map(load_schema).transpose()?;
    load_str(&spec_path.display().to_string(), &source, schema)
}

/// Reads a DDL file (`--schema`): its tables and columns.
pub fn load_schema(path: &Path) -> Result<Schema, Error> {
    let ddl = read(path)?;
    Schema::parse(&ddl).map_err(|d| {
        Error::InvalidSchema(Report {
            file: path.display().to_string(),
            source: ddl.clone(),
            diagnostics: vec![d],
            outcome: Outcome::default(),
        })
    })
}

/// Like [`load()`], from text already in memory.
pub fn load_str(file: &str, source: &str, schema: Option<Schema>) -> Result<Loaded, Error> {
    let spec = load::load_spec(source, schema.as_ref()).map_err(|diagnostics| {
        Error::InvalidSpec(Report {
            file: file.to_owned(),
            source: source.to_owned(),
            diagnostics,
            outcome: Outcome::default(),
        })
    })?;
    let sha256 = Sha256::digest(source.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    Ok(Loaded { spec, schema, file: file.to_owned(), sha256, source: source.to_owned() })
}

impl Error {
    /// The error as `Display` prints it, coloured for a terminal when `color` is set.
    pub fn render(&self, color: bool) -> String {
        match self {
            Error::InvalidSpec(report) | Error::InvalidSchema(report) => report.render(color),
            Error::Read { .. } if color => format!("\x1b[1;31m{self}\x1b[0m"),
            Error::Read { .. } => self.to_string(),
        }
    }

    /// The same error, saying `outcome` after its count of problems.
    pub fn with_outcome(self, spec: Outcome, schema: Outcome) -> Error {
        match self {
            Error::InvalidSpec(report) => Error::InvalidSpec(Report { outcome: spec, ..report }),
            Error::InvalidSchema(report) => Error::InvalidSchema(Report { outcome: schema, ..report }),
            other => other,
        }
    }
}

pub use sql::extension_api::Backend;
pub use sql::script::{LockTimeout, Options};

/// The SQL script for a loaded spec with the default [`Options`]: deterministic, one
/// transaction, converging.
pub fn compile(loaded: &Loaded) -> String {
    compile_with(loaded, &Options::default())
}

/// What the chosen backend cannot do with this spec: `Err` (E1701 to E1703; every finding, each
/// pointing at its spec key) when the spec asks for something the SQL backend cannot enforce
/// and the user did not accept leaving it out; `Ok` with the keys left out otherwise (empty on
/// the extension backend). Call before [`compile_with`]: nothing is written on an error.
pub fn check_backend(loaded: &Loaded, options: &Options) -> Result<Vec<&'static str>, Error> {
    use diagnostic::{Diagnostic, Span};
    if options.backend == sql::extension_api::Backend::Extension {
        return Ok(Vec::new());
    }
    let source = &loaded.source;
    // Where a key is written: the first line that starts it (after `parent:` when given).
    let at = |key: &str, parent: Option<&str>| -> Span {
        let mut after = parent.is_none();
        for (n, (_, line)) in diagnostic::lines(source).iter().enumerate() {
            let trimmed = line.trim_start();
            if !after {
                after = parent.is_some_and(|p| line.starts_with(p) && line[p.len()..].trim_start().starts_with(':'));
                continue;
            }
            if trimmed.starts_with(key) && trimmed[key.len()..].trim_start().starts_with(':') {
                return Span::point(source, n + 1, line.len() - trimmed.len());
            }
        }
        Span::point(source, 1, 0)
    };
    let mut diagnostics = Vec::new();
    if matches!(loaded.spec.identity, model::Identity::SignedSetting(_)) {
        diagnostics.push(
            Diagnostic::new(
                codes::Code::SignedIdentityOnSqlBackend,
                at("identity", None),
                "signed identity tokens are verified by the rowsec extension; the SQL backend cannot check them",
            )
            .with_hint(
                "use `identity: { setting: NAME }` or `identity: login` with --backend sql, or the extension backend",
            ),
        );
    }
    // rowsec.configure writes the name into the dollar-quoted bodies of the identity's
    // functions, and refuses a "$" at apply time (22023); said here, before anything runs.
    if let model::Identity::Setting(name) = &loaded.spec.identity {
        if name.contains('$') {
            diagnostics.push(
                Diagnostic::new(
                    codes::Code::DollarInSettingOnSqlBackend,
                    at("identity", None),
                    format!("the identity setting name `{name}` has a `$`, which the SQL backend does not take"),
                )
                .with_hint("name the setting without `$` (PostgreSQL allows it; the extension backend takes it)"),
            );
        }
    }
    let left_out = sql::audit::unenforced_on_sql_backend(&loaded.spec);
    if !options.accept_unenforced {
        for key in &left_out {
            let (span, what) = match *key {
                "limits" => {
                    (at("limits", None), "row limits per statement (SPEC item 12) need the extension's executor hooks")
                }
                _ => (
                    at("monitoring", None),
                    "activity and alerts (SPEC items 13, 14) need the extension's executor hooks and background writer",
                ),
            };
            diagnostics.push(
                Diagnostic::new(codes::Code::UnenforcedOnSqlBackend, span, format!("`{key}` cannot be enforced with --backend sql: {what}"))
                    .with_hint("remove the key, use the extension backend, or pass --accept-unenforced to compile without it (the script's header lists what was left out)"),
            );
        }
    }
    if diagnostics.is_empty() {
        Ok(left_out)
    } else {
        Err(Error::InvalidSpec(Report {
            file: loaded.file.clone(),
            source: source.clone(),
            diagnostics,
            outcome: Outcome::default(),
        }))
    }
}

/// Like [`compile()`], with options (`rowsec compile` flags).
pub fn compile_with(loaded: &Loaded, options: &Options) -> String {
    let provenance = sql::script::Provenance { file: &loaded.file, sha256: &loaded.sha256 };
    sql::script::compile(&loaded.spec, loaded.schema.as_ref(), &provenance, options)
}
