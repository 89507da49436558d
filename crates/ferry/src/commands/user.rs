//! `ferry user`.

use ferry_api::{
    CreateUser, CreatedUser, PasswordSet, RotatedToken, SetPassword, TeamRole, User, WhoAmI,
};
use ferry_domain::name::NameKind;

use super::check_name;
use super::secret_input::{read_secret, Confirm};
use crate::cli::UserCommand;
use crate::client::Client;
use crate::config;
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
                let teams: Vec<String> = created
                    .user
                    .teams
                    .iter()
                    .filter_map(|t| Some(format!("{} in {}", t.role.as_deref()?, t.team)))
                    .collect();
                let in_teams = match teams.is_empty() {
                    true => String::new(),
                    false => format!(", {}", teams.join(", ")),
                };
                eprintln!(
                    "created user {} with role {}{in_teams}; their API token, shown only this once:",
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
                    .map(|u| {
                        vec![
                            u.name.clone(),
                            u.role.clone(),
                            describe_teams(u),
                            match u.disabled {
                                true => "disabled".to_owned(),
                                false => "enabled".to_owned(),
                            },
                        ]
                    })
                    .collect();
                print_table(&["USER", "ROLE", "TEAMS", "STATE"], &rows);
            });
        }
        UserCommand::RotateToken { name } => rotate_token(client, output, name).await?,
        UserCommand::SetPassword { name } => set_password(client, output, name).await?,
        UserCommand::Disable { name } => set_disabled(client, output, &name, true).await?,
        UserCommand::Enable { name } => set_disabled(client, output, &name, false).await?,
    }
    Ok(())
}

/// Sets a user's dashboard password (by default the caller's own), read without echo.
async fn set_password(client: &Client, output: Output, name: Option<String>) -> CliResult {
    let name = match name {
        Some(name) => {
            check_name(NameKind::User, &name)?;
            name
        }
        None => client.get::<WhoAmI>("/api/v1/me").await?.user,
    };
    let password = read_secret(
        &format!("the new password of {name}"),
        "type one",
        Confirm::Twice,
    )?;
    let set: PasswordSet = client
        .put(
            &format!("/api/v1/users/{name}/password"),
            &SetPassword { password },
        )
        .await?;
    output.print(&set, |set| println!("the password of {} is set", set.user));
    Ok(())
}

/// Replaces a user's token (by default the caller's own) and prints the new one. When the
/// caller replaced the token this command ran with and it came from the config file, the
/// file gets the new one, so the next command works.
async fn rotate_token(client: &Client, output: Output, name: Option<String>) -> CliResult {
    if let Some(name) = &name {
        check_name(NameKind::User, name)?;
    }
    let me: WhoAmI = client.get("/api/v1/me").await?;
    let name = name.unwrap_or_else(|| me.user.clone());
    let rotated: RotatedToken = client
        .post(
            &format!("/api/v1/users/{name}/token"),
            &serde_json::json!({}),
        )
        .await?;
    let own = rotated.user == me.user;
    let mut stored = config::load()?;
    let saved_to = match own && stored.token.as_deref() == Some(client.token()) {
        true => {
            stored.token = Some(rotated.token.clone());
            Some(config::save(&stored).map_err(|e| {
                CliError::failed(format!(
                    "the token was rotated but the config file could not be updated ({e:#}); the new token is {}",
                    rotated.token
                ))
            })?)
        }
        false => None,
    };
    output.print(&rotated, |rotated| {
        eprintln!(
            "new API token of {}, shown only this once; the old one no longer works:",
            rotated.user
        );
        println!("{}", rotated.token);
        match (&saved_to, own) {
            (Some(path), _) => eprintln!("saved to {} for later commands", path.display()),
            (None, true) => {
                eprintln!("use it from now on: set FERRY_TOKEN, or run `ferry login --token TOKEN`")
            }
            (None, false) => {}
        }
    });
    Ok(())
}

/// Disables or enables a user (admin).
async fn set_disabled(client: &Client, output: Output, name: &str, disable: bool) -> CliResult {
    check_name(NameKind::User, name)?;
    let verb = if disable { "disable" } else { "enable" };
    let user: User = client
        .post(
            &format!("/api/v1/users/{name}/{verb}"),
            &serde_json::json!({}),
        )
        .await?;
    output.print(&user, |user| match user.disabled {
        true => println!(
            "user {} is disabled: their tokens are refused until `ferry user enable {}`",
            user.name, user.name
        ),
        false => println!("user {} is enabled: their tokens work", user.name),
    });
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
