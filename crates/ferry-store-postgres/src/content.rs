//! Release content held against garbage collection across every server: a session-level
//! advisory lock ([`CONTENT_LOCK`]), shared while releases are created and exclusive while
//! garbage collection runs, on a connection the hold keeps until it is dropped.

use std::time::Duration;

use ferry_store::{ContentHold, StoreResult};
use sqlx::pool::PoolConnection;
use sqlx::{Connection, Postgres};

use crate::backend;

/// The advisory lock content holds take: "ferrygc" as a number.
const CONTENT_LOCK: i64 = 0x0066_6572_7279_6763;

/// A held lock and the connection holding it.
pub(crate) struct Held {
    conn: Option<PoolConnection<Postgres>>,
}

/// Takes the lock on `conn`, waiting for the holds that exclude it. Safe to cancel: the
/// connection belongs to the hold from the start, so a wait given up (a request that went
/// away) closes it rather than handing a connection that may hold the lock to the pool.
pub(crate) async fn hold(conn: PoolConnection<Postgres>, hold: ContentHold) -> StoreResult<Held> {
    let try_take = match hold {
        ContentHold::Shared => "SELECT pg_try_advisory_lock_shared($1)",
        ContentHold::Exclusive => "SELECT pg_try_advisory_lock($1)",
    };
    let mut held = Held { conn: Some(conn) };
    let conn = held.conn.as_mut().expect("the hold has its connection");
    // Tried rather than waited for in the database: a waiting backend would not notice a
    // closed connection until it got the lock.
    let mut pause = Duration::from_millis(10);
    loop {
        let taken: bool = sqlx::query_scalar(try_take)
            .bind(CONTENT_LOCK)
            .fetch_one(&mut **conn)
            .await
            .map_err(backend)?;
        if taken {
            return Ok(held);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // Closing the session releases its advisory locks, whatever they are: the
        // connection is not handed to anyone else with the lock still held.
        let raw = conn.detach();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let _ = raw.close().await;
                });
            }
            Err(_) => drop(raw),
        }
    }
}
