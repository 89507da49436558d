//! Backups of applications' data: numbered, listed newest first, their blobs referenced
//! (so garbage collection keeps them) until retention deletes them, and schedules.

use ferry_domain::app_backup::BackupReason;

use super::{assert_not_found, audit};
use crate::{AppBackup, BackupSchedule, NewAppBackup, Store};

fn backup(app: &str, created_ms: i64, reason: BackupReason) -> AppBackup {
    AppBackup {
        id: 0,
        app: app.into(),
        env: "prd".into(),
        target: "prd-1".into(),
        version: Some("1.1".into()),
        reason,
        paths: vec!["uploads".into(), "db/dump.sql".into()],
        requested_by: "admin".into(),
        created_ms,
        digest: format!("digest-{created_ms}"),
        manifest_blob: format!("manifest-{created_ms}"),
        files: 3,
        bytes: 300,
        new_bytes: 30,
    }
}

/// `app` exists; no blob named `backup-*` or `manifest-*` is referenced yet.
pub async fn app_backups_part(store: &dyn Store, app: &str) {
    assert!(store.list_app_backups(Some(app)).await.unwrap().is_empty());
    let mut ids = Vec::new();
    for (at, reason, blobs) in [
        (1_000, BackupReason::OnDemand, vec!["backup-a", "backup-b"]),
        (
            2_000,
            BackupReason::BeforeDeployment,
            vec!["backup-b", "backup-c"],
        ),
    ] {
        let new = backup(app, at, reason);
        let mut refs: Vec<(String, u64)> = blobs.iter().map(|b| ((*b).into(), 10)).collect();
        refs.push((new.manifest_blob.clone(), 1));
        let created = store
            .create_app_backup(
                NewAppBackup {
                    backup: new.clone(),
                    blobs: refs,
                },
                audit("backup.create", "", Some(app)),
            )
            .await
            .unwrap();
        assert_eq!(
            created,
            AppBackup {
                id: created.id,
                ..new
            }
        );
        ids.push(created.id);
    }
    assert!(ids[1] > ids[0]);
    let listed = store.list_app_backups(Some(app)).await.unwrap();
    assert_eq!(
        listed.iter().map(|b| b.id).collect::<Vec<_>>(),
        [ids[1], ids[0]]
    );
    assert_eq!(listed[0].reason, BackupReason::BeforeDeployment);
    assert_eq!(listed[0].paths, ["uploads", "db/dump.sql"]);
    assert!(store
        .list_app_backups(Some("no-such-app"))
        .await
        .unwrap()
        .is_empty());
    assert!(store.list_app_backups(None).await.unwrap().len() >= 2);
    assert_eq!(
        store.app_backup(ids[0]).await.unwrap(),
        Some(listed[1].clone())
    );
    assert_eq!(store.app_backup(-1).await.unwrap(), None);
    let event = store
        .audit_events(&crate::AuditFilter {
            app: Some(app.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        event
            .iter()
            .any(|e| e.record.subject == format!("backup/{}", ids[1])),
        "the audit record names the backup"
    );

    let referenced = store.referenced_blobs().await.unwrap();
    for blob in ["backup-a", "backup-b", "backup-c", "manifest-1000"] {
        assert!(referenced.contains(blob), "{blob}");
    }
    store
        .delete_app_backups(
            app,
            vec![(
                ids[0],
                vec!["backup-a".into(), "backup-b".into(), "manifest-1000".into()],
            )],
            audit("backup.prune", "", Some(app)),
        )
        .await
        .unwrap();
    let referenced = store.referenced_blobs().await.unwrap();
    assert!(!referenced.contains("backup-a") && !referenced.contains("manifest-1000"));
    assert!(
        referenced.contains("backup-b"),
        "still referenced by the newer backup"
    );
    assert_not_found(
        store
            .delete_app_backups(
                app,
                vec![(ids[0], vec![])],
                audit("backup.prune", "", Some(app)),
            )
            .await,
        "deleting a backup twice",
    );
    assert_not_found(
        store
            .create_app_backup(
                NewAppBackup {
                    backup: backup("no-such-app", 1, BackupReason::Scheduled),
                    blobs: vec![],
                },
                audit("backup.create", "", None),
            )
            .await,
        "a backup of an unknown application",
    );

    assert!(store.backup_schedules().await.unwrap().is_empty());
    for schedule in [
        BackupSchedule {
            every_ms: Some(86_400_000),
            keep: "7,7d,4w".into(),
        },
        BackupSchedule {
            every_ms: None,
            keep: "3".into(),
        },
    ] {
        store
            .set_backup_schedule(app, schedule.clone(), audit("app.backups", "", Some(app)))
            .await
            .unwrap();
        assert_eq!(
            store.backup_schedules().await.unwrap(),
            [(app.to_owned(), schedule)]
        );
    }
}
