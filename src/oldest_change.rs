//! What retention learned about each namespace's oldest change (see
//! `Env::oldest_change_us`): a per-process hint that lets writes skip
//! retention's reads until the oldest change can expire. Main thread only;
//! a missing or stale hint only costs reads (it is a lower bound).
//!
//! Bounded: at most [`MAX_ENTRIES`] namespaces and [`MAX_BYTES`] of their
//! names (past either the map starts over; a namespace name longer than
//! [`MAX_NAME_BYTES`] gets no hint), and `FLUSHDB`/`FLUSHALL` drop the
//! hints of the flushed databases.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use redis_module::raw;
use redis_module::Context;

/// Namespaces remembered at most; past that the map starts over.
const MAX_ENTRIES: usize = 10_000;
/// Bytes of namespace names remembered at most; past that the map starts over.
pub const MAX_BYTES: usize = 1 << 20;
/// Longer namespace names get no hint (their writes read retention's keys).
const MAX_NAME_BYTES: usize = 4096;

thread_local! {
    /// Database -> namespace -> hint (looked up without copying the name).
    static OLDEST: RefCell<HashMap<i32, HashMap<Vec<u8>, i64>>> = RefCell::new(HashMap::new());
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn db(ctx: &Context) -> i32 {
    // SAFETY: valid ctx.
    unsafe { raw::RedisModule_GetSelectedDb.map_or(0, |f| f(ctx.ctx)) }
}

/// The hint for `ns` in the selected database.
pub fn get(ctx: &Context, ns: &[u8]) -> Option<i64> {
    if ns.len() > MAX_NAME_BYTES {
        return None;
    }
    let db = db(ctx);
    OLDEST.with(|m| m.borrow().get(&db).and_then(|n| n.get(ns)).copied())
}

/// Records (or forgets) the hint for `ns`.
pub fn set(ctx: &Context, ns: &[u8], oldest_us: Option<i64>) {
    if ns.len() > MAX_NAME_BYTES {
        return;
    }
    let db = db(ctx);
    OLDEST.with(|m| {
        let mut m = m.borrow_mut();
        match oldest_us {
            Some(t) => {
                if let Some(slot) = m.get_mut(&db).and_then(|n| n.get_mut(ns)) {
                    *slot = t;
                    return;
                }
                let entries: usize = m.values().map(HashMap::len).sum();
                if entries >= MAX_ENTRIES || BYTES.get() + ns.len() > MAX_BYTES {
                    m.clear();
                    m.shrink_to_fit();
                    BYTES.set(0);
                }
                BYTES.set(BYTES.get() + ns.len());
                m.entry(db).or_default().insert(ns.to_vec(), t);
            }
            None => {
                let Some(n) = m.get_mut(&db) else { return };
                if n.remove(ns).is_some() {
                    BYTES.set(BYTES.get().saturating_sub(ns.len()));
                }
                if n.is_empty() {
                    m.remove(&db);
                }
            }
        }
    });
}

/// Bytes of namespace names the hints hold now (for `INFO`).
pub fn bytes() -> usize {
    BYTES.get()
}

/// Drops the hints of database `dbnum` (-1: all databases): called on
/// `FLUSHDB`/`FLUSHALL` and, for both databases, `SWAPDB` (see `waiters`).
pub fn forget_db(dbnum: i32) {
    OLDEST.with(|m| {
        let mut m = m.borrow_mut();
        if dbnum < 0 {
            m.clear();
        } else {
            m.remove(&dbnum);
        }
        m.shrink_to_fit();
        BYTES.set(m.values().flat_map(|n| n.keys()).map(Vec::len).sum());
    });
}
