//! `ferry audit` and `ferry audit verify`.

use ferry_api::{AuditEvent, AuditVerification};
use ferry_domain::name::NameKind;

use super::check_name;
use crate::cli::{AuditArgs, AuditCommand};
use crate::client::Client;
use crate::error::{CliError, CliResult, Failure};
use crate::output::{print_table, Output};

pub async fn run(client: &Client, output: Output, args: AuditArgs) -> CliResult {
    match args.command {
        Some(AuditCommand::Verify) => verify(client, output).await,
        None => list(client, output, args.app, args.limit).await,
    }
}

async fn list(
    client: &Client,
    output: Output,
    app: Option<String>,
    limit: Option<u32>,
) -> CliResult {
    let mut query = Vec::new();
    if let Some(app) = &app {
        check_name(NameKind::App, app)?;
        query.push(format!("app={app}"));
    }
    if let Some(limit) = limit {
        query.push(format!("limit={limit}"));
    }
    let path = if query.is_empty() {
        "/api/v1/audit".to_owned()
    } else {
        format!("/api/v1/audit?{}", query.join("&"))
    };
    let events: Vec<AuditEvent> = client.get(&path).await?;
    output.print(&events, |events| {
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    e.at.clone(),
                    e.actor.clone(),
                    e.action.clone(),
                    e.subject.clone(),
                    e.details.to_string(),
                ]
            })
            .collect();
        print_table(
            &["SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT", "DETAILS"],
            &rows,
        );
    });
    Ok(())
}

async fn verify(client: &Client, output: Output) -> CliResult {
    let verification: AuditVerification = client.get("/api/v1/audit/verify").await?;
    output.print(&verification, |v| {
        if v.ok {
            println!("audit trail intact: {} events verified", v.events);
        }
    });
    if let Some(bad) = &verification.first_bad {
        return Err(CliError::after_report(
            Failure::Failed,
            format!(
                "the audit trail is broken at event {}: {}. If the server runs with this trail's own key, restore the database from a backup and find out who changed it",
                bad.seq, bad.reason
            ),
        ));
    }
    Ok(())
}
