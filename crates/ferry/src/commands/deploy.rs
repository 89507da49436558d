//! `ferry deploy`, `ferry rollback`, `ferry deployment` and `ferry status`.

use ferry_api::{
    CancelDeployment, CreateDeployment, CreatePromotion, CreateRollback, Deployment,
    DeploymentStatus, Review, Status, Target,
};
use std::io::IsTerminal;

use ferry_domain::name::NameKind;
use ferry_domain::served::Served;

use super::{check_name, check_version};
use crate::cli::{DeployArgs, DeploymentCommand, PromoteArgs, RollbackArgs, StrategyArg};
use crate::client::Client;
use crate::error::{CliError, CliResult, Failure};
use crate::output::{print_table, Output};

/// How long one `--wait` request may wait on the server for the deployment to finish.
const WAIT_SECONDS: u64 = 25;

pub async fn deploy(client: &Client, output: Output, args: DeployArgs) -> CliResult {
    check_name(NameKind::App, &args.app)?;
    check_version(&args.release)?;
    check_name(NameKind::Environment, &args.to)?;
    let request = CreateDeployment {
        version: args.release,
        env: args.to,
        strategy: Some(strategy_name(args.strategy).to_owned()),
        reason: args.reason,
        stage_only: args.stage_only,
        allow_downgrade: args.allow_downgrade,
        break_glass: args.break_glass,
        override_guard: args.override_guard,
        skip_offline: args.skip_offline,
        skip_backup: args.skip_backup,
    };
    let started: Deployment = client
        .post(&format!("/api/v1/apps/{}/deployments", args.app), &request)
        .await?;
    finish(client, output, started, args.wait).await
}

pub async fn rollback(client: &Client, output: Output, args: RollbackArgs) -> CliResult {
    check_name(NameKind::App, &args.app)?;
    check_name(NameKind::Environment, &args.env)?;
    if let Some(to) = &args.to {
        check_version(&ferry_domain::served::Served::parse(to).version)?;
    }
    let request = CreateRollback {
        env: args.env,
        to: args.to,
        reason: args.reason,
        break_glass: args.break_glass,
        override_guard: args.override_guard,
        skip_offline: args.skip_offline,
    };
    let started: Deployment = client
        .post(&format!("/api/v1/apps/{}/rollbacks", args.app), &request)
        .await?;
    finish(client, output, started, args.wait).await
}

pub async fn promote(client: &Client, output: Output, args: PromoteArgs) -> CliResult {
    check_name(NameKind::App, &args.app)?;
    check_name(NameKind::Environment, &args.from)?;
    check_name(NameKind::Environment, &args.to)?;
    let request = CreatePromotion {
        from: args.from,
        to: args.to,
        strategy: Some(strategy_name(args.strategy).to_owned()),
        reason: args.reason,
        allow_downgrade: args.allow_downgrade,
        break_glass: args.break_glass,
        override_guard: args.override_guard,
        skip_offline: args.skip_offline,
        skip_backup: args.skip_backup,
    };
    let started: Deployment = client
        .post(&format!("/api/v1/apps/{}/promotions", args.app), &request)
        .await?;
    finish(client, output, started, args.wait).await
}

/// `ferry approve` and `ferry reject`.
pub async fn review(
    client: &Client,
    output: Output,
    id: i64,
    verdict: &str,
    reason: Option<String>,
) -> CliResult {
    if verdict == "reject" && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(CliError::refused(
            "rejecting needs --reason TEXT saying why, for the requester and the audit trail",
        ));
    }
    let request = Review {
        reason,
        version: None,
    };
    let deployment: Deployment = client
        .post(&format!("/api/v1/deployments/{id}/{verdict}"), &request)
        .await?;
    output.print(&deployment, print_deployment);
    Ok(())
}

pub(super) fn strategy_name(strategy: StrategyArg) -> &'static str {
    match strategy {
        StrategyArg::Rolling => "rolling",
        StrategyArg::Parallel => "parallel",
    }
}

