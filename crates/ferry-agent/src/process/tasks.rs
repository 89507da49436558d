//! Agent tasks: work the server asks of this agent now, beside converging (`DesiredState`
//! carries the pending ones). Each runs once, by number, on its own tokio task so that a
//! long one (a backup) neither holds up the long-poll nor another task, and its outcome is
//! posted to `POST /api/v1/agent/tasks/{id}`. A task the agent fails to report is offered
//! again with the next desired state and run again: tasks are safe to repeat.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ferry_api::{AgentTask, TaskOutcome, TaskReport, TaskWork};
use tokio::sync::mpsc;

use super::{plainly, Agent};

/// What the long-poll hands to the task runner: the tasks it has not handed over yet.
#[derive(Default)]
pub(super) struct TaskIntake {
    /// The tasks handed over and still offered by the server.
    handed: HashSet<i64>,
}

impl TaskIntake {
    /// Hands the tasks of `offered` not handed over before to `runner`; forgets those the
    /// server no longer offers (they are over).
    pub(super) fn take(
        &mut self,
        offered: Vec<AgentTask>,
        runner: &mpsc::UnboundedSender<AgentTask>,
    ) {
        self.handed
            .retain(|id| offered.iter().any(|task| task.id == *id));
        for task in offered {
            if self.handed.insert(task.id) {
                let _ = runner.send(task);
            }
        }
    }

    /// Forgets that `id` was handed over, so that it runs again when offered again (its
    /// report did not reach the server).
    fn forget(&mut self, id: i64) {
        self.handed.remove(&id);
    }
}

/// How long a report is tried before the task is left to be offered again.
const REPORT_TRIES: u32 = 5;

impl Agent {
    /// Runs each task handed over, each on its own tokio task, forever.
    pub(super) async fn run_tasks(self: Arc<Self>, mut handed: mpsc::UnboundedReceiver<AgentTask>) {
        while let Some(task) = handed.recv().await {
            let agent = Arc::clone(&self);
            tokio::spawn(async move {
                let (id, app) = (task.id, task.app.clone());
                let report = agent.run_task(task).await;
                let said = match report.outcome {
                    TaskOutcome::Succeeded => "done",
                    TaskOutcome::Failed => "failed",
                };
                eprintln!("task {id} on {app} {said}: {}", report.message);
                agent.report_task(id, &report).await;
            });
        }
    }

    /// Does what `task` asks and says how it went.
    async fn run_task(&self, task: AgentTask) -> TaskReport {
        let done = match self.relying_on_cache().await {
            Ok(_relying) => self.do_task(task).await,
            Err(error) => Err(error),
        };
        match done {
            Ok((message, detail)) => TaskReport {
                outcome: TaskOutcome::Succeeded,
                message,
                detail,
            },
            Err(error) => TaskReport {
                outcome: TaskOutcome::Failed,
                message: plainly(&error),
                detail: None,
            },
        }
    }

    /// Does what `task` asks, relying on the cache (tasks fetch blobs and use them).
    async fn do_task(
        &self,
        task: AgentTask,
    ) -> anyhow::Result<(String, Option<serde_json::Value>)> {
        match &task.work {
            TaskWork::CheckDrift => self.check_drift_now(&task.app).await,
            TaskWork::CaptureDrift { version, .. } => {
                self.capture(task.id, &task.app, version).await
            }
            TaskWork::BackUp { reason } => self.back_up_task(&task.app, *reason, task.id).await,
            TaskWork::RestoreBackup {
                backup,
                digest,
                manifest_blob,
                paths,
                path,
            } => {
                let asked = super::backups::RestoreAsked {
                    backup: *backup,
                    digest,
                    manifest_blob,
                    paths,
                    path: path.as_deref(),
                };
                self.restore_task(&task.app, asked).await
            }
            TaskWork::RevertDrift { version } => self.revert(task.id, &task.app, version).await,
        }
    }

    /// Posts how task `id` went, trying a few times; a task whose report never arrives is
    /// offered again by the server and run again.
    async fn report_task(&self, id: i64, report: &TaskReport) {
        let path = format!("/api/v1/agent/tasks/{id}");
        let mut pause = Duration::from_millis(500);
        for attempt in 1..=REPORT_TRIES {
            match self
                .link
                .answer(self.link.post_request(&path, report))
                .await
            {
                // Over already (another run reported it), or gone: nothing more to say.
                Ok(response)
                    if response.status().is_success()
                        || response.status() == reqwest::StatusCode::CONFLICT
                        || response.status() == reqwest::StatusCode::NOT_FOUND =>
                {
                    return;
                }
                Ok(response) => eprintln!(
                    "could not report task {id} ({}): {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                ),
                Err(error) => eprintln!("could not report task {id}: {}", plainly(&error)),
            }
            if attempt < REPORT_TRIES {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        if let Ok(mut intake) = self.intake.lock() {
            intake.forget(id);
        }
    }
}
