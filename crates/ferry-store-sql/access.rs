//! Teams, users, their memberships and API tokens.

use crate::Connection;
use ferry_domain::permission::Level;
use ferry_store::{AppGrant, Membership, NewSession, NewUser, StoreError, StoreResult, Team, User};

use crate::{backend, not_found, unique, unreadable};

pub(crate) async fn insert_team(
    conn: &mut Connection,
    name: &str,
    created_ms: i64,
) -> StoreResult<Team> {
    sqlx::query("INSERT INTO teams (name, created_ms) VALUES ($1, $2)")
        .bind(name)
        .bind(created_ms)
        .execute(&mut *conn)
        .await
        .map_err(unique("team", name))?;
    Ok(Team {
        name: name.to_owned(),
        created_ms,
    })
}

pub(crate) async fn list_teams(conn: &mut Connection) -> StoreResult<Vec<Team>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, created_ms FROM teams ORDER BY name")
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
    Ok(rows
        .into_iter()
        .map(|(name, created_ms)| Team { name, created_ms })
        .collect())
}

async fn role_exists(conn: &mut Connection, role: &str) -> StoreResult<()> {
    let found: Option<String> = sqlx::query_scalar("SELECT name FROM roles WHERE name = $1")
        .bind(role)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    found.map(drop).ok_or_else(|| not_found("role", role))
}

async fn team_id(conn: &mut Connection, team: &str) -> StoreResult<i64> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM teams WHERE name = $1")
        .bind(team)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    id.ok_or_else(|| not_found("team", team))
}

/// Inserts a user with their memberships and first token; refers only to existing roles and
/// teams, so a typo is a clear "no role named" instead of a constraint error.
pub(crate) async fn insert_user(conn: &mut Connection, user: &NewUser) -> StoreResult<()> {
    role_exists(conn, &user.default_role).await?;
    let user_id: i64 = sqlx::query_scalar(
        "INSERT INTO users (name, default_role, created_ms) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(&user.name)
    .bind(&user.default_role)
    .bind(user.created_ms)
    .fetch_one(&mut *conn)
    .await
    .map_err(unique("user", &user.name))?;
    for membership in &user.teams {
        let team_id = team_id(conn, &membership.team).await?;
        if let Some(role) = &membership.role {
            role_exists(conn, role).await?;
        }
        sqlx::query("INSERT INTO memberships (user_id, team_id, role) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(team_id)
            .bind(&membership.role)
            .execute(&mut *conn)
            .await
            .map_err(unique("membership of team", &membership.team))?;
    }
    sqlx::query("INSERT INTO api_tokens (hash, user_id, created_ms) VALUES ($1, $2, $3)")
        .bind(&user.token_hash)
        .bind(user_id)
        .bind(user.created_ms)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

async fn memberships(conn: &mut Connection, user_id: i64) -> StoreResult<Vec<Membership>> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT teams.name AS team, memberships.role AS role
         FROM memberships JOIN teams ON teams.id = memberships.team_id
         WHERE memberships.user_id = $1 ORDER BY teams.name",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(rows
        .into_iter()
        .map(|(team, role)| Membership { team, role })
        .collect())
}

/// A row of [`grants`]' query.
#[derive(sqlx::FromRow)]
struct GrantRow {
    app: String,
    user: String,
    env: String,
    level: String,
}

impl TryFrom<GrantRow> for AppGrant {
    type Error = StoreError;

    fn try_from(row: GrantRow) -> StoreResult<AppGrant> {
        let level = row.level.parse().map_err(|why| {
            unreadable(
                format_args!("the grant of {} to {} in {}", row.app, row.user, row.env),
                why,
            )
        })?;
        Ok(AppGrant {
            app: row.app,
            user: row.user,
            env: row.env,
            level,
        })
    }
}

async fn grants(
    conn: &mut Connection,
    app: Option<&str>,
    user: Option<&str>,
) -> StoreResult<Vec<AppGrant>> {
    let rows: Vec<GrantRow> = sqlx::query_as(
        "SELECT apps.name AS app, users.name AS user, app_grants.env, app_grants.level
         FROM app_grants JOIN apps ON apps.id = app_grants.app_id
         JOIN users ON users.id = app_grants.user_id
         WHERE ($1 IS NULL OR apps.name = $1) AND ($2 IS NULL OR users.name = $2)
         ORDER BY apps.name, users.name, app_grants.env",
    )
    .bind(app)
    .bind(user)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(AppGrant::try_from).collect()
}

pub(crate) async fn app_grants(conn: &mut Connection, app: &str) -> StoreResult<Vec<AppGrant>> {
    grants(conn, Some(app), None).await
}

/// Sets a user's level on an application in an environment; `none` removes the grant.
pub(crate) async fn set_app_grant(conn: &mut Connection, grant: &AppGrant) -> StoreResult<()> {
    let user_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
        .bind(&grant.user)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("user", &grant.user))?;
    let app_id: i64 = sqlx::query_scalar("SELECT id FROM apps WHERE name = $1")
        .bind(&grant.app)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("application", &grant.app))?;
    let env: Option<String> = sqlx::query_scalar("SELECT name FROM environments WHERE name = $1")
        .bind(&grant.env)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    if env.is_none() {
        return Err(not_found("environment", &grant.env));
    }
    let query = if grant.level == Level::None {
        sqlx::query("DELETE FROM app_grants WHERE app_id = $1 AND user_id = $2 AND env = $3")
            .bind(app_id)
            .bind(user_id)
            .bind(&grant.env)
    } else {
        sqlx::query(
            "INSERT INTO app_grants (app_id, user_id, env, level) VALUES ($1, $2, $3, $4)
             ON CONFLICT (app_id, user_id, env) DO UPDATE SET level = excluded.level",
        )
        .bind(app_id)
        .bind(user_id)
        .bind(&grant.env)
        .bind(grant.level.as_str())
    };
    query.execute(&mut *conn).await.map_err(backend)?;
    Ok(())
}

