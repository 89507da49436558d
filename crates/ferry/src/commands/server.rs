//! `ferry server`.

use std::io::IsTerminal;
use std::time::Duration;

use ferry_server::{ServerConfig, TlsOptions};

use crate::cli::ServerArgs;
use crate::client::Client;
use crate::error::{CliError, CliResult, Failure};
use crate::output::Output;

pub async fn run(args: ServerArgs, output: Output) -> CliResult {
    if args.check_upgrade {
        return check_upgrade(&args, output).await;
    }
    check_settings(&args)?;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                // PostgreSQL's notices (a migration table that exists already) are noise.
                .unwrap_or_else(|_| "info,sqlx::postgres::notice=warn".into()),
        )
        .init();
    let database = ferry_server::Database::from_flag(args.database.as_deref(), &args.data)
        .map_err(CliError::refused)?;
    let config = ServerConfig {
        database,
        data_dir: args.data,
        listen: args.listen,
        maintenance_every: args.maintenance_every,
        gc_grace: args.gc_grace,
        deploy_timeout: args.deploy_timeout,
        deployment_deadline: args.deployment_deadline,
        heartbeat_every: args.heartbeat_every,
        header_timeout: args.header_timeout,
        clock_offset_file: args.clock_offset_file.clone(),
        audit_key_file: args.audit_key.clone(),
        secret_key_file: args.secret_key.clone(),
        blobs: args.blobs.clone(),
        tls: args.tls.then_some(TlsOptions {
            names: args.tls_names,
        }),
    };
    ferry_server::run(config)
        .await
        .map_err(|e| CliError::failed(format!("{e:#}")))
}

/// `ferry server --check-upgrade`: what this version would do to the database it would
/// start on, without starting or changing anything.
async fn check_upgrade(args: &ServerArgs, output: Output) -> CliResult {
    let database = ferry_server::Database::from_flag(args.database.as_deref(), &args.data)
        .map_err(CliError::refused)?;
    let plan = database.schema_plan().await?;
    let described = database.describe();
    let refusal = plan.refusal(&described);
    let report = serde_json::json!({
        "ferry": crate::cli::VERSION,
        "database": described,
        "applied": plan.applied,
        "pending": plan.pending.iter().map(|c| serde_json::json!({ "version": c.version, "what": c.what })).collect::<Vec<_>>(),
        "newer": plan.unknown,
        "agent_protocols": [ferry_api::OLDEST_AGENT_PROTOCOL, ferry_api::AGENT_PROTOCOL],
        "can_start": refusal.is_none(),
    });
    output.print(&report, |_| {
        println!("ferry {} on {described}:", crate::cli::VERSION);
        if let Some(refusal) = &refusal {
            println!("  cannot start: {refusal}");
            return;
        }
        match plan.pending.len() {
            n if plan.applied == 0 => println!("  a new database: starting creates it ({n} schema changes)"),
            0 => println!("  the schema is this version's ({} changes): nothing to change", plan.applied),
            n => {
                println!(
                    "  {} of {} schema changes applied; starting applies {n} more, each in a transaction of its own:",
                    plan.applied,
                    plan.applied + n
                );
                for change in &plan.pending {
                    println!("    {:>4}  {}", change.version, change.what);
                }
                println!("  back up first: `ferry server backup` (SQLite) or pg_dump (PostgreSQL)");
            }
        }
        println!(
            "  agents: serves agent protocols {} to {}; agents of older versions that say no protocol speak 1",
            ferry_api::OLDEST_AGENT_PROTOCOL,
            ferry_api::AGENT_PROTOCOL
        );
    });
    match refusal {
        None => Ok(()),
        Some(refusal) => Err(CliError::after_report(Failure::Failed, refusal)),
    }
}

/// What a server checks of its settings before it starts (and `ferry server check-config`
/// of a config file's).
pub fn check_settings(args: &ServerArgs) -> CliResult {
    ferry_server::Database::from_flag(args.database.as_deref(), &args.data)
        .map_err(CliError::refused)?;
    check_listen(args)?;
    check_limits(args)
}

