//! Drift findings: the latest per target and application, replaced whole by each report,
//! gone with the target; new findings move the status revision, the same findings again
//! (an agent's hourly report) do not.

use ferry_domain::drift::DriftChange;

use super::audit;
use super::reads::moved;
use crate::{DriftReport, DriftedPathRecord, Store, StoreError};

fn path(path: &str, change: DriftChange, first_seen_ms: i64) -> DriftedPathRecord {
    DriftedPathRecord {
        path: path.into(),
        change,
        first_seen_ms,
    }
}

/// The `drift.detected` record a report carries (appended only for the first drift).
fn detected() -> crate::AuditRecord {
    audit("drift.detected", "target/dev-1", Some("web"))
}

/// How many `drift.detected` events the trail holds.
async fn detections(store: &dyn Store) -> usize {
    store
        .audit_events(&crate::AuditFilter::default())
        .await
        .unwrap()
        .iter()
        .filter(|e| e.record.action == "drift.detected")
        .count()
}

fn report(
    target: &str,
    app: &str,
    version: &str,
    paths: Vec<DriftedPathRecord>,
    at: i64,
) -> DriftReport {
    DriftReport {
        target: target.into(),
        app: app.into(),
        version: version.into(),
        path_count: paths.len() as u64,
        paths,
        checked_ms: at,
    }
}

/// The drift part of the reads story: targets `dev-1` (in dev) and applications `web` and
/// `api` exist, no drift is recorded yet, and `last` is the status revision now.
pub async fn drift_part(store: &dyn Store, last: &mut i64) {
    assert!(store.target_drift(None).await.unwrap().is_empty());
    let told = detections(store).await;
    let edited = vec![
        path("config/app.yml", DriftChange::Content, 100),
        path("public/hotfix.js", DriftChange::Added, 90),
    ];
    assert!(store
        .record_drift(
            report("dev-1", "web", "1.1", edited.clone(), 110),
            detected()
        )
        .await
        .unwrap());
    assert!(moved(store, last).await, "drift is found");
    assert_eq!(
        detections(store).await,
        told + 1,
        "the first drift is audited"
    );
    let found = store.target_drift(None).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].env, "dev");
    assert_eq!(
        found[0].report,
        report("dev-1", "web", "1.1", edited.clone(), 110)
    );

    assert!(!store
        .record_drift(
            report("dev-1", "web", "1.1", edited.clone(), 120),
            detected()
        )
        .await
        .unwrap());
    assert!(!moved(store, last).await, "the same findings checked again");
    let found = store.target_drift(Some("web")).await.unwrap();
    assert_eq!(found[0].report.checked_ms, 120, "the check is kept");

    let more = vec![
        path("bin/run", DriftChange::Mode, 130),
        path("config/app.yml", DriftChange::Content, 100),
    ];
    assert!(!store
        .record_drift(report("dev-1", "web", "1.1", more.clone(), 130), detected())
        .await
        .unwrap());
    assert!(moved(store, last).await, "other findings");
    assert_eq!(
        detections(store).await,
        told + 1,
        "more drift on the same release is not new"
    );
    // More paths differ than the server keeps: the count says how many.
    let many = DriftReport {
        path_count: 12_000,
        ..report(
            "dev-1",
            "api",
            "1.9",
            vec![path("x", DriftChange::Deleted, 5)],
            131,
        )
    };
    assert!(store.record_drift(many.clone(), detected()).await.unwrap());
    assert!(moved(store, last).await, "another application's drift");
    let by_app: Vec<(String, usize, u64)> = store
        .target_drift(None)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.report.app, d.report.paths.len(), d.report.path_count))
        .collect();
    assert_eq!(
        by_app,
        [("api".to_owned(), 1, 12_000), ("web".to_owned(), 2, 2)]
    );
    let web = store.target_drift(Some("web")).await.unwrap();
    assert_eq!(web.len(), 1);
    assert_eq!(web[0].report.paths, more);

    assert!(!store
        .record_drift(report("dev-1", "web", "1.1", Vec::new(), 140), detected())
        .await
        .unwrap());
    assert!(moved(store, last).await, "drift is gone");
    let web = store.target_drift(Some("web")).await.unwrap();
    assert!(web[0].report.paths.is_empty(), "the empty check is kept");
    assert_eq!(detections(store).await, told + 2);
    // Drift that comes back after it was gone, or on another release, is new again.
    let again = vec![path("index.html", DriftChange::Content, 141)];
    assert!(store
        .record_drift(
            report("dev-1", "web", "1.1", again.clone(), 141),
            detected()
        )
        .await
        .unwrap());
    assert!(store
        .record_drift(report("dev-1", "web", "1.2", again, 142), detected())
        .await
        .unwrap());
    assert_eq!(detections(store).await, told + 4);
    assert!(!store
        .record_drift(report("dev-1", "web", "1.1", Vec::new(), 143), detected())
        .await
        .unwrap());
    moved(store, last).await;

    // Unknown targets and applications change nothing.
    for (target, app) in [("nowhere-1", "web"), ("dev-1", "nothing")] {
        let refused = store
            .record_drift(report(target, app, "1.0", Vec::new(), 150), detected())
            .await;
        assert!(
            matches!(refused, Err(StoreError::NotFound { .. })),
            "{target} {app}: {refused:?}"
        );
    }
    assert!(!moved(store, last).await, "refusals change nothing");

    // A removed target's drift goes with it.
    store
        .create_enrollment(
            "dev",
            "dev-9",
            "enroll-dev-9",
            100,
            audit("target.enroll-token", "", None),
        )
        .await
        .unwrap();
    store
        .record_drift(
            report(
                "dev-9",
                "web",
                "1.1",
                vec![path("a", DriftChange::Kind, 7)],
                160,
            ),
            detected(),
        )
        .await
        .unwrap();
    assert_eq!(store.target_drift(Some("web")).await.unwrap().len(), 2);
    moved(store, last).await;
    store
        .remove_target("dev-9", 170, audit("target.remove", "", None))
        .await
        .unwrap();
    assert!(moved(store, last).await, "a target is removed");
    let web = store.target_drift(Some("web")).await.unwrap();
    assert_eq!(web.len(), 1);
    assert_eq!(web[0].report.target, "dev-1");
    let refused = store
        .record_drift(report("dev-9", "web", "1.1", Vec::new(), 180), detected())
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound { .. })),
        "{refused:?}"
    );
}
