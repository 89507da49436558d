//! `ferry release`: create (uploading only what the server lacks), list, show, diff, export.

use std::path::PathBuf;

use ferry_api::{
    BlobHashes, CreateRelease, CreatedRelease, MissingBlobs, Release, ReleaseDiff, StoredBlobs,
};
use ferry_cas::hash::ContentHash;
use ferry_cas::ingest::{prepare, Limits};
use ferry_cas::manifest::Manifest;
use ferry_cas::scan::{scan_tree, BlobLocation, ScannedTree};
use ferry_cas::source::parse_source_spec;
use ferry_cas::upload::{read_batch, upload_batches, HASHES_PER_QUESTION, UPLOADS_IN_FLIGHT};
use ferry_cas::CasError;
use ferry_domain::name::NameKind;
use serde::Serialize;

use super::download::{download_tree, TreeKind};
use super::{check_name, check_version};
use crate::cli::ReleaseCommand;
use crate::client::Client;
use crate::error::{CliError, CliResult};
use crate::output::{human_bytes, print_table, progress, Output};

/// Bad input is refused (exit 3); a failing machine fails (exit 1).
pub(super) fn cas_error(error: CasError) -> CliError {
    if error.is_bad_input() {
        CliError::refused(error.to_string())
    } else {
        CliError::failed(error.to_string())
    }
}

/// Runs filesystem-heavy work off the async runtime.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CasError> + Send + 'static,
) -> CliResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| CliError::failed(format!("a worker thread failed: {e}")))?
        .map_err(cas_error)
}

/// What `release create` reports.
#[derive(Serialize)]
struct CreateReport {
    app: String,
    version: String,
    files: u64,
    bytes: u64,
    new_bytes: u64,
    digest: String,
    source: serde_json::Value,
    /// False when the version already existed with identical content.
    created: bool,
    /// Backlog items this release closed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    closed: Vec<i64>,
    /// Backport obligations this release fulfilled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    backports_done: Vec<i64>,
}

/// What a release says about other work: the release a hotfix fixes, its incident, and the
/// backlog items it closes.
#[derive(Default)]
struct Links {
    hotfix_of: Option<String>,
    incident: Option<i64>,
    closes: Vec<i64>,
}

pub async fn run(client: &Client, output: Output, command: ReleaseCommand) -> CliResult {
    match command {
        ReleaseCommand::Create {
            app,
            release,
            from,
            notes,
            allow_empty,
            hotfix_of,
            incident,
            closes,
            max_bytes,
            max_entries,
        } => {
            let limits = Limits {
                max_bytes,
                max_entries,
            };
            create(
                client,
                output,
                &app,
                &release,
                &from,
                notes,
                allow_empty,
                Links {
                    hotfix_of,
                    incident,
                    closes,
                },
                limits,
            )
            .await
        }
        ReleaseCommand::List { app } => list(client, output, &app).await,
        ReleaseCommand::Prune { app } => prune(client, output, &app).await,
        ReleaseCommand::Show { app, release } => show(client, output, &app, &release).await,
        ReleaseCommand::Diff { app, from, to } => diff(client, output, &app, &from, &to).await,
        ReleaseCommand::Export { app, release, dir } => {
            export(client, output, &app, &release, dir).await
        }
    }
}

