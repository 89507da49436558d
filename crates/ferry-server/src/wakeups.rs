//! Wake-ups: which long-polling agents to wake when their desired state changes, and the
//! `--wait` requests when a deployment changes. Correctness never rests on them (every change
//! of a deployment is a compare-and-set on its revision in the store); they only make the
//! waiters look again sooner. [`Wakeups`] is the interface: [`LocalWakeups`] for one server
//! (SQLite), [`crate::shared_wakeups::SharedWakeups`] for servers sharing a PostgreSQL
//! database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_store::DesiredChange;
use tokio::sync::Notify;

/// What agents and `--wait` wait on.
pub trait Wakeups: Send + Sync + 'static {
    /// The latest generation: grows with every change of any desired state.
    fn generation(&self) -> u64;
    /// The generation at which `target`'s desired state last changed.
    fn generation_of(&self, target: &str) -> u64;
    /// Wakes every waiting agent and tells them all to look again.
    fn bump(&self);
    /// What `targets` should do changed (a deployment, a task): wakes those agents and
    /// whoever waits on deployments and tasks.
    fn targets_changed(&self, targets: Vec<String>);
    /// A deployment changed, and with it the desired state of `changes`' targets: wakes
    /// those agents and whoever waits on deployments.
    fn deployment_changed(&self, changes: &[DesiredChange]) {
        self.targets_changed(changes.iter().map(|c| c.target.clone()).collect());
    }
    /// Notified whenever a desired state changes.
    fn agents(&self) -> &Notify;
    /// Notified whenever a deployment or a task changes.
    fn deployments(&self) -> &Notify;
}

/// Wake-ups within one server process: the only in-process state the server keeps about
/// deployments.
pub struct LocalWakeups {
    /// Grows with every change of any desired state; agents long-poll past it.
    generation: AtomicU64,
    /// The generation at which each target's desired state last changed, so a change wakes
    /// only the agents it concerns for more than a look at this map.
    changed_targets: std::sync::Mutex<HashMap<String, u64>>,
    /// The generation at which every target was last told to look again.
    everyone: AtomicU64,
    /// Notified whenever any desired state changes (agents long-poll on it).
    changed: Notify,
    /// Notified whenever a deployment changes (for `ferry deploy --wait`).
    deployments: Notify,
}

impl LocalWakeups {
    /// Starts the generation at `now_ms`, so it keeps growing across server restarts and an
    /// agent's `after` from before a restart never hides a change.
    pub fn new(now_ms: i64) -> LocalWakeups {
        let start = now_ms.max(0) as u64;
        LocalWakeups {
            generation: AtomicU64::new(start),
            changed_targets: Default::default(),
            everyone: AtomicU64::new(start),
            changed: Notify::new(),
            deployments: Notify::new(),
        }
    }

    /// Records a change numbered `number` (here, or by the server that made it): for
    /// `targets`, or for every target with `None`; wakes every waiter, agents and `--wait`
    /// alike. Numbers only ever grow.
    pub fn heard(&self, number: u64, targets: Option<&[String]>) {
        self.generation.fetch_max(number, Ordering::SeqCst);
        match targets {
            None => {
                self.everyone.fetch_max(number, Ordering::SeqCst);
            }
            Some(targets) => {
                let mut changed = self
                    .changed_targets
                    .lock()
                    .expect("the map is never poisoned");
                for target in targets {
                    let at = changed.entry(target.clone()).or_default();
                    *at = (*at).max(number);
                }
            }
        }
        self.changed.notify_waiters();
        self.deployments.notify_waiters();
    }

    /// The number of the next change made on this server.
    fn next(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::SeqCst) + 1
    }
}

impl Wakeups for LocalWakeups {
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn generation_of(&self, target: &str) -> u64 {
        let own = self
            .changed_targets
            .lock()
            .expect("the map is never poisoned")
            .get(target)
            .copied()
            .unwrap_or(0);
        own.max(self.everyone.load(Ordering::SeqCst))
    }

    fn bump(&self) {
        self.heard(self.next(), None);
    }

    fn targets_changed(&self, targets: Vec<String>) {
        self.heard(self.next(), Some(&targets));
    }

    fn agents(&self) -> &Notify {
        &self.changed
    }

    fn deployments(&self) -> &Notify {
        &self.deployments
    }
}
