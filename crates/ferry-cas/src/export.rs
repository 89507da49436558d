//! Writing a release's exact tree (modes and symlinks included) to a directory, or a backup's.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use crate::blobs::BlobStore;
use crate::error::{CasError, CasResult};
use crate::hash::ContentHash;
use crate::manifest::{EntryKind, Manifest};

/// Somewhere blobs can be read from.
pub trait BlobSource {
    /// The blob's bytes.
    fn read_blob(&self, hash: &ContentHash) -> CasResult<Vec<u8>>;
}

impl BlobSource for BlobStore {
    fn read_blob(&self, hash: &ContentHash) -> CasResult<Vec<u8>> {
        self.read(hash)
    }
}

/// Writes the tree of `manifest` into `dest`, which must not exist or be empty. Every file
/// is checked against its hash as it is written.
pub fn export_tree(manifest: &Manifest, dest: &Path, blobs: &dyn BlobSource) -> CasResult<()> {
    manifest.validate()?;
    write_tree(manifest, dest, blobs)
}

/// [`export_tree`] for a backup of application data, whose symlinks may point anywhere
/// ([`Manifest::validate_data`]): they are written as links, never followed.
pub fn export_data(manifest: &Manifest, dest: &Path, blobs: &dyn BlobSource) -> CasResult<()> {
    manifest.validate_data()?;
    write_tree(manifest, dest, blobs)
}

/// Writes a checked manifest's tree into `dest` (new or empty).
fn write_tree(manifest: &Manifest, dest: &Path, blobs: &dyn BlobSource) -> CasResult<()> {
    match fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(CasError::Source(format!(
                    "{} is not empty: export into a new or empty directory",
                    dest.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dest).map_err(|e| CasError::io(dest, e))?
        }
        Err(e) => return Err(CasError::io(dest, e)),
    }
    let mut dir_modes = Vec::new();
    for entry in &manifest.entries {
        let path = dest.join(&entry.path);
        match &entry.kind {
            EntryKind::Dir { mode } => {
                fs::create_dir(&path).map_err(|e| CasError::io(&path, e))?;
                dir_modes.push((path, *mode));
            }
            EntryKind::Symlink { target } => {
                symlink(target, &path).map_err(|e| CasError::io(&path, e))?;
            }
            EntryKind::File { mode, hash, .. } => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| CasError::io(&path, e))?;
                let mut hasher = blake3::Hasher::new();
                for chunk in entry.blobs() {
                    let data = blobs.read_blob(&chunk.hash)?;
                    hasher.update(&data);
                    file.write_all(&data).map_err(|e| CasError::io(&path, e))?;
                }
                if ContentHash::from(hasher.finalize()) != *hash {
                    return Err(CasError::io(
                        &path,
                        std::io::Error::other(
                            "the exported content does not match the manifest's hash",
                        ),
                    ));
                }
                file.sync_all().map_err(|e| CasError::io(&path, e))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(*mode))
                    .map_err(|e| CasError::io(&path, e))?;
            }
        }
    }
    // Directory modes last, deepest first, so a read-only directory is filled before it
    // becomes read-only.
    for (path, mode) in dir_modes.into_iter().rev() {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(|e| CasError::io(&path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Limits;
    use crate::scan::scan_tree;

    #[test]
    fn a_scanned_tree_exports_to_an_identical_tree() {
        let source = tempfile::tempdir().unwrap();
        let root = source.path();
        fs::create_dir_all(root.join("app/bin")).unwrap();
        fs::write(root.join("app/bin/run"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join("app/bin/run"), fs::Permissions::from_mode(0o750)).unwrap();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(root.join("app/big.bin"), &big).unwrap();
        symlink("bin/run", root.join("app/start")).unwrap();
        fs::create_dir(root.join("ro")).unwrap();
        fs::write(root.join("ro/file"), b"x").unwrap();
        fs::set_permissions(root.join("ro"), fs::Permissions::from_mode(0o555)).unwrap();

        let scanned = scan_tree(root, &Limits::default()).unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(store_dir.path()).unwrap();
        let mut batch = Vec::new();
        for chunk in scanned.manifest.blobs() {
            let location = &scanned.locations[&chunk.hash];
            let data = fs::read(&location.path).unwrap();
            batch.push((
                chunk.hash,
                data[location.offset as usize..(location.offset + location.len) as usize].to_vec(),
            ));
        }
        let refs: Vec<(ContentHash, &[u8])> =
            batch.iter().map(|(h, d)| (*h, d.as_slice())).collect();
        store.put_batch(&refs).unwrap();

        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("export");
        export_tree(&scanned.manifest, &dest, &store).unwrap();
        let again = scan_tree(&dest, &Limits::default()).unwrap();
        assert_eq!(again.manifest, scanned.manifest);
        assert_eq!(fs::read(dest.join("app/big.bin")).unwrap(), big);

        let error = export_tree(&scanned.manifest, &dest, &store).unwrap_err();
        assert!(error.to_string().contains("is not empty"));
        fs::set_permissions(root.join("ro"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(dest.join("ro"), fs::Permissions::from_mode(0o755)).unwrap();
    }
}
