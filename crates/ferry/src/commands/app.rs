//! `ferry app`.

use ferry_api::{App, AppGrant, ChangeApp, CreateApp, Placement, SetMaintainer};
use ferry_domain::name::NameKind;
use ferry_domain::run_as::RunAs;

use super::check_name;
use crate::cli::AppCommand;
use crate::client::Client;
use crate::error::{CliError, CliResult};
use crate::output::{print_table, Output};

pub async fn run(client: &Client, output: Output, command: AppCommand) -> CliResult {
    match command {
        AppCommand::Create { app, team, keep } => {
            check_name(NameKind::App, &app)?;
            check_name(NameKind::Team, &team)?;
            let request = CreateApp {
                name: app,
                team,
                keep,
            };
            let created: App = client.post("/api/v1/apps", &request).await?;
            output.print(&created, |app| {
                println!(
                    "created application {} owned by team {}",
                    app.name, app.team
                );
            });
        }
        AppCommand::Set {
            app,
            keep,
            backup_every,
            backup_keep,
            run_as,
        } => {
            check_name(NameKind::App, &app)?;
            if keep.is_none() && backup_every.is_none() && backup_keep.is_none() && run_as.is_none()
            {
                return Err(CliError::usage(
                    "nothing to change: give the setting to change, like `ferry app set APP --keep 5` or `--backup-every 24h`",
                ));
            }
            if let Some(user) = run_as.as_deref().filter(|user| !user.is_empty()) {
                RunAs::parse(user).map_err(CliError::usage)?;
            }
            let shows_run_as = run_as.is_some();
            let request = ChangeApp {
                keep,
                backup_every,
                backup_keep,
                run_as,
            };
            let changed: App = client
                .patch(&format!("/api/v1/apps/{app}"), &request)
                .await?;
            output.print(&changed, |app| {
                println!("{} keeps {}", app.name, releases(app.keep));
                if let (Some(every), Some(keep)) = (&app.backup_every, &app.backup_keep) {
                    let when = match every.as_str() {
                        "off" => "not on a schedule".to_owned(),
                        every => format!("every {every}"),
                    };
                    println!(
                        "{} backs up its data {when}, keeping backups {keep}",
                        app.name
                    );
                }
                if shows_run_as {
                    println!("{} {}", app.name, runs_as(app.run_as.as_deref()));
                }
            });
        }
        AppCommand::List => {
            let apps: Vec<App> = client.get("/api/v1/apps").await?;
            output.print(&apps, |apps| {
                let rows: Vec<Vec<String>> = apps
                    .iter()
                    .map(|a| vec![a.name.clone(), a.team.clone(), a.keep.to_string()])
                    .collect();
                print_table(&["APP", "TEAM", "KEEP"], &rows);
            });
        }
        AppCommand::Show { app } => {
            check_name(NameKind::App, &app)?;
            let shown: App = client.get(&format!("/api/v1/apps/{app}")).await?;
            output.print(&shown, |app| {
                println!("application  {}", app.name);
                println!("team         {}", app.team);
                println!("keeps        {}", releases(app.keep));
                if let (Some(every), Some(keep)) = (&app.backup_every, &app.backup_keep) {
                    match every.as_str() {
                        "off" => println!("backups      not on a schedule; retention keeps {keep}"),
                        every => println!("backups      every {every}; retention keeps {keep}"),
                    }
                }
                match &app.run_as {
                    Some(user) => {
                        println!("runs as      {user} (its hooks on root agents' targets)")
                    }
                    None => println!(
                        "runs as      no user of its own (`ferry app set {} --run-as USER`)",
                        app.name
                    ),
                }
                println!("created      {}", app.created_at);
            });
        }
        AppCommand::Place { app, env, targets } => {
            check_name(NameKind::App, &app)?;
            check_name(NameKind::Environment, &env)?;
            for target in &targets {
                check_name(NameKind::Target, target)?;
            }
            let placed: Placement = client
                .put(
                    &format!("/api/v1/apps/{app}/placement"),
                    &Placement { env, targets },
                )
                .await?;
            output.print(&placed, |p| {
                println!("{app} runs on {} in {}", p.targets.join(", "), p.env)
            });
        }
        AppCommand::Grant {
            app,
            user,
            env,
            level,
        } => {
            check_name(NameKind::App, &app)?;
            check_name(NameKind::User, &user)?;
            check_name(NameKind::Environment, &env)?;
            level
                .parse::<ferry_domain::permission::Level>()
                .map_err(CliError::refused)?;
            let grant: AppGrant = client
                .put(
                    &format!("/api/v1/apps/{app}/grants"),
                    &AppGrant { user, env, level },
                )
                .await?;
            output.print(&grant, |g| {
                println!("{} has {} on {app} in {}", g.user, g.level, g.env)
            });
        }
        AppCommand::Maintainer { app, team, owner } => {
            check_name(NameKind::App, &app)?;
            if let Some(team) = &team {
                check_name(NameKind::Team, team)?;
            } else if !owner {
                return Err(CliError::usage(
                    "name the maintaining team with --team TEAM, or go back to the owner with --owner",
                ));
            }
            let changed: App = client
                .put(
                    &format!("/api/v1/apps/{app}/maintainer"),
                    &SetMaintainer { team },
                )
                .await?;
            output.print(&changed, |a| match &a.maintainer {
                Some(team) => println!("{} is maintained by team {team}", a.name),
                None => println!("{} is maintained by its owner, team {}", a.name, a.team),
            });
        }
        AppCommand::Grants { app } => {
            check_name(NameKind::App, &app)?;
            let grants: Vec<AppGrant> = client.get(&format!("/api/v1/apps/{app}/grants")).await?;
            output.print(&grants, |grants| {
                let rows: Vec<Vec<String>> = grants
                    .iter()
                    .map(|g| vec![g.user.clone(), g.env.clone(), g.level.clone()])
                    .collect();
                print_table(&["USER", "ENV", "LEVEL"], &rows);
            });
        }
    }
    Ok(())
}

/// `1 release`, `10 releases`.
fn releases(count: u32) -> String {
    match count {
        1 => "1 release".to_owned(),
        n => format!("{n} releases"),
    }
}

/// Who an application's commands run as on a root agent's target, for people.
fn runs_as(user: Option<&str>) -> String {
    match user {
        Some(user) => format!("runs its hooks and health checks as {user} on root agents' targets"),
        None => "has no user of its own to run its hooks as".to_owned(),
    }
}
