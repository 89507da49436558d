//! `ferry target` and `ferry agent`.

use std::path::{Path, PathBuf};

use ferry_agent::process::AgentOptions;
use ferry_api::{EnrollTarget, EnrollmentToken, Target};
use ferry_domain::name::NameKind;

use super::check_name;
use crate::cli::{AgentArgs, GlobalArgs, TargetCommand};
use crate::client::Client;
use crate::error::{CliError, CliResult};
use crate::output::{human_bytes, print_table, Output};

pub async fn run(client: &Client, output: Output, command: TargetCommand) -> CliResult {
    match command {
        TargetCommand::Enroll { env, name } => {
            check_name(NameKind::Environment, &env)?;
            check_name(NameKind::Target, &name)?;
            let token: EnrollmentToken = client
                .post("/api/v1/targets/enroll", &EnrollTarget { env, name })
                .await?;
            output.print(&token, |t| {
                eprintln!(
                    "enrollment token for target {} in {} (one use, until {}); on that server run:\n  ferry agent enroll --root DIR --server {} TOKEN\nthen start the agent (`ferry agent --root DIR`, or its service), with the address that server reaches this one at, if it differs",
                    t.target,
                    t.env,
                    t.expires_at,
                    client.base()
                );
                println!("{}", t.token);
            });
        }
        TargetCommand::Remove { name } => {
            check_name(NameKind::Target, &name)?;
            let removed: Target = client
                .delete_for(&format!("/api/v1/targets/{name}"))
                .await?;
            output.print(&removed, |t| {
                println!(
                    "removed target {} of {}: its agent's credential no longer works; `ferry target enroll {} {}` enrolls a new server under that name",
                    t.name, t.env, t.env, t.name
                )
            });
        }
        TargetCommand::List { env } => {
            let targets: Vec<Target> = client.get("/api/v1/targets").await?;
            let targets: Vec<Target> = targets
                .into_iter()
                .filter(|t| env.as_ref().is_none_or(|e| *e == t.env))
                .collect();
            output.print(&targets, |targets| {
                let rows: Vec<Vec<String>> = targets
                    .iter()
                    .map(|t| {
                        let agent = t.agent.as_ref();
                        vec![
                            t.name.clone(),
                            t.env.clone(),
                            t.last_seen.clone().unwrap_or_else(|| "never".into()),
                            t.health.clone(),
                            agent.map_or("-".into(), |a| a.version.clone()),
                            agent.map_or("-".into(), disk_free),
                        ]
                    })
                    .collect();
                let header = ["TARGET", "ENV", "LAST SEEN", "HEALTH", "AGENT", "DISK FREE"];
                print_table(&header, &rows);
            });
        }
    }
    Ok(())
}

/// Runs the agent until SIGINT or SIGTERM.
pub async fn agent(global: &GlobalArgs, args: AgentArgs) -> CliResult {
    let enrollment = match args.enroll {
        Some(token) => Some((
            global
                .server
                .clone()
                .ok_or_else(|| CliError::usage("enrolling needs --server URL (or FERRY_SERVER)"))?,
            token,
        )),
        None => None,
    };
    let options = AgentOptions {
        drift_every: args.drift_every,
        hooks_as_root: args.hooks_as_root,
    };
    let root = args.root.ok_or_else(|| {
        CliError::usage("the agent needs --root DIR (or `root` in --config FILE)")
    })?;
    let server = global.server.as_deref().filter(|_| enrollment.is_none());
    ferry_agent::process::run(&root, enrollment, server, options)
        .await
        .map_err(|e| CliError::failed(format!("{e:#}")))
}

/// `ferry agent enroll TOKEN`: the root and the server from the flags, else the config file.
pub async fn enroll(
    global: &GlobalArgs,
    output: Output,
    token: &str,
    root: Option<PathBuf>,
    config: Option<&Path>,
) -> CliResult {
    let file = config
        .map(|path| crate::cli::read_config_file("agent", path))
        .transpose()
        .map_err(|e| CliError::usage(e.to_string()))?;
    let from_file = |key| file.as_ref().and_then(|f| f.value(key)).map(str::to_owned);
    let root = root
        .or_else(|| from_file("root").map(PathBuf::from))
        .ok_or_else(|| {
            CliError::usage("enrolling needs --root DIR (or `root` in --config FILE)")
        })?;
    let server = global
        .server
        .clone()
        .or_else(|| from_file("server"))
        .ok_or_else(|| {
            CliError::usage(
                "enrolling needs --server URL (or FERRY_SERVER, or `server` in --config FILE)",
            )
        })?;
    let target = ferry_agent::process::enroll_only(&root, &server, token)
        .await
        .map_err(|e| CliError::failed(format!("{e:#}")))?;
    let report = serde_json::json!({ "target": target, "root": root, "server": server });
    output.print(&report, |_| {
        println!(
            "{} is enrolled as target {target} with {server}; start the agent now (`systemctl start ferry-agent`, or `ferry agent --root {}`)",
            root.display(),
            root.display()
        );
    });
    Ok(())
}

/// `12.5 GiB (40 %)`: what is free on a target's root, and how much of its disk that is.
pub fn disk_free(agent: &ferry_api::TargetAgent) -> String {
    match (agent.disk_free, agent.disk_total) {
        (Some(free), Some(total)) if total > 0 => {
            format!("{} ({} %)", human_bytes(free), free * 100 / total)
        }
        _ => "-".into(),
    }
}
