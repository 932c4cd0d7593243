//! The module refuses to write while the server may evict keys: eviction
//! deletes single keys of a namespace (its version counter, its changes, a
//! lease), after which the namespace would re-issue versions, lose records
//! without tombstones or give a lease a second holder. Writes are refused
//! with `MISCONF` while `maxmemory` is set with a policy other than
//! `noeviction` (checked per write from the context flags, so a later
//! `CONFIG SET` is caught); the state is logged when it changes and shown
//! in `INFO databroker`. There is no opt-out.

use std::sync::atomic::{AtomicBool, Ordering};

use databroker_core::DbError;
use redis_module::{Context, ContextFlags, RedisValue};

use crate::counter::Counter;

/// Whether the last look found an evicting policy.
static EVICTING: AtomicBool = AtomicBool::new(false);

/// Writes refused because the server may evict keys.
pub static REFUSED: Counter = Counter::new();

/// True while the server may evict keys.
pub fn evicting_now(ctx: &Context) -> bool {
    ctx.get_flags().contains(ContextFlags::EVICTED)
}

/// Last seen state, for INFO.
pub fn evicting_seen() -> bool {
    EVICTING.load(Ordering::Relaxed)
}

fn policy(ctx: &Context) -> String {
    match ctx.call("CONFIG", &["GET", "maxmemory-policy"][..]) {
        Ok(RedisValue::Array(v)) => match v.get(1) {
            Some(RedisValue::SimpleString(s)) | Some(RedisValue::BulkString(s)) => s.clone(),
            Some(RedisValue::StringBuffer(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => "an evicting policy".into(),
        },
        _ => "an evicting policy".into(),
    }
}

fn explain(ctx: &Context) -> String {
    format!(
        "databroker refuses writes while maxmemory-policy is {} with maxmemory set: \
         eviction would delete single keys of a namespace and its followers and lease \
         holders would get wrong answers; run CONFIG SET maxmemory-policy noeviction",
        policy(ctx)
    )
}

/// The refusal for a write command, when the server may evict keys.
pub fn refuse_write(ctx: &Context, flags: &ContextFlags) -> Option<DbError> {
    if !flags.contains(ContextFlags::EVICTED) {
        return None;
    }
    REFUSED.add(1);
    Some(DbError::Misconf(explain(ctx)))
}

/// Logs a warning when the state changed since the last look (called at
/// load and by the once-a-second timer).
pub fn watch(ctx: &Context) {
    let now = evicting_now(ctx);
    if EVICTING.swap(now, Ordering::Relaxed) == now {
        return;
    }
    if now {
        crate::log::warning(&format!("databroker: {}", explain(ctx)));
    } else {
        crate::log::warning(
            "databroker: maxmemory-policy no longer evicts: writes are accepted again",
        );
    }
}
