//! Turns per deployment: the reports for one deployment that reach this server are applied
//! one after the other. Each is a compare-and-set on the deployment's revision, so applying
//! them at once would make all but one lose and start over (with a thousand targets
//! reporting together, a thousand times over); in turn, each reads the revision the one
//! before saved and wins. Correctness never rests on the turns: reports reaching other
//! servers sharing the database still meet the compare-and-set.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{Mutex as Turn, OwnedMutexGuard};

/// One turn per deployment being reported on.
#[derive(Default)]
pub struct DeploymentTurns {
    turns: Mutex<HashMap<i64, Weak<Turn<()>>>>,
}

impl DeploymentTurns {
    /// Waits for deployment `id`'s turn; the turn passes on when the guard is dropped.
    pub async fn take(&self, id: i64) -> OwnedMutexGuard<()> {
        let turn = {
            let mut turns = self.turns.lock().expect("the turns lock is never poisoned");
            // Turns nobody holds or waits for any more go, so the map stays small.
            turns.retain(|_, turn| turn.strong_count() > 0);
            match turns.get(&id).and_then(Weak::upgrade) {
                Some(turn) => turn,
                None => {
                    let turn = Arc::new(Turn::new(()));
                    turns.insert(id, Arc::downgrade(&turn));
                    turn
                }
            }
        };
        turn.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_deployment_takes_turns_and_others_do_not_wait() {
        let turns = DeploymentTurns::default();
        let first = turns.take(1).await;
        let other = tokio::time::timeout(std::time::Duration::from_secs(5), turns.take(2))
            .await
            .expect("another deployment does not wait");
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(100), turns.take(1)).await;
        assert!(waited.is_err(), "two reports of one deployment at once");
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(5), turns.take(1))
            .await
            .expect("the turn passes on");
        drop(other);
        assert!(turns.turns.lock().unwrap().len() <= 2);
    }
}
