// The store traits, implemented once for both backends: each backend's `lib.rs` includes
// this file with `crate::Backend` naming its store, which provides `write` (a write
// transaction, serialised with every other), `read` (a connection for reads), `unlocked`
// (a connection for one-statement writes), `snapshot` (a read transaction at one moment)
// and `hold` (content held against garbage collection). What this file names, the backend's
// `lib.rs` may use too.

use async_trait::async_trait;
use ferry_domain::audit::AuditRecord;
use ferry_domain::backport::ObligationStatus;
use ferry_domain::deployment::Status;
use ferry_domain::incident::IncidentStatus;
use ferry_domain::permission::{Level, Role};
use ferry_domain::pipeline::Environment;
use ferry_domain::routing::RoutingRule;
use ferry_domain::run_as::RunAs;
use ferry_store::prelude::*;
use ferry_store::{
    AgentBuild, AppBackup, BackupSchedule, ConfigRevision, NewAppBackup,
};
use ferry_store::{
    App, AppGrant, ApprovalRecord, AuditChain, AuditEvent, AuditFilter, BacklogItem, Backport,
    BadVersion, Bootstrap, Captured, ContentHold, DeploymentRecord, DeploymentUpdate, DesiredChange,
    EnvironmentChange, FreezeWindowRecord, HeldContent, IncidentRecord, IncidentUpdate, NewApp,
    NewCapture, NewRelease, NewSession, NewUser, OneOffFreezeRecord, Release, ReleaseOutcome, StoreError, StoreResult,
    Target, TargetApp, TargetDrift, TargetReport, Team, TeamSupport, TokenHolder, UnauditedWrites, User,
};

/// Runs a change in one write transaction and appends its audit record to the chain in the
/// same transaction: `audited!(store, record, |tx| change(&mut tx).await?)` gives
/// `Ok(value of the change)` once both are committed.
macro_rules! audited {
    ($store:expr, $record:expr, |$tx:ident| $change:expr) => {{
        let mut $tx = $store.write().await?;
        let value = $change;
        audit::append(&mut $tx, &$store.audit_key, $record).await?;
        $tx.commit().await.map_err(backend)?;
        Ok(value)
    }};
}

/// Wraps a database failure that is not the caller's fault.
pub(crate) fn backend(error: sqlx::Error) -> StoreError {
    // SQLite's BUSY and LOCKED (and their extended codes): another process holds the file.
    let locked = error.as_database_error().is_some_and(|e| {
        let code = e.code().and_then(|code| code.parse::<i32>().ok());
        code.is_some_and(|code| matches!(code & 0xff, 5 | 6)) && e.message().contains("locked")
    });
    if locked {
        return StoreError::Locked(format!(
            "the database stayed locked by another process ({error}): nothing was changed; \
             make sure only ferry servers open it, then try again"
        ));
    }
    StoreError::Backend(error.to_string())
}

/// A stored row ferry cannot read (`row` names it, `why` says what is wrong): an error,
/// never a panic or a default, so a damaged or drifted database is noticed.
pub(crate) fn unreadable(row: impl std::fmt::Display, why: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{row} is unreadable: {why}"))
}

/// A stored integer as the record's narrower type; one out of its range is refused rather
/// than wrapped around.
pub(crate) fn narrow<T: TryFrom<i64>>(column: &str, value: i64) -> Result<T, String> {
    T::try_from(value).map_err(|_| format!("{column} {value} is out of range"))
}

/// Maps a unique-constraint violation to "already exists", anything else to a backend error.
pub(crate) fn unique(kind: &'static str, name: &str) -> impl FnOnce(sqlx::Error) -> StoreError {
    let name = name.to_owned();
    move |error| match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::AlreadyExists { kind, name }
        }
        _ => backend(error),
    }
}

/// `record` with its details' `backports_done` set to the obligations the release really
/// closed, so the trail never names one that was closed otherwise meanwhile.
fn with_backports_done(record: AuditRecord, done: &[i64]) -> AuditRecord {
    let mut details: serde_json::Value =
        serde_json::from_str(&record.details).unwrap_or_else(|_| serde_json::json!({}));
    details["backports_done"] = serde_json::json!(done);
    AuditRecord {
        details: details.to_string(),
        ..record
    }
}

/// `record` with its details' `task` set to the task's number, known once it is stored.
fn with_task(record: AuditRecord, task: i64) -> AuditRecord {
    let mut details: serde_json::Value =
        serde_json::from_str(&record.details).unwrap_or_else(|_| serde_json::json!({}));
    if details.get("task").is_some() {
        details["task"] = serde_json::json!(task);
    }
    AuditRecord {
        details: details.to_string(),
        ..record
    }
}

