//! Who may do what: teams and their members, users and their tokens, roles and their level
//! in each environment.

use ferry_api::{CreateUser, SetMember};
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::password::check_new_password;
use ferry_domain::permission::{check_assignable, Action, Capability, Level, Role};
use ferry_domain::token::hash_token;
use ferry_store::{Membership, NewUser, Team, User};

use super::{blocking, ServiceError, ServiceResult};
use crate::auth::{new_token, Caller};
use crate::state::AppState;

/// The role a user gets when none is named.
const DEFAULT_ROLE: &str = "viewer";

/// The teams the caller can see.
pub async fn teams(state: &AppState, caller: &Caller) -> ServiceResult<Vec<Team>> {
    let teams = state.store.list_teams().await?;
    Ok(teams
        .into_iter()
        .filter(|team| caller.may(Action::ViewTeam { team: &team.name }))
        .collect())
}

/// Creates a team (admin).
pub async fn create_team(state: &AppState, caller: &Caller, name: &str) -> ServiceResult<Team> {
    validate_name(NameKind::Team, name)?;
    caller.require(Action::Administer)?;
    let record = caller.audit(
        AuditAction::TeamCreate(audit_event::TeamCreate {}),
        format!("team/{name}"),
        None,
    );
    Ok(state.store.create_team(name, record).await?)
}

/// Refuses a team name that is malformed or names no team.
pub async fn existing_team(state: &AppState, team: &str) -> ServiceResult<()> {
    validate_name(NameKind::Team, team)?;
    let teams = state.store.list_teams().await?;
    match teams.iter().any(|t| t.name == team) {
        true => Ok(()),
        false => Err(ServiceError::not_found(format!(
            "no team {team:?}; `ferry team list` shows the teams you can see"
        ))),
    }
}

/// A member of a team: who, the role given there (if any), and the role that applies.
pub struct Member {
    pub user: String,
    pub role: Option<String>,
    pub effective_role: String,
}

/// The members of a team and their roles there (anyone who can see the team).
pub async fn members(state: &AppState, caller: &Caller, team: &str) -> ServiceResult<Vec<Member>> {
    existing_team(state, team).await?;
    caller.require(Action::ViewTeam { team })?;
    let users = state.store.list_users().await?;
    Ok(users
        .iter()
        .filter_map(|user| {
            let membership = user.teams.iter().find(|m| m.team == team)?;
            Some(Member {
                user: user.name.clone(),
                role: membership.role.clone(),
                effective_role: membership
                    .role
                    .clone()
                    .unwrap_or_else(|| user.default_role.clone()),
            })
        })
        .collect())
}

/// Adds a user to the team or changes their role there (the team's lead, up to their own
/// role, or an admin).
pub async fn set_member(
    state: &AppState,
    caller: &Caller,
    team: &str,
    name: &str,
    request: SetMember,
) -> ServiceResult<Member> {
    existing_team(state, team).await?;
    if let Some(role) = &request.role {
        validate_name(NameKind::Role, role)?;
    }
    caller.require(Action::ManageTeamRoles { team })?;
    let user = existing_user(state, name).await?;
    let effective_role = request.role.clone().unwrap_or(user.default_role.clone());
    check_membership_change(state, caller, team, &user, Some(&effective_role)).await?;
    let record = caller.audit(
        AuditAction::TeamMember(audit_event::TeamMember::Set {
            user: name.to_owned(),
            role: request.role.clone(),
        }),
        format!("team/{team}"),
        None,
    );
    state
        .store
        .set_membership(team, name, request.role.as_deref(), false, record)
        .await?;
    Ok(Member {
        user: name.to_owned(),
        role: request.role,
        effective_role,
    })
}

/// Takes a user out of the team (the team's lead, for members whose role does not exceed
/// theirs, or an admin).
pub async fn remove_member(
    state: &AppState,
    caller: &Caller,
    team: &str,
    name: &str,
) -> ServiceResult<()> {
    existing_team(state, team).await?;
    caller.require(Action::ManageTeamRoles { team })?;
    let user = existing_user(state, name).await?;
    check_membership_change(state, caller, team, &user, None).await?;
    let record = caller.audit(
        AuditAction::TeamMember(audit_event::TeamMember::Removed {
            user: name.to_owned(),
        }),
        format!("team/{team}"),
        None,
    );
    Ok(state
        .store
        .set_membership(team, name, None, true, record)
        .await?)
}

