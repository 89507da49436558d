//! Running the release's shell commands (hooks and health-check commands): `sh -c` in the
//! release's directory with the `FERRY_*` variables, stdin closed, stdout and stderr
//! together in one file (a file, not a pipe, so a hook that leaves a daemon running
//! behind it does not keep us waiting for end-of-file), in its own process group so a
//! timeout kills everything it started.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, Pid, Signal};

use crate::account::Account;
use crate::config_files::ConfigValues;
use crate::error::{AgentError, AgentResult};
use ferry_domain::step_log::{tail_of_output, MAX_OUTPUT_BYTES};

/// How much of a failed command's output goes with the reason of its failure (the step's
/// log keeps more: [`MAX_OUTPUT_BYTES`]).
pub const OUTPUT_TAIL_BYTES: u64 = 4096;

/// What a command is told about the deploy it runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookEnv {
    pub app: String,
    pub env: String,
    pub version: String,
    pub previous_version: Option<String>,
    /// The new release's directory: also the command's working directory.
    pub release_dir: PathBuf,
    pub shared_dir: PathBuf,
    /// The configuration the release was staged with: each key is a variable too (a
    /// `FERRY_*` variable wins over a key of the same name).
    pub config: ConfigValues,
    /// The application's own account, when a root agent runs its commands as it: they
    /// then get its user, its group only, and a fresh environment.
    pub account: Option<Account>,
}

impl HookEnv {
    /// The `FERRY_*` variables.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("FERRY_APP", self.app.clone()),
            ("FERRY_ENV", self.env.clone()),
            ("FERRY_VERSION", self.version.clone()),
            (
                "FERRY_PREVIOUS_VERSION",
                self.previous_version.clone().unwrap_or_default(),
            ),
            ("FERRY_RELEASE_DIR", self.release_dir.display().to_string()),
            ("FERRY_SHARED_DIR", self.shared_dir.display().to_string()),
        ]
    }
}

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutcome {
    /// Exited with status 0 in time.
    pub success: bool,
    /// Killed because it ran past its timeout.
    pub timed_out: bool,
    /// Why it failed, for people ("exited with status 3"); empty on success.
    pub failure: String,
    /// The last 4 KiB of its combined stdout and stderr.
    pub output_tail: String,
    /// Its combined stdout and stderr for the step's log: the last 64 KiB, after a
    /// `[… N bytes cut]` line when cut.
    pub output: String,
    pub elapsed: Duration,
}

/// Runs `command` with `sh -c` for the deploy described by `env`, killing its process
/// group after `timeout`. `scratch` holds the output file while it runs.
pub fn run_command(
    command: &str,
    env: &HookEnv,
    timeout: Duration,
    scratch: &Path,
) -> AgentResult<CommandOutcome> {
    let output = output_file(scratch)?;
    let stdout = output.try_clone().map_err(|e| AgentError::io(scratch, e))?;
    let stderr = output.try_clone().map_err(|e| AgentError::io(scratch, e))?;
    let started = Instant::now();
    let mut child = Command::new("sh");
    if let Some(account) = &env.account {
        // Nothing of the agent's environment (root's) reaches the application's commands.
        child
            .env_clear()
            .envs(account.environment())
            .uid(account.uid)
            .gid(account.gid);
    }
    let mut child = child
        .arg("-c")
        .arg(command)
        .current_dir(&env.release_dir)
        .envs(env.config.env_vars())
        .envs(env.vars())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|e| AgentError::io(Path::new("sh"), e))?;
    let wait_error = |e: std::io::Error| AgentError::io(Path::new("sh"), e);
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait().map_err(wait_error)? {
            break (status, false);
        }
        if started.elapsed() >= timeout {
            // The child leads its own group: this reaches everything it started.
            if let Some(pid) = Pid::from_raw(child.id() as i32) {
                let _ = kill_process_group(pid, Signal::KILL);
            }
            break (child.wait().map_err(wait_error)?, true);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let output = read_output(output).map_err(|e| AgentError::io(scratch, e))?;
    let failure = describe_failure(status, timed_out, timeout);
    Ok(CommandOutcome {
        success: failure.is_empty(),
        timed_out,
        failure,
        output_tail: short_tail(&output).to_owned(),
        output,
        elapsed,
    })
}

