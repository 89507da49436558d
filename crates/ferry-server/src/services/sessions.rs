//! Logging in to the dashboard and out again: a password or an API token proves who
//! someone is, failed attempts are throttled per address and per user name, and a session
//! starts (audited `user.login`) or ends (`user.logout`).

use std::net::IpAddr;
use std::sync::OnceLock;

use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::login::{LoginMethod, SESSION_LIFETIME_MS};
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::token::hash_token;
use ferry_store::{NewSession, TokenHolder};

use super::{blocking, ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::state::AppState;

/// What someone offers as proof of who they are.
pub enum Proof {
    Password { user: String, password: String },
    Token(String),
}

impl Proof {
    fn method(&self) -> LoginMethod {
        match self {
            Proof::Password { .. } => LoginMethod::Password,
            Proof::Token(_) => LoginMethod::Token,
        }
    }
}

/// Checks `proof`, and on success starts a session whose cookie hashes to `session_hash`,
/// audited `user.login`. Returns who logged in. A wrong user name and a wrong password are
/// refused alike, in the same time, so the answer does not say which user names exist.
pub async fn log_in(
    state: &AppState,
    proof: Proof,
    from: IpAddr,
    session_hash: String,
) -> ServiceResult<Caller> {
    let now_ms = state.clock.now_ms();
    let named = match &proof {
        Proof::Password { user, .. } => Some(user.clone()),
        Proof::Token(_) => None,
    };
    state
        .throttles
        .check_login(from, named.as_deref(), now_ms)?;
    let method = proof.method();
    let holder = match proof {
        Proof::Password { user, password } => by_password(state, user, password).await?,
        Proof::Token(token) => state.store.user_by_token(&hash_token(token.trim())).await?,
    };
    let Some(holder) = holder else {
        state.throttles.login_failed(from, named.as_deref(), now_ms);
        return Err(ServiceError::unauthorized(match method {
            LoginMethod::Password => "wrong user name or password",
            LoginMethod::Token => {
                "unknown API token: `ferry user rotate-token` gives a user a new one"
            }
        }));
    };
    let caller = Caller::of(state, holder).map_err(|e| ServiceError::unauthorized(e.message))?;
    let name = caller.user.name.clone();
    state.throttles.login_succeeded(from, &name);
    let session = NewSession {
        hash: session_hash,
        user: name.clone(),
        created_ms: now_ms,
        expires_ms: now_ms + SESSION_LIFETIME_MS,
    };
    let record = caller.audit(
        AuditAction::UserLogin(audit_event::UserLogin { method }),
        format!("user/{name}"),
        None,
    );
    state.store.create_session(session, record).await?;
    Ok(caller)
}

/// The user whose password `password` is, with their roles; `None` for an unknown user, a
/// user without a password or a wrong one, which all take one argon2 verification.
async fn by_password(
    state: &AppState,
    user: String,
    password: String,
) -> ServiceResult<Option<TokenHolder>> {
    let stored = match validate_name(NameKind::User, &user) {
        Ok(()) => state.store.password_hash(&user).await.ok().flatten(),
        Err(_) => None,
    };
    let matches = blocking(move || {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let hash = stored.unwrap_or_else(|| unknown_user_hash().to_owned());
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| ServiceError::internal(format!("a stored password hash: {e}")))?;
        Ok(argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await?;
    if !matches {
        return Ok(None);
    }
    let users = state.store.list_users().await?;
    let roles = state.store.list_roles().await?;
    Ok(users
        .into_iter()
        .find(|u| u.name == user)
        .map(|user| TokenHolder { user, roles }))
}

/// A hash no password matches, verified for unknown users so they take as long as known ones.
fn unknown_user_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
        let mut random = [0u8; 32];
        let _ = getrandom::fill(&mut random);
        argon2::Argon2::default()
            .hash_password(&random, &SaltString::generate(&mut OsRng))
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

/// Ends the session whose cookie hashes to `session_hash`, audited `user.logout`.
pub async fn log_out(state: &AppState, caller: &Caller, session_hash: &str) -> ServiceResult<()> {
    let name = &caller.user.name;
    let record = caller.audit(
        AuditAction::UserLogout(audit_event::UserLogout {}),
        format!("user/{name}"),
        None,
    );
    state.store.end_session(session_hash, record).await?;
    Ok(())
}
