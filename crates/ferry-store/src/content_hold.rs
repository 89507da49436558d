//! Holding release content against garbage collection, across every server sharing a
//! store: a release is created from blobs checked to exist, and garbage collection must not
//! delete one of them between the check and the commit that references it.

/// How content is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentHold {
    /// While a release is created: any number at once.
    Shared,
    /// While garbage collection decides what to delete and deletes it: alone.
    Exclusive,
}

/// A hold on content, released when dropped.
pub struct HeldContent {
    _guard: Box<dyn Send + Sync>,
}

impl HeldContent {
    /// A hold the backend releases when `guard` is dropped.
    pub fn new(guard: impl Send + Sync + 'static) -> HeldContent {
        HeldContent {
            _guard: Box::new(guard),
        }
    }
}
