//! The one write path of `DB.PUT`, `DB.DELETE` and `DB.WRITE`: a batch of
//! puts and deletes applied in order in one transaction, with optional
//! per-record conditions (optimistic concurrency) and an optional
//! idempotency token (exactly-once retries).
//!
//! - A condition names the version a record must have before the call
//!   (`0`: absent or deleted; `*`: no condition). Every condition of the
//!   batch is checked against the records as stored before the call, before
//!   anything is written: a failed condition answers `CONFLICT` with the
//!   current versions and writes nothing.
//! - A token is remembered in `<ns>.token.<token>` (a string with an expiry,
//!   replicated and persisted like any key) holding a digest of the call and
//!   its reply; the same token again within `token-ttl-ms` answers the
//!   original reply without writing. The same token with other arguments is
//!   refused (`CONFLICT`).
//!
//! `DB.WRITE <ns> [TOKEN <token>] PUT <type> <id> <payload> [IF <v>] | DEL <type> <id> [IF <v>] ...`

use std::collections::{BTreeMap, BTreeSet, HashMap};

use prost_types::Any;

use super::txn::{check_own, conflict, read_own, Txn, WriteStats};
use super::{arity, capacity, refuse_growth, Env};
use crate::args::{is_word, parse_name, parse_token, parse_u64};
use crate::error::{DbError, DbResult};
use crate::keys::{record_field, Keys};
use crate::record::{self, type_score};
use crate::reply::Reply;
use crate::store::{KeyKind, Store};

/// One record operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// Put `payload` as record `(type, id)`.
    Put(&'a str, &'a str, &'a [u8]),
    /// Delete record `(type, id)` (a tombstone).
    Delete(&'a str, &'a str),
}

impl<'a> Op<'a> {
    fn name(&self) -> (&'a str, &'a str) {
        match *self {
            Op::Put(t, i, _) | Op::Delete(t, i) => (t, i),
        }
    }
}

/// A record's condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No condition (`*`).
    Any,
    /// The record's current version must be this (0 = absent or deleted).
    Version(u64),
}

impl Expect {
    fn parse(arg: &[u8]) -> DbResult<Self> {
        if arg == b"*" {
            return Ok(Expect::Any);
        }
        parse_u64(arg, "IF")
            .map(Expect::Version)
            .map_err(|_| DbError::arg("IF", "must be a version, 0 (absent) or * (any)"))
    }

    fn show(self) -> String {
        match self {
            Expect::Any => "*".into(),
            Expect::Version(v) => v.to_string(),
        }
    }
}

/// A parsed batch.
#[derive(Debug, Clone, Default)]
pub struct Batch<'a> {
    /// The operations, in order, each with its condition.
    pub ops: Vec<(Op<'a>, Expect)>,
    /// The idempotency token.
    pub token: Option<&'a [u8]>,
}

impl Batch<'_> {
    fn conditional(&self) -> bool {
        self.ops.iter().any(|(_, e)| *e != Expect::Any)
    }
}

/// `(conditions, token, record arguments)` of a call with leading options.
pub type LeadingOptions<'a> = (Option<Vec<Expect>>, Option<&'a [u8]>, &'a [&'a [u8]]);

