//! `ferry login` and `ferry whoami`.

use ferry_api::WhoAmI;

use crate::cli::GlobalArgs;
use crate::client::Client;
use crate::config::{self, Config};
use crate::error::{CliError, CliResult};
use crate::output::Output;

/// Checks the server and token with one call, then stores both.
pub async fn login(global: &GlobalArgs, output: Output) -> CliResult {
    let (Some(server), Some(token)) = (&global.server, &global.token) else {
        return Err(CliError::usage(
            "login needs --server URL and --token TOKEN (or FERRY_SERVER and FERRY_TOKEN)",
        ));
    };
    // Stored absolute, so later commands find it from any directory.
    let ca_cert = match &global.ca_cert {
        Some(path) => Some(std::fs::canonicalize(path).map_err(|e| {
            CliError::usage(format!("cannot read --ca-cert {}: {e}", path.display()))
        })?),
        None => None,
    };
    let me: WhoAmI = Client::new(server, token, ca_cert.as_deref())?
        .get("/api/v1/me")
        .await
        .map_err(|refused| match refused.code.as_str() {
            // The server's advice is for commands run after a login; here, the token given
            // is the one to check.
            "unauthorized" => CliError {
                message: format!(
                    "{server} refused this token ({}); nothing was saved: check the token you were given (`ferry user create` and `ferry user rotate-token` print it once)",
                    refused.message.split(':').next().unwrap_or_default()
                ),
                ..refused
            },
            _ => refused,
        })?;
    let path = config::save(&Config {
        server: Some(server.trim_end_matches('/').to_owned()),
        token: Some(token.trim().to_owned()),
        ca_cert,
    })?;
    output.print(&me, |me| {
        println!(
            "logged in to {server} as {}; saved to {}",
            me.user,
            path.display()
        );
    });
    Ok(())
}

pub async fn whoami(client: &Client, output: Output) -> CliResult {
    let me: WhoAmI = client.get("/api/v1/me").await?;
    output.print(&me, |me| {
        println!("{} (role {})", me.user, me.role);
        for team in &me.teams {
            let role = team.role.as_deref().unwrap_or(&me.role);
            println!("  team {}: {role}", team.team);
        }
    });
    Ok(())
}
