//! Configuration delivered into releases: a release staged with configuration revision N is
//! `releases/VERSION@N`, its env file and rendered templates are written at staging
//! (read-only, never in the cache), checked like the rest, found as drift when edited,
//! refused by a capture, and a missing key fails the deploy before anything switches.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use ferry_agent::capture::Capture;
use ferry_agent::config_files::{render, ConfigOf, ConfigValues, RenderedFiles};
use ferry_agent::drift::{self, DriftCheck};
use ferry_agent::{cleanup, deploy, rollback, verify_release, AgentError, DeployOutcome};
use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::Manifest;
use ferry_domain::drift::DriftChange;

use crate::fixture::*;

const CONFIG: &str = r#"
shared = ["uploads"]

[hooks]
after_switch = "echo \"$DATABASE_URL $FERRY_VERSION\" > \"$FERRY_SHARED_DIR/seen\""

[config]
env_file = ".env"
templates = { "config/app.ini" = "config/app.ini.tmpl" }
required = ["DATABASE_URL"]
"#;

fn site(index: &str) -> Vec<Item> {
    vec![
        ferry_toml(CONFIG),
        file("index.html", index),
        dir("config", 0o755),
        file(
            "config/app.ini.tmpl",
            "db = {{ DATABASE_URL }}\nmode = {{ MODE }}\n",
        ),
        dir("uploads", 0o755),
    ]
}

fn deploy_with(
    target: &Target,
    version: &str,
    manifest: &Manifest,
    values: &ConfigValues,
) -> DeployOutcome {
    deploy(
        target.root(),
        &request_with(version, manifest, values),
        &target.cache,
        &mut |_| {},
    )
}

fn deploy_ok_with(target: &Target, version: &str, manifest: &Manifest, values: &ConfigValues) {
    match deploy_with(target, version, manifest, values) {
        DeployOutcome::Succeeded { .. } => {}
        other => panic!("deploy {version}: {other:?}"),
    }
}

