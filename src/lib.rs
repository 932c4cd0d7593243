//! redis-databroker: a Redis/Valkey module that turns a Redis server into a
//! versioned record store with a change feed and leases, in Pomerium's
//! databroker key layout. This crate is the thin FFI layer: command
//! registration, a [`redis_store::RedisStore`] over the module API, replies,
//! configuration and INFO counters. The logic lives in `databroker-core`.

mod acl;
mod command_docs;
mod command_table;
mod config;
mod counter;
mod dispatch;
mod env;
mod epoch;
mod key_specs;
mod keyspace;
mod log;
mod memory_policy;
mod namespaces;
mod oldest_change;
mod redis_store;
mod reply;
mod retention_timer;
mod server_events;
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

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    if let Err(why) = config::check_load_args(args) {
        log::warning(&format!("databroker: {why}; the module is not loaded"));
        return Status::Err;
    }
    if let Err(why) = register_commands(ctx) {
        log::warning(&format!("databroker: {why}; the module is not loaded"));
        return Status::Err;
    }
    // Replace the crate's INFO handler with ours (section `databroker`).
    if let Some(register) = unsafe { redis_module::raw::RedisModule_RegisterInfoFunc } {
        // SAFETY: valid load context; the callback is panic-safe.
        unsafe { register(ctx.ctx, Some(stats::info_func)) };
    }
    key_specs::register(ctx);
    redis_store::init(ctx);
    acl::register(ctx);
    namespaces::init(ctx);
    memory_policy::watch(ctx);
    keyspace::subscribe(ctx);
    server_events::subscribe(ctx);
    retention_timer::start(ctx);
    std::panic::set_hook(Box::new(|info| {
        log::warning(&format!(
            "databroker: panic caught and turned into an error reply: {info}"
        ));
    }));
    Status::Ok
}

/// Creates every command of [`command_table::COMMANDS`], all served by
/// [`dispatch::HANDLERS`]; the namespace (argument 1) is each command's key.
fn register_commands(ctx: &Context) -> Result<(), String> {
    let create = unsafe { redis_module::raw::RedisModule_CreateCommand }
        .ok_or("RedisModule_CreateCommand is missing")?;
    if command_table::COMMANDS.len() > dispatch::HANDLERS.len() {
        return Err("more commands than handlers".into());
    }
    for (cmd, handler) in command_table::COMMANDS.iter().zip(dispatch::HANDLERS) {
        let name = std::ffi::CString::new(cmd.name).map_err(|e| e.to_string())?;
        let flags = std::ffi::CString::new(cmd.flags).map_err(|e| e.to_string())?;
        // SAFETY: valid load context and C strings (Redis copies them).
        let status = unsafe {
            create(
                ctx.ctx,
                name.as_ptr(),
                Some(handler),
                flags.as_ptr(),
                1,
                1,
                1,
            )
        };
        if status != redis_module::raw::REDISMODULE_OK as std::os::raw::c_int {
            return Err(format!("could not create the command {}", cmd.name));
        }
    }
    Ok(())
}

redis_module! {
    name: "databroker",
    version: 1,
    allocator: (ModuleAlloc, MODULE_ALLOC),
    data_types: [],
    init: init,
    commands: [],
    configurations: [
        i64: [
            ["changes-ttl-ms", &config::CHANGES_TTL_MS, config::DEFAULT_CHANGES_TTL_MS, 0, i64::MAX, ConfigurationFlags::DEFAULT, None],
            ["max-count", &config::MAX_COUNT, config::DEFAULT_MAX_COUNT, 1, 1_000_000, ConfigurationFlags::DEFAULT, None],
            ["max-records-per-call", &config::MAX_RECORDS_PER_CALL, config::DEFAULT_MAX_RECORDS_PER_CALL, 1, 1_000_000, ConfigurationFlags::DEFAULT, None],
            ["token-ttl-ms", &config::TOKEN_TTL_MS, config::DEFAULT_TOKEN_TTL_MS, 1, 1 << 40, ConfigurationFlags::DEFAULT, None],
        ],
        string: [],
        bool: [],
        enum: [],
        module_args_as_configuration: true,
    ]
}
