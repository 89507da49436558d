//! `ferry drift`: files on targets that differ from the release they run, as the targets'
//! agents last found them.

use ferry_api::TargetDrift;
use ferry_domain::freeze::rfc3339;
use ferry_domain::name::NameKind;

use super::check_name;
use crate::client::Client;
use crate::error::CliResult;
use crate::output::{print_table, Output};

/// Lists the drifted paths of every target the caller may see, of one application or all,
/// in one environment or all. Drift is a finding, not a failure: the exit status is 0
/// either way.
pub async fn run(
    client: &Client,
    output: Output,
    app: Option<String>,
    env: Option<String>,
) -> CliResult {
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
        true => "/api/v1/drift".to_owned(),
        false => format!("/api/v1/drift?{}", query.join("&")),
    };
    let drift: Vec<TargetDrift> = client.get(&path).await?;
    output.print(&drift, |drift| {
        if drift.is_empty() {
            println!(
                "No drift: every target{} serves its release exactly, as its agent last checked.",
                match (&app, &env) {
                    (Some(app), Some(env)) => format!(" of {app} in {env}"),
                    (Some(app), None) => format!(" of {app}"),
                    (None, Some(env)) => format!(" in {env}"),
                    (None, None) => String::new(),
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
    Ok(())
}
