//! `ferry server`.

use std::io::IsTerminal;

use ferry_server::ServerConfig;

use crate::cli::ServerArgs;
use crate::error::{CliError, CliResult};

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
    };
    ferry_server::run(config)
        .await
        .map_err(|e| CliError::failed(format!("{e:#}")))
}
