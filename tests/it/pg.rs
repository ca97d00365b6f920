//! A real PostgreSQL server for a test: `initdb` into a temporary directory and `pg_ctl` on a
//! free loopback port, as the `postgres` system user when the test runs as root (PostgreSQL
//! refuses to run as root), stopped by `pg_ctl stop` (and, failing that, by the postmaster's
//! pid) when dropped, also when an assertion fails half-way.
//!
//! Without Debian's `postgresql` the tests that need one skip and say so, unless
//! `MIXREC_REQUIRE_POSTGRES=1` (CI: `.ci/run` installs the package), which makes its absence a
//! failure.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The database user the tests log in as, and its password.
pub const USER: &str = "mixrec";
/// Only ever in the tests' own server.
pub const PASSWORD: &str = "it-pw-4f9c";
/// The system user the server runs as when the tests run as root.
const SYSTEM_USER: &str = "postgres";

/// The folder holding `initdb` and `pg_ctl`: on the PATH, else Debian's
/// `/usr/lib/postgresql/<version>/bin`. Panics when missing and `MIXREC_REQUIRE_POSTGRES=1`.
fn bin_dir() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path)
        .map(|d| d.join("initdb"))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok());
    let debian = || {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .filter(|d| d.join("initdb").is_file())
            .collect();
        found.sort();
        found.pop()
    };
    let found = on_path
        .and_then(|p| p.parent().map(Path::to_owned))
        .or_else(debian);
    if found.is_none() {
        let required = std::env::var("MIXREC_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "MIXREC_REQUIRE_POSTGRES=1 but initdb is neither on the PATH nor in \
             /usr/lib/postgresql/*/bin (apt-get install postgresql)"
        );
        let test = std::thread::current().name().unwrap_or("a test").to_owned();
        let line =
            format!("skipped {test}: PostgreSQL is not installed (apt-get install postgresql)\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
    found
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// A free loopback port (free when asked; the server binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running server; stopped when dropped.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    /// Its port on 127.0.0.1.
    pub port: u16,
    running: bool,
}

impl Postgres {
    /// `initdb` and `pg_ctl start`, or `None` (said on stderr) without PostgreSQL.
    pub fn start() -> Option<Self> {
        let bin = bin_dir()?;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), PASSWORD).unwrap();
        let as_postgres = is_root();
        if as_postgres {
            let owner = format!("{SYSTEM_USER}:");
            let chown = Command::new("chown")
                .args(["-R", &owner])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(chown.success(), "chown {owner} {}", dir.path().display());
        }
        let mut pg = Self {
            dir,
            bin,
            as_postgres,
            port: free_port(),
            running: false,
        };
        let data = pg.data();
        let pwfile = format!("--pwfile={}", pg.dir.path().join("pw").display());
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                USER,
                &pwfile,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        pg.resume();
        Some(pg)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// `program args` of the server's folder, as the `postgres` user when we are root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.as_postgres {
            true => {
                let mut c = Command::new("runuser");
                c.args(["-u", SYSTEM_USER, "--"]).arg(path);
                c
            }
            false => Command::new(path),
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Starts the server (again) on its port and waits until it accepts connections.
    pub fn resume(&mut self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &options, "-w", "start"],
        );
        self.running = true;
    }

    /// Stops the server (fast shutdown), waiting for it to end.
    pub fn stop(&mut self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
        self.running = false;
    }

    /// The connection URL of database `postgres`, with the password.
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// The same URL without the password.
    pub fn url_without_password(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/postgres", self.port)
    }

    /// A client logged in as [`USER`].
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls).expect("the test server answers")
    }

    /// Runs `sql` (one or more statements).
    pub fn execute(&self, sql: &str) {
        self.client()
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// Loads CSV `rows` into `table` with `COPY ... FROM STDIN`.
    pub fn copy_csv(&self, table: &str, rows: &str) {
        let mut client = self.client();
        let mut w = client
            .copy_in(&format!("COPY {table} FROM STDIN (FORMAT csv)"))
            .unwrap();
        w.write_all(rows.as_bytes()).unwrap();
        w.finish().unwrap();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        let data = self.data();
        let stopped = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output()
            .is_ok_and(|o| o.status.success());
        if stopped {
            return;
        }
        // The postmaster's pid is the first line of postmaster.pid.
        let pid = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().map(str::to_owned));
        if let Some(pid) = pid {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
    }
}
