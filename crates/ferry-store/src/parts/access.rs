//! People and what they may do: the first start, users and their tokens, teams and memberships, roles and per-application grants.

use async_trait::async_trait;

use crate::*;

/// People and what they may do: the first start, users and their tokens, teams and memberships, roles and per-application grants.
#[async_trait]
pub trait Access: Send + Sync + 'static {
    /// On an empty store, creates the pipeline, the roles and the first admin and returns
    /// true; on a store that already has users, changes nothing and returns false.
    async fn bootstrap(&self, bootstrap: Bootstrap, audit: AuditRecord) -> StoreResult<bool>;

    /// The user an API token (by its hash) belongs to, with the roles.
    async fn user_by_token(&self, token_hash: &str) -> StoreResult<Option<TokenHolder>>;
    /// Creates a user with one API token.
    async fn create_user(&self, user: NewUser, audit: AuditRecord) -> StoreResult<User>;
    /// All users, by name.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Starts a dashboard session for `session.user`; sessions of anyone that expired by
    /// `session.created_ms` are removed on the way. Not found when there is no such user.
    async fn create_session(&self, session: NewSession, audit: AuditRecord) -> StoreResult<()>;
    /// The user a dashboard session (by its cookie's hash) belongs to, with the roles, while
    /// it has not expired at `now_ms`.
    async fn user_by_session(&self, hash: &str, now_ms: i64) -> StoreResult<Option<TokenHolder>>;
    /// Ends a dashboard session (logging out). Not found when there is no such session.
    async fn end_session(&self, hash: &str, audit: AuditRecord) -> StoreResult<()>;
    /// Replaces every API token of `user` with one whose hash is `token_hash`: from the
    /// commit on, the old tokens are unknown, and so are the user's dashboard sessions.
    async fn rotate_token(
        &self,
        user: &str,
        token_hash: &str,
        now_ms: i64,
        audit: AuditRecord,
    ) -> StoreResult<()>;
    /// Sets `user`'s dashboard password to the one whose argon2 hash (a PHC string) is
    /// `password_hash`, ending the user's dashboard sessions. Not found when there is no
    /// such user.
    async fn set_password_hash(
        &self,
        user: &str,
        password_hash: &str,
        audit: AuditRecord,
    ) -> StoreResult<()>;
    /// `user`'s password hash, if they set a password; not found when there is no such user.
    async fn password_hash(&self, user: &str) -> StoreResult<Option<String>>;
    /// Disables `user` (`disabled_ms` is when) or enables them again (`None`); their tokens
    /// stay and work again once they are enabled, their dashboard sessions end. Disabling is refused when no user whose
    /// default role is one of `admin_roles` would stay enabled, so the last admin cannot be
    /// locked out, also by two admins disabling each other at once.
    async fn set_user_disabled(
        &self,
        user: &str,
        disabled_ms: Option<i64>,
        admin_roles: &[String],
        audit: AuditRecord,
    ) -> StoreResult<User>;

    /// Creates a team.
    async fn create_team(&self, name: &str, audit: AuditRecord) -> StoreResult<Team>;
    /// All teams, by name.
    async fn list_teams(&self) -> StoreResult<Vec<Team>>;

    /// All roles with their levels in every environment.
    async fn list_roles(&self) -> StoreResult<Vec<Role>>;
    /// Sets one role's level in one environment.
    async fn set_role_level(
        &self,
        role: &str,
        env: &str,
        level: Level,
        audit: AuditRecord,
    ) -> StoreResult<Role>;
    /// The per-app grants of an application.
    async fn app_grants(&self, app: &str) -> StoreResult<Vec<AppGrant>>;
    /// Sets a user's level on an application in an environment (`none` removes it).
    async fn set_app_grant(&self, grant: AppGrant, audit: AuditRecord) -> StoreResult<()>;
    /// Makes `user` a member of `team` with `role` (`None`: their default role) or changes
    /// their role there; with `remove`, takes them out of the team (not found if they were
    /// not in it).
    async fn set_membership(
        &self,
        team: &str,
        user: &str,
        role: Option<&str>,
        remove: bool,
        audit: AuditRecord,
    ) -> StoreResult<()>;
}
