//! The production-support part of the story: team support settings, routing rules, the
//! maintaining team, incidents with their backlog items, and backport obligations closed by a
//! release or waived. Runs on its own empty store.

use ferry_domain::audit::AuditRecord;
use ferry_domain::backport::ObligationStatus;
use ferry_domain::deployment::{Deployment, Kind, Status, Strategy};
use ferry_domain::incident::{IncidentStatus, Severity};
use ferry_domain::rotation::{Rotation, DEFAULT_ESCALATION_MS};
use ferry_domain::routing::RoutingRule;
use ferry_domain::support::{BackportMode, SupportPath};

use super::{assert_not_found, audit, first_start, ship_hotfix};
use crate::{
    Backport, DeploymentRecord, DeploymentUpdate, IncidentRecord, IncidentStep, IncidentUpdate,
    NewApp, NewRelease, Release, ReleaseOutcome, Store, StoreError, TeamSupport,
};

fn incident(path: SupportPath, status: IncidentStatus) -> IncidentRecord {
    IncidentRecord {
        id: 0,
        app: "web".into(),
        env: "prd".into(),
        severity: Severity::Critical,
        title: "checkout down".into(),
        category: None,
        description: Some("since 10:02".into()),
        status,
        path,
        team: "shop".into(),
        reporter: "sam".into(),
        assignee: Some("amy".into()),
        escalation_level: 0,
        base_version: Some("1.0".into()),
        suggested_version: Some("1.0.1".into()),
        source: Some(r#"{"kind":"directory"}"#.into()),
        opened_ms: 10,
        acknowledged_ms: None,
        acknowledged_by: None,
        resolved_ms: None,
        resolved_by: None,
        history: vec![IncidentStep {
            at_ms: 10,
            actor: "sam".into(),
            what: "opened".into(),
        }],
    }
}

fn release(version: &str, hotfix_of: Option<&str>, closes: &[i64], fulfils: &[i64]) -> NewRelease {
    NewRelease {
        release: Release {
            app: "web".into(),
            version: version.into(),
            digest: format!("d-{version}"),
            manifest_blob: format!("m-{version}"),
            files: 1,
            bytes: 1,
            source: "{}".into(),
            notes: None,
            created_ms: 20,
            created_by: "admin".into(),
            hotfix_of: hotfix_of.map(str::to_owned),
            incident: None,
        },
        blobs: vec![(format!("m-{version}"), 1)],
        closes: closes.to_vec(),
        fulfils: fulfils.to_vec(),
    }
}

fn refused<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Refused(_)) => {}
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

