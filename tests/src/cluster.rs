//! A throwaway PostgreSQL cluster: initdb into a fresh directory under /tmp, start on a free
//! port, trust authentication on 127.0.0.1 (every person logs in as their own role without a
//! password), and tear down when the test process ends, however it ends.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use postgres::{Client, NoTls};

/// Where the server binaries live: `ROWSEC_PG_BIN` (tests/run.sh points it at each private
/// copy in turn, 15 and 18, see tests/pg.sh), else the directory of the `pg_config` on PATH.
pub fn pg_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(bin) = std::env::var("ROWSEC_PG_BIN") {
            return bin;
        }
        Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .expect("set ROWSEC_PG_BIN to the bin directory of a PostgreSQL with the extension installed (tests/run.sh does), or put its pg_config on PATH")
    })
}

/// Directory names start with this so that tests/run.sh can clean up after a killed run.
pub const DIR_PREFIX: &str = "rowsec-e2e-";

/// The non-error messages a connection received, in order.
pub type Notices = Arc<Mutex<Vec<postgres::error::DbError>>>;

pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    /// The OS user that owns and runs the server; `None` when we are that user already.
    run_as: Option<String>,
    /// The server options it was started with (`restart` uses them again).
    opts: String,
}

static DB_COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Cluster {
    /// initdb + start. Panics with the server log on failure: nothing else can run without it.
    pub fn start() -> Cluster {
        match crate::fixture::backend() {
            // Managed PostgreSQL: no rowsec library anywhere in the server's configuration.
            rowsec_generator::Backend::Sql => Cluster::start_with(""),
            rowsec_generator::Backend::Extension => Cluster::start_with("-c shared_preload_libraries=rowsec"),
        }
    }

    /// A cluster whose server does not preload rowsec, as a postgresql.conf without the setting
    /// would have it (for the errors that say it is missing).
    pub fn start_without_preload() -> Cluster {
        Cluster::start_with("")
    }

    /// A cluster started with extra server options (e.g. `-c shared_preload_libraries=citus,rowsec`
    /// for the nodes of a Citus cluster, tests/src/citus.rs).
    pub fn start_with(preload: &str) -> Cluster {
        // PostgreSQL refuses to run as root, so root hands the cluster to `postgres`.
        let run_as = if is_root() { Some("postgres".to_owned()) } else { None };
        let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}-{}", std::process::id(), stamp % 1_000_000_000));
        std::fs::create_dir_all(&dir).expect("create cluster dir");
        if let Some(user) = &run_as {
            run(Command::new("chown").arg(format!("{user}:")).arg(&dir));
        }
        let data = dir.join("data");
        let mut cluster = Cluster { dir, port: 0, run_as, opts: String::new() };
        cluster.watchdog();
        cluster.pg(
            "initdb",
            &["-D", data.to_str().unwrap(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"],
        );
        // A port can be taken between probing and binding; try a few.
        for attempt in 0..5 {
            cluster.port = free_port();
            let opts = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
                 -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB {preload}",
                cluster.port,
                cluster.dir.display()
            );
            cluster.opts = opts.clone();
            let log = cluster.dir.join("server.log");
            // The server runs with Rust backtraces enabled, as one started from a developer's
            // shell does: no client-visible error may carry one (tests/tests/client_errors.rs).
            let ok = cluster
                .pg_command(
                    "pg_ctl",
                    &[
                        "-D",
                        data.to_str().unwrap(),
                        "-l",
                        log.to_str().unwrap(),
                        "-o",
                        &opts,
                        "-w",
                        "-t",
                        "60",
                        "start",
                    ],
                )
                .env("RUST_BACKTRACE", "1")
                .env("RUST_LIB_BACKTRACE", "1")
                .stdout(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return cluster;
            }
            eprintln!("cluster start attempt {attempt} failed:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        panic!("could not start a PostgreSQL cluster in {}", cluster.dir.display());
    }

    /// A background shell that stops the server and removes the directory once this process is
    /// gone: statics are never dropped, and a panicking or killed test must not leak a server.
    fn watchdog(&self) {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.3; done; \
             {stop} >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            stop = self.stop_command(),
            dir = self.dir.display()
        );
        let _ = Command::new("bash")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }

    fn stop_command(&self) -> String {
        let pg_ctl = format!("{}/pg_ctl -D '{}' stop -m immediate", pg_bin(), self.dir.join("data").display());
        match &self.run_as {
            Some(user) => format!("runuser -u {user} -- {pg_ctl}"),
            None => pg_ctl,
        }
    }

    fn pg_command(&self, program: &str, args: &[&str]) -> Command {
        let path = format!("{}/{program}", pg_bin());
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--", &path]);
                c
            }
            None => Command::new(path),
        };
        cmd.args(args).current_dir(&self.dir);
        cmd
    }

    fn pg(&self, program: &str, args: &[&str]) {
        run(&mut self.pg_command(program, args));
    }

    /// A connection as `user` to `dbname`.
    pub fn connect(&self, user: &str, dbname: &str) -> Result<Client, postgres::Error> {
        postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user(user)
            .dbname(dbname)
            .application_name("rowsec-e2e")
            .connect(NoTls)
    }

    /// A connection as `user` to `dbname` that keeps every NOTICE, WARNING (and other
    /// non-error message) the server sends it.
    pub fn connect_collecting_notices(&self, user: &str, dbname: &str) -> Result<(Client, Notices), postgres::Error> {
        let notices = Notices::default();
        let sink = notices.clone();
        let client = postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user(user)
            .dbname(dbname)
            .application_name("rowsec-e2e")
            .notice_callback(move |n| sink.lock().unwrap_or_else(|e| e.into_inner()).push(n))
            .connect(NoTls)?;
        Ok((client, notices))
    }

    /// The server's log so far (stderr of the postmaster and its backends).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// A superuser connection (bypasses row-level security: used for setup and inspection).
    pub fn admin(&self, dbname: &str) -> Client {
        self.connect("postgres", dbname).unwrap_or_else(|e| panic!("superuser connect to {dbname}: {e}"))
    }

    /// A fresh, empty database with a unique name.
    pub fn create_database(&self, prefix: &str, template: Option<&str>) -> String {
        let n = DB_COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{prefix}_{n}");
        let template = template.map(|t| format!(" TEMPLATE {t} STRATEGY FILE_COPY")).unwrap_or_default();
        self.admin("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}{template}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        name
    }

    /// Kills the server as a power cut would (`pg_ctl stop -m immediate`: no shutdown
    /// checkpoint; the next start runs crash recovery).
    pub fn crash(&self) {
        let data = self.data_dir();
        let _ = self.pg_command("pg_ctl", &["-D", data.to_str().unwrap(), "stop", "-m", "immediate"]).output();
    }

    /// Starts the server again after [`Cluster::crash`], on the same port and options.
    pub fn start_after_crash(&self) {
        let (data, log) = (self.data_dir(), self.dir.join("server.log"));
        self.pg(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-o", &self.opts, "-w", "-t", "60", "start"],
        );
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Restarts the server with the options it was started with (for settings that need it).
    pub fn restart(&self) {
        let (data, log) = (self.data_dir(), self.dir.join("server.log"));
        self.pg(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-w", "-t", "60", "-m", "fast", "restart"],
        );
    }

    /// Runs a shell command as the OS user that owns the cluster (to write its files).
    pub fn as_owner(&self, script: &str) {
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--", "bash", "-c", script]);
                c
            }
            None => {
                let mut c = Command::new("bash");
                c.args(["-c", script]);
                c
            }
        };
        run(cmd.current_dir(&self.dir));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg("-c")
            .arg(self.stop_command())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("probe a free port")
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The repository root (this crate lives in `<root>/tests`).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent")
}
