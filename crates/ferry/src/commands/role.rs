//! `ferry role`.

use ferry_api::{Environment, Role, SetRoleLevel};
use ferry_domain::name::NameKind;
use ferry_domain::permission::Level;

use super::check_name;
use crate::cli::RoleCommand;
use crate::client::Client;
use crate::error::{CliError, CliResult};
use crate::output::{print_table, Output};

pub async fn run(client: &Client, output: Output, command: RoleCommand) -> CliResult {
    match command {
        RoleCommand::List => {
            let roles: Vec<Role> = client.get("/api/v1/roles").await?;
            let pipeline: Vec<Environment> = client.get("/api/v1/environments").await?;
            output.print(&roles, |roles| {
                let mut header = vec!["ROLE"];
                header.extend(pipeline.iter().map(|e| e.name.as_str()));
                header.push("CAPABILITIES");
                let rows: Vec<Vec<String>> = roles
                    .iter()
                    .map(|role| {
                        let mut row = vec![role.name.clone()];
                        row.extend(pipeline.iter().map(|env| {
                            role.levels
                                .get(&env.name)
                                .cloned()
                                .unwrap_or_else(|| "none".into())
                        }));
                        row.push(role.capabilities.join(","));
                        row
                    })
                    .collect();
                print_table(&header, &rows);
            });
        }
        RoleCommand::Set { role, env, level } => {
            check_name(NameKind::Role, &role)?;
            check_name(NameKind::Environment, &env)?;
            level.parse::<Level>().map_err(CliError::refused)?;
            let updated: Role = client
                .put(
                    &format!("/api/v1/roles/{role}/levels"),
                    &SetRoleLevel {
                        env: env.clone(),
                        level,
                    },
                )
                .await?;
            output.print(&updated, |role| {
                println!("role {} now has {} on {env}", role.name, role.levels[&env]);
            });
        }
    }
    Ok(())
}
