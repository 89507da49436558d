//! The environment pipeline and the roles' levels in each environment.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use crate::Connection;
use ferry_domain::permission::{Capability, Level, Role};
use ferry_domain::pipeline::{
    check_removal, check_rename, plan_insertion, Environment, EnvironmentUse, PipelineError, Policy,
};
use ferry_domain::role::{is_editable, levels_for_new_environment};
use ferry_store::{PolicyChange, StoreError, StoreResult};

use crate::{backend, narrow, not_found, unreadable};

/// A row of [`list_environments`]' query.
#[derive(sqlx::FromRow)]
struct EnvironmentRow {
    name: String,
    position: i64,
    approvals_required: i64,
    self_approval: bool,
    protected: bool,
    optional: bool,
}

impl TryFrom<EnvironmentRow> for Environment {
    type Error = StoreError;

    fn try_from(row: EnvironmentRow) -> StoreResult<Environment> {
        let unreadable = |why: String| unreadable(format_args!("environment {}", row.name), why);
        Ok(Environment {
            position: narrow("position", row.position).map_err(unreadable)?,
            policy: Policy {
                approvals_required: narrow("approvals_required", row.approvals_required)
                    .map_err(unreadable)?,
                self_approval: row.self_approval,
                protected: row.protected,
            },
            optional: row.optional,
            name: row.name,
        })
    }
}

pub(crate) async fn list_environments(conn: &mut Connection) -> StoreResult<Vec<Environment>> {
    let rows: Vec<EnvironmentRow> = sqlx::query_as(
        "SELECT name, position, approvals_required, self_approval, protected, optional
         FROM environments ORDER BY position",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(Environment::try_from).collect()
}

/// One environment of the pipeline; not found if there is none of that name.
pub(crate) async fn environment(conn: &mut Connection, name: &str) -> StoreResult<Environment> {
    list_environments(conn)
        .await?
        .into_iter()
        .find(|e| e.name == name)
        .ok_or_else(|| not_found("environment", name))
}

async fn write_environment(conn: &mut Connection, env: &Environment) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO environments
           (name, position, approvals_required, self_approval, protected, optional)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&env.name)
    .bind(i64::from(env.position))
    .bind(i64::from(env.policy.approvals_required))
    .bind(env.policy.self_approval)
    .bind(env.policy.protected)
    .bind(env.optional)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

async fn write_level(
    conn: &mut Connection,
    role: &str,
    env: &str,
    level: Level,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO role_levels (role, env, level) VALUES ($1, $2, $3)
         ON CONFLICT (role, env) DO UPDATE SET level = excluded.level",
    )
    .bind(role)
    .bind(env)
    .bind(level.as_str())
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Writes the first pipeline and the built-in roles into an empty store.
pub(crate) async fn insert_defaults(
    conn: &mut Connection,
    environments: &[Environment],
    roles: &[Role],
) -> StoreResult<()> {
    for env in environments {
        write_environment(conn, env).await?;
    }
    for role in roles {
        let capabilities: Vec<&str> = role.capabilities.iter().map(|c| c.as_str()).collect();
        sqlx::query("INSERT INTO roles (name, capabilities) VALUES ($1, $2)")
            .bind(&role.name)
            .bind(capabilities.join(","))
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        for (env, level) in &role.levels {
            write_level(conn, &role.name, env, *level).await?;
        }
    }
    Ok(())
}