/// Parses `IF <v>[,<v>...]` and `TOKEN <t>` before the records of `DB.PUT`
/// (`args` after the namespace). A call without options has a multiple of
/// `group` arguments; each option adds two, so a call whose count is not a
/// multiple of `group` must start with options (today's calls are never
/// read differently). Returns the conditions (one per record, when given),
/// the token and the record arguments.
pub fn leading_options<'a>(args: &'a [&'a [u8]], group: usize) -> DbResult<LeadingOptions<'a>> {
    let (mut expect, mut token, mut rest) = (None, None, args);
    while !rest.len().is_multiple_of(group) {
        match rest {
            [w, v, tail @ ..] if is_word(w, "IF") && expect.is_none() => {
                let list = v
                    .split(|&b| b == b',')
                    .map(Expect::parse)
                    .collect::<DbResult<Vec<_>>>()?;
                expect = Some(list);
                rest = tail;
            }
            [w, v, tail @ ..] if is_word(w, "TOKEN") && token.is_none() => {
                token = Some(parse_token(v, "TOKEN")?);
                rest = tail;
            }
            [] | [_] => return Err(DbError::WrongArity),
            _ => return Err(DbError::Syntax),
        }
    }
    Ok((expect, token, rest))
}

/// Checks that `IF` lists one condition per record.
pub fn conditions_match(conditions: usize, records: usize) -> DbResult<()> {
    if conditions == records {
        Ok(())
    } else {
        Err(DbError::arg(
            "IF",
            format!("lists {conditions} versions for {records} records"),
        ))
    }
}

/// Runs `DB.WRITE`.
pub fn run(store: &mut impl Store, env: Env, args: &[&[u8]]) -> DbResult<(Reply, WriteStats)> {
    arity(args.len() >= 4)?;
    let keys = Keys::new(args[0]);
    let mut batch = Batch::default();
    let mut rest = &args[1..];
    if let [w, v, tail @ ..] = rest {
        if is_word(w, "TOKEN") {
            batch.token = Some(parse_token(v, "TOKEN")?);
            rest = tail;
        }
    }
    while let Some((w, tail)) = rest.split_first() {
        let (op, tail) = if is_word(w, "PUT") {
            match tail {
                [t, i, p, tail @ ..] => (
                    Op::Put(parse_name(t, "type")?, parse_name(i, "id")?, p),
                    tail,
                ),
                _ => return Err(DbError::WrongArity),
            }
        } else if is_word(w, "DEL") {
            match tail {
                [t, i, tail @ ..] => (
                    Op::Delete(parse_name(t, "type")?, parse_name(i, "id")?),
                    tail,
                ),
                _ => return Err(DbError::WrongArity),
            }
        } else {
            return Err(DbError::Syntax);
        };
        let (expect, tail) = match tail {
            [w, v, tail @ ..] if is_word(w, "IF") => (Expect::parse(v)?, tail),
            _ => (Expect::Any, tail),
        };
        batch.ops.push((op, expect));
        rest = tail;
    }
    arity(!batch.ops.is_empty())?;
    execute(store, env, &keys, &batch)
}

/// A stable digest of a batch (FNV-1a over its parts), stored with a token
/// to recognise a token reused for another write.
fn digest(batch: &Batch<'_>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (op, e) in &batch.ops {
        match *op {
            Op::Put(t, i, p) => {
                eat(b"P");
                eat(t.as_bytes());
                eat(i.as_bytes());
                eat(p);
            }
            Op::Delete(t, i) => {
                eat(b"D");
                eat(t.as_bytes());
                eat(i.as_bytes());
            }
        }
        eat(e.show().as_bytes());
    }
    h
}

/// The token key's value: `<digest> <server_version> <modified_at> <v1,v2,...>`.
fn remembered(digest: u64, sv: u64, at: i64, versions: &[u64]) -> Vec<u8> {
    let list: Vec<String> = versions.iter().map(u64::to_string).collect();
    format!("{digest:016x} {sv} {at} {}", list.join(",")).into_bytes()
}

/// The reply a token remembers, if it was stored for this batch.
fn recall(keys: &Keys, token: &[u8], stored: &[u8], digest: u64) -> DbResult<Reply> {
    let bad = || {
        DbError::corrupt(format!(
            "{} does not hold a remembered reply",
            record::show(&keys.token(token))
        ))
    };
    let text = std::str::from_utf8(stored).map_err(|_| bad())?;
    let mut parts = text.split(' ');
    let (Some(d), Some(sv), Some(at), Some(list), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad());
    };
    if u64::from_str_radix(d, 16).map_err(|_| bad())? != digest {
        return Err(DbError::Conflict(format!(
            "TOKEN {} was used for another write",
            record::show(token)
        )));
    }
    let sv: u64 = sv.parse().map_err(|_| bad())?;
    let at: i64 = at.parse().map_err(|_| bad())?;
    let versions = list
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|v| v.parse::<u64>().map(Reply::uint).map_err(|_| bad()))
        .collect::<DbResult<Vec<_>>>()?;
    Ok(Reply::Array(vec![
        Reply::uint(sv),
        Reply::Int(at),
        Reply::Array(versions),
    ]))
}

/// Who holds a records field and the data it holds, as the batch proceeds.
type Holder<'a> = ((&'a str, &'a str), Option<Any>);

