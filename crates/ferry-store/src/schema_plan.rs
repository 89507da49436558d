//! What opening a database with this build would do to its schema: the changes (migrations)
//! it would apply, or that the database was written by a newer build, which this one must
//! not open. `ferry server --check-upgrade` shows it; both backends refuse a newer database
//! before changing anything.

/// One schema change this build knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaChange {
    pub version: i64,
    /// What it does, from the comment that opens its SQL.
    pub what: String,
}

/// A database's schema against what this build knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaPlan {
    /// How many of this build's changes the database has.
    pub applied: usize,
    /// This build's changes it lacks, in the order they would be applied.
    pub pending: Vec<SchemaChange>,
    /// Changes the database has that this build does not know: a newer build wrote it.
    pub unknown: Vec<i64>,
}

impl SchemaPlan {
    /// Compares the changes this build `knows` with those the database has `applied`.
    pub fn of(knows: Vec<SchemaChange>, applied: &[i64]) -> SchemaPlan {
        let unknown = applied
            .iter()
            .copied()
            .filter(|version| !knows.iter().any(|change| change.version == *version))
            .collect();
        let (had, pending): (Vec<_>, Vec<_>) = knows
            .into_iter()
            .partition(|change| applied.contains(&change.version));
        SchemaPlan {
            applied: had.len(),
            pending,
            unknown,
        }
    }

    /// The changes opening the database applies when an older build made it (none for a
    /// new database, which gets them all: that is no upgrade).
    pub fn upgrade(self) -> Vec<SchemaChange> {
        match self.applied {
            0 => Vec::new(),
            _ => self.pending,
        }
    }

    /// Why this build must not open the database, if a newer one wrote it.
    pub fn refusal(&self, database: &str) -> Option<String> {
        let newest = self.unknown.iter().max()?;
        Some(format!(
            "{database} was written by a newer ferry (schema change {newest}, which this ferry does not know): run that version or a newer one, or restore a backup made before the upgrade"
        ))
    }
}

/// What a migration's SQL says it does: its opening comment lines, joined.
pub fn what_sql_does(sql: &str) -> String {
    sql.lines()
        .map_while(|line| line.trim().strip_prefix("--"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(version: i64) -> SchemaChange {
        SchemaChange {
            version,
            what: format!("change {version}"),
        }
    }

    #[test]
    fn a_plan_lists_what_is_missing_and_what_is_newer() {
        let knows = || vec![change(1), change(2), change(3)];
        for (applied, pending, unknown, refused) in [
            (&[][..], &[1, 2, 3][..], &[][..], false),
            (&[1, 2], &[3], &[], false),
            (&[1, 2, 3], &[], &[], false),
            (&[1, 2, 3, 4], &[], &[4], true),
        ] {
            let plan = SchemaPlan::of(knows(), applied);
            let versions: Vec<i64> = plan.pending.iter().map(|c| c.version).collect();
            assert_eq!(versions, pending, "{applied:?}");
            assert_eq!(plan.unknown, unknown, "{applied:?}");
            assert_eq!(plan.refusal("db").is_some(), refused, "{applied:?}");
        }
    }

    #[test]
    fn a_migration_says_what_it_does_in_its_opening_comment() {
        let sql =
            "-- What each target's agent said.\n-- NULL until it did.\nALTER TABLE t;\n-- not this";
        assert_eq!(
            what_sql_does(sql),
            "What each target's agent said. NULL until it did."
        );
        assert_eq!(what_sql_does("CREATE TABLE t;"), "");
    }
}
