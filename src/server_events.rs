//! `FLUSHDB`/`FLUSHALL` (after the flush, also a replica's full resync) and
//! `SWAPDB`: waiting followers of the affected databases are woken, and the
//! per-namespace registries forget them.

use std::os::raw::c_void;
use std::panic::catch_unwind;

use redis_module::raw::{self, RedisModuleCtx};
use redis_module::Context;

use crate::{namespaces, oldest_change, waiters};

/// Server-event callback for FLUSHDB/FLUSHALL (after the flush) and SWAPDB.
unsafe extern "C" fn on_server_event(
    ctx: *mut RedisModuleCtx,
    eid: raw::RedisModuleEvent,
    subevent: u64,
    data: *mut c_void,
) {
    let _ = catch_unwind(|| {
        if data.is_null() {
            return;
        }
        if eid.id == raw::REDISMODULE_EVENT_FLUSHDB {
            if subevent != raw::REDISMODULE_SUBEVENT_FLUSHDB_END {
                return;
            }
            // SAFETY: Redis passes a RedisModuleFlushInfo for this event.
            let dbnum = unsafe { (*data.cast::<raw::RedisModuleFlushInfo>()).dbnum };
            namespaces::flushed((dbnum >= 0).then_some(dbnum));
            oldest_change::forget_db(dbnum);
            waiters::wake_db(ctx, (dbnum >= 0).then_some(dbnum));
        } else if eid.id == raw::REDISMODULE_EVENT_SWAPDB {
            // SAFETY: Redis passes a RedisModuleSwapDbInfo for this event.
            let info = unsafe { &*data.cast::<raw::RedisModuleSwapDbInfo>() };
            namespaces::swapped(info.dbnum_first, info.dbnum_second);
            oldest_change::forget_db(info.dbnum_first);
            oldest_change::forget_db(info.dbnum_second);
            for db in [info.dbnum_first, info.dbnum_second] {
                waiters::wake_db(ctx, Some(db));
            }
        }
    });
}

/// Subscribes the callback (call from the module's init).
pub fn subscribe(ctx: &Context) {
    if let Some(sub) = unsafe { raw::RedisModule_SubscribeToServerEvent } {
        for id in [
            raw::REDISMODULE_EVENT_FLUSHDB,
            raw::REDISMODULE_EVENT_SWAPDB,
        ] {
            let event = raw::RedisModuleEvent { id, dataver: 1 };
            // SAFETY: valid load context; the callback is panic-safe.
            unsafe { sub(ctx.ctx, event, Some(on_server_event)) };
        }
    }
}
