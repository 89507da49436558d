//! Applications and their immutable releases, with the blobs the releases reference.

use async_trait::async_trait;

use crate::*;
use ferry_domain::run_as::RunAs;

/// Applications and their immutable releases, with the blobs the releases reference.
#[async_trait]
pub trait Catalog: Send + Sync + 'static {
    /// Creates an application owned by a team.
    async fn create_app(&self, app: NewApp, audit: AuditRecord) -> StoreResult<App>;
    /// All applications, by name.
    async fn list_apps(&self) -> StoreResult<Vec<App>>;
    /// One application.
    async fn app(&self, name: &str) -> StoreResult<Option<App>>;
    /// Sets how many releases of an application retention keeps.
    async fn set_keep(&self, app: &str, keep: u32, audit: AuditRecord) -> StoreResult<()>;
    /// Sets the Unix user an application's commands run as on root agents' targets.
    async fn set_run_as(
        &self,
        app: &str,
        user: Option<&RunAs>,
        audit: AuditRecord,
    ) -> StoreResult<()>;
    /// Names the team that maintains an application (`None`: its owner).
    async fn set_maintainer(
        &self,
        app: &str,
        team: Option<&str>,
        audit: AuditRecord,
    ) -> StoreResult<()>;

    /// Creates a release and counts a reference to each of its blobs. The same version with
    /// the same digest is `Identical`; with another digest it is refused (releases are
    /// immutable).
    async fn create_release(
        &self,
        release: NewRelease,
        audit: AuditRecord,
    ) -> StoreResult<ReleaseOutcome>;
    /// An application's releases, newest first.
    async fn list_releases(&self, app: &str) -> StoreResult<Vec<Release>>;
    /// One release.
    async fn release(&self, app: &str, version: &str) -> StoreResult<Option<Release>>;
    /// Deletes releases of an application (retention), each with the blobs it referenced,
    /// whose reference counts drop; blobs no release references any more become garbage.
    async fn delete_releases(
        &self,
        app: &str,
        releases: Vec<(String, Vec<String>)>,
        audit: AuditRecord,
    ) -> StoreResult<()>;
    /// Whether any release references each blob, by hash: the blobs garbage collection
    /// must keep.
    async fn referenced_blobs(&self) -> StoreResult<std::collections::HashSet<String>>;
    /// Holds release content against garbage collection until the returned hold is
    /// dropped: `Shared` from checking a new release's blobs until it is committed,
    /// `Exclusive` while garbage collection runs. It waits for the holds that exclude it, on
    /// every server sharing the store.
    async fn hold_content(&self, hold: ContentHold) -> StoreResult<HeldContent>;
}
