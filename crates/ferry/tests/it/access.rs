//! Logging in, teams, users, roles and who sees what.

use crate::harness::{audit_len, mode, Run, Server, FERRY};

#[test]
fn login_stores_server_and_token_for_later_commands() {
    let server = Server::start();
    let config = server.dir.path().join("config.toml");
    let run = Run::of(
        std::process::Command::new(FERRY)
            .args([
                "login",
                "--server",
                &server.url,
                "--token",
                &server.admin_token,
            ])
            .env("FERRY_CONFIG", &config)
            .env_remove("FERRY_SERVER")
            .env_remove("FERRY_TOKEN"),
    )
    .success();
    assert!(run.stdout.contains("logged in"), "{run:?}");
    assert_eq!(mode(&config), 0o600);

    // No flags, no environment: the config file is used.
    let from_config = |args: &[&str]| {
        Run::of(
            std::process::Command::new(FERRY)
                .args(args)
                .env("FERRY_CONFIG", &config)
                .env_remove("FERRY_SERVER")
                .env_remove("FERRY_TOKEN"),
        )
    };
    assert_eq!(
        from_config(&["whoami", "--json"]).success().json()["user"],
        "admin"
    );
    // A flag beats the config file.
    from_config(&["whoami", "--token", "ferry_bogus"]).fails(3, "unknown API token");
}

#[test]
fn login_with_a_bad_token_stores_nothing() {
    let server = Server::start();
    let config = server.dir.path().join("config.toml");
    let refused = server.ferry("ferry_nope", &["login"]).fails(
        3,
        "refused this token (unknown API token); nothing was saved",
    );
    assert!(!refused.stderr.contains("ferry login"), "{refused:?}");
    assert!(!config.exists());
    // https:// to a server serving plain HTTP says so.
    let plain = server.url.replacen("http://", "https://", 1);
    Run::of(
        std::process::Command::new(FERRY)
            .args(["whoami", "--server", &plain, "--token", &server.admin_token])
            .env("FERRY_CONFIG", &config),
    )
    .fails(
        1,
        "does not answer in TLS: it serves plain HTTP; use http://",
    );
}

#[test]
fn missing_server_or_token_is_a_usage_error() {
    let run = Run::of(
        std::process::Command::new(FERRY)
            .args(["team", "list"])
            .env("FERRY_CONFIG", "/nonexistent/config.toml")
            .env_remove("FERRY_SERVER")
            .env_remove("FERRY_TOKEN"),
    );
    run.fails(2, "no server: pass --server URL");
}

#[test]
fn an_unreachable_server_fails_with_exit_1() {
    let run = Run::of(
        std::process::Command::new(FERRY)
            .args([
                "team",
                "list",
                "--server",
                "http://127.0.0.1:9",
                "--token",
                "x",
            ])
            .env("FERRY_CONFIG", "/nonexistent/config.toml"),
    );
    run.fails(1, "cannot reach the ferry server at http://127.0.0.1:9");
}

#[test]
fn global_flags_go_before_or_after_the_subcommand() {
    let server = Server::start();
    server.admin(&["team", "create", "shop"]).success();
    let before = server.admin(&["--json", "team", "list"]).success().json();
    let after = server.admin(&["team", "list", "--json"]).success().json();
    assert_eq!(before, after);
    let url = server.url.clone();
    let token = server.admin_token.clone();
    server
        .ferry(
            "ferry_wrong",
            &["--token", &token, "--server", &url, "team", "list"],
        )
        .success();
}

