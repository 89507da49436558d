//! Taking access away: a rotated token, a disabled user, a removed target, and the audit
//! head's seal. Runs on its own empty store.

use ferry_domain::audit::verify_chain;

use super::{audit, first_start, new_user};
use crate::{AgentBuild, DiskSpace, NewApp, NewSession, Store, StoreError, StoreResult, User};

/// Disables `user` at `at_ms`, or enables them with `None`; one admin must stay enabled.
async fn set_disabled(store: &dyn Store, user: &str, at_ms: Option<i64>) -> StoreResult<User> {
    let action = if at_ms.is_some() {
        "user.disable"
    } else {
        "user.enable"
    };
    store
        .set_user_disabled(
            user,
            at_ms,
            &["admin".to_owned()],
            audit(action, &format!("user/{user}"), None),
        )
        .await
}

/// Starts a dashboard session `hash` of `user` at `at_ms`, lasting 100 ms.
async fn log_in(store: &dyn Store, user: &str, hash: &str, at_ms: i64) -> StoreResult<()> {
    let session = NewSession {
        hash: hash.to_owned(),
        user: user.to_owned(),
        created_ms: at_ms,
        expires_ms: at_ms + 100,
    };
    let record = audit("user.login", &format!("user/{user}"), None);
    store.create_session(session, record).await
}

/// The name of the user whose session `hash` is, at `now_ms`.
async fn session_user(store: &dyn Store, hash: &str, now_ms: i64) -> Option<String> {
    let holder = store.user_by_session(hash, now_ms).await.unwrap()?;
    assert!(!holder.roles.is_empty(), "a session comes with the roles");
    Some(holder.user.name)
}

/// Dashboard sessions: they expire, end at logout, and end with the user's tokens, their
/// password or their account.
async fn sessions_story(store: &dyn Store) {
    log_in(store, "dana", "s1", 1000).await.unwrap();
    assert_eq!(
        session_user(store, "s1", 1099).await.as_deref(),
        Some("dana")
    );
    assert_eq!(session_user(store, "s1", 1100).await, None, "expired");
    assert_eq!(session_user(store, "unknown", 1000).await, None);
    assert!(matches!(
        log_in(store, "nobody", "s0", 1000).await,
        Err(StoreError::NotFound { .. })
    ));

    // Logging out ends one session; the user's others stay.
    log_in(store, "dana", "s2", 2000).await.unwrap();
    log_in(store, "dana", "s3", 2000).await.unwrap();
    let logout = || audit("user.logout", "user/dana", None);
    store.end_session("s2", logout()).await.unwrap();
    assert_eq!(session_user(store, "s2", 2001).await, None);
    assert_eq!(
        session_user(store, "s3", 2001).await.as_deref(),
        Some("dana")
    );
    assert!(matches!(
        store.end_session("s2", logout()).await,
        Err(StoreError::NotFound { .. })
    ));

    // Each of these ends every session of the user, and only theirs.
    log_in(store, "root2", "other", 2000).await.unwrap();
    let rotate = audit("user.rotate-token", "user/dana", None);
    store
        .rotate_token("dana", "hash-of-dana-3", 2001, rotate)
        .await
        .unwrap();
    assert_eq!(session_user(store, "s3", 2002).await, None, "token rotated");
    log_in(store, "dana", "s4", 2002).await.unwrap();
    let password = audit("user.set-password", "user/dana", None);
    store
        .set_password_hash("dana", "$argon2id$third", password)
        .await
        .unwrap();
    assert_eq!(session_user(store, "s4", 2003).await, None, "password set");
    log_in(store, "dana", "s5", 2003).await.unwrap();
    set_disabled(store, "dana", Some(2004)).await.unwrap();
    assert_eq!(session_user(store, "s5", 2004).await, None, "disabled");
    set_disabled(store, "dana", None).await.unwrap();
    assert_eq!(
        session_user(store, "other", 2005).await.as_deref(),
        Some("root2")
    );
    store
        .end_session("other", audit("user.logout", "user/root2", None))
        .await
        .unwrap();
}

