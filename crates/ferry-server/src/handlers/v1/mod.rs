//! `/api/v1`: one file per resource.

pub mod apps;
pub mod audit;
pub mod blobs;
pub mod channels;
pub mod deployments;
pub mod environments;
pub mod incidents;
pub mod maintenance;
pub mod me;
pub mod policy;
pub mod releases;
pub mod roles;
pub mod support;
pub mod targets;
pub mod teams;
pub mod users;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch as RFC 3339 in UTC.
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            super::rfc3339(1_800_000_000_123),
            "2027-01-15T08:00:00.123Z"
        );
    }
}
