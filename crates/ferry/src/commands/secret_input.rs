//! Secrets typed or piped in (a configuration secret, a password): at a terminal without
//! echo, otherwise everything on standard input without one final newline; never from the
//! command line, where the shell's history and the process list would keep them.

use std::io::{IsTerminal, Read};

use crate::error::{CliError, CliResult};

/// Whether a secret typed at a terminal is asked for twice (a password nobody could read
/// back), or once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirm {
    Once,
    Twice,
}

/// Reads `what` (like `the value of API_KEY`), refused when empty: a failed
/// `cat key.txt | …`, an empty variable echoed or Enter alone is no secret. `if_empty` says
/// what to do instead.
pub fn read_secret(what: &str, if_empty: &str, confirm: Confirm) -> CliResult<String> {
    let stdin = std::io::stdin();
    let value = match stdin.is_terminal() {
        true => {
            let value = prompt(&format!("{what} (not shown), then Enter: "))?;
            if confirm == Confirm::Twice && prompt(&format!("{what} again: "))? != value {
                return Err(CliError::usage(format!(
                    "{what} was typed differently twice: nothing was changed; try again"
                )));
            }
            value
        }
        false => {
            let mut value = String::new();
            stdin.lock().read_to_string(&mut value).map_err(|e| {
                CliError::failed(format!("reading {what} from standard input: {e}"))
            })?;
            let value = value.strip_suffix('\n').unwrap_or(&value);
            value.strip_suffix('\r').unwrap_or(value).to_owned()
        }
    };
    if value.is_empty() {
        return Err(CliError::usage(format!(
            "{what} is empty (one final newline is dropped): pipe or type it, or {if_empty}"
        )));
    }
    Ok(value)
}

/// Asks with `question` on stderr and reads one line from the terminal without echo.
fn prompt(question: &str) -> CliResult<String> {
    eprint!("{question}");
    let line = without_echo(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .map_err(|e| CliError::failed(format!("reading from the terminal: {e}")))?;
    eprintln!();
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Runs `read` with the terminal's echo off, and puts it back after.
fn without_echo<T>(read: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = std::io::stdin();
    let before = tcgetattr(&stdin)?;
    let mut quiet = before.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
    let read = read();
    tcsetattr(&stdin, OptionalActions::Now, &before)?;
    read
}
