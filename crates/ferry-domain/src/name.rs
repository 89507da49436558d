//! The patterns that names and versions must match.

use std::fmt;

/// What a name identifies, so a refusal can say "invalid team name".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    Team,
    User,
    App,
    Environment,
    Target,
    Role,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Team => "team",
            NameKind::User => "user",
            NameKind::App => "application",
            NameKind::Environment => "environment",
            NameKind::Target => "target",
            NameKind::Role => "role",
        })
    }
}

/// A name or version that does not match its pattern.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    #[error("invalid {kind} name {value:?}: use 1 to 63 characters from a-z, 0-9 and '-', starting with a letter or digit")]
    Name { kind: NameKind, value: String },
    #[error("invalid version {value:?}: use 1 to 64 characters from A-Z, a-z, 0-9 and '._+-', starting with a letter or digit")]
    Version { value: String },
}

/// Checks a team, user, application, environment, target or role name:
/// `[a-z0-9][a-z0-9-]{0,62}`.
pub fn validate_name(kind: NameKind, value: &str) -> Result<(), InvalidName> {
    let bytes = value.as_bytes();
    let first_ok = bytes
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if first_ok && rest_ok && bytes.len() <= 63 {
        Ok(())
    } else {
        Err(InvalidName::Name {
            kind,
            value: value.to_owned(),
        })
    }
}

/// Checks a release version: `[A-Za-z0-9][A-Za-z0-9._+-]{0,63}`.
pub fn validate_version(value: &str) -> Result<(), InvalidName> {
    let bytes = value.as_bytes();
    let first_ok = bytes.first().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'));
    if first_ok && rest_ok && bytes.len() <= 64 {
        Ok(())
    } else {
        Err(InvalidName::Version {
            value: value.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_name(value: &str, valid: bool) {
        assert_eq!(
            validate_name(NameKind::App, value).is_ok(),
            valid,
            "name {value:?}"
        );
    }

    fn check_version(value: &str, valid: bool) {
        assert_eq!(validate_version(value).is_ok(), valid, "version {value:?}");
    }

    #[test]
    fn names() {
        check_name("shop", true);
        check_name("a", true);
        check_name("0", true);
        check_name("customer-42", true);
        check_name("a-", true);
        check_name(&"a".repeat(63), true);
        check_name(&"a".repeat(64), false);
        check_name("", false);
        check_name("-shop", false);
        check_name("Shop", false);
        check_name("shop_1", false);
        check_name("shop.1", false);
        check_name("shop 1", false);
        check_name("../etc", false);
        check_name("ſhop", false);
        check_name("shop\n", false);
    }

    #[test]
    fn versions() {
        check_version("1.2.3", true);
        check_version("v1", true);
        check_version("1.2.3-rc.1+build_7", true);
        check_version("R", true);
        check_version(&"9".repeat(64), true);
        check_version(&"9".repeat(65), false);
        check_version("", false);
        check_version(".1", false);
        check_version("-1", false);
        check_version("1/2", false);
        check_version("1 2", false);
        check_version("..", false);
        check_version("1.0é", false);
    }

    #[test]
    fn refusal_names_the_kind_and_the_pattern() {
        let err = validate_name(NameKind::Team, "Bad Team").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid team name \"Bad Team\": use 1 to 63 characters from a-z, 0-9 and '-', starting with a letter or digit"
        );
    }
}
