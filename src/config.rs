//! Module configuration: `CONFIG SET databroker.<name>` and load arguments.

use std::sync::atomic::{AtomicI64, Ordering};

/// `databroker.changes-ttl-ms`: retention of the change feed (0 = forever).
pub static CHANGES_TTL_MS: AtomicI64 = AtomicI64::new(DEFAULT_CHANGES_TTL_MS);
/// `databroker.max-count`: the largest `COUNT` a sync call may ask for.
pub static MAX_COUNT: AtomicI64 = AtomicI64::new(DEFAULT_MAX_COUNT);

/// `databroker.token-ttl-ms`: how long a write's idempotency token is remembered.
pub static TOKEN_TTL_MS: AtomicI64 = AtomicI64::new(DEFAULT_TOKEN_TTL_MS);
/// Default `token-ttl-ms`.
pub const DEFAULT_TOKEN_TTL_MS: i64 = databroker_core::commands::DEFAULT_TOKEN_TTL_MS as i64;

/// Default retention: 24 hours.
pub const DEFAULT_CHANGES_TTL_MS: i64 = 86_400_000;
/// Default `max-count`.
pub const DEFAULT_MAX_COUNT: i64 = 10_000;

/// Current `changes-ttl-ms`.
pub fn changes_ttl_ms() -> u64 {
    CHANGES_TTL_MS.load(Ordering::Relaxed).max(0) as u64
}

/// Current `max-count`.
pub fn max_count() -> u64 {
    MAX_COUNT.load(Ordering::Relaxed).max(1) as u64
}

/// Current `token-ttl-ms`.
pub fn token_ttl_ms() -> u64 {
    TOKEN_TTL_MS.load(Ordering::Relaxed).max(1) as u64
}
