//! Agent tasks: work asked of one target's agent for one application, and how it went.

use ferry_domain::task::TaskState;
use ferry_store::{NewTask, StoreError, StoreResult, TaskOutcome, TaskRecord};

use crate::{backend, not_found, unreadable, Connection};

/// A row of `agent_tasks` with its names.
#[derive(sqlx::FromRow)]
struct TaskRow {
    id: i64,
    target: String,
    env: String,
    app: String,
    work: String,
    state: String,
    message: Option<String>,
    detail: Option<String>,
    requested_by: String,
    requested_ms: i64,
    finished_ms: Option<i64>,
}

impl TryFrom<TaskRow> for TaskRecord {
    type Error = StoreError;

    fn try_from(row: TaskRow) -> StoreResult<TaskRecord> {
        Ok(TaskRecord {
            state: TaskState::parse(&row.state)
                .map_err(|e| unreadable(format_args!("task {}", row.id), e))?,
            id: row.id,
            target: row.target,
            env: row.env,
            app: row.app,
            work: row.work,
            message: row.message,
            detail: row.detail,
            requested_by: row.requested_by,
            requested_ms: row.requested_ms,
            finished_ms: row.finished_ms,
        })
    }
}

const SELECT: &str = "SELECT agent_tasks.id, targets.name AS target, targets.env, apps.name AS app,
        agent_tasks.work, agent_tasks.state, agent_tasks.message, agent_tasks.detail,
        agent_tasks.requested_by, agent_tasks.requested_ms, agent_tasks.finished_ms
    FROM agent_tasks
    JOIN targets ON targets.id = agent_tasks.target_id
    JOIN apps ON apps.id = agent_tasks.app_id";

/// Stores a pending task for `task.target` (in service) and `task.app`; its number.
pub(crate) async fn insert(conn: &mut Connection, task: &NewTask) -> StoreResult<i64> {
    let target_id: Option<i64> =
        sqlx::query_scalar("SELECT id FROM targets WHERE name = $1 AND removed_ms IS NULL")
            .bind(&task.target)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    let target_id = target_id.ok_or_else(|| not_found("target", &task.target))?;
    let app_id: Option<i64> = sqlx::query_scalar("SELECT id FROM apps WHERE name = $1")
        .bind(&task.app)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    let app_id = app_id.ok_or_else(|| not_found("application", &task.app))?;
    sqlx::query_scalar(
        "INSERT INTO agent_tasks (target_id, app_id, work, state, requested_by, requested_ms)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(target_id)
    .bind(app_id)
    .bind(&task.work)
    .bind(TaskState::Pending.as_str())
    .bind(&task.requested_by)
    .bind(task.requested_ms)
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)
}

/// One task, by number.
pub(crate) async fn get(conn: &mut Connection, id: i64) -> StoreResult<Option<TaskRecord>> {
    let row: Option<TaskRow> = sqlx::query_as(&format!("{SELECT} WHERE agent_tasks.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    row.map(TaskRecord::try_from).transpose()
}

/// The pending tasks of `target` requested since `since_ms`, oldest first.
pub(crate) async fn pending(
    conn: &mut Connection,
    target: &str,
    since_ms: i64,
) -> StoreResult<Vec<TaskRecord>> {
    let rows: Vec<TaskRow> = sqlx::query_as(&format!(
        "{SELECT} WHERE targets.name = $1 AND targets.removed_ms IS NULL
             AND agent_tasks.state = $2 AND agent_tasks.requested_ms >= $3
         ORDER BY agent_tasks.id"
    ))
    .bind(target)
    .bind(TaskState::Pending.as_str())
    .bind(since_ms)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(TaskRecord::try_from).collect()
}

/// Records how a pending task of `outcome.target` went.
pub(crate) async fn finish(
    conn: &mut Connection,
    outcome: &TaskOutcome,
) -> StoreResult<TaskRecord> {
    let task = get(conn, outcome.id)
        .await?
        .filter(|task| task.target == outcome.target)
        .ok_or_else(|| not_found("task", &outcome.id.to_string()))?;
    if task.state != TaskState::Pending {
        return Err(StoreError::Refused(format!(
            "task {} is {} already",
            task.id, task.state
        )));
    }
    sqlx::query(
        "UPDATE agent_tasks SET state = $1, message = $2, detail = $3, finished_ms = $4
         WHERE id = $5 AND state = $6",
    )
    .bind(outcome.state.as_str())
    .bind(&outcome.message)
    .bind(&outcome.detail)
    .bind(outcome.finished_ms)
    .bind(outcome.id)
    .bind(TaskState::Pending.as_str())
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    get(conn, outcome.id)
        .await?
        .ok_or_else(|| not_found("task", &outcome.id.to_string()))
}
