//! The module's one keyspace-event callback: a replicated `SET` of a
//! namespace counter wakes its followers (`sync_cmd`), and a deleted counter
//! wakes them with the answer a fresh call gets (`waiters`).

use std::os::raw::{c_char, c_int};
use std::panic::catch_unwind;

use redis_module::raw::{self, RedisModuleCtx, RedisModuleString};
use redis_module::Context;

use crate::{sync_cmd, waiters};

/// # Safety
/// Called by Redis with valid arguments.
unsafe extern "C" fn on_event(
    ctx: *mut RedisModuleCtx,
    _type: c_int,
    event: *const c_char,
    key: *mut RedisModuleString,
) -> c_int {
    let _ = catch_unwind(|| {
        if event.is_null() || key.is_null() {
            return;
        }
        // SAFETY: Redis passes a NUL-terminated event name.
        match unsafe { std::ffi::CStr::from_ptr(event) }.to_bytes() {
            b"set" => sync_cmd::on_counter_set(ctx, key),
            b"del" | b"expired" | b"evicted" | b"rename_from" | b"move_from" => {
                waiters::on_key_removed(ctx, key)
            }
            _ => {}
        }
    });
    raw::REDISMODULE_OK as c_int
}

/// Subscribes [`on_event`] to string, generic, expired and evicted events.
pub fn subscribe(ctx: &Context) {
    if let Some(sub) = unsafe { raw::RedisModule_SubscribeToKeyspaceEvents } {
        let classes = raw::REDISMODULE_NOTIFY_STRING
            | raw::REDISMODULE_NOTIFY_GENERIC
            | raw::REDISMODULE_NOTIFY_EXPIRED
            | raw::REDISMODULE_NOTIFY_EVICTED;
        // SAFETY: valid load context; the callback is panic-safe.
        unsafe { sub(ctx.ctx, classes as c_int, Some(on_event)) };
    }
}
