//! `DB.SYNC` with `BLOCK`: clients wait on `<ns>.last_version` with
//! `RedisModule_BlockClientOnKeys`; writers signal that key (and, on
//! replicas, [`on_keyspace_event`] does when the replicated `SET` arrives).
//! Every callback is panic-safe and re-runs the same non-blocking logic.

use std::os::raw::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

use databroker_core::commands::sync::{self, SyncAnswer, SyncArgs};
use databroker_core::{DbError, DbResult, Reply};
use redis_module::raw::{self, RedisModuleCtx, RedisModuleString};
use redis_module::{decode_args, Context, ContextFlags, RedisResult, RedisString, RedisValue};

use crate::env::{check_namespace, config_env};
use crate::epoch::{WakeAnswer, EPOCH, WAKE_CACHE};
use crate::redis_store::{RStr, RedisStore};
use crate::{reply, stats, waiters};

const OK: c_int = raw::REDISMODULE_OK as c_int;
const ERR: c_int = raw::REDISMODULE_ERR as c_int;

/// Runs the non-blocking part of `DB.SYNC` for the arguments after the command name.
fn answer(ctx: &Context, argv: &[RedisString]) -> DbResult<(SyncAnswer, Option<u64>, Vec<u8>)> {
    let args: Vec<&[u8]> = argv.iter().skip(1).map(|a| a.as_slice()).collect();
    let flags = ctx.get_flags();
    check_namespace(&flags, args.first().copied())?;
    let a = SyncArgs::parse(&args, &config_env())?;
    let mut store = RedisStore::new(ctx);
    crate::acl::check(ctx, &flags, &mut store, "sync", &args)?;
    let ans = sync::run(&mut store, &a)?;
    Ok((ans, a.block_ms, a.keys.last_version().to_vec()))
}

fn can_block(ctx: &Context) -> bool {
    !ctx.get_flags()
        .intersects(ContextFlags::MULTI | ContextFlags::LUA | ContextFlags::DENY_BLOCKING)
}

/// The `DB.SYNC` command.
pub fn db_sync(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if let Some(i) = crate::command_table::index_of(b"db.sync") {
        stats::CALLS[i].add(1);
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| match answer(ctx, &args) {
        Ok((ans, Some(block_ms), key)) if ans.caught_up && can_block(ctx) => {
            block(ctx, &key, block_ms);
        }
        Ok((ans, _, _)) => reply::send(ctx.ctx, &ans.reply),
        Err(e) => reply::send_result(ctx.ctx, Err(&e)),
    }));
    if outcome.is_err() {
        reply::send_panic(ctx.ctx);
    }
    Ok(RedisValue::NoReply)
}

fn block(ctx: &Context, key: &[u8], block_ms: u64) {
    let name = RStr::new(ctx.ctx, key);
    let mut keys = [name.ptr];
    // The privdata is the waiter's id in the registry; Redis calls `on_free`
    // with it exactly once per wait.
    let id = waiters::next_id();
    let privdata = Box::into_raw(Box::new(id)).cast::<c_void>();
    let timeout = i64::try_from(block_ms).unwrap_or(i64::MAX);
    // SAFETY: valid ctx; Redis keeps its own reference to the key name.
    let bc = unsafe {
        raw::RedisModule_BlockClientOnKeys.expect("BlockClientOnKeys")(
            ctx.ctx,
            Some(on_ready),
            Some(on_timeout),
            Some(on_free),
            timeout,
            keys.as_mut_ptr(),
            1,
            privdata,
        )
    };
    if bc.is_null() {
        // SAFETY: Redis did not take the privdata.
        drop(unsafe { Box::from_raw(privdata.cast::<u64>()) });
        reply::send_error_text(ctx.ctx, "ERR could not block the client");
        return;
    }
    let db = waiters::selected_db(ctx.ctx);
    waiters::insert(id, bc, db, key);
    crate::namespaces::waited(db, key.strip_suffix(b".last_version").unwrap_or(key));
    stats::WAITING.add(1);
}

