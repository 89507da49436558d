//! Where a release's tree came from, as users write it (`--from`) and as ferry records it.

use serde::{Deserialize, Serialize};

use crate::error::{CasError, CasResult};

/// A `--from` argument, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    /// A directory, or a `.tar`, `.tar.gz` or `.tar.zst` file: decided by looking at it.
    Path(String),
    /// `git+URL#REF`: a tag, branch or commit of a git repository.
    Git { url: String, reference: String },
    /// `svn+URL@REV`: a revision of a Subversion path.
    Svn { url: String, revision: u64 },
}

/// The source recorded on a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    /// Uploaded from a directory.
    Directory { path: String },
    /// Uploaded from a tarball.
    Tarball { path: String },
    /// Exported from git; `commit` is the full commit id `reference` resolved to.
    Git {
        url: String,
        reference: String,
        commit: String,
    },
    /// Exported from Subversion at `revision`.
    Svn { url: String, revision: u64 },
    /// Hand edits on a target, made a release (`ferry drift capture`): the tree `target`
    /// served, captured at `user`'s request.
    Captured { target: String, user: String },
}

impl Source {
    /// One line for people: `git file:///repo#v1.2 (commit 3f2a…)`.
    pub fn describe(&self) -> String {
        match self {
            Source::Directory { path } => format!("directory {path}"),
            Source::Tarball { path } => format!("tarball {path}"),
            Source::Git {
                url,
                reference,
                commit,
            } => format!("git {url}#{reference} (commit {commit})"),
            Source::Svn { url, revision } => format!("svn {url}@{revision}"),
            Source::Captured { target, user } => format!("captured from {target} by {user}"),
        }
    }
}

impl Source {
    /// The same source without credentials in its URL: a token given in a `--from` URL is
    /// used to read the repository, never recorded with the release or in the audit trail.
    pub fn without_credentials(self) -> Source {
        match self {
            Source::Git {
                url,
                reference,
                commit,
            } => Source::Git {
                url: without_credentials(&url),
                reference,
                commit,
            },
            Source::Svn { url, revision } => Source::Svn {
                url: without_credentials(&url),
                revision,
            },
            other => other,
        }
    }
}

/// The user information of a URL's authority, `user:TOKEN@` in
/// `https://user:TOKEN@host/repo`, if it has any.
fn credentials(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    Some(&authority[..=at])
}

/// `url` without the user information of its authority: `https://user:TOKEN@host/repo`
/// becomes `https://host/repo`.
pub fn without_credentials(url: &str) -> String {
    match credentials(url) {
        Some(userinfo) => url.replacen(userinfo, "", 1),
        None => url.to_owned(),
    }
}

/// `text` (a tool's message about `url`) with `url`'s credentials taken out wherever they
/// appear.
pub fn hide_credentials(text: &str, url: &str) -> String {
    match credentials(url) {
        Some(userinfo) => text.replace(userinfo, ""),
        None => text.to_owned(),
    }
}

