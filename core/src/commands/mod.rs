//! The `DB.*` commands over a [`Store`]. Each command module has a `run`
//! taking the arguments after the command name (`args[0]` is the namespace)
//! and returning the reply. Every command reads and validates everything
//! first and writes only in [`txn::Txn::commit`], so a failed command
//! changes nothing.

pub mod access;
pub mod capacity;
pub mod check;
pub mod delete;
pub mod get;
pub mod lease;
pub mod options;
pub mod put;
pub mod retention;
pub mod state;
pub mod sync;
pub mod synclatest;
pub mod txn;
pub mod versions;
pub mod write;

#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod tests;

use crate::error::{DbError, DbResult};
use crate::store::{KeyKind, Store};

/// Default `token-ttl-ms`: 10 minutes.
pub const DEFAULT_TOKEN_TTL_MS: u64 = 600_000;

/// What a command may need from outside the keyspace: the clock, randomness
/// and configuration. Read once per command, so a command is deterministic
/// given its `Env`.
#[derive(Debug, Clone, Copy)]
pub struct Env {
    /// Now, in microseconds since the Unix epoch (one clock reading per command).
    pub now_us: i64,
    /// A random number (for a new namespace's server version).
    pub random: u64,
    /// `databroker.changes-ttl-ms` (0 = keep changes forever).
    pub changes_ttl_ms: u64,
    /// `databroker.max-count`.
    pub max_count: u64,
    /// `databroker.max-records-per-call`: the most records one `DB.PUT` or
    /// `DB.DELETE` may name, and the most records one `DB.SETOPTIONS` may evict.
    pub max_records_per_call: u64,
    /// A lower bound of the namespace's oldest change `modified_at`, from
    /// an earlier write's [`txn::WriteStats::oldest_change_us`] (lets
    /// retention skip its reads).
    pub oldest_change_us: Option<i64>,
    /// The server runs in cluster mode: writes keep the namespace's marker
    /// key (see [`crate::keys::Keys::marker`]).
    pub cluster: bool,
    /// Used memory is above `maxmemory`: commands that would grow memory are
    /// refused (`OOM`); deletes, lease renewals and releases, and capacity
    /// reductions still run, so an operator can free memory through the module.
    pub oom: bool,
    /// `databroker.token-ttl-ms`: how long a write's idempotency token is remembered.
    pub token_ttl_ms: u64,
}

impl Env {
    /// An `Env` at time `now_us` with default configuration, for tests.
    pub fn at(now_us: i64) -> Self {
        Env {
            now_us,
            random: 0x5eed_1234_abcd,
            changes_ttl_ms: 0,
            max_count: 10_000,
            max_records_per_call: DEFAULT_MAX_RECORDS_PER_CALL,
            oldest_change_us: None,
            cluster: false,
            oom: false,
            token_ttl_ms: DEFAULT_TOKEN_TTL_MS,
        }
    }
}

/// Default `databroker.max-records-per-call`.
pub const DEFAULT_MAX_RECORDS_PER_CALL: u64 = 10_000;

/// Fails unless a write names at most `env.max_records_per_call` records.
pub fn check_records_per_call(records: usize, env: &Env) -> DbResult<()> {
    if records as u64 > env.max_records_per_call {
        return Err(DbError::arg(
            "records",
            format!(
                "{records} in one call, more than max-records-per-call ({}): split the batch",
                env.max_records_per_call
            ),
        ));
    }
    Ok(())
}

/// Fails with `WRONGTYPE` unless `key` is missing or of kind `want`.
pub fn expect_kind(store: &mut impl Store, key: &[u8], want: KeyKind) -> DbResult<()> {
    match store.kind(key) {
        KeyKind::Missing => Ok(()),
        k if k == want => Ok(()),
        _ => Err(DbError::WrongType),
    }
}

/// Fails with `OOM` when used memory is above `maxmemory` (for commands that grow memory).
pub fn refuse_growth(env: &Env) -> DbResult<()> {
    if env.oom {
        Err(DbError::Oom)
    } else {
        Ok(())
    }
}

/// Fails with the standard arity error unless `ok`.
pub fn arity(ok: bool) -> DbResult<()> {
    if ok {
        Ok(())
    } else {
        Err(DbError::WrongArity)
    }
}
