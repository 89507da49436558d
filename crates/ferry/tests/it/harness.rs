//! Starting servers and running `ferry` commands against them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_store_postgres::test_database::{on_own_runtime, TestDatabase};
use serde_json::Value;

pub const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// A `ferry server` process on a free port with its own data directory.
pub struct Server {
    child: Child,
    pub url: String,
    /// The admin's token from the data directory; empty for a server that joined a
    /// database another server made it for.
    pub admin_token: String,
    pub dir: tempfile::TempDir,
    /// The data directory: `dir/data`, or another server's.
    data: PathBuf,
    /// The PostgreSQL database the server keeps its state in, when the suite runs on
    /// PostgreSQL; dropped with the last server that uses it.
    database: Option<Arc<TestDatabase>>,
    log: Arc<Mutex<String>>,
}

/// The databases of stopped servers, by data directory, kept for a server started again on
/// that directory (`Server::start_in`).
static STOPPED_DATABASES: Mutex<Vec<(PathBuf, Arc<TestDatabase>)>> = Mutex::new(Vec::new());

/// `ferry server --listen 127.0.0.1:0 --data DATA`, run by hand on the data directory of a
/// stopped server, with that server's database.
pub fn server_command(data: &Path) -> Command {
    let mut command = Command::new(FERRY);
    command
        .args(["server", "--listen", "127.0.0.1:0", "--data"])
        .arg(data);
    let stopped = STOPPED_DATABASES.lock().unwrap();
    if let Some((_, database)) = stopped.iter().find(|(dir, _)| dir == data) {
        command.env("FERRY_DATABASE", &database.url);
    }
    command
}

/// Which database servers of this run keep their state in: `FERRY_TEST_BACKEND=postgres`
/// runs the suite on PostgreSQL (a fresh database per server, see
/// `ferry_store_postgres::test_database`); SQLite otherwise.
pub fn on_postgres() -> bool {
    std::env::var("FERRY_TEST_BACKEND").is_ok_and(|backend| backend == "postgres")
}

/// A fresh PostgreSQL database whatever the suite runs on, or `None` (said on stderr) where
/// PostgreSQL is not available and not required. Created from a thread of its own: tests
/// may run inside a runtime that cannot be blocked on.
pub fn postgres_database() -> Option<Arc<TestDatabase>> {
    on_own_runtime(|| ferry_store_postgres::test_database::fresh("a test on PostgreSQL"))
        .map(Arc::new)
}

/// The database of a server of a suite run on PostgreSQL.
fn fresh_database() -> Arc<TestDatabase> {
    postgres_database()
        .expect("FERRY_TEST_BACKEND=postgres needs a PostgreSQL server (FERRY_TEST_POSTGRES)")
}

