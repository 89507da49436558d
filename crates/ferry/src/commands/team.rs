//! `ferry team`.

use ferry_api::{CreateTeam, Team};
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
    }
    Ok(())
}
