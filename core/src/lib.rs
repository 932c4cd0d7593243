//! Pure logic of redis-databroker, with no Redis FFI.
//!
//! The module crate (`databroker`, the cdylib) parses nothing and decides
//! nothing itself: it hands the raw arguments to [`commands`], which reads and
//! writes Redis keys through the [`store::Store`] seam and returns a
//! [`reply::Reply`]. Everything here is unit-tested against
//! [`memstore::MemoryStore`] without a server.

#![warn(missing_docs)]

pub mod args;
pub mod commands;
pub mod error;
pub mod filter;
pub mod keys;
pub mod memstore;
pub mod record;
pub mod reply;
pub mod store;

/// Protobuf messages of `proto/databroker.proto` (wire-compatible with Pomerium's).
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/databroker.rs"));
}

pub use error::{DbError, DbResult};
pub use keys::Keys;
pub use reply::Reply;
pub use store::Store;

/// The largest version a namespace may issue: versions are sorted-set scores,
/// exact as doubles up to 2^53.
pub const MAX_VERSION: u64 = 1 << 53;

/// Longest `type` or `id`, in bytes.
pub const MAX_NAME_LEN: usize = 1024;
