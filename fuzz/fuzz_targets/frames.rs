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
    let pieces = drain(&mut reader).and_then(|before| {
        reader.push(&data[cut..]);
        Ok(before + drain(&mut reader)?)
    });
    if let Ok(whole) = whole {
        assert!(
            pieces.is_ok() && reader.finish().is_ok(),
            "read whole, refused in pieces"
        );
        assert_eq!(Ok(whole), pieces, "read whole and in pieces");
    }
});

/// Reads every frame the reader holds complete: how many, or `Err` when it refuses one.
fn drain(reader: &mut FrameReader) -> Result<usize, ()> {
    let mut frames = 0;
    while reader.next_frame().map_err(|_| ())?.is_some() {
        frames += 1;
    }
    Ok(frames)
}
