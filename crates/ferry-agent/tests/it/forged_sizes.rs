//! Sizes a manifest declares come from the network: the agent compares them with what it
//! reads, and never allocates from them.

use ferry_agent::{DeployOutcome, StageReport};
use ferry_cas::manifest::{EntryKind, Manifest};

use crate::fixture::*;

/// The manifest with the size of `path` replaced by `size` (its content and hash as they
/// are): what a forged release looks like to the agent.
fn claiming(manifest: &Manifest, path: &str, size: u64) -> Manifest {
    let mut forged = manifest.clone();
    let entry = forged.entries.iter_mut().find(|e| e.path == path).unwrap();
    match &mut entry.kind {
        EntryKind::File { size: claimed, .. } => *claimed = size,
        other => panic!("{path} is {other:?}"),
    }
    forged
}

fn failure(outcome: DeployOutcome) -> String {
    match outcome {
        DeployOutcome::Failed { reason, .. } | DeployOutcome::RolledBack { reason, .. } => reason,
        DeployOutcome::Succeeded { report } => panic!("deployed: {report:?}"),
    }
}

/// Regression: the agent read `ferry.toml` into a buffer of the size the manifest declared
/// (`Vec::with_capacity`), so a release whose manifest claimed an enormous size aborted
/// every agent that staged it.
#[test]
fn a_ferry_toml_claiming_a_huge_size_is_refused_without_reading_it() {
    let target = Target::new();
    let honest = target.release(&[
        ferry_toml("[health]\ncommand = \"true\""),
        file("index.html", "1"),
    ]);
    for size in [1 << 62, u64::MAX, 1024 * 1024 + 1] {
        let forged = claiming(&honest, "ferry.toml", size);
        let (outcome, _) = target.deploy("1.0", &forged);
        let reason = failure(outcome);
        assert!(
            reason.starts_with("ferry.toml: the release's manifest says")
                && reason.contains(&format!("holds {size} bytes"))
                && reason.contains("at most 1048576 bytes"),
            "{reason}"
        );
        let staged = target.stage_ahead("1.0", &forged).unwrap_err();
        assert_eq!(staged.to_string(), reason);
        // Asking what to fetch does not read it either.
        ferry_agent::blobs_needed(&target.layout(), &v("1.0"), &forged, None, &target.cache);
    }
    assert!(!target.layout().has_release(&v("1.0")));
    target.deploy_ok("1.0", &honest);
}

/// A file whose declared size does not match its content is refused when it is written,
/// whatever the size claims.
#[test]
fn a_file_claiming_another_size_than_its_content_is_refused() {
    let target = Target::new();
    let honest = target.release(&[file("index.html", "<h1>hi</h1>"), file("app.js", "1")]);
    for size in [1 << 62, 5] {
        let forged = claiming(&honest, "index.html", size);
        let reason = failure(target.deploy("1.0", &forged).0);
        assert!(
            reason.contains("index.html")
                && reason.contains(&format!(
                    "the manifest says the file holds {size} bytes, but its content has 11"
                )),
            "{reason}"
        );
    }
    let report: StageReport = target.deploy_ok("1.0", &honest);
    assert_eq!(report.files_linked + report.files_copied, 2);
}
