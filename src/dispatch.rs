//! The one entry point of every command: panic barrier, cluster check,
//! argument conversion, running the core logic, replying, counting.

use std::panic::{catch_unwind, AssertUnwindSafe};

use databroker_core::commands::Env;
use databroker_core::{DbError, DbResult, Reply};
use std::os::raw::c_int;

use redis_module::raw::{self, RedisModuleCtx, RedisModuleString};
use redis_module::{decode_args, Context, ContextFlags};

use crate::command_table::{Command, Run, COMMANDS};
use crate::stats::MAX_COMMANDS;

use crate::env::{check_namespace, config_env, current_env};
use crate::oldest_change;
use crate::redis_store::RedisStore;
use crate::{reply, stats};

fn run(ctx: &Context, cmd: &Command, argv: &[&[u8]]) -> DbResult<Reply> {
    // One read of the context flags serves every check of the command.
    let flags = ctx.get_flags();
    check_namespace(&flags, argv.first().copied())?;
    // Write commands open each key once, for writing (see RedisStore::for_write).
    let mut store = if cmd.writes() {
        RedisStore::for_write(ctx)
    } else {
        RedisStore::new(ctx)
    };
    crate::acl::check(ctx, &flags, &mut store, cmd.name, argv)?;
    if cmd.writes() {
        if let Some(e) = crate::memory_policy::refuse_write(ctx, &flags) {
            return Err(e);
        }
        crate::epoch::bump();
    }
    let ns = argv.first().copied().unwrap_or_default();
    let env = if cmd.writes() {
        Env {
            oldest_change_us: oldest_change::get(ctx, ns),
            cluster: flags.contains(ContextFlags::CLUSTER),
            oom: flags.contains(ContextFlags::OOM),
            ..current_env()
        }
    } else {
        config_env()
    };
    let s = &mut store;
    match cmd.run {
        Run::Read(body) | Run::Lease(body) => body(s, env, argv),
        Run::Write(body) => body(s, env, argv).map(|(reply, w)| {
            stats::record_write(w);
            if w.oldest_change_us != env.oldest_change_us {
                oldest_change::set(ctx, ns, w.oldest_change_us);
            }
            crate::namespaces::wrote(ctx, ns, w.trimmed);
            reply
        }),
        Run::Sync => Err(DbError::Syntax), // served by sync_cmd
    }
}

/// Runs command `index` of the table with the client's arguments (after
/// the command name) and replies; never lets a panic cross into Redis.
fn command(ctx: &Context, argv: &[&[u8]], index: usize) {
    stats::CALLS[index].add(1);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let result = run(ctx, &COMMANDS[index], argv);
        reply::send_result(ctx.ctx, result.as_ref());
    }));
    if outcome.is_err() {
        reply::send_panic(ctx.ctx);
    }
}

/// The bytes of argument `i` (valid for the command's duration).
///
/// # Safety
/// `argv` holds at least `i + 1` valid strings.
unsafe fn arg<'a>(argv: *mut *mut RedisModuleString, i: usize) -> &'a [u8] {
    let mut len = 0usize;
    let p = raw::RedisModule_StringPtrLen.expect("StringPtrLen")(*argv.add(i), &mut len);
    if p.is_null() {
        &[]
    } else {
        std::slice::from_raw_parts(p.cast::<u8>(), len)
    }
}

/// The `RedisModuleCmdFunc` of command `I` of the table.
///
/// # Safety
/// Called by Redis with valid arguments.
unsafe extern "C" fn entry_at<const I: usize>(
    ctx: *mut RedisModuleCtx,
    argv: *mut *mut RedisModuleString,
    argc: c_int,
) -> c_int {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let context = Context::new(ctx);
        match COMMANDS.get(I).map(|c| &c.run) {
            Some(Run::Sync) => {
                let args = decode_args(ctx, argv, argc);
                let _ = crate::sync_cmd::db_sync(&context, args);
            }
            Some(_) => {
                // The arguments as slices, on the stack when few (every DB.GET
                // and one-record DB.PUT); no strings are made or retained.
                let n = usize::try_from(argc).unwrap_or(0).saturating_sub(1);
                let mut few: [&[u8]; 8] = [&[]; 8];
                let many: Vec<&[u8]>;
                let args: &[&[u8]] = if n <= few.len() {
                    for (i, slot) in few.iter_mut().take(n).enumerate() {
                        // SAFETY: argc strings from Redis.
                        *slot = unsafe { arg(argv, i + 1) };
                    }
                    &few[..n]
                } else {
                    // SAFETY: argc strings from Redis.
                    many = (1..=n).map(|i| unsafe { arg(argv, i) }).collect();
                    &many
                };
                command(&context, args, I);
            }
            None => reply::send_error_text(ctx, "ERR unknown databroker command"),
        }
    }));
    if outcome.is_err() {
        reply::send_panic(ctx);
    }
    raw::REDISMODULE_OK as c_int
}

/// A command function as Redis calls it.
pub type Handler =
    unsafe extern "C" fn(*mut RedisModuleCtx, *mut *mut RedisModuleString, c_int) -> c_int;

macro_rules! handlers {
    ($($i:literal)*) => { [$(entry_at::<$i> as Handler),*] };
}

/// The function of each row of [`COMMANDS`], by index (each knows its row,
/// so no name is looked up per call).
pub static HANDLERS: [Handler; MAX_COMMANDS] = handlers!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
