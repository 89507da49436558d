//! A real nginx, and a real PHP-FPM behind it, started by a test with configurations of
//! their own in a temp directory: pid files, sockets, temp files and logs there, nginx on a
//! free loopback port. The configurations are the ones `docs/zero-downtime.md` shows.
//!
//! Where nginx or PHP-FPM is not installed the tests that need it say so and pass, unless
//! `FERRY_TEST_REQUIRE_NGINX` or `FERRY_TEST_REQUIRE_PHP_FPM` is set (as `.ci/run` sets
//! them, having installed both).

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::signal;
use crate::moto::free_port;

/// How long nginx or PHP-FPM may take to start listening.
const PATIENCE: Duration = Duration::from_secs(30);

/// An nginx master process (with its worker) serving one application's `current`.
pub struct Nginx {
    daemon: Daemon,
    pub port: u16,
}

/// How nginx hands pages to the application.
pub enum Pages<'a> {
    /// Static files of the release.
    Static,
    /// `.php` scripts of the release, run by the PHP-FPM listening on this socket.
    Php(&'a Path),
}

impl Nginx {
    /// Starts nginx serving `app_dir` (`ROOT/apps/APP`), or `None` (having said why) where
    /// nginx is not installed and not required.
    pub fn start(app_dir: &Path, pages: Pages) -> Option<Nginx> {
        let program = installed("nginx", &["nginx"], "FERRY_TEST_REQUIRE_NGINX")?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("nginx.conf");
        std::fs::write(&config, nginx_config(dir.path(), port, app_dir, &pages)).unwrap();
        let mut command = Command::new(program);
        command
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&config)
            .args(["-g", "daemon off;"]);
        let daemon = Daemon::start("nginx", &mut command, dir, "error.log", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Some(Nginx { daemon, port })
    }

    /// What nginx logged as errors.
    pub fn error_log(&self) -> String {
        self.daemon.log()
    }
}

/// The configuration the tests run nginx with: `docs/zero-downtime.md` shows it.
fn nginx_config(dir: &Path, port: u16, app_dir: &Path, pages: &Pages) -> String {
    let dir = dir.display();
    let app = app_dir.display();
    // The master drops to `user` only when it runs as root; the workers must read the
    // target's root, which only its owner may.
    let user = if running_as_root() {
        "user root;\n"
    } else {
        ""
    };
    let pages = match pages {
        Pages::Static => "        index index.html;\n".to_owned(),
        Pages::Php(socket) => format!(
            r#"        index index.php;
        location ~ \.php$ {{
            try_files $uri =404;
            fastcgi_pass unix:{socket};
            fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;
            fastcgi_param DOCUMENT_ROOT $realpath_root;
            fastcgi_param SCRIPT_NAME $fastcgi_script_name;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param CONTENT_TYPE $content_type;
            fastcgi_param CONTENT_LENGTH $content_length;
            fastcgi_param REQUEST_URI $request_uri;
            fastcgi_param SERVER_PROTOCOL $server_protocol;
        }}
"#,
            socket = socket.display()
        ),
    };
    format!(
        r#"{user}worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{
    worker_connections 256;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    types {{
        text/html html;
        text/css css;
    }}
    server {{
        listen 127.0.0.1:{port};
        root {app}/current;
        # ferry.toml (hooks, shared paths) and dot-files (a rendered .env) are not pages.
        location = /ferry.toml {{
            return 404;
        }}
        location ~ /\. {{
            return 404;
        }}
{pages}
        # A page asks for its assets under its own release's version: they are served
        # from that release's directory, whatever `current` points at by then.
        location ~ "^/assets/(?<release>[A-Za-z0-9][A-Za-z0-9._+-]*)/(?<file>.+)$" {{
            alias {app}/releases/$release/assets/$file;
            add_header Cache-Control "public, max-age=31536000, immutable";
        }}
    }}
}}
"#
    )
}

/// A PHP-FPM master process with one pool of the current user, listening on a socket.
pub struct PhpFpm {
    daemon: Daemon,
    pub socket: PathBuf,
}

impl PhpFpm {
    /// Starts PHP-FPM with its pid file at `pid_file` (where the `after_switch` hook reads
    /// it), or `None` (having said why) where PHP-FPM is not installed and not required.
    pub fn start(pid_file: &Path) -> Option<PhpFpm> {
        let program = installed(
            "PHP-FPM",
            &[
                "php-fpm",
                "php-fpm8.4",
                "php-fpm8.3",
                "php-fpm8.2",
                "php-fpm8.1",
            ],
            "FERRY_TEST_REQUIRE_PHP_FPM",
        )?;
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("php-fpm.sock");
        let config = dir.path().join("php-fpm.conf");
        std::fs::write(&config, php_fpm_config(dir.path(), pid_file, &socket)).unwrap();
        let mut command = Command::new(program);
        command
            .arg("--nodaemonize")
            .arg("--fpm-config")
            .arg(&config);
        if running_as_root() {
            command.arg("--allow-to-run-as-root");
        }
        let daemon = Daemon::start("php-fpm", &mut command, dir, "php-fpm.log", || {
            socket.exists() && pid_file.exists()
        });
        Some(PhpFpm { daemon, socket })
    }

    /// What PHP-FPM logged.
    pub fn log(&self) -> String {
        self.daemon.log()
    }
}

/// The configuration the tests run PHP-FPM with: `docs/zero-downtime.md` shows it.
fn php_fpm_config(dir: &Path, pid_file: &Path, socket: &Path) -> String {
    let user = if running_as_root() {
        "user = root\n"
    } else {
        ""
    };
    format!(
        r#"[global]
pid = {pid}
error_log = {dir}/php-fpm.log
; A reload (SIGUSR2) lets each worker finish the request it is serving for this long
; before stopping it: with 0, the default, requests in flight are cut off.
process_control_timeout = 10s

[app]
{user}listen = {socket}
pm = static
pm.max_children = 4
"#,
        pid = pid_file.display(),
        dir = dir.display(),
        socket = socket.display(),
    )
}

/// A server's master process in the foreground, with its files in a temp directory of its
/// own; stopped with SIGTERM when dropped, so that it stops its workers too (SIGKILL would
/// leave them serving).
struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    /// The file in `dir` it logs to.
    log: &'static str,
}

impl Daemon {
    /// Spawns `command` and waits until `ready`; fails with its log if it exits first or
    /// is not ready within [`PATIENCE`].
    fn start(
        what: &str,
        command: &mut Command,
        dir: tempfile::TempDir,
        log: &'static str,
        ready: impl Fn() -> bool,
    ) -> Daemon {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        let mut daemon = Daemon { child, dir, log };
        let deadline = Instant::now() + PATIENCE;
        while !ready() {
            let exited = daemon.child.try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "{what} did not start ({exited:?}): {}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(self.log)).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        signal(&self.child, "TERM");
        let _ = self.child.wait();
    }
}

/// The first of `names` found in `PATH` or the usual `sbin` directories; `None` (having
/// said so) where there is none, unless the environment variable `required` is set.
fn installed(what: &str, names: &[&str], required: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    let found = dirs
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|program| program.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os(required).is_none(),
            "{required} is set but {what} is not installed: apt-get install nginx php-fpm"
        );
        // Straight to stderr, past the test harness's capture, so it is seen.
        let _ = writeln!(
            std::io::stderr(),
            "zero downtime test skipped: {what} is not installed (apt-get install nginx php-fpm)"
        );
    }
    found
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|own| own.uid() == 0)
}
