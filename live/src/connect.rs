//! Connecting: `--db URL` (a `postgresql://` URL or a `key=value` string), or the usual PG*
//! environment when it is absent, as psql does.

use postgres::config::SslMode;
use postgres::{Client, Config};

use crate::error::{describe, Error, Result};

/// Where to connect, as the user gave it (for messages) and as a configuration.
pub struct Target {
    pub shown: String,
    pub config: Config,
}

impl Target {
    /// `--db` when given, else PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (defaults: the
    /// local socket directory, 5432, the OS user, a database named like the user).
    pub fn new(db: Option<&str>) -> Result<Target> {
        let mut config = match db {
            Some(url) => {
                url.parse::<Config>().map_err(|e| Error::BadUrl { given: url.to_owned(), reason: e.to_string() })?
            }
            None => Config::new(),
        };
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if config.get_hosts().is_empty() {
            let host = env("PGHOST").unwrap_or_else(|| "/var/run/postgresql".to_owned());
            config.host(&host);
        }
        if config.get_ports().is_empty() {
            if let Some(port) = env("PGPORT") {
                let port = port.parse::<u16>().map_err(|_| Error::BadUrl {
                    given: format!("PGPORT={port}"),
                    reason: "not a port number".to_owned(),
                })?;
                config.port(port);
            }
        }
        if config.get_user().is_none() {
            let user = env("PGUSER").or_else(|| env("USER")).unwrap_or_else(|| "postgres".to_owned());
            config.user(&user);
        }
        // The URL's sslmode wins; postgres::Config cannot tell an absent one from prefer.
        if !db.is_some_and(|u| u.contains("sslmode")) {
            match env("PGSSLMODE").as_deref() {
                None | Some("prefer") | Some("allow") => {}
                Some("disable") => {
                    config.ssl_mode(SslMode::Disable);
                }
                Some("require") => {
                    config.ssl_mode(SslMode::Require);
                }
                Some(other) => {
                    return Err(Error::BadUrl {
                        given: format!("PGSSLMODE={other}"),
                        reason:
                            "rowsec supports disable, allow, prefer and require (it does not verify certificates yet)"
                                .to_owned(),
                    })
                }
            }
        }
        if config.get_password().is_none() {
            if let Some(password) = env("PGPASSWORD") {
                config.password(password);
            }
        }
        if config.get_dbname().is_none() {
            let db = env("PGDATABASE").or_else(|| config.get_user().map(str::to_owned)).unwrap_or_default();
            config.dbname(&db);
        }
        config.application_name("rowsec");
        config.connect_timeout(std::time::Duration::from_secs(10));
        let shown = describe_target(&config);
        Ok(Target { shown, config })
    }

    /// The database's name, for output people read (the host and port are in error messages).
    pub fn database(&self) -> String {
        self.config.get_dbname().unwrap_or("").to_owned()
    }

    pub fn connect(&self) -> Result<Client> {
        // sslmode prefer (the default) and require encrypt without verifying the server's
        // certificate, as libpq does for those modes.
        let tls = native_tls::TlsConnector::builder()
            .danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true)
            .build()
            .map_err(|e| Error::Connect {
                target: self.shown.clone(),
                reason: format!("cannot set up TLS: {e}"),
                fix: "check the system's OpenSSL installation".to_owned(),
            })?;
        let tls = postgres_native_tls::MakeTlsConnector::new(tls);
        self.config.connect(tls).map_err(|e| {
            let reason = describe(&e);
            let fix = match e.as_db_error().map(|d| d.code().code()) {
                Some("3D000") => "create the database, or name an existing one in --db".to_owned(),
                Some("28000") | Some("28P01") => {
                    "check the user and password in --db (or PGUSER/PGPASSWORD) and the server's pg_hba.conf".to_owned()
                }
                _ => "check that the server runs and listens there (pg_isready), and the host and port in --db"
                    .to_owned(),
            };
            Error::Connect { target: self.shown.clone(), reason, fix }
        })
    }
}

/// user@host:port/dbname, without the password.
fn describe_target(c: &Config) -> String {
    let host = match c.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => String::new(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!("{}@{host}:{port}/{}", c.get_user().unwrap_or(""), c.get_dbname().unwrap_or(""))
}
