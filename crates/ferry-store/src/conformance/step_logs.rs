//! What targets' hooks and health checks printed: kept per deployment, target and step, a
//! deploy run again replacing its own steps and nothing else.

use ferry_domain::step_log::StepLog;

use crate::{StepLogRecord, Store};

fn step(name: &str, output: &str) -> StepLog {
    StepLog {
        step: name.into(),
        command: "./run.sh".into(),
        ended: "exited with status 0".into(),
        succeeded: !output.contains("failed"),
        output: output.into(),
    }
}

/// The steps as (target, version, position, step, output).
fn summary(records: &[StepLogRecord]) -> Vec<(&str, &str, u32, &str, &str)> {
    records
        .iter()
        .map(|r| {
            (
                r.target.as_str(),
                r.version.as_str(),
                r.position,
                r.log.step.as_str(),
                r.log.output.as_str(),
            )
        })
        .collect()
}

/// The step logs of `deployment`, an existing deployment with no logs yet.
pub async fn step_logs_part(store: &dyn Store, deployment: i64) {
    assert!(store.step_logs(deployment, None).await.unwrap().is_empty());
    let first = vec![
        step("hook before_switch", "migrating\n"),
        step("health check", "attempt 1: failed\n"),
    ];
    store
        .record_step_logs(deployment, "dev-1", "1.1", first, 10)
        .await
        .unwrap();
    store
        .record_step_logs(
            deployment,
            "dev-2",
            "1.1",
            vec![step("health check", "up\n")],
            11,
        )
        .await
        .unwrap();
    // The same deploy run again (the agent reconnected): its steps replace the first run's.
    let again = vec![
        step("hook before_switch", "migrated already\n"),
        step("health check", "attempt 1: up\n"),
    ];
    store
        .record_step_logs(deployment, "dev-1", "1.1", again, 12)
        .await
        .unwrap();
    // Going back to another release adds its steps after them; a report with none keeps all.
    store
        .record_step_logs(
            deployment,
            "dev-1",
            "1.0",
            vec![step("hook after_switch", "back\n")],
            13,
        )
        .await
        .unwrap();
    store
        .record_step_logs(deployment, "dev-1", "1.1", Vec::new(), 14)
        .await
        .unwrap();

    let all = store.step_logs(deployment, None).await.unwrap();
    assert_eq!(
        summary(&all),
        [
            (
                "dev-1",
                "1.1",
                0,
                "hook before_switch",
                "migrated already\n"
            ),
            ("dev-1", "1.1", 1, "health check", "attempt 1: up\n"),
            ("dev-1", "1.0", 2, "hook after_switch", "back\n"),
            ("dev-2", "1.1", 0, "health check", "up\n"),
        ]
    );
    assert_eq!(all[0].at_ms, 12);
    assert_eq!(all[0].log, step("hook before_switch", "migrated already\n"));
    let one = store.step_logs(deployment, Some("dev-2")).await.unwrap();
    assert_eq!(summary(&one), [("dev-2", "1.1", 0, "health check", "up\n")]);
    assert!(store
        .step_logs(deployment, Some("pp-9"))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .step_logs(deployment + 1000, None)
        .await
        .unwrap()
        .is_empty());
}
