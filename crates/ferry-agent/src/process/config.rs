//! The values of configuration revisions, fetched from the server once per application and
//! revision (`GET /api/v1/agent/apps/{app}/config/{revision}`, answered for the revision
//! the target is asked to run or stage, or runs) and kept in memory only: never on disk but
//! in the files rendered into a release, never in the log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::bail;
use ferry_api::AgentConfig;

use super::Agent;
use crate::config_files::ConfigValues;

/// Revisions kept in memory at most (a few per application served); the oldest go first.
const KEPT: usize = 16;

/// The values fetched so far, by application and revision, with when each was last used.
#[derive(Default)]
pub(super) struct ConfigCache {
    values: Mutex<HashMap<(String, u64), (ConfigValues, u64)>>,
    uses: std::sync::atomic::AtomicU64,
}

impl ConfigCache {
    fn get(&self, app: &str, revision: u64) -> Option<ConfigValues> {
        let now = self.uses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut values = self.values.lock().ok()?;
        let (found, used) = values.get_mut(&(app.to_owned(), revision))?;
        *used = now;
        Some(found.clone())
    }

    fn put(&self, app: &str, values: ConfigValues) {
        let now = self.uses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Ok(mut kept) = self.values.lock() else {
            return;
        };
        while kept.len() >= KEPT {
            let oldest = kept
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone());
            match oldest {
                Some(key) => kept.remove(&key),
                None => break,
            };
        }
        kept.insert((app.to_owned(), values.revision()), (values, now));
    }
}

impl Agent {
    /// The values of configuration revision `revision` of `app` in this target's
    /// environment (none for revision 0), fetched once.
    pub(super) async fn config_values(
        &self,
        app: &str,
        revision: u64,
    ) -> anyhow::Result<ConfigValues> {
        if revision == 0 {
            return Ok(ConfigValues::none());
        }
        if let Some(values) = self.configs.get(app, revision) {
            return Ok(values);
        }
        let path = format!("/api/v1/agent/apps/{app}/config/{revision}");
        let answer: AgentConfig = self.link.get(&path, Duration::from_secs(60)).await?;
        if answer.app != app || answer.revision != revision || answer.env != self.state.env {
            bail!(
                "{path}: the server answered with revision {} of {} in {}, not the one asked for",
                answer.revision,
                answer.app,
                answer.env
            );
        }
        let values = ConfigValues::new(revision, answer.values)?;
        self.configs.put(app, values.clone());
        Ok(values)
    }
}
