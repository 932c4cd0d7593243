//! redis-databroker: a Redis/Valkey module that turns a Redis server into a
//! versioned record store with a change feed and leases, in Pomerium's
//! databroker key layout. This crate is the thin FFI layer: command
//! registration, a [`redis_store::RedisStore`] over the module API, replies,
//! configuration and INFO counters. The logic lives in `databroker-core`.

mod config;
mod dispatch;
mod key_specs;
mod memory_policy;
mod oldest_change;
mod redis_store;
mod reply;
mod retention_timer;
mod stats;
mod sync_cmd;
mod waiters;

use redis_module::{configuration::ConfigurationFlags, redis_module};
use redis_module::{Context, RedisString, Status};

/// Module memory goes through Redis's allocator (it shows in `INFO memory`
/// and counts toward `maxmemory`); plain unit tests have no Redis, so they
/// use the system allocator.
#[cfg(not(test))]
type ModuleAlloc = redis_module::alloc::RedisAlloc;
#[cfg(not(test))]
const MODULE_ALLOC: ModuleAlloc = redis_module::alloc::RedisAlloc;
#[cfg(test)]
type ModuleAlloc = std::alloc::System;
#[cfg(test)]
const MODULE_ALLOC: ModuleAlloc = std::alloc::System;

use dispatch::{command, Cmd};

fn init(ctx: &Context, _args: &[RedisString]) -> Status {
    // Replace the crate's INFO handler with ours (section `databroker`).
    if let Some(register) = unsafe { redis_module::raw::RedisModule_RegisterInfoFunc } {
        // SAFETY: valid load context; the callback is panic-safe.
        unsafe { register(ctx.ctx, Some(stats::info_func)) };
    }
    key_specs::register(ctx);
    redis_store::init(ctx);
    memory_policy::watch(ctx);
    sync_cmd::subscribe(ctx);
    waiters::subscribe(ctx);
    retention_timer::start(ctx);
    std::panic::set_hook(Box::new(|info| {
        log_warning(&format!(
            "databroker: panic caught and turned into an error reply: {info}"
        ));
    }));
    Status::Ok
}

/// Writes `message` to the server log (NUL bytes dropped; never panics).
pub fn log_warning(message: &str) {
    let clean: Vec<u8> = message.bytes().filter(|&b| b != 0).collect();
    let (Ok(text), Some(log)) = (std::ffi::CString::new(clean), unsafe {
        redis_module::raw::RedisModule_Log
    }) else {
        return;
    };
    // SAFETY: a NULL context logs for the module; "%s" takes the one C string.
    unsafe {
        log(
            std::ptr::null_mut(),
            c"warning".as_ptr(),
            c"%s".as_ptr(),
            text.as_ptr(),
        )
    };
}

/// The handler of a command that goes through [`dispatch::command`].
macro_rules! handler {
    ($cmd:expr) => {
        |ctx: &Context, args: Vec<RedisString>| command(ctx, args, $cmd)
    };
}

redis_module! {
    name: "databroker",
    version: 1,
    allocator: (ModuleAlloc, MODULE_ALLOC),
    data_types: [],
    init: init,
    commands: [
        ["db.put", handler!(Cmd::Put), "write deny-oom", 1, 1, 1, ""],
        ["db.delete", handler!(Cmd::Delete), "write", 1, 1, 1, ""],
        ["db.get", handler!(Cmd::Get), "readonly fast", 1, 1, 1, ""],
        ["db.setoptions", handler!(Cmd::SetOptions), "write", 1, 1, 1, ""],
        ["db.getoptions", handler!(Cmd::GetOptions), "readonly fast", 1, 1, 1, ""],
        ["db.lease", handler!(Cmd::Lease), "write fast", 1, 1, 1, ""],
        ["db.release", handler!(Cmd::Release), "write fast", 1, 1, 1, ""],
        ["db.versions", handler!(Cmd::Versions), "readonly fast", 1, 1, 1, ""],
        ["db.types", handler!(Cmd::Types), "readonly", 1, 1, 1, ""],
        ["db.sync", sync_cmd::db_sync, "readonly", 1, 1, 1, ""],
        ["db.synclatest", handler!(Cmd::SyncLatest), "readonly", 1, 1, 1, ""],
        ["db.check", handler!(Cmd::Check), "readonly", 1, 1, 1, ""],
    ],
    configurations: [
        i64: [
            ["changes-ttl-ms", &config::CHANGES_TTL_MS, config::DEFAULT_CHANGES_TTL_MS, 0, i64::MAX, ConfigurationFlags::DEFAULT, None],
            ["max-count", &config::MAX_COUNT, config::DEFAULT_MAX_COUNT, 1, 1_000_000, ConfigurationFlags::DEFAULT, None],
        ],
        string: [],
        bool: [],
        enum: [],
        module_args_as_configuration: true,
    ]
}