/// Parses a `--from` argument.
pub fn parse_source_spec(spec: &str) -> CasResult<SourceSpec> {
    if let Some(rest) = spec.strip_prefix("git+") {
        let (url, reference) = rest.rsplit_once('#').ok_or_else(|| {
            CasError::Source(format!(
                "{spec:?} names no ref: write git+URL#REF with a tag, branch or commit"
            ))
        })?;
        if url.is_empty() || reference.is_empty() || reference.starts_with('-') {
            return Err(CasError::Source(format!(
                "{spec:?} is not git+URL#REF with a tag, branch or commit"
            )));
        }
        return Ok(SourceSpec::Git {
            url: url.to_owned(),
            reference: reference.to_owned(),
        });
    }
    if let Some(rest) = spec.strip_prefix("svn+") {
        let (url, revision) = rest.rsplit_once('@').ok_or_else(|| {
            CasError::Source(format!("{spec:?} names no revision: write svn+URL@REV"))
        })?;
        let revision = revision.parse::<u64>().map_err(|_| {
            CasError::Source(format!(
                "{spec:?}: the revision {revision:?} is not a number; write svn+URL@REV"
            ))
        })?;
        if url.is_empty() {
            return Err(CasError::Source(format!(
                "{spec:?} names no URL: write svn+URL@REV"
            )));
        }
        return Ok(SourceSpec::Svn {
            url: url.to_owned(),
            revision,
        });
    }
    if spec.is_empty() {
        return Err(CasError::Source(
            "--from is empty: give a directory, a tarball, git+URL#REF or svn+URL@REV".into(),
        ));
    }
    Ok(SourceSpec::Path(spec.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: &str, expected: Result<SourceSpec, &str>) {
        match (parse_source_spec(spec), expected) {
            (Ok(actual), Ok(expected)) => assert_eq!(actual, expected, "{spec}"),
            (Err(actual), Err(message)) => {
                assert!(actual.to_string().contains(message), "{spec}: {actual}")
            }
            (actual, expected) => panic!("{spec}: got {actual:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn credentials_are_never_kept_in_a_url() {
        for (url, kept) in [
            (
                "https://alice:s3cret@git.example.com/a.git",
                "https://git.example.com/a.git",
            ),
            (
                "https://TOKEN@git.example.com:8443/a.git",
                "https://git.example.com:8443/a.git",
            ),
            ("http://u:p@h", "http://h"),
            (
                "svn+ssh://deploy@svn.example.com/repo",
                "svn+ssh://svn.example.com/repo",
            ),
            (
                "https://h/path@with-at?x=a@b",
                "https://h/path@with-at?x=a@b",
            ),
            ("https://h/a.git", "https://h/a.git"),
            ("file:///srv/repo.git", "file:///srv/repo.git"),
            (
                "git@github.com:team/site.git",
                "git@github.com:team/site.git",
            ),
            ("https://a:b@c@h/r", "https://h/r"),
        ] {
            assert_eq!(without_credentials(url), kept, "{url}");
        }
        assert_eq!(
            hide_credentials(
                "fatal: unable to access 'https://alice:s3cret@h/a.git/': 403",
                "https://alice:s3cret@h/a.git"
            ),
            "fatal: unable to access 'https://h/a.git/': 403"
        );
        let git = Source::Git {
            url: "https://alice:s3cret@h/a.git".into(),
            reference: "v1".into(),
            commit: "c".into(),
        };
        assert_eq!(
            git.without_credentials(),
            Source::Git {
                url: "https://h/a.git".into(),
                reference: "v1".into(),
                commit: "c".into(),
            }
        );
    }

    #[test]
    fn specs() {
        check("./build", Ok(SourceSpec::Path("./build".into())));
        check("site.tar.zst", Ok(SourceSpec::Path("site.tar.zst".into())));
        check(
            "git+file:///srv/repo.git#v1.2",
            Ok(SourceSpec::Git {
                url: "file:///srv/repo.git".into(),
                reference: "v1.2".into(),
            }),
        );
        check(
            "git+https://host/a#b#main",
            Ok(SourceSpec::Git {
                url: "https://host/a#b".into(),
                reference: "main".into(),
            }),
        );
        check(
            "svn+file:///srv/svn/trunk@42",
            Ok(SourceSpec::Svn {
                url: "file:///srv/svn/trunk".into(),
                revision: 42,
            }),
        );
        check("git+file:///repo", Err("names no ref"));
        check("git+file:///repo#", Err("is not git+URL#REF"));
        check("git+#main", Err("is not git+URL#REF"));
        check(
            "git+file:///repo#--upload-pack=x",
            Err("is not git+URL#REF"),
        );
        check("svn+file:///repo", Err("names no revision"));
        check("svn+file:///repo@HEAD", Err("is not a number"));
        check("svn+@3", Err("names no URL"));
        check("", Err("--from is empty"));
    }

    #[test]
    fn sources_serialize_with_their_kind() {
        let source = Source::Svn {
            url: "file:///r".into(),
            revision: 7,
        };
        let json = serde_json::to_value(&source).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "svn", "url": "file:///r", "revision": 7})
        );
        assert_eq!(source.describe(), "svn file:///r@7");
        let captured = Source::Captured {
            target: "web-1".into(),
            user: "alice".into(),
        };
        assert_eq!(
            serde_json::to_value(&captured).unwrap(),
            serde_json::json!({"kind": "captured", "target": "web-1", "user": "alice"})
        );
        assert_eq!(captured.describe(), "captured from web-1 by alice");
    }
}
