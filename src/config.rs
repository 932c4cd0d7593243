//! Module configuration: `CONFIG SET databroker.<name>` and load arguments.

use std::sync::atomic::{AtomicI64, Ordering};

use redis_module::RedisString;

/// `databroker.changes-ttl-ms`: retention of the change feed (0 = forever).
pub static CHANGES_TTL_MS: AtomicI64 = AtomicI64::new(DEFAULT_CHANGES_TTL_MS);
/// `databroker.max-count`: the largest `COUNT` a sync call may ask for.
pub static MAX_COUNT: AtomicI64 = AtomicI64::new(DEFAULT_MAX_COUNT);
/// `databroker.max-records-per-call`: the most records one write may name or evict.
pub static MAX_RECORDS_PER_CALL: AtomicI64 = AtomicI64::new(DEFAULT_MAX_RECORDS_PER_CALL);

/// `databroker.token-ttl-ms`: how long a write's idempotency token is remembered.
pub static TOKEN_TTL_MS: AtomicI64 = AtomicI64::new(DEFAULT_TOKEN_TTL_MS);
/// Default `token-ttl-ms`.
pub const DEFAULT_TOKEN_TTL_MS: i64 = databroker_core::commands::DEFAULT_TOKEN_TTL_MS as i64;

/// Default retention: 24 hours.
pub const DEFAULT_CHANGES_TTL_MS: i64 = 86_400_000;
/// Default `max-count`.
pub const DEFAULT_MAX_COUNT: i64 = 10_000;
/// Default `max-records-per-call`.
pub const DEFAULT_MAX_RECORDS_PER_CALL: i64 =
    databroker_core::commands::DEFAULT_MAX_RECORDS_PER_CALL as i64;

/// Every config: (name, min, max), the same ranges as `CONFIG SET`.
pub const RANGES: [(&str, i64, i64); 4] = [
    ("changes-ttl-ms", 0, i64::MAX),
    ("max-count", 1, 1_000_000),
    ("max-records-per-call", 1, 1_000_000),
    ("token-ttl-ms", 1, 1 << 40),
];

/// Current `changes-ttl-ms`.
pub fn changes_ttl_ms() -> u64 {
    CHANGES_TTL_MS.load(Ordering::Relaxed).max(0) as u64
}

/// Current `max-count`.
pub fn max_count() -> u64 {
    MAX_COUNT.load(Ordering::Relaxed).max(1) as u64
}

/// Current `max-records-per-call`.
pub fn max_records_per_call() -> u64 {
    MAX_RECORDS_PER_CALL.load(Ordering::Relaxed).max(1) as u64
}

/// Checks the load arguments (`<name> <value>` pairs): every name known,
/// every value a decimal integer in the config's range. The error names the
/// argument and the accepted range.
pub fn check_load_args(args: &[RedisString]) -> Result<(), String> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    check_pairs(&args)
}

fn check_pairs(args: &[&[u8]]) -> Result<(), String> {
    if !args.len().is_multiple_of(2) {
        return Err(format!(
            "load arguments must be <name> <value> pairs, got {} arguments",
            args.len()
        ));
    }
    for pair in args.chunks_exact(2) {
        let name = String::from_utf8_lossy(pair[0]);
        let value = String::from_utf8_lossy(pair[1]);
        let Some(&(_, min, max)) = RANGES.iter().find(|(n, _, _)| *n == name) else {
            let known: Vec<&str> = RANGES.iter().map(|r| r.0).collect();
            return Err(format!(
                "unknown load argument {name:?} (known: {})",
                known.join(", ")
            ));
        };
        let ok = !value.is_empty()
            && value.bytes().all(|b| b.is_ascii_digit())
            && value.parse::<i64>().is_ok_and(|v| (min..=max).contains(&v));
        if !ok {
            return Err(format!(
                "load argument {name} {value:?} must be an integer from {min} to {max}"
            ));
        }
    }
    Ok(())
}

/// Current `token-ttl-ms`.
pub fn token_ttl_ms() -> u64 {
    TOKEN_TTL_MS.load(Ordering::Relaxed).max(1) as u64
}
