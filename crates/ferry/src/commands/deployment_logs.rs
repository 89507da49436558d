//! `ferry deployment logs`: what each target's hooks and health check printed.

use ferry_api::{DeploymentLogs, StepLog};
use ferry_domain::name::NameKind;

use super::check_name;
use crate::client::Client;
use crate::error::CliResult;
use crate::output::Output;

/// Prints deployment `id`'s logs, of every target or only `target`.
pub async fn logs(client: &Client, output: Output, id: i64, target: Option<String>) -> CliResult {
    let path = match &target {
        Some(target) => {
            check_name(NameKind::Target, target)?;
            format!("/api/v1/deployments/{id}/logs?target={target}")
        }
        None => format!("/api/v1/deployments/{id}/logs"),
    };
    let logs: DeploymentLogs = client.get(&path).await?;
    output.print(&logs, print_logs);
    Ok(())
}

/// Per target, per step: a heading line (target, release, step, command, how it ended),
/// then the output indented.
fn print_logs(logs: &DeploymentLogs) {
    for target in &logs.targets {
        let who = format!("{} ({} {})", target.target, logs.app, target.version);
        if target.steps.is_empty() {
            println!(
                "{who}: nothing logged (no hook or health check ran, or the target has not reported yet)"
            );
        }
        for step in &target.steps {
            println!("{who}: {}", heading(step));
            print_output(&step.output);
        }
    }
}

fn heading(step: &StepLog) -> String {
    format!("{} `{}`: {}", step.step, step.command, step.ended)
}

fn print_output(output: &str) {
    if output.is_empty() {
        println!("    (no output)");
    }
    for line in output.lines() {
        println!("    {line}");
    }
}
