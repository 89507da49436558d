//! ferry's content store: releases as manifests of content-addressed (BLAKE3) blobs, large
//! files split by content-defined chunking (FastCDC), blobs written durably, ingestion from
//! directories, tarballs, git and svn, diff and export.
//!
//! Architecture invariant: no HTTP here. The server and the client move blobs; this crate
//! says what they are and where they go on disk.

pub mod blobs;
pub mod chunking;
pub mod diff;
pub mod error;
pub mod export;
pub mod frames;
pub mod glob;
pub mod hash;
pub mod http_url;
pub mod ingest;
pub mod manifest;
pub mod release_config;
pub mod scan;
pub mod source;
pub mod upload;

pub use error::{CasError, CasResult};