/// Every role with its levels, in one query (it is read for every request made with a
/// token): a row per level, or one row with no level for a role that has none.
pub(crate) async fn list_roles(conn: &mut Connection) -> StoreResult<Vec<Role>> {
    let rows: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT roles.name, roles.capabilities, role_levels.env, role_levels.level
         FROM roles LEFT JOIN role_levels ON role_levels.role = roles.name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    let mut roles: BTreeMap<String, Role> = BTreeMap::new();
    for (name, capabilities, env, level) in rows {
        let role = match roles.entry(name) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(new) => {
                let name = new.key().clone();
                // Stored comma-separated, as `insert_defaults` writes them.
                let capabilities = capabilities
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(|c| {
                        c.parse::<Capability>()
                            .map_err(|why| unreadable(format_args!("role {name}"), why))
                    })
                    .collect::<StoreResult<_>>()?;
                new.insert(Role {
                    name,
                    levels: BTreeMap::new(),
                    capabilities,
                })
            }
        };
        if let (Some(env), Some(level)) = (env, level) {
            let level = level.parse::<Level>().map_err(|why| {
                unreadable(
                    format_args!("the level of role {} in {env}", role.name),
                    why,
                )
            })?;
            role.levels.insert(env, level);
        }
    }
    Ok(roles.into_values().collect())
}

pub(crate) async fn set_role_level(
    conn: &mut Connection,
    role: &str,
    env: &str,
    level: Level,
) -> StoreResult<()> {
    let roles = list_roles(conn).await?;
    if !roles.iter().any(|r| r.name == role) {
        return Err(not_found("role", role));
    }
    if !is_editable(role) {
        return Err(StoreError::Refused(format!(
            "the {role} role cannot be edited: it must always be able to repair everything else"
        )));
    }
    let environments = list_environments(conn).await?;
    if !environments.iter().any(|e| e.name == env) {
        return Err(not_found("environment", env));
    }
    write_level(conn, role, env, level).await
}

pub(crate) async fn insert_environment(
    conn: &mut Connection,
    name: &str,
    after: Option<&str>,
) -> StoreResult<Environment> {
    let pipeline = list_environments(conn).await?;
    let (position, predecessor) = plan_insertion(&pipeline, name, after).map_err(|e| match e {
        PipelineError::AlreadyExists(name) => StoreError::AlreadyExists {
            kind: "environment",
            name,
        },
        PipelineError::UnknownEnvironment(name) => StoreError::NotFound {
            kind: "environment",
            name,
        },
        other => StoreError::Refused(other.to_string()),
    })?;
    let env = Environment {
        name: name.to_owned(),
        position,
        policy: predecessor.policy,
        // Optional is a decision about this environment, never inherited.
        optional: false,
    };
    let levels = levels_for_new_environment(&list_roles(conn).await?, &predecessor.name);
    sqlx::query("UPDATE environments SET position = position + 1 WHERE position >= $1")
        .bind(i64::from(position))
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    write_environment(conn, &env).await?;
    for (role, level) in levels {
        write_level(conn, &role, name, level).await?;
    }
    Ok(env)
}

pub(crate) async fn change_policy(
    conn: &mut Connection,
    name: &str,
    change: PolicyChange,
) -> StoreResult<Environment> {
    let mut env = environment(conn, name).await?;
    let policy = &mut env.policy;
    policy.approvals_required = change
        .approvals_required
        .unwrap_or(policy.approvals_required);
    policy.self_approval = change.self_approval.unwrap_or(policy.self_approval);
    policy.protected = change.protected.unwrap_or(policy.protected);
    env.optional = change.optional.unwrap_or(env.optional);
    sqlx::query(
        "UPDATE environments SET approvals_required = $1, self_approval = $2, protected = $3,
           optional = $4
         WHERE name = $5",
    )
    .bind(i64::from(policy.approvals_required))
    .bind(policy.self_approval)
    .bind(policy.protected)
    .bind(env.optional)
    .bind(name)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(env)
}

