//! Retention (SPEC section 7): changes older than `changes-ttl-ms` are
//! trimmed from `<ns>.changes` in bounded batches, oldest version first, so
//! the retained history is always a contiguous run of the newest versions.

use crate::keys::Keys;
use crate::record::{decode, micros};
use crate::store::{Bound, KeyKind, Store};

/// Most changes one write or one timer tick trims per namespace.
pub const TRIM_BATCH: usize = 256;

/// The result of one trim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trimmed {
    /// Changes removed.
    pub count: usize,
    /// `modified_at` of the oldest change left, when known: nothing can be
    /// trimmed before it is older than the TTL, so the caller may pass it
    /// back as a hint and skip the reads until then.
    pub oldest_us: Option<i64>,
}

/// Trims up to `limit` changes whose `modified_at` is older than
/// `now_us - ttl_ms` (`ttl_ms = 0` keeps everything). Stops at the first
/// change that is young enough; changes that do not decode are trimmed too.
/// `oldest_hint` is a lower bound of the oldest change's `modified_at` from
/// an earlier trim:
/// while it is young enough, nothing is read.
pub fn trim(
    store: &mut impl Store,
    keys: &Keys,
    now_us: i64,
    ttl_ms: u64,
    limit: usize,
    oldest_hint: Option<i64>,
) -> Trimmed {
    if ttl_ms == 0 || limit == 0 {
        return Trimmed::default();
    }
    let cutoff =
        now_us.saturating_sub(i64::try_from(ttl_ms.saturating_mul(1000)).unwrap_or(i64::MAX));
    if oldest_hint.is_some_and(|t| t >= cutoff) {
        return Trimmed {
            count: 0,
            oldest_us: oldest_hint,
        };
    }
    let changes = keys.changes();
    if store.kind(changes) != KeyKind::ZSet {
        return Trimmed::default();
    }
    // Read a few at a time: usually the oldest change is young and one read ends it.
    let mut old: Vec<Vec<u8>> = Vec::new();
    let mut oldest_us = None;
    let mut window = 1usize;
    'scan: while old.len() < limit {
        let want = (old.len() + window).min(limit);
        let batch = store.zrange_from(changes, Bound::Incl(f64::NEG_INFINITY), want);
        let got = batch.len();
        for (member, _) in batch.into_iter().skip(old.len()) {
            // A change that does not decode can never be served (DB.SYNC would
            // answer CORRUPT); it must not hold back trimming forever either.
            let Ok(rec) = decode(&member, String::new) else {
                old.push(member);
                continue;
            };
            match rec.modified_at.as_ref().map(micros) {
                Some(t) if t < cutoff => old.push(member),
                t => {
                    oldest_us = t;
                    break 'scan;
                }
            }
        }
        if got < want {
            break;
        }
        window = (window * 4).min(limit);
    }
    if !old.is_empty() {
        let members: Vec<&[u8]> = old.iter().map(Vec::as_slice).collect();
        store.zrem(changes, &members);
    }
    Trimmed {
        count: old.len(),
        oldest_us,
    }
}