/// The release, or `None` when the application has no such version.
async fn existing_release(client: &Client, app: &str, version: &str) -> CliResult<Option<Release>> {
    match client
        .get::<Release>(&format!("/api/v1/apps/{app}/releases/{version}"))
        .await
    {
        Ok(release) => Ok(Some(release)),
        Err(e) if e.code == "no_such_release" => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates a release from `from` with default limits (for `ferry demo`).
pub async fn create_from(
    client: &Client,
    output: Output,
    app: &str,
    version: &str,
    from: &str,
) -> CliResult {
    create(
        client,
        output,
        app,
        version,
        from,
        None,
        false,
        Links::default(),
        Limits::default(),
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn create(
    client: &Client,
    output: Output,
    app: &str,
    version: &str,
    from: &str,
    notes: Option<String>,
    allow_empty: bool,
    links: Links,
    limits: Limits,
) -> CliResult {
    check_name(NameKind::App, app)?;
    if let Some(base) = &links.hotfix_of {
        check_version(base)?;
    }
    check_version(version)?;
    let spec = parse_source_spec(from).map_err(cas_error)?;
    // Fails early on an unknown app, a missing permission or an unreachable server.
    let existing = existing_release(client, app, version).await?;
    let (tree, scanned) = blocking(move || {
        let tree = prepare(&spec, &limits)?;
        let scanned = scan_tree(&tree.root, &limits)?;
        Ok((tree, scanned))
    })
    .await?;
    if scanned.manifest.entries.is_empty() && !allow_empty {
        return Err(CliError::refused(format!(
            "{from} holds no files: check the source, or pass --allow-empty if an empty release is intended"
        )));
    }
    // A ferry.toml the agent would refuse would make a release that can never deploy.
    if let Some(config) = super::check::check_tree(&tree.root, from)? {
        super::check::check_files(&config, &scanned.manifest, &tree.root, from)?;
    }
    let digest = scanned.manifest.digest().to_hex();
    if let Some(existing) = existing {
        if existing.digest != digest {
            return Err(CliError::refused(format!(
                "release {app} {version} already exists with different content (digest {}): releases are immutable, create a new version",
                existing.digest
            )));
        }
        return report(output, existing, 0, false, Vec::new(), Vec::new());
    }
    let new_bytes = upload_missing(client, output, app, &scanned).await?;
    let request = CreateRelease {
        version: version.to_owned(),
        manifest: scanned.manifest,
        source: tree.source.clone(),
        notes,
        allow_empty,
        hotfix_of: links.hotfix_of,
        incident: links.incident,
        closes: links.closes,
    };
    let created: CreatedRelease = client
        .post(&format!("/api/v1/apps/{app}/releases"), &request)
        .await?;
    drop(tree);
    report(
        output,
        created.release,
        new_bytes,
        created.created,
        created.closed,
        created.backports_done,
    )
}

fn report(
    output: Output,
    release: Release,
    new_bytes: u64,
    created: bool,
    closed: Vec<i64>,
    backports_done: Vec<i64>,
) -> CliResult {
    let report = CreateReport {
        app: release.app,
        version: release.version,
        files: release.files,
        bytes: release.bytes,
        new_bytes,
        digest: release.digest,
        source: release.source,
        created,
        closed,
        backports_done,
    };
    output.print(&report, |r| {
        if r.created {
            println!(
                "created release {} {}: {} file{}, {}, {} new",
                r.app,
                r.version,
                r.files,
                if r.files == 1 { "" } else { "s" },
                human_bytes(r.bytes),
                human_bytes(r.new_bytes)
            );
        } else {
            println!("release {} {} already exists, identical", r.app, r.version);
        }
        for id in &r.closed {
            println!("closed backlog item {id}");
        }
        for id in &r.backports_done {
            println!("includes the hotfix of backport obligation {id}: done");
        }
    });
    Ok(())
}

/// Asks which blobs the server lacks and uploads only those, in batches. Returns the bytes
/// uploaded.
async fn upload_missing(
    client: &Client,
    output: Output,
    app: &str,
    scanned: &ScannedTree,
) -> CliResult<u64> {
    let blobs = scanned.manifest.blobs();
    let mut missing: Vec<ContentHash> = Vec::new();
    for group in blobs.chunks(HASHES_PER_QUESTION) {
        let question = BlobHashes {
            hashes: group.iter().map(|c| c.hash.to_hex()).collect(),
        };
        let answer: MissingBlobs = client
            .post(&format!("/api/v1/apps/{app}/blobs/missing"), &question)
            .await?;
        for hex in answer.missing {
            missing.push(
                ContentHash::from_hex(&hex).ok_or_else(|| {
                    CliError::failed(format!("the server named a bad hash {hex:?}"))
                })?,
            );
        }
    }
    let locations: Vec<(ContentHash, BlobLocation)> = missing
        .iter()
        .map(|hash| (*hash, scanned.locations[hash].clone()))
        .collect();
    let total: u64 = locations.iter().map(|(_, l)| l.len).sum();
    let bar = progress(output, total, "uploading");
    let path = format!("/api/v1/apps/{app}/blobs");
    // Two batches in flight: the next one is read while the last one is written.
    let mut in_flight = tokio::task::JoinSet::new();
    for batch_locations in upload_batches(locations) {
        if in_flight.len() >= UPLOADS_IN_FLIGHT {
            let size = in_flight
                .join_next()
                .await
                .expect("a batch is in flight")
                .map_err(|e| CliError::failed(format!("an upload task failed: {e}")))??;
            bar.inc(size);
        }
        let client = client.clone();
        let path = path.clone();
        in_flight.spawn(async move {
            let size: u64 = batch_locations.iter().map(|(_, l)| l.len).sum();
            let batch = blocking(move || read_batch(&batch_locations)).await?;
            let _: StoredBlobs = client.post_bytes(&path, batch).await?;
            Ok::<u64, CliError>(size)
        });
    }
    while let Some(done) = in_flight.join_next().await {
        let size = done.map_err(|e| CliError::failed(format!("an upload task failed: {e}")))??;
        bar.inc(size);
    }
    bar.finish_and_clear();
    Ok(total)
}

async fn list(client: &Client, output: Output, app: &str) -> CliResult {
    check_name(NameKind::App, app)?;
    let releases: Vec<Release> = client.get(&format!("/api/v1/apps/{app}/releases")).await?;
    output.print(&releases, |releases| {
        let rows: Vec<Vec<String>> = releases
            .iter()
            .map(|r| {
                vec![
                    r.version.clone(),
                    r.files.to_string(),
                    human_bytes(r.bytes),
                    r.digest[..12].to_owned(),
                    r.created_at.clone(),
                    r.created_by.clone(),
                ]
            })
            .collect();
        print_table(
            &["VERSION", "FILES", "SIZE", "DIGEST", "CREATED", "BY"],
            &rows,
        );
    });
    Ok(())
}

/// A recorded source for people: `git URL#REF (commit …)`, `directory PATH`, ….
pub(crate) fn describe_source(source: &serde_json::Value) -> String {
    serde_json::from_value::<ferry_cas::source::Source>(source.clone())
        .map(|s| s.describe())
        .unwrap_or_else(|_| source.to_string())
}

async fn show(client: &Client, output: Output, app: &str, version: &str) -> CliResult {
    check_name(NameKind::App, app)?;
    check_version(version)?;
    let release: Release = client
        .get(&format!("/api/v1/apps/{app}/releases/{version}"))
        .await?;
    output.print(&release, |r| {
        println!("release   {} {}", r.app, r.version);
        println!("files     {} ({})", r.files, human_bytes(r.bytes));
        println!("digest    {}", r.digest);
        println!("source    {}", describe_source(&r.source));
        println!("created   {} by {}", r.created_at, r.created_by);
        if let Some(base) = &r.hotfix_of {
            println!("hotfix of {base}");
        }
        if let Some(notes) = &r.notes {
            println!("notes     {notes}");
        }
    });
    Ok(())
}

async fn diff(client: &Client, output: Output, app: &str, from: &str, to: &str) -> CliResult {
    check_name(NameKind::App, app)?;
    check_version(from)?;
    check_version(to)?;
    let diff: ReleaseDiff = client
        .get(&format!("/api/v1/apps/{app}/releases/{from}/diff/{to}"))
        .await?;
    output.print(&diff, |d| {
        for p in &d.added {
            println!("+ {}  ({})", p.path, human_bytes(p.size));
        }
        for p in &d.removed {
            println!("- {}  ({})", p.path, human_bytes(p.size));
        }
        for p in &d.modified {
            println!(
                "~ {}  ({}: {} → {})",
                p.path,
                p.change,
                human_bytes(p.old_size),
                human_bytes(p.new_size)
            );
        }
        println!(
            "{} → {}: {} added, {} removed, {} modified",
            d.from,
            d.to,
            d.added.len(),
            d.removed.len(),
            d.modified.len()
        );
    });
    Ok(())
}

async fn export(
    client: &Client,
    output: Output,
    app: &str,
    version: &str,
    dir: PathBuf,
) -> CliResult {
    check_name(NameKind::App, app)?;
    check_version(version)?;
    let manifest: Manifest = client
        .get(&format!("/api/v1/apps/{app}/releases/{version}/manifest"))
        .await?;
    let (n_files, n_bytes) = (manifest.n_files(), manifest.n_bytes());
    let fetch = format!("/api/v1/apps/{app}/blobs/fetch");
    download_tree(client, output, manifest, &fetch, &dir, TreeKind::Release).await?;
    let report = serde_json::json!({ "app": app, "version": version, "dir": dir.display().to_string(), "files": n_files, "bytes": n_bytes });
    output.print(&report, |_| {
        println!(
            "exported {app} {version} to {} ({n_files} file{}, {})",
            dir.display(),
            if n_files == 1 { "" } else { "s" },
            human_bytes(n_bytes)
        );
    });
    Ok(())
}

async fn prune(client: &Client, output: Output, app: &str) -> CliResult {
    check_name(NameKind::App, app)?;
    let report: serde_json::Value = client
        .post(&format!("/api/v1/apps/{app}/prune"), &serde_json::json!({}))
        .await?;
    output.print(&report, |r| {
        let removed: Vec<&str> = r["removed"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        if removed.is_empty() {
            println!("nothing to prune: {app} keeps all its releases");
        } else {
            println!(
                "removed {} releases of {app} ({}); freed {} in {} blobs",
                removed.len(),
                removed.join(", "),
                human_bytes(r["bytes_freed"].as_u64().unwrap_or(0)),
                r["blobs_removed"]
            );
            if r["blobs_removed"] == 0 {
                println!(
                    "content only they used is freed once it is older than the server's --gc-grace (by its periodic pass)"
                );
            }
        }
        for kept in r["kept"].as_array().into_iter().flatten() {
            println!(
                "kept {}: {}",
                kept["version"].as_str().unwrap_or_default(),
                kept["reason"].as_str().unwrap_or_default()
            );
        }
    });
    Ok(())
}
