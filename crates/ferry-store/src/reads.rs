//! Records of the reads that cover every application at once, so a page about all of them
//! (`status`) costs one query per kind of data, whatever the number of applications.

/// A release rolled back from an environment, with the application it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BadVersion {
    pub app: String,
    pub env: String,
    pub version: String,
}
