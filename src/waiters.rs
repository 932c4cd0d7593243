//! The clients waiting in `DB.SYNC ... BLOCK`, by database and key, so that a
//! namespace deleted under them wakes them at once with the answer a fresh
//! call would get (`SERVERVERSION`) instead of at their timeout: `DEL`/`UNLINK`
//! (or expiry, eviction, `RENAME`, `MOVE`) of `<ns>.last_version` or
//! `<ns>.server_version`, `FLUSHDB`, `FLUSHALL`, `SWAPDB`, and a replica's
//! full resynchronisation (which flushes). Redis 7.0 serves clients blocked
//! on keys only while the key exists, so the module unblocks them itself
//! (`RedisModule_UnblockClient` runs the timeout callback, which answers).
//! Wake-ups run from a 0 ms timer, after the deleting command has finished,
//! so a multi-key `DEL` is seen whole. In cluster mode single-key deletions
//! do not wake (a migrating slot's keys are deleted by `MIGRATE`, and those
//! waiters get `MOVED` when the slot moves). Main thread only.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::raw::c_int;
use std::panic::catch_unwind;
use std::time::Duration;

use redis_module::raw::{self, RedisModuleBlockedClient, RedisModuleCtx, RedisModuleString};
use redis_module::{Context, ContextFlags, RedisString};

/// One waiting client.
struct Waiter {
    bc: *mut RedisModuleBlockedClient,
    db: c_int,
    key: Vec<u8>,
}

/// What to wake: a database (None = all) and a key (None = every key).
struct Wake {
    db: Option<c_int>,
    key: Option<Vec<u8>>,
}

thread_local! {
    static WAITERS: RefCell<HashMap<u64, Waiter>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
    static PENDING: RefCell<Vec<Wake>> = const { RefCell::new(Vec::new()) };
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

const WATCHED: [&[u8]; 2] = [b".last_version", b".server_version"];
const LAST_VERSION: &[u8] = b".last_version";

/// A new waiter id (the blocked client's private data).
pub fn next_id() -> u64 {
    NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1));
        id
    })
}

/// Registers a blocked client waiting on `key` in database `db`.
pub fn insert(id: u64, bc: *mut RedisModuleBlockedClient, db: c_int, key: &[u8]) {
    WAITERS.with(|w| {
        w.borrow_mut().insert(
            id,
            Waiter {
                bc,
                db,
                key: key.to_vec(),
            },
        )
    });
}

/// The (database, key) of every waiting client (for INFO).
pub fn waiting_keys() -> Vec<(c_int, Vec<u8>)> {
    WAITERS.with(|w| {
        w.try_borrow()
            .map(|w| w.values().map(|x| (x.db, x.key.clone())).collect())
            .unwrap_or_default()
    })
}

/// Forgets a waiter (its wait ended; the handle is about to be freed).
pub fn remove(id: u64) {
    WAITERS.with(|w| {
        if let Ok(mut w) = w.try_borrow_mut() {
            w.remove(&id);
        }
    });
}

/// The selected database of `ctx`.
pub fn selected_db(ctx: *mut RedisModuleCtx) -> c_int {
    // SAFETY: valid ctx.
    unsafe { raw::RedisModule_GetSelectedDb.map_or(0, |f| f(ctx)) }
}

fn schedule(ctx: *mut RedisModuleCtx, wake: Wake) {
    PENDING.with(|p| p.borrow_mut().push(wake));
    if ARMED.with(|a| a.replace(true)) {
        return;
    }
    Context::new(ctx).create_timer(Duration::ZERO, fire, ());
}

fn fire(_ctx: &Context, _: ()) {
    let _ = catch_unwind(|| {
        ARMED.with(|a| a.set(false));
        let pending: Vec<Wake> = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
        let woken: Vec<*mut RedisModuleBlockedClient> = WAITERS.with(|w| {
            w.borrow()
                .values()
                .filter(|x| {
                    pending.iter().any(|p| {
                        p.db.is_none_or(|d| d == x.db)
                            && p.key.as_deref().is_none_or(|k| k == x.key)
                    })
                })
                .map(|x| x.bc)
                .collect()
        });
        if let Some(unblock) = unsafe { raw::RedisModule_UnblockClient } {
            for bc in woken {
                // SAFETY: registered handles stay valid until their free
                // callback removes them; a handle already unblocked is a no-op.
                // For a client blocked on keys this runs the timeout callback,
                // which answers with the current state.
                unsafe { unblock(bc, std::ptr::null_mut()) };
            }
        }
    });
}

/// A key deleted (`del`, `expired`, `evicted`, `rename_from`,
/// `move_from`; see `keyspace`): a namespace counter that disappears wakes
/// the namespace's waiters.
pub fn on_key_removed(ctx: *mut RedisModuleCtx, key: *mut RedisModuleString) {
    if WAITERS.with(|w| w.borrow().is_empty()) {
        return;
    }
    // In cluster mode keys also disappear when their slot migrates
    // (MIGRATE deletes them here): the waiters must get MOVED once the
    // slot has moved, not SERVERVERSION now.
    if Context::new(ctx)
        .get_flags()
        .contains(ContextFlags::CLUSTER)
    {
        return;
    }
    let name = RedisString::string_as_slice(key);
    for suffix in WATCHED {
        if let Some(ns) = name
            .strip_suffix(suffix)
            .filter(|ns| databroker_core::keys::check_namespace(ns).is_ok())
        {
            let mut wait_key = ns.to_vec();
            wait_key.extend_from_slice(LAST_VERSION);
            let db = selected_db(ctx);
            schedule(
                ctx,
                Wake {
                    db: Some(db),
                    key: Some(wait_key),
                },
            );
        }
    }
}

/// Wakes every waiter of database `db` (None: all databases), after a
/// flush or swap of its data.
pub fn wake_db(ctx: *mut RedisModuleCtx, db: Option<c_int>) {
    schedule(ctx, Wake { db, key: None });
}
