//! `ferry user`.

use ferry_api::{CreateUser, CreatedUser, TeamRole, User};
use ferry_domain::name::NameKind;

use super::check_name;
use crate::cli::UserCommand;
use crate::client::Client;
use crate::error::{CliError, CliResult};
use crate::output::{print_table, Output};

/// Parses `TEAM:ROLE` or `TEAM`.
fn parse_team_role(value: &str) -> CliResult<TeamRole> {
    let (team, role) = match value.split_once(':') {
        Some((team, role)) => (team, Some(role)),
        None => (value, None),
    };
    check_name(NameKind::Team, team)?;
    if let Some(role) = role {
        check_name(NameKind::Role, role)
            .map_err(|e| CliError::refused(format!("--team {value:?}: {}", e.message)))?;
    }
    Ok(TeamRole {
        team: team.to_owned(),
        role: role.map(str::to_owned),
    })
}

fn describe_teams(user: &User) -> String {
    user.teams
        .iter()
        .map(|t| match &t.role {
            Some(role) => format!("{}:{role}", t.team),
            None => t.team.clone(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub async fn run(client: &Client, output: Output, command: UserCommand) -> CliResult {
    match command {
        UserCommand::Create { name, role, teams } => {
            check_name(NameKind::User, &name)?;
            check_name(NameKind::Role, &role)?;
            let teams = teams
                .iter()
                .map(|t| parse_team_role(t))
                .collect::<CliResult<Vec<_>>>()?;
            let request = CreateUser {
                name,
                role: Some(role),
                teams,
            };
            let created: CreatedUser = client.post("/api/v1/users", &request).await?;
            output.print(&created, |created| {
                eprintln!(
                    "created user {} with role {}; their API token, shown only this once:",
                    created.user.name, created.user.role
                );
                println!("{}", created.token);
            });
        }
        UserCommand::List => {
            let users: Vec<User> = client.get("/api/v1/users").await?;
            output.print(&users, |users| {
                let rows: Vec<Vec<String>> = users
                    .iter()
                    .map(|u| vec![u.name.clone(), u.role.clone(), describe_teams(u)])
                    .collect();
                print_table(&["USER", "ROLE", "TEAMS"], &rows);
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_roles_parse() {
        let parsed = parse_team_role("shop:lead").unwrap();
        assert_eq!(
            (parsed.team.as_str(), parsed.role.as_deref()),
            ("shop", Some("lead"))
        );
        let parsed = parse_team_role("shop").unwrap();
        assert_eq!((parsed.team.as_str(), parsed.role), ("shop", None));
        for bad in ["Shop:lead", "shop:Lead", "shop:", ":lead", "shop:lead:x"] {
            assert_eq!(parse_team_role(bad).unwrap_err().exit_code(), 3, "{bad}");
        }
    }
}
