//! The files the agent reads back from its root (`ROOT/.ferry/`), whatever a crash, a full
//! disk or a person left in them: the stat index of a staged release and the backup index
//! (binary, checksummed: the input is sealed with a valid checksum, so the fuzzer reaches
//! the entries), an application's journal and its drift record (JSON). The first byte
//! picks the file. Each loads as something usable or as nothing, never a panic, and what
//! loads is written back and loads again the same.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ferry_agent::app_backup::index::{index_path, BackupIndex};
use ferry_agent::drift::{load_record, merge};
use ferry_agent::journal::Journal;
use ferry_agent::layout::{drift_record_path, journal_path, state_dir, AppLayout, Installed};
use ferry_agent::stat_index::StatIndex;
use ferry_domain::drift::DriftChange;
use libfuzzer_sys::fuzz_target;

const APP: &str = "app";

/// One agent root for the whole run: each input overwrites the file it is about.
fn root() -> &'static Path {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    ROOT.get_or_init(|| tempfile::tempdir().expect("a temp directory"))
        .path()
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("the state directory");
    std::fs::write(path, bytes).expect("writing the file");
}

/// `body` with the BLAKE3 checksum both indexes end with.
fn sealed(body: &[u8]) -> Vec<u8> {
    let mut bytes = body.to_vec();
    bytes.extend_from_slice(blake3::hash(body).as_bytes());
    bytes
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, content)) = data.split_first() else {
        return;
    };
    let root = root();
    match which % 4 {
        0 => stat_index(root, content),
        1 => backup_index(root, content),
        2 => journal(root, content),
        _ => drift_record(root, content),
    }
});

fn stat_index(root: &Path, content: &[u8]) {
    let layout = AppLayout::new(root, APP).expect("a valid application name");
    let version = Installed::new("1.0", 0);
    let path: PathBuf = state_dir(root).join("index").join(APP).join("1.0.json");
    write(&path, &sealed(content));
    let index = StatIndex::load(&layout, &version);
    for (path, stat) in index.iter() {
        assert_eq!(
            index.get(path),
            Some(stat),
            "{path:?} is listed but not found"
        );
    }
    index.save(&layout, &version);
    assert!(
        StatIndex::load(&layout, &version) == index,
        "the stat index reads back otherwise"
    );
}

fn backup_index(root: &Path, content: &[u8]) {
    let path = index_path(root, APP);
    write(&path, &sealed(content));
    let index = BackupIndex::load(&path);
    index.save(&path);
    assert_eq!(
        BackupIndex::load(&path),
        index,
        "the backup index reads back otherwise"
    );
}

fn journal(root: &Path, content: &[u8]) {
    write(&journal_path(root, APP), content);
    let Ok(journal) = Journal::load(root, APP) else {
        return;
    };
    for version in journal
        .history
        .iter()
        .map(|d| &d.version)
        .chain(&journal.bad)
    {
        let _ = journal.completed(version);
        let _ = journal.deployed_at(version);
    }
    journal.save(root, APP).expect("saving the journal");
    assert_eq!(
        Journal::load(root, APP).ok(),
        Some(journal),
        "the journal reads back otherwise"
    );
}

fn drift_record(root: &Path, content: &[u8]) {
    write(&drift_record_path(root, APP), content);
    let Some(record) = load_record(root, APP) else {
        return;
    };
    let found: Vec<(String, DriftChange)> = record
        .paths
        .iter()
        .map(|p| (p.path.clone(), p.change))
        .collect();
    let merged = merge(Some(&record), &record.version, &found, 1);
    assert_eq!(
        merged.paths.len(),
        found.len(),
        "a merge keeps every path found"
    );
}
