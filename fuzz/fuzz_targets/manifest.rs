//! A stored manifest (zstd-compressed), read back and validated. The digest is the input's
//! own, so the fuzzer reaches the decompression and the parsing behind the hash check.
#![no_main]

use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::from_blob(data, &ContentHash::of(data)) {
        let _ = manifest.validate();
        let _ = manifest.blobs();
    }
});
