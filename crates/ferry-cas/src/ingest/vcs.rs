//! Exporting a tree from git or Subversion into a directory, with the real `git` and `svn` programs.

use std::io::Read;
use std::path::{Component, Path};
use std::process::{Command, Output, Stdio};

use crate::error::{CasError, CasResult};
use crate::source::{hide_credentials, without_credentials, Source};

const GIT_MISSING: &str = "git is not installed: install git to create releases from git";
const SVN_MISSING: &str = "svn is not installed: install subversion to create releases from svn";

/// Variables that would point git at another repository than our temporary one, as they are
/// when ferry runs inside a git hook.
const GIT_REPOSITORY_VARIABLES: &[&str] = &[
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
];

/// Attributes that override the repository's own `.gitattributes`, so `git archive` writes the
/// committed tree byte for byte: no `export-ignore`d files dropped, no `export-subst` or
/// `ident` rewriting, no end-of-line conversion, no smudge filters.
const EXACT_TREE_ATTRIBUTES: &str =
    "* -export-ignore -export-subst -text -eol -filter -ident -working-tree-encoding\n";

/// Exports the tree of `reference` (tag, branch or commit) of the git repository at `url` into `dest`, an existing empty directory, and returns the source with the full commit id.
pub fn export_git(url: &str, reference: &str, dest: &Path) -> CasResult<Source> {
    if reference.is_empty() || reference.starts_with('-') {
        return Err(CasError::Source(format!(
            "git ref {reference:?} is not a tag, branch or commit"
        )));
    }
    let repo = tempfile::TempDir::new().map_err(|e| CasError::io(&std::env::temp_dir(), e))?;
    init_bare_repository(repo.path())?;
    fetch_everything(repo.path(), url)?;
    let commit = resolve_commit(repo.path(), url, reference)?;
    archive_into(repo.path(), &commit, dest)?;
    Ok(Source::Git {
        url: without_credentials(url),
        reference: reference.to_owned(),
        commit,
    })
}

/// Exports revision `revision` of the Subversion URL `url` into `dest`, an existing empty directory, and returns the source.
pub fn export_svn(url: &str, revision: u64, dest: &Path) -> CasResult<Source> {
    // The peg revision names the path as it was at `revision`, even if it moved or was
    // deleted since.
    let pegged_url = format!("{url}@{revision}");
    // Checked first so a bad URL or revision writes nothing into `dest`.
    let info = run(
        svn()
            .args(["info", "--show-item", "revision", "--"])
            .arg(&pegged_url),
        SVN_MISSING,
    )?;
    if !info.status.success() {
        return Err(svn_error(url, revision, &info.stderr));
    }
    // A trailing '@' stops svn from reading an '@' in `dest` as a peg revision.
    let mut dest_argument = dest.as_os_str().to_owned();
    dest_argument.push("@");
    // Externals are left out: they name other repositories, often at their newest revision,
    // so `url@revision` would no longer say what the release holds.
    let export = run(
        svn()
            .args(["export", "--quiet", "--force", "--ignore-externals", "--"])
            .arg(&pegged_url)
            .arg(dest_argument),
        SVN_MISSING,
    )?;
    if !export.status.success() {
        return Err(svn_error(url, revision, &export.stderr));
    }
    Ok(Source::Svn {
        url: without_credentials(url),
        revision,
    })
}

/// `git` working on the repository at `repo`, never asking anything on the terminal.
fn git(repo: &Path) -> Command {
    let mut command = Command::new("git");
    for variable in GIT_REPOSITORY_VARIABLES {
        command.env_remove(variable);
    }
    command
        .env("GIT_DIR", repo)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    command
}

/// `svn` that fails instead of asking for credentials or certificates.
fn svn() -> Command {
    let mut command = Command::new("svn");
    command.arg("--non-interactive");
    command
}

/// Runs `command` to completion with its output captured; a missing program is a `Source`
/// error saying `missing`.
fn run(command: &mut Command, missing: &str) -> CasResult<Output> {
    command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(command, e, missing))
}

