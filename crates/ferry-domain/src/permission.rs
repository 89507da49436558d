//! Who may do what: permission levels per environment, capabilities, and the evaluator.
//!
//! Organisation-wide actions (users, teams, roles, environment policy) are decided by a
//! user's default role. Actions on an application are decided by the user's role inside the
//! application's team: the team override if there is one, else the default role. A user who
//! is not a member of a team has no role there, unless their default role administers
//! everything.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A permission level in one environment; each level includes the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    None,
    View,
    Deploy,
    Approve,
    Admin,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 5] = [
        Level::None,
        Level::View,
        Level::Deploy,
        Level::Approve,
        Level::Admin,
    ];

    /// The level's name as users type it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::View => "view",
            Level::Deploy => "deploy",
            Level::Approve => "approve",
            Level::Admin => "admin",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL
            .into_iter()
            .find(|level| level.as_str() == s)
            .ok_or_else(|| format!("unknown level {s:?}: use none, view, deploy, approve or admin"))
    }
}

/// Something a role may do that is not tied to one environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Open and acknowledge incidents.
    RespondToIncidents,
    /// Change the roles of members inside one's own team.
    ManageTeamRoles,
    /// Create environments and change their policy; read the whole audit trail.
    ChangePolicy,
    /// Everything: users, teams, roles. Implies every other capability.
    Administer,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Capability; 4] = [
        Capability::RespondToIncidents,
        Capability::ManageTeamRoles,
        Capability::ChangePolicy,
        Capability::Administer,
    ];

    /// The capability's name as users type it.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::RespondToIncidents => "respond-to-incidents",
            Capability::ManageTeamRoles => "manage-team-roles",
            Capability::ChangePolicy => "change-policy",
            Capability::Administer => "administer",
        }
    }
}

impl FromStr for Capability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL
            .into_iter()
            .find(|cap| cap.as_str() == s)
            .ok_or_else(|| format!("unknown capability {s:?}"))
    }
}

/// A named set of levels per environment plus capabilities.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub levels: BTreeMap<String, Level>,
    pub capabilities: BTreeSet<Capability>,
}

impl Role {
    /// The role's level in an environment; `none` for an environment it does not mention.
    pub fn level_in(&self, env: &str) -> Level {
        self.levels.get(env).copied().unwrap_or(Level::None)
    }

    /// The highest level the role has in any environment.
    pub fn highest_level(&self) -> Level {
        self.levels.values().copied().max().unwrap_or(Level::None)
    }

    /// Whether the role has a capability; `administer` implies all of them.
    pub fn can(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
            || self.capabilities.contains(&Capability::Administer)
    }
}

/// Whether someone whose role in a team is `granter` may give `role` to a member of that
/// team: never a higher level than their own in any environment, nor a capability they lack.
/// (Admins are not limited; the caller checks that first.)
pub fn check_assignable(granter: &Role, role: &Role) -> Result<(), String> {
    if let Some((env, level)) = role
        .levels
        .iter()
        .find(|(env, level)| **level > granter.level_in(env))
    {
        return Err(format!(
            "role {:?} has {level} on {env:?}, more than your role {:?} ({}); choose a role \
             that does not exceed yours, or ask an admin",
            role.name,
            granter.name,
            granter.level_in(env)
        ));
    }
    match role.capabilities.iter().find(|c| !granter.can(**c)) {
        Some(capability) => Err(format!(
            "role {:?} can {}, which your role {:?} cannot; choose a role that does not \
             exceed yours, or ask an admin",
            role.name,
            capability.as_str(),
            granter.name
        )),
        None => Ok(()),
    }
}

/// A user as the rules see them: their default role and their role inside each team they
/// belong to (the override, or the default role when there is none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub default_role: Role,
    pub team_roles: BTreeMap<String, Role>,
    /// Levels granted to this user on single applications: app → environment → level.
    pub app_grants: BTreeMap<String, BTreeMap<String, Level>>,
}

impl Principal {
    /// The level granted on `app` in `env` by a per-app grant.
    pub fn granted(&self, app: &str, env: &str) -> Level {
        self.app_grants
            .get(app)
            .and_then(|levels| levels.get(env))
            .copied()
            .unwrap_or(Level::None)
    }

    /// The level on `app` (of `team`) in `env`: the team role's, or a per-app grant's if
    /// higher.
    pub fn level_on(&self, team: &str, app: &str, env: &str) -> Level {
        let from_team = self
            .role_in_team(team)
            .map_or(Level::None, |role| role.level_in(env));
        from_team.max(self.granted(app, env))
    }

    /// The role that applies to this team's applications, if any.
    pub fn role_in_team(&self, team: &str) -> Option<&Role> {
        self.team_roles.get(team).or_else(|| {
            self.default_role
                .can(Capability::Administer)
                .then_some(&self.default_role)
        })
    }
}