/// Makes `user` a member of `team` with `role` (`None`: their default role), or changes the
/// role of an existing member; with `remove`, takes them out of the team.
pub(crate) async fn set_membership(
    conn: &mut Connection,
    team: &str,
    user: &str,
    role: Option<&str>,
    remove: bool,
) -> StoreResult<()> {
    let team_id = team_id(conn, team).await?;
    let user_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
        .bind(user)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("user", user))?;
    if remove {
        let removed = sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND team_id = $2")
            .bind(user_id)
            .bind(team_id)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        if removed.rows_affected() == 0 {
            return Err(not_found("member of the team", user));
        }
        return Ok(());
    }
    if let Some(role) = role {
        role_exists(conn, role).await?;
    }
    sqlx::query(
        "INSERT INTO memberships (user_id, team_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, team_id) DO UPDATE SET role = excluded.role",
    )
    .bind(user_id)
    .bind(team_id)
    .bind(role)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// A row of [`users_where`]' query.
#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    name: String,
    default_role: String,
    created_ms: i64,
    disabled_ms: Option<i64>,
}

async fn users_where(
    conn: &mut Connection,
    condition: &str,
    value: Option<&str>,
) -> StoreResult<Vec<User>> {
    let sql = format!(
        "SELECT users.id, users.name, users.default_role, users.created_ms, users.disabled_ms
         FROM users {condition} ORDER BY users.name"
    );
    let mut query = sqlx::query_as(&sql);
    if let Some(value) = value {
        query = query.bind(value);
    }
    let rows: Vec<UserRow> = query.fetch_all(&mut *conn).await.map_err(backend)?;
    let mut users = Vec::with_capacity(rows.len());
    for row in rows {
        users.push(User {
            teams: memberships(conn, row.id).await?,
            grants: grants(conn, None, Some(&row.name)).await?,
            default_role: row.default_role,
            created_ms: row.created_ms,
            disabled_ms: row.disabled_ms,
            name: row.name,
        });
    }
    Ok(users)
}

pub(crate) async fn user(conn: &mut Connection, name: &str) -> StoreResult<User> {
    users_where(conn, "WHERE users.name = $1", Some(name))
        .await?
        .pop()
        .ok_or_else(|| not_found("user", name))
}

pub(crate) async fn list_users(conn: &mut Connection) -> StoreResult<Vec<User>> {
    users_where(conn, "", None).await
}

pub(crate) async fn user_by_token(
    conn: &mut Connection,
    token_hash: &str,
) -> StoreResult<Option<User>> {
    Ok(users_where(
        conn,
        "JOIN api_tokens ON api_tokens.user_id = users.id WHERE api_tokens.hash = $1",
        Some(token_hash),
    )
    .await?
    .pop())
}

