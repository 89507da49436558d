//! The statements SQLite says its own way; the rest of the queries are shared with the
//! PostgreSQL store (`crates/ferry-store-sql`).

use ferry_store::StoreResult;

use crate::{backend, Connection};

/// Rows per multi-row statement, well under SQLite's limit of bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

/// Counts a reference to each of a new release's blobs: a release of ten thousand files is
/// a few dozen statements. A blob the tree holds twice counts twice.
pub(crate) async fn count_blob_refs(
    conn: &mut Connection,
    blobs: &[(String, u64)],
) -> StoreResult<()> {
    for group in blobs.chunks(ROWS_PER_STATEMENT) {
        let rows = vec!["(?, ?, 1)"; group.len()].join(", ");
        let sql = format!(
            "INSERT INTO blob_refs (hash, size, refs) VALUES {rows}
             ON CONFLICT (hash) DO UPDATE SET refs = refs + 1"
        );
        let mut query = sqlx::query(&sql);
        for (hash, size) in group {
            query = query.bind(hash).bind(*size as i64);
        }
        query.execute(&mut *conn).await.map_err(backend)?;
    }
    Ok(())
}

/// Drops a deleted release's references: references that drop to none go.
pub(crate) async fn drop_blob_refs(conn: &mut Connection, blobs: &[String]) -> StoreResult<()> {
    for hash in blobs {
        let refs: Option<i64> = sqlx::query_scalar("SELECT refs FROM blob_refs WHERE hash = ?")
            .bind(hash)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
        let sql = match refs {
            Some(refs) if refs > 1 => "UPDATE blob_refs SET refs = refs - 1 WHERE hash = ?",
            _ => "DELETE FROM blob_refs WHERE hash = ?",
        };
        sqlx::query(sql)
            .bind(hash)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

/// SQLite has no row locks: a claim runs in a write transaction, which no other writer
/// shares.
pub(crate) const SKIP_LOCKED_ROWS: &str = "";
