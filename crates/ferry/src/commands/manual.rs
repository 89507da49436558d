//! `ferry completions SHELL` and `ferry man --out DIR`: the command-line definition as shell
//! completions and man pages, so both always match the binary.

use std::path::Path;

use crate::cli::Cli;
use crate::error::{CliError, CliResult};
use crate::output::print_out;

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> CliResult {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::definition(), "ferry", &mut script);
    print_out(format_args!("{}", String::from_utf8_lossy(&script)));
    Ok(())
}

/// Writes a man page per command into `out`: `ferry.1`, `ferry-server.1`, ….
pub fn man_pages(out: &Path) -> CliResult {
    let cannot = |e: std::io::Error| {
        CliError::failed(format!(
            "cannot write man pages into {}: {e}",
            out.display()
        ))
    };
    std::fs::create_dir_all(out).map_err(cannot)?;
    let mut written = 0;
    write_pages(&Cli::definition(), "ferry", out, &mut written).map_err(cannot)?;
    println!("{written} man pages written to {}", out.display());
    Ok(())
}

/// Writes the page of `command`, named `name`, and those of its subcommands.
fn write_pages(
    command: &clap::Command,
    name: &str,
    out: &Path,
    written: &mut usize,
) -> std::io::Result<()> {
    let page = command
        .clone()
        .name(name.to_owned())
        .bin_name(name.replace('-', " "));
    let mut roff = Vec::new();
    clap_mangen::Man::new(page).render(&mut roff)?;
    std::fs::write(out.join(format!("{name}.1")), roff)?;
    *written += 1;
    for sub in command.get_subcommands() {
        if sub.get_name() != "help" && !sub.is_hide_set() {
            write_pages(sub, &format!("{name}-{}", sub.get_name()), out, written)?;
        }
    }
    Ok(())
}
