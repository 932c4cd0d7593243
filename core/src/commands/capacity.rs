//! Capacity (SPEC section 6): which records of a type to evict so that at
//! most `capacity` live records remain, oldest first by `changes.<type>`
//! score, ties by id.

use std::collections::{BTreeMap, BTreeSet};

use prost_types::Any;

use super::txn::Txn;
use crate::error::DbResult;
use crate::keys::record_field;
use crate::pb::Options;
use crate::record::{self, show};
use crate::store::{Bound, Store};

/// Reads the capacity of `rtype` from `<ns>.options` (None = no limit).
pub fn read_options(
    store: &mut impl Store,
    options_key: &[u8],
    rtype: &str,
) -> DbResult<Option<Options>> {
    match store.hget(options_key, rtype.as_bytes()) {
        None => Ok(None),
        Some(bytes) => {
            record::decode_options(&bytes, || format!("{} field {}", show(options_key), rtype))
                .map(Some)
        }
    }
}

/// One member of the merged walk over `changes.<type>`.
enum Next<'a> {
    /// A record put by this command (its data is known).
    New(&'a str, &'a Any),
    /// A member already in the sorted set.
    Old(Vec<u8>),
}

/// Plans evictions of `rtype` into `txn`: `fresh` are the ids this command
/// puts (with their data), all scored `score`; `deleted` are ids this
/// command deletes (and does not put again). Members without a live record
/// are dropped on the way without counting. Reads only; fails with
/// `CORRUPT` when a record to evict does not decode.
pub fn enforce(
    store: &mut impl Store,
    txn: &mut Txn<'_>,
    rtype: &str,
    capacity: u64,
    fresh: &BTreeMap<&str, &Any>,
    deleted: &BTreeSet<&str>,
    score: f64,
) -> DbResult<()> {
    let keys = txn.keys().clone();
    let zkey = keys.type_changes(rtype.as_bytes());
    let mut total = store.zcard(&zkey);
    for id in fresh.keys() {
        if store.zscore(&zkey, id.as_bytes()).is_none() {
            total += 1;
        }
    }
    for id in deleted {
        if store.zscore(&zkey, id.as_bytes()).is_some() {
            total = total.saturating_sub(1);
        }
    }
    if total <= capacity {
        return Ok(());
    }
    let mut window = (total - capacity) as usize + 8;
    loop {
        let old = store.zrange_from(&zkey, Bound::Incl(f64::NEG_INFINITY), window);
        let exhausted = old.len() < window;
        let old: Vec<(Vec<u8>, f64)> = old
            .into_iter()
            .filter(|(m, _)| !is_fresh(fresh, m) && !is_deleted(deleted, m))
            .collect();
        let mut plan: Vec<Next<'_>> = Vec::new();
        let (mut oi, mut fi) = (0, fresh.iter().peekable());
        let mut count = total;
        let mut complete = false;
        while count > capacity {
            let take_old = match (old.get(oi), fi.peek()) {
                (Some((m, s)), Some((id, _))) => (*s, m.as_slice()) < (score, id.as_bytes()),
                (Some(_), None) => true,
                (None, Some(_)) if !exhausted => break, // unread members may come first
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if take_old {
                plan.push(Next::Old(old[oi].0.clone()));
                oi += 1;
            } else if let Some((id, any)) = fi.next() {
                plan.push(Next::New(id, any));
            }
            count -= 1;
            complete = count <= capacity;
        }
        if !complete && !exhausted && total > capacity {
            window *= 2;
            continue;
        }
        for next in plan {
            match next {
                Next::New(id, any) => {
                    txn.evict(rtype, id, Some(any.clone()));
                }
                Next::Old(member) => evict_old(store, txn, rtype, &member)?,
            }
        }
        return Ok(());
    }
}

fn is_deleted(deleted: &BTreeSet<&str>, member: &[u8]) -> bool {
    std::str::from_utf8(member).is_ok_and(|m| deleted.contains(m))
}

fn is_fresh(fresh: &BTreeMap<&str, &Any>, member: &[u8]) -> bool {
    std::str::from_utf8(member).is_ok_and(|m| fresh.contains_key(m))
}

/// Evicts an existing member: a tombstone when it has a live record, else
/// just drops the stale member.
fn evict_old(
    store: &mut impl Store,
    txn: &mut Txn<'_>,
    rtype: &str,
    member: &[u8],
) -> DbResult<()> {
    let Ok(id) = std::str::from_utf8(member) else {
        txn.drop_member(rtype, member);
        return Ok(());
    };
    let records = txn.keys().records();
    let field = record_field(rtype, id);
    match store.hget(records, &field) {
        Some(bytes) => {
            let rec = record::decode(&bytes, || {
                format!("{} field {}", show(records), show(&field))
            })?;
            if rec.r#type == rtype && rec.id == id {
                txn.evict(rtype, id, rec.data);
            } else {
                txn.drop_member(rtype, member);
            }
        }
        None => txn.drop_member(rtype, member),
    }
    Ok(())
}
