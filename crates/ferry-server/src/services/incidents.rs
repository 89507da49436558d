//! Incidents as use cases: opened and routed to the right person with the support path ferry
//! plans, acknowledged, resolved, and `hotfix start`.

use std::collections::HashMap;

use ferry_api::{CreateDeployment, HotfixPlan, IncidentNote, OpenIncident};
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::incident::{check_ack, check_resolve, IncidentStatus, Severity};
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::Action;
use ferry_domain::pipeline::production;
use ferry_domain::routing::{check_category, maintaining_team, route};
use ferry_domain::support::{hotfix_base, HotfixBase};
use ferry_domain::vocabulary::UnknownWord;
use ferry_store::{App, IncidentRecord, IncidentUpdate};

use super::apps::no_such_app;
use super::support::{assignee, hotfix_source, plan, production_and_dev};
use super::{ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::state::AppState;
use crate::views::deployment_with_approvals;

const MAX_TITLE: usize = 200;
const MAX_DESCRIPTION: usize = 10_000;
const MAX_NOTE: usize = 2_000;

/// Refuses unless the caller responds to incidents for the team that owns `app`, the team
/// that maintains it, or `routed_to`.
fn require_responder(caller: &Caller, app: &App, routed_to: Option<&str>) -> ServiceResult<()> {
    let teams = std::iter::once(app.team.as_str())
        .chain(app.maintainer.as_deref())
        .chain(routed_to);
    let mut refusal = None;
    for team in teams {
        match caller.require(Action::RespondToIncidents { team }) {
            Ok(()) => return Ok(()),
            Err(denied) => refusal = refusal.or(Some(denied)),
        }
    }
    Err(refusal.expect("an application has an owner"))
}

/// Whether the caller sees `app` for support work: as a member of its team (or by a grant),
/// or as a member of the team that maintains it.
pub fn sees_for_support(caller: &Caller, app: &App) -> bool {
    caller.may(Action::ViewApp {
        team: &app.team,
        app: &app.name,
    }) || app
        .maintainer
        .as_deref()
        .is_some_and(|team| caller.may(Action::ViewTeam { team }))
}

/// Whether the caller may see an incident: they see its application for support work, or
/// belong to the team it was routed to.
pub fn may_see(caller: &Caller, app: &App, incident: &IncidentRecord) -> bool {
    sees_for_support(caller, app)
        || caller.may(Action::ViewTeam {
            team: &incident.team,
        })
}

fn text(field: &str, value: &str, max: usize) -> ServiceResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ServiceError::invalid(format!(
            "the {field} is empty: say what is wrong"
        )));
    }
    if value.contains('\0') {
        return Err(ServiceError::invalid(format!(
            "the {field} holds a NUL character: send plain text"
        )));
    }
    if value.len() > max {
        return Err(ServiceError::invalid(format!(
            "the {field} is limited to {max} bytes of text"
        )));
    }
    Ok(value.to_owned())
}

/// An application by name for support work: its owner's members, its maintainers and the
/// users who respond for them may see it.
pub async fn support_app(state: &AppState, caller: &Caller, name: &str) -> ServiceResult<App> {
    validate_name(NameKind::App, name)?;
    state
        .store
        .app(name)
        .await?
        .filter(|app| sees_for_support(caller, app))
        .ok_or_else(|| no_such_app(name))
}

/// Opens an incident (support role or higher in the owning or maintaining team). It is routed
/// to the on-call person of the right team, and ferry plans its support path: a backlog item
/// when not critical; for a critical one in production, a hotfix from production's release,
/// then a backport (dev runs the same release) or a merge (dev runs another).
pub async fn open(
    state: &AppState,
    caller: &Caller,
    request: OpenIncident,
) -> ServiceResult<(IncidentRecord, Option<i64>)> {
    let app = support_app(state, caller, &request.app).await?;
    validate_name(NameKind::Environment, &request.env)?;
    let severity: Severity = request
        .severity
        .parse()
        .map_err(|e: UnknownWord| ServiceError::invalid(e.to_string()))?;
    let title = text("title", &request.title, MAX_TITLE)?;
    let description = match &request.description {
        Some(d) => Some(text("description", d, MAX_DESCRIPTION)?),
        None => None,
    };
    let category = match &request.category {
        Some(c) => {
            check_category(c).map_err(|e| ServiceError::invalid(e.to_string()))?;
            Some(c.clone())
        }
        None => None,
    };
    require_responder(caller, &app, None)?;
    let pipeline = state.store.list_environments().await?;
    if !pipeline.iter().any(|e| e.name == request.env) {
        return Err(ServiceError::not_found(format!(
            "no environment named {:?}: see `ferry env list`",
            request.env
        )));
    }
    let rules = state.store.routing_rules().await?;
    let team = route(
        category.as_deref(),
        &app.team,
        app.maintainer.as_deref(),
        &rules,
    )
    .to_owned();
    let now = caller.now_ms();
    let plan = plan(state, &app.name, &request.env, severity).await?;
    let assignee = assignee(state, &team, now, 0).await?;
    let to = assignee
        .clone()
        .unwrap_or_else(|| format!("the leads of team {team}"));
    let record = IncidentRecord {
        id: 0,
        app: app.name.clone(),
        env: request.env.clone(),
        severity,
        title,
        category,
        description,
        status: IncidentStatus::Open,
        path: plan.path,
        team: team.clone(),
        reporter: caller.user.name.clone(),
        assignee,
        escalation_level: 0,
        base_version: plan.base_version,
        suggested_version: plan.suggested_version,
        source: plan.source.map(|s| s.to_string()),
        opened_ms: now,
        acknowledged_ms: None,
        acknowledged_by: None,
        resolved_ms: None,
        resolved_by: None,
        history: vec![ferry_store::IncidentStep {
            at_ms: now,
            actor: caller.user.name.clone(),
            what: format!(
                "opened ({}, path {}); routed to team {team}, assigned to {to}",
                severity.as_str(),
                plan.path.as_str()
            ),
        }],
    };
    let audit = caller.audit(
        AuditAction::IncidentOpen(audit_event::IncidentOpen {
            env: record.env.clone(),
            severity: record.severity,
            title: record.title.clone(),
            path: record.path,
            team: team.clone(),
            assignee: record.assignee.clone(),
            base_version: record.base_version.clone(),
        }),
        String::new(),
        Some(&app.name),
    );
    // The incident goes where routing sends it; a backlog item is the maintaining team's work.
    let backlog_team = maintaining_team(&app.team, app.maintainer.as_deref());
    let (incident, backlog) = state
        .store
        .open_incident(record, backlog_team, audit)
        .await?;
    Ok((incident, backlog.map(|b| b.id)))
}

