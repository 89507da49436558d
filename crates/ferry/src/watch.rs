//! `--watch`: a view drawn again every interval until it says it is done or the user stops
//! it (Ctrl-C), on a cleared screen at a terminal, one view after another otherwise.

use std::future::Future;
use std::io::IsTerminal;
use std::time::Duration;

use crate::error::{CliError, CliResult};
use crate::output::{print_out, Output};

/// The interval `--watch` takes without one.
pub const DEFAULT_EVERY: &str = "2s";

/// Draws `view` every `every` until it answers `true` (done).
pub async fn watch<F, Fut>(output: Output, every: Duration, what: &str, mut view: F) -> CliResult
where
    F: FnMut() -> Fut,
    Fut: Future<Output = CliResult<bool>>,
{
    if output.json {
        return Err(CliError::usage(
            "--watch draws a view again and again; with --json print one document: leave out one of them",
        ));
    }
    let every = every.max(Duration::from_millis(200));
    let terminal = std::io::stdout().is_terminal();
    loop {
        if terminal {
            // Home, then clear the screen: the new view replaces the last.
            print_out(format_args!("\x1b[H\x1b[2J"));
        }
        let now = time::OffsetDateTime::now_utc();
        print_out(format_args!(
            "every {}: {what}   {:02}:{:02}:{:02} UTC\n\n",
            ferry_domain::duration::format_duration(every),
            now.hour(),
            now.minute(),
            now.second()
        ));
        if view().await? {
            return Ok(());
        }
        tokio::time::sleep(every).await;
    }
}
