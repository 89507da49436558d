//! `ferry incident`, `ferry hotfix`, `ferry backlog`, `ferry backport` and `ferry route`.

use ferry_api::{
    BacklogItem, Backport, HotfixPlan, Incident, IncidentNote, IncidentStatus, OpenIncident,
    RoutingRule, WaiveBackport,
};
use ferry_domain::name::NameKind;

use super::check_name;
use super::deploy::{outcome, print_deployment, wait_until_done};
use super::release::describe_source;
use crate::cli::{BacklogCommand, BackportCommand, HotfixCommand, IncidentCommand, RouteCommand};
use crate::client::Client;
use crate::error::{CliError, CliResult};
use crate::output::{print_table, Output};

fn app_query(path: &str, app: &Option<String>) -> CliResult<String> {
    match app {
        Some(app) => {
            check_name(NameKind::App, app)?;
            Ok(format!("{path}?app={app}"))
        }
        None => Ok(path.to_owned()),
    }
}

fn print_incident(i: &Incident) {
    let assignee = i
        .assignee
        .clone()
        .unwrap_or_else(|| format!("the leads of team {}", i.team));
    println!(
        "incident {}: {} {} on {} ({}), {}",
        i.id, i.severity, i.status, i.app, i.env, i.title
    );
    println!("routed to team {}, assigned to {assignee}", i.team);
    println!("path: {}", i.path);
    if let Some(item) = i.backlog_item {
        match (&i.backlog_closed_by, i.status) {
            (Some(closed_by), IncidentStatus::Resolved) => {
                println!("backlog item {item}: closed by release {closed_by}")
            }
            (Some(closed_by), _) => println!(
                "backlog item {item}: closed by release {closed_by}; if that fixed it: ferry incident resolve {}",
                i.id
            ),
            (None, _) => println!(
                "backlog item {item}: open; a release that fixes it closes it (`ferry release create {} VERSION --from … --closes {item}`)",
                i.app
            ),
        }
    }
    if let (Some(base), Some(suggested)) = (&i.base_version, &i.suggested_version) {
        // Once resolved, the plan is history: what production ran when the incident was
        // opened, not what it runs now.
        match i.status {
            IncidentStatus::Resolved => println!(
                "hotfix planned from {base} (production's release when the incident was opened)"
            ),
            _ => {
                println!(
                    "hotfix from {base} (running in production); suggested version {suggested}"
                );
                if let Some(source) = &i.source {
                    print_hotfix_source(source);
                }
                println!("next: ferry hotfix start {}", i.id);
            }
        }
    }
    for step in &i.history {
        println!("  {}  {}: {}", step.at, step.actor, step.what);
    }
}

pub async fn incident(client: &Client, output: Output, command: IncidentCommand) -> CliResult {
    match command {
        IncidentCommand::Open {
            app,
            env,
            severity,
            title,
            category,
            description,
        } => {
            check_name(NameKind::App, &app)?;
            check_name(NameKind::Environment, &env)?;
            let request = OpenIncident {
                app,
                env,
                severity,
                title,
                category,
                description,
            };
            let opened: Incident = client.post("/api/v1/incidents", &request).await?;
            output.print(&opened, print_incident);
        }
        IncidentCommand::List { app, all } => {
            let mut path = app_query("/api/v1/incidents", &app)?;
            if all {
                path.push(if app.is_some() { '&' } else { '?' });
                path.push_str("all=true");
            }
            let incidents: Vec<Incident> = client.get(&path).await?;
            output.print(&incidents, |incidents| {
                let rows: Vec<Vec<String>> = incidents
                    .iter()
                    .map(|i| {
                        vec![
                            i.id.to_string(),
                            i.app.clone(),
                            i.env.clone(),
                            i.severity.to_string(),
                            i.status.to_string(),
                            i.path.to_string(),
                            i.assignee
                                .clone()
                                .unwrap_or_else(|| format!("{} leads", i.team)),
                            i.title.clone(),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "ID", "APP", "ENV", "SEVERITY", "STATUS", "PATH", "ASSIGNEE", "TITLE",
                    ],
                    &rows,
                );
            });
        }
        IncidentCommand::Show { id } => {
            let shown: Incident = client.get(&format!("/api/v1/incidents/{id}")).await?;
            output.print(&shown, print_incident);
        }
        IncidentCommand::Ack { id, note } => change(client, output, id, "ack", note).await?,
        IncidentCommand::Resolve { id, note } => {
            change(client, output, id, "resolve", note).await?
        }
    }
    Ok(())
}

/// Acknowledges or resolves an incident (`what`: `ack` or `resolve`).
async fn change(
    client: &Client,
    output: Output,
    id: i64,
    what: &str,
    note: Option<String>,
) -> CliResult {
    let changed: Incident = client
        .post(
            &format!("/api/v1/incidents/{id}/{what}"),
            &IncidentNote { note },
        )
        .await?;
    output.print(&changed, print_incident);
    Ok(())
}

pub async fn hotfix(client: &Client, output: Output, command: HotfixCommand) -> CliResult {
    let HotfixCommand::Start { incident, wait } = command;
    let mut plan: HotfixPlan = client
        .post(&format!("/api/v1/incidents/{incident}/hotfix"), &())
        .await?;
    if wait {
        plan.deployment = wait_until_done(client, plan.deployment).await?;
    }
    output.print(&plan, |plan| {
        println!(
            "hotfix of incident {} ({}): from {}, suggested version {}",
            plan.incident, plan.path, plan.base_version, plan.suggested_version
        );
        if let Some(recorded) = &plan.rebased_from {
            println!(
                "production runs {} now, not {recorded} as when the incident was opened: the hotfix starts from {}",
                plan.base_version, plan.base_version
            );
        }
        print_hotfix_source(&plan.source);
        print_deployment(&plan.deployment);
        println!("next:");
        for step in &plan.next {
            println!("  {step}");
        }
    });
    outcome(&plan.deployment)
}

pub async fn backlog(client: &Client, output: Output, command: BacklogCommand) -> CliResult {
    let BacklogCommand::List { app } = command;
    let items: Vec<BacklogItem> = client.get(&app_query("/api/v1/backlog", &app)?).await?;
    output.print(&items, |items| {
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|b| {
                vec![
                    b.id.to_string(),
                    b.app.clone(),
                    b.team.clone(),
                    b.status.to_string(),
                    b.incident.map(|i| i.to_string()).unwrap_or_default(),
                    b.closed_by.clone().unwrap_or_default(),
                    b.title.clone(),
                ]
            })
            .collect();
        print_table(
            &[
                "ID",
                "APP",
                "TEAM",
                "STATUS",
                "INCIDENT",
                "CLOSED BY",
                "TITLE",
            ],
            &rows,
        );
    });
    Ok(())
}