fn spawn_error(command: &Command, error: std::io::Error, missing: &str) -> CasError {
    if error.kind() == std::io::ErrorKind::NotFound {
        return CasError::Source(missing.to_owned());
    }
    CasError::Io {
        context: format!("running {}", command.get_program().to_string_lossy()),
        source: error,
    }
}

/// The first non-empty line a program wrote to stderr: the one that says what went wrong.
fn first_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().map(str::trim).find(|line| !line.is_empty());
    line.unwrap_or("no error message").to_owned()
}

fn init_bare_repository(repo: &Path) -> CasResult<()> {
    let output = run(git(repo).args(["init", "--bare", "-q"]), GIT_MISSING)?;
    if !output.status.success() {
        return Err(CasError::Source(format!(
            "git cannot create a repository in {}: {}",
            repo.display(),
            first_line(&output.stderr)
        )));
    }
    // info/attributes takes precedence over the attributes committed in the tree.
    let info = repo.join("info");
    std::fs::create_dir_all(&info).map_err(|e| CasError::io(&info, e))?;
    let attributes = info.join("attributes");
    std::fs::write(&attributes, EXACT_TREE_ATTRIBUTES).map_err(|e| CasError::io(&attributes, e))
}

/// Fetches every branch and tag: a shallow fetch cannot ask for an arbitrary commit id.
fn fetch_everything(repo: &Path, url: &str) -> CasResult<()> {
    let output = run(
        git(repo)
            .args(["fetch", "--quiet", "--no-tags", "--", url])
            .args([
                "+refs/heads/*:refs/remotes/src/*",
                "+refs/tags/*:refs/tags/*",
            ]),
        GIT_MISSING,
    )?;
    if !output.status.success() {
        return Err(CasError::Source(format!(
            "cannot read the git repository {}: {}",
            without_credentials(url),
            hide_credentials(&first_line(&output.stderr), url)
        )));
    }
    Ok(())
}

/// The full id of the commit `reference` names, taken as it is (a commit id, full or
/// abbreviated), then as a tag, then as a branch.
fn resolve_commit(repo: &Path, url: &str, reference: &str) -> CasResult<String> {
    let candidates = [
        reference.to_owned(),
        format!("refs/tags/{reference}"),
        format!("refs/remotes/src/{reference}"),
    ];
    for candidate in candidates {
        let output = run(
            git(repo)
                .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
                .arg(format!("{candidate}^{{commit}}")),
            GIT_MISSING,
        )?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned());
        }
    }
    Err(CasError::Source(format!(
        "git ref {reference:?} does not exist in {}: give a tag, branch or commit that does",
        without_credentials(url)
    )))
}

/// Writes the tree of `commit` into `dest` through `git archive`, which keeps symlinks and
/// the executable bit and, unlike a checkout, leaves no `.git` behind.
fn archive_into(repo: &Path, commit: &str, dest: &Path) -> CasResult<()> {
    // tar.umask=022 gives the usual 644/755 modes instead of git's group-writable default.
    let mut command = git(repo);
    command
        .args([
            "-c",
            "tar.umask=022",
            "archive",
            "--format=tar",
            "--end-of-options",
        ])
        .arg(commit)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| spawn_error(&command, e, GIT_MISSING))?;
    let tar_stream = child.stdout.take().expect("stdout is piped");
    // Unpacking first drains stdout; dropping it on failure stops git with a broken pipe.
    unpack_git_archive(tar_stream, dest)?;
    let output = child
        .wait_with_output()
        .map_err(|e| spawn_error(&command, e, GIT_MISSING))?;
    if !output.status.success() {
        return Err(CasError::Source(format!(
            "git cannot export commit {commit}: {}",
            first_line(&output.stderr)
        )));
    }
    Ok(())
}