/// The story of revocation, on an empty store keyed with `audit_key`.
pub async fn revocation_story(store: &dyn Store, audit_key: &[u8; 32]) {
    store
        .bootstrap(first_start(), audit("server.bootstrap", "user/admin", None))
        .await
        .unwrap();
    for (name, role) in [("dana", "developer"), ("root2", "admin")] {
        store
            .create_user(
                new_user(name, role, &[]),
                audit("user.create", &format!("user/{name}"), None),
            )
            .await
            .unwrap();
    }

    // A rotated token replaces the old one at once.
    store
        .rotate_token(
            "dana",
            "hash-of-dana-2",
            5,
            audit("user.rotate-token", "user/dana", None),
        )
        .await
        .unwrap();
    assert_eq!(store.user_by_token("hash-of-dana").await.unwrap(), None);
    let dana = store
        .user_by_token("hash-of-dana-2")
        .await
        .unwrap()
        .unwrap()
        .user;
    assert_eq!((dana.name.as_str(), dana.disabled_ms), ("dana", None));
    assert!(matches!(
        store
            .rotate_token(
                "nobody",
                "h",
                5,
                audit("user.rotate-token", "user/nobody", None)
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));

    // A password hash is kept per user, replaced when set again.
    assert_eq!(store.password_hash("dana").await.unwrap(), None);
    for hash in ["$argon2id$first", "$argon2id$second"] {
        let record = audit("user.set-password", "user/dana", None);
        store.set_password_hash("dana", hash, record).await.unwrap();
        assert_eq!(
            store.password_hash("dana").await.unwrap().as_deref(),
            Some(hash)
        );
    }
    assert_eq!(store.password_hash("root2").await.unwrap(), None);
    let nobody = audit("user.set-password", "user/nobody", None);
    assert!(matches!(
        store.set_password_hash("nobody", "h", nobody).await,
        Err(StoreError::NotFound { .. })
    ));

    // A disabled user keeps their token, which reads as disabled, until enabled again.
    let disabled = set_disabled(store, "dana", Some(7)).await.unwrap();
    assert_eq!(disabled.disabled_ms, Some(7));
    let seen = store
        .user_by_token("hash-of-dana-2")
        .await
        .unwrap()
        .unwrap()
        .user;
    assert_eq!(seen.disabled_ms, Some(7));
    set_disabled(store, "dana", None).await.unwrap();
    assert_eq!(
        store
            .user_by_token("hash-of-dana-2")
            .await
            .unwrap()
            .unwrap()
            .user
            .disabled_ms,
        None
    );

    sessions_story(store).await;

    // One of two admins may be disabled; the last enabled one may not, and nothing changes.
    set_disabled(store, "root2", Some(8)).await.unwrap();
    let events_before = store.audit_chain().await.unwrap().events.len();
    match set_disabled(store, "admin", Some(9)).await {
        Err(StoreError::Refused(why)) => assert!(why.contains("last enabled admin"), "{why}"),
        other => panic!("disabling the last admin: {other:?}"),
    }
    assert_eq!(
        store
            .user_by_token("hash-of-admin")
            .await
            .unwrap()
            .unwrap()
            .user
            .disabled_ms,
        None
    );
    assert_eq!(
        store.audit_chain().await.unwrap().events.len(),
        events_before
    );

    // A removed target: its credential stops working, it leaves the lists, and its name
    // can be enrolled again by a new agent, which takes over its placements.
    store
        .create_team("shop", audit("team.create", "team/shop", None))
        .await
        .unwrap();
    store
        .create_app(
            NewApp {
                name: "web".into(),
                team: "shop".into(),
                keep_releases: 5,
                created_ms: 1,
            },
            audit("app.create", "app/web", Some("web")),
        )
        .await
        .unwrap();
    for (target, token, credential) in [("dev-1", "e1", "c1"), ("dev-2", "e2", "c2")] {
        store
            .create_enrollment(
                "dev",
                target,
                token,
                100,
                audit("target.enroll-token", "", None),
            )
            .await
            .unwrap();
        store
            .enroll_target(token, credential, 10, audit("target.enroll", "", None))
            .await
            .unwrap();
    }
    let dev_1 = ["dev-1".to_owned()];
    let place_on_dev_1 = || {
        store.place_app(
            "web",
            "dev",
            &dev_1,
            audit("app.place", "app/web", Some("web")),
        )
    };
    place_on_dev_1().await.unwrap();
    // What an agent says of itself is kept with its target, until another agent enrolls.
    let build = |version: &str, said_ms| AgentBuild {
        version: version.to_owned(),
        protocol: 1,
        disk: Some(DiskSpace {
            free: 5 << 40,
            total: 8 << 40,
        }),
        said_ms,
    };
    for target in ["dev-1", "dev-2"] {
        store
            .record_agent_build(target, &build("0.1.0", 11))
            .await
            .unwrap();
    }
    let said = store.target_by_credential("c2").await.unwrap().unwrap();
    assert_eq!(said.agent, Some(build("0.1.0", 11)));
    let removed = store
        .remove_target("dev-1", 20, audit("target.remove", "target/dev-1", None))
        .await
        .unwrap();
    assert_eq!(removed.env, "dev");
    assert_eq!(store.target_by_credential("c1").await.unwrap(), None);
    let names: Vec<String> = store
        .list_targets()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["dev-2"]);
    // Placed on a removed target only: placed nowhere, not everywhere.
    assert!(store.placement("web", "dev").await.unwrap().is_empty());
    assert!(matches!(
        store
            .remove_target("dev-1", 21, audit("target.remove", "target/dev-1", None))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        place_on_dev_1().await,
        Err(StoreError::Refused(_))
    ));
    match store
        .create_enrollment(
            "pp",
            "dev-1",
            "e3",
            100,
            audit("target.enroll-token", "", None),
        )
        .await
    {
        Err(StoreError::Refused(why)) => assert!(why.contains("after it was removed"), "{why}"),
        other => panic!("a removed target in another environment: {other:?}"),
    }
    store
        .create_enrollment(
            "dev",
            "dev-1",
            "e4",
            100,
            audit("target.enroll-token", "", None),
        )
        .await
        .unwrap();
    let back = store
        .enroll_target("e4", "c4", 30, audit("target.enroll", "", None))
        .await
        .unwrap();
    assert_eq!((back.name.as_str(), back.enrolled_ms), ("dev-1", Some(30)));
    assert_eq!(
        back.agent, None,
        "the agent enrolled again has said nothing yet"
    );
    store
        .record_agent_build("dev-1", &build("0.2.0", 31))
        .await
        .unwrap();
    let listed = store.list_targets().await.unwrap();
    let agents: Vec<_> = listed
        .iter()
        .map(|t| (t.name.as_str(), t.agent.clone()))
        .collect();
    assert_eq!(
        agents,
        [
            ("dev-1", Some(build("0.2.0", 31))),
            ("dev-2", Some(build("0.1.0", 11)))
        ]
    );
    assert_eq!(store.target_by_credential("c1").await.unwrap(), None);
    assert_eq!(
        store
            .target_by_credential("c4")
            .await
            .unwrap()
            .unwrap()
            .name,
        "dev-1"
    );
    assert_eq!(store.placement("web", "dev").await.unwrap(), ["dev-1"]);

    // Every change above was audited, and the head carries its seal.
    let chain = store.audit_chain().await.unwrap();
    let head = chain.head.as_ref().expect("a head");
    assert!(head.is_sealed_with(audit_key));
    assert!(!head.is_sealed_with(&[0; 32]));
    assert_eq!(
        verify_chain(audit_key, &chain.events, chain.head.as_ref()),
        Ok(chain.events.len() as u64)
    );
}