async fn user_id(conn: &mut Connection, user: &str) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
        .bind(user)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("user", user))
}

/// Starts a dashboard session, removing everyone's sessions that expired by its start.
pub(crate) async fn create_session(conn: &mut Connection, session: &NewSession) -> StoreResult<()> {
    let user_id = user_id(conn, &session.user).await?;
    sqlx::query("DELETE FROM sessions WHERE expires_ms <= $1")
        .bind(session.created_ms)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    sqlx::query(
        "INSERT INTO sessions (hash, user_id, created_ms, expires_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(&session.hash)
    .bind(user_id)
    .bind(session.created_ms)
    .bind(session.expires_ms)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// The user of the session whose cookie hashes to `hash`, unless it expired by `now_ms`.
pub(crate) async fn user_by_session(
    conn: &mut Connection,
    hash: &str,
    now_ms: i64,
) -> StoreResult<Option<User>> {
    let name: Option<String> = sqlx::query_scalar(
        "SELECT users.name FROM sessions JOIN users ON users.id = sessions.user_id
         WHERE sessions.hash = $1 AND sessions.expires_ms > $2",
    )
    .bind(hash)
    .bind(now_ms)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    match name {
        Some(name) => Ok(Some(user(conn, &name).await?)),
        None => Ok(None),
    }
}

/// Ends the session whose cookie hashes to `hash`.
pub(crate) async fn end_session(conn: &mut Connection, hash: &str) -> StoreResult<()> {
    let ended = sqlx::query("DELETE FROM sessions WHERE hash = $1")
        .bind(hash)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    if ended.rows_affected() == 0 {
        return Err(not_found("session", "(this browser's)"));
    }
    Ok(())
}

/// Ends every dashboard session of the user `user_id`.
async fn end_sessions_of(conn: &mut Connection, user_id: i64) -> StoreResult<()> {
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Replaces every token of `user` with the one whose hash is `token_hash`, ending their
/// dashboard sessions.
pub(crate) async fn rotate_token(
    conn: &mut Connection,
    user: &str,
    token_hash: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let user_id = user_id(conn, user).await?;
    end_sessions_of(conn, user_id).await?;
    sqlx::query("DELETE FROM api_tokens WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    sqlx::query("INSERT INTO api_tokens (hash, user_id, created_ms) VALUES ($1, $2, $3)")
        .bind(token_hash)
        .bind(user_id)
        .bind(now_ms)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Sets `user`'s password hash, ending their dashboard sessions.
pub(crate) async fn set_password_hash(
    conn: &mut Connection,
    user: &str,
    password_hash: &str,
) -> StoreResult<()> {
    let user_id = user_id(conn, user).await?;
    end_sessions_of(conn, user_id).await?;
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// `user`'s password hash, if any.
pub(crate) async fn password_hash(
    conn: &mut Connection,
    user: &str,
) -> StoreResult<Option<String>> {
    let user_id = user_id(conn, user).await?;
    sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)
}

/// Disables or enables `user`; disabling is refused when no user with one of
/// `admin_roles` as default role would stay enabled.
pub(crate) async fn set_disabled(
    conn: &mut Connection,
    user: &str,
    disabled_ms: Option<i64>,
    admin_roles: &[String],
) -> StoreResult<()> {
    let user_id = user_id(conn, user).await?;
    sqlx::query("UPDATE users SET disabled_ms = $1 WHERE id = $2")
        .bind(disabled_ms)
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    if disabled_ms.is_none() {
        return Ok(());
    }
    end_sessions_of(conn, user_id).await?;
    if admin_roles.is_empty() {
        return Err(StoreError::Refused(format!(
            "{user:?} is the last enabled admin: enable or create another admin first"
        )));
    }
    let roles: Vec<String> = (1..=admin_roles.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "SELECT count(*) FROM users WHERE disabled_ms IS NULL AND default_role IN ({})",
        roles.join(", ")
    );
    let mut count = sqlx::query_scalar(&sql);
    for role in admin_roles {
        count = count.bind(role);
    }
    let admins_left: i64 = count.fetch_one(&mut *conn).await.map_err(backend)?;
    if admins_left == 0 {
        return Err(StoreError::Refused(format!(
            "{user:?} is the last enabled admin: enable or create another admin first"
        )));
    }
    Ok(())
}
