//! A release's `ferry.toml`, as the client, the server and the agent read it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ferry_cas::release_config::ReleaseConfig::parse_bytes(data);
});
