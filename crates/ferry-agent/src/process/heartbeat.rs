//! Heartbeats while the agent is busy. An idle agent long-polls for what to run, and each
//! question is its heartbeat (the server answers at least once per heartbeat interval); an
//! agent converging or staging asks nothing for as long as that takes (a slow hook, a big
//! fetch), so a task of its own keeps the target online meanwhile. A stopped or killed agent
//! sends nothing, and the server soon shows its target offline.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

use super::link::ServerLink;

/// Where busy agents send their heartbeat.
const HEARTBEAT: &str = "/api/v1/agent/heartbeat";

/// Heartbeats every interval until dropped.
pub struct Heartbeat {
    task: JoinHandle<()>,
}

impl Heartbeat {
    /// Starts sending a heartbeat every `every`, the first one `every` from now (work that
    /// ends sooner sends none).
    pub fn start(link: ServerLink, every: Duration) -> Heartbeat {
        let task = tokio::spawn(async move {
            let mut ticks = interval_at(Instant::now() + every, every);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let request = link.saying_disk(
                    link.post_request(HEARTBEAT, &serde_json::json!({}))
                        .timeout(every.max(Duration::from_secs(1))),
                );
                // A lost heartbeat costs nothing while the next one arrives in time.
                if let Err(error) = link.send(HEARTBEAT, request).await {
                    eprintln!(
                        "a heartbeat did not reach the server: {}",
                        error.root_cause()
                    );
                }
            }
        });
        Heartbeat { task }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}
