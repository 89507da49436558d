//! The switch: `current` is replaced by one atomic `rename` of a new symlink over it, so
//! at every instant it points at the old release or the new one, never at nothing.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::symlink;

use crate::error::{AgentError, AgentResult};
use crate::failpoint::failpoint;
use crate::fsutil::fsync_dir;
use crate::layout::{AppLayout, Installed};

/// Points `current` at `releases/VERSION[@N]`, which must be on disk.
pub fn switch_to(layout: &AppLayout, version: &Installed) -> AgentResult<()> {
    version.check()?;
    if !layout.has_release(version) {
        return Err(AgentError::Refused(format!(
            "release {version} of {} is not on this target",
            layout.app()
        )));
    }
    let app_dir = layout.app_dir();
    remove_stale_links(layout)?;
    let temp = app_dir.join(format!("current.tmp-{}", std::process::id()));
    failpoint("switch.before_symlink");
    symlink(AppLayout::current_target(version), &temp).map_err(|e| AgentError::io(&temp, e))?;
    failpoint("switch.before_rename");
    let current = layout.current_link();
    fs::rename(&temp, &current).map_err(|e| AgentError::io(&current, e))?;
    fsync_dir(&app_dir)?;
    failpoint("switch.after_rename");
    Ok(())
}

/// Returns `current` to `previous`, or removes it when there was no previous release (the
/// application was not served before the deploy, and is not after).
pub fn switch_back(layout: &AppLayout, previous: Option<&Installed>) -> AgentResult<()> {
    match previous {
        Some(version) => switch_to(layout, version),
        None => {
            let current = layout.current_link();
            failpoint("switch.before_remove");
            match fs::remove_file(&current) {
                Ok(()) => fsync_dir(&layout.app_dir()),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(e) => Err(AgentError::io(&current, e)),
            }
        }
    }
}

/// Removes `current.tmp-*` symlinks that crashed switches left behind.
fn remove_stale_links(layout: &AppLayout) -> AgentResult<()> {
    let app_dir = layout.app_dir();
    for entry in fs::read_dir(&app_dir).map_err(|e| AgentError::io(&app_dir, e))? {
        let entry = entry.map_err(|e| AgentError::io(&app_dir, e))?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("current.tmp-")
        {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| AgentError::io(&path, e))?;
        }
    }
    Ok(())
}
