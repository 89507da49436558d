//! Configuration revisions: numbered one after the other, a revision made from an older
//! one refused as a conflict that changes nothing, the newest and any one read back, the
//! history newest first, the secret key the installation claimed, resealing all at once or
//! not at all, and an environment's rename and removal taking its configuration along.

use ferry_domain::config::ConfigKey;
use ferry_domain::config_revision::{ChangeKind, ConfigChange};

use super::audit;
use crate::{ConfigRevision, Store, StoreError, StoredEntry, StoredValue};

fn revision(app: &str, env: &str, number: u64, sealed: Option<&str>) -> ConfigRevision {
    let key = |k: &str| ConfigKey::parse(k).unwrap();
    let mut entries = vec![StoredEntry {
        key: key("DATABASE_URL"),
        value: StoredValue::Plain(format!("postgres://db/{number}")),
    }];
    if let Some(sealed_with) = sealed {
        entries.push(StoredEntry {
            key: key("API_KEY"),
            value: StoredValue::Sealed(format!("v1.sealed-by-{sealed_with}-{number}")),
        });
    }
    ConfigRevision {
        app: app.into(),
        env: env.into(),
        revision: number,
        created_ms: 1_000 * number as i64,
        author: "admin".into(),
        entries,
        changes: vec![ConfigChange {
            key: key("DATABASE_URL"),
            change: ChangeKind::Changed,
            secret: false,
        }],
        sealed_with: sealed.map(str::to_owned),
    }
}

/// `app` exists, in a pipeline with `dev` and `prd`, and has no configuration yet; no
/// environment `cfg-a` exists.
pub async fn configuration_part(store: &dyn Store, app: &str) {
    let change = || audit("config.change", "", Some(app));
    assert_eq!(store.config_revision(app, "prd", None).await.unwrap(), None);
    // The first key claimed is the installation's; a later claim gets that one back.
    assert_eq!(store.secret_key_id().await.unwrap(), None);
    assert_eq!(store.claim_secret_key("key-a").await.unwrap(), "key-a");
    assert_eq!(store.claim_secret_key("key-z").await.unwrap(), "key-a");

    // Numbered one after the other; a gap or a repeat is a conflict that changes nothing.
    for number in [2, 0] {
        let refused = store
            .save_config_revision(revision(app, "prd", number, None), change())
            .await;
        assert!(
            matches!(refused, Err(StoreError::Conflict(_))),
            "{refused:?}"
        );
    }
    let first = revision(app, "prd", 1, None);
    let second = revision(app, "prd", 2, Some("key-a"));
    for r in [&first, &second] {
        let saved = store.save_config_revision(r.clone(), change()).await;
        assert_eq!(saved.unwrap(), *r);
    }
    let again = store.save_config_revision(second.clone(), change()).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let unknown_env = store
        .save_config_revision(revision(app, "nowhere", 1, None), change())
        .await;
    assert!(
        matches!(unknown_env, Err(StoreError::NotFound { .. })),
        "{unknown_env:?}"
    );
    store
        .save_config_revision(revision(app, "dev", 1, Some("key-a")), change())
        .await
        .unwrap();

    // Read back: the newest, one by number, the history newest first.
    let newest = store.config_revision(app, "prd", None).await.unwrap();
    assert_eq!(newest.as_ref(), Some(&second));
    let one = store.config_revision(app, "prd", Some(1)).await.unwrap();
    assert_eq!(one.as_ref(), Some(&first));
    assert_eq!(
        store.config_revision(app, "prd", Some(9)).await.unwrap(),
        None
    );
    let history = store.config_history(app, "prd").await.unwrap();
    assert_eq!(history, vec![second.clone(), first.clone()]);

    // Resealing: all revisions and the claimed key at once, or nothing when either moved on.
    let sealed = store.sealed_config_revisions().await.unwrap();
    assert_eq!(sealed.len(), 2);
    let resealed: Vec<ConfigRevision> = sealed
        .iter()
        .map(|r| revision(&r.app, &r.env, r.revision, Some("key-b")))
        .collect();
    let stale = store
        .reseal_config(
            "key-x",
            "key-b",
            resealed.clone(),
            audit("config.reseal", "", None),
        )
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(
        store.secret_key_id().await.unwrap().as_deref(),
        Some("key-a")
    );
    store
        .reseal_config("key-a", "key-b", resealed, audit("config.reseal", "", None))
        .await
        .unwrap();
    assert_eq!(
        store.secret_key_id().await.unwrap().as_deref(),
        Some("key-b")
    );
    let prd = store
        .config_revision(app, "prd", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(prd, revision(app, "prd", 2, Some("key-b")));

    // An environment's configuration follows its rename and goes with its removal.
    store
        .create_environment("cfg-a", None, audit("environment.create", "", None))
        .await
        .unwrap();
    store
        .save_config_revision(revision(app, "cfg-a", 1, None), change())
        .await
        .unwrap();
    store
        .rename_environment("cfg-a", "cfg-b", audit("environment.rename", "", None))
        .await
        .unwrap();
    assert_eq!(
        store.config_revision(app, "cfg-a", None).await.unwrap(),
        None
    );
    let moved = store.config_revision(app, "cfg-b", None).await.unwrap();
    assert_eq!(moved.map(|r| r.revision), Some(1));
    store
        .delete_environment("cfg-b", audit("environment.delete", "", None))
        .await
        .unwrap();
    assert!(store.config_history(app, "cfg-b").await.unwrap().is_empty());

    // Secrets read back leave an event and change nothing else.
    let before = store.audit_chain().await.unwrap().events.len();
    store
        .record_reveal(audit("config.reveal", "", Some(app)))
        .await
        .unwrap();
    assert_eq!(store.audit_chain().await.unwrap().events.len(), before + 1);
}
