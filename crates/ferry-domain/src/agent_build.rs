//! What an agent says of itself on every request: its build, the protocol it speaks, and
//! the space left where it deploys. The server refuses a protocol it no longer (or not yet)
//! speaks, saying which side to upgrade, and records the rest for `ferry target list` and
//! `ferry doctor` when it changed enough to matter: not on every heartbeat.

/// Bytes free and in all on the filesystem of an agent's root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskSpace {
    pub free: u64,
    pub total: u64,
}

impl DiskSpace {
    /// How full the filesystem is, 0 to 100.
    pub fn percent_used(&self) -> u64 {
        if self.total == 0 {
            return 0;
        }
        100 - (self.free.min(self.total) * 100 / self.total)
    }

    /// Whether deployments may soon fail for lack of space: under 10 % or 1 GiB free.
    pub fn is_low(&self) -> bool {
        self.free < LOW_DISK_BYTES || self.percent_used() > 90
    }
}

/// Less free space than this is low whatever the filesystem's size.
const LOW_DISK_BYTES: u64 = 1 << 30;

/// What an agent last said of itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentBuild {
    /// Its ferry version, as `ferry --version` names it (`0.1.0`).
    pub version: String,
    pub protocol: u32,
    /// `None` when it could not tell.
    pub disk: Option<DiskSpace>,
    /// When it said so (server clock).
    pub said_ms: i64,
}

/// How long what an agent said is kept without writing it again, though nothing changed.
pub const SAID_AGAIN_AFTER_MS: i64 = 10 * 60 * 1000;

impl AgentBuild {
    /// Whether `now` (what the agent says this time) is worth writing over `self`, what the
    /// server knows: another build, free space that moved by 1 % of the disk or more, or
    /// what is known grown old.
    pub fn outdated_by(&self, now: &AgentBuild) -> bool {
        if self.version != now.version || self.protocol != now.protocol {
            return true;
        }
        if now.said_ms - self.said_ms >= SAID_AGAIN_AFTER_MS {
            return true;
        }
        match (self.disk, now.disk) {
            (Some(known), Some(said)) => {
                let step = (said.total / 100).max(1);
                known.total != said.total || known.free.abs_diff(said.free) >= step
            }
            (None, None) => false,
            _ => true,
        }
    }
}

/// Why the server does not serve an agent's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolMismatch {
    /// The agent is older than the oldest protocol the server still speaks.
    AgentTooOld { agent: u32, oldest: u32 },
    /// The agent is newer than the server: servers are upgraded before their agents.
    ServerTooOld { agent: u32, newest: u32 },
}

/// Whether a server speaking protocols `oldest..=newest` serves an agent speaking `agent`.
pub fn check_protocol(agent: u32, oldest: u32, newest: u32) -> Result<(), ProtocolMismatch> {
    if agent < oldest {
        return Err(ProtocolMismatch::AgentTooOld { agent, oldest });
    }
    if agent > newest {
        return Err(ProtocolMismatch::ServerTooOld { agent, newest });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(version: &str, free: Option<u64>, at: i64) -> AgentBuild {
        AgentBuild {
            version: version.to_owned(),
            protocol: 1,
            disk: free.map(|free| DiskSpace {
                free,
                total: 1_000_000,
            }),
            said_ms: at,
        }
    }

    #[test]
    fn only_a_change_that_matters_is_written_again() {
        let known = said("0.1.0", Some(500_000), 0);
        for (now, expected) in [
            (said("0.1.0", Some(500_000), 1_000), false),
            (said("0.1.0", Some(509_999), 1_000), false),
            (said("0.1.0", Some(510_000), 1_000), true),
            (said("0.1.0", Some(490_000), 1_000), true),
            (said("0.2.0", Some(500_000), 1_000), true),
            (said("0.1.0", None, 1_000), true),
            (said("0.1.0", Some(500_000), SAID_AGAIN_AFTER_MS), true),
        ] {
            assert_eq!(known.outdated_by(&now), expected, "{now:?}");
        }
        let mut newer_protocol = said("0.1.0", Some(500_000), 1_000);
        newer_protocol.protocol = 2;
        assert!(known.outdated_by(&newer_protocol));
    }

    #[test]
    fn low_disk_is_under_a_tenth_or_a_gibibyte_free() {
        const GIB: u64 = 1 << 30;
        for (free, total, low) in [
            (50 * GIB, 100 * GIB, false),
            (10 * GIB, 100 * GIB, false),
            (9 * GIB, 100 * GIB, true),
            (GIB - 1, 2 * GIB, true),
            (GIB, 2 * GIB, false),
            (0, 0, true),
        ] {
            assert_eq!(DiskSpace { free, total }.is_low(), low, "{free} of {total}");
        }
        assert_eq!(
            DiskSpace {
                free: 25,
                total: 100
            }
            .percent_used(),
            75
        );
    }

    #[test]
    fn protocols_outside_the_servers_range_are_refused_naming_who_upgrades() {
        for (agent, expected) in [
            (
                1,
                Err(ProtocolMismatch::AgentTooOld {
                    agent: 1,
                    oldest: 2,
                }),
            ),
            (2, Ok(())),
            (3, Ok(())),
            (
                4,
                Err(ProtocolMismatch::ServerTooOld {
                    agent: 4,
                    newest: 3,
                }),
            ),
        ] {
            assert_eq!(check_protocol(agent, 2, 3), expected, "{agent}");
        }
    }
}
