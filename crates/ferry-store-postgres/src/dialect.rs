//! The statements PostgreSQL says its own way; the rest of the queries are shared with the
//! SQLite store (`crates/ferry-store-sql`).

use ferry_store::StoreResult;

use crate::{backend, Connection};

/// Counts a reference to each of a new release's blobs, in one statement whatever the
/// number of files; a blob the tree holds twice counts twice.
pub(crate) async fn count_blob_refs(
    conn: &mut Connection,
    blobs: &[(String, u64)],
) -> StoreResult<()> {
    let (hashes, sizes): (Vec<&str>, Vec<i64>) = blobs
        .iter()
        .map(|(hash, size)| (hash.as_str(), *size as i64))
        .unzip();
    sqlx::query(
        "INSERT INTO blob_refs (hash, size, refs)
         SELECT hash, min(size), count(*) FROM unnest($1::text[], $2::bigint[]) AS new (hash, size)
         GROUP BY hash
         ON CONFLICT (hash) DO UPDATE SET refs = blob_refs.refs + excluded.refs",
    )
    .bind(&hashes)
    .bind(&sizes)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Drops a deleted release's references, set-based whatever the number of blobs:
/// references that drop to none go.
pub(crate) async fn drop_blob_refs(conn: &mut Connection, blobs: &[String]) -> StoreResult<()> {
    const DROPPED: &str =
        "SELECT hash, count(*) AS n FROM unnest($1::text[]) AS dropped (hash) GROUP BY hash";
    sqlx::query(&format!(
        "DELETE FROM blob_refs USING ({DROPPED}) AS d
         WHERE blob_refs.hash = d.hash AND blob_refs.refs <= d.n"
    ))
    .bind(blobs)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    sqlx::query(&format!(
        "UPDATE blob_refs SET refs = blob_refs.refs - d.n FROM ({DROPPED}) AS d
         WHERE blob_refs.hash = d.hash"
    ))
    .bind(blobs)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Locks the rows a claim selects, skipping those another server is claiming at this
/// moment, so two notifiers never claim one delivery and neither waits for the other.
pub(crate) const SKIP_LOCKED_ROWS: &str = "FOR UPDATE OF d SKIP LOCKED";
