//! Applications' configuration per environment (`ferry config`): changes make revisions,
//! secrets are sealed with the server's secret key before the store sees them and opened
//! only here, and what leaves names keys and masks secrets unless an admin asks to see
//! them (audited).

use ferry_api::{
    ConfigComparison, ConfigEdit, ConfigEdited, ConfigEntry, ConfigKeyChange,
    ConfigRevisionSummary, ConfigView,
};
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::config::{self as rules, ConfigKey, Fingerprints};
use ferry_domain::config_revision::{self, ConfigChange, Edit, Settings};
use ferry_domain::permission::Action;
use ferry_store::{App, ConfigRevision, StoreError, StoredValue};

use super::apps::visible_app;
use super::{ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::state::AppState;
use crate::views::rfc3339;

/// How often a change is tried again when another change of the same configuration won.
const ATTEMPTS: usize = 5;

/// Applies `edit` to the newest revision of `app`'s configuration in `env`, making the
/// next revision (audited `config.change`); nothing is made when every value is as asked.
/// Deploy level in `env`.
pub async fn edit(
    state: &AppState,
    caller: &Caller,
    app: &str,
    env: &str,
    edit: ConfigEdit,
) -> ServiceResult<ConfigEdited> {
    let app = visible_app(state, caller, app).await?;
    super::pipeline::environment(state, env).await?;
    caller.require(Action::ChangeConfig {
        team: &app.team,
        app: &app.name,
        env,
    })?;
    let edit = parse_edit(edit)?;
    for _ in 0..ATTEMPTS {
        let newest = state.store.config_revision(&app.name, env, None).await?;
        let current = newest_settings(state, newest.as_ref())?;
        let (next, changes) =
            config_revision::apply(&current, &edit).map_err(ServiceError::invalid)?;
        let number = newest.as_ref().map_or(0, |r| r.revision);
        if changes.is_empty() {
            return Ok(edited(&app.name, env, number, false, &changes));
        }
        let revision = ConfigRevision {
            app: app.name.clone(),
            env: env.to_owned(),
            revision: number + 1,
            created_ms: caller.now_ms(),
            author: caller.user.name.clone(),
            entries: (state.secret_key.seal_all(&app.name, &next))
                .map_err(|e| ServiceError::internal(e.to_string()))?,
            changes: changes.clone(),
            sealed_with: next
                .values()
                .any(|s| s.secret)
                .then(|| state.secret_key.id().to_owned()),
        };
        let audit = caller.audit(
            AuditAction::ConfigChange(audit_event::ConfigChange {
                env: env.to_owned(),
                revision: revision.revision,
                changes: changes.clone(),
            }),
            format!("app/{}", app.name),
            Some(&app.name),
        );
        match state.store.save_config_revision(revision, audit).await {
            Ok(saved) => return Ok(edited(&app.name, env, saved.revision, true, &changes)),
            Err(StoreError::Conflict(_)) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ServiceError::conflict(format!(
        "the configuration of {} in {env} kept changing while this change was made: run the command again",
        app.name
    )))
}

/// A revision of `app`'s configuration in `env` (the newest when `revision` is `None`),
/// secrets masked; with `reveal`, an admin sees their values, and that is audited
/// (`config.reveal`) and told to the owning team. View level in `env`.
pub async fn show(
    state: &AppState,
    caller: &Caller,
    app: &str,
    env: &str,
    revision: Option<u64>,
    reveal: bool,
) -> ServiceResult<ConfigView> {
    let app = viewable(state, caller, app, env).await?;
    if reveal {
        caller.require(Action::RevealSecrets {
            team: &app.team,
            app: &app.name,
            env,
        })?;
    }
    let Some(stored) = state
        .store
        .config_revision(&app.name, env, revision)
        .await?
    else {
        return match revision {
            Some(number) => Err(ServiceError::not_found(format!(
                "{} has no configuration revision {number} in {env}: `ferry config history {} --env {env}` lists them",
                app.name, app.name
            ))),
            None => Ok(ConfigView {
                app: app.name,
                env: env.to_owned(),
                revision: 0,
                created: None,
                author: None,
                entries: Vec::new(),
                revealed: reveal,
            }),
        };
    };
    let secrets: Vec<ConfigKey> = (stored.entries.iter())
        .filter(|e| e.value.is_secret())
        .map(|e| e.key.clone())
        .collect();
    let opened = match reveal {
        true => settings(state, &stored)?,
        false => Settings::new(),
    };
    if reveal && !secrets.is_empty() {
        let audit = caller.audit(
            AuditAction::ConfigReveal(audit_event::ConfigReveal {
                env: env.to_owned(),
                revision: stored.revision,
                keys: secrets,
                team: app.team.clone(),
            }),
            format!("app/{}", app.name),
            Some(&app.name),
        );
        state.store.record_reveal(audit).await?;
    }
    let entries = (stored.entries.iter())
        .map(|entry| ConfigEntry {
            key: entry.key.to_string(),
            secret: entry.value.is_secret(),
            value: match &entry.value {
                StoredValue::Plain(value) => Some(value.clone()),
                StoredValue::Sealed(_) => opened.get(&entry.key).map(|s| s.value.clone()),
            },
        })
        .collect();
    Ok(ConfigView {
        app: app.name,
        env: env.to_owned(),
        revision: stored.revision,
        created: Some(rfc3339(stored.created_ms)),
        author: Some(stored.author),
        entries,
        revealed: reveal,
    })
}

/// Every revision of `app`'s configuration in `env`, newest first: who, when, which keys
/// changed and how. View level in `env`.
pub async fn history(
    state: &AppState,
    caller: &Caller,
    app: &str,
    env: &str,
) -> ServiceResult<Vec<ConfigRevisionSummary>> {
    let app = viewable(state, caller, app, env).await?;
    let revisions = state.store.config_history(&app.name, env).await?;
    Ok(revisions
        .into_iter()
        .map(|r| ConfigRevisionSummary {
            revision: r.revision,
            created: rfc3339(r.created_ms),
            author: r.author,
            keys: r.entries.len() as u64,
            changes: r.changes.iter().map(key_change).collect(),
        })
        .collect())
}

/// How `app`'s newest configurations in `first` and `second` differ, by key; secrets are
/// compared opened, and only whether they differ is told. View level in both.
pub async fn compare(
    state: &AppState,
    caller: &Caller,
    app: &str,
    first: &str,
    second: &str,
) -> ServiceResult<ConfigComparison> {
    let app = viewable(state, caller, app, first).await?;
    viewable(state, caller, &app.name, second).await?;
    let a = state.store.config_revision(&app.name, first, None).await?;
    let b = state.store.config_revision(&app.name, second, None).await?;
    let fingerprints = |revision: Option<&ConfigRevision>| -> ServiceResult<Fingerprints> {
        Ok((newest_settings(state, revision)?.into_iter())
            .map(|(key, s)| (key, blake3::hash(s.value.as_bytes()).to_hex().to_string()))
            .collect())
    };
    let (fa, fb) = (fingerprints(a.as_ref())?, fingerprints(b.as_ref())?);
    let found = rules::diff(&fa, &fb);
    let names = |keys: Vec<ConfigKey>| keys.into_iter().map(|k| k.to_string()).collect();
    Ok(ConfigComparison {
        app: app.name,
        first: first.to_owned(),
        second: second.to_owned(),
        first_revision: a.map_or(0, |r| r.revision),
        second_revision: b.map_or(0, |r| r.revision),
        only_in_first: names(found.only_in_first),
        only_in_second: names(found.only_in_second),
        differ: names(found.differ),
        same: names(found.same),
    })
}

/// Every key of `revision` with its value in clear: secrets opened with the server's key.
/// A secret that does not open is the server's problem (another key, a changed row), said
/// without any of its bytes.
pub fn settings(state: &AppState, revision: &ConfigRevision) -> ServiceResult<Settings> {
    (state.secret_key.open_all(revision)).map_err(ServiceError::internal)
}

/// The settings of the newest revision, `revision`: none when there is none yet.
fn newest_settings(state: &AppState, revision: Option<&ConfigRevision>) -> ServiceResult<Settings> {
    Ok(revision
        .map(|revision| settings(state, revision))
        .transpose()?
        .unwrap_or_default())
}

/// The application, if the caller may see its configuration in `env`.
async fn viewable(state: &AppState, caller: &Caller, app: &str, env: &str) -> ServiceResult<App> {
    let app = visible_app(state, caller, app).await?;
    super::pipeline::environment(state, env).await?;
    caller.require(Action::ViewConfig {
        team: &app.team,
        app: &app.name,
        env,
    })?;
    Ok(app)
}

/// The request's keys checked; an error names the key, never a value.
fn parse_edit(edit: ConfigEdit) -> ServiceResult<Edit> {
    let key = |text: &str| ConfigKey::parse(text).map_err(ServiceError::invalid);
    let set = (edit.set.into_iter())
        .map(|a| Ok((key(&a.key)?, a.value)))
        .collect::<ServiceResult<Vec<_>>>()?;
    let unset = (edit.unset.iter())
        .map(|k| key(k))
        .collect::<ServiceResult<Vec<_>>>()?;
    if set.is_empty() && unset.is_empty() {
        return Err(ServiceError::bad_request(
            "nothing to change: give KEY=VALUE to set, or keys to unset",
        ));
    }
    Ok(Edit {
        set,
        secret: edit.secret,
        unset,
    })
}

fn key_change(change: &ConfigChange) -> ConfigKeyChange {
    ConfigKeyChange {
        key: change.key.to_string(),
        change: change.change,
        secret: change.secret,
    }
}

fn edited(
    app: &str,
    env: &str,
    revision: u64,
    changed: bool,
    changes: &[ConfigChange],
) -> ConfigEdited {
    ConfigEdited {
        app: app.to_owned(),
        env: env.to_owned(),
        revision,
        changed,
        changes: changes.iter().map(key_change).collect(),
    }
}