/// A fresh file in `scratch`, unlinked at once: only the open descriptor keeps it, so
/// nothing is left behind whatever happens.
fn output_file(scratch: &Path) -> AgentResult<File> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    fs::create_dir_all(scratch).map_err(|e| AgentError::io(scratch, e))?;
    let path = scratch.join(format!(
        "output-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| AgentError::io(&path, e))?;
    fs::remove_file(&path).map_err(|e| AgentError::io(&path, e))?;
    Ok(file)
}

/// The last [`MAX_OUTPUT_BYTES`] of the file as text, bounded as step logs are.
fn read_output(mut file: File) -> std::io::Result<String> {
    let len = file.seek(SeekFrom::End(0))?;
    file.seek(SeekFrom::Start(len.saturating_sub(MAX_OUTPUT_BYTES as u64)))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    Ok(tail_of_output(len, &tail))
}

/// The last [`OUTPUT_TAIL_BYTES`] of `output`, from a character boundary, without the note
/// of what was cut.
fn short_tail(output: &str) -> &str {
    let mut start = output.len().saturating_sub(OUTPUT_TAIL_BYTES as usize);
    while !output.is_char_boundary(start) {
        start += 1;
    }
    &output[start..]
}

fn describe_failure(status: ExitStatus, timed_out: bool, timeout: Duration) -> String {
    if timed_out {
        format!("killed after running past its timeout of {timeout:?}")
    } else if let Some(code) = status.code().filter(|code| *code != 0) {
        format!("exited with status {code}")
    } else if let Some(signal) = status.signal() {
        format!("killed by signal {signal}")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(dir: &Path) -> HookEnv {
        HookEnv {
            app: "shop".into(),
            env: "prd".into(),
            version: "2.0".into(),
            previous_version: None,
            release_dir: dir.to_owned(),
            shared_dir: dir.join("shared"),
            config: ConfigValues::none(),
            account: None,
        }
    }

    #[test]
    fn commands_see_the_configuration_but_ferry_variables_win() {
        let dir = tempfile::tempdir().unwrap();
        let values = [("DATABASE_URL", "postgres://db/x"), ("FERRY_APP", "not me")];
        let values = values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = HookEnv {
            config: ConfigValues::new(3, values).unwrap(),
            ..env(dir.path())
        };
        let outcome = run_command(
            "echo \"$DATABASE_URL $FERRY_APP\"",
            &env,
            Duration::from_secs(10),
            &dir.path().join("scratch"),
        )
        .unwrap();
        assert_eq!(outcome.output_tail, "postgres://db/x shop\n");
        // The values never show in what is logged of the request.
        assert!(!format!("{env:?}").contains("postgres"));
    }

    #[test]
    fn commands_see_the_ferry_variables_and_run_in_the_release() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = run_command(
            "echo \"$FERRY_APP $FERRY_ENV $FERRY_VERSION [$FERRY_PREVIOUS_VERSION] $(pwd) $FERRY_SHARED_DIR\"; echo oops >&2",
            &env(dir.path()),
            Duration::from_secs(10),
            &dir.path().join("scratch"),
        )
        .unwrap();
        assert!(outcome.success, "{outcome:?}");
        let pwd = dir.path().canonicalize().unwrap();
        assert_eq!(
            outcome.output_tail,
            format!(
                "shop prd 2.0 [] {} {}/shared\noops\n",
                pwd.display(),
                dir.path().display()
            )
        );
        assert_eq!(fs::read_dir(dir.path().join("scratch")).unwrap().count(), 0);
    }

    #[test]
    fn failures_and_long_output_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = run_command(
            "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done; exit 3",
            &env(dir.path()),
            Duration::from_secs(10),
            dir.path(),
        )
        .unwrap();
        assert!(!outcome.success && !outcome.timed_out);
        assert_eq!(outcome.failure, "exited with status 3");
        assert!(outcome.output_tail.len() <= OUTPUT_TAIL_BYTES as usize);
        assert!(outcome.output_tail.ends_with("line 1999\n"));
        assert!(!outcome.output_tail.contains("line 1\n"));
        // The step's log keeps it all: it is under the bound.
        assert!(outcome.output.starts_with("line 0\n") && outcome.output.ends_with("line 1999\n"));
    }

    #[test]
    fn output_past_the_bound_keeps_its_end_and_says_what_was_cut() {
        let dir = tempfile::tempdir().unwrap();
        // 100 000 bytes of 'é' (two bytes each), then a last line.
        let outcome = run_command(
            "head -c 100000 /dev/zero | tr '\\0' 'a' | sed 's/a/é/g'; echo; echo last",
            &env(dir.path()),
            Duration::from_secs(10),
            dir.path(),
        )
        .unwrap();
        assert!(outcome.success, "{outcome:?}");
        let (note, kept) = outcome.output.split_once('\n').unwrap();
        assert!(
            note.starts_with("[… ") && note.ends_with(" bytes cut]"),
            "{note}"
        );
        assert!(kept.len() <= MAX_OUTPUT_BYTES, "{}", kept.len());
        assert!(kept.ends_with("é\nlast\n"));
        assert!(kept
            .trim_end()
            .trim_end_matches("last")
            .trim_end()
            .chars()
            .all(|c| c == 'é'));
        assert!(outcome.output_tail.len() <= OUTPUT_TAIL_BYTES as usize);
        assert!(outcome.output_tail.ends_with("é\nlast\n"));
    }

    #[test]
    fn a_timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let command = format!(
            "echo started; (sleep 2; touch {}) & sleep 30",
            marker.display()
        );
        let started = Instant::now();
        let outcome = run_command(
            &command,
            &env(dir.path()),
            Duration::from_millis(300),
            dir.path(),
        )
        .unwrap();
        assert!(outcome.timed_out && !outcome.success, "{outcome:?}");
        assert!(outcome.failure.contains("timeout"));
        assert_eq!(outcome.output_tail, "started\n");
        assert!(started.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the background job outlived the timeout");
    }

    #[test]
    fn a_daemon_left_running_does_not_hold_the_hook() {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let outcome = run_command(
            "sleep 3 & echo done",
            &env(dir.path()),
            Duration::from_secs(10),
            dir.path(),
        )
        .unwrap();
        assert!(outcome.success);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