/// Prints a started deployment, or with `wait` follows it to the end; a deployment that
/// did not succeed exits 1. Following it, its id comes first (so it can be cancelled from
/// elsewhere), and on a terminal each target's step as it changes; otherwise (a script, a
/// log, `--json`) nothing else comes before the end.
pub(super) async fn finish(
    client: &Client,
    output: Output,
    mut deployment: Deployment,
    wait: bool,
) -> CliResult {
    // One that has ended already (approved and done at once, or shown after its end) is
    // only printed.
    if wait && deployment.status.is_active() {
        announce(output, &deployment);
        deployment = if !output.json && std::io::stdout().is_terminal() {
            follow_steps(client, deployment).await?
        } else {
            wait_until_done(client, deployment).await?
        };
    }
    output.print(&deployment, print_deployment);
    outcome(&deployment)
}

/// The first line while following a deployment: which one it is and how to stop it. With
/// `--json` it goes to stderr, so stdout stays one JSON document.
fn announce(output: Output, d: &Deployment) {
    let line = format!(
        "deployment {}: {} {} {} to {}, {}; following it until it ends (`ferry deployment cancel {}` stops it)",
        d.id,
        d.kind,
        d.app,
        Served::new(d.version.clone(), d.config),
        d.env,
        d.status,
        d.id
    );
    match output.json {
        true => eprintln!("{line}"),
        false => println!("{line}"),
    }
}

/// Follows a deployment until it finishes, printing each target's state and step (or
/// reason) when it changes, and the deployment's status when it changes.
async fn follow_steps(client: &Client, mut deployment: Deployment) -> CliResult<Deployment> {
    let mut shown: Vec<(String, String)> = Vec::new();
    let mut status = deployment.status;
    loop {
        if deployment.status != status {
            status = deployment.status;
            println!("deployment {}: {status}", deployment.id);
        }
        for target in &deployment.targets {
            let detail = target
                .step
                .clone()
                .or_else(|| target.reason.clone())
                .unwrap_or_default();
            let detail = detail.lines().next().unwrap_or_default();
            let line = match detail.is_empty() {
                true => format!("  {}: {}", target.target, target.state),
                false => format!("  {}: {}: {detail}", target.target, target.state),
            };
            match shown.iter_mut().find(|(name, _)| *name == target.target) {
                Some((_, last)) if *last == line => {}
                Some((_, last)) => {
                    println!("{line}");
                    *last = line;
                }
                None => {
                    println!("{line}");
                    shown.push((target.target.clone(), line));
                }
            }
        }
        if !deployment.status.is_active() {
            return Ok(deployment);
        }
        deployment = client
            .get(&format!("/api/v1/deployments/{}?wait=1", deployment.id))
            .await?;
    }
}

/// Follows a deployment until it finishes (approvals included).
pub(super) async fn wait_until_done(
    client: &Client,
    mut deployment: Deployment,
) -> CliResult<Deployment> {
    while deployment.status.is_active() {
        deployment = client
            .get(&format!(
                "/api/v1/deployments/{}?wait={WAIT_SECONDS}",
                deployment.id
            ))
            .await?;
    }
    Ok(deployment)
}

/// Exit 0 for a deployment that waits, runs or succeeded; 1 otherwise, with its reason.
pub(super) fn outcome(deployment: &Deployment) -> CliResult {
    match deployment.status {
        DeploymentStatus::AwaitingApproval
        | DeploymentStatus::Running
        | DeploymentStatus::Succeeded => Ok(()),
        status => Err(CliError::after_report(
            Failure::Failed,
            format!(
                "deployment {} {status}: {}",
                deployment.id,
                deployment.reason.as_deref().unwrap_or("no reason recorded")
            ),
        )),
    }
}

/// `ferry deployment show ID --watch`: drawn again until it finishes; exit 1 unless it
/// succeeded.
async fn watch_deployment(
    client: &Client,
    output: Output,
    id: i64,
    every: std::time::Duration,
) -> CliResult {
    let last = std::cell::Cell::new(None);
    let what = format!("ferry deployment show {id}");
    crate::watch::watch(output, every, &what, || async {
        let deployment: Deployment = client.get(&format!("/api/v1/deployments/{id}")).await?;
        print_deployment(&deployment);
        last.set(Some(deployment.status));
        Ok(!deployment.status.is_active())
    })
    .await?;
    match last.get() {
        Some(DeploymentStatus::Succeeded) | None => Ok(()),
        Some(status) => Err(CliError::failed(format!("deployment {id} {status}"))),
    }
}

