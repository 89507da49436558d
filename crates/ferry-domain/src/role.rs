//! The built-in roles and how a new environment inherits levels.

use std::collections::{BTreeMap, BTreeSet};

use crate::permission::{Capability, Level, Role};

/// The one role nobody may edit: it must always be able to repair everything else.
pub const ADMIN_ROLE: &str = "admin";

/// Built-in roles: name, level in every environment of the default pipeline, capabilities.
const BUILT_IN_ROLES: [(&str, Level, &[Capability]); 6] = [
    ("viewer", Level::View, &[]),
    ("support", Level::View, &[Capability::RespondToIncidents]),
    (
        "developer",
        Level::Deploy,
        &[Capability::RespondToIncidents],
    ),
    (
        "lead",
        Level::Approve,
        &[Capability::RespondToIncidents, Capability::ManageTeamRoles],
    ),
    (
        "release-manager",
        Level::Approve,
        &[Capability::RespondToIncidents, Capability::ChangePolicy],
    ),
    (ADMIN_ROLE, Level::Admin, &[Capability::Administer]),
];

/// The built-in roles with their default levels in `environments`.
pub fn built_in_roles(environments: &[&str]) -> Vec<Role> {
    BUILT_IN_ROLES
        .iter()
        .map(|(name, level, capabilities)| Role {
            name: (*name).to_owned(),
            levels: environments
                .iter()
                .map(|env| ((*env).to_owned(), *level))
                .collect(),
            capabilities: capabilities.iter().copied().collect::<BTreeSet<_>>(),
        })
        .collect()
}

/// Whether admins may change a role's levels.
pub fn is_editable(role: &str) -> bool {
    role != ADMIN_ROLE
}

