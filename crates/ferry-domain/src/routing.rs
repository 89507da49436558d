//! Sending an incident to the right team (the seed: "depending on the type of problem we
//! should send this issue to the right person").
//!
//! An incident may carry a category (`database`, `payments`, ...). A routing rule sends a
//! category to a team whatever the application: the database team takes every database
//! problem. Without a matching rule the application's maintenance team takes it, and an
//! application without one is maintained by its owning team (docs/concepts.md, "Production support"). Inside the
//! chosen team, the rotation says who is on call (see `crate::rotation`).

use crate::name::{validate_name, NameKind};

/// Sends every incident of one category to one team.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingRule {
    /// The category, as [`check_category`] accepts it.
    pub category: String,
    /// The team that takes those incidents.
    pub team: String,
}

/// A category that is not written like a name. Nothing changes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid category {value:?}: use 1 to 63 characters from a-z, 0-9 and '-', starting with \
     a letter or digit, like \"database\" or \"payments\""
)]
pub struct BadCategory {
    /// The category as given.
    pub value: String,
}

/// Checks an incident or routing-rule category: written like a name,
/// `[a-z0-9][a-z0-9-]{0,62}`.
pub fn check_category(c: &str) -> Result<(), BadCategory> {
    // Same pattern as team names; the kind only changes validate_name's message, which is
    // replaced by one about categories.
    validate_name(NameKind::Team, c).map_err(|_| BadCategory {
        value: c.to_owned(),
    })
}

/// The team that maintains an application: its maintenance team (`maintainer`) if it has
/// one, else its owning team (`owner`). Backlog items and backport obligations are its work,
/// wherever a category rule sent the incident itself.
pub fn maintaining_team<'a>(owner: &'a str, maintainer: Option<&'a str>) -> &'a str {
    maintainer.unwrap_or(owner)
}

/// The team an incident of `category` against an application goes to: the first rule whose
/// category equals the incident's (ignoring ASCII case), else the application's maintenance
/// team (`maintainer`) if it has one, else its owning team (`owner`).
pub fn route<'a>(
    category: Option<&str>,
    owner: &'a str,
    maintainer: Option<&'a str>,
    rules: &'a [RoutingRule],
) -> &'a str {
    let by_rule = category.and_then(|category| {
        rules
            .iter()
            .find(|rule| rule.category.eq_ignore_ascii_case(category))
    });
    match (by_rule, maintainer) {
        (Some(rule), _) => &rule.team,
        (None, Some(maintainer)) => maintainer,
        (None, None) => owner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(pairs: &[(&str, &str)]) -> Vec<RoutingRule> {
        pairs
            .iter()
            .map(|(category, team)| RoutingRule {
                category: category.to_string(),
                team: team.to_string(),
            })
            .collect()
    }

    #[test]
    fn the_maintaining_team_is_the_maintainer_else_the_owner() {
        // (owner, maintainer, maintaining team)
        let cases = [("shop", None, "shop"), ("shop", Some("care"), "care")];
        for (owner, maintainer, expected) in cases {
            assert_eq!(
                maintaining_team(owner, maintainer),
                expected,
                "{maintainer:?}"
            );
        }
    }

    #[test]
    fn routes() {
        let table = rules(&[
            ("database", "dba"),
            ("payments", "billing"),
            ("database", "second-dba"),
        ]);
        /// (category, maintainer, rules, team)
        type Row<'a> = (Option<&'a str>, Option<&'a str>, &'a [RoutingRule], &'a str);
        let cases: [Row; 16] = [
            // No category: the maintenance team, else the owner.
            (None, None, &table, "shop-team"),
            (None, Some("ops"), &table, "ops"),
            // A category with a rule: the rule's team, even over a maintenance team.
            (Some("database"), None, &table, "dba"),
            (Some("database"), Some("ops"), &table, "dba"),
            (Some("payments"), Some("ops"), &table, "billing"),
            // Case does not matter.
            (Some("Database"), Some("ops"), &table, "dba"),
            (Some("PAYMENTS"), None, &table, "billing"),
            // The first matching rule wins.
            (Some("database"), None, &table[2..], "second-dba"),
            // A category without a rule: as if there were none.
            (Some("network"), Some("ops"), &table, "ops"),
            (Some("network"), None, &table, "shop-team"),
            (Some(""), None, &table, "shop-team"),
            // No prefix or substring matches.
            (Some("data"), None, &table, "shop-team"),
            (Some("databases"), Some("ops"), &table, "ops"),
            (Some(" database"), None, &table, "shop-team"),
            // No rules at all.
            (Some("database"), Some("ops"), &[], "ops"),
            (Some("database"), None, &[], "shop-team"),
        ];
        for (category, maintainer, rules, team) in cases {
            assert_eq!(
                route(category, "shop-team", maintainer, rules),
                team,
                "{category:?} maintained by {maintainer:?}"
            );
        }
    }

    #[test]
    fn categories() {
        let cases = [
            ("database", true),
            ("a", true),
            ("0", true),
            ("payments-eu", true),
            ("p2p", true),
            (&*"a".repeat(63), true),
            (&*"a".repeat(64), false),
            ("", false),
            ("-database", false),
            ("Database", false),
            ("data base", false),
            ("data_base", false),
            ("data.base", false),
            ("données", false),
            ("database\n", false),
        ];
        for (category, valid) in cases {
            assert_eq!(check_category(category).is_ok(), valid, "{category:?}");
        }
    }

    #[test]
    fn category_refusal_says_how_to_write_one() {
        assert_eq!(
            check_category("Data Base").unwrap_err().to_string(),
            "invalid category \"Data Base\": use 1 to 63 characters from a-z, 0-9 and '-', \
             starting with a letter or digit, like \"database\" or \"payments\""
        );
    }
}
