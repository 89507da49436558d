//! Sealing the audit head of a trail written before heads were sealed (SQLite databases
//! older than migration 0011; PostgreSQL databases always had the seal).

use ferry_store::StoreResult;

use crate::audit::{head, write_head};
use crate::Connection;

/// Seals the head of a trail written before heads were sealed, as it is: called once, in
/// the transaction that follows the migration adding the seal. Later, a head without its
/// seal is never sealed again: it is a rewritten head.
pub(crate) async fn seal_unsealed_head(conn: &mut Connection, key: &[u8; 32]) -> StoreResult<()> {
    if let Some(recorded) = head(conn).await?.filter(|r| r.seal.is_none()) {
        write_head(conn, key, recorded.head).await?;
    }
    Ok(())
}
