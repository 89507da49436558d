//! Messages every server sharing the database hears: PostgreSQL's `NOTIFY` on one channel,
//! each message numbered from one sequence, so the numbers compare across servers and grow
//! across restarts. A message is a hint (wake these waiters), never a fact the servers rely
//! on: a server that missed some (its listening connection was lost) is told so and looks
//! again.

use sqlx::postgres::PgListener;
use sqlx::PgPool;

use ferry_store::StoreResult;

use crate::backend;

/// The channel the servers talk on.
const CHANNEL: &str = "ferry_wakeups";

/// The longest message: PostgreSQL refuses payloads of 8,000 bytes and more, and the
/// number goes in front.
pub const MAX_MESSAGE: usize = 7_900;

/// Sends to and listens on the servers' channel.
#[derive(Clone)]
pub struct Broadcast {
    pool: PgPool,
}

/// What a listener heard.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    /// A message and its number.
    Message { number: u64, text: String },
    /// The listening connection was lost and is back: messages up to `number` may have
    /// been missed.
    Missed { number: u64 },
}

impl Broadcast {
    pub(crate) fn new(pool: PgPool) -> Broadcast {
        Broadcast { pool }
    }

    /// Sends `text` (at most [`MAX_MESSAGE`] bytes) to every listening server, this one
    /// included, with the next number.
    pub async fn send(&self, text: &str) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, nextval('wakeup_generation')::text || ' ' || $2)")
            .bind(CHANNEL)
            .bind(text)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Raises the numbering to `at_least` (it never goes down) and returns the number of
    /// the last message sent, or `at_least` if that is higher.
    pub async fn raise_to(&self, at_least: u64) -> StoreResult<u64> {
        let at_least = i64::try_from(at_least).unwrap_or(i64::MAX);
        let number: i64 = sqlx::query_scalar(
            "SELECT setval('wakeup_generation',
                 greatest($1, (SELECT CASE WHEN is_called THEN last_value ELSE 0 END
                               FROM wakeup_generation)))",
        )
        .bind(at_least.max(1))
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(number as u64)
    }

    /// Starts listening; messages sent from now on are heard.
    pub async fn listen(&self) -> StoreResult<Listener> {
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(backend)?;
        listener.listen(CHANNEL).await.map_err(backend)?;
        Ok(Listener {
            listener,
            pool: self.pool.clone(),
        })
    }
}

async fn last_number(pool: &PgPool) -> StoreResult<u64> {
    let (last, called): (i64, bool) =
        sqlx::query_as("SELECT last_value, is_called FROM wakeup_generation")
            .fetch_one(pool)
            .await
            .map_err(backend)?;
    Ok(if called { last.max(0) as u64 } else { 0 })
}

/// A listening connection.
pub struct Listener {
    listener: PgListener,
    pool: PgPool,
}

impl Listener {
    /// The next thing heard. Waits while the database is unreachable (reconnecting), and
    /// fails only when the store is closed.
    pub async fn next(&mut self) -> StoreResult<Heard> {
        loop {
            match self.listener.try_recv().await {
                Ok(Some(notification)) => {
                    let (number, text) = notification
                        .payload()
                        .split_once(' ')
                        .unwrap_or((notification.payload(), ""));
                    // A message another program sent on the channel is not ours: skipped.
                    if let Ok(number) = number.parse() {
                        return Ok(Heard::Message {
                            number,
                            text: text.to_owned(),
                        });
                    }
                }
                Ok(None) => {
                    // Reconnected (or about to): whatever was sent meanwhile is lost.
                    if let Ok(number) = last_number(&self.pool).await {
                        return Ok(Heard::Missed { number });
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                Err(sqlx::Error::PoolClosed) => return Err(backend(sqlx::Error::PoolClosed)),
                Err(_) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
            }
        }
    }
}
