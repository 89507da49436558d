//! The application backup engine, one step per run, for `bench/backups.py`:
//!
//! ```text
//! backup_bench backup SHARED STORE INDEX MANIFEST PATH...
//! backup_bench restore SHARED STORE MANIFEST PATH...
//! ```
//!
//! `backup` snapshots the backup paths PATH... under SHARED (trusting and replacing the
//! backup index at INDEX), stores the blobs the blob store at STORE lacks, and writes the
//! backup's manifest to MANIFEST as the server stores it (zstd); `restore` restores every
//! PATH from that manifest and the blob store into SHARED. Each prints one JSON object: the
//! files and bytes of the backup, the files read and bytes newly stored, or the files and
//! bytes restored.

use std::fs;
use std::path::Path;

use ferry_agent::app_backup::local_store::store_missing;
use ferry_agent::app_backup::{restore, snapshot};
use ferry_cas::blobs::BlobStore;
use ferry_cas::manifest::Manifest;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("backup") if args.len() > 6 => {
            let (shared, store, index, manifest_path) = (&args[2], &args[3], &args[4], &args[5]);
            let paths = &args[6..];
            let store = BlobStore::open(Path::new(store)).expect("the blob store opens");
            let snapshot = snapshot(Path::new(shared), paths, Path::new(index)).expect("backup");
            let new_bytes = store_missing(&store, &snapshot.blobs).expect("blobs stored");
            let manifest = &snapshot.manifest;
            let blob = manifest.to_blob();
            let digest = manifest.digest();
            fs::write(manifest_path, &blob).expect("manifest written");
            // The manifest is stored as one more blob, as a release's is.
            let stored = store
                .put_batch(&[(ferry_cas::hash::ContentHash::of(&blob), &blob)])
                .expect("manifest stored");
            println!(
                "{}",
                serde_json::json!({
                    "digest": digest.to_hex(),
                    "files": manifest.n_files(),
                    "bytes": manifest.n_bytes(),
                    "files_read": snapshot.files_read,
                    "new_bytes": new_bytes + stored,
                })
            );
        }
        Some("restore") if args.len() > 5 => {
            let (shared, store, manifest_path) = (&args[2], &args[3], &args[4]);
            let paths = &args[5..];
            let store = BlobStore::open(Path::new(store)).expect("the blob store opens");
            let blob = fs::read(manifest_path).expect("manifest read");
            let canonical = zstd::decode_all(blob.as_slice()).expect("manifest decompressed");
            let digest = ferry_cas::hash::ContentHash::of(&canonical);
            let manifest = Manifest::from_blob(&blob, &digest).expect("manifest read");
            let report =
                restore(Path::new(shared), &manifest, paths, None, &store, None).expect("restore");
            println!(
                "{}",
                serde_json::json!({"files": report.files, "bytes": report.bytes})
            );
        }
        _ => panic!(
            "usage: backup_bench backup SHARED STORE INDEX MANIFEST PATH... | \
             backup_bench restore SHARED STORE MANIFEST PATH..."
        ),
    }
}
