//! The journal of an application on a target (`ROOT/.ferry/journal/APP.json`): the last
//! release that succeeded (cleanup never deletes it), the order releases were deployed in
//! (cleanup keeps the newest), and the versions whose deploy failed. Releases are named by
//! their directories ([`Installed`]: `VERSION`, or `VERSION@N` with a configuration
//! revision), so a journal an older agent wrote reads as revision 0. Written temp → fsync
//! → rename → fsync directory, so it is always the old or the new journal.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{AgentError, AgentResult};
use crate::failpoint::failpoint;
use crate::fsutil::fsync_dir;
use crate::layout::{journal_path, Installed};

/// What a target remembers about one application's deploys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The last release whose deploy succeeded.
    #[serde(default)]
    pub last_succeeded: Option<Installed>,
    /// Releases in the order they were last deployed or switched to, most recent last.
    #[serde(default)]
    pub history: Vec<Deployed>,
    /// Releases whose last deploy failed or was rolled back.
    #[serde(default)]
    pub bad: Vec<Installed>,
}

/// One release and when it was last deployed or switched to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployed {
    pub version: Installed,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

/// Now, in seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Journal {
    /// The journal of `app`; empty when there is none yet.
    pub fn load(root: &Path, app: &str) -> AgentResult<Journal> {
        let path = journal_path(root, app);
        match fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data)
                .map_err(|e| AgentError::io(&path, std::io::Error::other(e))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Journal::default()),
            Err(e) => Err(AgentError::io(&path, e)),
        }
    }

    /// Writes the journal durably (temp file, fsync, rename, fsync directory).
    pub fn save(&self, root: &Path, app: &str) -> AgentResult<()> {
        let path = journal_path(root, app);
        let dir = path.parent().expect("journals live in a directory");
        fs::create_dir_all(dir).map_err(|e| AgentError::io(dir, e))?;
        // One name: under the application lock there is one writer, and a temp file a
        // crash left behind is simply overwritten.
        let temp = dir.join(format!("{app}.json.tmp"));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .map_err(|e| AgentError::io(&temp, e))?;
        let json = serde_json::to_vec_pretty(self).expect("journals serialize");
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .map_err(|e| AgentError::io(&temp, e))?;
        failpoint("journal.before_rename");
        fs::rename(&temp, &path).map_err(|e| AgentError::io(&path, e))?;
        fsync_dir(dir)?;
        failpoint("journal.after_rename");
        Ok(())
    }

    /// Records a deploy of `version` that succeeded.
    pub fn record_success(&mut self, version: &Installed, at: u64) {
        self.record_switch(version, at);
        self.last_succeeded = Some(version.clone());
        self.bad.retain(|v| v != version);
    }

    /// Records a deploy of `version` that failed or was rolled back.
    pub fn record_failure(&mut self, version: &Installed, at: u64) {
        self.record_switch(version, at);
        if !self.bad.iter().any(|v| v == version) {
            self.bad.push(version.clone());
        }
    }

    /// Records that `version` was deployed or switched to at `at`, or at the time of the
    /// latest switch on record if that is later: the target's clock may have been set back,
    /// and cleanup ranks releases by these times, which must keep the order of deployment.
    pub fn record_switch(&mut self, version: &Installed, at: u64) {
        let latest = self.history.iter().map(|d| d.at).max().unwrap_or(0);
        self.history.retain(|d| d.version != *version);
        self.history.push(Deployed {
            version: version.clone(),
            at: at.max(latest),
        });
    }

    /// Whether the last deploy of `version` succeeded or, after that, a rollback switched
    /// to it: what a deploy interrupted after its switch never records.
    pub fn completed(&self, version: &Installed) -> bool {
        let last_switched = self.history.last().is_some_and(|d| d.version == *version);
        self.last_succeeded.as_ref() == Some(version)
            || (last_switched && !self.bad.iter().any(|v| v == version))
    }

    /// When `version` was last deployed or switched to, if known.
    pub fn deployed_at(&self, version: &Installed) -> Option<u64> {
        self.history
            .iter()
            .find(|d| d.version == *version)
            .map(|d| d.at)
    }

    /// Forgets a release that was deleted from disk (its failure stays on record).
    pub fn forget(&mut self, version: &Installed) {
        self.history.retain(|d| d.version != *version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_counts_as_completed_only_after_its_deploy_or_a_switch_finished() {
        /// What happened, in order, as (event, version).
        type Events = &'static [(&'static str, &'static str)];
        // (what happened; the version asked about; completed?)
        let cases: &[(Events, &str, bool)] = &[
            (&[], "1.0", false),
            (&[("ok", "1.0")], "1.0", true),
            (&[("ok", "1.0"), ("fail", "2.0")], "2.0", false),
            (&[("ok", "1.0"), ("fail", "2.0")], "1.0", true),
            (
                &[("ok", "1.0"), ("ok", "2.0"), ("switch", "1.0")],
                "1.0",
                true,
            ),
            (
                &[("ok", "1.0"), ("ok", "2.0"), ("switch", "1.0")],
                "2.0",
                true,
            ),
            (
                &[("ok", "1.0"), ("fail", "2.0"), ("switch", "2.0")],
                "2.0",
                false,
            ),
            (&[("fail", "2.0"), ("ok", "2.0")], "2.0", true),
        ];
        for (events, version, completed) in cases {
            let mut journal = Journal::default();
            for (at, (what, v)) in events.iter().enumerate() {
                let v = &Installed::parse(v).unwrap();
                match *what {
                    "ok" => journal.record_success(v, at as u64),
                    "fail" => journal.record_failure(v, at as u64),
                    _ => journal.record_switch(v, at as u64),
                }
            }
            assert_eq!(
                journal.completed(&Installed::parse(version).unwrap()),
                *completed,
                "{events:?} {version}"
            );
        }
    }

    #[test]
    fn a_clock_set_back_never_dates_a_later_switch_before_an_earlier_one() {
        let v = |name: &str| Installed::parse(name).unwrap();
        // (what was switched to, at what time by the target's clock), in order; the times
        // recorded.
        for (switches, recorded) in [
            (
                &[("1.0", 10), ("2.0", 20), ("3.0", 30)][..],
                &[10, 20, 30][..],
            ),
            (
                &[("1.0", 10), ("2.0", 1_000), ("3.0", 30)],
                &[10, 1_000, 1_000],
            ),
            (&[("1.0", 1_000), ("2.0", 5), ("1.0", 7)], &[1_000, 1_000]),
        ] {
            let mut journal = Journal::default();
            for (version, at) in switches {
                journal.record_success(&v(version), *at);
            }
            let times: Vec<u64> = journal.history.iter().map(|d| d.at).collect();
            assert_eq!(times, recorded, "{switches:?}");
        }
    }

    #[test]
    fn the_journal_round_trips_and_keeps_each_version_once() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(
            Journal::load(root.path(), "shop").unwrap(),
            Journal::default()
        );
        let v = |name: &str| Installed::parse(name).unwrap();
        let mut journal = Journal::default();
        journal.record_success(&v("1.0"), 10);
        journal.record_failure(&v("2.0"), 20);
        journal.record_success(&v("1.1"), 30);
        journal.record_success(&v("2.0"), 40);
        journal.record_switch(&v("1.0"), 50);
        journal.record_success(&v("1.0@3"), 60);
        journal.save(root.path(), "shop").unwrap();
        let loaded = Journal::load(root.path(), "shop").unwrap();
        assert_eq!(loaded, journal);
        assert_eq!(loaded.last_succeeded, Some(v("1.0@3")));
        assert!(loaded.bad.is_empty());
        let order: Vec<String> = loaded
            .history
            .iter()
            .map(|d| d.version.dir_name())
            .collect();
        assert_eq!(order, ["1.1", "2.0", "1.0", "1.0@3"]);
        assert_eq!(loaded.deployed_at(&v("1.0")), Some(50));
        // 1.0@3 succeeded last; 1.0 (the same release without configuration) was
        // switched to before it, which no longer counts.
        assert!(loaded.completed(&v("1.0@3")));
        assert!(!loaded.completed(&v("1.1")) && !loaded.completed(&v("1.0")));
        // A journal written before configuration revisions reads as revision 0.
        let old = r#"{"last_succeeded":"1.0","history":[{"version":"1.0","at":5}],"bad":["0.9"]}"#;
        let old: Journal = serde_json::from_str(old).unwrap();
        assert_eq!(old.last_succeeded, Some(v("1.0")));
        assert_eq!(old.bad, [Installed::new("0.9", 0)]);
        let leftovers = fs::read_dir(root.path().join(".ferry/journal"))
            .unwrap()
            .count();
        assert_eq!(leftovers, 1);
    }
}