#[test]
fn users_get_a_token_roles_and_team_overrides() {
    let server = Server::start();
    server.admin(&["team", "create", "shop"]).success();
    server.admin(&["team", "create", "blog"]).success();
    let created = server
        .admin(&[
            "user",
            "create",
            "dana",
            "--role",
            "developer",
            "--team",
            "shop:lead",
            "--team",
            "blog",
            "--json",
        ])
        .success()
        .json();
    let token = created["token"].as_str().unwrap();
    assert!(token.starts_with("ferry_"));
    assert_eq!(created["user"]["role"], "developer");

    let me = server.ferry(token, &["whoami", "--json"]).success().json();
    assert_eq!(me["teams"][0]["team"], "blog");
    assert_eq!(me["teams"][1]["role"], "lead");

    let listed = server.admin(&["user", "list"]).success().stdout;
    assert!(
        listed.contains("dana   developer  blog,shop:lead"),
        "{listed}"
    );
    let tokens_are_secret = server.admin(&["user", "list", "--json"]).success().stdout;
    assert!(!tokens_are_secret.contains(token));

    server
        .admin(&["user", "create", "dana"])
        .fails(3, "user \"dana\" already exists");
    server
        .admin(&["user", "create", "erin", "--role", "root"])
        .fails(1, "no role named \"root\": see `ferry role list`");
    server
        .admin(&["user", "create", "erin", "--team", "wiki:lead"])
        .fails(1, "no team named \"wiki\"");
}