/// What `env` holds, for [`check_removal`].
async fn environment_use(conn: &mut Connection, env: &str) -> StoreResult<EnvironmentUse> {
    let running: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT a.name, ta.current_version, t.name
         FROM target_apps ta JOIN targets t ON t.id = ta.target_id JOIN apps a ON a.id = ta.app_id
         WHERE t.env = $1 AND t.removed_ms IS NULL AND ta.current_version IS NOT NULL
         ORDER BY a.name, t.name",
    )
    .bind(env)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    let active_deployments: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM deployments
         WHERE env = $1 AND status IN ('running', 'awaiting_approval') ORDER BY id",
    )
    .bind(env)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    let targets: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM targets WHERE env = $1 AND removed_ms IS NULL ORDER BY name",
    )
    .bind(env)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).bind(env);
    let deployments = count("SELECT COUNT(*) FROM deployments WHERE env = $1")
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?;
    let incidents = count("SELECT COUNT(*) FROM incidents WHERE env = $1")
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?;
    let unsigned = |what: &str, n: i64| {
        u64::try_from(n).map_err(|_| unreadable(format_args!("environment {env}"), what))
    };
    Ok(EnvironmentUse {
        running,
        active_deployments,
        targets,
        deployments: unsigned("deployments", deployments)?,
        incidents: unsigned("incidents", incidents)?,
    })
}

pub(crate) async fn delete_environment(conn: &mut Connection, name: &str) -> StoreResult<()> {
    let pipeline = list_environments(conn).await?;
    let usage = environment_use(conn, name).await?;
    check_removal(&pipeline, name, &usage).map_err(|e| match e {
        PipelineError::UnknownEnvironment(name) => not_found("environment", &name),
        other => StoreError::Refused(other.to_string()),
    })?;
    let position = environment(conn, name).await?.position;
    // Targets removed from the environment before anything was deployed there go with it.
    for sql in [
        "DELETE FROM enrollment_tokens WHERE target_id IN (SELECT id FROM targets WHERE env = $1)",
        "DELETE FROM placements WHERE target_id IN (SELECT id FROM targets WHERE env = $1)",
        "DELETE FROM target_apps WHERE target_id IN (SELECT id FROM targets WHERE env = $1)",
        "DELETE FROM target_drift WHERE target_id IN (SELECT id FROM targets WHERE env = $1)",
        "DELETE FROM agent_tasks WHERE target_id IN (SELECT id FROM targets WHERE env = $1)",
        "DELETE FROM targets WHERE env = $1",
        "DELETE FROM role_levels WHERE env = $1",
        "DELETE FROM freeze_windows WHERE env = $1",
        "DELETE FROM one_off_freezes WHERE env = $1",
        "DELETE FROM app_grants WHERE env = $1",
        "DELETE FROM config_revisions WHERE env = $1",
        "DELETE FROM environments WHERE name = $1",
    ] {
        sqlx::query(sql)
            .bind(name)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    sqlx::query("UPDATE environments SET position = position - 1 WHERE position > $1")
        .bind(i64::from(position))
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

pub(crate) async fn rename_environment(
    conn: &mut Connection,
    old: &str,
    new: &str,
) -> StoreResult<Environment> {
    let pipeline = list_environments(conn).await?;
    let usage = environment_use(conn, old).await?;
    check_rename(&pipeline, old, new, &usage).map_err(|e| match e {
        PipelineError::UnknownEnvironment(name) => not_found("environment", &name),
        PipelineError::AlreadyExists(name) => StoreError::AlreadyExists {
            kind: "environment",
            name,
        },
        other => StoreError::Refused(other.to_string()),
    })?;
    // The name is the key others refer to: the new row first, then every reference, then
    // the old row goes.
    let env = Environment {
        name: new.to_owned(),
        ..environment(conn, old).await?
    };
    write_environment(conn, &env).await?;
    for sql in [
        "UPDATE targets SET env = $1 WHERE env = $2",
        "UPDATE role_levels SET env = $1 WHERE env = $2",
        "UPDATE freeze_windows SET env = $1 WHERE env = $2",
        "UPDATE one_off_freezes SET env = $1 WHERE env = $2",
        "UPDATE app_grants SET env = $1 WHERE env = $2",
        "UPDATE app_backups SET env = $1 WHERE env = $2",
        "UPDATE config_revisions SET env = $1 WHERE env = $2",
    ] {
        sqlx::query(sql)
            .bind(new)
            .bind(old)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    sqlx::query("DELETE FROM environments WHERE name = $1")
        .bind(old)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(env)
}
