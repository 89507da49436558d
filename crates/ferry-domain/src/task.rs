//! Agent tasks: work a person asks one target's agent to do now for one application (check
//! for drift, capture hand edits, back up, restore), beside converging on what it should
//! run. A task is pending until the agent reports how it went; one the agent never answers
//! (it stopped, or was taken away mid-task) is over after [`ANSWER_WITHIN_MS`], so nobody
//! waits on it forever.

use crate::vocabulary::vocabulary;

vocabulary! {
    /// Where a task is.
    pub enum TaskState ("task state") {
        /// Asked for; the agent has not reported yet.
        Pending = "pending",
        /// The agent did it.
        Succeeded = "succeeded",
        /// The agent tried and could not; its message says why.
        Failed = "failed",
        /// The agent did not answer in time.
        Expired = "expired",
    }
}

/// How long an agent has to report a task: the longest task (a backup of much data over a
/// slow link) fits, a forgotten one does not linger.
pub const ANSWER_WITHIN_MS: i64 = 60 * 60 * 1000;

impl TaskState {
    /// The state of a task stored as `self`, requested at `requested_ms`, at `now_ms`: a
    /// pending one past its time has expired.
    pub fn at(self, requested_ms: i64, now_ms: i64) -> TaskState {
        match self {
            TaskState::Pending if now_ms.saturating_sub(requested_ms) >= ANSWER_WITHIN_MS => {
                TaskState::Expired
            }
            state => state,
        }
    }

    /// Whether the task is over: nothing more will happen to it.
    pub fn is_over(self) -> bool {
        self != TaskState::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_task_expires_when_its_time_is_up_and_nothing_else_does() {
        let hour = ANSWER_WITHIN_MS;
        for (stored, requested, now, expected) in [
            (TaskState::Pending, 0, 0, TaskState::Pending),
            (TaskState::Pending, 0, hour - 1, TaskState::Pending),
            (TaskState::Pending, 0, hour, TaskState::Expired),
            (
                TaskState::Pending,
                1_000,
                1_000 + 2 * hour,
                TaskState::Expired,
            ),
            // A clock that went back never expires a task early.
            (TaskState::Pending, 5_000, 0, TaskState::Pending),
            (TaskState::Pending, i64::MIN, i64::MAX, TaskState::Expired),
            (TaskState::Succeeded, 0, 2 * hour, TaskState::Succeeded),
            (TaskState::Failed, 0, 2 * hour, TaskState::Failed),
        ] {
            assert_eq!(stored.at(requested, now), expected, "{stored} at {now}");
        }
    }

    #[test]
    fn only_pending_is_not_over() {
        for state in TaskState::ALL {
            assert_eq!(state.is_over(), *state != TaskState::Pending, "{state}");
        }
    }
}
