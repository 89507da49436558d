//! The Unix user an application's commands run as on a target whose agent runs as root
//! (`ferry app set APP --run-as USER`), and what an agent does with it.
//!
//! An agent that runs as root would otherwise run every application's hooks and health
//! checks as root, where one application could read or change another's releases, data
//! and the agent's own credential. So a root agent runs each application's commands as
//! that application's own user, and refuses to deploy an application that has none unless
//! its operator chose otherwise (`ferry agent --hooks-as-root`). An agent that is not
//! root runs everything as itself: the applications on its target trust each other.

use std::fmt;

/// The longest user name `useradd` accepts.
const MAX_LEN: usize = 32;

/// The command that creates a user of an application's own, given its name after it:
/// no home, no login shell.
pub const CREATE_USER: &str =
    "useradd --system --user-group --no-create-home --shell /usr/sbin/nologin";

/// A Unix user name as `useradd` takes it: `[a-z_][a-z0-9_-]{0,31}`, and not `root`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunAs(String);

impl RunAs {
    pub fn parse(value: &str) -> Result<RunAs, String> {
        let bytes = value.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || *b == b'_');
        let rest_ok = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
        if !(first_ok && rest_ok && bytes.len() <= MAX_LEN) {
            return Err(format!(
                "invalid Unix user name {value:?}: use 1 to {MAX_LEN} characters from a-z, \
                 0-9, '_' and '-', starting with a letter or '_'"
            ));
        }
        if value == "root" {
            return Err(format!(
                "an application's commands may not run as root: give the application a user \
                 of its own (`{CREATE_USER} NAME`)"
            ));
        }
        Ok(RunAs(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who an agent runs one application's commands as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// As the agent itself: an agent that is not root, or a root agent whose operator
    /// chose to run hooks as root.
    Agent,
    /// As the application's own user, with the application's files arranged so that no
    /// other application's user can reach them.
    Isolated(RunAs),
}

/// What the agent knows when it decides.
#[derive(Clone, Copy, Debug)]
pub struct AgentFacts<'a> {
    /// The agent's effective user is root.
    pub is_root: bool,
    /// The agent's operator allows hooks to run as root (`--hooks-as-root`).
    pub hooks_as_root: bool,
    /// The agent's own user name, when it is not root.
    pub agent_user: Option<&'a str>,
}

/// Decides who `app`'s commands run as on a target, given its `--run-as` user and the
/// other applications the target runs with theirs. Refuses, with what to do, an
/// application a root agent would otherwise run as root, a user another application on the
/// target runs as (it could reach that application's files), and a user an agent that is
/// not root cannot become.
pub fn decide(
    app: &str,
    run_as: Option<&RunAs>,
    others: &[(&str, Option<&RunAs>)],
    facts: AgentFacts<'_>,
) -> Result<Identity, String> {
    let Some(user) = run_as else {
        return if facts.is_root && !facts.hooks_as_root {
            Err(format!(
                "this target's agent runs as root and {app} has no user to run its commands \
                 as: give it one with `ferry app set {app} --run-as USER` (a user of its own, \
                 like `{CREATE_USER} {app}`), or start the agent with \
                 --hooks-as-root to run every application's hooks as root"
            ))
        } else {
            Ok(Identity::Agent)
        };
    };
    if let Some((other, _)) = others
        .iter()
        .find(|(other, theirs)| *other != app && *theirs == Some(user))
    {
        return Err(format!(
            "{app} and {other} both run as {user} on this target, so each could reach the \
             other's files: give each application a user of its own with `ferry app set APP \
             --run-as USER`"
        ));
    }
    if facts.is_root {
        return Ok(Identity::Isolated(user.clone()));
    }
    match facts.agent_user {
        Some(agent) if agent == user.as_str() => Ok(Identity::Agent),
        agent => Err(format!(
            "{app} runs as {user}, but this target's agent runs as {} and only a root agent \
             can run commands as another user: run the agent as {user} or as root, or clear \
             the setting with `ferry app set {app} --run-as ''`",
            agent.unwrap_or("another user")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> RunAs {
        RunAs::parse(name).unwrap()
    }

    #[test]
    fn user_names() {
        for good in ["shop", "_svc", "shop-web", "a1_b-2", &"x".repeat(32)] {
            assert_eq!(RunAs::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "Shop",
            "1shop",
            "-shop",
            "shop web",
            "shop/..",
            "ä",
            &"x".repeat(33),
        ] {
            let error = RunAs::parse(bad).unwrap_err();
            assert!(error.contains("invalid Unix user name"), "{bad:?}: {error}");
        }
        assert!(RunAs::parse("root")
            .unwrap_err()
            .contains("may not run as root"));
    }

    const ROOT: AgentFacts = AgentFacts {
        is_root: true,
        hooks_as_root: false,
        agent_user: None,
    };
    const ROOT_ALLOWING: AgentFacts = AgentFacts {
        hooks_as_root: true,
        ..ROOT
    };
    const PLAIN: AgentFacts = AgentFacts {
        is_root: false,
        hooks_as_root: false,
        agent_user: Some("deploy"),
    };

    #[test]
    fn who_runs_the_commands() {
        let shop = user("shop");
        let blog = user("blog");
        let deploy = user("deploy");
        let cases: &[(Option<&RunAs>, AgentFacts, Result<Identity, &str>)] = &[
            (Some(&shop), ROOT, Ok(Identity::Isolated(shop.clone()))),
            (
                Some(&shop),
                ROOT_ALLOWING,
                Ok(Identity::Isolated(shop.clone())),
            ),
            (None, ROOT, Err("--run-as USER")),
            (None, ROOT_ALLOWING, Ok(Identity::Agent)),
            (None, PLAIN, Ok(Identity::Agent)),
            (Some(&deploy), PLAIN, Ok(Identity::Agent)),
            (Some(&blog), PLAIN, Err("agent runs as deploy")),
        ];
        for (run_as, facts, expected) in cases {
            let decided = decide("web", *run_as, &[("web", *run_as)], *facts);
            match (decided, expected) {
                (Ok(got), Ok(want)) => assert_eq!(&got, want, "{run_as:?} {facts:?}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{got}"),
                (got, want) => panic!("{run_as:?} {facts:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn two_applications_never_share_a_user() {
        let shop = user("shop");
        let blog = user("blog");
        let others = [
            ("web", Some(&shop)),
            ("admin", Some(&shop)),
            ("blog", Some(&blog)),
        ];
        let error = decide("web", Some(&shop), &others, ROOT).unwrap_err();
        assert!(error.contains("web and admin both run as shop"), "{error}");
        assert_eq!(
            decide("blog", Some(&blog), &others, ROOT),
            Ok(Identity::Isolated(blog.clone()))
        );
    }
}
