//! The health check: a command (run like a hook) or an HTTP URL, tried every 200 ms until
//! it succeeds or its timeout runs out. One success is enough: a release that is up is
//! healthy, however long it took to start within the timeout.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::AgentResult;
use crate::hooks::{run_command, HookEnv};
use ferry_cas::release_config::{HealthCheck, Probe};

/// The pause between two attempts.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(200);

/// What the health check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthReport {
    pub healthy: bool,
    pub attempts: u32,
    /// Why the last attempt failed; empty when healthy.
    pub last_failure: String,
    /// The last attempt's output (for a command).
    pub output_tail: String,
    pub elapsed: Duration,
}

/// Tries `check` until it passes or its timeout runs out.
pub fn check_health(
    check: &HealthCheck,
    env: &HookEnv,
    scratch: &Path,
) -> AgentResult<HealthReport> {
    let started = Instant::now();
    let deadline = started + check.timeout;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let (failure, output_tail) = attempt(&check.probe, env, remaining, scratch)?;
        if failure.is_empty() || Instant::now() + RETRY_INTERVAL >= deadline {
            return Ok(HealthReport {
                healthy: failure.is_empty(),
                attempts,
                last_failure: failure,
                output_tail,
                elapsed: started.elapsed(),
            });
        }
        std::thread::sleep(RETRY_INTERVAL);
    }
}

/// One attempt: the reason it failed (empty on success) and the command's output.
fn attempt(
    probe: &Probe,
    env: &HookEnv,
    timeout: Duration,
    scratch: &Path,
) -> AgentResult<(String, String)> {
    let timeout = timeout.max(Duration::from_millis(50));
    Ok(match probe {
        Probe::Command(command) => {
            let outcome = run_command(command, env, timeout, scratch)?;
            (outcome.failure, outcome.output_tail)
        }
        Probe::Url(url) => match crate::http::get_status(url, timeout) {
            Ok(status) if (200..300).contains(&status) => (String::new(), String::new()),
            Ok(status) => (
                format!("{}:{}{} answered {status}", url.host, url.port, url.path),
                String::new(),
            ),
            Err(reason) => (reason, String::new()),
        },
    })
}