pub(super) fn print_deployment(d: &Deployment) {
    println!(
        "deployment {}: {} {} {} to {} ({}), {}",
        d.id,
        d.kind,
        d.app,
        Served::new(d.version.clone(), d.config),
        d.env,
        d.strategy,
        d.status
    );
    if let Some(reason) = &d.reason {
        println!("reason: {reason}");
    }
    if let (Some(cancelled), true) = (&d.cancelled, d.status.is_active()) {
        println!(
            "cancelled {cancelled}: targets still in a step finish it (a hook or health check runs to its end), then every switched target goes back"
        );
    }
    for path in &d.review {
        println!("review (changed differently from a shipped hotfix): {path}");
    }
    if let Some(awaits) = &d.awaits {
        let given = d.approvals.as_ref().map_or(0, Vec::len);
        println!(
            "waiting for approval: {given} of {} given; by someone with approve on {}{} (`ferry approve {}`)",
            awaits.required,
            d.env,
            if awaits.self_approval {
                String::new()
            } else {
                format!(" other than {}", d.requested_by)
            },
            d.id
        );
    }
    let rows: Vec<Vec<String>> = d
        .targets
        .iter()
        .map(|t| {
            vec![
                t.target.clone(),
                t.previous.clone().unwrap_or_else(|| "-".into()),
                t.state.clone(),
                // While a target deploys, the step it reached; once done, why it ended so.
                t.reason
                    .clone()
                    .or_else(|| t.step.clone())
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            ]
        })
        .collect();
    print_table(&["TARGET", "PREVIOUS", "STATE", "REASON OR STEP"], &rows);
    if matches!(
        d.status,
        DeploymentStatus::Failed | DeploymentStatus::RolledBack
    ) {
        println!("see the logs: ferry deployment logs {}", d.id);
    }
}