/// Each role's level in an environment inserted after `after`: the same as there.
pub fn levels_for_new_environment(roles: &[Role], after: &str) -> BTreeMap<String, Level> {
    roles
        .iter()
        .map(|role| (role.name.clone(), role.level_in(after)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permission::{decide, Action, Decision, Principal};

    const ENVS: [&str; 3] = ["dev", "pp", "prd"];

    fn role(name: &str) -> Role {
        built_in_roles(&ENVS)
            .into_iter()
            .find(|role| role.name == name)
            .unwrap()
    }

    /// A member of team "shop" whose team role is `name` and default role viewer.
    fn member(name: &str) -> Principal {
        Principal {
            user: "u".into(),
            default_role: role("viewer"),
            team_roles: [("shop".to_owned(), role(name))].into(),
            app_grants: BTreeMap::new(),
        }
    }

    /// A user whose default role is `name` and who belongs to no team.
    fn outsider(name: &str) -> Principal {
        Principal {
            user: "u".into(),
            default_role: role(name),
            team_roles: BTreeMap::new(),
            app_grants: BTreeMap::new(),
        }
    }

    fn yes_no(principal: &Principal, action: Action<'_>) -> char {
        if decide(principal, action).is_allowed() {
            'y'
        } else {
            '-'
        }
    }

    /// The full table of role × environment × level inside the role's own team: each row
    /// lists, for dev, pp and prd, whether view, deploy, approve and admin are allowed.
    #[test]
    fn environment_levels_by_role() {
        let table = [
            ("viewer", "y--- y--- y---"),
            ("support", "y--- y--- y---"),
            ("developer", "yy-- yy-- yy--"),
            ("lead", "yyy- yyy- yyy-"),
            ("release-manager", "yyy- yyy- yyy-"),
            ("admin", "yyyy yyyy yyyy"),
        ];
        for (role_name, expected) in table {
            let principal = member(role_name);
            let actual: Vec<String> = ENVS
                .iter()
                .map(|env| {
                    [Level::View, Level::Deploy, Level::Approve, Level::Admin]
                        .into_iter()
                        .map(|level| {
                            yes_no(
                                &principal,
                                Action::InEnvironment {
                                    team: "shop",
                                    env,
                                    level,
                                },
                            )
                        })
                        .collect()
                })
                .collect();
            assert_eq!(actual.join(" "), expected, "role {role_name}");
        }
    }

    /// For each role, inside team "shop" and outside it, whether it may do each of
    /// `actions(env)` on application web, per environment: `y` or `-`, environments apart by
    /// a space; and the denial of the last action to a viewer in prd says `says`.
    fn check_grid(
        table: [(&str, &str, &str); 6],
        actions: impl Fn(&'static str) -> Vec<Action<'static>>,
        says: &str,
    ) {
        for (role_name, in_team, outside) in table {
            let row = |principal: &Principal| -> String {
                ENVS.iter()
                    .map(|env| {
                        (actions(env).into_iter())
                            .map(|action| yes_no(principal, action))
                            .collect::<String>()
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            assert_eq!(row(&member(role_name)), in_team, "role {role_name} in team");
            assert_eq!(
                row(&outsider(role_name)),
                outside,
                "role {role_name} outside"
            );
        }
        let last = actions("prd").pop().unwrap();
        let denied = decide(&member("viewer"), last);
        assert!(
            matches!(&denied, Decision::Deny(reason) if reason.contains(says)),
            "{denied:?}"
        );
    }

    /// Application backups: whether a role may see them and take and restore them.
    #[test]
    fn app_backups_by_role() {
        let table = [
            ("viewer", "y- y- y-", "-- -- --"),
            ("support", "y- y- y-", "-- -- --"),
            ("developer", "yy yy yy", "-- -- --"),
            ("lead", "yy yy yy", "-- -- --"),
            ("release-manager", "yy yy yy", "-- -- --"),
            ("admin", "yy yy yy", "yy yy yy"),
        ];
        let (team, app) = ("shop", "web");
        check_grid(
            table,
            |env| {
                vec![
                    Action::ViewAppBackups { team, app, env },
                    Action::BackUpApp { team, app, env },
                ]
            },
            "taking and restoring backups needs deploy on \"prd\"",
        );
    }

    /// Configuration: whether a role may see it, read secrets back (admins by default role,
    /// not a team role named admin), and change it.
    #[test]
    fn configuration_by_role() {
        let table = [
            ("viewer", "y-- y-- y--", "--- --- ---"),
            ("support", "y-- y-- y--", "--- --- ---"),
            ("developer", "y-y y-y y-y", "--- --- ---"),
            ("lead", "y-y y-y y-y", "--- --- ---"),
            ("release-manager", "y-y y-y y-y", "--- --- ---"),
            ("admin", "y-y y-y y-y", "yyy yyy yyy"),
        ];
        let (team, app) = ("shop", "web");
        check_grid(
            table,
            |env| {
                vec![
                    Action::ViewConfig { team, app, env },
                    Action::RevealSecrets { team, app, env },
                    Action::ChangeConfig { team, app, env },
                ]
            },
            "changing configuration needs deploy on \"prd\"",
        );
    }

    /// Every other action for each role: as a member of team "shop" (team actions) and as
    /// the user's default role (organisation-wide actions).
    #[test]
    fn actions_by_role() {
        // columns: view-team create-app create-release manage-team-roles incidents
        //        | administer change-policy full-audit
        //        | rotate-own-token rotate-others-token disable-self disable-others
        let table = [
            ("viewer", "y---- --- y---"),
            ("support", "y---y --- y---"),
            ("developer", "yyy-y --- y---"),
            ("lead", "yyyyy --- y---"),
            ("release-manager", "yyy-y -yy y---"),
            ("admin", "yyyyy yyy yy-y"),
        ];
        for (role_name, expected) in table {
            let in_team = member(role_name);
            let org = outsider(role_name);
            let team_part: String = [
                Action::ViewTeam { team: "shop" },
                Action::CreateApp { team: "shop" },
                Action::CreateRelease { team: "shop" },
                Action::ManageTeamRoles { team: "shop" },
                Action::RespondToIncidents { team: "shop" },
            ]
            .into_iter()
            .map(|action| yes_no(&in_team, action))
            .collect();
            let org_part: String = [
                Action::Administer,
                Action::ChangePolicy,
                Action::ReadFullAudit,
            ]
            .into_iter()
            .map(|action| yes_no(&org, action))
            .collect();
            let user_part: String = [
                Action::RotateToken { user: "u" },
                Action::RotateToken { user: "other" },
                Action::DisableUser { user: "u" },
                Action::DisableUser { user: "other" },
            ]
            .into_iter()
            .map(|action| yes_no(&org, action))
            .collect();
            assert_eq!(
                format!("{team_part} {org_part} {user_part}"),
                expected,
                "role {role_name}"
            );
        }
    }

    /// Capturing hand edits as a release, per role and environment (dev, pp, prd): it needs
    /// the right to create releases and to deploy there.
    #[test]
    fn capture_by_role_and_environment() {
        let table = [
            ("viewer", "---"),
            ("support", "---"),
            ("developer", "yyy"),
            ("lead", "yyy"),
            ("release-manager", "yyy"),
            ("admin", "yyy"),
        ];
        for (role_name, expected) in table {
            let principal = member(role_name);
            let actual: String = ENVS
                .iter()
                .map(|env| {
                    yes_no(
                        &principal,
                        Action::CaptureDrift {
                            team: "shop",
                            app: "web",
                            env,
                        },
                    )
                })
                .collect();
            assert_eq!(actual, expected, "role {role_name}");
            assert_eq!(
                yes_no(
                    &outsider(role_name),
                    Action::CaptureDrift {
                        team: "shop",
                        app: "web",
                        env: "dev",
                    }
                ),
                if role_name == "admin" { 'y' } else { '-' },
                "{role_name} outside the team"
            );
        }
        // A per-app grant to deploy is not the right to create releases.
        let mut freelancer = outsider("viewer");
        freelancer.app_grants =
            [("web".to_owned(), [("prd".to_owned(), Level::Deploy)].into())].into();
        let capture = Action::CaptureDrift {
            team: "shop",
            app: "web",
            env: "prd",
        };
        match decide(&freelancer, capture) {
            Decision::Deny(reason) => assert!(reason.contains("creates a release"), "{reason}"),
            Decision::Allow => panic!("a grant to deploy allowed a capture"),
        }
    }

    #[test]
    fn outsiders_have_no_role_in_a_team_unless_admin() {
        for role_name in ["viewer", "support", "developer", "lead", "release-manager"] {
            let principal = outsider(role_name);
            for action in [
                Action::ViewTeam { team: "shop" },
                Action::RespondToIncidents { team: "shop" },
                Action::InEnvironment {
                    team: "shop",
                    env: "dev",
                    level: Level::View,
                },
            ] {
                assert_eq!(yes_no(&principal, action), '-', "{role_name} {action:?}");
            }
        }
        let admin = outsider("admin");
        assert!(decide(&admin, Action::ManageTeamRoles { team: "shop" }).is_allowed());
    }

    #[test]
    fn a_per_app_grant_reaches_one_application_and_nothing_else() {
        let mut freelancer = outsider("viewer");
        freelancer.app_grants = [(
            "web".to_owned(),
            [
                ("dev".to_owned(), Level::Deploy),
                ("prd".to_owned(), Level::View),
            ]
            .into(),
        )]
        .into();
        let on = |app, env, level| Action::OnApp {
            team: "shop",
            app,
            env,
            level,
        };
        // (action, allowed?)
        let cases = [
            (
                Action::ViewApp {
                    team: "shop",
                    app: "web",
                },
                true,
            ),
            (
                Action::ViewApp {
                    team: "shop",
                    app: "api",
                },
                false,
            ),
            (Action::ViewTeam { team: "shop" }, false),
            (on("web", "dev", Level::Deploy), true),
            (on("web", "dev", Level::Approve), false),
            (on("web", "pp", Level::View), false),
            (on("web", "prd", Level::View), true),
            (on("web", "prd", Level::Deploy), false),
            (on("api", "dev", Level::Deploy), false),
        ];
        for (action, allowed) in cases {
            assert_eq!(
                decide(&freelancer, action).is_allowed(),
                allowed,
                "{action:?}"
            );
        }
        // A grant adds to a team role, never takes away.
        let mut lead = member("lead");
        lead.app_grants = [("web".to_owned(), [("prd".to_owned(), Level::View)].into())].into();
        assert!(decide(&lead, on("web", "prd", Level::Approve)).is_allowed());
        assert_eq!(lead.level_on("shop", "web", "prd"), Level::Approve);
        assert_eq!(freelancer.level_on("shop", "web", "dev"), Level::Deploy);
    }

    #[test]
    fn a_team_override_replaces_the_default_role_only_in_that_team() {
        let principal = Principal {
            user: "dana".into(),
            default_role: role("developer"),
            team_roles: [
                ("shop".to_owned(), role("lead")),
                ("blog".to_owned(), role("viewer")),
            ]
            .into(),
            app_grants: BTreeMap::new(),
        };
        let approve_prd = |team| Action::InEnvironment {
            team,
            env: "prd",
            level: Level::Approve,
        };
        let deploy_dev = |team| Action::InEnvironment {
            team,
            env: "dev",
            level: Level::Deploy,
        };
        assert!(decide(&principal, approve_prd("shop")).is_allowed());
        assert!(!decide(&principal, deploy_dev("blog")).is_allowed());
        assert!(!decide(&principal, deploy_dev("wiki")).is_allowed());
    }

    #[test]
    fn an_unknown_environment_gives_no_access() {
        let principal = member("admin");
        let action = Action::InEnvironment {
            team: "shop",
            env: "qa",
            level: Level::View,
        };
        assert!(!decide(&principal, action).is_allowed());
    }

    #[test]
    fn denials_say_what_is_missing() {
        let check = |principal: &Principal, action, expected: &str| {
            assert_eq!(
                decide(principal, action),
                Decision::Deny(expected.to_owned())
            );
        };
        use crate::permission::Decision;
        check(
            &outsider("developer"),
            Action::ChangePolicy,
            "user \"u\" has role \"developer\"; changing environments and their policy needs the release-manager or admin role",
        );
        check(
            &outsider("developer"),
            Action::ViewTeam { team: "shop" },
            "user \"u\" is not a member of team \"shop\"; ask a lead of that team or an admin to add them",
        );
        check(
            &member("developer"),
            Action::InEnvironment { team: "shop", env: "prd", level: Level::Approve },
            "user \"u\" has deploy on \"prd\" in team \"shop\" (role \"developer\"); this needs approve",
        );
    }

    #[test]
    fn a_new_environment_inherits_the_levels_of_the_one_before_it() {
        let mut roles = built_in_roles(&ENVS);
        let developer = roles.iter_mut().find(|r| r.name == "developer").unwrap();
        developer.levels.insert("prd".into(), Level::View);
        let levels = levels_for_new_environment(&roles, "prd");
        assert_eq!(levels["developer"], Level::View);
        assert_eq!(levels["lead"], Level::Approve);
        assert_eq!(levels["admin"], Level::Admin);
        let levels = levels_for_new_environment(&roles, "dev");
        assert_eq!(levels["developer"], Level::Deploy);
    }

    #[test]
    fn a_lead_assigns_roles_up_to_their_own() {
        use crate::permission::check_assignable;
        // (granter, role given, allowed?)
        let cases = [
            ("lead", "viewer", true),
            ("lead", "support", true),
            ("lead", "developer", true),
            ("lead", "lead", true),
            ("lead", "release-manager", false), // a capability the lead lacks
            ("lead", "admin", false),
            ("developer", "viewer", true),
            ("developer", "developer", true),
            ("developer", "lead", false),
            ("support", "developer", false),
            ("viewer", "support", false),
            ("admin", "release-manager", true),
            ("admin", "admin", true),
        ];
        for (granter, given, allowed) in cases {
            let answer = check_assignable(&role(granter), &role(given));
            assert_eq!(
                answer.is_ok(),
                allowed,
                "{granter} gives {given}: {answer:?}"
            );
        }
        let mut narrow = role("lead");
        narrow.levels.insert("prd".into(), Level::Deploy);
        let refused = check_assignable(&narrow, &role("lead")).unwrap_err();
        assert!(refused.contains("approve on \"prd\""), "{refused}");
    }

    #[test]
    fn only_admin_is_not_editable() {
        for (name, _, _) in BUILT_IN_ROLES {
            assert_eq!(is_editable(name), name != "admin");
        }
    }

    #[test]
    fn levels_parse_and_order() {
        for level in Level::ALL {
            assert_eq!(level.as_str().parse::<Level>(), Ok(level));
        }
        assert!(Level::None < Level::View && Level::Approve < Level::Admin);
        assert!("root".parse::<Level>().is_err());
    }
}
