//! `ferry drift`: files on targets that differ from the release they run, as the targets'
//! agents last found them, or (`--refresh`) as they find them now.

use std::time::Duration;

use ferry_api::{
    CaptureDrift, CaptureOutcome, CheckDrift, DriftChecks, RevertDrift, RevertOutcome, TargetDrift,
    Task, TaskState,
};
use ferry_domain::freeze::rfc3339;
use ferry_domain::name::NameKind;

use super::check_name;
use super::tasks::{detail_of, wait_for, wait_for_success};
use crate::client::Client;
use crate::error::{CliError, CliResult, Failure};
use crate::output::{print_table, Output};

/// How long `--refresh` waits for the agents: a check of an unchanged release takes
/// milliseconds, one that re-hashes many edited files seconds.
const REFRESH_PATIENCE: Duration = Duration::from_secs(120);

/// How long a capture is waited for: the edited files are hashed and uploaded first.
const CAPTURE_PATIENCE: Duration = Duration::from_secs(600);

/// How long a revert is waited for: what the drifted paths hold is backed up first.
const REVERT_PATIENCE: Duration = Duration::from_secs(600);

/// Which targets' drift to show.
pub struct Scope {
    pub app: Option<String>,
    pub env: Option<String>,
    pub target: Option<String>,
}

/// Lists the drifted paths of every target the caller may see, of one application or all,
/// in one environment or all, or on one target; with `refresh`, after their agents checked
/// again. Drift is a finding, not a failure: the exit status is 0 either way, unless an
/// agent asked to check could not.
pub async fn run(client: &Client, output: Output, scope: Scope, refresh: bool) -> CliResult {
    let Scope { app, env, target } = scope;
    let mut query = Vec::new();
    if let Some(app) = &app {
        check_name(NameKind::App, app)?;
        query.push(format!("app={app}"));
    }
    if let Some(env) = &env {
        check_name(NameKind::Environment, env)?;
        query.push(format!("env={env}"));
    }
    if let Some(target) = &target {
        check_name(NameKind::Target, target)?;
        query.push(format!("target={target}"));
    }
    let unchecked = match refresh {
        true => {
            let request = CheckDrift {
                app: app.clone(),
                env: env.clone(),
                target: target.clone(),
            };
            check_now(client, request).await?
        }
        false => Vec::new(),
    };
    let path = match query.is_empty() {
        true => "/api/v1/drift".to_owned(),
        false => format!("/api/v1/drift?{}", query.join("&")),
    };
    let drift: Vec<TargetDrift> = client.get(&path).await?;
    output.print(&drift, |drift| {
        if drift.is_empty() {
            println!(
                "No drift: every target{} serves its release exactly, {}.",
                match (&app, &target, &env) {
                    (Some(app), Some(target), _) => format!(" of {app} on {target}"),
                    (None, Some(target), _) => format!(" on {target}"),
                    (Some(app), None, Some(env)) => format!(" of {app} in {env}"),
                    (Some(app), None, None) => format!(" of {app}"),
                    (None, None, Some(env)) => format!(" in {env}"),
                    (None, None, None) => String::new(),
                },
                match (refresh, unchecked.is_empty()) {
                    (true, true) => "as its agent found just now",
                    _ => "as its agent last checked",
                }
            );
            return;
        }
        for target in drift {
            println!(
                "{} on {} ({}): {} path{} differ{} from {} (checked {})",
                target.app,
                target.target,
                target.env,
                target.count,
                if target.count == 1 { "" } else { "s" },
                if target.count == 1 { "s" } else { "" },
                target.version,
                target.checked,
            );
            let rows: Vec<Vec<String>> = target
                .paths
                .iter()
                .map(|p| {
                    vec![
                        p.path.clone(),
                        p.change.to_string(),
                        rfc3339(p.first_seen_ms),
                    ]
                })
                .collect();
            print_table(&["PATH", "CHANGE", "FIRST SEEN"], &rows);
            let unlisted = target.count.saturating_sub(target.paths.len() as u64);
            if unlisted > 0 {
                println!("… and {unlisted} more paths the server does not keep");
            }
        }
    });
    match unchecked.is_empty() {
        true => Ok(()),
        false => Err(CliError::after_report(
            Failure::Failed,
            format!(
                "not checked now, so shown as last found: {}",
                unchecked.join("; ")
            ),
        )),
    }
}

