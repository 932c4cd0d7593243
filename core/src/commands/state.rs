//! A namespace's version counters (`server_version`, `last_version`) and the
//! cheap consistency checks every command that reads them makes: a
//! namespace that lost a key (eviction, `DEL` by hand, a partial restore)
//! answers `CORRUPT` naming the key, never a made-up answer, and a write
//! never re-issues a version that `<ns>.changes` already holds.

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

/// A counter key: None when missing, `CORRUPT` unless it holds a decimal u64.
pub(crate) fn read_u64(store: &mut impl Store, key: &[u8]) -> DbResult<Option<u64>> {
    expect_kind(store, key, KeyKind::String)?;
    let mut value = None;
    if !store.get_with(key, &mut |v| {
        value = std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<u64>().ok());
    }) {
        return Ok(None);
    }
    value
        .map(Some)
        .ok_or_else(|| DbError::corrupt(format!("{} does not hold a decimal u64", show(key))))
}

/// The `CORRUPT` error for a namespace whose keys disagree.
pub fn inconsistent(keys: &Keys, what: String) -> DbError {
    DbError::corrupt(format!(
        "{what}: the namespace lost data (eviction, a key deleted by hand or a partial restore); \
         run DB.CHECK {} and see the README's \"Running it in production\"",
        show(keys.ns())
    ))
}

/// Reads (and type-checks) the counters, and checks them against the newest
/// change: `<ns>.changes`, when not empty, must end exactly at
/// `last_version`, and `server_version` must exist once versions were issued.
pub fn read(store: &mut impl Store, keys: &Keys) -> DbResult<NsState> {
    let server_version = read_u64(store, keys.server_version())?;
    let last_version = read_u64(store, keys.last_version())?.unwrap_or(0);
    if last_version > MAX_VERSION {
        return Err(DbError::corrupt(format!(
            "{} holds {last_version}, beyond the largest version 2^53",
            show(keys.last_version())
        )));
    }
    let changes = keys.changes();
    expect_kind(store, changes, KeyKind::ZSet)?;
    let mut newest_change = None;
    store.zlast_with(changes, &mut |_, score| newest_change = Some(score));
    match newest_change {
        Some(newest) if newest > last_version as f64 => {
            return Err(inconsistent(
                keys,
                if last_version == 0 {
                    format!(
                        "{} is missing while {} holds versions up to {newest}",
                        show(keys.last_version()),
                        show(changes)
                    )
                } else {
                    format!(
                        "{} holds {last_version} but {} already holds version {newest} \
                         (new writes would re-issue versions)",
                        show(keys.last_version()),
                        show(changes)
                    )
                },
            ));
        }
        Some(newest) if newest < last_version as f64 => {
            return Err(inconsistent(
                keys,
                format!(
                    "{} ends at version {newest} but {} is {last_version} (its newest changes are gone)",
                    show(changes),
                    show(keys.last_version())
                ),
            ));
        }
        Some(_) => {}
        None if last_version == 0 && store.kind(keys.records()) == KeyKind::Hash => {
            return Err(inconsistent(
                keys,
                format!(
                    "{} is missing while {} holds records",
                    show(keys.last_version()),
                    show(keys.records())
                ),
            ));
        }
        None => {}
    }
    if last_version > 0 && server_version.is_none() {
        return Err(inconsistent(
            keys,
            format!(
                "{} is missing while {} is {last_version}",
                show(keys.server_version()),
                show(keys.last_version())
            ),
        ));
    }
    Ok(NsState {
        server_version,
        last_version,
    })
}