/// The incidents the caller may see (of `app` when given, which they must see for support
/// work), newest first; unresolved ones only unless `all`. Each comes with its application.
pub async fn visible_incidents(
    state: &AppState,
    caller: &Caller,
    app: Option<&str>,
    all: bool,
) -> ServiceResult<Vec<(IncidentRecord, App)>> {
    if let Some(app) = app {
        support_app(state, caller, app).await?;
    }
    let (apps, incidents) =
        tokio::try_join!(state.store.list_apps(), state.store.incidents(app, all))?;
    let apps: HashMap<String, App> = apps
        .into_iter()
        .map(|app| (app.name.clone(), app))
        .collect();
    Ok(incidents
        .into_iter()
        .filter_map(|incident| {
            let app = apps.get(&incident.app)?;
            may_see(caller, app, &incident).then(|| (incident, app.clone()))
        })
        .collect())
}

/// Whether the caller may acknowledge or resolve incidents of `app` routed to `team`: the
/// same check [`change`] makes, for offering the buttons.
pub fn may_respond(caller: &Caller, app: &App, team: &str) -> bool {
    require_responder(caller, app, Some(team)).is_ok()
}

/// An incident the caller may see, with its application; missing otherwise.
pub async fn visible_incident(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> ServiceResult<(IncidentRecord, App)> {
    let missing = || {
        ServiceError::not_found(format!(
            "no incident {id}: `ferry incident list` shows them"
        ))
    };
    let incident = state.store.incident(id).await?.ok_or_else(missing)?;
    let app = state.store.app(&incident.app).await?.ok_or_else(missing)?;
    if !may_see(caller, &app, &incident) {
        return Err(missing());
    }
    Ok((incident, app))
}

fn note(request: &IncidentNote) -> ServiceResult<Option<String>> {
    match request.note.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(n) => text("note", n, MAX_NOTE).map(Some),
    }
}

/// What becomes of an incident.
#[derive(Clone, Copy)]
pub enum Change {
    Ack,
    Resolve,
}

/// Acknowledges (someone is on it, so it stops escalating) or resolves an incident (support
/// role or higher in the team it was routed to, or the application's team).
pub async fn change(
    state: &AppState,
    caller: &Caller,
    id: i64,
    request: &IncidentNote,
    change: Change,
) -> ServiceResult<IncidentRecord> {
    let (mut incident, app) = visible_incident(state, caller, id).await?;
    let note = note(request)?;
    require_responder(caller, &app, Some(&incident.team))?;
    let (status, read_level) = (incident.status, incident.escalation_level);
    let now = caller.now_ms();
    let user = caller.user.name.clone();
    let (action, what): (fn(audit_event::IncidentChange) -> AuditAction, &str) = match change {
        Change::Ack => {
            check_ack(id, status).map_err(|e| ServiceError::policy("incident", e.to_string()))?;
            incident.status = IncidentStatus::Acknowledged;
            incident.acknowledged_ms = Some(now);
            incident.acknowledged_by = Some(user.clone());
            incident.assignee = Some(user.clone());
            (AuditAction::IncidentAck, "acknowledged")
        }
        Change::Resolve => {
            check_resolve(id, status)
                .map_err(|e| ServiceError::policy("incident", e.to_string()))?;
            incident.status = IncidentStatus::Resolved;
            incident.resolved_ms = Some(now);
            incident.resolved_by = Some(user.clone());
            (AuditAction::IncidentResolve, "resolved")
        }
    };
    incident.history.push(ferry_store::IncidentStep {
        at_ms: now,
        actor: user,
        what: match &note {
            Some(note) => format!("{what}: {note}"),
            None => what.to_owned(),
        },
    });
    let audit = caller.audit(
        action(audit_event::IncidentChange {
            incident: id,
            note,
            team: incident.team.clone(),
            title: incident.title.clone(),
        }),
        format!("incident/{id}"),
        Some(&incident.app),
    );
    state
        .store
        .update_incident(incident, status, read_level, audit)
        .await?;
    let (incident, _) = visible_incident(state, caller, id).await?;
    Ok(incident)
}

