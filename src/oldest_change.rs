//! What retention learned about each namespace's oldest change (see
//! `Env::oldest_change_us`): a per-process hint that lets writes skip
//! retention's reads until the oldest change can expire. Main thread only;
//! a missing or stale hint only costs reads (it is a lower bound).

use std::cell::RefCell;
use std::collections::HashMap;

use redis_module::{raw, Context};

/// Namespaces remembered at most; past that the map starts over.
const MAX_ENTRIES: usize = 10_000;

thread_local! {
    static OLDEST: RefCell<HashMap<(i32, Vec<u8>), i64>> = RefCell::new(HashMap::new());
}

fn db(ctx: &Context) -> i32 {
    // SAFETY: valid ctx.
    unsafe { raw::RedisModule_GetSelectedDb.map_or(0, |f| f(ctx.ctx)) }
}

/// The hint for `ns` in the selected database.
pub fn get(ctx: &Context, ns: &[u8]) -> Option<i64> {
    let key = (db(ctx), ns.to_vec());
    OLDEST.with(|m| m.borrow().get(&key).copied())
}

/// Records (or forgets) the hint for `ns`.
pub fn set(ctx: &Context, ns: &[u8], oldest_us: Option<i64>) {
    let key = (db(ctx), ns.to_vec());
    OLDEST.with(|m| {
        let mut m = m.borrow_mut();
        match oldest_us {
            Some(t) => {
                if m.len() >= MAX_ENTRIES && !m.contains_key(&key) {
                    m.clear();
                }
                m.insert(key, t);
            }
            None => {
                m.remove(&key);
            }
        }
    });
}