/// Everything the API asks permission for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Create teams and users, edit roles.
    Administer,
    /// Create environments and change their policy.
    ChangePolicy,
    /// Read every audit event, not only those of one's own applications.
    ReadFullAudit,
    /// Replace this user's API token: their own, or anyone's for an admin.
    RotateToken { user: &'a str },
    /// Set this user's dashboard password: their own, or anyone's for an admin.
    SetPassword { user: &'a str },
    /// Disable this user, so their tokens are refused: an admin, never their own account.
    DisableUser { user: &'a str },
    /// See the team and its applications (listing, showing, their audit events).
    ViewTeam { team: &'a str },
    /// Create an application owned by this team.
    CreateApp { team: &'a str },
    /// Create releases of this team's applications.
    CreateRelease { team: &'a str },
    /// Change the roles of the members of this team.
    ManageTeamRoles { team: &'a str },
    /// Open and acknowledge incidents on this team's applications.
    RespondToIncidents { team: &'a str },
    /// Act on this team's applications in one environment at least at `level`.
    InEnvironment {
        team: &'a str,
        env: &'a str,
        level: Level,
    },
    /// See an application: its team's members, and users granted a level on it.
    ViewApp { team: &'a str, app: &'a str },
    /// Make a release of the hand edits on a target of `env` (`ferry drift capture`): it
    /// creates a release and changes what the target runs, so it needs both rights, to
    /// create releases of the team's applications and to deploy the application there.
    CaptureDrift {
        team: &'a str,
        app: &'a str,
        env: &'a str,
    },
    /// Act on one application in an environment at `level`: the team role's level or a
    /// per-app grant.
    OnApp {
        team: &'a str,
        app: &'a str,
        env: &'a str,
        level: Level,
    },
    /// Take or restore a backup of an application's data in an environment (`ferry backup
    /// create`, `restore`): deploy level there, as a restore changes what the application
    /// runs on as surely as a deployment does.
    BackUpApp {
        team: &'a str,
        app: &'a str,
        env: &'a str,
    },
    /// See an application's backups in an environment (`ferry backup list`, `show`): view
    /// level there.
    ViewAppBackups {
        team: &'a str,
        app: &'a str,
        env: &'a str,
    },
    /// See an application's configuration keys in an environment, and its non-secret values
    /// (`ferry config show`, `history`, `diff`): view level there.
    ViewConfig {
        team: &'a str,
        app: &'a str,
        env: &'a str,
    },
    /// Change an application's configuration in an environment, or deploy it (`ferry config
    /// set`, `unset`, `apply`): deploy level there, as a value reaches the application as
    /// surely as a release does.
    ChangeConfig {
        team: &'a str,
        app: &'a str,
        env: &'a str,
    },
    /// Read back the values of an application's secrets (`ferry config show --reveal`):
    /// admins only, and audited.
    RevealSecrets {
        team: &'a str,
        app: &'a str,
        env: &'a str,
    },
}

/// The evaluator's answer; a denial says why in words a user can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
}

impl Decision {
    /// Whether the action is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// [`Action::OnApp`] at `level`, a denial saying what the level is needed for.
fn on_app_for(
    principal: &Principal,
    (team, app, env, level): (&str, &str, &str, Level),
    needs: &str,
) -> Decision {
    match decide(
        principal,
        Action::OnApp {
            team,
            app,
            env,
            level,
        },
    ) {
        Decision::Deny(reason) => Decision::Deny(format!("{reason} ({needs} on {env:?})")),
        allowed => allowed,
    }
}

/// Decides whether `principal` may perform `action`.
pub fn decide(principal: &Principal, action: Action<'_>) -> Decision {
    let user = &principal.user;
    let capability_check = |capability: Capability, needs: &str| {
        if principal.default_role.can(capability) {
            Decision::Allow
        } else {
            Decision::Deny(format!(
                "user {user:?} has role {:?}; {needs}",
                principal.default_role.name
            ))
        }
    };
    let team_role = |team: &str| {
        principal.role_in_team(team).ok_or_else(|| {
            Decision::Deny(format!(
                "user {user:?} is not a member of team {team:?}; ask a lead of that team or an admin to add them"
            ))
        })
    };
    let deny_in_team = |role: &Role, team: &str, needs: &str| {
        Decision::Deny(format!(
            "user {user:?} has role {:?} in team {team:?}; {needs}",
            role.name
        ))
    };
    match action {
        Action::Administer => capability_check(
            Capability::Administer,
            "managing users, teams and roles needs the admin role",
        ),
        Action::ChangePolicy => capability_check(
            Capability::ChangePolicy,
            "changing environments and their policy needs the release-manager or admin role",
        ),
        Action::ReadFullAudit => capability_check(
            Capability::ChangePolicy,
            "the whole audit trail is for release managers and admins; use --app APP for one application",
        ),
        Action::RotateToken { user: whose } if whose == user.as_str() => Decision::Allow,
        Action::RotateToken { .. } => capability_check(
            Capability::Administer,
            "anyone may rotate their own token; another user's needs the admin role",
        ),
        Action::SetPassword { user: whose } if whose == user.as_str() => Decision::Allow,
        Action::SetPassword { .. } => capability_check(
            Capability::Administer,
            "anyone may set their own password; another user's needs the admin role",
        ),
        Action::DisableUser { user: whose } if whose == user.as_str() => Decision::Deny(format!(
            "user {user:?} cannot disable themselves: ask another admin"
        )),
        Action::DisableUser { .. } => capability_check(
            Capability::Administer,
            "disabling users needs the admin role",
        ),
        Action::ViewTeam { team } => match team_role(team) {
            Err(denied) => denied,
            Ok(role) if role.highest_level() >= Level::View => Decision::Allow,
            Ok(role) => deny_in_team(role, team, "it gives no access to the team's applications"),
        },
        Action::CreateApp { team } => match team_role(team) {
            Err(denied) => denied,
            Ok(role) if role.highest_level() >= Level::Deploy => Decision::Allow,
            Ok(role) => deny_in_team(
                role,
                team,
                "creating applications needs a role that can deploy (developer or higher)",
            ),
        },
        Action::CreateRelease { team } => match team_role(team) {
            Err(denied) => denied,
            Ok(role) if role.highest_level() >= Level::Deploy => Decision::Allow,
            Ok(role) => deny_in_team(
                role,
                team,
                "creating releases needs a role that can deploy (developer or higher)",
            ),
        },
        Action::ManageTeamRoles { team } => match team_role(team) {
            Err(denied) => denied,
            Ok(role) if role.can(Capability::ManageTeamRoles) => Decision::Allow,
            Ok(role) => deny_in_team(role, team, "managing the team's roles needs its lead"),
        },
        Action::RespondToIncidents { team } => match team_role(team) {
            Err(denied) => denied,
            Ok(role) if role.can(Capability::RespondToIncidents) => Decision::Allow,
            Ok(role) => deny_in_team(
                role,
                team,
                "opening and acknowledging incidents needs the support role or higher",
            ),
        },
        Action::ViewApp { team, app } => {
            let granted = principal
                .app_grants
                .get(app)
                .is_some_and(|levels| levels.values().any(|l| *l >= Level::View));
            match decide(principal, Action::ViewTeam { team }) {
                Decision::Allow => Decision::Allow,
                _ if granted => Decision::Allow,
                denied => denied,
            }
        }
        Action::OnApp {
            team,
            app,
            env,
            level,
        } => {
            if principal.granted(app, env) >= level {
                return Decision::Allow;
            }
            match decide(principal, Action::InEnvironment { team, env, level }) {
                Decision::Allow => Decision::Allow,
                Decision::Deny(reason) if principal.app_grants.contains_key(app) => {
                    Decision::Deny(format!(
                        "{reason}; the grant on {app:?} gives {} on {env:?}, and this needs {level}",
                        principal.granted(app, env)
                    ))
                }
                denied => denied,
            }
        }
        Action::CaptureDrift { team, app, env } => {
            let deploy = Action::OnApp {
                team,
                app,
                env,
                level: Level::Deploy,
            };
            match (
                decide(principal, Action::CreateRelease { team }),
                decide(principal, deploy),
            ) {
                (Decision::Allow, Decision::Allow) => Decision::Allow,
                (Decision::Deny(reason), _) | (_, Decision::Deny(reason)) => Decision::Deny(
                    format!("{reason} (capturing hand edits creates a release and deploys it)"),
                ),
            }
        }
        Action::BackUpApp { team, app, env } => on_app_for(
            principal,
            (team, app, env, Level::Deploy),
            "taking and restoring backups needs deploy",
        ),
        Action::ViewAppBackups { team, app, env } => on_app_for(
            principal,
            (team, app, env, Level::View),
            "seeing backups needs view",
        ),
        Action::ViewConfig { team, app, env } => on_app_for(
            principal,
            (team, app, env, Level::View),
            "seeing configuration needs view",
        ),
        Action::ChangeConfig { team, app, env } => on_app_for(
            principal,
            (team, app, env, Level::Deploy),
            "changing configuration needs deploy",
        ),
        Action::RevealSecrets { .. } => capability_check(
            Capability::Administer,
            "only admins may read back a secret's value",
        ),
        Action::InEnvironment { team, env, level } => match team_role(team) {
            Err(denied) => denied,
            Ok(role) if role.level_in(env) >= level => Decision::Allow,
            Ok(role) => Decision::Deny(format!(
                "user {user:?} has {} on {env:?} in team {team:?} (role {:?}); this needs {level}",
                role.level_in(env),
                role.name
            )),
        },
    }
}
