//! `ferry`: the server and the command-line client in one binary. This crate is glue: the
//! command-line definition, one module per command group, and the mapping of failures to
//! exit codes (docs/cli.md) in one place.

mod cli;
mod client;
mod commands;
mod config;
mod error;
mod output;

use std::process::ExitCode;

use crate::cli::Cli;
use crate::output::Output;

fn main() -> ExitCode {
    let cli = Cli::from_process();
    if cli.command.is_client() {
        end_quietly_when_the_reader_goes();
    }
    let output = Output {
        json: cli.global.json,
    };
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

/// A client whose reader stops early (`ferry audit --json | head`) ends quietly, as Unix
/// tools do, instead of panicking on the closed stdout: Rust ignores SIGPIPE, so writing to
/// a closed pipe would fail every later `println!`. Only for client commands: the server and
/// the agent keep ignoring it, their sockets and hooks' pipes reporting errors instead.
fn end_quietly_when_the_reader_goes() {
    // SAFETY: called first thing in `main`, before any other thread exists, with the
    // default disposition, which holds no pointer.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