/// Checks that the caller, who may manage the team's roles, may change `user`'s membership
/// of `team`, to `new_role` when given: a team lead manages roles only inside their own
/// team, and never gives or takes away more than their own role there; admins are not
/// limited.
async fn check_membership_change(
    state: &AppState,
    caller: &Caller,
    team: &str,
    user: &User,
    new_role: Option<&str>,
) -> ServiceResult<()> {
    if caller.may(Action::Administer) {
        return Ok(());
    }
    let roles = state.store.list_roles().await?;
    let find = |name: &str| {
        roles.iter().find(|r| r.name == name).ok_or_else(|| {
            ServiceError::not_found(format!("no role {name:?}; `ferry role list` shows them"))
        })
    };
    let granter = caller
        .principal
        .role_in_team(team)
        .ok_or_else(|| ServiceError::forbidden(format!("you are not a member of team {team:?}")))?;
    let current = user
        .teams
        .iter()
        .find(|m| m.team == team)
        .map(|m| m.role.as_deref().unwrap_or(&user.default_role));
    for role in current.into_iter().chain(new_role) {
        check_assignable(granter, find(role)?).map_err(|reason| {
            ServiceError::forbidden(format!(
                "changing {:?} in team {team:?}: {reason}",
                user.name
            ))
        })?;
    }
    Ok(())
}

async fn existing_user(state: &AppState, name: &str) -> ServiceResult<User> {
    validate_name(NameKind::User, name)?;
    let users = state.store.list_users().await?;
    users
        .into_iter()
        .find(|u| u.name == name)
        .ok_or_else(|| ServiceError::not_found(format!("no user {name:?}; an admin creates users")))
}

/// Users the caller can see: everyone for admins; otherwise the caller and the members of
/// the teams the caller can see.
pub async fn users(state: &AppState, caller: &Caller) -> ServiceResult<Vec<User>> {
    let users = state.store.list_users().await?;
    let visible = |user: &User| {
        caller.may(Action::Administer)
            || user.name == caller.user.name
            || user
                .teams
                .iter()
                .any(|m| caller.may(Action::ViewTeam { team: &m.team }))
    };
    Ok(users.into_iter().filter(visible).collect())
}

/// Creates a user (admin) and returns them with their API token, which exists nowhere else:
/// the server keeps only its hash.
pub async fn create_user(
    state: &AppState,
    caller: &Caller,
    request: CreateUser,
) -> ServiceResult<(User, String)> {
    validate_name(NameKind::User, &request.name)?;
    let role = request.role.unwrap_or_else(|| DEFAULT_ROLE.to_owned());
    validate_name(NameKind::Role, &role)?;
    for (i, membership) in request.teams.iter().enumerate() {
        validate_name(NameKind::Team, &membership.team)?;
        if let Some(role) = &membership.role {
            validate_name(NameKind::Role, role)?;
        }
        if request.teams[..i].iter().any(|m| m.team == membership.team) {
            return Err(ServiceError::invalid(format!(
                "team {:?} is named twice: give one role per team",
                membership.team
            )));
        }
    }
    caller.require(Action::Administer)?;
    let token = new_token().map_err(|e| ServiceError::internal(e.to_string()))?;
    let teams: Vec<Membership> = request
        .teams
        .into_iter()
        .map(|m| Membership {
            team: m.team,
            role: m.role,
        })
        .collect();
    let record = caller.audit(
        AuditAction::UserCreate(audit_event::UserCreate {
            role: role.clone(),
            teams: teams
                .iter()
                .map(|t| audit_event::TeamRole {
                    team: t.team.clone(),
                    role: t.role.clone(),
                })
                .collect(),
        }),
        format!("user/{}", request.name),
        None,
    );
    let user = state
        .store
        .create_user(
            NewUser {
                name: request.name,
                default_role: role,
                teams,
                token_hash: hash_token(&token),
                created_ms: caller.now_ms(),
            },
            record,
        )
        .await?;
    Ok((user, token))
}

