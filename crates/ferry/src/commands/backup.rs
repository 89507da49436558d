//! `ferry backup`: backups of applications' data on their targets, taken on demand,
//! listed, shown, restored and exported. Not `ferry server backup`, which copies ferry's own database.

use std::time::Duration;

use ferry_api::{AppBackup, CreateBackup, RestoreBackup, Task, TaskState};
use ferry_cas::manifest::Manifest;
use ferry_domain::name::NameKind;

use super::check_name;
use super::download::{download_tree, TreeKind};
use super::tasks::{detail_of, wait_for};
use crate::cli::BackupCommand;
use crate::client::Client;
use crate::error::{CliError, CliResult, Failure};
use crate::output::{human_bytes, print_table, Output};

/// How long a command waits for an agent to back up or restore: a first backup of much data
/// over a slow link takes a while; the task goes on after, and the message says how to follow.
const PATIENCE: Duration = Duration::from_secs(30 * 60);

pub async fn run(client: &Client, output: Output, command: BackupCommand) -> CliResult {
    match command {
        BackupCommand::Create { app, env, target } => {
            check_name(NameKind::App, &app)?;
            check_name(NameKind::Environment, &env)?;
            if let Some(target) = &target {
                check_name(NameKind::Target, target)?;
            }
            let request = CreateBackup { app, env, target };
            let asked: Vec<Task> = client.post("/api/v1/backups", &request).await?;
            let mut done = Vec::new();
            let mut failed = Vec::new();
            for task in asked {
                let task = wait_for(client, task, PATIENCE).await?;
                match (task.state, detail_of::<AppBackup>(&task)) {
                    (TaskState::Succeeded, Some(backup)) => done.push(backup),
                    _ => failed.push(failure(&task)),
                }
            }
            output.print(&done, |done| {
                for backup in done {
                    println!(
                        "backup {} of {} on {} ({}): {} file(s), {}, {} new",
                        backup.id,
                        backup.app,
                        backup.target,
                        backup.env,
                        backup.files,
                        human_bytes(backup.bytes),
                        human_bytes(backup.new_bytes)
                    );
                }
            });
            finish_after_report(failed)
        }
        BackupCommand::List { app, env } => {
            let mut query = Vec::new();
            if let Some(app) = &app {
                check_name(NameKind::App, app)?;
                query.push(format!("app={app}"));
            }
            if let Some(env) = &env {
                check_name(NameKind::Environment, env)?;
                query.push(format!("env={env}"));
            }
            let path = match query.is_empty() {
                true => "/api/v1/backups".to_owned(),
                false => format!("/api/v1/backups?{}", query.join("&")),
            };
            let backups: Vec<AppBackup> = client.get(&path).await?;
            output.print(&backups, |backups| {
                if backups.is_empty() {
                    println!("No backups.");
                    return;
                }
                let rows: Vec<Vec<String>> = backups
                    .iter()
                    .map(|b| {
                        vec![
                            b.id.to_string(),
                            b.app.clone(),
                            b.env.clone(),
                            b.target.clone(),
                            b.created.clone(),
                            b.reason.to_string(),
                            b.files.to_string(),
                            human_bytes(b.bytes),
                            human_bytes(b.new_bytes),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "ID", "APP", "ENV", "TARGET", "CREATED", "REASON", "FILES", "BYTES", "NEW",
                    ],
                    &rows,
                );
            });
            Ok(())
        }
        BackupCommand::Show { id } => {
            let backup: AppBackup = client.get(&format!("/api/v1/backups/{id}")).await?;
            output.print(&backup, |b| {
                println!("Backup {} of {} on {} ({})", b.id, b.app, b.target, b.env);
                println!(
                    "  created:      {} by {} ({})",
                    b.created, b.requested_by, b.reason
                );
                if let Some(version) = &b.version {
                    println!("  release:      {version}");
                }
                println!("  paths:        {}", b.paths.join(", "));
                println!("  files:        {}", b.files);
                println!("  bytes:        {}", human_bytes(b.bytes));
                println!("  new bytes:    {}", human_bytes(b.new_bytes));
                println!("  digest:       {}", b.digest);
            });
            Ok(())
        }
        BackupCommand::Export { id, dir } => {
            let manifest: Manifest = client
                .get(&format!("/api/v1/backups/{id}/manifest"))
                .await?;
            let (files, bytes) = (manifest.n_files(), manifest.n_bytes());
            let fetch = format!("/api/v1/backups/{id}/blobs/fetch");
            download_tree(client, output, manifest, &fetch, &dir, TreeKind::Data).await?;
            let report = serde_json::json!({
                "backup": id, "dir": dir.display().to_string(), "files": files, "bytes": bytes,
            });
            output.print(&report, |_| {
                println!(
                    "exported backup {id} to {} ({files} files, {})",
                    dir.display(),
                    human_bytes(bytes)
                );
            });
            Ok(())
        }
        BackupCommand::Restore { id, target, path } => {
            if let Some(target) = &target {
                check_name(NameKind::Target, target)?;
            }
            let request = RestoreBackup { target, path };
            let task: Task = client
                .post(&format!("/api/v1/backups/{id}/restore"), &request)
                .await?;
            let task = wait_for(client, task, PATIENCE).await?;
            if task.state != TaskState::Succeeded {
                return finish(vec![failure(&task)]);
            }
            output.print(&task, |task| {
                println!(
                    "{} on {}: {}",
                    task.app,
                    task.target,
                    task.message.as_deref().unwrap_or("restored")
                );
            });
            Ok(())
        }
    }
}

/// Why a task did not do what it was asked, in words.
fn failure(task: &Task) -> String {
    match task.state {
        TaskState::Expired => format!("{} on {}: its agent did not answer", task.app, task.target),
        _ => format!(
            "{} on {}: {}",
            task.app,
            task.target,
            task.message
                .as_deref()
                .unwrap_or("its agent could not do it")
        ),
    }
}

fn finish(failed: Vec<String>) -> CliResult {
    match failed.is_empty() {
        true => Ok(()),
        false => Err(CliError::failed(failed.join("\n"))),
    }
}

/// As [`finish`], after the command printed its report: with `--json` that report is the
/// one document on stdout, so the failure is said on stderr only.
fn finish_after_report(failed: Vec<String>) -> CliResult {
    match failed.is_empty() {
        true => Ok(()),
        false => Err(CliError::after_report(Failure::Failed, failed.join("\n"))),
    }
}
