//! Waiting for agent tasks: work a command asked of a target's agent (a drift check, …),
//! which the agent does and reports while the command waits.

use std::time::{Duration, Instant};

use ferry_api::Task;

use crate::client::Client;
use crate::error::{CliError, CliResult};

/// How long one question to the server waits for a task to end.
const WAIT_PER_QUESTION_S: u64 = 25;

/// Task `task` once it is over, asking the server until it is or `patience` has passed (then
/// a failure that says where the task stands and how to follow it).
pub async fn wait_for(client: &Client, task: Task, patience: Duration) -> CliResult<Task> {
    let started = Instant::now();
    let mut task = task;
    while !task.state.is_over() {
        if started.elapsed() >= patience {
            return Err(CliError::failed(format!(
                "the agent of {} has not finished task {} on {} after {} s; it goes on, and `GET /api/v1/tasks/{}` shows how it ends",
                task.target,
                task.id,
                task.app,
                patience.as_secs(),
                task.id
            )));
        }
        task = client
            .get(&format!(
                "/api/v1/tasks/{}?wait={WAIT_PER_QUESTION_S}",
                task.id
            ))
            .await?;
    }
    Ok(task)
}
