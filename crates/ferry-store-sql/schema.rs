//! The schema changes this build of a backend knows: its migrations (`crate::MIGRATOR`),
//! each with what its SQL says it does.

use ferry_store::{what_sql_does, SchemaChange};

pub(crate) fn known_changes() -> Vec<SchemaChange> {
    crate::MIGRATOR
        .iter()
        .map(|m| SchemaChange {
            version: m.version,
            what: what_sql_does(&m.sql),
        })
        .collect()
}