/// Replaces `name`'s API token with a new one and returns it (their own, or anyone's for an
/// admin). The old token is refused from the commit on; the new one exists nowhere else.
pub async fn rotate_token(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> ServiceResult<(User, String)> {
    validate_name(NameKind::User, name)?;
    caller.require(Action::RotateToken { user: name })?;
    let user = existing_user(state, name).await?;
    let token = new_token().map_err(|e| ServiceError::internal(e.to_string()))?;
    let record = caller.audit(
        AuditAction::UserRotateToken(audit_event::UserRotateToken {}),
        format!("user/{name}"),
        None,
    );
    state
        .store
        .rotate_token(name, &hash_token(&token), caller.now_ms(), record)
        .await?;
    Ok((user, token))
}

/// Sets a user's dashboard password: their own, or anyone's for an admin. The password is
/// checked (`ferry_domain::password`) and kept only as its argon2id hash (a PHC string with
/// its own random salt); audited `user.set-password`, with nothing of the password.
pub async fn set_password(
    state: &AppState,
    caller: &Caller,
    name: &str,
    password: String,
) -> ServiceResult<()> {
    validate_name(NameKind::User, name)?;
    caller.require(Action::SetPassword { user: name })?;
    existing_user(state, name).await?;
    check_new_password(&password).map_err(ServiceError::invalid)?;
    let hash = blocking(move || {
        use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
        let salt = SaltString::generate(&mut OsRng);
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| ServiceError::internal(format!("hashing the password: {e}")))
    })
    .await?;
    let record = caller.audit(
        AuditAction::UserSetPassword(audit_event::UserSetPassword {}),
        format!("user/{name}"),
        None,
    );
    state.store.set_password_hash(name, &hash, record).await?;
    Ok(())
}

/// Disables a user (admin, not their own account, never the last enabled admin): their
/// tokens are refused until an admin enables them again. Disabling a disabled user, or
/// enabling an enabled one, changes nothing and records nothing.
pub async fn set_disabled(
    state: &AppState,
    caller: &Caller,
    name: &str,
    disable: bool,
) -> ServiceResult<User> {
    validate_name(NameKind::User, name)?;
    match disable {
        true => caller.require(Action::DisableUser { user: name })?,
        false => caller.require(Action::Administer)?,
    }
    let user = existing_user(state, name).await?;
    if user.disabled_ms.is_some() == disable {
        return Ok(user);
    }
    let (action, disabled_ms) = match disable {
        true => (
            AuditAction::UserDisable(audit_event::UserDisable {}),
            Some(caller.now_ms()),
        ),
        false => (AuditAction::UserEnable(audit_event::UserEnable {}), None),
    };
    let admin_roles: Vec<String> = state
        .store
        .list_roles()
        .await?
        .into_iter()
        .filter(|role| role.capabilities.contains(&Capability::Administer))
        .map(|role| role.name)
        .collect();
    let record = caller.audit(action, format!("user/{name}"), None);
    Ok(state
        .store
        .set_user_disabled(name, disabled_ms, &admin_roles, record)
        .await?)
}

/// Sets a role's level in one environment (admin; the admin role cannot be edited).
pub async fn set_role_level(
    state: &AppState,
    caller: &Caller,
    role: &str,
    env: &str,
    level: &str,
) -> ServiceResult<Role> {
    validate_name(NameKind::Role, role)?;
    validate_name(NameKind::Environment, env)?;
    let level: Level = level.parse().map_err(ServiceError::invalid)?;
    caller.require(Action::Administer)?;
    let record = caller.audit(
        AuditAction::RoleSetLevel(audit_event::RoleSetLevel {
            env: env.to_owned(),
            level,
        }),
        format!("role/{role}"),
        None,
    );
    Ok(state.store.set_role_level(role, env, level, record).await?)
}
