//! Wake-ups across servers sharing a PostgreSQL database: a change made on one server wakes
//! the agents long-polling any of them. Every change is announced on the database's
//! channel ([`Broadcast`]) and applied by every server, the sender included, when it hears
//! it; the channel numbers the messages from one sequence, so the generation an agent got
//! from one server means the same on every other.

use std::sync::Arc;

use ferry_store_postgres::broadcast::{Broadcast, Heard, MAX_MESSAGE};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::wakeups::{LocalWakeups, Wakeups};

/// What a message on the channel says.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Wake {
    /// The desired state of these targets changed (or, empty, only a deployment did).
    Targets(Vec<String>),
    /// Every agent should look again.
    Everyone,
}

/// Wake-ups heard from every server sharing the database.
pub struct SharedWakeups {
    local: Arc<LocalWakeups>,
    broadcast: Broadcast,
}

impl SharedWakeups {
    /// Starts listening. Generations continue from the channel's last number, raised to
    /// `now_ms` at least, so a generation an agent got before this start (from this server
    /// on SQLite, or from another) never hides a change; agents past it look once.
    pub async fn start(broadcast: Broadcast, now_ms: i64) -> anyhow::Result<Arc<SharedWakeups>> {
        let mut listener = broadcast.listen().await?;
        let last = broadcast.raise_to(now_ms.max(0) as u64).await?;
        let wakeups = Arc::new(SharedWakeups {
            local: Arc::new(LocalWakeups::new(last as i64)),
            broadcast,
        });
        let heard = wakeups.clone();
        tokio::spawn(async move {
            loop {
                match listener.next().await {
                    Ok(Heard::Message { number, text }) => heard.apply(number, &text),
                    Ok(Heard::Missed { number }) => {
                        tracing::info!(
                            "listening for other servers' changes again; every agent looks again"
                        );
                        heard.local.heard(number, None);
                    }
                    // The store is closed: the server is stopping.
                    Err(_) => return,
                }
            }
        });
        Ok(wakeups)
    }

    fn apply(&self, number: u64, text: &str) {
        match serde_json::from_str(text) {
            Ok(Wake::Targets(targets)) => self.local.heard(number, Some(&targets)),
            Ok(Wake::Everyone) => self.local.heard(number, None),
            Err(e) => tracing::warn!(
                "ignoring a message on the servers' channel that is not ferry's ({e}): {text:?}"
            ),
        }
    }

    /// Announces `wakes` to every server; where the database cannot be reached, wakes this
    /// server's waiters at least (the others' agents see the change at their next
    /// heartbeat).
    fn announce(&self, wakes: Vec<Wake>) {
        let broadcast = self.broadcast.clone();
        let messages: Vec<String> = wakes
            .iter()
            .map(|wake| serde_json::to_string(wake).expect("a wake serialises"))
            .collect();
        let fallback = self.local.generation() + 1;
        let local = self.local.clone();
        tokio::spawn(async move {
            for message in messages {
                if let Err(e) = broadcast.send(&message).await {
                    tracing::warn!("telling the other servers of a change failed: {e}");
                    local.heard(fallback, None);
                    return;
                }
            }
        });
    }
}

/// `targets` in messages of at most [`MAX_MESSAGE`] bytes each.
fn target_messages(targets: Vec<String>) -> Vec<Wake> {
    let mut wakes = Vec::new();
    let mut chunk = Vec::new();
    let mut bytes = 16;
    for target in targets {
        let len = target.len() + 3;
        if bytes + len > MAX_MESSAGE && !chunk.is_empty() {
            wakes.push(Wake::Targets(std::mem::take(&mut chunk)));
            bytes = 16;
        }
        bytes += len;
        chunk.push(target);
    }
    wakes.push(Wake::Targets(chunk));
    wakes
}

impl Wakeups for SharedWakeups {
    fn generation(&self) -> u64 {
        self.local.generation()
    }

    fn generation_of(&self, target: &str) -> u64 {
        self.local.generation_of(target)
    }

    fn bump(&self) {
        self.announce(vec![Wake::Everyone]);
    }

    fn targets_changed(&self, targets: Vec<String>) {
        self.announce(target_messages(targets));
    }

    fn agents(&self) -> &Notify {
        self.local.agents()
    }

    fn deployments(&self) -> &Notify {
        self.local.deployments()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_targets_go_in_messages_under_the_size_limit() {
        for (targets, name_len) in [(0, 10), (1, 10), (100, 30), (1_000, 63), (5_000, 20)] {
            let names: Vec<String> = (0..targets)
                .map(|i| format!("{i:0>width$}", width = name_len))
                .collect();
            let wakes = target_messages(names.clone());
            let mut seen = Vec::new();
            for wake in &wakes {
                let text = serde_json::to_string(wake).unwrap();
                assert!(text.len() <= MAX_MESSAGE, "{} bytes", text.len());
                match serde_json::from_str(&text).unwrap() {
                    Wake::Targets(chunk) => seen.extend(chunk),
                    Wake::Everyone => panic!("targets became everyone"),
                }
            }
            assert_eq!(seen, names);
            assert!(
                !wakes.is_empty(),
                "a deployment change is announced even without targets"
            );
        }
    }
}