/// Runs the support story on an empty store.
pub async fn support_story(store: &dyn Store) {
    store
        .bootstrap(first_start(), audit("server.bootstrap", "", None))
        .await
        .unwrap();
    for team in ["shop", "ops"] {
        store
            .create_team(team, audit("team.create", "", None))
            .await
            .unwrap();
    }
    let app = NewApp {
        name: "web".into(),
        team: "shop".into(),
        keep_releases: 5,
        created_ms: 1,
    };
    store
        .create_app(app, audit("app.create", "", Some("web")))
        .await
        .unwrap();
    let events = || async { store.audit_chain().await.unwrap().events.len() };

    // Team support: defaults until set, then exactly what was stored.
    let support = store.team_support("shop").await.unwrap();
    assert_eq!(support.rotation, None);
    assert_eq!(support.escalate_after_ms, DEFAULT_ESCALATION_MS);
    let set = TeamSupport {
        team: "shop".into(),
        rotation: Some(Rotation {
            members: vec!["amy".into(), "bob".into()],
            shift_ms: 3_600_000,
            start_ms: 5,
        }),
        escalate_after_ms: 600_000,
    };
    store
        .set_team_support(set.clone(), audit("team.support", "", None))
        .await
        .unwrap();
    assert_eq!(store.team_support("shop").await.unwrap(), set);
    assert_not_found(
        store.team_support("nope").await,
        "support of an unknown team",
    );

    // Routing rules and the maintaining team.
    store
        .set_routing_rule("infra", Some("ops"), audit("route.set", "", None))
        .await
        .unwrap();
    assert_eq!(
        store.routing_rules().await.unwrap(),
        [RoutingRule {
            category: "infra".into(),
            team: "ops".into()
        }]
    );
    assert_not_found(
        store
            .set_routing_rule("db", Some("nope"), audit("x", "", None))
            .await,
        "a rule to an unknown team",
    );
    store
        .set_routing_rule("infra", None, audit("route.remove", "", None))
        .await
        .unwrap();
    assert!(store.routing_rules().await.unwrap().is_empty());
    assert_not_found(
        store
            .set_routing_rule("infra", None, audit("x", "", None))
            .await,
        "removing a rule twice",
    );
    store
        .set_maintainer("web", Some("ops"), audit("app.maintainer", "", Some("web")))
        .await
        .unwrap();
    assert_eq!(
        store
            .app("web")
            .await
            .unwrap()
            .unwrap()
            .maintainer
            .as_deref(),
        Some("ops")
    );
    assert_not_found(
        store
            .set_maintainer("web", Some("nope"), audit("x", "", None))
            .await,
        "an unknown maintaining team",
    );
    assert_not_found(
        store
            .set_maintainer("nope", None, audit("x", "", None))
            .await,
        "an unknown application",
    );
    store
        .set_keep("web", 3, audit("app.keep", "", Some("web")))
        .await
        .unwrap();
    assert_eq!(store.app("web").await.unwrap().unwrap().keep_releases, 3);
    assert_not_found(
        store.set_keep("nope", 3, audit("x", "", None)).await,
        "keeping releases of an unknown application",
    );
    let user = ferry_domain::run_as::RunAs::parse("web-svc").unwrap();
    store
        .set_run_as("web", Some(&user), audit("app.run-as", "", Some("web")))
        .await
        .unwrap();
    assert_eq!(store.app("web").await.unwrap().unwrap().run_as, Some(user));
    store
        .set_run_as("web", None, audit("app.run-as", "", Some("web")))
        .await
        .unwrap();
    assert_eq!(store.app("web").await.unwrap().unwrap().run_as, None);
    assert_not_found(
        store.set_run_as("nope", None, audit("x", "", None)).await,
        "a user for an unknown application",
    );

    // Incidents: a hotfix one has no backlog item, a backlog one has.
    let (critical, item) = store
        .open_incident(
            incident(SupportPath::HotfixBackport, IncidentStatus::Open),
            "shop",
            audit("incident.open", "", Some("web")),
        )
        .await
        .unwrap();
    assert!(critical.id > 0 && item.is_none());
    assert_eq!(
        store.incident(critical.id).await.unwrap().unwrap(),
        critical
    );
    // The backlog item goes to the team named, not the one the incident was routed to.
    let (low, item) = store
        .open_incident(
            incident(SupportPath::Backlog, IncidentStatus::Open),
            "ops",
            audit("incident.open", "", Some("web")),
        )
        .await
        .unwrap();
    let item = item.expect("a backlog item");
    assert_eq!(
        (item.incident, item.status.as_str(), item.team.as_str()),
        (Some(low.id), "open", "ops")
    );
    assert_eq!(low.team, "shop");
    assert_eq!(store.backlog(Some("web")).await.unwrap()[0], item);
    assert_not_found(
        store
            .open_incident(
                IncidentRecord {
                    env: "nowhere".into(),
                    ..incident(SupportPath::Backlog, IncidentStatus::Open)
                },
                "shop",
                audit("x", "", None),
            )
            .await,
        "an incident in an unknown environment",
    );

    // An update lands only on the incident as it was read.
    let mut acked = critical.clone();
    acked.status = IncidentStatus::Acknowledged;
    acked.acknowledged_ms = Some(30);
    acked.acknowledged_by = Some("amy".into());
    acked.history.push(IncidentStep {
        at_ms: 30,
        actor: "amy".into(),
        what: "acknowledged".into(),
    });
    // The hotfix base moves with an update too.
    acked.base_version = Some("1.1".into());
    acked.suggested_version = Some("1.1.1".into());
    acked.source = Some(r#"{"kind":"git"}"#.into());
    store
        .update_incident(
            acked.clone(),
            IncidentStatus::Open,
            0,
            audit("incident.ack", "", Some("web")),
        )
        .await
        .unwrap();
    assert_eq!(store.incident(critical.id).await.unwrap().unwrap(), acked);
    let before = events().await;
    refused(
        store
            .update_incident(
                critical.clone(),
                IncidentStatus::Open,
                0,
                audit("x", "", None),
            )
            .await,
        "an update of an incident changed meanwhile",
    );
    assert_eq!(events().await, before, "a refusal writes no audit event");
    let mut resolved = acked.clone();
    resolved.status = IncidentStatus::Resolved;
    store
        .update_incident(
            resolved,
            IncidentStatus::Acknowledged,
            0,
            audit("incident.resolve", "", Some("web")),
        )
        .await
        .unwrap();
    let open: Vec<i64> = store
        .incidents(Some("web"), false)
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(open, [low.id]);
    let all: Vec<i64> = store
        .incidents(None, true)
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(all, [low.id, critical.id], "newest first");

    // A release closes a backlog item once; a wrong id refuses the whole release.
    store
        .create_release(
            release("1.0", None, &[], &[]),
            audit("release.create", "", Some("web")),
        )
        .await
        .unwrap();
    refused(
        store
            .create_release(release("1.1", None, &[999], &[]), audit("x", "", None))
            .await,
        "closing an unknown backlog item",
    );
    assert!(
        store.release("web", "1.1").await.unwrap().is_none(),
        "nothing created"
    );
    store
        .create_release(
            release("1.1", None, &[item.id], &[]),
            audit("release.create", "", Some("web")),
        )
        .await
        .unwrap();
    let closed = &store.backlog(Some("web")).await.unwrap()[0];
    assert_eq!(
        (closed.status.as_str(), closed.closed_by.as_deref()),
        ("closed", Some("1.1"))
    );

    // Backport obligations: one per hotfix, closed by a release or waived, once.
    let obligation = |version: &str| Backport {
        id: 0,
        app: "web".into(),
        hotfix_version: version.into(),
        base_version: "1.0".into(),
        incident: Some(critical.id),
        mode: BackportMode::Backport,
        status: ObligationStatus::Open,
        closed_by: None,
        reason: None,
        opened_ms: 40,
        closed_ms: None,
    };
    let first = ship_hotfix(store, obligation("1.0.1"))
        .await
        .expect("opened");
    assert_eq!(
        ship_hotfix(store, obligation("1.0.1")).await,
        None,
        "an obligation opens once"
    );
    let second = ship_hotfix(store, obligation("1.0.2")).await.unwrap();
    store
        .waive_backport(
            second.id,
            "lee",
            "never in dev",
            50,
            audit("backport.waive", "", Some("web")),
        )
        .await
        .unwrap();
    // A release judged to fulfil an obligation waived meanwhile still commits, and closes
    // only the open one; its outcome and its audit event name only that one.
    let outcome = store
        .create_release(
            release("1.2", None, &[], &[first.id, second.id]),
            AuditRecord {
                details: format!(r#"{{"backports_done":[{},{}]}}"#, first.id, second.id),
                ..audit("release.create", "", Some("web"))
            },
        )
        .await
        .unwrap();
    assert!(
        matches!(&outcome, ReleaseOutcome::Created { backports_done, .. } if *backports_done == [first.id]),
        "{outcome:?}"
    );
    let chain = store.audit_chain().await.unwrap();
    assert_eq!(
        chain.events.last().unwrap().record.details,
        format!(r#"{{"backports_done":[{}]}}"#, first.id)
    );
    // Completing one that is closed already changes nothing.
    let before = events().await;
    assert!(!store
        .complete_backport(
            first.id,
            "release 1.3",
            70,
            audit("backport.done", "", None)
        )
        .await
        .unwrap());
    assert_eq!(events().await, before, "nothing written");
    let third = ship_hotfix(store, obligation("1.0.3")).await.unwrap();
    assert!(store
        .complete_backport(
            third.id,
            "release 1.2",
            80,
            audit("backport.done", "", None)
        )
        .await
        .unwrap());
    assert_eq!(
        events().await,
        before + 4,
        "the hotfix's deployment and its end, the obligation, its completion"
    );
    refused(
        store
            .waive_backport(first.id, "lee", "again", 60, audit("x", "", None))
            .await,
        "waiving a closed obligation",
    );
    let listed = store.backports(Some("web")).await.unwrap();
    let summary: Vec<(&str, &str, Option<&str>)> = listed
        .iter()
        .map(|b| {
            (
                b.hotfix_version.as_str(),
                b.status.as_str(),
                b.closed_by.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("1.0.3", "done", Some("release 1.2")),
            ("1.0.2", "waived", Some("lee")),
            ("1.0.1", "done", Some("release 1.2"))
        ]
    );
    assert_eq!(listed[1].reason.as_deref(), Some("never in dev"));

    // A deployment can carry an incident's change (a hotfix base moved): both are saved, or,
    // when the incident changed since it was read, neither.
    let web_deployment = |version: &str| DeploymentRecord {
        config: 0,
        id: 0,
        app: "web".into(),
        env: "pp".into(),
        version: version.into(),
        kind: Kind::Deploy,
        state: Deployment::new(Strategy::Rolling, Vec::new()),
        revision: 0,
        requested_by: "lee".into(),
        created_ms: 65,
        updated_ms: 65,
        overrides: "{}".into(),
        review: Vec::new(),
    };
    let read = store.incident(critical.id).await.unwrap().unwrap();
    let moved = |read_status| IncidentUpdate {
        incident: IncidentRecord {
            base_version: Some("1.0.3".into()),
            ..read.clone()
        },
        read_status,
        read_level: read.escalation_level,
        audit: audit("incident.rebase", "", Some("web")),
    };
    let deployments_before = store
        .list_deployments(Some("web"), 100)
        .await
        .unwrap()
        .len();
    let before = events().await;
    refused(
        store
            .create_deployment(
                web_deployment("1.0.3"),
                vec![],
                audit("deployment.deploy", "", Some("web")),
                Some(moved(IncidentStatus::Open)),
            )
            .await,
        "a deployment whose incident changed since it was read",
    );
    assert_eq!(events().await, before, "a refusal writes no audit event");
    assert_eq!(
        store
            .list_deployments(Some("web"), 100)
            .await
            .unwrap()
            .len(),
        deployments_before,
        "nothing is created when the incident's change is refused"
    );
    let started = store
        .create_deployment(
            web_deployment("1.0.3"),
            vec![],
            audit("deployment.deploy", "", Some("web")),
            Some(moved(read.status)),
        )
        .await
        .unwrap();
    assert_eq!(events().await, before + 2);
    assert_eq!(
        store
            .incident(critical.id)
            .await
            .unwrap()
            .unwrap()
            .base_version
            .as_deref(),
        Some("1.0.3")
    );
    let mut rejected = started;
    rejected.state.status = Status::Rejected;
    store
        .update_deployment(
            DeploymentUpdate::of(&rejected),
            audit("deployment.reject", "", None),
        )
        .await
        .unwrap();

    // A hotfix deployment's end opens its obligation in the same transaction, and only the
    // first end of a deployment of that hotfix does.
    for (attempt, opened_events) in [(1, 2), (2, 1)] {
        let mut shipped = store
            .create_deployment(
                DeploymentRecord {
                    config: 0,
                    id: 0,
                    app: "web".into(),
                    env: "prd".into(),
                    version: "1.0.9".into(),
                    kind: Kind::Deploy,
                    state: Deployment::new(Strategy::Rolling, Vec::new()),
                    revision: 0,
                    requested_by: "lee".into(),
                    created_ms: 70,
                    updated_ms: 70,
                    overrides: "{}".into(),
                    review: Vec::new(),
                },
                vec![],
                audit("deployment.deploy", "", Some("web")),
                None,
            )
            .await
            .unwrap();
        shipped.state.status = Status::Succeeded;
        let before = events().await;
        store
            .update_deployment(
                DeploymentUpdate {
                    opens: Some((obligation("1.0.9"), audit("backport.open", "", Some("web")))),
                    ..DeploymentUpdate::of(&shipped)
                },
                audit("deployment.finish", "", Some("web")),
            )
            .await
            .unwrap();
        assert_eq!(
            events().await,
            before + opened_events,
            "end {attempt}: the finish, and the obligation's opening the first time only"
        );
        let open: Vec<String> = store
            .backports(Some("web"))
            .await
            .unwrap()
            .into_iter()
            .filter(|b| b.status == ObligationStatus::Open)
            .map(|b| b.hotfix_version)
            .collect();
        assert_eq!(open, ["1.0.9"], "end {attempt}");
    }
}
