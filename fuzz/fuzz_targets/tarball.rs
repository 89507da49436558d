//! A release archive (plain tar, gzip or zstd) extracted with the hostile-input checks and
//! small limits; whatever it holds, nothing lands outside the destination.
#![no_main]

use ferry_cas::ingest::tarball::extract;
use ferry_cas::ingest::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let work = tempfile::tempdir().expect("a temp directory");
    let archive = work.path().join("release.tar");
    std::fs::write(&archive, data).expect("writing the archive");
    let dest = work.path().join("tree");
    std::fs::create_dir(&dest).expect("the destination");
    let limits = Limits {
        max_bytes: 16 * 1024 * 1024,
        max_entries: 10_000,
    };
    let _ = extract(&archive, &dest, &limits);
    let outside: Vec<_> = std::fs::read_dir(work.path())
        .expect("listing the work directory")
        .map(|entry| entry.expect("an entry").file_name())
        .filter(|name| name != "release.tar" && name != "tree")
        .collect();
    assert!(outside.is_empty(), "extraction wrote outside its destination: {outside:?}");
});