/// What `current` points at, as written.
fn current_link(target: &Target) -> String {
    fs::read_link(target.layout().current_link())
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn read(target: &Target, dir: &str, path: &str) -> String {
    fs::read_to_string(target.release_dir(dir).join(path)).unwrap()
}

fn mode(target: &Target, dir: &str, path: &str) -> u32 {
    fs::symlink_metadata(target.release_dir(dir).join(path))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// The files rendered into directory `name` from `values`, as the agent renders them.
fn rendered(
    target: &Target,
    name: &str,
    manifest: &Manifest,
    values: &ConfigValues,
) -> RenderedFiles {
    let installed = v(name);
    let config =
        drift::release_config(target.root(), APP, &installed, manifest, &target.cache).unwrap();
    let of = ConfigOf {
        app: APP,
        env: "prd",
        version: "1.0",
    };
    render(
        &target.layout(),
        &[Some(&installed)],
        manifest,
        &config,
        values,
        of,
        &target.cache,
    )
    .unwrap()
}

fn first() -> ConfigValues {
    values(1, &[("DATABASE_URL", "postgres://db/a"), ("MODE", "prod")])
}

#[test]
fn each_revision_is_its_own_directory_with_read_only_rendered_files_and_the_rest_linked() {
    let target = Target::new();
    let v1 = target.release(&site("v1"));
    deploy_ok_with(&target, "1.0", &v1, &first());
    assert_eq!(current_link(&target), "releases/1.0@1");
    assert_eq!(target.current().as_deref(), Some("1.0"));
    let env = "DATABASE_URL=postgres://db/a\nMODE=prod\n";
    assert_eq!(read(&target, "1.0@1", ".env"), env);
    assert_eq!(
        read(&target, "1.0@1", "config/app.ini"),
        "db = postgres://db/a\nmode = prod\n"
    );
    assert_eq!(mode(&target, "1.0@1", ".env"), 0o400);
    assert_eq!(mode(&target, "1.0@1", "config/app.ini"), 0o400);
    // Rendered content never enters the cache.
    assert!(!target.cache.contains(&ContentHash::of(env.as_bytes())));
    // Hooks see every value (and FERRY_* variables).
    let seen = fs::read_to_string(target.layout().shared_dir().join("seen")).unwrap();
    assert_eq!(seen, "postgres://db/a 1.0\n");
    // The directory is its release and the rendered files, nothing else.
    assert_eq!(
        verify_release(target.root(), APP, &v("1.0@1"), &v1),
        [".env", "config/app.ini"]
    );
    let served = rendered(&target, "1.0@1", &v1, &first()).add_to(&v1);
    assert!(verify_release(target.root(), APP, &v("1.0@1"), &served).is_empty());

    // The same release with another revision: a new directory, everything but the
    // rendered files linked from the one served.
    let second = values(2, &[("DATABASE_URL", "postgres://db/b"), ("MODE", "prod")]);
    deploy_ok_with(&target, "1.0", &v1, &second);
    assert_eq!(current_link(&target), "releases/1.0@2");
    for path in ["index.html", "ferry.toml", "config/app.ini.tmpl"] {
        assert_eq!(
            target.inode("1.0@1", path),
            target.inode("1.0@2", path),
            "{path}"
        );
    }
    for path in [".env", "config/app.ini"] {
        assert_ne!(
            target.inode("1.0@1", path),
            target.inode("1.0@2", path),
            "{path}"
        );
    }
    assert_eq!(read(&target, "1.0@1", ".env"), env);
    assert_eq!(
        read(&target, "1.0@2", ".env"),
        "DATABASE_URL=postgres://db/b\nMODE=prod\n"
    );

    // A revision rendering the same files links them from the directory served.
    let third = values(3, &[("DATABASE_URL", "postgres://db/b"), ("MODE", "prod")]);
    deploy_ok_with(&target, "1.0", &v1, &third);
    for path in [".env", "config/app.ini", "index.html"] {
        assert_eq!(
            target.inode("1.0@2", path),
            target.inode("1.0@3", path),
            "{path}"
        );
    }

    // A rollback to a directory on disk checks and repairs its rendered files too.
    write_over(
        &target.release_dir("1.0@1").join(".env"),
        "DATABASE_URL=evil\n",
    );
    rollback(
        target.root(),
        &request_with("1.0", &v1, &first()),
        &target.cache,
    )
    .unwrap();
    assert_eq!(current_link(&target), "releases/1.0@1");
    assert_eq!(read(&target, "1.0@1", ".env"), env);
    assert_eq!(mode(&target, "1.0@1", ".env"), 0o400);
}

#[test]
fn a_missing_key_fails_the_deploy_before_the_switch_naming_it_and_the_fix() {
    let target = Target::new();
    let v1 = target.release(&site("v1"));
    deploy_ok_with(&target, "1.0", &v1, &first());
    let v2 = target.release(&site("v2"));
    let refused = |values: &ConfigValues| match deploy_with(&target, "2.0", &v2, values) {
        DeployOutcome::Failed { reason, .. } => reason,
        other => panic!("{other:?}"),
    };
    // (values, what the reason must say)
    let cases: [(ConfigValues, &[&str]); 3] = [
        (
            values(2, &[("MODE", "prod")]),
            &["DATABASE_URL", "revision 2"],
        ),
        (
            ConfigValues::none(),
            &["DATABASE_URL", "carries no configuration"],
        ),
        (
            values(3, &[("DATABASE_URL", "postgres://db/a")]),
            &["template config/app.ini.tmpl", "MODE"],
        ),
    ];
    for (values, says) in cases {
        let reason = refused(&values);
        for said in says.iter().chain(&[
            "ferry config set shop --env prd",
            "`ferry deploy shop 2.0 --to prd`",
        ]) {
            assert!(reason.contains(said), "{said:?} not in {reason}");
        }
        assert!(!reason.contains("postgres"), "a value in {reason}");
        // Nothing switched, nothing staged.
        assert_eq!(current_link(&target), "releases/1.0@1");
        let mut on_disk = target.layout().releases_on_disk().unwrap();
        on_disk.sort();
        assert_eq!(on_disk, [v("1.0@1")]);
    }
}

#[test]
fn an_edited_env_file_is_drift_and_a_revert_repairs_it() {
    let target = Target::new();
    let v1 = target.release(&site("v1"));
    deploy_ok_with(&target, "1.0", &v1, &first());
    let installed = v("1.0@1");
    let config = drift::release_config(target.root(), APP, &installed, &v1, &target.cache).unwrap();
    let served = drift::served_manifest(
        target.root(),
        ConfigOf {
            app: APP,
            env: "prd",
            version: "1.0",
        },
        &installed,
        &v1,
        &config,
        &first(),
        &target.cache,
    )
    .unwrap();
    // Busy for a moment when a process another test forked holds the lock (see drift.rs).
    let check = || {
        for _ in 0..200 {
            match drift::check(target.root(), APP, &installed, &served, &config, 0).unwrap() {
                DriftCheck::Checked(found) => {
                    assert_eq!(found.version, "1.0");
                    let found = found.paths.into_iter().map(|p| (p.path, p.change));
                    return found.collect::<Vec<_>>();
                }
                DriftCheck::Busy => std::thread::sleep(std::time::Duration::from_millis(10)),
                other => panic!("{other:?}"),
            }
        }
        panic!("the lock of {APP} stayed taken");
    };
    assert_eq!(check(), []);
    write_over(
        &target.release_dir("1.0@1").join(".env"),
        "DATABASE_URL=evil\n",
    );
    assert_eq!(check(), [(".env".to_owned(), DriftChange::Content)]);
    // A revert gives the release its content back, the rendered files from the values.
    rollback(
        target.root(),
        &request_with("1.0", &v1, &first()),
        &target.cache,
    )
    .unwrap();
    assert_eq!(check(), []);
}

#[test]
fn a_capture_leaves_rendered_files_out_and_refuses_an_edited_one() {
    let target = Target::new();
    let v1 = target.release(&site("v1"));
    deploy_ok_with(&target, "1.0", &v1, &first());
    let installed = v("1.0@1");
    let config = drift::release_config(target.root(), APP, &installed, &v1, &target.cache).unwrap();
    let rendered = rendered(&target, "1.0@1", &v1, &first());
    let scan = || {
        Capture::scan(
            target.root(),
            APP,
            ("prd-1", "prd"),
            &installed,
            &v1,
            &config,
            &rendered,
        )
    };
    let dir = target.release_dir("1.0@1");
    in_writable_dir(&dir, || {
        fs::write(dir.join("index.html"), "hotfix").unwrap()
    });

    write_over(&dir.join("config/app.ini"), "db = elsewhere\n");
    match scan() {
        Err(AgentError::Refused(reason)) => assert!(
            reason.contains(
                "config/app.ini is written by ferry from the configuration of prd, and was \
                 changed on this target: undo the edit with `ferry drift revert prd-1 shop`, \
                 and change a value with `ferry config set shop --env prd KEY=VALUE` then \
                 `ferry config apply shop --env prd`, not on the target"
            ),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    write_over(
        &dir.join("config/app.ini"),
        "db = postgres://db/a\nmode = prod\n",
    );

    let capture = scan().unwrap();
    let manifest = capture.manifest().clone();
    assert!(manifest.get(".env").is_none() && manifest.get("config/app.ini").is_none());
    assert!(manifest.get("config/app.ini.tmpl").is_some());
    let uploads: Vec<ContentHash> = capture.blobs().iter().map(|(hash, _)| *hash).collect();
    assert_eq!(uploads, [ContentHash::of(b"hotfix")]);
    capture.finish("1.0-hotfix").unwrap();
    // The captured directory keeps the revision served, its rendered files linked.
    assert_eq!(current_link(&target), "releases/1.0-hotfix@1");
    for path in [".env", "config/app.ini", "index.html"] {
        assert_eq!(
            target.inode("1.0@1", path),
            target.inode("1.0-hotfix@1", path),
            "{path}"
        );
    }
    let served = rendered.add_to(&manifest);
    assert!(verify_release(target.root(), APP, &v("1.0-hotfix@1"), &served).is_empty());
}

#[test]
fn cleanup_keeps_directories_by_revision_never_the_served_one_nor_the_last_success() {
    let target = Target::new();
    let v1 = target.release(&site("v1"));
    let v2 = target.release(&site("v2"));
    let second = values(2, &[("DATABASE_URL", "postgres://db/b"), ("MODE", "prod")]);
    deploy_ok_with(&target, "1.0", &v1, &first());
    deploy_ok_with(&target, "1.0", &v1, &second);
    deploy_ok_with(&target, "2.0", &v2, &second);
    // Back to 1.0 with revision 1: served, but not the last success (2.0@2).
    rollback(
        target.root(),
        &request_with("1.0", &v1, &first()),
        &target.cache,
    )
    .unwrap();
    let report = cleanup(target.root(), APP, 1).unwrap();
    assert_eq!(report.kept, [v("1.0@1"), v("2.0@2")]);
    assert_eq!(report.removed, [v("1.0@2")]);
    let mut on_disk = target.layout().releases_on_disk().unwrap();
    on_disk.sort();
    assert_eq!(on_disk, [v("1.0@1"), v("2.0@2")]);
    assert_eq!(
        read(&target, "1.0@1", ".env"),
        "DATABASE_URL=postgres://db/a\nMODE=prod\n"
    );
}