/// Asks the agents to check now and waits for each; what could not be checked, in words.
async fn check_now(client: &Client, request: CheckDrift) -> CliResult<Vec<String>> {
    let asked: DriftChecks = client.post("/api/v1/drift/check", &request).await?;
    let mut unchecked: Vec<String> = asked
        .offline
        .iter()
        .map(|target| format!("{target}: its agent is offline (`ferry target list`)"))
        .collect();
    for task in asked.tasks {
        let task = wait_for(client, task, REFRESH_PATIENCE).await?;
        match task.state {
            TaskState::Succeeded => {}
            TaskState::Expired => unchecked.push(format!(
                "{} on {}: its agent did not answer",
                task.app, task.target
            )),
            _ => unchecked.push(format!(
                "{} on {}: {}",
                task.app,
                task.target,
                task.message
                    .as_deref()
                    .unwrap_or("its agent could not check")
            )),
        }
    }
    Ok(unchecked)
}

/// Asks the target's agent to capture the hand edits as a release and waits for it; prints
/// the release, the paths captured, the bytes uploaded and the backport obligation opened.
/// A capture the agent could not make fails with its reason.
pub async fn capture(client: &Client, output: Output, request: CaptureDrift) -> CliResult {
    check_name(NameKind::Target, &request.target)?;
    check_name(NameKind::App, &request.app)?;
    ferry_domain::name::validate_version(&request.version)
        .map_err(|e| CliError::usage(e.to_string()))?;
    let task: Task = client.post("/api/v1/drift/capture", &request).await?;
    let doing = format!("capture {}", request.app);
    let task = wait_for_success(client, task, CAPTURE_PATIENCE, &doing).await?;
    let Some(outcome) = detail_of::<CaptureOutcome>(&task) else {
        output.print(&task, |task| {
            println!("{}", task.message.as_deref().unwrap_or("captured"))
        });
        return Ok(());
    };
    output.print(&outcome, |outcome| {
        let release = &outcome.release;
        println!(
            "captured {} {} from {} (a hotfix of {}): {} path(s)",
            release.app, release.version, task.target, release.hotfix_of, release.paths
        );
        let mut named = 0;
        for (what, paths) in [
            ("added", &release.added),
            ("removed", &release.removed),
            ("modified", &release.modified),
        ] {
            for path in paths {
                println!("  {what:<9} {path}");
                named += 1;
            }
        }
        if release.paths > named {
            println!(
                "  … and {} more (`ferry release diff {} {} {}`)",
                release.paths - named,
                release.app,
                release.hotfix_of,
                release.version
            );
        }
        println!(
            "uploaded {} bytes; {} runs {} (deployment {}), {} files linked, none rewritten",
            outcome.bytes_uploaded, task.target, release.version, release.deployment, outcome.files_linked
        );
        match release.backport {
            Some(id) => println!(
                "backport obligation {id} opened: the fix is owed to the product line (`ferry backport list {}`)",
                release.app
            ),
            None => println!("no backport obligation: {} is not a production target", task.target),
        }
    });
    Ok(())
}

/// Asks the target's agent to undo its hand edits on `request.app`, keeping what they held
/// as a backup first, waits, and says what was reverted.
pub async fn revert(client: &Client, output: Output, request: RevertDrift) -> CliResult {
    check_name(NameKind::Target, &request.target)?;
    check_name(NameKind::App, &request.app)?;
    let task: Task = client.post("/api/v1/drift/revert", &request).await?;
    let doing = format!("revert {}", request.app);
    let task = wait_for_success(client, task, REVERT_PATIENCE, &doing).await?;
    let Some(outcome) = detail_of::<RevertOutcome>(&task) else {
        output.print(&task, |task| {
            println!("{}", task.message.as_deref().unwrap_or("reverted"))
        });
        return Ok(());
    };
    output.print(&outcome, |outcome| {
        if outcome.reverted.is_empty() {
            println!(
                "{} {} on {} differed from nothing: nothing to revert",
                task.app, outcome.version, task.target
            );
            return;
        }
        println!(
            "{} on {} serves {} exactly again; {} path(s) reverted:",
            task.app,
            task.target,
            outcome.version,
            outcome.reverted.len()
        );
        for path in &outcome.reverted {
            println!("  {:<9} {}", path.change.to_string(), path.path);
        }
        if !outcome.rewritten.is_empty() {
            println!(
                "{} written again from the configuration's values; what they held is not kept, as it may hold secrets (change a value with `ferry config set`)",
                outcome.rewritten.join(", ")
            );
        }
        match outcome.backup {
            Some(id) if !outcome.rewritten.is_empty() => println!(
                "what the other paths held is kept in backup {id} (`ferry backup show {id}`)"
            ),
            Some(id) => {
                println!("what they held is kept in backup {id} (`ferry backup show {id}`)")
            }
            None if outcome.rewritten.is_empty() => {
                println!("they were deletions only: nothing to keep")
            }
            None => {}
        }
    });
    Ok(())
}
