//! Telling the server how a deploy is going while it runs: the step reached, posted once a
//! deploy has taken more than a moment and then whenever the step changes, and again now
//! and then while one step takes long (a slow hook), so that a working target is never
//! taken for a silent one. Quick deploys post nothing extra.

use std::path::PathBuf;
use std::time::Duration;

use ferry_api::{AgentReport, Outcome};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::task::JoinHandle;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

use super::link::ServerLink;
use super::REPORT;
use crate::layout::{current_installed, current_version};

/// How long a deploy runs before its steps are posted.
const QUIET_FOR: Duration = Duration::from_secs(3);
/// How often a changed step is posted at most.
const EVERY: Duration = Duration::from_secs(1);
/// How often the same step is posted again while it lasts.
const AGAIN_AFTER: Duration = Duration::from_secs(2);
/// The longest one progress report may take: the deploy's outcome waits for it.
const POST_LIMIT: Duration = Duration::from_secs(5);

/// Where progress reports go.
pub struct ProgressTo {
    pub link: ServerLink,
    pub app: String,
    pub deployment: i64,
    /// The configuration revision the deployment delivers (0: none).
    pub config: u64,
    /// The target's root, to say what `current` points at when each report is sent.
    pub root: PathBuf,
}

/// The progress of one deploy, posted by a task of its own.
pub struct Progress {
    steps: UnboundedSender<String>,
    task: JoinHandle<()>,
}

impl Progress {
    pub fn start(to: ProgressTo) -> Progress {
        let (steps, mut arriving) = unbounded_channel::<String>();
        let task = tokio::spawn(async move {
            let mut ticks = interval_at(Instant::now() + QUIET_FOR, EVERY);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut latest: Option<String> = None;
            let mut posted: Option<(String, Instant)> = None;
            loop {
                tokio::select! {
                    step = arriving.recv() => match step {
                        Some(step) => latest = Some(step),
                        None => return,
                    },
                    _ = ticks.tick() => {
                        let Some(step) = &latest else { continue };
                        let due = posted.as_ref().is_none_or(|(last, at)| {
                            last != step || at.elapsed() >= AGAIN_AFTER
                        });
                        if due {
                            // A lost progress report costs nothing: the next one follows.
                            let _ = to.post(step).await;
                            posted = Some((step.clone(), Instant::now()));
                        }
                    }
                }
            }
        });
        Progress { steps, task }
    }

    /// Something to hand steps to from any thread (the deploy engine's).
    pub fn sender(&self) -> UnboundedSender<String> {
        self.steps.clone()
    }

    /// Records the step reached.
    pub fn step(&self, step: impl Into<String>) {
        let _ = self.steps.send(step.into());
    }

    /// Stops reporting, after a report in flight has arrived, so that it never lands after
    /// the deploy's outcome.
    pub async fn finish(self) {
        drop(self.steps);
        let _ = self.task.await;
    }
}

impl ProgressTo {
    async fn post(&self, step: &str) -> anyhow::Result<reqwest::Response> {
        let report = AgentReport {
            app: self.app.clone(),
            deployment: self.deployment,
            outcome: Outcome::Progress,
            reason: Some(step.to_owned()),
            output_tail: None,
            current_version: current_version(&self.root, &self.app),
            version: None,
            current_config: current_installed(&self.root, &self.app).map_or(0, |i| i.config),
            config: self.config,
            logs: Vec::new(),
        };
        let request = self.link.post_request(REPORT, &report).timeout(POST_LIMIT);
        self.link.send(REPORT, request).await
    }
}
