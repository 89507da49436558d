//! Dashboard passwords through the binary: set by their owner or an admin, read without
//! echo or from standard input, checked, and kept only as an argon2id hash.

use crate::config::{stored_containing, with_input};
use crate::deployments::setup;
use crate::harness::{audit_summary, Server};

const PASSWORD: &str = "correct horse battery staple";

#[test]
fn a_password_is_set_by_its_owner_or_an_admin_and_kept_only_as_a_hash() {
    let server = Server::start();
    setup(&server);
    let dana = server.create_user("dana", "developer", &["shop"]);
    server.create_user("lee", "developer", &["shop:lead"]);
    let set = |token: &str, user: Option<&str>, password: &str| {
        let mut args = vec!["user", "set-password"];
        args.extend(user);
        with_input(&server, token, &args, password)
    };

    let own = set(&dana, None, &format!("{PASSWORD}\n")).success();
    assert_eq!(own.stdout, "the password of dana is set\n", "{own:?}");
    set(&server.admin_token, Some("lee"), PASSWORD).success();

    // Another user's password is an admin's to set; a weak one, nobody's.
    set(&dana, Some("lee"), PASSWORD).fails(3, "another user's needs the admin role");
    set(&dana, None, "short one").fails(3, "has 9 characters: use at least 12");
    set(&dana, None, "").fails(2, "the new password of dana is empty");
    set(&server.admin_token, Some("nobody"), PASSWORD).fails(1, "no user \"nobody\"");

    // Audited without the password; stored only as a salted argon2id hash.
    let audit = audit_summary(&server, 0).join("\n");
    assert!(audit.contains("user.set-password user/dana"), "{audit}");
    assert!(audit.contains("user.set-password user/lee"), "{audit}");
    assert!(stored_containing(&server, PASSWORD).is_empty());
    assert!(!stored_containing(&server, "$argon2id$").is_empty());
    assert!(!server.log().contains(PASSWORD));
}
