//! The one entry point of every command: panic barrier, cluster check,
//! argument conversion, running the core logic, replying, counting.

use std::panic::{catch_unwind, AssertUnwindSafe};

use databroker_core::commands::Env;
use databroker_core::{DbError, DbResult, Reply};
use std::os::raw::c_int;

use redis_module::raw::{self, RedisModuleCtx, RedisModuleString};
use redis_module::{decode_args, Context, ContextFlags, RedisResult, RedisString, RedisValue};

use crate::command_table::{index_of, Command, Run, COMMANDS};

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

/// Runs command `index` of the table with the client's arguments and
/// replies; never lets a panic cross into Redis.
pub fn command(ctx: &Context, args: Vec<RedisString>, index: usize) -> RedisResult {
    stats::CALLS[index].add(1);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // The arguments as slices, on the stack when few (every DB.GET and one-record DB.PUT).
        let mut few: [&[u8]; 8] = [&[]; 8];
        let many: Vec<&[u8]>;
        let argv: &[&[u8]] = if args.len() <= few.len() {
            for (slot, a) in few.iter_mut().zip(args.iter().skip(1)) {
                *slot = a.as_slice();
            }
            &few[..args.len().saturating_sub(1)]
        } else {
            many = args.iter().skip(1).map(|a| a.as_slice()).collect();
            &many
        };
        let result = run(ctx, &COMMANDS[index], argv);
        reply::send_result(ctx.ctx, result.as_ref());
    }));
    if outcome.is_err() {
        reply::send_panic(ctx.ctx);
    }
    Ok(RedisValue::NoReply)
}

/// The one `RedisModuleCmdFunc` of every command: finds the command's row
/// by its name and runs it.
///
/// # Safety
/// Called by Redis with valid arguments.
pub unsafe extern "C" fn entry(
    ctx: *mut RedisModuleCtx,
    argv: *mut *mut RedisModuleString,
    argc: c_int,
) -> c_int {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let context = Context::new(ctx);
        let args = decode_args(ctx, argv, argc);
        let index = args.first().and_then(|a| index_of(a.as_slice()));
        match index.map(|i| (i, &COMMANDS[i].run)) {
            Some((_, Run::Sync)) => {
                let _ = crate::sync_cmd::db_sync(&context, args);
            }
            Some((i, _)) => {
                let _ = command(&context, args, i);
            }
            None => reply::send_error_text(ctx, "ERR unknown databroker command"),
        }
    }));
    if outcome.is_err() {
        reply::send_panic(ctx);
    }
    raw::REDISMODULE_OK as c_int
}
