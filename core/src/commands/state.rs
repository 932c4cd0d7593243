//! A namespace's version counters: `server_version` and `last_version`.

use super::expect_kind;
use crate::error::{DbError, DbResult};
use crate::keys::Keys;
use crate::record::show;
use crate::store::{KeyKind, Store};
use crate::MAX_VERSION;

/// The version counters of a namespace as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsState {
    /// `<ns>.server_version`, or None before the first write.
    pub server_version: Option<u64>,
    /// `<ns>.last_version` (0 before the first write).
    pub last_version: u64,
}

impl NsState {
    /// The server version as clients see it: 0 for a namespace never written.
    pub fn server_version_or_zero(&self) -> u64 {
        self.server_version.unwrap_or(0)
    }
}

fn read_u64(store: &mut impl Store, key: &[u8]) -> DbResult<Option<u64>> {
    expect_kind(store, key, KeyKind::String)?;
    match store.get(key) {
        None => Ok(None),
        Some(v) => std::str::from_utf8(&v)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| DbError::corrupt(format!("{} does not hold a decimal u64", show(key)))),
    }
}

/// Reads (and type-checks) the counters.
pub fn read(store: &mut impl Store, keys: &Keys) -> DbResult<NsState> {
    let server_version = read_u64(store, keys.server_version())?;
    let last_version = read_u64(store, keys.last_version())?.unwrap_or(0);
    if last_version > MAX_VERSION {
        return Err(DbError::corrupt(format!(
            "{} holds {last_version}, beyond the largest version 2^53",
            show(keys.last_version())
        )));
    }
    Ok(NsState {
        server_version,
        last_version,
    })
}