/// Starts the hotfix of a critical incident: pp is made to run production's release (a
/// normal deployment under pp's policy; going back there is the purpose, so it is not a
/// downgrade), and the plan lists what comes next. Production's release is read again now:
/// when it is no longer the base recorded at open (another hotfix shipped meanwhile), the
/// hotfix starts from what production runs, the plan says so, and the incident records the
/// new base (audited as `incident.rebase`).
pub async fn start_hotfix(state: &AppState, caller: &Caller, id: i64) -> ServiceResult<HotfixPlan> {
    let (incident, app) = visible_incident(state, caller, id).await?;
    let pipeline = state.store.list_environments().await?;
    let hotfix_env = ferry_domain::lifecycle::hotfix_entry(&pipeline)
        .map(|e| e.name.clone())
        .ok_or_else(|| ServiceError::invalid("the pipeline has no environment for hotfixes"))?;
    caller.require(Action::OnApp {
        team: &app.team,
        app: &app.name,
        env: &hotfix_env,
        level: ferry_domain::permission::Level::Deploy,
    })?;
    let (Some(base), Some(suggested)) = (&incident.base_version, &incident.suggested_version)
    else {
        return Err(ServiceError::policy(
            "incident",
            format!(
                "incident {id} is on the {} path, not a hotfix path: fix it in the normal product path (dev → pp → prd)",
                incident.path
            ),
        ));
    };
    if incident.status == IncidentStatus::Resolved {
        return Err(ServiceError::policy(
            "incident",
            format!("incident {id} is resolved: open a new incident if the problem is back"),
        ));
    }
    let production = production(&pipeline)
        .map(|e| e.name.clone())
        .unwrap_or_default();
    let (production_runs, _) = production_and_dev(state, &pipeline, &app.name).await?;
    let (base, suggested, source, rebased_from) =
        match hotfix_base(base, production_runs.as_deref()) {
            HotfixBase::Kept(base) => (
                base.to_owned(),
                suggested.clone(),
                incident.source.clone(),
                None,
            ),
            HotfixBase::Moved { from, to } => {
                let (suggested, source) = hotfix_source(state, &app.name, to).await?;
                (
                    to.to_owned(),
                    suggested,
                    Some(source.to_string()),
                    Some(from.to_owned()),
                )
            }
        };
    // The moved base is recorded with the deployment that makes pp run it, in one
    // transaction: a refused deployment changes nothing, and a started one always has it.
    let rebase = rebased_from.as_ref().map(|from| {
        let audit = caller.audit(
            AuditAction::IncidentRebase(audit_event::IncidentRebase {
                incident: id,
                from: from.clone(),
                base_version: base.clone(),
                suggested_version: suggested.clone(),
                team: incident.team.clone(),
            }),
            format!("incident/{id}"),
            Some(&app.name),
        );
        let mut moved = incident.clone();
        moved.base_version = Some(base.clone());
        moved.suggested_version = Some(suggested.clone());
        moved.source = source.clone();
        moved.history.push(ferry_store::IncidentStep {
            at_ms: audit.at_ms,
            actor: caller.user.name.clone(),
            what: format!(
                "hotfix base moved from {from} to {base}: {production} runs {base} now; suggested version {suggested}"
            ),
        });
        IncidentUpdate {
            read_status: incident.status,
            read_level: incident.escalation_level,
            incident: moved,
            audit,
        }
    });
    let deployment = super::deployments::deploy_with(
        state,
        caller,
        &app.name,
        CreateDeployment {
            version: base.clone(),
            env: hotfix_env.clone(),
            reason: Some(format!("hotfix start for incident {id}")),
            allow_downgrade: true,
            ..CreateDeployment::default()
        },
        rebase,
    )
    .await?;
    let deployment = deployment_with_approvals(state, deployment).await?;
    let name = &app.name;
    let next = vec![
        format!("ferry release export {name} {base} ./{name}-{base}   # or check out the source below"),
        format!("ferry release create {name} {suggested} --from ./{name}-{base} --hotfix-of {base} --incident {id}"),
        format!("ferry deploy {name} {suggested} --to {hotfix_env} --wait"),
        format!("ferry promote {name} --from {hotfix_env} --to {production}   # approved, it opens a backport obligation"),
    ];
    Ok(HotfixPlan {
        incident: id,
        path: incident.path,
        source: source
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default(),
        base_version: base,
        rebased_from,
        suggested_version: suggested,
        deployment,
        next,
    })
}
