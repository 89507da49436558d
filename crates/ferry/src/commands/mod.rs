//! One module per command group; `run` dispatches.

mod app;
mod audit;
mod backup;
mod channel;
mod check;
mod config;
mod demo;
mod deploy;
mod deployment_logs;
mod doctor;
mod download;
mod drift;
mod env;
mod login;
mod manual;
mod release;
mod role;
mod secret_input;
mod server;
mod support;
mod target;
mod tasks;
mod team;
mod user;

use ferry_domain::name::{validate_name, NameKind};

use crate::cli::{AgentCommand, Cli, Command, DriftCommand, ServerCommand};
use crate::client::Client;
use crate::error::{CliError, CliResult};
use crate::output::Output;

/// Runs one command.
pub async fn run(cli: Cli, output: Output) -> CliResult {
    let global = &cli.global;
    match cli.command {
        Command::Server(args) => match args.command {
            None => server::run(args.run, output).await,
            Some(ServerCommand::CheckConfig { file }) => check_config(output, "server", &file),
            Some(ServerCommand::Migrate {
                from,
                to,
                audit_key,
                blobs,
            }) => server::migrate(output, &from, &to, audit_key.as_deref(), blobs.as_ref()).await,
            Some(ServerCommand::Fsck) => server::fsck(&Client::from_args(global)?, output).await,
            Some(ServerCommand::Backup {
                data,
                out,
                audit_key,
                blobs,
            }) => server::backup(output, &data, &out, audit_key.as_deref(), blobs.as_ref()).await,
            Some(ServerCommand::Restore {
                file,
                data,
                audit_key,
                secret_key,
            }) => {
                let keys = (audit_key.as_deref(), secret_key.as_deref());
                server::restore(output, &file, &data, keys).await
            }
            Some(ServerCommand::RotateSecretKey {
                data,
                database,
                audit_key,
                secret_key,
            }) => {
                let keys = (audit_key.as_deref(), secret_key.as_deref());
                server::rotate_secret_key(output, &data, database.as_deref(), keys).await
            }
        },
        Command::Demo(args) => demo::run(args.data, args.listen).await,
        Command::Check { dir } => check::run(output, dir),
        Command::Completions { shell } => manual::completions(shell),
        Command::Man { out } => manual::man_pages(&out),
        Command::Login => login::login(global, output).await,
        Command::Doctor => doctor::run(global, output).await,
        Command::Whoami => login::whoami(&Client::from_args(global)?, output).await,
        Command::Team(command) => team::run(&Client::from_args(global)?, output, command).await,
        Command::User(command) => user::run(&Client::from_args(global)?, output, command).await,
        Command::Role(command) => role::run(&Client::from_args(global)?, output, command).await,
        Command::Env(command) => env::run(&Client::from_args(global)?, output, command).await,
        Command::App(command) => app::run(&Client::from_args(global)?, output, command).await,
        Command::Release(command) => {
            release::run(&Client::from_args(global)?, output, command).await
        }
        Command::Target(command) => target::run(&Client::from_args(global)?, output, command).await,
        Command::Agent(args) => match args.command {
            None => target::agent(global, args.run).await,
            Some(AgentCommand::CheckConfig { file }) => check_config(output, "agent", &file),
            Some(AgentCommand::Enroll {
                token,
                root,
                config,
            }) => target::enroll(global, output, &token, root, config.as_deref()).await,
        },
        Command::Deploy(args) => deploy::deploy(&Client::from_args(global)?, output, args).await,
        Command::Rollback(args) => {
            deploy::rollback(&Client::from_args(global)?, output, args).await
        }
        Command::Promote(args) => deploy::promote(&Client::from_args(global)?, output, args).await,
        Command::Approve { id, reason } => {
            deploy::review(&Client::from_args(global)?, output, id, "approve", reason).await
        }
        Command::Reject { id, reason } => {
            deploy::review(&Client::from_args(global)?, output, id, "reject", reason).await
        }
        Command::Deployment(command) => {
            deploy::deployment(&Client::from_args(global)?, output, command).await
        }
        Command::Status { app, watch } => {
            deploy::status(&Client::from_args(global)?, output, app, watch).await
        }
        Command::Drift {
            command:
                Some(DriftCommand::Capture {
                    target,
                    app,
                    version,
                    incident,
                }),
            ..
        } => {
            let request = ferry_api::CaptureDrift {
                target,
                app,
                version,
                incident,
            };
            drift::capture(&Client::from_args(global)?, output, request).await
        }
        Command::Drift {
            command: Some(DriftCommand::Revert { target, app }),
            ..
        } => {
            let request = ferry_api::RevertDrift { target, app };
            drift::revert(&Client::from_args(global)?, output, request).await
        }
        Command::Drift {
            command: None,
            app,
            env,
            target,
            refresh,
        } => {
            let scope = drift::Scope { app, env, target };
            drift::run(&Client::from_args(global)?, output, scope, refresh).await
        }
        Command::Backup(command) => backup::run(&Client::from_args(global)?, output, command).await,
        Command::Config(command) => config::run(&Client::from_args(global)?, output, command).await,
        Command::Audit(args) => audit::run(&Client::from_args(global)?, output, args).await,
        Command::Channel(command) => {
            channel::run(&Client::from_args(global)?, output, command).await
        }
        Command::Incident(command) => {
            support::incident(&Client::from_args(global)?, output, command).await
        }
        Command::Hotfix(command) => {
            support::hotfix(&Client::from_args(global)?, output, command).await
        }
        Command::Backlog(command) => {
            support::backlog(&Client::from_args(global)?, output, command).await
        }
        Command::Backport(command) => {
            support::backport(&Client::from_args(global)?, output, command).await
        }
        Command::Route(command) => {
            support::route(&Client::from_args(global)?, output, command).await
        }
    }
}

/// Refuses (exit 3) a version outside its pattern before anything is sent.
pub fn check_version(value: &str) -> CliResult {
    ferry_domain::name::validate_version(value).map_err(|e| CliError::refused(e.to_string()))
}

/// Refuses (exit 3) a name outside its pattern before anything is sent.
pub fn check_name(kind: NameKind, value: &str) -> CliResult {
    validate_name(kind, value).map_err(|e| CliError::refused(e.to_string()))
}

/// `ferry server check-config FILE`, `ferry agent check-config FILE`: the file read as the
/// command reads it, and for the server the checks it makes before it starts.
fn check_config(output: Output, command: &str, file: &std::path::Path) -> CliResult {
    let invalid = |e: crate::cli::ConfigError| CliError::failed(e.to_string());
    let (cli, read) = crate::cli::parse_with_config_file(command, file).map_err(invalid)?;
    let settings = read.len();
    let refused = match cli.command {
        Command::Server(server) => server::check_settings(&server.run).err(),
        Command::Agent(_) => cli
            .global
            .server
            .as_deref()
            .and_then(|url| crate::client::check_server_url(url).err()),
        _ => None,
    };
    if let Some(refused) = refused {
        return Err(invalid(read.problem(&refused.message)));
    }
    let report = serde_json::json!({ "file": file, "settings": settings, "valid": true });
    output.print(&report, |_| {
        let plural = if settings == 1 { "" } else { "s" };
        println!(
            "{}: valid, {settings} setting{plural} for ferry {command}",
            file.display()
        );
    });
    Ok(())
}
