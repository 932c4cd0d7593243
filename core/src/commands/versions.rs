//! `DB.VERSIONS <ns>` and `DB.TYPES <ns>`.

use super::{arity, expect_kind, state};
use crate::error::DbResult;
use crate::keys::Keys;
use crate::reply::Reply;
use crate::store::{Bound, KeyKind, Store};

/// The lowest version still in `<ns>.changes`, or `last_version + 1` when
/// none is retained.
pub fn earliest_retained(store: &mut impl Store, keys: &Keys, last_version: u64) -> DbResult<u64> {
    let changes = keys.changes();
    expect_kind(store, changes, KeyKind::ZSet)?;
    Ok(
        match store
            .zrange_from(changes, Bound::Incl(f64::NEG_INFINITY), 1)
            .first()
        {
            Some((_, score)) => *score as u64,
            None => last_version + 1,
        },
    )
}

/// Runs `DB.VERSIONS`: `[server_version, earliest_retained_version, last_version]`.
pub fn versions(store: &mut impl Store, args: &[&[u8]]) -> DbResult<Reply> {
    arity(args.len() == 1)?;
    let keys = Keys::new(args[0]);
    let st = state::read(store, &keys)?;
    let earliest = earliest_retained(store, &keys, st.last_version)?;
    Ok(Reply::Array(vec![
        Reply::uint(st.server_version_or_zero()),
        Reply::uint(earliest),
        Reply::uint(st.last_version),
    ]))
}

/// Runs `DB.TYPES`: the sorted members of `<ns>.record_types`.
pub fn types(store: &mut impl Store, args: &[&[u8]]) -> DbResult<Reply> {
    arity(args.len() == 1)?;
    let keys = Keys::new(args[0]);
    let key = keys.record_types();
    expect_kind(store, key, KeyKind::Set)?;
    let mut members = store.smembers(key);
    members.sort();
    Ok(Reply::Array(members.into_iter().map(Reply::Bulk).collect()))
}