/// Refuses (exit 3) to serve plain HTTP beyond this machine unless told a proxy terminates
/// TLS: API tokens and agent credentials would cross the network in the clear.
fn check_listen(args: &ServerArgs) -> CliResult {
    if args.tls || args.insecure || ferry_server::is_loopback(args.listen.ip()) {
        return Ok(());
    }
    Err(CliError::refused(format!(
        "refusing to serve plain HTTP on {}: use --tls, or --insecure if a proxy in front terminates TLS",
        args.listen
    )))
}

/// Refuses (exit 2, the command line is wrong) limits that would stop every deployment at
/// once, or make agents ask more often than a server should answer.
fn check_limits(args: &ServerArgs) -> CliResult {
    if args.deployment_deadline.is_zero() {
        return Err(CliError::usage(
            "--deployment-deadline must be more than zero, like 30m or 1h",
        ));
    }
    within(
        "--header-timeout",
        args.header_timeout,
        (Duration::from_secs(1), Duration::from_secs(600)),
        "clients get that long to send a request's headers",
    )?;
    within(
        "--heartbeat-every",
        args.heartbeat_every,
        (Duration::from_millis(500), Duration::from_secs(60)),
        "agents send a heartbeat that often, and a target that missed three is offline",
    )
}

/// Refuses (exit 2) a duration `flag` outside `(least, most)`, saying `why` it matters.
fn within(
    flag: &str,
    value: Duration,
    (least, most): (Duration, Duration),
    why: &str,
) -> CliResult {
    if (least..=most).contains(&value) {
        return Ok(());
    }
    let show = ferry_domain::duration::format_duration;
    Err(CliError::usage(format!(
        "{flag} must be between {} and {}, not {}: {why}",
        show(least),
        show(most),
        show(value)
    )))
}

/// `ferry server migrate`: moves a stopped server's state to PostgreSQL.
pub async fn migrate(
    output: Output,
    from: &std::path::Path,
    to: &str,
    audit_key: Option<&std::path::Path>,
    blobs: Option<&ferry_server::BlobLocation>,
) -> CliResult {
    let moved = ferry_server::migrate(from, audit_key, to, blobs)
        .await
        .map_err(|e| match e {
            ferry_server::MigrateError::Refused(why) => CliError::refused(why),
            ferry_server::MigrateError::Failed(e) => CliError::failed(format!("{e:#}")),
        })?;
    output.print(&moved, |m| {
        // In the order the move did them: content first.
        if let (Some((n, bytes)), Some(to)) = (m.blobs_copied, blobs) {
            println!("copied {n} blobs ({bytes} bytes) to {to} (those already there are not copied again)");
        }
        let rows: u64 = m.rows.values().sum();
        println!(
            "moved {rows} rows in {} tables; the audit trail's {} events verify in PostgreSQL",
            m.rows.len(),
            m.audit_events
        );
        let content = match blobs {
            Some(to) => format!("--blobs {to}"),
            None => format!("release content in {}", from.join("blobs").display()),
        };
        println!(
            "{} is set aside as ferry.db.moved-to-postgresql; start the servers with --database set to that URL (or FERRY_DATABASE), the audit key {} and {content}",
            from.join("ferry.db").display(),
            audit_key.map_or_else(|| from.join("audit-key"), |k| k.to_owned()).display(),
        );
    });
    Ok(())
}

/// `ferry server fsck`: asks the running server to check its content.
pub async fn fsck(client: &Client, output: Output) -> CliResult {
    let report: serde_json::Value = client
        .post("/api/v1/admin/fsck", &serde_json::json!({}))
        .await?;
    output.print(&report, |r| {
        if r["ok"] == true {
            println!("all {} blobs intact", r["blobs_checked"]);
            return;
        }
        println!("{} blobs re-hashed", r["blobs_checked"]);
        for hash in r["corrupt"].as_array().into_iter().flatten() {
            println!(
                "corrupt (quarantined): {}",
                hash.as_str().unwrap_or_default()
            );
        }
        for hash in r["missing"].as_array().into_iter().flatten() {
            println!("missing: {}", hash.as_str().unwrap_or_default());
        }
    });
    if report["ok"] != true {
        return Err(CliError::after_report(
                    Failure::Failed,
                    "the content store has corrupt or missing blobs: create the affected releases again from their source to restore them",
                ));
    }
    Ok(())
}

