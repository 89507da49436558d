//! The JSON bodies of `/api/v1`, as one text tried as every request body, each one that
//! reads then put through the checks and conversions the server's services run on it
//! before anything is stored: names, versions, durations, freeze windows and times,
//! reasons, configuration keys and edits, manifests, channels and rotations. None may panic.
#![no_main]

use ferry_api::{
    AddChannel, AppGrant, ApplyConfig, CaptureDrift, ChangeApp, ChangePolicy, ConfigEdit,
    CreateApp, CreateBackup, CreateDeployment, CreateEnvironment, CreatePromotion, CreateRelease,
    CreateRollback, CreateUser, EnrollTarget, FreezeEnvironment, OpenIncident, Placement,
    RenameEnvironment, RestoreBackup, Review, RoutingRule, SetPassword, SetRoleLevel,
    SetTeamSupport, UnfreezeEnvironment, WaiveBackport,
};
use ferry_cas::manifest::validate_path;
use ferry_domain::backup_retention::BackupKeep;
use ferry_domain::config::{check_value, ConfigKey};
use ferry_domain::config_revision::{apply, check_size, Edit, Settings};
use ferry_domain::deployment::Strategy;
use ferry_domain::duration::parse_duration;
use ferry_domain::freeze::{checked_reason, FreezeEnd, FreezeWindow, OneOffFreeze};
use ferry_domain::incident::Severity;
use ferry_domain::name::{validate_name, validate_version, NameKind};
use ferry_domain::password::check_new_password;
use ferry_domain::permission::Level;
use ferry_domain::rotation::Rotation;
use ferry_domain::routing::check_category;
use ferry_domain::served::Served;
use ferry_fuzz::parse;
use ferry_notify::Channel;
use libfuzzer_sys::fuzz_target;

/// A time as the server's clock gives it: 2024-03-04 09:00 UTC.
const NOW_MS: i64 = 1_709_542_800_000;

fuzz_target!(|data: &[u8]| {
    names(data);
    releases_and_deployments(data);
    environments(data);
    configuration(data);
    support(data);
});

fn name(kind: NameKind, text: &str) {
    let _ = validate_name(kind, text);
}

fn reason(text: &Option<String>) {
    if let Some(text) = text {
        let _ = checked_reason(text, "the reason");
    }
}

fn strategy(text: &Option<String>) {
    if let Some(text) = text {
        let _ = Strategy::parse(text);
    }
}

fn names(data: &[u8]) {
    if let Some(user) = parse::<CreateUser>(data) {
        name(NameKind::User, &user.name);
        if let Some(role) = &user.role {
            name(NameKind::Role, role);
        }
        for membership in &user.teams {
            name(NameKind::Team, &membership.team);
        }
    }
    if let Some(app) = parse::<CreateApp>(data) {
        name(NameKind::App, &app.name);
        name(NameKind::Team, &app.team);
    }
    if let Some(grant) = parse::<AppGrant>(data) {
        name(NameKind::User, &grant.user);
        name(NameKind::Environment, &grant.env);
        let _ = grant.level.parse::<Level>();
    }
    if let Some(level) = parse::<SetRoleLevel>(data) {
        name(NameKind::Environment, &level.env);
        let _ = level.level.parse::<Level>();
    }
    if let Some(enroll) = parse::<EnrollTarget>(data) {
        name(NameKind::Environment, &enroll.env);
        name(NameKind::Target, &enroll.name);
    }
    if let Some(placement) = parse::<Placement>(data) {
        name(NameKind::Environment, &placement.env);
        for target in &placement.targets {
            name(NameKind::Target, target);
        }
    }
    if let Some(password) = parse::<SetPassword>(data) {
        let _ = check_new_password(&password.password);
    }
    // `AddChannel` is `Channel`'s wire form, field for field: the server converts one to the
    // other before it validates it.
    if parse::<AddChannel>(data).is_some() {
        let channel = parse::<Channel>(data).expect("a channel reads as its wire form does");
        if channel.validate().is_ok() {
            let _ = channel.describe();
        }
    }
}

