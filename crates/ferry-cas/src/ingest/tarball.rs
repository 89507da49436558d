//! Extracting a tarball (plain, gzip or zstd) into a directory. Archives are hostile input: every
//! entry is checked against what was already extracted, so nothing lands outside the directory,
//! nothing is written through a symlink and nothing expands past the limits.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::HashMap;
use std::fmt::Display;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::rc::Rc;

use tar::EntryType;

use super::Limits;
use crate::error::{CasError, CasResult};

/// How many bytes of headers (pax records, GNU long names) may come before one entry. The tar
/// crate holds them in memory, so without a bound a hostile archive could exhaust it.
const HEADER_ALLOWANCE: u64 = 1024 * 1024;

/// How much is read past the end-of-archive marker, so gzip and zstd verify their checksums.
const TRAILER_ALLOWANCE: u64 = 1024 * 1024;

/// The longest path or symlink target accepted (Linux's PATH_MAX).
const MAX_PATH_LEN: usize = 4096;

/// How many path components resolving one symlink may walk through (other symlinks included)
/// before we call it a loop.
const MAX_RESOLVE_STEPS: usize = 1024;

/// Extracts the tar archive at `archive` (plain tar, gzip or zstd, detected from the first bytes, not the file name) into `dest`, an existing empty directory.
pub fn extract(archive: &Path, dest: &Path, limits: &Limits) -> CasResult<()> {
    let allowance = Rc::new(Cell::new(HEADER_ALLOWANCE));
    let stream = Metered {
        inner: open_decompressed(archive)?,
        allowance: Rc::clone(&allowance),
        reached_eof: false,
    };
    let mut tar = tar::Archive::new(stream);
    let mut extraction = Extraction::new(archive, dest, limits);
    for entry in tar.entries().map_err(|e| corrupt(archive, e))? {
        let mut entry = entry.map_err(|e| corrupt(archive, e))?;
        // What the tar crate may read next: this entry's data and padding, then the headers of
        // the next entry.
        allowance.set(entry.size().saturating_add(511 + HEADER_ALLOWANCE));
        extraction.add(&mut entry)?;
    }
    let mut stream = tar.into_inner();
    if stream.reached_eof {
        // The tar crate takes a clean end of input for the end of the archive.
        return Err(corrupt(
            archive,
            "it ends without the end-of-archive marker",
        ));
    }
    io::copy(
        &mut (&mut stream.inner).take(TRAILER_ALLOWANCE),
        &mut io::sink(),
    )
    .map_err(|e| corrupt(archive, e))?;
    extraction.finish()
}

/// The error for an archive that cannot be read as a whole.
fn corrupt(archive: &Path, e: impl Display) -> CasError {
    CasError::Source(format!(
        "{}: the archive is truncated or corrupt: {e}",
        archive.display()
    ))
}

/// Opens `archive` and undoes its compression, recognised by its magic bytes.
fn open_decompressed(archive: &Path) -> CasResult<Box<dyn Read>> {
    let mut file = File::open(archive).map_err(|e| CasError::io(archive, e))?;
    let mut magic = Vec::with_capacity(4);
    (&mut file)
        .take(4)
        .read_to_end(&mut magic)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .map_err(|e| CasError::io(archive, e))?;
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        // Multi-member, like gzip(1) itself: pigz and bgzip write several members.
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::new(file).map_err(|e| corrupt(archive, e))?)
    } else {
        Box::new(BufReader::new(file))
    })
}

/// The decompressed archive, refusing to yield more than `allowance` bytes and noting whether
/// the input ran out.
struct Metered<R> {
    inner: R,
    allowance: Rc<Cell<u64>>,
    reached_eof: bool,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let allowance = self.allowance.get();
        if allowance == 0 {
            return Err(io::Error::other(format!(
                "the headers of one entry (pax records, GNU long names) exceed {HEADER_ALLOWANCE} bytes"
            )));
        }
        let len = buf
            .len()
            .min(usize::try_from(allowance).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..len])?;
        self.reached_eof |= read == 0;
        self.allowance.set(allowance - read as u64);
        Ok(read)
    }
}

/// What a path in the destination is, as extracted so far.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    /// A directory created because entries are inside it; it may still get its own entry.
    ImpliedDir,
    Dir,
    /// A regular file or a hard link to one.
    File,
    /// A symlink and its target.
    Symlink(String),
}