/// `ferry server backup`: the state of a server on SQLite and its release content, in one
/// file.
pub async fn backup(
    output: Output,
    data: &std::path::Path,
    out: &std::path::Path,
    audit_key: Option<&std::path::Path>,
    blobs: Option<&ferry_server::BlobLocation>,
) -> CliResult {
    let blobs_dir = match blobs {
        None => data.join("blobs"),
        Some(ferry_server::BlobLocation::Folder(dir)) => dir.clone(),
        Some(location) => {
            return Err(CliError::refused(format!(
                "release content in {location} is not put in a backup: it is kept by the bucket (turn on its versioning or replication); back up the database with pg_dump if the server runs on PostgreSQL"
            )))
        }
    };
    let backup = ferry_server::backup(data, audit_key, &blobs_dir, out)
        .await
        .map_err(|e| CliError::failed(format!("{e:#}")))?;
    output.print(&backup, |b| {
        println!(
            "wrote {}: the database ({} audit events, verified) and {} blobs of release content ({} bytes); keep the audit key apart from it",
            out.display(),
            b.audit_events,
            b.blobs,
            b.blob_bytes
        );
    });
    Ok(())
}

/// `ferry server restore`: a backup brought back into a new data directory.
pub async fn restore(
    output: Output,
    file: &std::path::Path,
    data: &std::path::Path,
    (audit_key, secret_key): (Option<&std::path::Path>, Option<&std::path::Path>),
) -> CliResult {
    let restored = ferry_server::restore(file, data, audit_key, secret_key)
        .await
        .map_err(|e| CliError::failed(format!("{e:#}")))?;
    let flag = |name: &str, key: Option<&std::path::Path>| {
        key.map_or_else(String::new, |key| format!(" --{name} {}", key.display()))
    };
    output.print(&restored, |r| {
        println!(
            "restored {} audit events (verified) and {} blobs ({} bytes) into {}; start it with `ferry server --data {}{}{}`",
            r.audit_events,
            r.blobs,
            r.blob_bytes,
            data.display(),
            data.display(),
            flag("audit-key", audit_key),
            flag("secret-key", secret_key)
        );
    });
    Ok(())
}

/// `ferry server rotate-secret-key`: a new secret key, every secret sealed again under it.
pub async fn rotate_secret_key(
    output: Output,
    data: &std::path::Path,
    database: Option<&str>,
    (audit_key, secret_key): (Option<&std::path::Path>, Option<&std::path::Path>),
) -> CliResult {
    let database = ferry_server::Database::from_flag(database, data).map_err(CliError::refused)?;
    let rotation = ferry_server::rotate_secret_key(data, &database, audit_key, secret_key)
        .await
        .map_err(|e| CliError::failed(format!("{e:#}")))?;
    let report = serde_json::json!({
        "revisions": rotation.revisions,
        "previous_key_id": rotation.previous_key_id,
        "key_id": rotation.key_id,
        "key_file": rotation.key_file.display().to_string(),
        "retired": rotation.retired.display().to_string(),
    });
    output.print(&report, |_| {
        println!(
            "secret key {} replaced by {}: the secrets of {} configuration revision(s) are sealed with it, in {}",
            rotation.previous_key_id,
            rotation.key_id,
            rotation.revisions,
            rotation.key_file.display()
        );
        println!(
            "The old key is kept as {} for server backups made before now; remove it when none needs it. Servers sharing the database need the new key file before they start.",
            rotation.retired.display()
        );
    });
    Ok(())
}
