//! `ferry audit` and `ferry audit verify`.

use ferry_api::{AuditEvent, AuditVerification};
use std::time::Duration;

use ferry_domain::duration::format_duration;
use ferry_domain::freeze::format_utc;
use ferry_domain::name::NameKind;
use serde_json::Value;

use super::check_name;
use crate::cli::{AuditArgs, AuditCommand};
use crate::client::Client;
use crate::error::{CliError, CliResult, Failure};
use crate::output::{print_table, Output};

pub async fn run(client: &Client, output: Output, args: AuditArgs) -> CliResult {
    match args.command {
        Some(AuditCommand::Verify) => verify(client, output).await,
        None => list(client, output, args).await,
    }
}

async fn list(client: &Client, output: Output, args: AuditArgs) -> CliResult {
    if let Some(app) = &args.app {
        check_name(NameKind::App, app)?;
    }
    let limit = args.limit.map(|n| n.to_string());
    let filters = [
        ("app", args.app.as_deref()),
        ("actor", args.actor.as_deref()),
        ("action", args.action.as_deref()),
        ("since", args.since.as_deref()),
        ("until", args.until.as_deref()),
        ("limit", limit.as_deref()),
    ];
    let given: Vec<(&str, &str)> = filters
        .iter()
        .filter_map(|(name, value)| value.map(|value| (*name, value)))
        .collect();
    let path = if given.is_empty() {
        "/api/v1/audit".to_owned()
    } else {
        let query = serde_urlencoded::to_string(&given)
            .map_err(|e| CliError::usage(format!("the filters: {e}")))?;
        format!("/api/v1/audit?{query}")
    };
    let events: Vec<AuditEvent> = client.get(&path).await?;
    output.print(&events, |events| {
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    e.at.clone(),
                    e.actor.clone(),
                    e.action.clone(),
                    e.subject.clone(),
                    describe_details(&e.details),
                ]
            })
            .collect();
        print_table(
            &["SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT", "DETAILS"],
            &rows,
        );
    });
    Ok(())
}

/// An event's details for people: `key=value` pairs, nested keys joined with dots, lists
/// with commas (an object in a list as its values joined with colons, the field the list is
/// named after first: `teams=shop:lead`), a
/// `…_ms` field as a UTC time or a duration without its suffix; what is unset (null, false,
/// empty) is left out.
fn describe_details(details: &Value) -> String {
    let mut pairs = Vec::new();
    flatten("", details, &mut pairs);
    pairs.join(" ")
}

fn flatten(key: &str, value: &Value, pairs: &mut Vec<String>) {
    if let (Some(name), Some(ms)) = (key.strip_suffix("_ms"), value.as_i64()) {
        pairs.push(format!("{name}={}", in_words(ms)));
        return;
    }
    let plain = match value {
        Value::Null | Value::Bool(false) => return,
        Value::Bool(true) => "yes".to_owned(),
        Value::Number(number) => number.to_string(),
        Value::String(text) if text.is_empty() => return,
        Value::String(text) if text.contains(char::is_whitespace) => format!("{text:?}"),
        Value::String(text) => text.clone(),
        Value::Array(items) if items.is_empty() => return,
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => text.clone(),
                // The field the list is named after first: `teams` → `team`.
                Value::Object(fields) => fields
                    .iter()
                    .filter(|(name, _)| Some(name.as_str()) == key.strip_suffix('s'))
                    .chain(
                        fields
                            .iter()
                            .filter(|(name, _)| Some(name.as_str()) != key.strip_suffix('s')),
                    )
                    .map(|(_, v)| v)
                    .filter(|v| !v.is_null())
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(":"),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(fields) => {
            for (name, inner) in fields {
                let nested = match key {
                    "" => name.clone(),
                    _ => format!("{key}.{name}"),
                };
                flatten(&nested, inner, pairs);
            }
            return;
        }
    };
    pairs.push(match key {
        "" => plain,
        _ => format!("{key}={plain}"),
    });
}

/// Milliseconds as people read them: a time since 2001 as a UTC time, anything smaller as
/// a duration.
fn in_words(ms: i64) -> String {
    const YEAR_2001_MS: i64 = 978_307_200_000;
    match u64::try_from(ms) {
        Ok(_) if ms >= YEAR_2001_MS => format_utc(ms),
        Ok(ms) => format_duration(Duration::from_millis(ms)),
        Err(_) => ms.to_string(),
    }
}

async fn verify(client: &Client, output: Output) -> CliResult {
    let verification: AuditVerification = client.get("/api/v1/audit/verify").await?;
    output.print(&verification, |v| {
        if v.ok {
            println!("audit trail intact: {} events verified", v.events);
        }
    });
    if let Some(bad) = &verification.first_bad {
        return Err(CliError::after_report(
            Failure::Failed,
            format!(
                "the audit trail is broken at event {}: {}. If the server runs with this trail's own key, restore the database from a backup and find out who changed it",
                bad.seq, bad.reason
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn details_read_as_key_value_pairs() {
        for (details, expected) in [
            (json!({}), ""),
            (
                json!({"allow_downgrade": false, "env": "dev", "reason": null, "strategy": "rolling"}),
                "env=dev strategy=rolling",
            ),
            (
                json!({"reason": "release night", "break_glass": true}),
                "break_glass=yes reason=\"release night\"",
            ),
            (
                json!({"targets": ["prd-1", "prd-2"], "skipped": [], "keep": 3}),
                "keep=3 targets=prd-1,prd-2",
            ),
            (
                json!({"source": {"commit": "abc123", "repo": "git@example:shop"}}),
                "source.commit=abc123 source.repo=git@example:shop",
            ),
            (json!("plain"), "plain"),
            (
                json!({"teams": [{"role": null, "team": "shop"}, {"role": "lead", "team": "ops"}]}),
                "teams=shop,ops:lead",
            ),
            (
                json!({"until_ms": 1_796_433_420_000_i64, "shift_ms": 604_800_000, "escalate_after_ms": 900_000}),
                "escalate_after=15m shift=7d until=2026-12-05 01:17 UTC",
            ),
        ] {
            assert_eq!(describe_details(&details), expected, "{details}");
        }
    }
}
