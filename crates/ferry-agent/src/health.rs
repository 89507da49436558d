//! The health check: a command (run like a hook) or an HTTP URL, tried every 200 ms until
//! it succeeds or its timeout runs out. One success is enough: a release that is up is
//! healthy, however long it took to start within the timeout. Every attempt is logged: how
//! it ended and, for a command, what it printed.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::AgentResult;
use crate::hooks::{run_command, HookEnv};
use ferry_cas::release_config::{HealthCheck, Probe};
use ferry_domain::step_log::OutputTail;

/// The pause between two attempts.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(200);

/// What the health check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthReport {
    pub healthy: bool,
    pub attempts: u32,
    /// How the last attempt ended: `answered 200`, `exited with status 1`, `cannot connect
    /// to …`.
    pub last_ended: String,
    /// The last attempt's output (for a command), its last 4 KiB.
    pub output_tail: String,
    /// Every attempt, a line each saying how it ended, followed by what a command printed;
    /// bounded as step logs are.
    pub output: String,
    pub elapsed: Duration,
}

/// What the check asks: its command, or its URL.
pub fn probe_label(probe: &Probe) -> String {
    match probe {
        Probe::Command(command) => command.clone(),
        Probe::Url(url) => url.to_string(),
    }
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
    let mut log = AttemptLog::default();
    loop {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let tried = attempt(&check.probe, env, remaining, scratch)?;
        log.add(attempts, &tried);
        if tried.healthy || Instant::now() + RETRY_INTERVAL >= deadline {
            return Ok(HealthReport {
                healthy: tried.healthy,
                attempts,
                last_ended: tried.ended,
                output_tail: tried.output_tail,
                output: log.finish(),
                elapsed: started.elapsed(),
            });
        }
        std::thread::sleep(RETRY_INTERVAL);
    }
}

/// The attempts as logged: each one that ended differently from the one before in full,
/// and a run of attempts that ended the same way, with the same output, as one line
/// (`attempts 2-10: the same again`), so a check retried for its whole timeout stays short.
#[derive(Default)]
struct AttemptLog {
    text: OutputTail,
    /// How the last attempt written in full ended, and what it printed.
    last: Option<(String, String)>,
    /// The run of attempts since then that ended the same way: the first and the last.
    same: Option<(u32, u32)>,
}

impl AttemptLog {
    fn add(&mut self, number: u32, tried: &Attempt) {
        let this = (tried.ended.clone(), tried.output.clone());
        if self.last.as_ref() == Some(&this) {
            let first = self.same.map_or(number, |(first, _)| first);
            self.same = Some((first, number));
            return;
        }
        self.say_same();
        self.text
            .push(&format!("attempt {number}: {}\n", tried.ended));
        self.text.push(&tried.output);
        self.last = Some(this);
    }

    fn say_same(&mut self) {
        match self.same.take() {
            Some((first, last)) if first == last => self
                .text
                .push(&format!("attempt {first}: the same again\n")),
            Some((first, last)) => self
                .text
                .push(&format!("attempts {first}-{last}: the same again\n")),
            None => {}
        }
    }

    fn finish(mut self) -> String {
        self.say_same();
        self.text.finish()
    }
}

/// One attempt of the check.
struct Attempt {
    healthy: bool,
    ended: String,
    output: String,
    output_tail: String,
}

fn attempt(
    probe: &Probe,
    env: &HookEnv,
    timeout: Duration,
    scratch: &Path,
) -> AgentResult<Attempt> {
    let timeout = timeout.max(Duration::from_millis(50));
    Ok(match probe {
        Probe::Command(command) => {
            let outcome = run_command(command, env, timeout, scratch)?;
            Attempt {
                healthy: outcome.success,
                ended: match outcome.success {
                    true => "exited with status 0".to_owned(),
                    false => outcome.failure,
                },
                output: outcome.output,
                output_tail: outcome.output_tail,
            }
        }
        Probe::Url(url) => {
            let (healthy, ended) = match crate::http::get_status(url, timeout) {
                Ok(status) => ((200..300).contains(&status), format!("answered {status}")),
                Err(reason) => (false, reason),
            };
            Attempt {
                healthy,
                ended,
                output: String::new(),
                output_tail: String::new(),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tried(ended: &str, output: &str) -> Attempt {
        Attempt {
            healthy: false,
            ended: ended.to_owned(),
            output: output.to_owned(),
            output_tail: String::new(),
        }
    }

    #[test]
    fn attempts_that_end_the_same_way_are_logged_once() {
        let refused = || tried("exited with status 7", "closed\n");
        let cases: [(Vec<Attempt>, &str); 4] = [
            (vec![refused()], "attempt 1: exited with status 7\nclosed\n"),
            (
                vec![refused(), refused()],
                "attempt 1: exited with status 7\nclosed\nattempt 2: the same again\n",
            ),
            (
                vec![
                    refused(),
                    refused(),
                    refused(),
                    tried("exited with status 0", ""),
                ],
                "attempt 1: exited with status 7\nclosed\nattempts 2-3: the same again\n\
                 attempt 4: exited with status 0\n",
            ),
            (
                vec![
                    refused(),
                    tried("exited with status 7", "other\n"),
                    refused(),
                ],
                "attempt 1: exited with status 7\nclosed\nattempt 2: exited with status 7\n\
                 other\nattempt 3: exited with status 7\nclosed\n",
            ),
        ];
        for (attempts, expected) in cases {
            let mut log = AttemptLog::default();
            for (number, attempt) in (1..).zip(&attempts) {
                log.add(number, attempt);
            }
            assert_eq!(log.finish(), expected);
        }
    }
}