pub(crate) fn not_found(kind: &'static str, name: &str) -> StoreError {
    StoreError::NotFound {
        kind,
        name: name.to_owned(),
    }
}

/// The writes without an audit event; `UnauditedWrites` says why each needs none.
#[async_trait]
impl UnauditedWrites for Backend {
    async fn touch_targets(&self, heard: &[(String, i64)]) -> StoreResult<()> {
        // A write transaction: on PostgreSQL its lock keeps it from deadlocking with a
        // write that changes the same targets' rows in another order.
        let mut tx = self.write().await?;
        targets::touch(&mut tx, heard).await?;
        tx.commit().await.map_err(backend)
    }

    async fn record_agent_build(&self, target: &str, build: &AgentBuild) -> StoreResult<()> {
        // One row, one statement: no order to deadlock on.
        let mut conn = self.unlocked().await?;
        targets::record_agent_build(&mut conn, target, build).await
    }

    async fn report_target_app(&self, report: TargetReport) -> StoreResult<()> {
        // A write transaction: a report can bump the status revision, which writers change.
        let mut tx = self.write().await?;
        targets::report(&mut tx, &report).await?;
        tx.commit().await.map_err(backend)
    }

    async fn record_target_progress(
        &self,
        report: TargetReport,
        deployment_id: i64,
        revision: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM deployments WHERE id = $1")
                .bind(deployment_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        if current != Some(revision) {
            return Ok(false);
        }
        targets::report(&mut tx, &report).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn record_deployment_progress(&self, update: DeploymentUpdate<'_>) -> StoreResult<()> {
        let mut tx = self.write().await?;
        deployments::save(&mut tx, &update).await?;
        tx.commit().await.map_err(backend)
    }

    async fn record_step_logs(
        &self,
        deployment_id: i64,
        target: &str,
        version: &str,
        logs: Vec<ferry_domain::step_log::StepLog>,
        at_ms: i64,
    ) -> StoreResult<()> {
        if logs.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        step_logs::replace(&mut tx, deployment_id, target, version, &logs, at_ms).await?;
        tx.commit().await.map_err(backend)
    }

    async fn record_drift(
        &self,
        report: ferry_store::DriftReport,
        detected: AuditRecord,
    ) -> StoreResult<bool> {
        // A write transaction: new findings bump the status revision, which writers change.
        let mut tx = self.write().await?;
        let first = drift::record(&mut tx, &report).await?;
        if first {
            audit::append(&mut tx, &self.audit_key, detected).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(first)
    }

    async fn claim_secret_key(&self, key_id: &str) -> StoreResult<String> {
        let mut tx = self.write().await?;
        let claimed = configuration::claim_secret_key(&mut tx, key_id).await?;
        tx.commit().await.map_err(backend)?;
        Ok(claimed)
    }

    async fn finish_task(&self, outcome: ferry_store::TaskOutcome) -> StoreResult<ferry_store::TaskRecord> {
        let mut tx = self.write().await?;
        let task = tasks::finish(&mut tx, &outcome).await?;
        tx.commit().await.map_err(backend)?;
        Ok(task)
    }

    async fn notification_cursor(&self) -> StoreResult<i64> {
        notifications::cursor(&mut *self.unlocked().await?).await
    }

    async fn advance_notifications(
        &self,
        from: i64,
        to: i64,
        deliveries: Vec<ferry_store::NewDelivery>,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        notifications::move_cursor(&mut tx, from, to).await?;
        for delivery in &deliveries {
            notifications::insert_delivery(&mut tx, delivery).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn claim_due_deliveries(
        &self,
        due: ferry_store::DueDeliveries,
        limit: u32,
    ) -> StoreResult<Vec<ferry_store::DeliveryRecord>> {
        // The notifier asks twice a second: a read answers "nothing due" without a write.
        if !notifications::any_due(&mut *self.read().await?, due).await? {
            return Ok(Vec::new());
        }
        // One statement (with row locks on PostgreSQL), not a write transaction.
        notifications::claim_due(&mut *self.unlocked().await?, due, limit).await
    }

    async fn record_attempt(
        &self,
        id: i64,
        at_ms: i64,
        attempt: ferry_store::Attempt,
    ) -> StoreResult<ferry_store::DeliveryRecord> {
        let mut tx = self.write().await?;
        let delivery = notifications::record_attempt(&mut tx, id, at_ms, &attempt).await?;
        tx.commit().await.map_err(backend)?;
        Ok(delivery)
    }
}

#[async_trait]
impl Access for Backend {
    async fn bootstrap(&self, bootstrap: Bootstrap, record: AuditRecord) -> StoreResult<bool> {
        audited!(self, record, |tx| {
            let n_users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
            if n_users > 0 {
                return Ok(false);
            }
            pipeline::insert_defaults(&mut tx, &bootstrap.environments, &bootstrap.roles).await?;
            access::insert_user(&mut tx, &bootstrap.admin).await?;
            true
        })
    }

    async fn user_by_token(&self, token_hash: &str) -> StoreResult<Option<TokenHolder>> {
        let mut conn = self.read().await?;
        let Some(user) = access::user_by_token(&mut conn, token_hash).await? else {
            return Ok(None);
        };
        let roles = pipeline::list_roles(&mut conn).await?;
        Ok(Some(TokenHolder { user, roles }))
    }

    async fn create_session(&self, session: NewSession, record: AuditRecord) -> StoreResult<()> {
        audited!(self, record, |tx| access::create_session(&mut tx, &session).await?)
    }

    async fn user_by_session(&self, hash: &str, now_ms: i64) -> StoreResult<Option<TokenHolder>> {
        let mut conn = self.read().await?;
        let Some(user) = access::user_by_session(&mut conn, hash, now_ms).await? else {
            return Ok(None);
        };
        let roles = pipeline::list_roles(&mut conn).await?;
        Ok(Some(TokenHolder { user, roles }))
    }

    async fn end_session(&self, hash: &str, record: AuditRecord) -> StoreResult<()> {
        audited!(self, record, |tx| access::end_session(&mut tx, hash).await?)
    }

    async fn create_user(&self, user: NewUser, record: AuditRecord) -> StoreResult<User> {
        audited!(self, record, |tx| {
            access::insert_user(&mut tx, &user).await?;
            access::user(&mut tx, &user.name).await?
        })
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        access::list_users(&mut *self.read().await?).await
    }

    async fn set_password_hash(
        &self,
        user: &str,
        password_hash: &str,
        record: AuditRecord,
    ) -> StoreResult<()> {
        audited!(self, record, |tx| access::set_password_hash(
            &mut tx,
            user,
            password_hash
        )
        .await?)
    }

    async fn password_hash(&self, user: &str) -> StoreResult<Option<String>> {
        access::password_hash(&mut *self.read().await?, user).await
    }

    async fn rotate_token(
        &self,
        user: &str,
        token_hash: &str,
        now_ms: i64,
        record: AuditRecord,
    ) -> StoreResult<()> {
        audited!(self, record, |tx| access::rotate_token(
            &mut tx, user, token_hash, now_ms
        )
        .await?)
    }

    async fn set_user_disabled(
        &self,
        user: &str,
        disabled_ms: Option<i64>,
        admin_roles: &[String],
        record: AuditRecord,
    ) -> StoreResult<User> {
        audited!(self, record, |tx| {
            access::set_disabled(&mut tx, user, disabled_ms, admin_roles).await?;
            access::user(&mut tx, user).await?
        })
    }

    async fn create_team(&self, name: &str, record: AuditRecord) -> StoreResult<Team> {
        audited!(self, record, |tx| access::insert_team(
            &mut tx,
            name,
            record.at_ms
        )
        .await?)
    }

    async fn list_teams(&self) -> StoreResult<Vec<Team>> {
        access::list_teams(&mut *self.read().await?).await
    }

    async fn list_roles(&self) -> StoreResult<Vec<Role>> {
        pipeline::list_roles(&mut *self.read().await?).await
    }

    async fn set_role_level(
        &self,
        role: &str,
        env: &str,
        level: Level,
        record: AuditRecord,
    ) -> StoreResult<Role> {
        let mut tx = self.write().await?;
        pipeline::set_role_level(&mut tx, role, env, level).await?;
        audit::append(&mut tx, &self.audit_key, record).await?;
        let roles = pipeline::list_roles(&mut tx).await?;
        tx.commit().await.map_err(backend)?;
        roles
            .into_iter()
            .find(|r| r.name == role)
            .ok_or_else(|| not_found("role", role))
    }

    async fn app_grants(&self, app: &str) -> StoreResult<Vec<AppGrant>> {
        access::app_grants(&mut *self.read().await?, app).await
    }

    async fn set_app_grant(&self, grant: AppGrant, record: AuditRecord) -> StoreResult<()> {
        audited!(self, record, |tx| {
            access::set_app_grant(&mut tx, &grant).await?;
        })
    }

    async fn set_membership(
        &self,
        team: &str,
        user: &str,
        role: Option<&str>,
        remove: bool,
        record: AuditRecord,
    ) -> StoreResult<()> {
        audited!(self, record, |tx| access::set_membership(
            &mut tx, team, user, role, remove
        )
        .await?)
    }
}

#[async_trait]
impl Pipeline for Backend {
    async fn list_environments(&self) -> StoreResult<Vec<Environment>> {
        pipeline::list_environments(&mut *self.read().await?).await
    }

    async fn create_environment(
        &self,
        name: &str,
        after: Option<&str>,
        record: AuditRecord,
    ) -> StoreResult<Environment> {
        audited!(self, record, |tx| pipeline::insert_environment(
            &mut tx, name, after
        )
        .await?)
    }

    async fn delete_environment(&self, name: &str, record: AuditRecord) -> StoreResult<()> {
        audited!(self, record, |tx| pipeline::delete_environment(
            &mut tx, name
        )
        .await?)
    }

    async fn rename_environment(
        &self,
        old: &str,
        new: &str,
        record: AuditRecord,
    ) -> StoreResult<Environment> {
        audited!(self, record, |tx| pipeline::rename_environment(
            &mut tx, old, new
        )
        .await?)
    }

    async fn change_environment(
        &self,
        name: &str,
        change: EnvironmentChange,
    ) -> StoreResult<Environment> {
        let mut tx = self.write().await?;
        let mut env = pipeline::environment(&mut tx, name).await?;
        if let Some((policy, record)) = change.policy {
            env = pipeline::change_policy(&mut tx, name, policy).await?;
            audit::append(&mut tx, &self.audit_key, record).await?;
        }
        for (expression, record) in change.unfreeze {
            policy::remove_freeze_window(&mut tx, name, &expression).await?;
            audit::append(&mut tx, &self.audit_key, record).await?;
        }
        for (window, record) in change.freeze {
            policy::add_freeze_window(&mut tx, &window).await?;
            audit::append(&mut tx, &self.audit_key, record).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(env)
    }

    async fn freeze_windows(&self, env: Option<&str>) -> StoreResult<Vec<FreezeWindowRecord>> {
        policy::freeze_windows(&mut *self.read().await?, env).await
    }

    async fn freeze_now(
        &self,
        freeze: OneOffFreezeRecord,
        replacing: Option<i64>,
        record: AuditRecord,
    ) -> StoreResult<()> {
        audited!(self, record, |tx| policy::put_one_off_freeze(
            &mut tx, &freeze, replacing
        )
        .await?)
    }

    async fn end_freeze(&self, env: &str, until_ms: i64, record: AuditRecord) -> StoreResult<()> {
        audited!(self, record, |tx| policy::end_one_off_freeze(
            &mut tx, env, until_ms
        )
        .await?)
    }

    async fn one_off_freezes(&self, env: Option<&str>) -> StoreResult<Vec<OneOffFreezeRecord>> {
        policy::one_off_freezes(&mut *self.read().await?, env).await
    }
}

#[async_trait]
impl Catalog for Backend {
    async fn create_app(&self, app: NewApp, record: AuditRecord) -> StoreResult<App> {
        audited!(self, record, |tx| {
            apps::insert(&mut tx, &app).await?;
            apps::by_name(&mut tx, &app.name)
                .await?
                .ok_or_else(|| not_found("application", &app.name))?
        })
    }

    async fn list_apps(&self) -> StoreResult<Vec<App>> {
        apps::list(&mut *self.read().await?).await
    }

    async fn app(&self, name: &str) -> StoreResult<Option<App>> {
        apps::by_name(&mut *self.read().await?, name).await
    }

    async fn set_keep(&self, app: &str, keep: u32, record: AuditRecord) -> StoreResult<()> {
        audited!(self, record, |tx| apps::set_keep(&mut tx, app, keep)
            .await?)
    }

    async fn set_run_as(
        &self,
        app: &str,
        user: Option<&RunAs>,
        record: AuditRecord,
    ) -> StoreResult<()> {
        audited!(self, record, |tx| apps::set_run_as(&mut tx, app, user)
            .await?)
    }

    async fn set_maintainer(
        &self,
        app: &str,
        team: Option<&str>,
        record: AuditRecord,
    ) -> StoreResult<()> {
        audited!(self, record, |tx| apps::set_maintainer(&mut tx, app, team)
            .await?)
    }

    async fn create_release(
        &self,
        release: NewRelease,
        record: AuditRecord,
    ) -> StoreResult<ReleaseOutcome> {
        let mut tx = self.write().await?;
        if let Some(existing) = releases::insert(&mut tx, &release).await? {
            return Ok(existing);
        }
        let new = &release.release;
        support::close_backlog_items(
            &mut tx,
            &new.app,
            &release.closes,
            &new.version,
            new.created_ms,
        )
        .await?;
        // Judged before this transaction: one waived (or done) meanwhile is left as it is.
        let by = format!("release {}", new.version);
        let mut done = Vec::new();
        for id in &release.fulfils {
            if support::close_backport_if_open(
                &mut tx,
                *id,
                ObligationStatus::Done,
                &by,
                None,
                new.created_ms,
            )
            .await?
            {
                done.push(*id);
            }
        }
        let record = if done == release.fulfils {
            record
        } else {
            with_backports_done(record, &done)
        };
        audit::append(&mut tx, &self.audit_key, record).await?;
        tx.commit().await.map_err(backend)?;
        Ok(ReleaseOutcome::Created {
            release: release.release,
            backports_done: done,
        })
    }

    async fn list_releases(&self, app: &str) -> StoreResult<Vec<Release>> {
        releases::list(&mut *self.read().await?, app).await
    }

    async fn release(&self, app: &str, version: &str) -> StoreResult<Option<Release>> {
        releases::by_version(&mut *self.read().await?, app, version).await
    }

    async fn delete_releases(
        &self,
        app: &str,
        releases: Vec<(String, Vec<String>)>,
        record: AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        releases::delete(&mut tx, app, &releases).await?;
        audit::append(&mut tx, &self.audit_key, record).await?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn referenced_blobs(&self) -> StoreResult<std::collections::HashSet<String>> {
        releases::referenced_blobs(&mut *self.read().await?).await
    }

    async fn hold_content(&self, hold: ContentHold) -> StoreResult<HeldContent> {
        self.hold(hold).await
    }
}

#[async_trait]
impl Configuration for Backend {
    async fn save_config_revision(
        &self,
        revision: ConfigRevision,
        record: AuditRecord,
    ) -> StoreResult<ConfigRevision> {
        audited!(self, record, |tx| configuration::insert(&mut tx, &revision).await?)
    }

    async fn config_revision(
        &self,
        app: &str,
        env: &str,
        revision: Option<u64>,
    ) -> StoreResult<Option<ConfigRevision>> {
        configuration::by_revision(&mut *self.read().await?, app, env, revision).await
    }

    async fn config_history(&self, app: &str, env: &str) -> StoreResult<Vec<ConfigRevision>> {
        configuration::history(&mut *self.read().await?, app, env).await
    }

    async fn record_reveal(&self, record: AuditRecord) -> StoreResult<()> {
        audited!(self, record, |tx| ())
    }

    async fn sealed_config_revisions(&self) -> StoreResult<Vec<ConfigRevision>> {
        configuration::sealed(&mut *self.read().await?).await
    }

    async fn secret_key_id(&self) -> StoreResult<Option<String>> {
        configuration::secret_key_id(&mut *self.read().await?).await
    }

    async fn reseal_config(
        &self,
        previous_key: &str,
        key_id: &str,
        revisions: Vec<ConfigRevision>,
        record: AuditRecord,
    ) -> StoreResult<()> {
        audited!(self, record, |tx| configuration::reseal(
            &mut tx,
            (previous_key, key_id),
            &revisions
        )
        .await?)
    }
}

#[async_trait]
impl AppBackups for Backend {
    async fn create_app_backup(
        &self,
        backup: NewAppBackup,
        record: AuditRecord,
    ) -> StoreResult<AppBackup> {
        let mut tx = self.write().await?;
        let backup = app_backups::insert(&mut tx, &backup).await?;
        audit::append(
            &mut tx,
            &self.audit_key,
            AuditRecord {
                subject: format!("backup/{}", backup.id),
                ..record
            },
        )
        .await?;
        tx.commit().await.map_err(backend)?;
        Ok(backup)
    }

    async fn list_app_backups(&self, app: Option<&str>) -> StoreResult<Vec<AppBackup>> {
        app_backups::list(&mut *self.read().await?, app).await
    }

    async fn app_backup(&self, id: i64) -> StoreResult<Option<AppBackup>> {
        app_backups::by_id(&mut *self.read().await?, id).await
    }

    async fn delete_app_backups(
        &self,
        app: &str,
        backups: Vec<(i64, Vec<String>)>,
        record: AuditRecord,
    ) -> StoreResult<()> {
        audited!(self, record, |tx| app_backups::delete(&mut tx, app, &backups)
            .await?)
    }

    async fn set_backup_schedule(
        &self,
        app: &str,
        schedule: BackupSchedule,
        record: AuditRecord,
    ) -> StoreResult<()> {
        audited!(self, record, |tx| app_backups::set_schedule(
            &mut tx, app, &schedule
        )
        .await?)
    }

    async fn backup_schedules(&self) -> StoreResult<Vec<(String, BackupSchedule)>> {
        app_backups::schedules(&mut *self.read().await?).await
    }
}

#[async_trait]
impl Fleet for Backend {
    async fn create_enrollment(
        &self,
        env: &str,
        target: &str,
        token_hash: &str,
        expires_ms: i64,
        record: AuditRecord,
    ) -> StoreResult<Target> {
        audited!(self, record, |tx| {
            targets::create_enrollment(&mut tx, env, target, token_hash, expires_ms, record.at_ms)
                .await?
        })
    }

    async fn enroll_target(
        &self,
        token_hash: &str,
        credential_hash: &str,
        now_ms: i64,
        record: AuditRecord,
    ) -> StoreResult<Target> {
        let mut tx = self.write().await?;
        let target = targets::enroll(&mut tx, token_hash, credential_hash, now_ms).await?;
        audit::append(
            &mut tx,
            &self.audit_key,
            AuditRecord {
                subject: format!("target/{}", target.name),
                ..record
            },
        )
        .await?;
        tx.commit().await.map_err(backend)?;
        Ok(target)
    }

    async fn target_by_credential(&self, credential_hash: &str) -> StoreResult<Option<Target>> {
        targets::by_credential(&mut *self.read().await?, credential_hash).await
    }

    async fn list_targets(&self) -> StoreResult<Vec<Target>> {
        targets::list(&mut *self.read().await?).await
    }

    async fn remove_target(
        &self,
        target: &str,
        now_ms: i64,
        record: AuditRecord,
    ) -> StoreResult<Target> {
        audited!(self, record, |tx| {
            let removed = targets::remove(&mut tx, target, now_ms).await?;
            drift::forget_target(&mut tx, target).await?;
            removed
        })
    }

    async fn place_app(
        &self,
        app: &str,
        env: &str,
        names: &[String],
        record: AuditRecord,
    ) -> StoreResult<()> {
        audited!(self, record, |tx| {
            targets::place(&mut tx, app, env, names).await?;
        })
    }

    async fn placement(&self, app: &str, env: &str) -> StoreResult<Vec<String>> {
        targets::placement(&mut *self.read().await?, app, env).await
    }

    async fn target_apps(&self, target: Option<&str>) -> StoreResult<Vec<TargetApp>> {
        targets::target_apps(&mut *self.read().await?, target).await
    }

    async fn target_drift(&self, app: Option<&str>) -> StoreResult<Vec<TargetDrift>> {
        drift::list(&mut *self.read().await?, app).await
    }

    async fn request_task(
        &self,
        task: ferry_store::NewTask,
        record: AuditRecord,
    ) -> StoreResult<ferry_store::TaskRecord> {
        let mut tx = self.write().await?;
        let id = tasks::insert(&mut tx, &task).await?;
        audit::append(&mut tx, &self.audit_key, with_task(record, id)).await?;
        let task = tasks::get(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("task", &id.to_string()))?;
        tx.commit().await.map_err(backend)?;
        Ok(task)
    }

    async fn task(&self, id: i64) -> StoreResult<Option<ferry_store::TaskRecord>> {
        tasks::get(&mut *self.read().await?, id).await
    }

    async fn pending_tasks(
        &self,
        target: &str,
        since_ms: i64,
    ) -> StoreResult<Vec<ferry_store::TaskRecord>> {
        tasks::pending(&mut *self.read().await?, target, since_ms).await
    }
}

#[async_trait]
impl Deployments for Backend {
    async fn create_deployment(
        &self,
        deployment: DeploymentRecord,
        changes: Vec<DesiredChange>,
        record: AuditRecord,
        incident: Option<IncidentUpdate>,
    ) -> StoreResult<DeploymentRecord> {
        let mut tx = self.write().await?;
        let created = deployments::insert(&mut tx, &deployment, &changes).await?;
        let subject = format!("deployment/{}", created.id);
        audit::append(&mut tx, &self.audit_key, AuditRecord { subject, ..record }).await?;
        if let Some(update) = incident {
            support::update_incident(
                &mut tx,
                &update.incident,
                update.read_status,
                update.read_level,
            )
            .await?;
            audit::append(&mut tx, &self.audit_key, update.audit).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(created)
    }

    async fn update_deployment(
        &self,
        update: DeploymentUpdate<'_>,
        record: AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        deployments::save(&mut tx, &update).await?;
        audit::append(&mut tx, &self.audit_key, record).await?;
        if let Some((backport, opened)) = update.opens {
            if support::insert_backport(&mut tx, &backport)
                .await?
                .is_some()
            {
                audit::append(&mut tx, &self.audit_key, opened).await?;
            }
        }
        tx.commit().await.map_err(backend)
    }

    async fn capture_release(&self, capture: NewCapture) -> StoreResult<Captured> {
        let mut tx = self.write().await?;
        let new = &capture.release.release;
        if releases::by_version(&mut tx, &new.app, &new.version)
            .await?
            .is_some()
        {
            return Err(StoreError::AlreadyExists {
                kind: "release",
                name: format!("{} {}", new.app, new.version),
            });
        }
        releases::insert(&mut tx, &capture.release).await?;
        audit::append(&mut tx, &self.audit_key, capture.release_audit).await?;
        let deployment =
            deployments::insert(&mut tx, &capture.deployment, &capture.changes).await?;
        targets::report(&mut tx, &capture.report).await?;
        drift::record(&mut tx, &capture.drift).await?;
        let subject = format!("deployment/{}", deployment.id);
        audit::append(
            &mut tx,
            &self.audit_key,
            AuditRecord {
                subject,
                ..capture.capture_audit
            },
        )
        .await?;
        let mut backport = None;
        if let Some((obligation, opened)) = capture.opens {
            backport = support::insert_backport(&mut tx, &obligation).await?;
            if backport.is_some() {
                audit::append(&mut tx, &self.audit_key, opened).await?;
            }
        }
        let release = releases::by_version(&mut tx, &new.app, &new.version)
            .await?
            .ok_or_else(|| not_found("release", &new.version))?;
        tx.commit().await.map_err(backend)?;
        Ok(Captured {
            release,
            deployment,
            backport,
        })
    }

    async fn deployment(&self, id: i64) -> StoreResult<Option<DeploymentRecord>> {
        deployments::by_id(&mut *self.read().await?, id).await
    }

    async fn step_logs(
        &self,
        deployment_id: i64,
        target: Option<&str>,
    ) -> StoreResult<Vec<ferry_store::StepLogRecord>> {
        step_logs::of_deployment(&mut *self.read().await?, deployment_id, target).await
    }

    async fn approvals(&self, deployment_id: i64) -> StoreResult<Vec<ApprovalRecord>> {
        policy::approvals(&mut *self.read().await?, deployment_id).await
    }

    async fn approve(
        &self,
        approval: ApprovalRecord,
        deployment: &DeploymentRecord,
        changes: Vec<DesiredChange>,
        record: AuditRecord,
    ) -> StoreResult<()> {
        audited!(self, record, |tx| {
            policy::add_approval(&mut tx, &approval).await?;
            deployments::update(&mut tx, deployment, &changes, None).await?;
        })
    }

    async fn list_deployments(
        &self,
        app: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<DeploymentRecord>> {
        deployments::list(&mut *self.read().await?, app, limit).await
    }

    async fn running_deployments(&self) -> StoreResult<Vec<DeploymentRecord>> {
        deployments::in_status(&mut *self.read().await?, &[Status::Running]).await
    }

    async fn active_deployments(&self) -> StoreResult<Vec<DeploymentRecord>> {
        let active = [Status::AwaitingApproval, Status::Running];
        deployments::in_status(&mut *self.read().await?, &active).await
    }

    async fn bad_versions(&self, app: &str, env: &str) -> StoreResult<Vec<String>> {
        deployments::bad_versions(&mut *self.read().await?, app, env).await
    }

    async fn status_revision(&self) -> StoreResult<i64> {
        reads::status_revision(&mut *self.read().await?).await
    }

    async fn live_deployments(&self) -> StoreResult<Vec<DeploymentRecord>> {
        reads::live_deployments(&mut *self.read().await?).await
    }

    async fn every_bad_version(&self) -> StoreResult<Vec<BadVersion>> {
        reads::every_bad_version(&mut *self.read().await?).await
    }
}

#[async_trait]
impl Support for Backend {
    async fn team_support(&self, team: &str) -> StoreResult<TeamSupport> {
        support::team_support(&mut *self.read().await?, team).await
    }

    async fn set_team_support(&self, team: TeamSupport, record: AuditRecord) -> StoreResult<()> {
        audited!(self, record, |tx| support::set_team_support(&mut tx, &team)
            .await?)
    }

    async fn routing_rules(&self) -> StoreResult<Vec<RoutingRule>> {
        support::routing_rules(&mut *self.read().await?).await
    }

    async fn set_routing_rule(
        &self,
        category: &str,
        team: Option<&str>,
        record: AuditRecord,
    ) -> StoreResult<()> {
        audited!(self, record, |tx| support::set_routing_rule(
            &mut tx, category, team
        )
        .await?)
    }

    async fn open_incident(
        &self,
        incident: IncidentRecord,
        backlog_team: &str,
        record: AuditRecord,
    ) -> StoreResult<(IncidentRecord, Option<BacklogItem>)> {
        let mut tx = self.write().await?;
        let value = support::insert_incident(&mut tx, &incident, backlog_team).await?;
        let subject = format!("incident/{}", value.0.id);
        audit::append(&mut tx, &self.audit_key, AuditRecord { subject, ..record }).await?;
        tx.commit().await.map_err(backend)?;
        Ok(value)
    }

    async fn incidents(
        &self,
        app: Option<&str>,
        resolved: bool,
    ) -> StoreResult<Vec<IncidentRecord>> {
        support::incidents(&mut *self.read().await?, app, resolved).await
    }

    async fn incident(&self, id: i64) -> StoreResult<Option<IncidentRecord>> {
        support::incident(&mut *self.read().await?, id).await
    }

    async fn update_incident(
        &self,
        incident: IncidentRecord,
        read_status: IncidentStatus,
        read_level: u32,
        record: AuditRecord,
    ) -> StoreResult<()> {
        audited!(self, record, |tx| support::update_incident(
            &mut tx,
            &incident,
            read_status,
            read_level
        )
        .await?)
    }

    async fn backlog(&self, app: Option<&str>) -> StoreResult<Vec<BacklogItem>> {
        support::backlog(&mut *self.read().await?, app).await
    }

    async fn backports(&self, app: Option<&str>) -> StoreResult<Vec<Backport>> {
        support::backports(&mut *self.read().await?, app).await
    }

    async fn complete_backport(
        &self,
        id: i64,
        by: &str,
        now_ms: i64,
        record: AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let closed =
            support::close_backport_if_open(&mut tx, id, ObligationStatus::Done, by, None, now_ms)
                .await?;
        if closed {
            audit::append(&mut tx, &self.audit_key, record).await?;
            tx.commit().await.map_err(backend)?;
        }
        Ok(closed)
    }

    async fn waive_backport(
        &self,
        id: i64,
        by: &str,
        reason: &str,
        now_ms: i64,
        record: AuditRecord,
    ) -> StoreResult<()> {
        audited!(self, record, |tx| {
            let value = support::close_backport(
                &mut tx,
                id,
                ObligationStatus::Waived,
                by,
                Some(reason),
                now_ms,
            )
            .await?;
            value
        })
    }
}

#[async_trait]
impl Notifications for Backend {
    async fn add_channel(
        &self,
        channel: ferry_store::NewChannel,
        record: AuditRecord,
    ) -> StoreResult<ferry_store::ChannelRecord> {
        let mut tx = self.write().await?;
        let added = notifications::insert_channel(&mut tx, &channel).await?;
        let subject = format!("channel/{}", added.id);
        audit::append(&mut tx, &self.audit_key, AuditRecord { subject, ..record }).await?;
        tx.commit().await.map_err(backend)?;
        Ok(added)
    }

    async fn channels(
        &self,
        team: Option<&str>,
        include_removed: bool,
    ) -> StoreResult<Vec<ferry_store::ChannelRecord>> {
        notifications::channels(&mut *self.read().await?, team, include_removed).await
    }

    async fn remove_channel(
        &self,
        team: &str,
        id: i64,
        now_ms: i64,
        record: AuditRecord,
    ) -> StoreResult<()> {
        audited!(self, record, |tx| {
            notifications::remove_channel(&mut tx, team, id, now_ms).await?;
        })
    }

    async fn queue_delivery(
        &self,
        delivery: ferry_store::NewDelivery,
        record: AuditRecord,
    ) -> StoreResult<ferry_store::DeliveryRecord> {
        let mut tx = self.write().await?;
        let event = audit::append(&mut tx, &self.audit_key, record).await?;
        let delivery = ferry_store::NewDelivery {
            audit_seq: Some(event.seq),
            ..delivery
        };
        let id = notifications::insert_delivery(&mut tx, &delivery).await?;
        let queued = notifications::delivery(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("delivery", &id.to_string()))?;
        tx.commit().await.map_err(backend)?;
        Ok(queued)
    }

    async fn audit_events_after(&self, seq: i64, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        notifications::audit_events_after(&mut *self.read().await?, seq, limit).await
    }

    async fn deliveries(
        &self,
        team: &str,
        limit: u32,
    ) -> StoreResult<Vec<ferry_store::DeliveryRecord>> {
        notifications::deliveries(&mut *self.read().await?, team, limit).await
    }

    async fn delivery(&self, id: i64) -> StoreResult<Option<ferry_store::DeliveryRecord>> {
        notifications::delivery(&mut *self.read().await?, id).await
    }
}

#[async_trait]
impl AuditTrail for Backend {
    async fn audit_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        audit::events(&mut *self.read().await?, filter).await
    }

    async fn audit_chain(&self) -> StoreResult<AuditChain> {
        // One read transaction, so the events and the head are from the same moment.
        let mut tx = self.snapshot().await?;
        let chain = audit::chain(&mut tx).await?;
        tx.commit().await.map_err(backend)?;
        Ok(chain)
    }

    async fn audit_head(&self) -> StoreResult<Option<ferry_store::RecordedHead>> {
        audit::head(&mut *self.read().await?).await
    }

    async fn record_refusal(&self, record: AuditRecord) -> StoreResult<()> {
        // Nothing changes but the trail.
        audited!(self, record, |tx| ())
    }
}
