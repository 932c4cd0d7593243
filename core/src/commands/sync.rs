//! `DB.SYNC <ns> <server_version> <after_version> [STAMP <us>] [TYPE <type>]
//! [COUNT <n>] [BLOCK <ms>] [FORMAT MAP|PROTO]`: the change feed after a version.
//!
//! A cursor is `(server_version, after_version, stamp)`: the stamp is the
//! `modified_at` of the change at `after_version` as the client read it. A
//! namespace rolled back (RDB restore, truncated AOF, failover to a lagging
//! replica) re-issues versions with other changes; the stamp no longer
//! matches and the client is told to start over (`SERVERVERSION`) instead of
//! silently skipping the re-issued versions.

use super::versions::earliest_retained;
use super::{arity, state, Env};
use crate::args::{is_word, parse_in_range, parse_name, parse_u64, Opts};
use crate::error::{DbError, DbResult};
use crate::keys::Keys;
use crate::record::{self, show, Format};
use crate::reply::Reply;
use crate::store::{Bound, Store};

/// The longest `BLOCK` (2^53 ms, about 285 years): larger values would
/// overflow Redis's deadline arithmetic.
pub const MAX_BLOCK_MS: u64 = 1 << 53;

/// Default `COUNT`.
pub const DEFAULT_COUNT: u64 = 100;
/// Most changes one call examines when `TYPE` filters them (at least `COUNT`).
pub const SCAN_BUDGET: u64 = 1000;

/// Parsed `DB.SYNC` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncArgs<'a> {
    /// The namespace's keys.
    pub keys: Keys,
    /// The server version the client knows (0 = never written).
    pub server_version: u64,
    /// Return changes after this version.
    pub after: u64,
    /// `STAMP`: the `modified_at` (µs) of the change at `after` as the
    /// client read it (0 = do not check).
    pub stamp: i64,
    /// Only changes of this type.
    pub rtype: Option<&'a str>,
    /// At most this many records.
    pub count: u64,
    /// `BLOCK <ms>` (0 = forever).
    pub block_ms: Option<u64>,
    /// Reply format.
    pub format: Format,
}

impl<'a> SyncArgs<'a> {
    /// Parses the arguments after the command name.
    pub fn parse(args: &'a [&'a [u8]], env: &Env) -> DbResult<Self> {
        arity(args.len() >= 3)?;
        let mut a = SyncArgs {
            keys: Keys::new(args[0]),
            server_version: parse_u64(args[1], "server_version")?,
            after: parse_u64(args[2], "after_version")?,
            stamp: 0,
            rtype: None,
            count: DEFAULT_COUNT.min(env.max_count),
            block_ms: None,
            format: Format::Map,
        };
        let mut opts = Opts::new(&args[3..]);
        while let Some(name) = opts.next_name() {
            if is_word(name, "STAMP") {
                a.stamp = parse_in_range(opts.value()?, "STAMP", 0, i64::MAX as u64)? as i64;
            } else if is_word(name, "TYPE") {
                a.rtype = Some(parse_name(opts.value()?, "TYPE")?);
            } else if is_word(name, "COUNT") {
                a.count = parse_in_range(opts.value()?, "COUNT", 1, env.max_count)?;
            } else if is_word(name, "BLOCK") {
                a.block_ms = Some(parse_in_range(opts.value()?, "BLOCK", 0, MAX_BLOCK_MS)?);
            } else if is_word(name, "FORMAT") {
                a.format = opts.format()?;
            } else {
                return Err(DbError::Syntax);
            }
        }
        Ok(a)
    }
}

/// The answer of one `DB.SYNC` call.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncAnswer {
    /// `[server_version, next_after, [records...], next_stamp]`.
    pub reply: Reply,
    /// True when no change newer than `after` exists: a `BLOCK` call waits.
    pub caught_up: bool,
}

/// Runs `DB.SYNC` once, without blocking.
pub fn run(store: &mut impl Store, a: &SyncArgs<'_>) -> DbResult<SyncAnswer> {
    let st = state::read(store, &a.keys)?;
    let sv = st.server_version_or_zero();
    if a.server_version != sv {
        return Err(DbError::ServerVersion(format!(
            "server_version {} does not match the namespace's {sv}: start over with DB.SYNCLATEST",
            a.server_version
        )));
    }
    if a.after > st.last_version {
        return Err(DbError::ServerVersion(format!(
            "after_version {} is beyond last_version {}: start over with DB.SYNCLATEST",
            a.after, st.last_version
        )));
    }
    let earliest = earliest_retained(store, &a.keys, st.last_version)?;
    if a.after + 1 < earliest {
        return Err(DbError::Trimmed(format!(
            "changes after version {} were trimmed (earliest retained: {earliest}): start over with DB.SYNCLATEST",
            a.after
        )));
    }
    let changes = a.keys.changes();
    let budget = match a.rtype {
        Some(_) => SCAN_BUDGET.max(a.count),
        None => a.count,
    };
    // Read from the cursor's own change (when it is retained) to check its stamp.
    let mut examined = if a.after > 0 {
        store.zrange_from(changes, Bound::Incl(a.after as f64), budget as usize + 1)
    } else {
        store.zrange_from(changes, Bound::Excl(0.0), budget as usize)
    };
    let cursor_change = match examined.first() {
        Some((_, score)) if a.after > 0 && *score == a.after as f64 => Some(examined.remove(0).0),
        _ => None,
    };
    examined.truncate(budget as usize);
    let cursor_stamp = cursor_change.as_deref().and_then(record::stamp);
    if a.stamp != 0 && a.after > 0 {
        match cursor_stamp {
            Some(s) if s == a.stamp => {}
            Some(s) => {
                return Err(DbError::ServerVersion(format!(
                    "the change at version {} has stamp {s}, not the {} this cursor read: \
                     the namespace was rolled back (restore, failover or lost writes); \
                     start over with DB.SYNCLATEST",
                    a.after, a.stamp
                )))
            }
            None if cursor_change.is_some() => {
                return Err(DbError::corrupt(format!(
                    "{} member at version {} has no modified_at",
                    show(changes),
                    a.after
                )))
            }
            // Trimmed by retention just now: nothing left to check against.
            None if a.after < earliest => {}
            None => {
                return Err(state::inconsistent(
                    &a.keys,
                    format!("{} has no change at version {}", show(changes), a.after),
                ))
            }
        }
    }
    let mut next_after = a.after;
    let mut next_stamp = cursor_stamp.unwrap_or(a.stamp);
    let mut records = Vec::new();
    for (member, score) in examined {
        next_after = score as u64;
        next_stamp = record::stamp(&member).unwrap_or(0);
        let reply = match (a.rtype, a.format) {
            (None, Format::Proto) => Reply::Bulk(member), // served as stored
            _ => {
                let keep = |t: &str, _: &str| a.rtype.is_none_or(|want| want == t);
                let what = || format!("{} member at version {}", show(changes), score);
                match record::formatted(member, a.format, keep, what)? {
                    Some(r) => r,
                    None => continue,
                }
            }
        };
        records.push(reply);
        if records.len() as u64 >= a.count {
            break;
        }
    }
    Ok(SyncAnswer {
        caught_up: a.after == st.last_version,
        reply: Reply::Array(vec![
            Reply::uint(sv),
            Reply::uint(next_after),
            Reply::Array(records),
            Reply::Int(next_stamp),
        ]),
    })
}