/// The kinds of entries extracted; everything else is refused.
enum Kind {
    Dir,
    File,
    Symlink,
    HardLink,
}

/// One extraction in progress: what has been written where, and how much.
struct Extraction<'a> {
    archive: &'a Path,
    dest: &'a Path,
    limits: &'a Limits,
    /// Every path extracted (normalised), to check later entries against.
    nodes: HashMap<String, Node>,
    /// (as written, normalised) of every symlink, to check again once the tree is whole.
    symlinks: Vec<(String, String)>,
    /// Modes of directory entries, applied last so we can write into them meanwhile.
    dir_modes: Vec<(String, u32)>,
    entries: u64,
    bytes: u64,
}

impl<'a> Extraction<'a> {
    fn new(archive: &'a Path, dest: &'a Path, limits: &'a Limits) -> Extraction<'a> {
        Extraction {
            archive,
            dest,
            limits,
            nodes: HashMap::new(),
            symlinks: Vec::new(),
            dir_modes: Vec::new(),
            entries: 0,
            bytes: 0,
        }
    }

    /// Checks and extracts one entry.
    fn add<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> CasResult<()> {
        let entry_type = entry.header().entry_type();
        if entry_type.is_pax_global_extensions() {
            // Metadata for the whole archive (git archive puts the commit id there).
            return Ok(());
        }
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let reject = |reason: String| CasError::rejected(shown.clone(), reason);
        let name = std::str::from_utf8(&raw_path)
            .map_err(|_| reject("the name is not valid UTF-8; rename it".into()))?;
        let Some(path) =
            normalize(name).map_err(|problem| reject(format!("the path {problem}")))?
        else {
            if entry_type.is_dir() {
                return Ok(()); // `.`: the root, which is `dest` itself
            }
            return Err(reject(
                "names the root of the archive but is not a directory".into(),
            ));
        };
        let kind = kind_of(entry_type).map_err(reject)?;
        self.count_entry(&shown)?;
        self.reserve_bytes(&shown, entry.size())?;
        self.create_parents(&shown, &path)?;
        self.check_unused(&shown, &path, matches!(kind, Kind::Dir))?;
        let mode = entry
            .header()
            .mode()
            .map_err(|e| corrupt(self.archive, e))?;
        match kind {
            Kind::Dir => self.add_dir(&shown, &path, mode),
            Kind::File => {
                let size = entry.size();
                self.add_file(&shown, &path, mode, entry, size)
            }
            Kind::Symlink => {
                let target = entry.link_name_bytes().map(|t| t.into_owned());
                self.add_symlink(&shown, &path, target)
            }
            Kind::HardLink => {
                let target = entry.link_name_bytes().map(|t| t.into_owned());
                self.add_hard_link(&shown, &path, target)
            }
        }
    }

    fn count_entry(&mut self, shown: &str) -> CasResult<()> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(CasError::rejected(
                shown,
                format!(
                    "the archive has more than the limit of {} entries (a tar bomb?); raise --max-entries if it is genuine",
                    self.limits.max_entries
                ),
            ));
        }
        Ok(())
    }

    /// Counts an entry's declared size before anything is written. Data of entries other than
    /// files is skipped, but it is still decompressed, so it counts too.
    fn reserve_bytes(&mut self, shown: &str, size: u64) -> CasResult<()> {
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > self.limits.max_bytes {
            return Err(CasError::rejected(
                shown,
                format!(
                    "the archive expands past the limit of {} bytes (a tar bomb?); raise --max-bytes if it is genuine",
                    self.limits.max_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Makes sure every parent of `path` is a directory, creating missing ones. A parent that
    /// is a symlink is refused, so nothing is ever written through one.
    fn create_parents(&mut self, shown: &str, path: &str) -> CasResult<()> {
        for (end, _) in path.match_indices('/') {
            let parent = &path[..end];
            match self.nodes.get(parent) {
                Some(Node::Dir | Node::ImpliedDir) => {}
                Some(Node::Symlink(_)) => {
                    return Err(CasError::rejected(
                        shown,
                        format!(
                            "{parent:?} is a symlink, and nothing is extracted through a symlink"
                        ),
                    ))
                }
                Some(Node::File) => {
                    return Err(CasError::rejected(
                        shown,
                        format!("{parent:?} is a file, so nothing can be inside it"),
                    ))
                }
                None => {
                    let full = self.dest.join(parent);
                    fs::create_dir(&full).map_err(|e| disk_error(shown, &full, e))?;
                    self.nodes.insert(parent.to_owned(), Node::ImpliedDir);
                }
            }
        }
        Ok(())
    }

    /// Refuses a path some earlier entry already took.
    fn check_unused(&self, shown: &str, path: &str, is_dir: bool) -> CasResult<()> {
        match self.nodes.get(path) {
            None => Ok(()),
            Some(Node::ImpliedDir) if is_dir => Ok(()),
            Some(Node::ImpliedDir) => Err(CasError::rejected(
                shown,
                "this path is already a directory (earlier entries are inside it)",
            )),
            Some(_) => Err(CasError::rejected(
                shown,
                format!(
                    "the archive already has an entry for {path:?}; a path may appear only once"
                ),
            )),
        }
    }

    fn add_dir(&mut self, shown: &str, path: &str, mode: u32) -> CasResult<()> {
        if self.nodes.get(path) != Some(&Node::ImpliedDir) {
            let full = self.dest.join(path);
            fs::create_dir(&full).map_err(|e| disk_error(shown, &full, e))?;
        }
        self.nodes.insert(path.to_owned(), Node::Dir);
        self.dir_modes.push((path.to_owned(), mode & 0o777));
        Ok(())
    }

    fn add_file(
        &mut self,
        shown: &str,
        path: &str,
        mode: u32,
        content: &mut impl Read,
        size: u64,
    ) -> CasResult<()> {
        let full = self.dest.join(path);
        // create_new (O_CREAT | O_EXCL) never follows a symlink at the last component, and the
        // parents were checked against what we extracted: this cannot write outside `dest`.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&full)
            .map_err(|e| disk_error(shown, &full, e))?;
        let written = self.copy_content(shown, content, &mut file, &full, size)?;
        if written < size {
            return Err(corrupt(
                self.archive,
                format!("the content of {shown:?} ends early"),
            ));
        }
        // fchmod gives the exact bits whatever the umask; setuid, setgid and sticky are dropped.
        file.set_permissions(Permissions::from_mode(mode & 0o777))
            .map_err(|e| CasError::io(&full, e))?;
        self.nodes.insert(path.to_owned(), Node::File);
        Ok(())
    }

    /// Copies an entry's content, returning how many bytes it had. Not `io::copy`: a failure to
    /// read is the archive's fault, a failure to write the machine's.
    fn copy_content(
        &self,
        shown: &str,
        content: &mut impl Read,
        file: &mut File,
        full: &Path,
        size: u64,
    ) -> CasResult<u64> {
        let mut buffer = vec![0; 64 * 1024];
        let mut written = 0u64;
        loop {
            let read = match content.read(&mut buffer) {
                Ok(0) => return Ok(written),
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(corrupt(self.archive, e)),
            };
            written += read as u64;
            // The limit was checked against `size`; data past it must not slip through.
            if written > size {
                return Err(CasError::rejected(
                    shown,
                    format!("the entry holds more than the {size} bytes its header declares, which could take it past the limit of {} bytes", self.limits.max_bytes),
                ));
            }
            file.write_all(&buffer[..read])
                .map_err(|e| CasError::io(full, e))?;
        }
    }

    fn add_symlink(&mut self, shown: &str, path: &str, target: Option<Vec<u8>>) -> CasResult<()> {
        let reject = |reason: String| CasError::rejected(shown, reason);
        let target = target.unwrap_or_default();
        let target = String::from_utf8(target)
            .map_err(|_| reject("the symlink's target is not valid UTF-8".into()))?;
        if target.is_empty() || target.contains('\0') || target.len() >= MAX_PATH_LEN {
            return Err(reject(format!(
                "the symlink's target {target:?} is not a usable path"
            )));
        }
        if target.starts_with('/') {
            return Err(reject(format!(
                "the symlink is absolute ({target:?}); make it relative so it stays inside the release"
            )));
        }
        self.check_symlink_stays_inside(shown, path, &target)?;
        let full = self.dest.join(path);
        std::os::unix::fs::symlink(&target, &full).map_err(|e| disk_error(shown, &full, e))?;
        self.nodes.insert(path.to_owned(), Node::Symlink(target));
        self.symlinks.push((shown.to_owned(), path.to_owned()));
        Ok(())
    }

    fn add_hard_link(&mut self, shown: &str, path: &str, target: Option<Vec<u8>>) -> CasResult<()> {
        let reject = |reason: String| CasError::rejected(shown, reason);
        let target = target.unwrap_or_default();
        let target = String::from_utf8(target)
            .map_err(|_| reject("the hard link's target is not valid UTF-8".into()))?;
        let normalized = normalize(&target)
            .map_err(|problem| reject(format!("the hard link's target {target:?} {problem}")))?;
        let Some(normalized) = normalized.filter(|t| self.nodes.get(t) == Some(&Node::File)) else {
            return Err(reject(format!(
                "the hard link's target {target:?} is not an earlier file of the archive"
            )));
        };
        let full = self.dest.join(path);
        fs::hard_link(self.dest.join(&normalized), &full)
            .map_err(|e| disk_error(shown, &full, e))?;
        self.nodes.insert(path.to_owned(), Node::File);
        Ok(())
    }

    /// Refuses a symlink whose target, followed the way the kernel would through the symlinks
    /// extracted so far, climbs above the root. Checking the target alone is not enough: with
    /// `d/s -> ..`, a link to `d/s/..` leaves the tree.
    fn check_symlink_stays_inside(&self, shown: &str, link: &str, target: &str) -> CasResult<()> {
        let reject = |reason: String| CasError::rejected(shown, reason);
        // The directory reached so far ("" for the root) and the components still to follow.
        let mut at = link
            .rsplit_once('/')
            .map_or("", |(parent, _)| parent)
            .to_owned();
        let mut pending: Vec<&str> = target.split('/').rev().collect();
        let mut steps = 0;
        while let Some(component) = pending.pop() {
            steps += 1;
            // Bounds the work, so a web of symlinks cannot keep us busy.
            if steps + pending.len() > MAX_RESOLVE_STEPS || at.len() >= MAX_PATH_LEN {
                return Err(reject(format!(
                    "the symlink {target:?} goes through too many other symlinks to check (a loop?)"
                )));
            }
            match component {
                "" | "." => {}
                ".." if at.is_empty() => {
                    return Err(reject(format!(
                        "the symlink points outside the archive ({target:?}); releases must be self-contained"
                    )))
                }
                ".." => at.truncate(at.rfind('/').unwrap_or(0)),
                name => {
                    let next = if at.is_empty() { name.to_owned() } else { format!("{at}/{name}") };
                    match self.nodes.get(&next) {
                        // Its target is relative to the directory holding it: `at` stays put.
                        Some(Node::Symlink(inner)) => pending.extend(inner.split('/').rev()),
                        _ => at = next,
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks the symlinks against the whole tree and applies directory modes.
    fn finish(mut self) -> CasResult<()> {
        // A symlink can pass through one that appears later in the archive.
        for (shown, path) in &self.symlinks {
            if let Some(Node::Symlink(target)) = self.nodes.get(path) {
                self.check_symlink_stays_inside(shown, path, target)?;
            }
        }
        // Deepest first: tightening a parent first could take away our right to change its
        // children.
        self.dir_modes
            .sort_by_key(|(path, _)| Reverse(path.matches('/').count()));
        for (path, mode) in &self.dir_modes {
            let full = self.dest.join(path);
            fs::set_permissions(&full, Permissions::from_mode(*mode))
                .map_err(|e| CasError::io(&full, e))?;
        }
        Ok(())
    }
}

/// `path` without `.` components and repeated or trailing slashes, or `None` for the root
/// itself; the error says what is wrong with it.
fn normalize(path: &str) -> Result<Option<String>, &'static str> {
    if path.is_empty() {
        return Err("is empty");
    }
    if path.starts_with('/') {
        return Err("is absolute; archive paths must be relative");
    }
    if path.contains('\0') {
        return Err("contains a NUL byte");
    }
    if path.len() >= MAX_PATH_LEN {
        return Err("is too long");
    }
    let mut components = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err("climbs out of the archive with `..`"),
            name => components.push(name),
        }
    }
    Ok((!components.is_empty()).then(|| components.join("/")))
}

/// What kind of entry `entry_type` is, or why it cannot be part of a release.
fn kind_of(entry_type: EntryType) -> Result<Kind, String> {
    let refused = |what: &str| Err(format!("{what} cannot be part of a release"));
    match entry_type {
        EntryType::Directory => Ok(Kind::Dir),
        // Contiguous files are regular files that asked for contiguous storage.
        EntryType::Regular | EntryType::Continuous => Ok(Kind::File),
        EntryType::Symlink => Ok(Kind::Symlink),
        EntryType::Link => Ok(Kind::HardLink),
        EntryType::Fifo => refused("a fifo"),
        EntryType::Char => refused("a character device"),
        EntryType::Block => refused("a block device"),
        EntryType::GNUSparse => {
            Err("a sparse file is not supported; create the archive without --sparse".into())
        }
        other => Err(format!(
            "an entry of tar type {:?} cannot be part of a release: only files, directories, symlinks and hard links can",
            other.as_byte() as char
        )),
    }
}

/// A failure to write into `dest`; the ones the archive provokes are its fault.
fn disk_error(shown: &str, full: &Path, e: io::Error) -> CasError {
    if e.kind() == io::ErrorKind::AlreadyExists {
        return CasError::rejected(
            shown,
            "something already exists at this path in the destination (names that differ only in case, on a case-insensitive file system?)",
        );
    }
    if rustix::io::Errno::from_io_error(&e) == Some(rustix::io::Errno::NAMETOOLONG) {
        return CasError::rejected(shown, "the path is too long for this file system");
    }
    CasError::io(full, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use tar::{Builder, Header};
    use tempfile::TempDir;

    /// One entry of a test archive, written raw so hostile names and types survive.
    struct Raw {
        name: Vec<u8>,
        entry_type: EntryType,
        mode: u32,
        link: &'static str,
        data: Vec<u8>,
        /// The size the header claims, when it lies.
        claimed_size: Option<u64>,
    }

    fn raw(name: &str, entry_type: EntryType, mode: u32) -> Raw {
        Raw {
            name: name.as_bytes().to_vec(),
            entry_type,
            mode,
            link: "",
            data: Vec::new(),
            claimed_size: None,
        }
    }

    fn file(name: &str, mode: u32, data: &str) -> Raw {
        Raw {
            data: data.as_bytes().to_vec(),
            ..raw(name, EntryType::Regular, mode)
        }
    }

    fn dir(name: &str, mode: u32) -> Raw {
        raw(name, EntryType::Directory, mode)
    }

    fn symlink(name: &str, target: &'static str) -> Raw {
        Raw {
            link: target,
            ..raw(name, EntryType::Symlink, 0o777)
        }
    }

    fn hard_link(name: &str, target: &'static str) -> Raw {
        Raw {
            link: target,
            ..raw(name, EntryType::Link, 0o644)
        }
    }

    /// A pax header (`x` for the next entry, `g` for the whole archive) holding `records`.
    fn pax(entry_type: EntryType, records: &[(&str, &str)]) -> Raw {
        let mut data = String::new();
        for (key, value) in records {
            let body = format!(" {key}={value}\n");
            // A record starts with its own length in decimal, that length included.
            let mut len = body.len() + 1;
            while len != body.len() + len.to_string().len() {
                len = body.len() + len.to_string().len();
            }
            data.push_str(&format!("{len}{body}"));
        }
        Raw {
            data: data.into_bytes(),
            ..raw("PaxHeader", entry_type, 0o644)
        }
    }

    /// A GNU long-name header: the next entry's real name.
    fn gnu_long_name(name: &str) -> Raw {
        Raw {
            data: format!("{name}\0").into_bytes(),
            ..raw("././@LongLink", EntryType::GNULongName, 0o644)
        }
    }

    fn header(entry: &Raw) -> Header {
        let mut header = Header::new_gnu();
        let old = header.as_old_mut();
        old.name[..entry.name.len()].copy_from_slice(&entry.name);
        old.linkname[..entry.link.len()].copy_from_slice(entry.link.as_bytes());
        header.set_entry_type(entry.entry_type);
        header.set_mode(entry.mode);
        header.set_size(entry.claimed_size.unwrap_or(entry.data.len() as u64));
        header.set_cksum();
        header
    }

    fn tar_of(entries: &[Raw]) -> Vec<u8> {
        let mut builder = Builder::new(Vec::new());
        for entry in entries {
            builder
                .append(&header(entry), entry.data.as_slice())
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn zstd(bytes: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(bytes, 3).unwrap()
    }

    fn long_name() -> String {
        format!("site/{}.txt", "long".repeat(30))
    }

    /// Nested and implied directories, modes, symlinks, a hard link, pax and GNU long names.
    fn good_archive() -> Vec<u8> {
        let long_name = long_name();
        tar_of(&[
            dir("./", 0o755),
            pax(EntryType::XGlobalHeader, &[("comment", "ferry test")]),
            dir("./site/", 0o750),
            dir("site/css/", 0o755),
            file("site/css/main.css", 0o644, "body {}"),
            file("site/bin/run.sh", 0o4755, "#!/bin/sh\n"),
            symlink("site/latest.css", "css/main.css"),
            symlink("site/css/run", "../bin/run.sh"),
            hard_link("site/copy.css", "./site/css/main.css"),
            pax(EntryType::XHeader, &[("path", "site/named-by-pax.txt")]),
            file("short-name", 0o600, "pax"),
            gnu_long_name(&long_name),
            file("truncated-name", 0o644, "long"),
            dir("site/ro/", 0o555),
            file("site/ro/readme", 0o444, "read me"),
        ])
    }

    /// Writes `bytes` as an archive (named without an extension: compression is sniffed) and
    /// extracts it into an empty `dest` beside it.
    fn extract_bytes(bytes: &[u8], limits: Limits) -> (TempDir, CasResult<()>) {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("archive");
        fs::write(&archive, bytes).unwrap();
        let dest = dir.path().join("dest");
        fs::create_dir(&dest).unwrap();
        let result = extract(&archive, &dest, &limits);
        (dir, result)
    }

    /// Every path under `root`: directories end in `/`, files show mode and content, symlinks
    /// their target.
    fn listing(root: &Path) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for child in fs::read_dir(dir).unwrap() {
                let path = child.unwrap().path();
                let relative = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                let metadata = fs::symlink_metadata(&path).unwrap();
                if metadata.is_symlink() {
                    out.push(format!(
                        "{relative} -> {}",
                        fs::read_link(&path).unwrap().display()
                    ));
                } else if metadata.is_dir() {
                    out.push(format!("{relative}/"));
                    walk(root, &path, out);
                } else {
                    let content = fs::read_to_string(&path).unwrap();
                    out.push(format!(
                        "{relative} {:o} {content:?}",
                        metadata.mode() & 0o7777
                    ));
                }
            }
        }
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out.sort();
        out
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn extracts_a_good_archive_plain_gzip_and_zstd() {
        let plain = good_archive();
        let long_name = long_name();
        let mut expected = vec![
            "site/".to_owned(),
            "site/bin/".to_owned(),
            r##"site/bin/run.sh 755 "#!/bin/sh\n""##.to_owned(),
            r#"site/copy.css 644 "body {}""#.to_owned(),
            "site/css/".to_owned(),
            r#"site/css/main.css 644 "body {}""#.to_owned(),
            "site/css/run -> ../bin/run.sh".to_owned(),
            "site/latest.css -> css/main.css".to_owned(),
            format!(r#"{long_name} 644 "long""#),
            r#"site/named-by-pax.txt 600 "pax""#.to_owned(),
            "site/ro/".to_owned(),
            r#"site/ro/readme 444 "read me""#.to_owned(),
        ];
        expected.sort();
        for (variant, bytes) in [
            ("plain", plain.clone()),
            ("gzip", gzip(&plain)),
            ("zstd", zstd(&plain)),
        ] {
            let (dir, result) = extract_bytes(&bytes, Limits::default());
            result.unwrap_or_else(|e| panic!("{variant}: {e}"));
            let dest = dir.path().join("dest");
            assert_eq!(listing(&dest), expected, "{variant}");
            for (path, mode) in [("site", 0o750), ("site/css", 0o755), ("site/ro", 0o555)] {
                assert_eq!(mode_of(&dest.join(path)), mode, "{variant}: {path}");
            }
            let original = fs::metadata(dest.join("site/css/main.css")).unwrap();
            let link = fs::metadata(dest.join("site/copy.css")).unwrap();
            assert_eq!(
                (original.dev(), original.ino()),
                (link.dev(), link.ino()),
                "{variant}"
            );
            // So the temporary directory can be removed when not running as root.
            fs::set_permissions(dest.join("site/ro"), Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn limits_are_inclusive() {
        // The good archive has 11 entries (the root and the global header do not count) and
        // 31 bytes of file content.
        let archive = good_archive();
        for (limits, refused) in [
            (
                Limits {
                    max_entries: 11,
                    max_bytes: 31,
                },
                None,
            ),
            (
                Limits {
                    max_entries: 10,
                    max_bytes: 31,
                },
                Some("limit of 10 entries"),
            ),
            (
                Limits {
                    max_entries: 11,
                    max_bytes: 30,
                },
                Some("limit of 30 bytes"),
            ),
        ] {
            let (dir, result) = extract_bytes(&archive, limits);
            match (result, refused) {
                (Ok(()), None) => {}
                (Err(e), Some(reason)) => {
                    assert!(e.to_string().contains(reason), "{limits:?}: {e}")
                }
                (result, _) => panic!("{limits:?}: {result:?}"),
            }
            let _ = fs::set_permissions(
                dir.path().join("dest/site/ro"),
                Permissions::from_mode(0o755),
            );
        }
    }

    /// A hostile archive, the entry it must be refused at and part of the reason.
    struct Refusal {
        entries: Vec<Raw>,
        limits: Limits,
        entry: &'static str,
        reason: &'static str,
    }

    fn refusal(entry: &'static str, reason: &'static str, entries: Vec<Raw>) -> Refusal {
        Refusal {
            entries,
            limits: Limits::default(),
            entry,
            reason,
        }
    }

    #[test]
    fn refuses_hostile_entries() {
        let big = Raw {
            claimed_size: Some(1 << 30),
            ..file("big", 0o644, "")
        };
        let not_utf8 = Raw {
            name: b"bad\xff".to_vec(),
            ..file("", 0o644, "x")
        };
        let cases = vec![
            refusal("../x", "climbs out", vec![file("../x", 0o644, "x")]),
            refusal(
                "a/../../x",
                "climbs out",
                vec![file("a/../../x", 0o644, "x")],
            ),
            refusal(
                "/etc/passwd",
                "absolute",
                vec![file("/etc/passwd", 0o644, "x")],
            ),
            refusal(
                "../pax-escape",
                "climbs out",
                vec![
                    pax(EntryType::XHeader, &[("path", "../pax-escape")]),
                    file("innocent", 0o644, "x"),
                ],
            ),
            refusal(
                "a/l",
                "points outside",
                vec![dir("a/", 0o755), symlink("a/l", "../../outside")],
            ),
            refusal("l", "absolute", vec![symlink("l", "/etc/passwd")]),
            // Each target stays inside on its own; through `d/s` the second one does not.
            refusal(
                "e",
                "points outside",
                vec![
                    dir("d/", 0o755),
                    symlink("d/s", ".."),
                    symlink("e", "d/s/.."),
                ],
            ),
            refusal(
                "e",
                "points outside",
                vec![
                    symlink("e", "d/s/.."),
                    dir("d/", 0o755),
                    symlink("d/s", ".."),
                ],
            ),
            refusal(
                "a",
                "too many other symlinks",
                vec![symlink("a", "b"), symlink("b", "a")],
            ),
            refusal("h", "climbs out", vec![hard_link("h", "../x")]),
            refusal("h", "absolute", vec![hard_link("h", "/etc/passwd")]),
            refusal(
                "h",
                "not an earlier file",
                vec![file("a", 0o644, "x"), hard_link("h", "missing")],
            ),
            refusal(
                "h",
                "not an earlier file",
                vec![hard_link("h", "later"), file("later", 0o644, "x")],
            ),
            refusal(
                "h",
                "not an earlier file",
                vec![dir("d/", 0o755), hard_link("h", "d")],
            ),
            refusal("p", "a fifo", vec![raw("p", EntryType::Fifo, 0o644)]),
            refusal(
                "c",
                "a character device",
                vec![raw("c", EntryType::Char, 0o644)],
            ),
            refusal(
                "b",
                "a block device",
                vec![raw("b", EntryType::Block, 0o644)],
            ),
            refusal(
                "z",
                "tar type 'Z'",
                vec![raw("z", EntryType::new(b'Z'), 0o644)],
            ),
            refusal(
                "./a",
                "already has an entry",
                vec![file("a", 0o644, "x"), file("./a", 0o644, "y")],
            ),
            refusal(
                "a/b/",
                "already has an entry",
                vec![dir("a/b/", 0o755), dir("a/b/", 0o755)],
            ),
            refusal(
                "a",
                "already a directory",
                vec![file("a/b", 0o644, "x"), file("a", 0o644, "y")],
            ),
            refusal("./", "root", vec![file("./", 0o644, "x")]),
            refusal("bad\u{fffd}", "not valid UTF-8", vec![not_utf8]),
            refusal(
                "link/file",
                "is a symlink",
                vec![
                    dir("sub/", 0o755),
                    symlink("link", "sub"),
                    file("link/file", 0o644, "x"),
                ],
            ),
            refusal(
                "f/g",
                "is a file",
                vec![file("f", 0o644, "x"), file("f/g", 0o644, "y")],
            ),
            Refusal {
                limits: Limits {
                    max_entries: 2,
                    ..Limits::default()
                },
                ..refusal(
                    "c",
                    "limit of 2 entries",
                    vec![
                        file("a", 0o644, "x"),
                        file("b", 0o644, "x"),
                        file("c", 0o644, "x"),
                    ],
                )
            },
            Refusal {
                limits: Limits {
                    max_bytes: 1000,
                    ..Limits::default()
                },
                ..refusal(
                    "big",
                    "past the limit of 1000 bytes (a tar bomb?); raise --max-bytes",
                    vec![big],
                )
            },
            Refusal {
                limits: Limits {
                    max_bytes: 1000,
                    ..Limits::default()
                },
                ..refusal(
                    "b",
                    "past the limit of 1000 bytes",
                    vec![
                        file("a", 0o644, &"x".repeat(600)),
                        file("b", 0o644, &"x".repeat(600)),
                    ],
                )
            },
        ];
        for case in cases {
            let (dir, result) = extract_bytes(&tar_of(&case.entries), case.limits);
            let error = result.expect_err(case.entry);
            let message = error.to_string();
            assert!(
                matches!(&error, CasError::Rejected { path, reason } if path == case.entry && reason.contains(case.reason)),
                "{}: expected {:?}, got {message}",
                case.entry,
                case.reason
            );
            assert!(message.contains(case.entry), "{message}");
            assert!(error.is_bad_input(), "{message}");
            let mut beside_dest: Vec<_> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            beside_dest.sort();
            assert_eq!(
                beside_dest,
                ["archive", "dest"],
                "{}: wrote outside dest",
                case.entry
            );
        }
    }

    #[test]
    fn reports_truncated_and_corrupt_archives() {
        let plain = good_archive();
        let mut bad_checksum = plain.clone();
        bad_checksum[0] = b'X';
        let mut corrupted_gzip = gzip(&plain);
        let middle = corrupted_gzip.len() / 2;
        for byte in &mut corrupted_gzip[middle..middle + 16] {
            *byte ^= 0x55;
        }
        let zstd = zstd(&plain);
        let gzip = gzip(&plain);
        // The CRC32 is in the last 8 bytes, after the tar's end-of-archive marker.
        let mut wrong_gzip_checksum = gzip.clone();
        let crc = wrong_gzip_checksum.len() - 8;
        wrong_gzip_checksum[crc] ^= 1;
        // The tar crate buffers pax records in memory: they must not grow without bound.
        let huge_pax = tar_of(&[
            pax(
                EntryType::XHeader,
                &[("comment", &"x".repeat(2 * 1024 * 1024))],
            ),
            file("a", 0o644, "x"),
        ]);
        let cases = [
            ("cut in half", plain[..plain.len() / 2].to_vec()),
            ("cut inside a header", plain[..512 + 100].to_vec()),
            (
                "cut before the end marker",
                plain[..plain.len() - 1024].to_vec(),
            ),
            ("empty", Vec::new()),
            ("bad header checksum", bad_checksum),
            ("gzip cut in half", gzip[..gzip.len() / 2].to_vec()),
            ("gzip with corrupted bytes", corrupted_gzip),
            ("gzip with a wrong checksum", wrong_gzip_checksum),
            ("zstd cut in half", zstd[..zstd.len() / 2].to_vec()),
            ("pax records past the allowance", huge_pax),
        ];
        for (name, bytes) in cases {
            let (dir, result) = extract_bytes(&bytes, Limits::default());
            let error = result.expect_err(name);
            let message = error.to_string();
            let archive = dir.path().join("archive");
            assert!(matches!(error, CasError::Source(_)), "{name}: {message}");
            assert!(
                message.starts_with(&format!("{}: ", archive.display())),
                "{name}: {message}"
            );
            assert!(
                message.contains("truncated or corrupt"),
                "{name}: {message}"
            );
            assert!(error.is_bad_input(), "{name}");
            let _ = fs::set_permissions(
                dir.path().join("dest/site/ro"),
                Permissions::from_mode(0o755),
            );
        }
    }
}
