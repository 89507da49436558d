//! `ferry server`.

use std::io::IsTerminal;

use ferry_server::ServerConfig;

use crate::cli::{ServerArgs, ServerCommand};
use crate::client::Client;
use crate::error::{CliError, CliResult, Failure};
use crate::output::Output;

pub async fn run(args: ServerArgs) -> CliResult {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = ServerConfig {
        data_dir: args.data,
        listen: args.listen,
        maintenance_every: args.maintenance_every,
        gc_grace: args.gc_grace,
        deploy_timeout: args.deploy_timeout,
    };
    ferry_server::run(config)
        .await
        .map_err(|e| CliError::failed(format!("{e:#}")))
}

/// Operations on a running server.
pub async fn operate(client: &Client, output: Output, command: ServerCommand) -> CliResult {
    match command {
        ServerCommand::Fsck => {
            let report: serde_json::Value = client
                .post("/api/v1/admin/fsck", &serde_json::json!({}))
                .await?;
            output.print(&report, |r| {
                println!("{} blobs re-hashed", r["blobs_checked"]);
                for hash in r["corrupt"].as_array().into_iter().flatten() {
                    println!(
                        "corrupt (quarantined): {}",
                        hash.as_str().unwrap_or_default()
                    );
                }
                for hash in r["missing"].as_array().into_iter().flatten() {
                    println!("missing: {}", hash.as_str().unwrap_or_default());
                }
            });
            if report["ok"] != true {
                return Err(CliError::after_report(
                    Failure::Failed,
                    "the content store has corrupt or missing blobs: create the affected releases again from their source to restore them",
                ));
            }
            Ok(())
        }
    }
}
