//! `ferry team`.

use ferry_api::{CreateTeam, SetMember, SetTeamSupport, Team, TeamMember, TeamSupport};
use ferry_domain::name::NameKind;

use super::check_name;
use crate::cli::TeamCommand;
use crate::client::Client;
use crate::error::CliResult;
use crate::output::{print_table, Output};

pub async fn run(client: &Client, output: Output, command: TeamCommand) -> CliResult {
    match command {
        TeamCommand::Create { team } => {
            check_name(NameKind::Team, &team)?;
            let created: Team = client
                .post("/api/v1/teams", &CreateTeam { name: team })
                .await?;
            output.print(&created, |team| println!("created team {}", team.name));
        }
        TeamCommand::List => {
            let teams: Vec<Team> = client.get("/api/v1/teams").await?;
            output.print(&teams, |teams| {
                let rows: Vec<Vec<String>> = teams
                    .iter()
                    .map(|t| vec![t.name.clone(), t.created_at.clone()])
                    .collect();
                print_table(&["TEAM", "CREATED"], &rows);
            });
        }
        TeamCommand::Members { team } => {
            check_name(NameKind::Team, &team)?;
            let members: Vec<TeamMember> =
                client.get(&format!("/api/v1/teams/{team}/members")).await?;
            output.print(&members, |members| {
                let rows: Vec<Vec<String>> = members
                    .iter()
                    .map(|m| {
                        let role = match &m.role {
                            Some(role) => role.clone(),
                            None => format!("{} (default)", m.effective_role),
                        };
                        vec![m.user.clone(), role]
                    })
                    .collect();
                print_table(&["USER", "ROLE"], &rows);
            });
        }
        TeamCommand::Add { team, user, role } => {
            check_name(NameKind::Team, &team)?;
            check_name(NameKind::User, &user)?;
            if let Some(role) = &role {
                check_name(NameKind::Role, role)?;
            }
            let member: TeamMember = client
                .put(
                    &format!("/api/v1/teams/{team}/members/{user}"),
                    &SetMember { role },
                )
                .await?;
            output.print(&member, |m| {
                println!("{} is in team {team} as {}", m.user, m.effective_role)
            });
        }
        TeamCommand::Remove { team, user } => {
            check_name(NameKind::Team, &team)?;
            check_name(NameKind::User, &user)?;
            client
                .delete(&format!("/api/v1/teams/{team}/members/{user}"))
                .await?;
            let removed = serde_json::json!({ "team": team, "user": user, "removed": true });
            output.print(&removed, |_| println!("{user} is no longer in team {team}"));
        }
        TeamCommand::Support { team } => {
            check_name(NameKind::Team, &team)?;
            let support: TeamSupport = client.get(&format!("/api/v1/teams/{team}/support")).await?;
            output.print(&support, print_support);
        }
        TeamCommand::Rotation {
            team,
            members,
            shift,
            start,
            escalate_after,
        } => {
            check_name(NameKind::Team, &team)?;
            let request = SetTeamSupport {
                members: members.map(|m| m.into_iter().filter(|m| !m.is_empty()).collect()),
                shift,
                start,
                escalate_after,
            };
            let support: TeamSupport = client
                .put(&format!("/api/v1/teams/{team}/support"), &request)
                .await?;
            output.print(&support, print_support);
        }
    }
    Ok(())
}

fn print_support(s: &TeamSupport) {
    if s.members.is_empty() {
        println!("team {} has no rotation: incidents go to its leads", s.team);
    } else {
        println!(
            "team {}: on call in turns of {} from {}: {}",
            s.team,
            s.shift.as_deref().unwrap_or("-"),
            s.start.as_deref().unwrap_or("-"),
            s.members.join(", ")
        );
        println!(
            "on call now: {} (until {})",
            s.on_call.as_deref().unwrap_or("-"),
            s.hand_over_at.as_deref().unwrap_or("-")
        );
    }
    println!(
        "critical incidents escalate after {} without acknowledgement",
        s.escalate_after
    );
}