pub async fn backport(client: &Client, output: Output, command: BackportCommand) -> CliResult {
    match command {
        BackportCommand::List { app } => {
            let backports: Vec<Backport> =
                client.get(&app_query("/api/v1/backports", &app)?).await?;
            output.print(&backports, |backports| {
                let rows: Vec<Vec<String>> = backports
                    .iter()
                    .map(|b| {
                        vec![
                            b.id.to_string(),
                            b.app.clone(),
                            b.hotfix_version.clone(),
                            b.base_version.clone(),
                            b.incident.map(|i| i.to_string()).unwrap_or_default(),
                            b.mode.to_string(),
                            b.status.to_string(),
                            b.closed_by.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "ID",
                        "APP",
                        "HOTFIX",
                        "BASE",
                        "INCIDENT",
                        "MODE",
                        "STATUS",
                        "CLOSED BY",
                    ],
                    &rows,
                );
            });
        }
        BackportCommand::Waive { id, reason } => {
            let reason = reason.filter(|r| !r.trim().is_empty()).ok_or_else(|| {
                CliError::refused(
                    "waiving a backport obligation needs --reason TEXT saying why the fix will not reach dev",
                )
            })?;
            let waived: Backport = client
                .post(
                    &format!("/api/v1/backports/{id}/waive"),
                    &WaiveBackport { reason },
                )
                .await?;
            output.print(&waived, |b| {
                println!(
                    "backport obligation {} of {} {} waived",
                    b.id, b.app, b.hotfix_version
                )
            });
        }
    }
    Ok(())
}

pub async fn route(client: &Client, output: Output, command: RouteCommand) -> CliResult {
    match command {
        RouteCommand::List => {
            let rules: Vec<RoutingRule> = client.get("/api/v1/routes").await?;
            output.print(&rules, |rules| {
                let rows: Vec<Vec<String>> = rules
                    .iter()
                    .map(|r| vec![r.category.clone(), r.team.clone()])
                    .collect();
                print_table(&["CATEGORY", "TEAM"], &rows);
            });
        }
        RouteCommand::Set { category, team } => {
            check_name(NameKind::Team, &team)?;
            let rule: RoutingRule = client
                .put("/api/v1/routes", &RoutingRule { category, team })
                .await?;
            output.print(&rule, |r| {
                println!("incidents of category {} go to team {}", r.category, r.team)
            });
        }
        RouteCommand::Remove { category } => {
            client.delete(&format!("/api/v1/routes/{category}")).await?;
            let removed = serde_json::json!({ "category": category, "removed": true });
            output.print(&removed, |_| {
                println!("incidents of category {category} go to the application's team again")
            });
        }
    }
    Ok(())
}

/// Where a hotfix's base came from, and how to get its exact tree.
fn print_hotfix_source(source: &serde_json::Value) {
    if source.get("kind").is_some() {
        println!("source: {}", describe_source(source));
    }
    if let Some(export) = source["export"].as_str() {
        println!("export: {export}");
    }
}
