//! Release trees on a target are read-only: staging gives every file and directory its
//! manifest mode without the write bits, so a hand edit needs a deliberate `chmod` first and
//! the application cannot change its own code. Files are hard-linked between releases and
//! the cache; one written in place would change them all, which is why the check before a
//! switch re-creates any file whose inode changed. Writable data lives in `shared/`; paths
//! the application changes itself (`ignore`) keep their mode, and are always copies.

/// The write permission bits of owner, group and others.
const WRITE_BITS: u32 = 0o222;

/// The mode of the release's own directory, and of directories staging makes only to hold
/// a shared path's link.
pub const RELEASE_DIR_MODE: u32 = 0o555;

/// The mode a release path with manifest mode `mode` has on the target: without write bits,
/// unless the application writes to the path itself (shared or ignored).
pub fn placed_mode(mode: u32, written_by_application: bool) -> u32 {
    if written_by_application {
        mode
    } else {
        mode & !WRITE_BITS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_write_bits_go() {
        let cases = [
            (0o644, false, 0o444),
            (0o755, false, 0o555),
            (0o2775, false, 0o2555),
            (0o600, false, 0o400),
            (0o444, false, 0o444),
            (0o644, true, 0o644),
        ];
        for (mode, written, placed) in cases {
            assert_eq!(placed_mode(mode, written), placed, "{mode:o} {written}");
        }
    }
}
