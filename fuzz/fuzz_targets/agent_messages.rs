//! The agent protocol's JSON messages, both ways, as one text tried as every message. What
//! the server receives from agents (`/api/v1/agent/*` bodies) goes through the checks the
//! server runs on it before anything is stored; what an agent receives from the server (its
//! desired state, tasks, configuration values) goes through the checks and conversions the
//! agent runs before it touches its root. None of them may panic, and what they accept
//! must be safe to use as a path under the agent's root.
#![no_main]

use ferry_agent::config_files::ConfigValues;
use ferry_agent::layout::{check_app_name, Installed};
use ferry_api::{
    AgentBackup, AgentCapture, AgentConfig, AgentCredential, AgentDrift, AgentEnroll, AgentReport,
    AgentTask, BlobHashes, DesiredApp, DesiredState, TaskReport, TaskWork,
};
use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::validate_path;
use ferry_domain::capture::check_capture_version;
use ferry_domain::name::{validate_name, validate_version, NameKind};
use ferry_domain::served::Served;
use ferry_domain::step_log::{bounded_label, check_report};
use ferry_fuzz::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // From agents, with the server's checks.
    if let Some(enroll) = parse::<AgentEnroll>(data) {
        let _ = ferry_domain::token::hash_token(enroll.token.trim());
    }
    if let Some(report) = parse::<AgentReport>(data) {
        let _ = check_report(&report.logs);
        let _ = validate_name(NameKind::App, &report.app);
        if let Some(version) = &report.version {
            let _ = validate_version(version);
        }
        let _ = report.outcome.target_app_state();
    }
    if let Some(drift) = parse::<AgentDrift>(data) {
        let _ = validate_name(NameKind::App, &drift.app);
        let _ = validate_version(&drift.version);
        for path in &drift.paths {
            let _ = validate_path(&path.path);
        }
    }
    if let Some(capture) = parse::<AgentCapture>(data) {
        if validate_version(&capture.version).is_ok() {
            let _ = check_capture_version(&capture.app, &capture.hotfix_of, &capture.version);
        }
        if capture.manifest.validate().is_ok() {
            let _ = capture.manifest.digest();
        }
    }
    if let Some(report) = parse::<TaskReport>(data) {
        let kept = bounded_label(&report.message, 64 * 1024);
        assert!(kept.len() <= 64 * 1024, "a task's message is kept within its bound");
        let _ = report.detail.map(|detail| detail.to_string());
    }
    if let Some(backup) = parse::<AgentBackup>(data) {
        let _ = validate_name(NameKind::App, &backup.app);
        let _ = ContentHash::from_hex(&backup.digest);
        let _ = ContentHash::from_hex(&backup.manifest_blob);
        for path in &backup.paths {
            let _ = validate_path(path);
        }
    }
    if let Some(hashes) = parse::<BlobHashes>(data) {
        for hash in &hashes.hashes {
            let _ = ContentHash::from_hex(hash);
        }
    }

    // From the server, with the agent's checks.
    if let Some(state) = parse::<DesiredState>(data) {
        for app in &state.apps {
            desired_app(app);
        }
        for task in &state.tasks {
            agent_task(task);
        }
    }
    if let Some(task) = parse::<AgentTask>(data) {
        agent_task(&task);
    }
    if let Some(config) = parse::<AgentConfig>(data) {
        if let Ok(values) = ConfigValues::new(config.revision, config.values) {
            let _ = values.revision();
        }
    }
    if let Some(credential) = parse::<AgentCredential>(data) {
        let _ = validate_name(NameKind::Target, &credential.target);
    }
});

/// What the agent does with one application of its desired state before it stages or
/// switches: the name and the release directories it will use.
fn desired_app(app: &DesiredApp) {
    if check_app_name(&app.app).is_err() {
        return;
    }
    safe_dir(&app.app);
    if let Some(version) = &app.version {
        release_dir(&Installed::new(version, app.config));
    }
    if let Some(stage) = &app.stage {
        release_dir(&Installed::new(&stage.version, stage.config));
    }
}

/// A release directory the agent would create: accepted only when it is one plain name,
/// which reads back as the same release.
fn release_dir(installed: &Installed) {
    if installed.check().is_err() {
        return;
    }
    let name = installed.dir_name();
    safe_dir(&name);
    assert_eq!(
        Installed::parse(&name).as_ref(),
        Some(installed),
        "release directory {name:?} reads back as another release"
    );
    assert_eq!(Served::parse(&name).version, installed.version);
}

fn agent_task(task: &AgentTask) {
    if check_app_name(&task.app).is_err() {
        return;
    }
    match &task.work {
        TaskWork::CheckDrift | TaskWork::BackUp { .. } => {}
        TaskWork::CaptureDrift { version, .. } | TaskWork::RevertDrift { version } => {
            release_dir(&Installed::new(version, 0));
        }
        TaskWork::RestoreBackup {
            digest,
            manifest_blob,
            paths,
            path,
            ..
        } => {
            let _ = ContentHash::from_hex(digest);
            let _ = ContentHash::from_hex(manifest_blob);
            for path in paths.iter().chain(path) {
                let _ = validate_path(path);
            }
        }
    }
}

/// One path component that stays where it is joined.
fn safe_dir(name: &str) {
    assert!(
        !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0']),
        "{name:?} is not one plain directory name"
    );
}
