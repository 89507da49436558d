//! Who gets an incident: routing rules by category, an application's maintaining team, and
//! each team's support rotation and escalation time.

use ferry_api::SetTeamSupport;
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::duration::parse_duration;
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::Action;
use ferry_domain::rotation::Rotation;
use ferry_domain::routing::check_category;
use ferry_store::{App, TeamSupport};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::access::existing_team;
use super::apps::visible_app;
use super::{ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::state::AppState;

/// The shortest and the longest escalation time, in milliseconds.
const ESCALATE_AFTER_MS: std::ops::RangeInclusive<i64> = 60_000..=7 * 86_400_000;
/// A rotation's shift when none is given: a week.
const DEFAULT_SHIFT_MS: i64 = 7 * 86_400_000;

/// A team's support settings (anyone who can see the team).
pub async fn team_support(
    state: &AppState,
    caller: &Caller,
    team: &str,
) -> ServiceResult<TeamSupport> {
    existing_team(state, team).await?;
    caller.require(Action::ViewTeam { team })?;
    Ok(state.store.team_support(team).await?)
}

/// Sets a team's support rotation (members in order, each serving one shift from `start`)
/// and escalation time (the team's lead or an admin); fields left out stay as they are.
pub async fn set_team_support(
    state: &AppState,
    caller: &Caller,
    team: &str,
    request: SetTeamSupport,
) -> ServiceResult<TeamSupport> {
    existing_team(state, team).await?;
    caller.require(Action::ManageTeamRoles { team })?;
    let mut support = state.store.team_support(team).await?;
    if let Some(after) = &request.escalate_after {
        let ms = millis("escalate-after", after)?;
        if !ESCALATE_AFTER_MS.contains(&ms) {
            return Err(ServiceError::invalid(format!(
                "escalate-after {after:?} is out of range: give between 1m and 7d"
            )));
        }
        support.escalate_after_ms = ms;
    }
    let touches_rotation =
        request.members.is_some() || request.shift.is_some() || request.start.is_some();
    if touches_rotation {
        support.rotation = changed_rotation(support.rotation.take(), &request, caller.now_ms())?;
        if let Some(rotation) = &support.rotation {
            check_members(state, team, &rotation.members).await?;
        }
    }
    let audit = caller.audit(
        AuditAction::TeamSupport(audit_event::TeamSupport {
            members: support.rotation.as_ref().map(|r| r.members.clone()),
            shift_ms: support.rotation.as_ref().map(|r| r.shift_ms),
            start_ms: support.rotation.as_ref().map(|r| r.start_ms),
            escalate_after_ms: support.escalate_after_ms,
        }),
        format!("team/{team}"),
        None,
    );
    state.store.set_team_support(support.clone(), audit).await?;
    Ok(support)
}

/// The rotation after `request` changes `current`: what is given replaces, what is left out
/// stays; no members means no rotation.
fn changed_rotation(
    current: Option<Rotation>,
    request: &SetTeamSupport,
    now_ms: i64,
) -> ServiceResult<Option<Rotation>> {
    let members = match (&request.members, &current) {
        (Some(members), _) => members.clone(),
        (None, Some(rotation)) => rotation.members.clone(),
        (None, None) => Vec::new(),
    };
    if members.is_empty() {
        return Ok(None);
    }
    let shift_ms = match (&request.shift, &current) {
        (Some(shift), _) => millis("shift", shift)?,
        (None, Some(rotation)) => rotation.shift_ms,
        (None, None) => DEFAULT_SHIFT_MS,
    };
    let start_ms = match (&request.start, &current) {
        (Some(start), _) => OffsetDateTime::parse(start, &Rfc3339)
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
            .map_err(|e| {
                ServiceError::invalid(format!(
                    "start {start:?} is not an RFC 3339 time like 2026-11-23T09:00:00Z: {e}"
                ))
            })?,
        (None, Some(rotation)) => rotation.start_ms,
        (None, None) => now_ms,
    };
    let rotation = Rotation {
        members,
        shift_ms,
        start_ms,
    };
    rotation
        .validate()
        .map_err(|e| ServiceError::invalid(e.to_string()))?;
    Ok(Some(rotation))
}

/// Refuses a rotation member who is not in the team.
async fn check_members(state: &AppState, team: &str, members: &[String]) -> ServiceResult<()> {
    let users = state.store.list_users().await?;
    for member in members {
        let in_team = users
            .iter()
            .find(|u| &u.name == member)
            .is_some_and(|u| u.teams.iter().any(|m| m.team == team));
        if !in_team {
            return Err(ServiceError::invalid(format!(
                "{member:?} is not a member of team {team:?}: add them first (`ferry team add {team} {member}`)"
            )));
        }
    }
    Ok(())
}

fn millis(field: &str, text: &str) -> ServiceResult<i64> {
    let duration =
        parse_duration(text).map_err(|e| ServiceError::invalid(format!("{field}: {e}")))?;
    i64::try_from(duration.as_millis())
        .map_err(|_| ServiceError::invalid(format!("{field}: {text:?} is too long")))
}

/// Sends every incident of a category to a team (release managers and admins).
pub async fn set_route(
    state: &AppState,
    caller: &Caller,
    category: &str,
    team: &str,
) -> ServiceResult<()> {
    check_category(category).map_err(|e| ServiceError::invalid(e.to_string()))?;
    validate_name(NameKind::Team, team)?;
    caller.require(Action::ChangePolicy)?;
    let audit = caller.audit(
        AuditAction::RouteSet(audit_event::RouteSet {
            category: category.to_owned(),
            team: team.to_owned(),
        }),
        format!("route/{category}"),
        None,
    );
    Ok(state
        .store
        .set_routing_rule(category, Some(team), audit)
        .await?)
}

/// Removes the routing rule of a category (release managers and admins).
pub async fn remove_route(state: &AppState, caller: &Caller, category: &str) -> ServiceResult<()> {
    check_category(category).map_err(|e| ServiceError::invalid(e.to_string()))?;
    caller.require(Action::ChangePolicy)?;
    let audit = caller.audit(
        AuditAction::RouteRemove(audit_event::RouteRemove {
            category: category.to_owned(),
        }),
        format!("route/{category}"),
        None,
    );
    Ok(state.store.set_routing_rule(category, None, audit).await?)
}

/// Names the team that maintains an application and gets its incidents (`None`: its
/// owner); for the owning team's lead or an admin.
pub async fn set_maintainer(
    state: &AppState,
    caller: &Caller,
    name: &str,
    team: Option<&str>,
) -> ServiceResult<App> {
    let app = visible_app(state, caller, name).await?;
    if let Some(team) = team {
        validate_name(NameKind::Team, team)?;
    }
    caller.require(Action::ManageTeamRoles { team: &app.team })?;
    let audit = caller.audit(
        AuditAction::AppMaintainer(audit_event::AppMaintainer {
            maintainer: team.map(str::to_owned),
        }),
        format!("app/{name}"),
        Some(name),
    );
    state.store.set_maintainer(name, team, audit).await?;
    Ok(App {
        maintainer: team.map(str::to_owned),
        ..app
    })
}
