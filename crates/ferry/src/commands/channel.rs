//! `ferry channel`: where a team's notifications go, and the delivery log.

use std::time::{Duration, Instant};

use ferry_api::{AddChannel, Delivery, DeliveryStatus, NotificationChannel, Team};
use ferry_domain::name::NameKind;

use super::check_name;
use crate::cli::ChannelCommand;
use crate::client::Client;
use crate::error::{CliError, CliResult, Failure};
use crate::output::{print_table, Output};

/// How long `ferry channel test --wait` waits for the first attempt: longer than one SMTP
/// delivery may take (a 30 s timeout per step).
const TEST_WAIT: Duration = Duration::from_secs(180);

/// Runs one `ferry channel` command.
pub async fn run(client: &Client, output: Output, command: ChannelCommand) -> CliResult {
    match command {
        ChannelCommand::Add {
            team,
            webhook,
            secret,
            email,
            smtp,
            from,
            allow_private,
        } => {
            check_name(NameKind::Team, &team)?;
            let channel = channel_of(webhook, secret, allow_private, email, smtp, from)?;
            let added: NotificationChannel = client
                .post(&format!("/api/v1/teams/{team}/channels"), &channel)
                .await?;
            output.print(&added, |c| {
                println!(
                    "added channel {} to team {}: {}; `ferry channel test {} {}` sends it a test message",
                    c.id, c.team, c.description, c.team, c.id
                )
            });
        }
        ChannelCommand::List { team } => {
            let teams = match team {
                Some(team) => {
                    check_name(NameKind::Team, &team)?;
                    vec![team]
                }
                None => {
                    let teams: Vec<Team> = client.get("/api/v1/teams").await?;
                    teams.into_iter().map(|t| t.name).collect()
                }
            };
            let mut channels: Vec<NotificationChannel> = Vec::new();
            for team in teams {
                let of_team: Vec<NotificationChannel> = client
                    .get(&format!("/api/v1/teams/{team}/channels"))
                    .await?;
                channels.extend(of_team);
            }
            output.print(&channels, |channels| {
                let rows: Vec<Vec<String>> = channels
                    .iter()
                    .map(|c| {
                        vec![
                            c.id.to_string(),
                            c.team.clone(),
                            c.description.clone(),
                            c.created_by.clone(),
                            c.created_at.clone(),
                        ]
                    })
                    .collect();
                print_table(&["ID", "TEAM", "CHANNEL", "ADDED BY", "ADDED"], &rows);
            });
        }
        ChannelCommand::Remove { team, id } => {
            check_name(NameKind::Team, &team)?;
            client
                .delete(&format!("/api/v1/teams/{team}/channels/{id}"))
                .await?;
            let removed = serde_json::json!({ "team": team, "id": id, "removed": true });
            output.print(&removed, |_| {
                println!(
                    "removed channel {id} of team {team}; its deliveries stay in `ferry channel deliveries {team}`"
                )
            });
        }
        ChannelCommand::Test { team, id, wait } => {
            check_name(NameKind::Team, &team)?;
            let queued: Delivery = client
                .post(
                    &format!("/api/v1/teams/{team}/channels/{id}/test"),
                    &serde_json::json!({}),
                )
                .await?;
            if !wait {
                output.print(&queued, |d| {
                    println!(
                        "queued test delivery {} to channel {id} ({}); `ferry channel deliveries {team}` shows how it went",
                        d.id, d.channel_description
                    )
                });
                return Ok(());
            }
            let attempted = wait_for_attempt(client, &team, queued.id).await?;
            if attempted.status == DeliveryStatus::Delivered {
                output.print(&attempted, |d| println!("{}", outcome(d)));
            } else if output.json {
                output.print(&attempted, |_| {});
                return Err(CliError::after_report(Failure::Failed, outcome(&attempted)));
            } else {
                return Err(CliError::failed(outcome(&attempted)));
            }
        }
        ChannelCommand::Deliveries { team, limit } => {
            check_name(NameKind::Team, &team)?;
            let deliveries: Vec<Delivery> = client
                .get(&format!("/api/v1/teams/{team}/deliveries?limit={limit}"))
                .await?;
            output.print(&deliveries, |deliveries| {
                let rows: Vec<Vec<String>> = deliveries.iter().map(delivery_row).collect();
                print_table(
                    &[
                        "ID",
                        "CHANNEL",
                        "EVENT",
                        "STATUS",
                        "ATTEMPTS",
                        "CREATED",
                        "FINISHED/NEXT",
                        "ANSWER/LAST ERROR",
                    ],
                    &rows,
                );
            });
        }
    }
    Ok(())
}

