//! `ferry env`.

use ferry_api::{
    ChangePolicy, CreateEnvironment, Environment, FreezeEnvironment, RenameEnvironment,
    UnfreezeEnvironment,
};
use ferry_domain::freeze::{FreezeEnd, FreezeWindow};
use ferry_domain::name::NameKind;

use super::check_name;
use crate::cli::{AllowDeny, EnvCommand};
use crate::client::Client;
use crate::error::{CliError, CliResult};
use crate::output::{print_table, Output};

fn describe(env: &Environment) -> String {
    format!(
        "{}: {} approval(s), self-approval {}, {}",
        env.name,
        env.approvals,
        if env.self_approval {
            "allowed"
        } else {
            "denied"
        },
        if env.protected {
            "protected"
        } else {
            "not protected"
        }
    ) + if env.optional { ", optional" } else { "" }
        + &if env.freeze.is_empty() {
            String::new()
        } else {
            format!("; frozen {} (UTC)", env.freeze.join("; "))
        }
        + &frozen_now(env).map_or(String::new(), |now| format!("; {now}"))
}

/// `frozen until 22:00 UTC (release night, by anna)` while the environment is frozen; a
/// one-off freeze that the summary does not name (windows hold it longer) is named too.
fn frozen_now(env: &Environment) -> Option<String> {
    let frozen = env.frozen.as_ref()?;
    let mut said = format!("frozen {}", frozen.summary);
    if let (Some(freeze), None) = (&env.one_off_freeze, &frozen.reason) {
        said.push_str(&format!(
            "; also frozen until {} ({}, by {})",
            freeze.until, freeze.reason, freeze.by
        ));
    }
    Some(said)
}

pub async fn run(client: &Client, output: Output, command: EnvCommand) -> CliResult {
    match command {
        EnvCommand::List => {
            let pipeline: Vec<Environment> = client.get("/api/v1/environments").await?;
            output.print(&pipeline, |pipeline| {
                let names: Vec<&str> = pipeline.iter().map(|e| e.name.as_str()).collect();
                println!("pipeline: {}\n", names.join(" → "));
                let rows: Vec<Vec<String>> = pipeline
                    .iter()
                    .map(|e| {
                        vec![
                            e.name.clone(),
                            e.approvals.to_string(),
                            if e.self_approval { "allow" } else { "deny" }.to_owned(),
                            if e.protected { "yes" } else { "no" }.to_owned(),
                            if e.optional { "yes" } else { "no" }.to_owned(),
                            if e.freeze.is_empty() {
                                "-".to_owned()
                            } else {
                                e.freeze.join("; ")
                            },
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "ENV",
                        "APPROVALS",
                        "SELF-APPROVAL",
                        "PROTECTED",
                        "OPTIONAL",
                        "FREEZE WINDOWS (UTC)",
                    ],
                    &rows,
                );
                let frozen: Vec<String> = pipeline
                    .iter()
                    .filter_map(|e| frozen_now(e).map(|now| format!("{}: {now}", e.name)))
                    .collect();
                if !frozen.is_empty() {
                    println!("\n{}", frozen.join("\n"));
                }
            });
        }
        EnvCommand::Create { env, after } => {
            check_name(NameKind::Environment, &env)?;
            if let Some(after) = &after {
                check_name(NameKind::Environment, after)?;
            }
            let request = CreateEnvironment { name: env, after };
            let created: Environment = client.post("/api/v1/environments", &request).await?;
            // On stderr whatever the output format: `--json` carries it as a field too.
            if let Some(warning) = &created.warning {
                eprintln!("warning: {warning}");
            }
            output.print(&created, |env| {
                println!("created environment {}", describe(env))
            });
        }
        EnvCommand::Delete { env } => {
            check_name(NameKind::Environment, &env)?;
            client
                .delete(&format!("/api/v1/environments/{env}"))
                .await?;
            let pipeline: Vec<Environment> = client.get("/api/v1/environments").await?;
            output.print(&pipeline, |pipeline| {
                let names: Vec<&str> = pipeline.iter().map(|e| e.name.as_str()).collect();
                println!("deleted environment {env}; pipeline: {}", names.join(" → "))
            });
        }
        EnvCommand::Rename { env, new_name } => {
            check_name(NameKind::Environment, &env)?;
            check_name(NameKind::Environment, &new_name)?;
            let renamed: Environment = client
                .post(
                    &format!("/api/v1/environments/{env}/rename"),
                    &RenameEnvironment { to: new_name },
                )
                .await?;
            output.print(&renamed, |renamed| {
                println!("renamed environment {env} to {}", describe(renamed))
            });
        }
        EnvCommand::Set {
            env,
            approvals,
            self_approval,
            protected,
            optional,
            freeze,
            unfreeze,
        } => {
            check_name(NameKind::Environment, &env)?;
            for window in &freeze {
                FreezeWindow::parse(window)
                    .map_err(|e| CliError::refused(format!("--freeze {window:?}: {e}")))?;
            }
            let change = ChangePolicy {
                approvals,
                self_approval: self_approval.map(|v| matches!(v, AllowDeny::Allow)),
                protected,
                optional,
                freeze,
                unfreeze,
            };
            if change.approvals.is_none()
                && change.self_approval.is_none()
                && change.protected.is_none()
                && change.optional.is_none()
                && change.freeze.is_empty()
                && change.unfreeze.is_empty()
            {
                return Err(CliError::usage(
                    "nothing to change: give --approvals N, --self-approval allow|deny, --protected true|false, --optional true|false, --freeze or --unfreeze",
                ));
            }
            let updated: Environment = client
                .patch(&format!("/api/v1/environments/{env}"), &change)
                .await?;
            output.print(&updated, |env| println!("{}", describe(env)));
        }
        EnvCommand::Freeze {
            env,
            lasting,
            until,
            reason,
        } => {
            check_name(NameKind::Environment, &env)?;
            // Checked here too, so a typo is refused before anything is sent.
            match (&lasting, &until) {
                (Some(lasting), _) => FreezeEnd::parse_for(lasting).map(drop),
                (_, Some(until)) => FreezeEnd::parse_until(until).map(drop),
                (None, None) => Ok(()),
            }
            .map_err(CliError::refused)?;
            let request = FreezeEnvironment {
                lasting,
                until,
                reason,
            };
            let frozen: Environment = client
                .post(&format!("/api/v1/environments/{env}/freeze"), &request)
                .await?;
            output.print(&frozen, |env| {
                println!(
                    "{}: {}",
                    env.name,
                    frozen_now(env).unwrap_or_else(|| "not frozen".to_owned())
                )
            });
        }
        EnvCommand::Unfreeze { env, reason } => {
            check_name(NameKind::Environment, &env)?;
            let thawed: Environment = client
                .post(
                    &format!("/api/v1/environments/{env}/unfreeze"),
                    &UnfreezeEnvironment { reason },
                )
                .await?;
            // On stderr whatever the output format: `--json` carries it as a field too.
            if let Some(warning) = &thawed.warning {
                eprintln!("warning: {warning}");
            }
            output.print(&thawed, |env| {
                println!(
                    "ended the freeze of {}; {}",
                    env.name,
                    frozen_now(env).unwrap_or_else(|| "it is not frozen now".to_owned())
                )
            });
        }
    }
    Ok(())
}