fn releases_and_deployments(data: &[u8]) {
    if let Some(release) = parse::<CreateRelease>(data) {
        let _ = validate_version(&release.version);
        if let Some(base) = &release.hotfix_of {
            let _ = validate_version(base);
        }
        if release.manifest.validate().is_ok() {
            let _ = release.manifest.digest();
            let _ = release.manifest.blobs();
        }
        let _ = release.source.without_credentials();
    }
    if let Some(deployment) = parse::<CreateDeployment>(data) {
        let _ = validate_version(&deployment.version);
        name(NameKind::Environment, &deployment.env);
        strategy(&deployment.strategy);
        reason(&deployment.reason);
        reason(&deployment.skip_backup);
    }
    if let Some(promotion) = parse::<CreatePromotion>(data) {
        name(NameKind::Environment, &promotion.from);
        name(NameKind::Environment, &promotion.to);
        strategy(&promotion.strategy);
        reason(&promotion.reason);
    }
    if let Some(review) = parse::<Review>(data) {
        reason(&review.reason);
        if let Some(version) = &review.version {
            let _ = validate_version(version);
        }
    }
    if let Some(rollback) = parse::<CreateRollback>(data) {
        name(NameKind::Environment, &rollback.env);
        if let Some(to) = &rollback.to {
            let _ = validate_version(&Served::parse(to).version);
        }
        reason(&rollback.reason);
    }
    if let Some(capture) = parse::<CaptureDrift>(data) {
        name(NameKind::Target, &capture.target);
        name(NameKind::App, &capture.app);
        let _ = validate_version(&capture.version);
    }
    if let Some(backup) = parse::<CreateBackup>(data) {
        name(NameKind::App, &backup.app);
        name(NameKind::Environment, &backup.env);
    }
    if let Some(restore) = parse::<RestoreBackup>(data) {
        if let Some(path) = &restore.path {
            let _ = validate_path(path);
        }
    }
    if let Some(change) = parse::<ChangeApp>(data) {
        if let Some(every) = &change.backup_every {
            let _ = parse_duration(every);
        }
        if let Some(keep) = &change.backup_keep {
            if let Ok(keep) = keep.parse::<BackupKeep>() {
                assert_eq!(keep.to_string().parse::<BackupKeep>(), Ok(keep));
            }
        }
    }
}

fn environments(data: &[u8]) {
    if let Some(env) = parse::<CreateEnvironment>(data) {
        name(NameKind::Environment, &env.name);
    }
    if let Some(rename) = parse::<RenameEnvironment>(data) {
        name(NameKind::Environment, &rename.to);
    }
    if let Some(policy) = parse::<ChangePolicy>(data) {
        for text in policy.freeze.iter().chain(&policy.unfreeze) {
            if let Ok(window) = FreezeWindow::parse(text) {
                let _ = window.active_at(NOW_MS);
            }
        }
    }
    if let Some(freeze) = parse::<FreezeEnvironment>(data) {
        let end = match (&freeze.lasting, &freeze.until) {
            (Some(lasting), None) => FreezeEnd::parse_for(lasting),
            (None, Some(until)) => FreezeEnd::parse_until(until),
            _ => return,
        };
        if let Ok(end) = end {
            if let Ok(freeze) = OneOffFreeze::new(NOW_MS, end, &freeze.reason, "fuzz") {
                let _ = freeze.active_at(NOW_MS);
            }
        }
    }
    if let Some(unfreeze) = parse::<UnfreezeEnvironment>(data) {
        reason(&unfreeze.reason);
    }
}

fn configuration(data: &[u8]) {
    if let Some(edit) = parse::<ConfigEdit>(data) {
        let set: Result<Vec<_>, _> = edit
            .set
            .into_iter()
            .map(|a| ConfigKey::parse(&a.key).map(|key| (key, a.value)))
            .collect();
        let unset: Result<Vec<_>, _> = edit.unset.iter().map(|k| ConfigKey::parse(k)).collect();
        if let (Ok(set), Ok(unset)) = (set, unset) {
            for (key, value) in &set {
                let _ = check_value(key, value);
            }
            let edit = Edit {
                set,
                secret: edit.secret,
                unset,
            };
            if let Ok((settings, _changes)) = apply(&Settings::default(), &edit) {
                let _ = check_size(&settings);
                let _ = apply(&settings, &edit);
            }
        }
    }
    if let Some(apply) = parse::<ApplyConfig>(data) {
        strategy(&apply.strategy);
        reason(&apply.reason);
    }
}

fn support(data: &[u8]) {
    if let Some(incident) = parse::<OpenIncident>(data) {
        name(NameKind::App, &incident.app);
        name(NameKind::Environment, &incident.env);
        let _ = Severity::parse(&incident.severity);
        if let Some(category) = &incident.category {
            let _ = check_category(category);
        }
    }
    if let Some(rule) = parse::<RoutingRule>(data) {
        let _ = check_category(&rule.category);
        name(NameKind::Team, &rule.team);
    }
    if let Some(waive) = parse::<WaiveBackport>(data) {
        let _ = checked_reason(&waive.reason, "the reason");
    }
    if let Some(support) = parse::<SetTeamSupport>(data) {
        let millis = |text: &Option<String>| {
            text.as_deref()
                .and_then(|text| parse_duration(text).ok())
                .and_then(|d| i64::try_from(d.as_millis()).ok())
        };
        if let Some(escalate_after) = &support.escalate_after {
            let _ = parse_duration(escalate_after);
        }
        let rotation = Rotation {
            members: support.members.unwrap_or_default(),
            shift_ms: millis(&support.shift).unwrap_or(86_400_000),
            start_ms: NOW_MS,
        };
        if rotation.validate().is_ok() {
            let _ = rotation.on_call(NOW_MS);
            let _ = rotation.hand_over_ms(NOW_MS);
        }
    }
}
