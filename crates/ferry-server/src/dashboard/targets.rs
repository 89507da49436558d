//! `/targets`: every target, its health and when its agent was last heard from, and per
//! application the viewer may see what it runs there (version, configuration revision,
//! state) and how many of its files were changed by hand. Built from the targets and the
//! status document (one read of what targets report and of drift, kept between changes),
//! never a read per target.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use ferry_domain::deployment::TargetAppState;
use ferry_domain::liveness::Health;

use super::overview::served;
use super::page::{html, Frame, PageError, Section};
use super::session::Viewer;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "targets.html")]
struct TargetsPage {
    frame: Frame,
    targets: Vec<TargetRow>,
}

/// One target.
struct TargetRow {
    name: String,
    env: String,
    health: Health,
    /// "last seen 2026-12-05 10:20:03 UTC (12s ago)", or never seen.
    last_seen: String,
    apps: Vec<TargetAppRow>,
}

/// One application on a target.
struct TargetAppRow {
    app: String,
    /// `1.2.0`, or `1.2.0 @3` with configuration revision 3; none before its first report.
    served: Option<String>,
    state: TargetAppState,
    /// Paths changed by hand on the release it runs now, when any.
    drifted_paths: Option<u64>,
    /// Since when, for the badge's title.
    drift_since: String,
}

impl TargetRow {
    /// The health's words: "online", "offline", "not enrolled".
    fn health_words(&self) -> String {
        self.health.as_str().replace('_', " ")
    }
}

/// The targets page.
pub async fn page(State(state): State<AppState>, viewer: Viewer) -> Result<Response, PageError> {
    let caller = &viewer.caller;
    let (targets, pipeline, visible) = tokio::try_join!(
        async { Ok::<_, PageError>(state.store.list_targets().await?) },
        async { Ok(state.store.list_environments().await?) },
        async { Ok(state.status.visible(&*state.store, caller).await?) },
    )?;
    let mut apps: HashMap<&str, Vec<TargetAppRow>> = HashMap::new();
    for (_, status) in &visible {
        for env in &status.environments {
            for target in &env.targets {
                apps.entry(&target.target).or_default().push(TargetAppRow {
                    app: status.app.clone(),
                    served: target.version.as_ref().map(|v| served(v, target.config)),
                    state: target.state,
                    drifted_paths: target.drift.as_ref().map(|d| d.paths),
                    drift_since: target
                        .drift
                        .as_ref()
                        .map(|d| d.since.clone())
                        .unwrap_or_default(),
                });
            }
        }
    }
    let place = |env: &str| pipeline.iter().position(|e| e.name == env);
    let now_ms = caller.now_ms();
    let mut rows: Vec<TargetRow> = targets
        .iter()
        .map(|t| TargetRow {
            name: t.name.clone(),
            env: t.env.clone(),
            health: state.liveness.health(t.enrolled_ms, t.last_seen_ms, now_ms),
            last_seen: state.liveness.last_seen(t.last_seen_ms, now_ms),
            apps: apps.remove(t.name.as_str()).unwrap_or_default(),
        })
        .collect();
    rows.sort_by(|a, b| (place(&a.env), &a.env, &a.name).cmp(&(place(&b.env), &b.env, &b.name)));
    html(&TargetsPage {
        frame: Frame::of(&viewer, Section::Targets),
        targets: rows,
    })
}
