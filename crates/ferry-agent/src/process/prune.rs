//! Keeping the content cache to what the releases on this target hold: work that relies
//! on the cache holds its lock shared, and the serve loop prunes it between rounds when a
//! prune is due and no one relies on it ([`crate::cache_prune`] says why that never races).

use std::time::Instant;

use super::{plainly, Agent};
use crate::cache_prune::prune;
use crate::lock::CacheLock;

impl Agent {
    /// A share of the cache's lock, for work that finds blobs in the cache and uses them
    /// later: none is pruned until it is dropped. Waits only for a prune under way.
    pub(super) async fn relying_on_cache(&self) -> anyhow::Result<CacheLock> {
        let root = self.root.clone();
        Ok(tokio::task::spawn_blocking(move || CacheLock::shared(&root)).await??)
    }

    /// Notes that a cleanup removed releases of an application, so the cache is pruned.
    pub(super) fn releases_removed(&self) {
        if let Ok(mut schedule) = self.prune.lock() {
            schedule.releases_removed();
        }
    }

    /// Prunes the cache when a prune is due and no one relies on the cache (it stays due
    /// otherwise), and says what went.
    pub(super) async fn prune_cache_when_due(&self) {
        let due = self
            .prune
            .lock()
            .is_ok_and(|schedule| schedule.due(Instant::now()));
        if !due {
            return;
        }
        let (root, cache) = (self.root.clone(), std::sync::Arc::clone(&self.cache));
        let pruned = tokio::task::spawn_blocking(move || prune(&root, &cache))
            .await
            .map_err(anyhow::Error::from)
            .and_then(|pruned| Ok(pruned?));
        match pruned {
            // Someone relies on the cache: it stays due.
            Ok(None) => return,
            Ok(Some(pruned)) if pruned.removed_any() => eprintln!("{}", pruned.sentence()),
            Ok(Some(_)) => {}
            // Said once per try: the next is after the next cleanup, or in an hour.
            Err(error) => eprintln!("could not prune the content cache: {}", plainly(&error)),
        }
        if let Ok(mut schedule) = self.prune.lock() {
            schedule.pruned(Instant::now());
        }
    }
}
