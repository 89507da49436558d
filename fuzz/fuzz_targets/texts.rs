//! Every small language ferry reads from people and scripts: durations, freeze windows,
//! configuration keys, `KEY=VALUE`, env files and `{{ KEY }}` templates, names and
//! versions, served labels (`VERSION@N`), backup retention (`7,7d,4w`), permission levels
//! and capabilities, severities, strategies, incident categories, freeze ends and reasons,
//! passwords, health-check URLs, `--from` sources and `ignore` globs. What is printed reads
//! back the same: durations, retention, labels, env files; a template that passes the check
//! renders; the agent's checks of names and versions agree with the server's. The text's
//! first line is also tried against the rest, for what takes two (version comparisons, a
//! glob and a path).
#![no_main]

use std::cmp::Ordering;
use std::collections::BTreeMap;

use ferry_agent::layout::{check_app_name, check_version};
use ferry_cas::glob::Glob;
use ferry_domain::backup_retention::BackupKeep;
use ferry_domain::capture::compare_versions;
use ferry_domain::config::{
    check_template, parse_assignment, parse_env_file, render_env_file, render_template, ConfigKey,
};
use ferry_domain::deployment::Strategy;
use ferry_domain::duration::{format_duration, parse_duration};
use ferry_domain::freeze::{checked_reason, FreezeEnd};
use ferry_domain::incident::Severity;
use ferry_domain::name::{validate_name, validate_version, NameKind};
use ferry_domain::permission::{Capability, Level};
use ferry_domain::served::Served;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    durations(text);
    let _ = ferry_domain::freeze::FreezeWindow::parse(text);
    configuration(text);
    names(text);
    words(text);
    let _ = FreezeEnd::parse_for(text);
    let _ = FreezeEnd::parse_until(text);
    let _ = checked_reason(text, "the reason");
    let _ = ferry_domain::password::check_new_password(text);
    let _ = ferry_domain::routing::check_category(text);
    let _ = ferry_cas::http_url::HttpUrl::parse(text);
    let _ = ferry_cas::source::parse_source_spec(text);
    if let Some((first, rest)) = text.split_once('\n') {
        pairs(first, rest);
    }
});

fn durations(text: &str) {
    if let Ok(duration) = parse_duration(text) {
        let shown = format_duration(duration);
        let again = parse_duration(&shown).expect("a duration shown reads back");
        // Below a millisecond counts as nothing when shown.
        assert_eq!(
            again.as_millis(),
            duration.as_millis(),
            "{text:?} shown as {shown:?}"
        );
    }
}

fn configuration(text: &str) {
    let _ = ConfigKey::parse(text);
    let _ = parse_assignment(text);
    if let Ok(assignments) = parse_env_file(text) {
        let values: BTreeMap<ConfigKey, String> = assignments.into_iter().collect();
        let file = render_env_file(&values);
        let again: BTreeMap<ConfigKey, String> = parse_env_file(&file)
            .expect("an env file ferry writes reads back")
            .into_iter()
            .collect();
        assert_eq!(again, values, "the env file {file:?} reads back otherwise");
    }
    if check_template("fuzzed", text).is_ok() {
        let values: BTreeMap<ConfigKey, String> = BTreeMap::new();
        let _ = render_template("fuzzed", text, &values);
    }
}

fn names(text: &str) {
    let name_ok = validate_name(NameKind::App, text).is_ok();
    assert_eq!(
        check_app_name(text).is_ok(),
        name_ok,
        "agent and server disagree on {text:?}"
    );
    let version_ok = validate_version(text).is_ok();
    assert_eq!(
        check_version(text).is_ok(),
        version_ok,
        "agent and server disagree on {text:?}"
    );
    let served = Served::parse(text);
    assert_eq!(
        served.label(),
        text,
        "the label {text:?} reads back otherwise"
    );
    if version_ok {
        assert_eq!(
            Served::parse(text),
            Served::new(text, 0),
            "a version is a label of itself"
        );
    }
}

fn words(text: &str) {
    if let Ok(keep) = text.parse::<BackupKeep>() {
        let shown = keep.to_string();
        assert_eq!(
            shown.parse::<BackupKeep>(),
            Ok(keep),
            "{text:?} shown as {shown:?}"
        );
    }
    let _ = text.parse::<Level>();
    let _ = text.parse::<Capability>();
    let _ = Severity::parse(text);
    let _ = Strategy::parse(text);
}

fn pairs(first: &str, rest: &str) {
    let forth = compare_versions(first, rest);
    let back = compare_versions(rest, first);
    assert_eq!(
        forth,
        back.map(Ordering::reverse),
        "{first:?} against {rest:?}"
    );
    if let Some(glob) = Glob::new(first) {
        let _ = glob.matches(rest);
    }
}
