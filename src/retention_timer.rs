//! The background half of retention: every second, a bounded `SCAN` step over
//! database 0 finds namespaces (`*.last_version` strings) and trims each one's
//! old changes (replicated as explicit `ZREM`s). Writes trim too.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use databroker_core::commands::retention::{trim, TRIM_BATCH};
use databroker_core::Keys;
use redis_module::{Context, ContextFlags, RedisValue};

use crate::env::current_env;
use crate::oldest_change;
use crate::redis_store::RedisStore;
use crate::stats;

/// How often the timer runs.
pub const PERIOD: Duration = Duration::from_millis(1000);
/// Keys one `SCAN` step looks at.
const SCAN_COUNT: &str = "200";
const SUFFIX: &[u8] = b".last_version";

static CURSOR: AtomicU64 = AtomicU64::new(0);

/// Starts the timer.
pub fn start(ctx: &Context) {
    ctx.create_timer(PERIOD, tick, ());
}

fn tick(ctx: &Context, _: ()) {
    let _ = catch_unwind(AssertUnwindSafe(|| step(ctx)));
    ctx.create_timer(PERIOD, tick, ());
}

fn step(ctx: &Context) {
    crate::memory_policy::watch(ctx);
    let flags = ctx.get_flags();
    if !flags.contains(ContextFlags::MASTER) || flags.contains(ContextFlags::LOADING) {
        return;
    }
    let env = current_env();
    if env.changes_ttl_ms == 0 {
        return;
    }
    let cursor = CURSOR.load(Ordering::Relaxed).to_string();
    let args: [&[u8]; 7] = [
        cursor.as_bytes(),
        b"MATCH",
        b"*.last_version",
        b"COUNT",
        SCAN_COUNT.as_bytes(),
        b"TYPE",
        b"string",
    ];
    let Ok(RedisValue::Array(parts)) = ctx.call("SCAN", &args[..]) else {
        return;
    };
    let next = match parts.first() {
        Some(RedisValue::BulkString(s)) | Some(RedisValue::SimpleString(s)) => {
            s.parse().unwrap_or(0)
        }
        Some(RedisValue::StringBuffer(b)) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    };
    CURSOR.store(next, Ordering::Relaxed);
    let Some(RedisValue::Array(keys)) = parts.get(1) else {
        return;
    };
    crate::epoch::bump();
    let mut store = RedisStore::new(ctx);
    for k in keys {
        let name: &[u8] = match k {
            RedisValue::StringBuffer(b) => b,
            RedisValue::BulkString(s) | RedisValue::SimpleString(s) => s.as_bytes(),
            _ => continue,
        };
        // Only valid namespaces (a lease named `x.last_version` is not one).
        if let Some(ns) = name
            .strip_suffix(SUFFIX)
            .filter(|ns| databroker_core::keys::check_namespace(ns).is_ok())
        {
            let hint = oldest_change::get(ctx, ns);
            let keys = Keys::new(ns);
            let t = trim(
                &mut store,
                &keys,
                env.now_us,
                env.changes_ttl_ms,
                TRIM_BATCH,
                hint,
            );
            oldest_change::set(ctx, ns, t.oldest_us);
            stats::TRIMMED.add(t.count as u64);
            crate::namespaces::trimmed(ctx, ns, t.count as u64);
        }
    }
}