impl Server {
    /// Starts a server in a new temp directory and waits until it listens.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        Server::start_in(dir)
    }

    /// Starts a server in a new temp directory with extra `ferry server` flags.
    pub fn start_with(args: &[&str]) -> Server {
        Server::launch(tempfile::tempdir().unwrap(), args)
    }

    /// Starts a server on `dir/data` (which may hold an earlier server's data).
    pub fn start_in(dir: tempfile::TempDir) -> Server {
        Server::launch(dir, &[])
    }

    /// Starts a server on `dir/data` (which may hold an earlier server's data) with extra
    /// `ferry server` flags.
    pub fn start_in_with(dir: tempfile::TempDir, args: &[&str]) -> Server {
        Server::launch(dir, args)
    }

    /// Starts a server in a new temp directory with extra `ferry server` flags and
    /// environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, String)]) -> Server {
        Server::launch_with_env(tempfile::tempdir().unwrap(), args, env)
    }

    /// Starts a second server on this server's data directory, as servers sharing one
    /// database run; it has a temp directory of its own for clients' config.
    pub fn start_sharing(&self) -> Server {
        Server::launch_on(
            tempfile::tempdir().unwrap(),
            &self.data_dir(),
            self.database.clone(),
            &[],
            &[],
        )
    }

    /// Starts a server on a fresh PostgreSQL database whatever the suite runs on, or `None`
    /// (said on stderr) where PostgreSQL is not available and not required.
    pub fn start_on_postgres(args: &[&str]) -> Option<Server> {
        let database = postgres_database()?;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        Some(Server::launch_on(dir, &data, Some(database), args, &[]))
    }

    /// Starts a server on `dir/data` with its state in `database`, with extra flags and
    /// environment variables.
    pub fn start_in_database(
        dir: tempfile::TempDir,
        database: Arc<TestDatabase>,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Server {
        let data = dir.path().join("data");
        Server::launch_on(dir, &data, Some(database), args, env)
    }

    /// Starts a server on the data directory `data` (in no temp directory: the test owns it)
    /// with its state in `database`, or in SQLite in `data` without one, with extra flags
    /// and environment variables.
    pub fn start_on_data(
        data: &Path,
        database: Option<Arc<TestDatabase>>,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Server {
        Server::launch_on(tempfile::tempdir().unwrap(), data, database, args, env)
    }

    /// Starts another server on this server's data directory and database, with extra
    /// flags: as servers behind one load balancer run.
    pub fn start_peer(&self, args: &[&str]) -> Server {
        Server::launch_on(
            tempfile::tempdir().unwrap(),
            &self.data_dir(),
            self.database.clone(),
            args,
            &[],
        )
    }

    /// `ferry server` on the data directory `data` and this server's database, audit key
    /// and secret key, run by hand: a server joining this one.
    pub fn joining_command(&self, data: &Path) -> Command {
        let mut command = server_command(data);
        if let Some(database) = &self.database {
            command.env("FERRY_DATABASE", &database.url);
        }
        command
            .arg("--audit-key")
            .arg(self.data_dir().join("audit-key"))
            .arg("--secret-key")
            .arg(self.data_dir().join("secret-key"));
        command
    }

    /// Closes every connection to the server's PostgreSQL database and refuses new ones for
    /// `down`, as a database restart does.
    pub fn database_outage(&self, down: Duration) {
        let database = self.database.clone().expect("a server on PostgreSQL");
        on_own_runtime(move || async move { database.outage(down).await });
    }

    /// Kills the server with SIGKILL: no request finishes, nothing is cleaned up.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn launch(dir: tempfile::TempDir, args: &[&str]) -> Server {
        Server::launch_with_env(dir, args, &[])
    }

    fn launch_with_env(dir: tempfile::TempDir, args: &[&str], env: &[(&str, String)]) -> Server {
        let data = dir.path().join("data");
        let database = on_postgres().then(|| {
            let mut stopped = STOPPED_DATABASES.lock().unwrap();
            match stopped.iter().position(|(dir, _)| *dir == data) {
                Some(at) => stopped.remove(at).1,
                None => fresh_database(),
            }
        });
        Server::launch_on(dir, &data, database, args, env)
    }

    fn launch_on(
        dir: tempfile::TempDir,
        data: &Path,
        database: Option<Arc<TestDatabase>>,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Server {
        let listen: &[&str] = if args.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut child = Command::new(FERRY)
            .arg("server")
            .args(listen)
            .arg("--data")
            .arg(data)
            .args(args)
            .envs(
                database
                    .as_ref()
                    .map(|db| ("FERRY_DATABASE", db.url.as_str())),
            )
            .envs(env.iter().map(|(name, value)| (name, value)))
            .env("FERRY_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting ferry server");
        let log = Arc::new(Mutex::new(String::new()));
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let log_writer = log.clone();
        // Keeps draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // http:// or, with --tls, https://
                if let Some(at) = line.find("listening on http") {
                    let _ = url_tx.send(line[at + "listening on ".len()..].trim().to_owned());
                }
                let mut log = log_writer.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let url = url_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the server did not start: {}", log.lock().unwrap()));
        // Only the first server on a database writes one: a server joining it has none.
        let admin_token = std::fs::read_to_string(data.join("admin-token"))
            .map(|token| token.trim().to_owned())
            .unwrap_or_default();
        Server {
            child,
            url,
            admin_token,
            data: data.to_owned(),
            database,
            dir,
            log,
        }
    }

    /// Runs `sql` against the server's database directly, as someone who can write it but
    /// holds no key would; returns the rows changed.
    pub async fn tamper(&self, sql: &str) -> u64 {
        use sqlx::Connection;
        match &self.database {
            Some(database) => {
                let mut db = sqlx::PgConnection::connect(&database.url).await.unwrap();
                let changed = sqlx::query(sql).execute(&mut db).await.unwrap();
                db.close().await.unwrap();
                changed.rows_affected()
            }
            None => {
                let url = format!("sqlite://{}", self.data_dir().join("ferry.db").display());
                let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
                let changed = sqlx::query(sql).execute(&mut db).await.unwrap();
                db.close().await.unwrap();
                changed.rows_affected()
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    /// The PostgreSQL database the server keeps its state in, if it does.
    pub fn database_url(&self) -> Option<String> {
        self.database.as_ref().map(|d| d.url.clone())
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Runs `ferry ARGS` with `token`, against this server, with a config file of its own
    /// (and, for a server with --tls, trusting its CA).
    pub fn ferry(&self, token: &str, args: &[&str]) -> Run {
        let mut command = Command::new(FERRY);
        command
            .args(args)
            .env("FERRY_SERVER", &self.url)
            .env("FERRY_TOKEN", token)
            .env("FERRY_CONFIG", self.dir.path().join("config.toml"));
        if self.url.starts_with("https://") {
            command.env("FERRY_CA_CERT", self.data_dir().join("tls/ca.pem"));
        }
        Run::of(&mut command)
    }

    /// Runs `ferry ARGS` as the admin.
    pub fn admin(&self, args: &[&str]) -> Run {
        self.ferry(&self.admin_token, args)
    }

    /// A one-time enrollment token for target `name` in `env` (`ferry target enroll`).
    pub fn enrollment_token(&self, env: &str, name: &str) -> String {
        let run = self.admin(&["target", "enroll", env, name]).success();
        run.stdout.trim().to_owned()
    }

    /// Creates a user through the CLI and returns their token.
    pub fn create_user(&self, name: &str, role: &str, teams: &[&str]) -> String {
        let mut args = vec!["user", "create", name, "--role", role];
        for team in teams {
            args.extend(["--team", team]);
        }
        let run = self.admin(&args).success();
        run.stdout.trim().to_owned()
    }

    /// Stops the server with SIGTERM and returns its exit status.
    pub fn stop(mut self) -> (std::process::ExitStatus, tempfile::TempDir, String) {
        signal(&self.child, "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Give the log thread a moment to read the last lines.
                std::thread::sleep(Duration::from_millis(100));
                let log = self.log();
                let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
                if let Some(database) = self.database.take() {
                    STOPPED_DATABASES
                        .lock()
                        .unwrap()
                        .push((self.data.clone(), database));
                }
                return (status, dir, log);
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends the signal `name` (TERM, KILL, …) to `child`.
pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// A finished `ferry` command.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(command: &mut Command) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = command
            .stdin(Stdio::null())
            .output()
            .expect("running ferry");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        }
    }

    /// Asserts exit 0.
    pub fn success(self) -> Run {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }

    /// Asserts the exit code and one `error: ` line on stderr containing `message`.
    pub fn fails(self, code: i32, message: &str) -> Run {
        assert_eq!(self.code, code, "expected exit {code}: {self:#?}");
        assert!(
            self.stderr.starts_with("error: ") && self.stderr.contains(message),
            "expected an error line with {message:?}: {self:#?}"
        );
        self
    }

    /// Stdout as the one JSON document it must be.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:#?}"))
    }
}

/// The number of audit events, as the admin sees them.
/// The credential of the agent on `root`, as it keeps it in `.ferry/agent.toml`.
pub fn agent_credential(root: &Path) -> String {
    let state = std::fs::read_to_string(root.join(".ferry/agent.toml")).unwrap();
    state
        .lines()
        .find_map(|l| l.strip_prefix("credential = "))
        .unwrap()
        .trim_matches('"')
        .to_owned()
}

/// The CLI run against the server at `url` with `token`, reading no config file: for a
/// server the harness did not start, or from a thread that holds no `Server`.
pub fn client(url: &str, token: &str, args: &[&str]) -> Run {
    Run::of(
        Command::new(FERRY)
            .args(args)
            .env("FERRY_SERVER", url)
            .env("FERRY_TOKEN", token)
            .env("FERRY_CONFIG", "/nonexistent/ferry-config.toml"),
    )
}

pub fn audit_len(server: &Server) -> usize {
    server
        .admin(&["audit", "--json"])
        .success()
        .json()
        .as_array()
        .unwrap()
        .len()
}

/// How many changes the audit trail records: its events but the `refused` ones (a refused
/// change is recorded, and changes nothing).
pub fn changes_len(server: &Server) -> usize {
    let events = server.admin(&["audit", "--json"]).success().json();
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] != "refused")
        .count()
}

/// The audit events after the first `skip`, each as `ACTOR ACTION SUBJECT`.
pub fn audit_summary(server: &Server, skip: usize) -> Vec<String> {
    let events = server.admin(&["audit", "--json"]).success().json();
    events.as_array().unwrap()[skip..]
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["subject"].as_str().unwrap()
            )
        })
        .collect()
}

/// Waits until the file at `path` (an agent's log) holds `text`; what it holds then.
pub fn wait_for_line(path: &Path, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.contains(text) {
            return log;
        }
        assert!(Instant::now() < deadline, "no {text:?} in the log: {log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The file mode bits of `path`.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Writes `content` over the (read-only) file at `path` in place: `chmod u+w`, then write,
/// as someone with a shell on the machine might. Blob files and release files are
/// read-only.
pub fn write_over(path: &Path, content: impl AsRef<[u8]>) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | 0o200)).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A `ferry agent` process on its own root, killed when dropped.
pub struct Agent {
    pub child: Child,
    pub root: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic pseudo-random bytes: content that neither compresses nor repeats.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed * 2 + 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
