//! The first start: the default pipeline, the built-in roles and the admin user.

use std::path::Path;

use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::pipeline::default_pipeline;
use ferry_domain::role::{built_in_roles, ADMIN_ROLE};
use ferry_domain::token::hash_token;
use ferry_store::{Bootstrap, NewUser, Store};

use crate::files::write_private_file;

/// Where the first admin's token is written, inside the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// The actor named in audit events the server makes by itself.
pub const SERVER_ACTOR: &str = "ferry";

/// On an empty store, creates everything a server starts with and writes the admin token
/// file. Returns whether it did. The token file is written before the database commits, so a
/// crash in between leaves an unused file that the next start overwrites, never an admin
/// whose token is lost.
pub async fn first_start(store: &dyn Store, data_dir: &Path, now_ms: i64) -> anyhow::Result<bool> {
    if !store.list_users().await?.is_empty() {
        return Ok(false);
    }
    let token = crate::auth::new_token()?;
    write_private_file(
        &data_dir.join(ADMIN_TOKEN_FILE),
        format!("{token}\n").as_bytes(),
    )?;
    let environments = default_pipeline();
    let env_names: Vec<String> = environments.iter().map(|e| e.name.clone()).collect();
    let roles = built_in_roles(&env_names.iter().map(String::as_str).collect::<Vec<_>>());
    let bootstrap = Bootstrap {
        environments,
        roles,
        admin: NewUser {
            name: ADMIN_ROLE.to_owned(),
            default_role: ADMIN_ROLE.to_owned(),
            teams: Vec::new(),
            token_hash: hash_token(&token),
            created_ms: now_ms,
        },
    };
    let record = AuditAction::ServerBootstrap(audit_event::ServerBootstrap {
        pipeline: env_names,
        admin: ADMIN_ROLE.to_owned(),
    })
    .record(now_ms, SERVER_ACTOR, "user/admin".to_owned(), None);
    Ok(store.bootstrap(bootstrap, record).await?)
}
