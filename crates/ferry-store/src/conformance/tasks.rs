//! Agent tasks: stored with the audit record of what they start (which learns the task's
//! number), pending for their target until its agent reports, finished once.

use ferry_domain::task::TaskState;

use super::audit;
use crate::{AuditFilter, NewTask, Store, StoreError, TaskOutcome};

fn task(target: &str, app: &str, at: i64) -> NewTask {
    NewTask {
        target: target.into(),
        app: app.into(),
        work: r#"{"kind":"check_drift"}"#.into(),
        requested_by: "admin".into(),
        requested_ms: at,
    }
}

fn outcome(id: i64, target: &str, state: TaskState, at: i64) -> TaskOutcome {
    TaskOutcome {
        id,
        target: target.into(),
        state,
        message: format!("{state} at {at}"),
        detail: Some(r#"{"paths":2}"#.into()),
        finished_ms: at,
    }
}

/// The numbers of `target`'s pending tasks requested since `since_ms`.
async fn pending(store: &dyn Store, target: &str, since_ms: i64) -> Vec<i64> {
    let tasks = store.pending_tasks(target, since_ms).await.unwrap();
    tasks.iter().map(|t| t.id).collect()
}

/// The tasks part of the reads story: target `dev-1` (in dev) and applications `web` and
/// `api` exist.
pub async fn tasks_part(store: &dyn Store) {
    assert!(store.pending_tasks("dev-1", 0).await.unwrap().is_empty());
    let mut record = audit("drift.check", "target/dev-1", Some("web"));
    record.details = r#"{"env":"dev","task":0}"#.into();
    let first = store
        .request_task(task("dev-1", "web", 1_000), record)
        .await
        .unwrap();
    assert_eq!(
        (
            first.target.as_str(),
            first.env.as_str(),
            first.app.as_str()
        ),
        ("dev-1", "dev", "web")
    );
    assert_eq!(first.state, TaskState::Pending);
    assert_eq!(first.work, r#"{"kind":"check_drift"}"#);
    assert_eq!((first.message.as_ref(), first.finished_ms), (None, None));
    let events = store.audit_events(&AuditFilter::default()).await.unwrap();
    let requested = events.last().unwrap();
    assert_eq!(requested.record.action, "drift.check");
    assert_eq!(
        requested.record.details,
        format!(r#"{{"env":"dev","task":{}}}"#, first.id),
        "the audit record names the task"
    );
    let second = store
        .request_task(
            task("dev-1", "api", 2_000),
            audit("drift.check", "target/dev-1", Some("api")),
        )
        .await
        .unwrap();
    assert!(second.id > first.id);
    assert_eq!(
        pending(store, "dev-1", 0).await,
        [first.id, second.id],
        "oldest first"
    );
    assert_eq!(
        pending(store, "dev-1", 1_500).await,
        [second.id],
        "only those since"
    );

    // Only the target's own agent reports, and only once.
    let other = store
        .finish_task(outcome(first.id, "dev-9", TaskState::Failed, 3_000))
        .await;
    assert!(
        matches!(other, Err(StoreError::NotFound { .. })),
        "{other:?}"
    );
    let done = store
        .finish_task(outcome(first.id, "dev-1", TaskState::Succeeded, 3_000))
        .await
        .unwrap();
    assert_eq!(done.state, TaskState::Succeeded);
    assert_eq!(done.message.as_deref(), Some("succeeded at 3000"));
    assert_eq!(done.detail.as_deref(), Some(r#"{"paths":2}"#));
    assert_eq!(done.finished_ms, Some(3_000));
    assert_eq!(store.task(first.id).await.unwrap(), Some(done.clone()));
    let again = store
        .finish_task(outcome(first.id, "dev-1", TaskState::Failed, 4_000))
        .await;
    assert!(matches!(again, Err(StoreError::Refused(_))), "{again:?}");
    assert_eq!(store.task(first.id).await.unwrap(), Some(done));
    assert_eq!(pending(store, "dev-1", 0).await, [second.id]);
    store
        .finish_task(outcome(second.id, "dev-1", TaskState::Failed, 5_000))
        .await
        .unwrap();
    assert!(store.pending_tasks("dev-1", 0).await.unwrap().is_empty());
    assert_eq!(store.task(999_999).await.unwrap(), None);

    // Unknown targets and applications are refused, and nothing is audited.
    let before = store
        .audit_events(&AuditFilter::default())
        .await
        .unwrap()
        .len();
    for (target, app) in [("nowhere-1", "web"), ("dev-1", "nothing")] {
        let refused = store
            .request_task(task(target, app, 6_000), audit("drift.check", "", None))
            .await;
        assert!(
            matches!(refused, Err(StoreError::NotFound { .. })),
            "{target} {app}: {refused:?}"
        );
    }
    assert_eq!(
        store
            .audit_events(&AuditFilter::default())
            .await
            .unwrap()
            .len(),
        before
    );
}
