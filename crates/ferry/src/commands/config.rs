//! `ferry config`: an application's configuration per environment, in revisions.

use ferry_api::{
    ApplyConfig, ConfigAssignment, ConfigComparison, ConfigEdit, ConfigEdited,
    ConfigRevisionSummary, ConfigView, Deployment,
};
use ferry_domain::config::{parse_assignment, parse_env_file, ConfigKey};
use ferry_domain::name::NameKind;

use super::check_name;
use super::deploy::{finish, strategy_name};
use super::secret_input::{read_secret, Confirm};
use crate::cli::ConfigCommand;
use crate::client::Client;
use crate::error::{CliError, CliResult};
use crate::output::{print_table, Output};

/// What a masked secret shows instead of its value.
const MASKED: &str = "(secret)";

pub async fn run(client: &Client, output: Output, command: ConfigCommand) -> CliResult {
    match command {
        ConfigCommand::Set {
            app,
            env,
            assignments,
            secret,
            from_env_file,
        } => {
            let path = config_path(&app, &env)?;
            let mut set = Vec::new();
            if let Some(file) = &from_env_file {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| CliError::failed(format!("reading {}: {e}", file.display())))?;
                let parsed = parse_env_file(&text)
                    .map_err(|e| CliError::usage(format!("{}: {e}", file.display())))?;
                set.extend(parsed);
            }
            set.extend(from_arguments(&assignments)?);
            if set.is_empty() {
                return Err(CliError::usage(
                    "nothing to set: give KEY=VALUE pairs, a KEY alone to read its value from standard input, or --from-env-file FILE",
                ));
            }
            let edit = ConfigEdit {
                set: set
                    .into_iter()
                    .map(|(key, value)| ConfigAssignment {
                        key: key.to_string(),
                        value,
                    })
                    .collect(),
                secret,
                unset: Vec::new(),
            };
            let edited: ConfigEdited = client.post(&path, &edit).await?;
            output.print(&edited, print_edited);
            Ok(())
        }
        ConfigCommand::Unset { app, env, keys } => {
            let path = config_path(&app, &env)?;
            for key in &keys {
                ConfigKey::parse(key).map_err(CliError::usage)?;
            }
            let edit = ConfigEdit {
                unset: keys,
                ..ConfigEdit::default()
            };
            let edited: ConfigEdited = client.post(&path, &edit).await?;
            output.print(&edited, print_edited);
            Ok(())
        }
        ConfigCommand::Show {
            app,
            env,
            revision,
            reveal,
        } => {
            let mut query = Vec::new();
            query.extend(revision.map(|r| format!("revision={r}")));
            if reveal {
                query.push("reveal=true".to_owned());
            }
            let mut path = config_path(&app, &env)?;
            if !query.is_empty() {
                path = format!("{path}?{}", query.join("&"));
            }
            let view: ConfigView = client.get(&path).await?;
            output.print(&view, |view| {
                if view.revision == 0 {
                    println!(
                        "{} has no configuration in {} yet: `ferry config set {} --env {} KEY=VALUE` sets some",
                        view.app, view.env, view.app, view.env
                    );
                    return;
                }
                println!(
                    "{} in {}: revision {}, by {} at {}",
                    view.app,
                    view.env,
                    view.revision,
                    view.author.as_deref().unwrap_or("?"),
                    view.created.as_deref().unwrap_or("?")
                );
                let rows: Vec<Vec<String>> = (view.entries.iter())
                    .map(|e| {
                        let value = match (&e.value, e.secret) {
                            (None, _) => MASKED.to_owned(),
                            (Some(value), true) => format!("{value} (secret)"),
                            (Some(value), false) => value.clone(),
                        };
                        vec![e.key.clone(), value]
                    })
                    .collect();
                print_table(&["KEY", "VALUE"], &rows);
            });
            Ok(())
        }
        ConfigCommand::History { app, env } => {
            let path = format!("{}/history", config_path(&app, &env)?);
            let history: Vec<ConfigRevisionSummary> = client.get(&path).await?;
            output.print(&history, |history| {
                if history.is_empty() {
                    println!("{app} has no configuration in {env} yet.");
                    return;
                }
                let rows: Vec<Vec<String>> = (history.iter())
                    .map(|r| {
                        let changes: Vec<String> = (r.changes.iter())
                            .map(|c| match c.secret {
                                true => format!("{} {} (secret)", c.key, c.change),
                                false => format!("{} {}", c.key, c.change),
                            })
                            .collect();
                        vec![
                            r.revision.to_string(),
                            r.created.clone(),
                            r.author.clone(),
                            r.keys.to_string(),
                            changes.join(", "),
                        ]
                    })
                    .collect();
                print_table(&["REVISION", "CREATED", "AUTHOR", "KEYS", "CHANGES"], &rows);
            });
            Ok(())
        }
        ConfigCommand::Apply {
            app,
            env,
            wait,
            strategy,
            reason,
            break_glass,
            skip_offline,
            skip_backup,
        } => {
            let request = ApplyConfig {
                strategy: Some(strategy_name(strategy).to_owned()),
                reason,
                break_glass,
                skip_offline,
                skip_backup,
            };
            let path = format!("{}/apply", config_path(&app, &env)?);
            let started: Deployment = client.post(&path, &request).await?;
            finish(client, output, started, wait).await
        }
        ConfigCommand::Diff { app, first, second } => {
            check_name(NameKind::Environment, &second)?;
            if first == second {
                return Err(CliError::usage(format!(
                    "{first} compared with itself differs in nothing: name two environments, like `ferry config diff {app} dev prd`"
                )));
            }
            let path = format!("{}/compare?with={second}", config_path(&app, &first)?);
            let comparison: ConfigComparison = client.get(&path).await?;
            output.print(&comparison, print_comparison);
            Ok(())
        }
    }
}