/// The channel the flags describe; a usage error when they mix kinds or miss a part.
fn channel_of(
    webhook: Option<String>,
    secret: Option<String>,
    allow_private: bool,
    email: Vec<String>,
    smtp: Option<String>,
    from: Option<String>,
) -> CliResult<AddChannel> {
    let emailish = !email.is_empty() || smtp.is_some() || from.is_some();
    match (webhook, secret) {
        (Some(_), _) if emailish => Err(CliError::usage(
            "a channel is either a webhook (--webhook, --secret) or e-mail (--email, --smtp, --from), not both; add two channels for both",
        )),
        (Some(url), Some(secret)) => Ok(AddChannel::Webhook {
            url,
            secret,
            allow_private,
        }),
        (Some(_), None) => Err(CliError::usage(
            "--webhook needs --secret SECRET, the key receivers check signatures with; make one with `openssl rand -hex 32`",
        )),
        (None, Some(_)) => Err(CliError::usage(
            "--secret belongs to a webhook channel: add --webhook URL",
        )),
        (None, None) => {
            if !emailish {
                return Err(CliError::usage(
                    "say where notifications go: --webhook URL --secret SECRET, or --email ADDR[,ADDR…] --smtp URL --from ADDR",
                ));
            }
            let missing: Vec<&str> = [
                ("--email ADDR[,ADDR…]", email.is_empty()),
                ("--smtp URL", smtp.is_none()),
                ("--from ADDR", from.is_none()),
            ]
            .into_iter()
            .filter(|(_, missing)| *missing)
            .map(|(flag, _)| flag)
            .collect();
            if !missing.is_empty() {
                return Err(CliError::usage(format!(
                    "an e-mail channel also needs {}",
                    missing.join(" and ")
                )));
            }
            Ok(AddChannel::Email {
                smtp: smtp.unwrap_or_default(),
                from: from.unwrap_or_default(),
                to: email.into_iter().map(|a| a.trim().to_owned()).collect(),
            })
        }
    }
}

/// Polls a delivery until its first attempt was made.
async fn wait_for_attempt(client: &Client, team: &str, id: i64) -> CliResult<Delivery> {
    let deadline = Instant::now() + TEST_WAIT;
    loop {
        let delivery: Delivery = client
            .get(&format!("/api/v1/teams/{team}/deliveries/{id}"))
            .await?;
        if delivery.attempts > 0 || delivery.status != DeliveryStatus::Pending {
            return Ok(delivery);
        }
        if Instant::now() >= deadline {
            return Err(CliError::failed(format!(
                "test delivery {id} was not attempted within {} s; is the server's notifier running? `ferry channel deliveries {team}` shows it later",
                TEST_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One line on how a delivery went.
fn outcome(delivery: &Delivery) -> String {
    let error = delivery
        .last_error
        .as_deref()
        .unwrap_or("no error recorded");
    match delivery.status {
        DeliveryStatus::Delivered => format!(
            "delivered test message {} to channel {} ({}): {}",
            delivery.id,
            delivery.channel,
            delivery.channel_description,
            delivery.detail.as_deref().unwrap_or("accepted")
        ),
        DeliveryStatus::Failed => format!(
            "the test message to channel {} ({}) failed: {error}; fix the channel (`ferry channel remove` and `add`) or the receiver, then test again",
            delivery.channel, delivery.channel_description
        ),
        DeliveryStatus::Pending => format!(
            "attempt {} of the test message to channel {} ({}) failed: {error} (next attempt at {}; `ferry channel deliveries {}` shows how it goes)",
            delivery.attempts,
            delivery.channel,
            delivery.channel_description,
            delivery.next_attempt_at.as_deref().unwrap_or("a later time"),
            delivery.team
        ),
    }
}

fn delivery_row(d: &Delivery) -> Vec<String> {
    let when = match (&d.finished_at, &d.next_attempt_at) {
        (Some(finished), _) => finished.clone(),
        (None, Some(next)) => format!("next {next}"),
        (None, None) => String::new(),
    };
    // A delivered message shows the receiver's answer, the others why they failed.
    let error = match d.status {
        DeliveryStatus::Delivered => d.detail.clone(),
        DeliveryStatus::Pending | DeliveryStatus::Failed => d.last_error.clone(),
    }
    .unwrap_or_default();
    vec![
        d.id.to_string(),
        format!("{} {}", d.channel, d.channel_description),
        d.event.clone(),
        d.status.to_string(),
        format!("{}/{}", d.attempts, d.max_attempts),
        d.created_at.clone(),
        when,
        error,
    ]
}
