//! Applications: which a caller may see, creating them, and per-application grants.

use ferry_api::{ChangeApp, CreateApp};
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::{Action, Level};
use ferry_domain::run_as::RunAs;
use ferry_store::{App, AppGrant, NewApp};

use super::{ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::state::AppState;

/// Releases kept per application when `keep` is not given.
const DEFAULT_KEEP: u32 = 10;
/// Releases kept per application at most.
const MAX_KEEP: u32 = 1000;

/// The applications the caller can see.
pub async fn visible_apps(state: &AppState, caller: &Caller) -> ServiceResult<Vec<App>> {
    let mut apps = state.store.list_apps().await?;
    apps.retain(|app| {
        caller.may(Action::ViewApp {
            team: &app.team,
            app: &app.name,
        })
    });
    Ok(apps)
}

/// The application named, if the caller may see it. An application of a team the caller
/// cannot see is reported as missing, so names do not leak across teams.
pub async fn visible_app(state: &AppState, caller: &Caller, name: &str) -> ServiceResult<App> {
    validate_name(NameKind::App, name)?;
    state
        .store
        .app(name)
        .await?
        .filter(|app| {
            caller.may(Action::ViewApp {
                team: &app.team,
                app: &app.name,
            })
        })
        .ok_or_else(|| no_such_app(name))
}

/// 404 for an application that does not exist or that the caller may not see: the two look
/// the same, so names do not leak across teams.
pub fn no_such_app(name: &str) -> ServiceError {
    ServiceError::not_found(format!(
        "no application named {name:?}: see `ferry app list`"
    ))
}

/// Creates an application owned by a team (a developer or higher in that team).
pub async fn create(state: &AppState, caller: &Caller, request: CreateApp) -> ServiceResult<App> {
    validate_name(NameKind::App, &request.name)?;
    validate_name(NameKind::Team, &request.team)?;
    let keep = request.keep.unwrap_or(DEFAULT_KEEP);
    check_keep(keep)?;
    caller.require(Action::CreateApp {
        team: &request.team,
    })?;
    let record = caller.audit(
        AuditAction::AppCreate(audit_event::AppCreate {
            team: request.team.clone(),
            keep,
        }),
        format!("app/{}", request.name),
        Some(&request.name),
    );
    Ok(state
        .store
        .create_app(
            NewApp {
                name: request.name,
                team: request.team,
                keep_releases: keep,
                created_ms: caller.now_ms(),
            },
            record,
        )
        .await?)
}

fn check_keep(keep: u32) -> ServiceResult<()> {
    if (1..=MAX_KEEP).contains(&keep) {
        Ok(())
    } else {
        Err(ServiceError::invalid(format!(
            "keep {keep} is out of range: keep between 1 and {MAX_KEEP} releases"
        )))
    }
}

/// Changes an application's settings (its team's lead, or an admin). A change to what is
/// already set changes nothing and is not audited. Returns the application and, when its
/// backup settings were given, how often its data is backed up and what is kept.
pub async fn change(
    state: &AppState,
    caller: &Caller,
    name: &str,
    request: ChangeApp,
) -> ServiceResult<(App, Option<(Option<String>, String)>)> {
    let app = visible_app(state, caller, name).await?;
    if request.keep.is_none()
        && request.backup_every.is_none()
        && request.backup_keep.is_none()
        && request.run_as.is_none()
    {
        return Err(ServiceError::invalid(
            "nothing to change: give the setting to change, like `ferry app set APP --keep 5` \
             or `--backup-every 24h`",
        ));
    }
    if let Some(keep) = request.keep {
        check_keep(keep)?;
    }
    let run_as = request.run_as.as_deref().map(read_run_as).transpose()?;
    caller.require(Action::ManageTeamRoles { team: &app.team })?;
    if run_as.is_some() {
        // The user an application runs as decides which files on a target it can reach:
        // a team's lead could otherwise make their application run as another team's.
        caller.require(Action::Administer)?;
    }
    let backups = match (&request.backup_every, &request.backup_keep) {
        (None, None) => None,
        (every, keep) => Some(
            super::backup_schedule::set_schedule(
                state,
                caller,
                &app,
                every.as_deref(),
                keep.as_deref(),
            )
            .await?,
        ),
    };
    let app = match run_as.filter(|user| *user != app.run_as) {
        Some(user) => set_run_as(state, caller, app, user).await?,
        None => app,
    };
    let Some(keep) = request.keep.filter(|keep| *keep != app.keep_releases) else {
        return Ok((app, backups));
    };
    let record = caller.audit(
        AuditAction::AppKeep(audit_event::AppKeep {
            keep,
            was: app.keep_releases,
        }),
        format!("app/{name}"),
        Some(name),
    );
    state.store.set_keep(name, keep, record).await?;
    // Agents keep this many releases on disk too: they look again.
    state.wakeups.bump();
    Ok((
        App {
            keep_releases: keep,
            ..app
        },
        backups,
    ))
}

/// `--run-as USER`, or `--run-as ''` for none.
fn read_run_as(user: &str) -> ServiceResult<Option<RunAs>> {
    if user.is_empty() {
        return Ok(None);
    }
    RunAs::parse(user).map(Some).map_err(ServiceError::invalid)
}

async fn set_run_as(
    state: &AppState,
    caller: &Caller,
    app: App,
    user: Option<RunAs>,
) -> ServiceResult<App> {
    let record = caller.audit(
        AuditAction::AppRunAs(audit_event::AppRunAs {
            user: user.as_ref().map(RunAs::to_string),
            was: app.run_as.as_ref().map(RunAs::to_string),
        }),
        format!("app/{}", app.name),
        Some(&app.name),
    );
    state
        .store
        .set_run_as(&app.name, user.as_ref(), record)
        .await?;
    // Agents run the application's next commands as this user.
    state.wakeups.bump();
    Ok(App {
        run_as: user,
        ..app
    })
}

/// The per-application grants of an application the caller can see.
pub async fn grants(state: &AppState, caller: &Caller, name: &str) -> ServiceResult<Vec<AppGrant>> {
    let app = visible_app(state, caller, name).await?;
    Ok(state.store.app_grants(&app.name).await?)
}

/// Grants one user a level on the application in one environment, beside team roles
/// (`none` removes the grant); for the team's lead or an admin, who never grants more than
/// their own level.
pub async fn set_grant(
    state: &AppState,
    caller: &Caller,
    name: &str,
    user: &str,
    env: &str,
    level: &str,
) -> ServiceResult<AppGrant> {
    let app = visible_app(state, caller, name).await?;
    validate_name(NameKind::User, user)?;
    validate_name(NameKind::Environment, env)?;
    let level: Level = level.parse().map_err(ServiceError::invalid)?;
    caller.require(Action::ManageTeamRoles { team: &app.team })?;
    let own = caller.level_on(&app, env);
    if level > own {
        return Err(ServiceError::forbidden(format!(
            "user {:?} has {own} on {env:?} for {}; nobody grants more than their own level",
            caller.user.name, app.name
        )));
    }
    let record = caller.audit(
        AuditAction::AppGrant(audit_event::AppGrant {
            user: user.to_owned(),
            env: env.to_owned(),
            level,
        }),
        format!("app/{}", app.name),
        Some(&app.name),
    );
    let grant = AppGrant {
        app: app.name,
        user: user.to_owned(),
        env: env.to_owned(),
        level,
    };
    state.store.set_app_grant(grant.clone(), record).await?;
    Ok(grant)
}
