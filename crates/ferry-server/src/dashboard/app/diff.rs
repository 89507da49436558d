//! `/apps/{app}/diff?from=A&to=B`: what changed from one release to another, as `ferry
//! release diff` and the API compare them.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use ferry_api::ReleaseDiff;
use serde::Deserialize;

use crate::dashboard::page::{html, Frame, PageError, Section};
use crate::dashboard::session::Viewer;
use crate::services::releases;
use crate::state::AppState;

/// The two releases compared.
#[derive(Debug, Deserialize)]
pub struct Compared {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

#[derive(Template)]
#[template(path = "app_diff.html")]
struct DiffPage {
    frame: Frame,
    diff: ReleaseDiff,
}

impl DiffPage {
    /// Whether the two releases hold the same tree.
    fn same(&self) -> bool {
        self.diff.added.is_empty() && self.diff.removed.is_empty() && self.diff.modified.is_empty()
    }
}

/// The comparison page.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(app): Path<String>,
    Query(compared): Query<Compared>,
) -> Result<Response, PageError> {
    let diff = releases::diff(&state, &viewer.caller, &app, &compared.from, &compared.to).await?;
    html(&DiffPage {
        frame: Frame::of(&viewer, Section::Overview),
        diff,
    })
}