pub async fn deployment(client: &Client, output: Output, command: DeploymentCommand) -> CliResult {
    match command {
        DeploymentCommand::Show { id, wait, watch } => {
            if let Some(every) = watch {
                return watch_deployment(client, output, id, every).await;
            }
            let deployment: Deployment = client.get(&format!("/api/v1/deployments/{id}")).await?;
            if wait {
                return finish(client, output, deployment, true).await;
            }
            output.print(&deployment, print_deployment);
        }
        DeploymentCommand::Logs { id, target } => {
            return super::deployment_logs::logs(client, output, id, target).await;
        }
        DeploymentCommand::Cancel { id, reason, wait } => {
            let mut deployment: Deployment = client
                .post(
                    &format!("/api/v1/deployments/{id}/cancel"),
                    &CancelDeployment { reason },
                )
                .await?;
            if wait {
                deployment = wait_until_done(client, deployment).await?;
            }
            output.print(&deployment, |d| {
                print_deployment(d);
                if d.status.is_active() {
                    println!(
                        "it ends cancelled once they are back (`ferry deployment show {} --wait` follows it)",
                        d.id
                    );
                }
            });
        }
        DeploymentCommand::List { app } => {
            let path = match &app {
                Some(app) => {
                    check_name(NameKind::App, app)?;
                    format!("/api/v1/deployments?app={app}")
                }
                None => "/api/v1/deployments".to_owned(),
            };
            let deployments: Vec<Deployment> = client.get(&path).await?;
            output.print(&deployments, |deployments| {
                let rows: Vec<Vec<String>> = deployments
                    .iter()
                    .map(|d| {
                        vec![
                            d.id.to_string(),
                            d.app.clone(),
                            Served::new(d.version.clone(), d.config).label(),
                            d.env.clone(),
                            d.kind.to_string(),
                            d.status.to_string(),
                            d.created_at.clone(),
                            d.requested_by.clone(),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "ID", "APP", "VERSION", "ENV", "KIND", "STATUS", "CREATED", "BY",
                    ],
                    &rows,
                );
            });
        }
    }
    Ok(())
}

pub async fn status(
    client: &Client,
    output: Output,
    app: Option<String>,
    watch: Option<std::time::Duration>,
) -> CliResult {
    let Some(every) = watch else {
        return show_status(client, output, &app).await;
    };
    let what = match &app {
        Some(app) => format!("ferry status {app}"),
        None => "ferry status".to_owned(),
    };
    crate::watch::watch(output, every, &what, || async {
        show_status(client, output, &app).await.map(|()| false)
    })
    .await
}

/// Prints the status of every application, or of `app`.
async fn show_status(client: &Client, output: Output, app: &Option<String>) -> CliResult {
    let path = match app {
        Some(app) => {
            check_name(NameKind::App, app)?;
            format!("/api/v1/status?app={app}")
        }
        None => "/api/v1/status".to_owned(),
    };
    let status: Status = client.get(&path).await?;
    // For people, targets whose agent went quiet are marked (the status document says what
    // targets reported; whether their agent is still there is the targets' list's).
    let offline: Vec<Target> = match output.json {
        true => Vec::new(),
        false => client
            .get::<Vec<Target>>("/api/v1/targets")
            .await
            .map(|targets| {
                targets
                    .into_iter()
                    .filter(|t| t.health == "offline")
                    .collect()
            })
            .unwrap_or_default(),
    };
    let is_offline = |name: &str| offline.iter().any(|t| t.name == name);
    output.print(&status, |status| {
        let mut rows = Vec::new();
        for app in &status.apps {
            for env in &app.environments {
                let targets: Vec<String> = env
                    .targets
                    .iter()
                    .map(|t| {
                        format!(
                            "{}={}({}{}{})",
                            t.target,
                            t.version.as_ref().map_or_else(
                                || "-".to_owned(),
                                |v| Served::new(v.clone(), t.config).label()
                            ),
                            t.state,
                            if is_offline(&t.target) { ", offline" } else { "" },
                            match &t.drift {
                                Some(drift) => format!(
                                    ", drift: {} path{}",
                                    drift.paths,
                                    if drift.paths == 1 { "" } else { "s" }
                                ),
                                None => String::new(),
                            }
                        )
                    })
                    .collect();
                rows.push(vec![
                    app.app.clone(),
                    env.env.clone(),
                    match (&env.version, &env.back_from) {
                        (Some(version), Some(from)) => {
                            let version = Served::new(version.clone(), env.config);
                            format!("{version} (rolled back from {})", Served::parse(from))
                        }
                        (Some(version), None) => Served::new(version.clone(), env.config).to_string(),
                        (None, _) => "-".into(),
                    },
                    targets.join(" "),
                ]);
            }
        }
        print_table(&["APP", "ENV", "VERSION", "TARGETS"], &rows);
        let open: Vec<String> = status
            .apps
            .iter()
            .flat_map(|a| &a.backports)
            .map(|b| {
                format!(
                    "backport {} open: {} hotfix {} (from {}) must reach dev by {}",
                    b.id, b.app, b.hotfix_version, b.base_version, b.mode
                )
            })
            .collect();
        for line in open {
            println!("{line}");
        }
        for app in &status.apps {
            for env in app
                .environments
                .iter()
                .filter(|e| !e.rolled_back_from.is_empty())
            {
                let labels = (env.rolled_back_from.iter())
                    .map(|label| Served::parse(label).to_string())
                    .collect::<Vec<_>>();
                println!(
                    "{} in {}: rolled back from {}, which promotions no longer bring there (deploy by name to bring one back)",
                    app.app,
                    env.env,
                    labels.join(", ")
                );
            }
        }
        let shown = |target: &Target| {
            status
                .apps
                .iter()
                .flat_map(|a| &a.environments)
                .flat_map(|e| &e.targets)
                .any(|t| t.target == target.name)
        };
        for target in offline.iter().filter(|t| shown(t)) {
            println!(
                "{} is offline (last seen {}): start its agent again; `ferry target list` shows every target",
                target.name,
                target.last_seen.as_deref().unwrap_or("never")
            );
        }
    });
    Ok(())
}