/// Sends a callback's answer; returns `OK` (unblock).
fn send(ctx: *mut RedisModuleCtx, result: Result<&Reply, &DbError>) -> c_int {
    reply::send_result(ctx, result);
    OK
}

/// Runs a blocked-client callback behind the panic barrier, with the
/// command's context and arguments; a panic answers with an error (unblocking).
fn callback(
    ctx: *mut RedisModuleCtx,
    argv: *mut *mut RedisModuleString,
    argc: c_int,
    body: impl FnOnce(&Context, &[RedisString]) -> c_int,
) -> c_int {
    catch_unwind(AssertUnwindSafe(|| {
        body(&Context::new(ctx), &decode_args(ctx, argv, argc))
    }))
    .unwrap_or_else(|_| {
        reply::send_panic(ctx);
        OK
    })
}

/// Called for each signal of the key: replies and unblocks when something
/// new exists, else keeps waiting.
extern "C" fn on_ready(
    ctx: *mut RedisModuleCtx,
    argv: *mut *mut RedisModuleString,
    argc: c_int,
) -> c_int {
    callback(ctx, argv, argc, |context, args| {
        // Permissions may have changed while waiting: check them per client.
        if let Err(e) = crate::acl::check_woken_sync(context, args) {
            return send(ctx, Err(&e));
        }
        let epoch = EPOCH.load(Ordering::Relaxed);
        // SAFETY: valid ctx (the blocked client's database is selected).
        let db = unsafe { raw::RedisModule_GetSelectedDb.map_or(0, |f| f(ctx)) };
        WAKE_CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            let hit = cache.as_ref().is_some_and(|c| {
                c.epoch == epoch
                    && c.db == db
                    && c.args.len() == args.len()
                    && c.args.iter().zip(args).all(|(a, b)| a == b.as_slice())
            });
            if !hit {
                let result = answer(context, args).map(|(ans, _, _)| (ans.reply, ans.caught_up));
                *cache = Some(WakeAnswer {
                    epoch,
                    db,
                    args: args.iter().map(|a| a.as_slice().to_vec()).collect(),
                    result,
                });
            }
            match cache.as_ref().map(|c| &c.result) {
                Some(Ok((_, true))) | None => ERR, // nothing new yet: keep waiting
                Some(Ok((reply, false))) => send(ctx, Ok(reply)),
                Some(Err(e)) => send(ctx, Err(e)),
            }
        })
    })
}

/// Timeout (or `CLIENT UNBLOCK`): answers with whatever exists now, usually no records.
extern "C" fn on_timeout(
    ctx: *mut RedisModuleCtx,
    argv: *mut *mut RedisModuleString,
    argc: c_int,
) -> c_int {
    callback(ctx, argv, argc, |context, args| {
        let result = answer(context, args).map(|(ans, _, _)| ans.reply);
        send(ctx, result.as_ref())
    })
}

/// Called once per wait, however it ended (reply, timeout, disconnect).
extern "C" fn on_free(_ctx: *mut RedisModuleCtx, privdata: *mut c_void) {
    let _ = catch_unwind(|| {
        if !privdata.is_null() {
            // SAFETY: the Box created in `block`, freed once.
            let id = unsafe { Box::from_raw(privdata.cast::<u64>()) };
            waiters::remove(*id);
        }
        stats::WAITING.sub(1);
    });
}

/// A replicated `SET <ns>.last_version` (on a replica, or an AOF load)
/// wakes the namespace's waiting clients (see `keyspace`).
pub fn on_counter_set(ctx: *mut RedisModuleCtx, key: *mut RedisModuleString) {
    // Only a namespace's own counter (a valid name has no '.': a token or
    // lease named `x.last_version` is not one).
    let counter = RedisString::string_as_slice(key).strip_suffix(b".last_version");
    if let Some(ns) = counter.filter(|ns| databroker_core::keys::check_namespace(ns).is_ok()) {
        crate::epoch::bump();
        crate::namespaces::replicated_write(ctx, ns);
        if let Some(signal) = unsafe { raw::RedisModule_SignalKeyAsReady } {
            // SAFETY: valid ctx and key from Redis.
            unsafe { signal(ctx, key) };
        }
    }
}
