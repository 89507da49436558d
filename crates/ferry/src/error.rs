//! What a command failure carries: the exit code class, a stable code and one line for people.

/// How a command ended without succeeding (the exit codes of docs/cli.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Exit 1: it failed (unknown thing, server unreachable, server error).
    Failed,
    /// Exit 2: the command line itself is wrong or incomplete.
    Usage,
    /// Exit 3: refused before anything changed (permission, policy, bad input).
    Refused,
}

/// A failed command.
#[derive(Debug)]
pub struct CliError {
    pub failure: Failure,
    pub code: String,
    pub message: String,
    /// The command already printed its one JSON document (a report saying what is wrong),
    /// so `--json` adds no error document.
    pub reported: bool,
    /// The server's `details` of the refusal, passed on to `--json` as they came.
    pub details: Option<serde_json::Value>,
}

impl CliError {
    pub fn new(failure: Failure, code: &str, message: impl Into<String>) -> CliError {
        CliError {
            failure,
            code: code.to_owned(),
            message: message.into(),
            reported: false,
            details: None,
        }
    }

    /// A failure whose JSON report the command has printed already.
    pub fn after_report(failure: Failure, message: impl Into<String>) -> CliError {
        CliError {
            reported: true,
            ..CliError::new(failure, "reported", message)
        }
    }

    pub fn failed(message: impl Into<String>) -> CliError {
        CliError::new(Failure::Failed, "failed", message)
    }

    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::new(Failure::Usage, "usage", message)
    }

    pub fn refused(message: impl Into<String>) -> CliError {
        CliError::new(Failure::Refused, "invalid", message)
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self.failure {
            Failure::Failed => 1,
            Failure::Usage => 2,
            Failure::Refused => 3,
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> CliError {
        CliError::failed(format!("{error:#}"))
    }
}

/// The result of a command.
pub type CliResult<T = ()> = Result<T, CliError>;
