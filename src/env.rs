//! What a command needs from outside the keyspace ([`Env`]: clock,
//! randomness, configuration) and the namespace rules checked before any
//! command runs.

use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use databroker_core::commands::Env;
use databroker_core::keys::has_hash_tag;
use databroker_core::{DbError, DbResult};
use redis_module::ContextFlags;

use crate::config;

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
        max_records_per_call: config::max_records_per_call(),
        token_ttl_ms: config::token_ttl_ms(),
        oldest_change_us: None,
        cluster: false,
        oom: false,
    }
}

/// Checks the namespace against the naming rule and, with the command's
/// context `flags`, the cluster rule.
pub fn check_namespace(flags: &ContextFlags, ns: Option<&[u8]>) -> DbResult<()> {
    ns.map_or(Ok(()), databroker_core::keys::check_namespace)?;
    match ns {
        Some(ns) if flags.contains(ContextFlags::CLUSTER) && !has_hash_tag(ns) => {
            Err(DbError::CrossSlot)
        }
        _ => Ok(()),
    }
}
