//! `DB.LEASE <ns> <name> <lease_id> <ttl_ms>` and `DB.RELEASE <ns> <name> <lease_id>`.

use super::txn::MARKER;
use super::{arity, expect_kind, refuse_growth, Env};
use crate::args::{parse_in_range, parse_token};
use crate::error::DbResult;
use crate::keys::Keys;
use crate::reply::Reply;
use crate::store::{KeyKind, Store};

/// The longest lease, in ms (about 285 years; keeps `now + ttl` far from overflow).
pub const MAX_TTL_MS: u64 = 1 << 53;

/// Runs `DB.LEASE`: 1 when `lease_id` holds the lease afterwards, else 0.
/// `ttl_ms = 0` gives up a lease held by `lease_id` (reply 0).
pub fn lease(store: &mut impl Store, env: Env, args: &[&[u8]]) -> DbResult<Reply> {
    arity(args.len() == 4)?;
    let keys = Keys::new(args[0]);
    let name = parse_token(args[1], "name")?;
    let lease_id = parse_token(args[2], "lease_id")?;
    let ttl = parse_in_range(args[3], "ttl_ms", 0, MAX_TTL_MS)?;
    let key = keys.lease(name);
    expect_kind(store, &key, KeyKind::String)?;
    let holder = store.get(&key);
    let ours = holder.as_deref() == Some(lease_id);
    if ttl == 0 {
        if ours {
            store.del(&key);
        }
        return Ok(Reply::Int(0));
    }
    if holder.is_some() && !ours {
        return Ok(Reply::Int(0));
    }
    if !ours {
        // Acquiring creates a key; renewing one's own lease does not grow memory.
        refuse_growth(&env)?;
    }
    let at_ms = env.now_us.div_euclid(1000) + ttl as i64;
    store.set_px_at(&key, lease_id, at_ms);
    if env.cluster && store.kind(keys.marker()) == KeyKind::Missing {
        store.set(keys.marker(), MARKER);
    }
    Ok(Reply::Int(1))
}

/// Runs `DB.RELEASE`: deletes the lease if `lease_id` holds it (1), else 0.
pub fn release(store: &mut impl Store, args: &[&[u8]]) -> DbResult<Reply> {
    arity(args.len() == 3)?;
    let keys = Keys::new(args[0]);
    let name = parse_token(args[1], "name")?;
    let lease_id = parse_token(args[2], "lease_id")?;
    let key = keys.lease(name);
    expect_kind(store, &key, KeyKind::String)?;
    if store.get(&key).as_deref() == Some(lease_id) {
        store.del(&key);
        return Ok(Reply::Int(1));
    }
    Ok(Reply::Int(0))
}
