//! `ferry deploy`, `ferry rollback`, `ferry deployment` and `ferry status`.

use std::time::Duration;

use ferry_api::{CreateDeployment, CreateRollback, Deployment, Status};
use ferry_domain::name::NameKind;

use super::{check_name, check_version};
use crate::cli::{DeployArgs, DeploymentCommand, RollbackArgs, StrategyArg};
use crate::client::Client;
use crate::error::{CliError, CliResult, Failure};
use crate::output::{print_table, Output};

/// How often `--wait` asks how a deployment is doing.
const POLL_EVERY: Duration = Duration::from_millis(50);

pub async fn deploy(client: &Client, output: Output, args: DeployArgs) -> CliResult {
    check_name(NameKind::App, &args.app)?;
    check_version(&args.release)?;
    check_name(NameKind::Environment, &args.to)?;
    let request = CreateDeployment {
        version: args.release,
        env: args.to,
        strategy: Some(
            match args.strategy {
                StrategyArg::Rolling => "rolling",
                StrategyArg::Parallel => "parallel",
            }
            .to_owned(),
        ),
        reason: args.reason,
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
        check_version(to)?;
    }
    let request = CreateRollback {
        env: args.env,
        to: args.to,
    };
    let started: Deployment = client
        .post(&format!("/api/v1/apps/{}/rollbacks", args.app), &request)
        .await?;
    finish(client, output, started, args.wait).await
}

/// Prints a started deployment, or with `wait` follows it to the end; a deployment that
/// did not succeed exits 1.
async fn finish(
    client: &Client,
    output: Output,
    mut deployment: Deployment,
    wait: bool,
) -> CliResult {
    if wait {
        while deployment.status == "running" {
            tokio::time::sleep(POLL_EVERY).await;
            deployment = client
                .get(&format!("/api/v1/deployments/{}", deployment.id))
                .await?;
        }
    }
    output.print(&deployment, print_deployment);
    match deployment.status.as_str() {
        "running" | "succeeded" => Ok(()),
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

fn print_deployment(d: &Deployment) {
    println!(
        "deployment {}: {} {} {} to {} ({}), {}",
        d.id, d.kind, d.app, d.version, d.env, d.strategy, d.status
    );
    if let Some(reason) = &d.reason {
        println!("reason: {reason}");
    }
    let rows: Vec<Vec<String>> = d
        .targets
        .iter()
        .map(|t| {
            vec![
                t.target.clone(),
                t.previous.clone().unwrap_or_else(|| "-".into()),
                t.state.clone(),
                t.reason
                    .clone()
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            ]
        })
        .collect();
    print_table(&["TARGET", "PREVIOUS", "STATE", "REASON"], &rows);
}

pub async fn deployment(client: &Client, output: Output, command: DeploymentCommand) -> CliResult {
    match command {
        DeploymentCommand::Show { id } => {
            let deployment: Deployment = client.get(&format!("/api/v1/deployments/{id}")).await?;
            output.print(&deployment, print_deployment);
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
                            d.version.clone(),
                            d.env.clone(),
                            d.kind.clone(),
                            d.status.clone(),
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

pub async fn status(client: &Client, output: Output, app: Option<String>) -> CliResult {
    let path = match &app {
        Some(app) => {
            check_name(NameKind::App, app)?;
            format!("/api/v1/status?app={app}")
        }
        None => "/api/v1/status".to_owned(),
    };
    let status: Status = client.get(&path).await?;
    output.print(&status, |status| {
        let mut rows = Vec::new();
        for app in &status.apps {
            for env in &app.environments {
                let targets: Vec<String> = env
                    .targets
                    .iter()
                    .map(|t| {
                        format!(
                            "{}={}({})",
                            t.target,
                            t.version.as_deref().unwrap_or("-"),
                            t.state
                        )
                    })
                    .collect();
                rows.push(vec![
                    app.app.clone(),
                    env.env.clone(),
                    env.version.clone().unwrap_or_else(|| "-".into()),
                    targets.join(" "),
                ]);
            }
        }
        print_table(&["APP", "ENV", "VERSION", "TARGETS"], &rows);
    });
    Ok(())
}
