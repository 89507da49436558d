//! `/audit`: the audit trail, filtered by actor, application, action and time, and a button
//! that checks the whole hash chain. The events shown are the API's: one application's for
//! anyone who can see it, every application's for those who may read the whole trail.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use ferry_api::{AuditEvent, AuditVerification};
use ferry_domain::audit_event::AuditKind;
use ferry_domain::permission::Action;
use ferry_store::AuditFilter;
use serde::Deserialize;
use time::macros::format_description;
use time::{Date, Duration};

use super::page::{html, Frame, PageError, Section};
use super::session::Viewer;
use crate::services::{apps, audit};
use crate::state::AppState;

/// Events shown when the form does not say.
const DEFAULT_LIMIT: u32 = 200;

/// The most events one page shows.
const MOST: u32 = 5000;

/// The filters, as the form sends them (an empty field filters nothing).
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    app: String,
    #[serde(default)]
    action: String,
    /// The first day shown (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    since: String,
    /// The last day shown (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    until: String,
    limit: Option<u32>,
    /// Check the whole chain too.
    verify: Option<String>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    frame: Frame,
    filters: Filters,
    /// The applications the viewer may choose from.
    apps: Vec<String>,
    /// Whether the viewer may see every application's events at once.
    whole_trail: bool,
    actions: &'static [AuditKind],
    events: Vec<AuditEvent>,
    limit: u32,
    verification: Option<AuditVerification>,
}

impl AuditPage {
    /// An event's details in one line.
    fn details(&self, event: &AuditEvent) -> String {
        match &event.details {
            serde_json::Value::Object(map) if map.is_empty() => String::new(),
            details => details.to_string(),
        }
    }
}

/// The audit page.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(filters): Query<Filters>,
) -> Result<Response, PageError> {
    let caller = &viewer.caller;
    let whole_trail = caller.may(Action::ReadFullAudit);
    let limit = filters.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MOST);
    let filter = AuditFilter {
        app: given(&filters.app),
        actor: given(&filters.actor),
        action: given(&filters.action),
        since_ms: day(&filters.since, "since")?,
        until_ms: day(&filters.until, "until")?
            .map(|start| start + Duration::days(1).whole_milliseconds() as i64),
        limit: Some(limit),
    };
    let mut events = if filter.app.is_some() || whole_trail {
        audit::events(&state, caller, &filter).await?
    } else {
        Vec::new()
    };
    events.reverse();
    let verification = match filters.verify {
        Some(_) => Some(audit::verify(&state).await?),
        None => None,
    };
    let apps = apps::visible_apps(&state, caller)
        .await?
        .into_iter()
        .map(|app| app.name)
        .collect();
    html(&AuditPage {
        frame: Frame::of(&viewer, Section::Audit),
        filters,
        apps,
        whole_trail,
        actions: AuditKind::ALL,
        events,
        limit,
        verification,
    })
}

/// A filter's value, unless the field was left empty.
fn given(field: &str) -> Option<String> {
    Some(field.trim().to_owned()).filter(|f| !f.is_empty())
}

/// Midnight UTC of a day `YYYY-MM-DD`, in milliseconds.
fn day(field: &str, name: &str) -> Result<Option<i64>, PageError> {
    let Some(field) = given(field) else {
        return Ok(None);
    };
    let date = Date::parse(&field, format_description!("[year]-[month]-[day]")).map_err(|_| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            format!("{name} {field:?} is not a day like 2026-12-01"),
        )
    })?;
    let midnight = date.midnight().assume_utc();
    Ok(Some((midnight.unix_timestamp_nanos() / 1_000_000) as i64))
}
