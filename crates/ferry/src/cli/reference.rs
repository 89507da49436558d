//! `docs/cli.md`, the command-line reference, made from the command-line definition so it
//! cannot drift from it: the test fails when the file is stale, and
//! `FERRY_WRITE_DOCS=1 cargo test -p ferry --bin ferry reference` writes it again.

use std::path::PathBuf;

/// The reference as Markdown: each command's whole help, in the order `ferry help` lists
/// them.
fn render() -> String {
    // The same text whatever the terminal and the environment of whoever renders it.
    let mut root = super::Cli::definition().term_width(100).max_term_width(100);
    let mut out = String::from(
        "# Command-line reference\n\n\
         Every `ferry` command with its arguments and flags, as `ferry help COMMAND` prints \
         them. Generated from the command-line definition; do not edit by hand (see \
         `crates/ferry/src/cli/reference.rs`).\n\n\
         Exit codes: 0 done; 1 failed (a thing that does not exist, the server unreachable, \
         a deployment that did not succeed with `--wait`); 2 the command line is wrong; 3 \
         refused, nothing changed (permission, policy, invalid input).\n",
    );
    render_command(&mut root, &mut out);
    out
}

fn render_command(command: &mut clap::Command, out: &mut String) {
    let name = command
        .get_bin_name()
        .unwrap_or(command.get_name())
        .to_owned();
    let mut shown = std::mem::replace(command, clap::Command::new("rendering"))
        .mut_args(|arg| arg.hide_env_values(true));
    let help = shown.render_long_help().to_string();
    *command = shown;
    out.push_str(&format!(
        "\n## `{name}`\n\n```text\n{}\n```\n",
        help.trim_end()
    ));
    for sub in command.get_subcommands_mut() {
        if sub.get_name() != "help" && !sub.is_hide_set() {
            render_command(sub, out);
        }
    }
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md")
}

#[test]
fn docs_cli_md_is_the_command_line_definition() {
    let rendered = render();
    if std::env::var_os("FERRY_WRITE_DOCS").is_some() {
        std::fs::write(path(), &rendered).unwrap();
    }
    let written = std::fs::read_to_string(path()).unwrap_or_default();
    assert!(
        written == rendered,
        "docs/cli.md is stale: run `FERRY_WRITE_DOCS=1 cargo test -p ferry --bin ferry reference`"
    );
}
