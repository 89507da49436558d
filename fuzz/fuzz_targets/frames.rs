//! A batch of blobs as clients and agents upload them (hash, length, bytes), read whole and
//! as it arrives in two pieces, which must agree.
#![no_main]

use ferry_cas::frames::{parse_frames, FrameReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = parse_frames(data).map(|frames| frames.len());
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut reader = FrameReader::default();
    reader.push(&data[..cut]);
    let mut pieces = 0;
    let mut failed = false;
    loop {
        match reader.next_frame() {
            Ok(Some(_)) => pieces += 1,
            Ok(None) => break,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if !failed {
        reader.push(&data[cut..]);
        loop {
            match reader.next_frame() {
                Ok(Some(_)) => pieces += 1,
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
    }
    if let Ok(whole) = whole {
        assert!(!failed && reader.finish().is_ok(), "read whole, refused in pieces");
        assert_eq!(whole, pieces, "read whole and in pieces");
    }
});
