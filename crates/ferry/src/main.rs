//! `ferry`: the server and the command-line client in one binary. This crate is glue: the
//! command-line definition, one module per command group, and the mapping of failures to
//! exit codes (docs/cli.md) in one place.

/// Every line for people and every JSON document goes to stdout through here, not through
/// the standard `println!`, which panics when the reader went away
/// (`ferry audit --json | head`): see [`output::print_out`].
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::output::print_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod cli;
mod client;
mod commands;
mod config;
mod error;
mod output;
mod watch;

use std::process::ExitCode;

use crate::cli::Cli;
use crate::output::Output;

fn main() -> ExitCode {
    let cli = Cli::from_process();
    let output = Output {
        json: cli.global.json,
    };
    if cli.command.runs_a_server() {
        ferry_server::allocator::share_few_arenas();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli, output)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            output.error(&error);
            ExitCode::from(error.exit_code())
        }
    }
}