/// Unpacks the tar stream of `git archive` into `dest`. Entries come from a repository we
/// do not control, so a `.git` entry (which git only stores if hand-crafted) is refused; the
/// tar crate already skips `..` and refuses to write through symlinks out of `dest`.
fn unpack_git_archive(tar_stream: impl Read, dest: &Path) -> CasResult<()> {
    let mut archive = tar::Archive::new(tar_stream);
    let entries = archive.entries().map_err(|e| CasError::io(dest, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| CasError::io(dest, e))?;
        let path = entry
            .path()
            .map_err(|e| CasError::io(dest, e))?
            .into_owned();
        if is_inside_dot_git(&path) {
            return Err(CasError::rejected(
                path.display().to_string(),
                "a .git entry cannot be part of a release",
            ));
        }
        entry.unpack_in(dest).map_err(|e| CasError::io(dest, e))?;
    }
    Ok(())
}

/// Whether any component of `path` is `.git`, in any case (case-insensitive file systems
/// treat `.GIT` as `.git`).
fn is_inside_dot_git(path: &Path) -> bool {
    path.components().any(|component| match component {
        Component::Normal(name) => name.eq_ignore_ascii_case(".git"),
        _ => false,
    })
}

/// The error for a failed `svn info` or `svn export`: E160006 is svn's "No such revision".
fn svn_error(url: &str, revision: u64, stderr: &[u8]) -> CasError {
    let message = String::from_utf8_lossy(stderr);
    let shown = without_credentials(url);
    if message.contains("E160006") || message.contains("No such revision") {
        return CasError::Source(format!("svn revision {revision} does not exist in {shown}"));
    }
    CasError::Source(format!(
        "cannot read the svn path {shown} at revision {revision}: {}",
        hide_credentials(&first_line(stderr), url)
    ))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use tempfile::TempDir;

    use super::*;

    /// Runs `program` with `args` in `dir`, panicking with its stderr if it fails.
    fn run_ok(dir: &Path, program: &str, args: &[&str]) -> String {
        let output = Command::new(program)
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{program} {args:?}: {stderr}");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Runs git in the working tree `dir` as a fixed, unsigned committer.
    fn git_in(dir: &Path, args: &[&str]) -> String {
        let identity = [
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
        ];
        run_ok(dir, "git", &[&identity[..], args].concat())
    }

    fn write(path: &Path, contents: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    fn is_executable(path: &Path) -> bool {
        fs::metadata(path).unwrap().permissions().mode() & 0o111 != 0
    }

    fn make_executable(path: &Path) {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn file_url(path: &Path) -> String {
        format!("file://{}", path.display())
    }

    /// A git repository: commit `first` (tagged `v1`) holds a file, an executable script, a
    /// symlink, a nested directory and attributes git archive would otherwise apply; commit
    /// `second` on branch `main` changes the file.
    struct GitRepo {
        _dir: TempDir,
        url: String,
        first: String,
        second: String,
    }

    fn git_repo() -> GitRepo {
        let dir = TempDir::new().unwrap();
        let work = dir.path().join("work");
        run_ok(dir.path(), "git", &["init", "-q", "-b", "main", "work"]);
        write(&work.join("README"), "first\n");
        write(&work.join("bin/run.sh"), "#!/bin/sh\n");
        make_executable(&work.join("bin/run.sh"));
        std::os::unix::fs::symlink("README", work.join("link")).unwrap();
        write(&work.join("docs/guide/index.txt"), "guide\n");
        write(&work.join("ignored.txt"), "kept\n");
        write(&work.join("crlf.txt"), "line\n");
        write(
            &work.join(".gitattributes"),
            "ignored.txt export-ignore\ncrlf.txt eol=crlf\n",
        );
        git_in(&work, &["add", "."]);
        git_in(&work, &["commit", "-q", "-m", "first"]);
        git_in(&work, &["tag", "v1"]);
        write(&work.join("README"), "second\n");
        git_in(&work, &["commit", "-q", "-a", "-m", "second"]);
        GitRepo {
            url: file_url(&work),
            first: git_in(&work, &["rev-parse", "v1"]),
            second: git_in(&work, &["rev-parse", "main"]),
            _dir: dir,
        }
    }

    /// Exports `reference` of `url` into a new directory, returning both.
    fn export_git_ref(url: &str, reference: &str) -> (TempDir, CasResult<Source>) {
        let dest = TempDir::new().unwrap();
        let source = export_git(url, reference, dest.path());
        (dest, source)
    }

    fn git_source(repo: &GitRepo, reference: &str, commit: &str) -> Source {
        Source::Git {
            url: repo.url.clone(),
            reference: reference.to_owned(),
            commit: commit.to_owned(),
        }
    }

    fn assert_bad_input(result: CasResult<Source>, expected: &str) {
        let error = result.expect_err("the export should fail");
        assert!(error.is_bad_input(), "{error:?}");
        assert!(matches!(error, CasError::Source(_)), "{error:?}");
        assert!(error.to_string().contains(expected), "{error}");
    }

    #[test]
    fn git_export_by_tag_gives_the_tagged_commit() {
        let repo = git_repo();
        let (dest, source) = export_git_ref(&repo.url, "v1");
        assert_eq!(source.unwrap(), git_source(&repo, "v1", &repo.first));
        assert_eq!(repo.first.len(), 40);
        assert_eq!(read(&dest.path().join("README")), "first\n");
    }

    #[test]
    fn git_export_by_branch_gives_its_newest_commit() {
        let repo = git_repo();
        let (dest, source) = export_git_ref(&repo.url, "main");
        assert_eq!(source.unwrap(), git_source(&repo, "main", &repo.second));
        assert_eq!(read(&dest.path().join("README")), "second\n");
    }

    #[test]
    fn git_export_by_abbreviated_commit_records_the_full_id() {
        let repo = git_repo();
        let (dest, source) = export_git_ref(&repo.url, &repo.first[..7]);
        assert_eq!(
            source.unwrap(),
            git_source(&repo, &repo.first[..7], &repo.first)
        );
        assert_eq!(read(&dest.path().join("README")), "first\n");
    }

    #[test]
    fn git_export_keeps_modes_symlinks_and_directories_but_no_dot_git() {
        let repo = git_repo();
        let (dest, source) = export_git_ref(&repo.url, "main");
        source.unwrap();
        let dest = dest.path();
        assert!(is_executable(&dest.join("bin/run.sh")));
        assert!(!is_executable(&dest.join("README")));
        assert_eq!(
            fs::read_link(dest.join("link")).unwrap(),
            Path::new("README")
        );
        assert_eq!(read(&dest.join("docs/guide/index.txt")), "guide\n");
        assert!(!dest.join(".git").exists());
    }

    #[test]
    fn git_export_is_the_committed_tree_whatever_the_attributes_say() {
        let repo = git_repo();
        let (dest, source) = export_git_ref(&repo.url, "main");
        source.unwrap();
        assert_eq!(read(&dest.path().join("ignored.txt")), "kept\n");
        assert_eq!(read(&dest.path().join("crlf.txt")), "line\n");
    }

    #[test]
    fn git_missing_ref_does_not_exist() {
        let repo = git_repo();
        assert_bad_input(export_git_ref(&repo.url, "v9").1, "does not exist");
    }

    #[test]
    fn git_reference_like_an_option_is_refused() {
        let repo = git_repo();
        assert_bad_input(export_git_ref(&repo.url, "--output=x").1, "is not a tag");
    }

    #[test]
    fn git_url_that_is_not_a_repository_cannot_be_read() {
        let not_a_repo = TempDir::new().unwrap();
        let url = file_url(not_a_repo.path());
        assert_bad_input(
            export_git_ref(&url, "main").1,
            "cannot read the git repository",
        );
    }

    #[test]
    fn a_missing_program_says_what_to_install() {
        let error = run(&mut Command::new("ferry-no-such-program"), GIT_MISSING).unwrap_err();
        assert!(error.is_bad_input(), "{error:?}");
        assert_eq!(error.to_string(), GIT_MISSING);
    }

    #[test]
    fn dot_git_in_any_case_is_recognised() {
        assert!(is_inside_dot_git(Path::new(".git/config")));
        assert!(is_inside_dot_git(Path::new("a/.GIT")));
        assert!(!is_inside_dot_git(Path::new("a/.gitignore")));
    }

    /// A Subversion repository: revision 1 imports `trunk` with a file and a plain script;
    /// revision 2 changes the file, makes the script executable and adds a symlink.
    struct SvnRepo {
        dir: TempDir,
        trunk: String,
    }

    fn svn_repo() -> SvnRepo {
        let dir = TempDir::new().unwrap();
        let root = dir.path();
        run_ok(root, "svnadmin", &["create", "repo"]);
        let trunk = format!("{}/trunk", file_url(&root.join("repo")));
        write(&root.join("import/a.txt"), "one\n");
        write(&root.join("import/bin/run.sh"), "#!/bin/sh\n");
        run_ok(
            root,
            "svn",
            &[
                "import",
                "-q",
                "--non-interactive",
                "-m",
                "one",
                "import",
                &trunk,
            ],
        );
        run_ok(
            root,
            "svn",
            &["checkout", "-q", "--non-interactive", &trunk, "wc"],
        );
        let wc = root.join("wc");
        write(&wc.join("a.txt"), "two\n");
        run_ok(
            &wc,
            "svn",
            &["propset", "-q", "svn:executable", "*", "bin/run.sh"],
        );
        std::os::unix::fs::symlink("a.txt", wc.join("link")).unwrap();
        run_ok(&wc, "svn", &["add", "-q", "link"]);
        run_ok(
            &wc,
            "svn",
            &["commit", "-q", "--non-interactive", "-m", "two"],
        );
        SvnRepo { dir, trunk }
    }

    fn export_svn_revision(url: &str, revision: u64) -> (TempDir, CasResult<Source>) {
        let dest = TempDir::new().unwrap();
        let source = export_svn(url, revision, dest.path());
        (dest, source)
    }

    #[test]
    fn svn_export_gives_each_revision() {
        let repo = svn_repo();
        let (first, source) = export_svn_revision(&repo.trunk, 1);
        assert_eq!(
            source.unwrap(),
            Source::Svn {
                url: repo.trunk.clone(),
                revision: 1
            }
        );
        assert_eq!(read(&first.path().join("a.txt")), "one\n");
        assert!(!is_executable(&first.path().join("bin/run.sh")));
        assert!(!first.path().join("link").exists());

        let (second, source) = export_svn_revision(&repo.trunk, 2);
        assert_eq!(
            source.unwrap(),
            Source::Svn {
                url: repo.trunk.clone(),
                revision: 2
            }
        );
        assert_eq!(read(&second.path().join("a.txt")), "two\n");
        assert!(is_executable(&second.path().join("bin/run.sh")));
        assert_eq!(
            fs::read_link(second.path().join("link")).unwrap(),
            Path::new("a.txt")
        );
        assert!(!second.path().join(".svn").exists());
    }

    #[test]
    fn svn_export_into_a_directory_with_an_at_sign() {
        let repo = svn_repo();
        let dest = repo.dir.path().join("out@2");
        fs::create_dir(&dest).unwrap();
        export_svn(&repo.trunk, 2, &dest).unwrap();
        assert_eq!(read(&dest.join("a.txt")), "two\n");
    }

    #[test]
    fn svn_missing_revision_does_not_exist() {
        let repo = svn_repo();
        let (_, source) = export_svn_revision(&repo.trunk, 99);
        assert_bad_input(source, "svn revision 99 does not exist");
    }

    #[test]
    fn svn_missing_path_cannot_be_read() {
        let repo = svn_repo();
        let missing = repo.trunk.replace("/trunk", "/branches/nope");
        let (_, source) = export_svn_revision(&missing, 1);
        assert_bad_input(source, "cannot read the svn path");
    }
}
