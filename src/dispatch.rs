//! The one entry point of every command: panic barrier, cluster check,
//! argument conversion, running the core logic, replying, counting.

use std::hash::{BuildHasher, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{SystemTime, UNIX_EPOCH};

use databroker_core::commands::txn::WriteStats;
use databroker_core::commands::{self, Env};
use databroker_core::keys::has_hash_tag;
use databroker_core::{DbError, DbResult, Reply};
use redis_module::{Context, ContextFlags, RedisResult, RedisString, RedisValue};

use crate::oldest_change;
use crate::redis_store::RedisStore;
use crate::{config, reply, stats};

/// The module's commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// `DB.PUT`
    Put,
    /// `DB.DELETE`
    Delete,
    /// `DB.GET`
    Get,
    /// `DB.SETOPTIONS`
    SetOptions,
    /// `DB.GETOPTIONS`
    GetOptions,
    /// `DB.LEASE`
    Lease,
    /// `DB.RELEASE`
    Release,
    /// `DB.VERSIONS`
    Versions,
    /// `DB.TYPES`
    Types,
    /// `DB.SYNCLATEST`
    SyncLatest,
    /// `DB.CHECK`
    Check,
}

impl Cmd {
    /// Index into [`stats::COMMAND_NAMES`].
    fn stat_index(self) -> usize {
        match self {
            Cmd::Put => 0,
            Cmd::Delete => 1,
            Cmd::Get => 2,
            Cmd::SetOptions => 3,
            Cmd::GetOptions => 4,
            Cmd::Lease => 5,
            Cmd::Release => 6,
            Cmd::SyncLatest => 8,
            Cmd::Versions => 9,
            Cmd::Types => 10,
            Cmd::Check => 11,
        }
    }

    fn writes(self) -> bool {
        matches!(
            self,
            Cmd::Put | Cmd::Delete | Cmd::SetOptions | Cmd::Lease | Cmd::Release
        )
    }
}

/// One clock reading and a random number for a write command.
pub fn current_env() -> Env {
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now_us);
    Env {
        now_us,
        random: h.finish(),
        ..config_env()
    }
}

/// The configuration part of [`Env`] only (reads need no clock or randomness).
pub fn config_env() -> Env {
    Env {
        now_us: 0,
        random: 0,
        changes_ttl_ms: config::changes_ttl_ms(),
        max_count: config::max_count(),
        oldest_change_us: None,
        cluster: false,
        oom: false,
    }
}

/// Checks the namespace against the cluster rule.
pub fn check_namespace(ctx: &Context, ns: Option<&[u8]>) -> DbResult<()> {
    match ns {
        Some(ns) if ctx.get_flags().contains(ContextFlags::CLUSTER) && !has_hash_tag(ns) => {
            Err(DbError::CrossSlot)
        }
        _ => Ok(()),
    }
}

fn run(ctx: &Context, cmd: Cmd, argv: &[&[u8]]) -> DbResult<Reply> {
    check_namespace(ctx, argv.first().copied())?;
    if cmd.writes() {
        if let Some(e) = crate::memory_policy::refuse_write(ctx) {
            return Err(e);
        }
        crate::sync_cmd::bump_epoch();
    }
    let mut store = if cmd.writes() {
        RedisStore::for_write(ctx)
    } else {
        RedisStore::new(ctx)
    };
    let ns = argv.first().copied().unwrap_or_default();
    let env = if cmd.writes() {
        let flags = ctx.get_flags();
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
    let written = |r: DbResult<(Reply, WriteStats)>| {
        r.map(|(reply, w)| {
            stats::record_write(w);
            if w.oldest_change_us != env.oldest_change_us {
                oldest_change::set(ctx, ns, w.oldest_change_us);
            }
            reply
        })
    };
    match cmd {
        Cmd::Put => written(commands::put::run(s, env, argv)),
        Cmd::Delete => written(commands::delete::run(s, env, argv)),
        Cmd::SetOptions => written(commands::options::set(s, env, argv)),
        Cmd::Get => commands::get::run(s, argv),
        Cmd::GetOptions => commands::options::get(s, argv),
        Cmd::Lease => commands::lease::lease(s, env, argv),
        Cmd::Release => commands::lease::release(s, argv),
        Cmd::Versions => commands::versions::versions(s, argv),
        Cmd::Types => commands::versions::types(s, argv),
        Cmd::SyncLatest => commands::synclatest::run(s, env, argv),
        Cmd::Check => commands::check::run(s, current_env(), argv),
    }
}

/// Runs `cmd` with the client's arguments and replies; never lets a panic
/// cross into Redis.
pub fn command(ctx: &Context, args: Vec<RedisString>, cmd: Cmd) -> RedisResult {
    stats::CALLS[cmd.stat_index()].add(1);
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
        let result = run(ctx, cmd, argv);
        reply::send_result(ctx.ctx, result.as_ref());
    }));
    if outcome.is_err() {
        reply::send_panic(ctx.ctx);
    }
    Ok(RedisValue::NoReply)
}