/// Applies a batch atomically: checks the token, every key, field and
/// condition, then issues versions in order, enforces capacity for the
/// types it put, and commits. Puts grow memory (refused above `maxmemory`);
/// a batch of deletes only does not.
pub fn execute(
    store: &mut impl Store,
    env: Env,
    keys: &Keys,
    batch: &Batch<'_>,
) -> DbResult<(Reply, WriteStats)> {
    super::check_records_per_call(batch.ops.len(), &env)?;
    let digest = batch.token.map(|_| digest(batch));
    if let Some(token) = batch.token {
        let tkey = keys.token(token);
        super::expect_kind(store, &tkey, KeyKind::String)?;
        if let Some(stored) = store.get(&tkey) {
            let reply = recall(keys, token, &stored, digest.unwrap_or(0))?;
            return Ok((reply, WriteStats::default()));
        }
    }
    if batch.ops.iter().any(|(o, _)| matches!(o, Op::Put(..))) || batch.token.is_some() {
        refuse_growth(&env)?;
    }
    let mut txn = Txn::begin(store, keys, env)?;

    // Validate: per-type keys and options, field owners, conditions.
    let mut current: HashMap<Vec<u8>, Holder<'_>> = HashMap::new();
    let mut caps: Vec<(&str, Option<u64>)> = Vec::new();
    let mut checked: Vec<&str> = Vec::new();
    let mut stored_versions: HashMap<Vec<u8>, u64> = HashMap::new();
    let need_versions = batch.conditional();
    let single = matches!(batch.ops.as_slice(), [(Op::Put(..), Expect::Any)]);
    if let [(Op::Put(rtype, id, _), Expect::Any)] = batch.ops.as_slice() {
        // The common case, one unconditional put: nothing in the call can
        // share its field, and no data or version needs reading.
        txn.check_type(store, rtype)?;
        let opts = capacity::read_options(store, keys.options(), rtype)?;
        caps.push((rtype, opts.and_then(|o| o.capacity)));
        check_own(store, keys, rtype, id)?;
    }
    for &(op, _) in batch.ops.iter().filter(|_| !single) {
        let (rtype, id) = op.name();
        if !checked.contains(&rtype) {
            checked.push(rtype);
            txn.check_type(store, rtype)?;
        }
        if matches!(op, Op::Put(..)) && !caps.iter().any(|(t, _)| *t == rtype) {
            let opts = capacity::read_options(store, keys.options(), rtype)?;
            caps.push((rtype, opts.and_then(|o| o.capacity)));
        }
        let field = record_field(rtype, id);
        match current.get(&field) {
            Some(((t, i), _)) if (*t, *i) != (rtype, id) => return Err(conflict(&field, t, i)),
            Some(_) => {}
            None => {
                let (data, version) = if matches!(op, Op::Delete(..)) || need_versions {
                    match read_own(store, keys, rtype, id)? {
                        Some(r) => (r.data, r.version),
                        None => (None, 0),
                    }
                } else {
                    check_own(store, keys, rtype, id)?;
                    (None, 0)
                };
                if need_versions {
                    stored_versions.insert(field.clone(), version);
                }
                current.insert(field, ((rtype, id), data));
            }
        }
    }
    if need_versions {
        let now: Vec<u64> = batch
            .ops
            .iter()
            .map(|(op, _)| {
                let (t, i) = op.name();
                stored_versions
                    .get(&record_field(t, i))
                    .copied()
                    .unwrap_or(0)
            })
            .collect();
        let failed = batch
            .ops
            .iter()
            .zip(&now)
            .any(|((_, e), v)| matches!(e, Expect::Version(want) if want != v));
        if failed {
            let show = |v: &[String]| v.join(",");
            return Err(DbError::Conflict(format!(
                "IF failed: current versions {} (expected {})",
                show(&now.iter().map(u64::to_string).collect::<Vec<_>>()),
                show(&batch.ops.iter().map(|(_, e)| e.show()).collect::<Vec<_>>()),
            )));
        }
    }

    // Apply in order; remember what each capped type put (live at the end)
    // and deleted, and the data a later delete of the same record carries.
    let has_deletes = batch.ops.iter().any(|(o, _)| matches!(o, Op::Delete(..)));
    let capped = |rtype: &str| caps.iter().any(|(t, c)| *t == rtype && c.is_some());
    let mut versions = Vec::with_capacity(batch.ops.len());
    let mut fresh: BTreeMap<&str, BTreeMap<&str, Any>> = BTreeMap::new();
    let mut gone: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for &(op, _) in &batch.ops {
        let (rtype, id) = op.name();
        match op {
            Op::Put(_, _, payload) => {
                versions.push(txn.put(rtype, id, payload));
                if !has_deletes && !capped(rtype) {
                    continue;
                }
                let any = Any {
                    type_url: rtype.to_string(),
                    value: payload.to_vec(),
                };
                if has_deletes {
                    if let Some(h) = current.get_mut(&record_field(rtype, id)) {
                        h.1 = Some(any.clone());
                    }
                    gone.entry(rtype).or_default().remove(id);
                }
                if capped(rtype) {
                    fresh.entry(rtype).or_default().insert(id, any);
                }
            }
            Op::Delete(..) => {
                let field = record_field(rtype, id);
                let data = current.get_mut(&field).and_then(|h| h.1.take());
                versions.push(txn.delete(rtype, id, data));
                if let Some(f) = fresh.get_mut(rtype) {
                    f.remove(id);
                }
                gone.entry(rtype).or_default().insert(id);
            }
        }
    }
    let score = type_score(env.now_us);
    for (rtype, cap) in caps {
        let Some(cap) = cap else { continue };
        let empty = BTreeMap::new();
        let put: BTreeMap<&str, &Any> = fresh
            .get(rtype)
            .unwrap_or(&empty)
            .iter()
            .map(|(i, a)| (*i, a))
            .collect();
        let deleted = gone.get(rtype).cloned().unwrap_or_default();
        capacity::enforce(store, &mut txn, rtype, cap, &put, &deleted, score)?;
    }
    let reply = txn.write_reply(&versions);
    if let (Some(token), Some(d)) = (batch.token, digest) {
        let value = remembered(d, txn.server_version(), env.now_us, &versions);
        txn.remember(
            keys.token(token),
            value,
            env.now_us / 1000 + env.token_ttl_ms as i64,
        );
    }
    let stats = txn.commit(store)?;
    Ok((reply, stats))
}