#[test]
fn only_admins_create_teams_and_users() {
    let server = Server::start();
    server.admin(&["team", "create", "shop"]).success();
    let lead = server.create_user("lee", "developer", &["shop:lead"]);
    server
        .ferry(&lead, &["team", "create", "blog"])
        .fails(3, "managing users, teams and roles needs the admin role");
    server
        .ferry(&lead, &["user", "create", "sam"])
        .fails(3, "needs the admin role");
    assert_eq!(
        server
            .admin(&["team", "list", "--json"])
            .success()
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn applications_belong_to_one_team_and_other_teams_cannot_see_them() {
    let server = Server::start();
    server.admin(&["team", "create", "shop"]).success();
    server.admin(&["team", "create", "blog"]).success();
    let dev = server.create_user("dana", "developer", &["shop"]);
    let viewer = server.create_user("vic", "viewer", &["shop"]);

    let app = server
        .ferry(
            &dev,
            &[
                "app", "create", "shop-web", "--team", "shop", "--keep", "5", "--json",
            ],
        )
        .success()
        .json();
    assert_eq!(
        (app["team"].as_str(), app["keep"].as_u64()),
        (Some("shop"), Some(5))
    );
    server
        .admin(&["app", "create", "blog-web", "--team", "blog"])
        .success();

    // Team members see their team's applications; nobody sees another team's.
    let names = |token: &str| -> Vec<String> {
        let apps = server
            .ferry(token, &["app", "list", "--json"])
            .success()
            .json();
        apps.as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&dev), ["shop-web"]);
    assert_eq!(names(&viewer), ["shop-web"]);
    assert_eq!(names(&server.admin_token), ["blog-web", "shop-web"]);
    server
        .ferry(&dev, &["app", "show", "blog-web"])
        .fails(1, "no application named \"blog-web\"");
    let teams = server
        .ferry(&dev, &["team", "list", "--json"])
        .success()
        .json();
    assert_eq!(teams.as_array().unwrap().len(), 1);

    // Creating applications needs deploy in the team.
    server
        .ferry(&viewer, &["app", "create", "shop-api", "--team", "shop"])
        .fails(3, "creating applications needs a role that can deploy");
    server
        .ferry(&dev, &["app", "create", "blog-api", "--team", "blog"])
        .fails(3, "not a member of team \"blog\"");
    server
        .admin(&["app", "create", "shop-web", "--team", "shop"])
        .fails(3, "application \"shop-web\" already exists");
    server
        .admin(&["app", "create", "wiki", "--team", "wiki"])
        .fails(1, "no team named \"wiki\"");

    let shown = server
        .ferry(&viewer, &["app", "show", "shop-web"])
        .success()
        .stdout;
    assert!(shown.contains("team         shop"), "{shown}");
}

#[test]
fn roles_are_editable_except_admin() {
    let server = Server::start();
    let listed = server.admin(&["role", "list"]).success().stdout;
    assert!(
        listed.contains("developer        deploy   deploy   deploy"),
        "{listed}"
    );
    let role = server
        .admin(&[
            "role",
            "set",
            "developer",
            "--env",
            "prd",
            "--level",
            "view",
            "--json",
        ])
        .success()
        .json();
    assert_eq!(role["levels"]["prd"], "view");
    server
        .admin(&["role", "set", "admin", "--env", "prd", "--level", "view"])
        .fails(3, "the admin role cannot be edited");
    server
        .admin(&[
            "role",
            "set",
            "developer",
            "--env",
            "prd",
            "--level",
            "root",
        ])
        .fails(3, "unknown level \"root\"");
    server
        .admin(&["role", "set", "developer", "--env", "qa", "--level", "view"])
        .fails(1, "no environment named \"qa\"");
    let dev = server.create_user("dana", "release-manager", &[]);
    server
        .ferry(
            &dev,
            &["role", "set", "viewer", "--env", "dev", "--level", "deploy"],
        )
        .fails(3, "needs the admin role");
}

#[test]
fn a_team_lead_manages_roles_inside_their_own_team_only() {
    let server = Server::start();
    for team in ["shop", "blog"] {
        server.admin(&["team", "create", team]).success();
    }
    let lead = server.create_user("lena", "viewer", &["shop:lead"]);
    let developer = server.create_user("dev1", "viewer", &["shop:developer"]);
    server.create_user("newbie", "viewer", &[]);
    server.create_user("boss", "viewer", &["shop:admin"]);
    let members = |token: &str| {
        let listed = server
            .ferry(token, &["team", "members", "shop", "--json"])
            .success()
            .json();
        let mut pairs: Vec<(String, String)> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let user = m["user"].as_str().unwrap().to_owned();
                (user, m["effective_role"].as_str().unwrap().to_owned())
            })
            .collect();
        pairs.sort();
        pairs
    };
    let before = audit_len(&server);

    // The lead adds someone to their team, up to their own role, and changes it.
    let added = server
        .ferry(
            &lead,
            &[
                "team",
                "add",
                "shop",
                "newbie",
                "--role",
                "developer",
                "--json",
            ],
        )
        .success()
        .json();
    assert_eq!(added["effective_role"], "developer");
    server
        .ferry(&lead, &["team", "add", "shop", "newbie", "--role", "lead"])
        .success();
    assert!(members(&developer).contains(&("newbie".into(), "lead".into())));

    // Never above their own role, never in another team, never on someone above them.
    let refusals: [(&[&str], &str); 4] = [
        (
            &["team", "add", "shop", "newbie", "--role", "admin"],
            "more than your role",
        ),
        (
            &["team", "add", "shop", "newbie", "--role", "release-manager"],
            "which your role \"lead\" cannot",
        ),
        (
            &["team", "add", "blog", "newbie"],
            "not a member of team \"blog\"",
        ),
        (&["team", "remove", "shop", "boss"], "more than your role"),
    ];
    for (args, message) in refusals {
        server.ferry(&lead, args).fails(3, message);
    }
    // A developer of the team manages nobody.
    server
        .ferry(&developer, &["team", "remove", "shop", "newbie"])
        .fails(3, "needs its lead");
    // Bad names and unknown users change nothing.
    server
        .ferry(&lead, &["team", "add", "shop", "nobody-here"])
        .fails(1, "no user \"nobody-here\"");
    server
        .ferry(&lead, &["team", "add", "shop", "Bad Name"])
        .fails(3, "");
    server
        .ferry(
            &lead,
            &["team", "add", "shop", "newbie", "--role", "no-such-role"],
        )
        .fails(1, "no role \"no-such-role\"");

    // The lead takes them out again; the admin can do anything.
    server
        .ferry(&lead, &["team", "remove", "shop", "newbie"])
        .success();
    server
        .admin(&["team", "add", "blog", "newbie", "--role", "admin"])
        .success();
    assert_eq!(
        members(&lead),
        [
            ("boss".to_owned(), "admin".to_owned()),
            ("dev1".into(), "developer".into()),
            ("lena".into(), "lead".into())
        ]
    );
    // Each change is one audit event: two adds, one remove, the admin's add.
    assert_eq!(audit_len(&server), before + 4);
}
