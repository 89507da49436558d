//! Who each application's commands run as on this target: the agent's side of
//! [`ferry_domain::run_as`], kept from the desired state the server last sent.

use std::collections::HashMap;

use ferry_api::DesiredApp;
use ferry_domain::run_as::{decide, AgentFacts, Identity, RunAs};

use crate::account::Account;

/// Who runs one application's commands: `None` for the agent itself, or the application's
/// own account; `Err` says why the agent will not run them at all.
pub type CommandsAs = Result<Option<Account>, String>;

/// The `--run-as` user of every application the target runs, and what the agent is.
#[derive(Debug)]
pub struct Isolation {
    is_root: bool,
    hooks_as_root: bool,
    agent_user: Option<String>,
    /// Each application's user as the server sent it, checked when learned (`Err`: a name
    /// that is not a user name).
    run_as: HashMap<String, Result<Option<RunAs>, String>>,
}

impl Isolation {
    /// For this process; `hooks_as_root` is the operator's `--hooks-as-root`.
    pub fn of_this_process(hooks_as_root: bool) -> Isolation {
        let uid = rustix::process::geteuid();
        Isolation {
            is_root: uid.is_root(),
            hooks_as_root,
            agent_user: Account::of_uid(uid.as_raw()).map(|account| account.name),
            run_as: HashMap::new(),
        }
    }

    /// Whether the agent runs as root.
    pub fn is_root(&self) -> bool {
        self.is_root
    }

    /// Whether this root agent runs hooks as root for applications without a user.
    pub fn hooks_as_root_allowed(&self) -> bool {
        self.is_root && self.hooks_as_root
    }

    /// Takes each application's user from a desired state.
    pub fn learn(&mut self, apps: &[DesiredApp]) {
        self.run_as = apps
            .iter()
            .map(|app| {
                let user = app.run_as.as_deref().map(RunAs::parse).transpose();
                (app.app.clone(), user)
            })
            .collect();
    }

    /// Who runs `app`'s commands, with its account looked up in the system's user database.
    pub fn commands_as(&self, app: &str) -> CommandsAs {
        let mine = self.run_as.get(app).cloned().unwrap_or(Ok(None))?;
        let others: Vec<(&str, Option<&RunAs>)> = self
            .run_as
            .iter()
            .filter_map(|(other, user)| Some((other.as_str(), user.as_ref().ok()?.as_ref())))
            .collect();
        let facts = AgentFacts {
            is_root: self.is_root,
            hooks_as_root: self.hooks_as_root,
            agent_user: self.agent_user.as_deref(),
        };
        match decide(app, mine.as_ref(), &others, facts)? {
            Identity::Agent => Ok(None),
            Identity::Isolated(user) => match Account::named(user.as_str())? {
                account if account.uid == 0 => Err(format!(
                    "{app} runs as {user}, whose uid is 0 on this target: that is root; give \
                     it a user of its own"
                )),
                account => Ok(Some(account)),
            },
        }
    }
}
