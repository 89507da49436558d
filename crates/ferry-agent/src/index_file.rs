//! The on-disk form the agent's two file indexes share (the stat index of a staged release,
//! [`crate::stat_index`], and the backup index of an application's data,
//! [`crate::app_backup::index`]): a magic, a format version and an entry count; entries
//! that each start with a path and a file's facts ([`FileStat`]); and a BLAKE3 checksum of
//! everything before it. All integers little-endian. Anything that is not complete and
//! intact opens as nothing: an index only spares work, so a lost one costs a re-read.

use ferry_cas::hash::ContentHash;

use crate::stat_index::FileStat;

/// Magic, format version and entry count.
pub const HEADER_LEN: usize = 8 + 4 + 8;
/// The BLAKE3 checksum at the end.
pub const CHECKSUM_LEN: usize = 32;
/// A path's length and a file's facts: the least an entry takes.
pub const ENTRY_FIXED_LEN: usize = 4 + 4 + 8 + 8 + 16 + 16 + 32;

/// The start of an index of `count` entries; `capacity` is a guess of its whole length.
pub fn begin(magic: &[u8; 8], version: u32, count: usize, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(count as u64).to_le_bytes());
    out
}

/// Appends an entry's common part: `path` and its facts.
pub fn put_entry(out: &mut Vec<u8>, path: &str, stat: &FileStat) {
    // Paths are at most 4096 bytes.
    out.extend_from_slice(&(path.len() as u32).to_le_bytes());
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(&stat.mode.to_le_bytes());
    out.extend_from_slice(&stat.ino.to_le_bytes());
    out.extend_from_slice(&stat.size.to_le_bytes());
    out.extend_from_slice(&stat.mtime_ns.to_le_bytes());
    out.extend_from_slice(&stat.ctime_ns.to_le_bytes());
    out.extend_from_slice(&stat.hash.0);
}

/// The finished index: `out` with its checksum.
pub fn seal(mut out: Vec<u8>) -> Vec<u8> {
    let checksum = blake3::hash(&out);
    out.extend_from_slice(checksum.as_bytes());
    out
}

/// Opens an index of format `version` under `magic`: its entry count and a reader of the
/// entries; `None` when the checksum, the magic or the version is wrong, or the count is
/// more than the bytes can hold at `entry_len` bytes at least per entry.
pub fn open<'b>(
    bytes: &'b [u8],
    magic: &[u8; 8],
    version: u32,
    entry_len: usize,
) -> Option<(usize, Reader<'b>)> {
    let body_len = bytes.len().checked_sub(CHECKSUM_LEN)?;
    let (body, checksum) = bytes.split_at(body_len);
    if blake3::hash(body).as_bytes() != checksum {
        return None;
    }
    let mut reader = Reader(body);
    if reader.take(magic.len())? != magic || reader.u32()? != version {
        return None;
    }
    let count = reader.u64()?;
    // A count the bytes cannot hold is a lie.
    if count > (reader.remaining() / entry_len) as u64 {
        return None;
    }
    Some((count as usize, reader))
}

/// Reads an index's fields in order.
pub struct Reader<'b>(&'b [u8]);

impl<'b> Reader<'b> {
    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.0.len()
    }

    pub fn take(&mut self, n: usize) -> Option<&'b [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    /// An entry's common part, as [`put_entry`] wrote it.
    pub fn entry(&mut self) -> Option<(&'b str, FileStat)> {
        let path_len = self.u32()? as usize;
        let path = std::str::from_utf8(self.take(path_len)?).ok()?;
        let stat = FileStat {
            mode: self.u32()?,
            ino: self.u64()?,
            size: self.u64()?,
            mtime_ns: i128::from_le_bytes(self.array()?),
            ctime_ns: i128::from_le_bytes(self.array()?),
            hash: ContentHash(self.array()?),
        };
        Some((path, stat))
    }
}
