//! Applications and the team that owns each.

use crate::Connection;
use ferry_domain::run_as::RunAs;
use ferry_store::{App, NewApp, StoreError, StoreResult};

use crate::{backend, narrow, not_found, unique, unreadable};

const SELECT_APPS: &str =
    "SELECT apps.name, teams.name AS team, maintainers.name AS maintainer, apps.keep_releases,
        apps.run_as, apps.created_ms
     FROM apps JOIN teams ON teams.id = apps.team_id
     LEFT JOIN teams AS maintainers ON maintainers.id = apps.maintainer_team_id";

/// A row of `SELECT_APPS`.
#[derive(sqlx::FromRow)]
struct AppRow {
    name: String,
    team: String,
    maintainer: Option<String>,
    keep_releases: i64,
    run_as: Option<String>,
    created_ms: i64,
}

impl TryFrom<AppRow> for App {
    type Error = StoreError;

    fn try_from(row: AppRow) -> StoreResult<App> {
        let unreadable = |why: String| unreadable(format_args!("application {}", row.name), why);
        Ok(App {
            keep_releases: narrow("keep_releases", row.keep_releases).map_err(unreadable)?,
            run_as: read_run_as(row.run_as.as_deref()).map_err(unreadable)?,
            name: row.name,
            team: row.team,
            maintainer: row.maintainer,
            created_ms: row.created_ms,
        })
    }
}

pub(crate) async fn insert(conn: &mut Connection, app: &NewApp) -> StoreResult<()> {
    let team_id: i64 = sqlx::query_scalar("SELECT id FROM teams WHERE name = $1")
        .bind(&app.team)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("team", &app.team))?;
    sqlx::query(
        "INSERT INTO apps (name, team_id, keep_releases, created_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(&app.name)
    .bind(team_id)
    .bind(i64::from(app.keep_releases))
    .bind(app.created_ms)
    .execute(&mut *conn)
    .await
    .map_err(unique("application", &app.name))?;
    Ok(())
}

pub(crate) async fn by_name(conn: &mut Connection, name: &str) -> StoreResult<Option<App>> {
    let row: Option<AppRow> = sqlx::query_as(&format!("{SELECT_APPS} WHERE apps.name = $1"))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    row.map(App::try_from).transpose()
}

pub(crate) async fn list(conn: &mut Connection) -> StoreResult<Vec<App>> {
    let rows: Vec<AppRow> = sqlx::query_as(&format!("{SELECT_APPS} ORDER BY apps.name"))
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    rows.into_iter().map(App::try_from).collect()
}

/// Sets how many releases of an application retention keeps.
pub(crate) async fn set_keep(conn: &mut Connection, app: &str, keep: u32) -> StoreResult<()> {
    set_column(conn, app, "keep_releases", i64::from(keep)).await
}

/// Sets the Unix user an application's commands run as on root agents' targets.
pub(crate) async fn set_run_as(
    conn: &mut Connection,
    app: &str,
    user: Option<&RunAs>,
) -> StoreResult<()> {
    set_column(conn, app, "run_as", user.map(RunAs::to_string)).await
}

/// A stored `run_as` column.
pub(crate) fn read_run_as(stored: Option<&str>) -> Result<Option<RunAs>, String> {
    stored
        .map(|user| RunAs::parse(user).map_err(|why| format!("run_as: {why}")))
        .transpose()
}

/// Names the team that maintains an application (`None`: its owner).
pub(crate) async fn set_maintainer(
    conn: &mut Connection,
    app: &str,
    team: Option<&str>,
) -> StoreResult<()> {
    let team_id = match team {
        Some(team) => Some(
            sqlx::query_scalar::<_, i64>("SELECT id FROM teams WHERE name = $1")
                .bind(team)
                .fetch_optional(&mut *conn)
                .await
                .map_err(backend)?
                .ok_or_else(|| not_found("team", team))?,
        ),
        None => None,
    };
    set_column(conn, app, "maintainer_team_id", team_id).await
}

/// Sets one column (ours, never input) of an application's row.
async fn set_column<T>(conn: &mut Connection, app: &str, column: &str, value: T) -> StoreResult<()>
where
    T: Send + for<'q> sqlx::Encode<'q, Db> + sqlx::Type<Db>,
{
    let sql = format!("UPDATE apps SET {column} = $1 WHERE name = $2");
    let changed = sqlx::query(&sql)
        .bind(value)
        .bind(app)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    if changed.rows_affected() == 0 {
        return Err(not_found("application", app));
    }
    Ok(())
}

/// The database the store's connection speaks to.
type Db = <Connection as sqlx::Connection>::Database;
