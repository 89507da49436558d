//! Waiting for agent tasks: work a command asked of a target's agent (a drift check, …),
//! which the agent does and reports while the command waits.

use std::time::{Duration, Instant};

use ferry_api::{Task, TaskState};

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

/// `task`, waited for, if it succeeded; otherwise a failure saying that `doing` (as in
/// "could not capture web") did not happen on its target, and why.
pub async fn wait_for_success(
    client: &Client,
    task: Task,
    patience: Duration,
    doing: &str,
) -> CliResult<Task> {
    let task = wait_for(client, task, patience).await?;
    match task.state {
        TaskState::Succeeded => Ok(task),
        TaskState::Expired => Err(CliError::failed(format!(
            "the agent of {} did not answer within an hour: it did not {doing}",
            task.target
        ))),
        _ => Err(CliError::failed(format!(
            "{} could not {doing}: {}",
            task.target,
            task.message.as_deref().unwrap_or("no reason given")
        ))),
    }
}

/// What a task that succeeded found or made, as `T`; none when its detail is not one (a
/// task run again after its report was lost says only that it is done).
pub fn detail_of<T: serde::de::DeserializeOwned>(task: &Task) -> Option<T> {
    serde_json::from_value(task.detail.clone()?).ok()
}
