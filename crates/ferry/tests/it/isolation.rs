//! Applications isolated from each other on a target whose agent runs as root: each runs
//! its hooks as its own Unix user (`ferry app set APP --run-as USER`), and one's hooks
//! cannot reach another's releases, data, or the agent's credential.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::deployments::{release_of, site, start_isolating_agent};
use crate::harness::Server;

/// A Unix user made for one test, removed when it ends.
struct TestUser {
    name: String,
}

impl TestUser {
    fn create(tag: &str) -> TestUser {
        let name = format!("fy{}{tag}", std::process::id());
        let _ = Command::new("userdel").arg(&name).output();
        let made = Command::new("useradd")
            .args(["--system", "--user-group", "--no-create-home"])
            .args(["--shell", "/usr/sbin/nologin", &name])
            .output()
            .expect("useradd runs");
        assert!(made.status.success(), "useradd {name}: {made:?}");
        TestUser { name }
    }

    fn ids(&self) -> (u32, u32) {
        let id = |flag: &str| {
            let out = Command::new("id")
                .args([flag, &self.name])
                .output()
                .unwrap();
            String::from_utf8(out.stdout)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        (id("-u"), id("-g"))
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// Root, with `useradd`: or says why the test cannot run (CI runs as root and sets
/// `FERRY_TEST_REQUIRE_ROOT`, so there it never skips).
fn can_run() -> bool {
    let root = effective_uid() == 0;
    let useradd = Command::new("useradd").arg("--help").output().is_ok();
    if root && useradd {
        return true;
    }
    assert!(
        std::env::var_os("FERRY_TEST_REQUIRE_ROOT").is_none(),
        "FERRY_TEST_REQUIRE_ROOT is set, but the tests do not run as root with useradd"
    );
    eprintln!("skipped: isolating applications needs root and useradd");
    false
}

fn effective_uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The shop keeps its data in `shared/data`, writes a secret there before its switch, and
/// records who takes its backups.
const SHOP_TOML: &str = r#"shared = ["data"]
backup = ["data"]
[hooks]
before_switch = "echo shop-secret > $FERRY_SHARED_DIR/data/secret.txt"
pre_backup = "id -un > $FERRY_SHARED_DIR/data/backed-up-by"
"#;

/// What the blog's hook tries against the shop and the agent, and against itself: each
/// line of `probe.txt` says `NAME allowed` or `NAME denied`.
const PROBE: &str = r#"
out="$FERRY_SHARED_DIR/probe.txt"
root=$(cd "$FERRY_RELEASE_DIR/../../../.." && pwd -P)
: > "$out"
try() { if sh -c "$2" >/dev/null 2>&1; then echo "$1 allowed" >> "$out"; else echo "$1 denied" >> "$out"; fi; }
try read-shop-data "cat '$root/apps/shop/shared/data/secret.txt'"
try list-shop "ls '$root/apps/shop'"
try list-apps "ls '$root/apps'"
try read-shop-release "cat '$root/apps/shop/current/index.html'"
try write-shop-data "echo stolen > '$root/apps/shop/shared/data/pwned'"
try read-credential "cat '$root/.ferry/agent.toml'"
try list-agent-state "ls '$root/.ferry'"
try change-own-release "touch '$FERRY_RELEASE_DIR/changed'"
try relink-own-current "ln -sfn / '$root/apps/blog/current'"
try write-own-data "echo mine > '$FERRY_SHARED_DIR/mine'"
echo "user $(id -un)" >> "$out"
"#;

#[test]
fn each_application_runs_as_its_own_user_and_cannot_reach_another() {
    if !can_run() {
        return;
    }
    let (shop_user, blog_user) = (TestUser::create("s"), TestUser::create("b"));
    let server = Server::start();
    // The agent's root lies inside the test's directory: its users must pass through it.
    fs::set_permissions(server.dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
    server.admin(&["team", "create", "shop"]).success();
    for app in ["shop", "blog", "plain"] {
        server
            .admin(&["app", "create", app, "--team", "shop"])
            .success();
    }
    // The user an application runs as is an admin's to set, not its team lead's.
    let lead = server.create_user("lea", "lead", &["shop"]);
    server
        .ferry(&lead, &["app", "set", "shop", "--run-as", &shop_user.name])
        .fails(3, "admin");
    server
        .admin(&["app", "set", "shop", "--run-as", "root"])
        .fails(2, "may not run as root");
    for (app, user) in [("shop", &shop_user), ("blog", &blog_user)] {
        let set = server
            .admin(&["app", "set", app, "--run-as", &user.name])
            .success();
        assert!(set.stdout.contains(&user.name), "{set:?}");
    }
    let shown = server.admin(&["app", "show", "blog", "--json"]).success();
    assert_eq!(shown.json()["run_as"], blog_user.name.as_str());

    let (agent, log) = start_isolating_agent(&server, "dev", "dev-1");
    let dir = server.dir.path();
    let shop = site(dir, "shop-1", SHOP_TOML);
    release_of(&server, "shop", "1.0", &shop);
    let blog = site(dir, "blog-1", "[hooks]\nbefore_switch = \"sh probe.sh\"\n");
    fs::write(blog.join("probe.sh"), PROBE).unwrap();
    release_of(&server, "blog", "1.0", &blog);
    for app in ["shop", "blog"] {
        server
            .admin(&["deploy", app, "1.0", "--to", "dev", "--wait"])
            .success();
    }

    let apps = agent.root.join("apps");
    let probe = fs::read_to_string(apps.join("blog/shared/probe.txt")).unwrap();
    for denied in [
        "read-shop-data",
        "list-shop",
        "list-apps",
        "read-shop-release",
        "write-shop-data",
        "read-credential",
        "list-agent-state",
        "change-own-release",
        "relink-own-current",
    ] {
        assert!(
            probe.contains(&format!("{denied} denied")),
            "{denied}: {probe}"
        );
    }
    assert!(probe.contains("write-own-data allowed"), "{probe}");
    assert!(
        probe.contains(&format!("user {}", blog_user.name)),
        "{probe}"
    );

    // The shop's data is the shop's, untouched; its directory is closed to other users.
    let secret = apps.join("shop/shared/data/secret.txt");
    assert_eq!(fs::read_to_string(&secret).unwrap(), "shop-secret\n");
    assert!(!apps.join("shop/shared/data/pwned").exists());
    let (uid, gid) = shop_user.ids();
    let owner = |path: &Path| {
        let m = fs::symlink_metadata(path).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    assert_eq!(owner(&apps.join("shop")), (0, gid, 0o750));
    assert_eq!(owner(&apps.join("shop/shared")).0, uid);
    assert_eq!(owner(&apps.join("shop/shared/data")).0, uid);
    assert_eq!(owner(&secret).0, uid);
    assert_eq!(owner(&apps.join("shop/releases/1.0/index.html")).0, 0);
    assert_eq!(owner(&apps).2, 0o711);
    assert_eq!(owner(&agent.root.join(".ferry")).2, 0o700);
    assert_eq!(owner(&agent.root.join(".ferry/agent.toml")).2, 0o600);

    // Its backup hook runs as its user; restored data is its user's again.
    let backup = server
        .admin(&["backup", "create", "shop", "--env", "dev", "--json"])
        .success()
        .json();
    let by = fs::read_to_string(apps.join("shop/shared/data/backed-up-by")).unwrap();
    assert_eq!(by.trim(), shop_user.name);
    fs::remove_dir_all(apps.join("shop/shared/data")).unwrap();
    server
        .admin(&["backup", "restore", &backup[0]["id"].to_string()])
        .success();
    assert_eq!(fs::read_to_string(&secret).unwrap(), "shop-secret\n");
    assert_eq!(owner(&secret).0, uid);
    assert_eq!(owner(&apps.join("shop/shared/data")).0, uid);

    // An application without a user of its own is not deployed by a root agent when it
    // has commands to run, and the reason says what to do.
    let plain = site(dir, "plain-1", "[hooks]\nafter_switch = \"true\"\n");
    release_of(&server, "plain", "1.0", &plain);
    let failed = server
        .admin(&["deploy", "plain", "1.0", "--to", "dev", "--wait", "--json"])
        .json();
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed
            .to_string()
            .contains("ferry app set plain --run-as USER"),
        "{failed}"
    );
    assert!(!apps.join("plain/current").exists());

    // Two applications never share a user: the second could reach the first's files.
    server
        .admin(&["app", "set", "blog", "--run-as", &shop_user.name])
        .success();
    let blog_2 = site(dir, "blog-2", "[hooks]\nbefore_switch = \"true\"\n");
    release_of(&server, "blog", "2.0", &blog_2);
    let failed = server
        .admin(&["deploy", "blog", "2.0", "--to", "dev", "--wait", "--json"])
        .json();
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed.to_string().contains("both run as"), "{failed}");

    let audit = server
        .admin(&["audit", "--action", "app.run-as", "--json"])
        .success()
        .json();
    assert_eq!(audit.as_array().unwrap().len(), 3, "{audit}");
    let logged = fs::read_to_string(log).unwrap();
    assert!(logged.contains("this agent runs as root"), "{logged}");
}