/// `/api/v1/apps/APP/config/ENV`, the names checked.
fn config_path(app: &str, env: &str) -> CliResult<String> {
    check_name(NameKind::App, app)?;
    check_name(NameKind::Environment, env)?;
    Ok(format!("/api/v1/apps/{app}/config/{env}"))
}

/// The `KEY=VALUE` arguments; one `KEY` alone takes its value from standard input.
fn from_arguments(arguments: &[String]) -> CliResult<Vec<(ConfigKey, String)>> {
    let bare: Vec<&String> = arguments.iter().filter(|a| !a.contains('=')).collect();
    if bare.len() > 1 {
        return Err(CliError::usage(format!(
            "{} are given without a value: only one KEY may read its value from standard input; give the others as KEY=VALUE",
            bare.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    arguments
        .iter()
        .map(|argument| match argument.contains('=') {
            true => parse_assignment(argument).map_err(CliError::usage),
            false => {
                let key = ConfigKey::parse(argument).map_err(CliError::usage)?;
                let value = read_secret(
                    &format!("the value of {key}"),
                    &format!("give {key}= to set it empty"),
                    Confirm::Once,
                )?;
                ferry_domain::config::check_value(&key, &value).map_err(CliError::usage)?;
                Ok((key, value))
            }
        })
        .collect()
}

fn print_edited(edited: &ConfigEdited) {
    if !edited.changed {
        println!(
            "nothing changed: revision {} of {} in {} holds these values already",
            edited.revision, edited.app, edited.env
        );
        return;
    }
    println!(
        "{} in {}: revision {}",
        edited.app, edited.env, edited.revision
    );
    for change in &edited.changes {
        let secret = if change.secret { " (secret)" } else { "" };
        println!("  {} {}{secret}", change.key, change.change);
    }
    println!(
        "It reaches the targets with the next deployment: `ferry config apply {} --env {}` deploys it with the release running there.",
        edited.app, edited.env
    );
}

fn print_comparison(c: &ConfigComparison) {
    let list = |keys: &[String]| match keys.is_empty() {
        true => "none".to_owned(),
        false => keys.join(", "),
    };
    println!(
        "{}: {} (revision {}) and {} (revision {})",
        c.app, c.first, c.first_revision, c.second, c.second_revision
    );
    let rows = [
        (format!("only in {}:", c.first), &c.only_in_first),
        (format!("only in {}:", c.second), &c.only_in_second),
        ("different:".to_owned(), &c.differ),
        ("the same:".to_owned(), &c.same),
    ];
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    for (label, keys) in rows {
        println!("  {label:<width$} {}", list(keys));
    }
}
