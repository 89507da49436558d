//! Where the server keeps release content, as `--blobs` names it: a folder
//! (`file:///var/lib/ferry/blobs`) or a bucket of an S3-compatible service with an optional
//! key prefix (`s3://bucket/prefix`). Parsed without I/O; opening it is `super::open`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The forms `--blobs` accepts, for refusals.
const ACCEPTED: &str =
    "use file:///absolute/dir for a folder, or s3://bucket or s3://bucket/prefix for an S3-compatible bucket";

/// Where blobs live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobLocation {
    /// A folder on this machine, one file per blob.
    Folder(PathBuf),
    /// An S3 bucket, each blob an object under `prefix/` (no prefix: at the bucket's root).
    S3 { bucket: String, prefix: String },
}

/// A `--blobs` value that names no place ferry can keep blobs.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a blob storage URL: {reason}; {ACCEPTED}")]
pub struct BadBlobLocation {
    given: String,
    reason: &'static str,
}

impl FromStr for BlobLocation {
    type Err = BadBlobLocation;

    fn from_str(given: &str) -> Result<BlobLocation, BadBlobLocation> {
        let bad = |reason| BadBlobLocation {
            given: given.to_owned(),
            reason,
        };
        if let Some(path) = given.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(bad("a file:// URL names an absolute folder"));
            }
            return Ok(BlobLocation::Folder(PathBuf::from(path)));
        }
        let Some(rest) = given.strip_prefix("s3://") else {
            return Err(bad("it starts with neither file:// nor s3://"));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if !is_bucket_name(bucket) {
            return Err(bad(
                "a bucket name is 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit",
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        if prefix
            .split('/')
            .any(|part| part.is_empty() && !prefix.is_empty() || part == "." || part == "..")
            || prefix.contains(['?', '#', '\\'])
            || prefix.chars().any(char::is_control)
        {
            return Err(bad(
                "the prefix is folder names separated by single slashes, without . or .., ?, # or backslashes",
            ));
        }
        Ok(BlobLocation::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

/// S3's rules for bucket names (the common subset every S3-compatible service accepts).
fn is_bucket_name(name: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edge_ok(name.chars().next())
        && edge_ok(name.chars().last())
        && !name.contains("..")
}

impl fmt::Display for BlobLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobLocation::Folder(path) => write!(f, "file://{}", path.display()),
            BlobLocation::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            BlobLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_and_buckets_are_read() {
        let cases = [
            (
                "file:///var/lib/ferry/blobs",
                BlobLocation::Folder("/var/lib/ferry/blobs".into()),
            ),
            ("s3://ferry-blobs", s3("ferry-blobs", "")),
            ("s3://ferry-blobs/", s3("ferry-blobs", "")),
            (
                "s3://ferry.blobs/prod/ferry",
                s3("ferry.blobs", "prod/ferry"),
            ),
            ("s3://ferry-blobs/prod/", s3("ferry-blobs", "prod")),
        ];
        for (given, expected) in cases {
            assert_eq!(given.parse::<BlobLocation>(), Ok(expected), "{given}");
        }
    }

    #[test]
    fn a_location_shows_as_it_is_given() {
        for given in ["file:///srv/blobs", "s3://bucket", "s3://bucket/a/b"] {
            assert_eq!(given.parse::<BlobLocation>().unwrap().to_string(), given);
        }
    }

    #[test]
    fn anything_else_is_refused_naming_the_accepted_forms() {
        let cases = [
            ("/srv/blobs", "neither file:// nor s3://"),
            ("ftp://host/blobs", "neither file:// nor s3://"),
            ("file://relative/blobs", "absolute folder"),
            ("s3://", "bucket name"),
            ("s3://Upper", "bucket name"),
            ("s3://ab", "bucket name"),
            ("s3://-bucket", "bucket name"),
            ("s3://bucket_name", "bucket name"),
            ("s3://bucket//twice", "prefix"),
            ("s3://bucket/a/../b", "prefix"),
            ("s3://bucket/a?b", "prefix"),
        ];
        for (given, reason) in cases {
            let error = given.parse::<BlobLocation>().unwrap_err().to_string();
            assert!(error.contains(reason), "{given}: {error}");
            assert!(error.contains("file:///absolute/dir") && error.contains("s3://bucket/prefix"));
        }
    }

    fn s3(bucket: &str, prefix: &str) -> BlobLocation {
        BlobLocation::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        }
    }
}
