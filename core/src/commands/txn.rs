//! A write transaction: versions are issued and changes collected in memory,
//! then [`Txn::commit`] applies them all (the only place commands write).

use std::collections::{BTreeMap, HashMap};

use prost_types::Any;

use super::retention;
use super::state::{self, NsState};
use super::{expect_kind, Env};
use crate::error::{DbError, DbResult};
use crate::keys::{record_field, with_record_field, Keys};
use crate::pb::Record;
use crate::record::{self, type_score};
use crate::reply::Reply;
use crate::store::{KeyKind, Store};
use crate::MAX_VERSION;

/// The value of the namespace's marker key (cluster mode).
pub const MARKER: &[u8] = b"redis-databroker namespace";

/// Counts of what a committed transaction wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Records put.
    pub puts: u64,
    /// Tombstones written by deletes.
    pub deletes: u64,
    /// Tombstones written by capacity eviction.
    pub evictions: u64,
    /// Old changes removed by retention.
    pub trimmed: u64,
    /// `modified_at` of the oldest change left, when retention learned it.
    pub oldest_change_us: Option<i64>,
}

/// A `changes.<type>` member to add: (score, id).
type TypeAdd = (f64, Vec<u8>);

/// The pending writes of one command to one namespace.
pub struct Txn<'k> {
    keys: &'k Keys,
    env: Env,
    state: NsState,
    next: u64,
    changes: Vec<(u64, Vec<u8>)>,
    /// `records` field and the index in `changes` of the encoded record.
    record_sets: Vec<(Vec<u8>, usize)>,
    /// `records` field and the index in `changes` of the tombstone.
    record_dels: Vec<(Vec<u8>, usize)>,
    /// Per type (sorted by type), the `changes.<type>` members to add.
    type_adds: Vec<(String, Vec<TypeAdd>)>,
    type_rems: BTreeMap<Vec<u8>, Vec<Vec<u8>>>,
    types: Vec<String>,
    options: Vec<(String, Option<Vec<u8>>)>,
    remember: Option<(Vec<u8>, Vec<u8>, i64)>,
    stats: WriteStats,
}

impl<'k> Txn<'k> {
    /// Type-checks every key of the namespace a write touches (except the
    /// per-type sets, see [`Txn::check_type`]) and reads the counters.
    pub fn begin(store: &mut impl Store, keys: &'k Keys, env: Env) -> DbResult<Self> {
        let state = state::read(store, keys)?;
        expect_kind(store, keys.records(), KeyKind::Hash)?;
        expect_kind(store, keys.changes(), KeyKind::ZSet)?;
        expect_kind(store, keys.options(), KeyKind::Hash)?;
        expect_kind(store, keys.record_types(), KeyKind::Set)?;
        Ok(Txn {
            keys,
            env,
            state,
            next: state.last_version + 1,
            changes: Vec::new(),
            record_sets: Vec::new(),
            record_dels: Vec::new(),
            type_adds: Vec::new(),
            type_rems: BTreeMap::new(),
            types: Vec::new(),
            options: Vec::new(),
            remember: None,
            stats: WriteStats::default(),
        })
    }

    /// Type-checks `<ns>.changes.<type>`.
    pub fn check_type(&self, store: &mut impl Store, rtype: &str) -> DbResult<()> {
        self.keys
            .with_type_changes(rtype.as_bytes(), |k| expect_kind(store, k, KeyKind::ZSet))
    }

    /// The namespace's keys.
    pub fn keys(&self) -> &Keys {
        self.keys
    }

    /// The command's clock reading.
    pub fn now_us(&self) -> i64 {
        self.env.now_us
    }

    /// The server version the namespace has, or gets with this commit: a
    /// new one is drawn from 1 to 2^53, exact in every client (JavaScript
    /// and Lua numbers are doubles); larger stored values (Go-written) are kept.
    pub fn server_version(&self) -> u64 {
        self.state
            .server_version
            .unwrap_or_else(|| new_server_version(self.env.random))
    }

    fn issue(&mut self) -> u64 {
        let v = self.next;
        self.next += 1;
        v
    }

    fn note_type(&mut self, rtype: &str) {
        if !self.types.iter().any(|t| t == rtype) {
            self.types.push(rtype.to_string());
        }
    }

    /// Puts a record; returns its version.
    pub fn put(&mut self, rtype: &str, id: &str, payload: &[u8]) -> u64 {
        let v = self.issue();
        let bytes = encode_put(v, rtype, id, payload, self.env.now_us);
        self.record_sets
            .push((record_field(rtype, id), self.changes.len()));
        self.changes.push((v, bytes));
        let add = (type_score(self.env.now_us), id.as_bytes().to_vec());
        match self
            .type_adds
            .binary_search_by(|(t, _)| t.as_str().cmp(rtype))
        {
            Ok(i) => self.type_adds[i].1.push(add),
            Err(i) => self.type_adds.insert(i, (rtype.to_string(), vec![add])),
        }
        self.note_type(rtype);
        self.stats.puts += 1;
        v
    }

    fn tombstone(&mut self, rtype: &str, id: &str, data: Option<Any>) -> u64 {
        let v = self.issue();
        let rec = record::tombstone(v, rtype, id, data, self.env.now_us);
        self.record_dels
            .push((record_field(rtype, id), self.changes.len()));
        self.changes.push((v, record::encode(&rec)));
        self.drop_member(rtype, id.as_bytes());
        self.note_type(rtype);
        v
    }

    /// Deletes a record (writing a tombstone carrying `data`); returns its version.
    pub fn delete(&mut self, rtype: &str, id: &str, data: Option<Any>) -> u64 {
        self.stats.deletes += 1;
        self.tombstone(rtype, id, data)
    }

    /// Evicts a record for capacity; returns the tombstone's version.
    pub fn evict(&mut self, rtype: &str, id: &str, data: Option<Any>) -> u64 {
        self.stats.evictions += 1;
        self.tombstone(rtype, id, data)
    }

    /// Removes a member of `changes.<type>` that has no live record.
    pub fn drop_member(&mut self, rtype: &str, member: &[u8]) {
        self.type_rems
            .entry(rtype.as_bytes().to_vec())
            .or_default()
            .push(member.to_vec());
    }

    /// Stores `value` at `key` expiring at `at_ms` with the commit (an
    /// idempotency token's remembered reply).
    pub fn remember(&mut self, key: Vec<u8>, value: Vec<u8>, at_ms: i64) {
        self.remember = Some((key, value, at_ms));
    }

    /// Sets (Some) or removes (None) the stored options of `rtype`.
    pub fn set_options(&mut self, rtype: &str, bytes: Option<Vec<u8>>) {
        self.options.push((rtype.to_string(), bytes));
    }

    /// Applies every pending write, then bumps `last_version`, emits the
    /// keyspace events, publishes and wakes waiting `DB.SYNC` clients.
    /// Fails (writing nothing) only when versions would pass 2^53.
    pub fn commit(self, store: &mut impl Store) -> DbResult<WriteStats> {
        let last = self.next - 1;
        if last > MAX_VERSION {
            return Err(DbError::arg(
                "versions",
                "would exceed 2^53: the namespace is full",
            ));
        }
        let keys = self.keys;
        let issued = !self.changes.is_empty();
        // By the layout's invariant a type whose `changes.<type>` exists is
        // in `record_types` already: only the others need a membership check.
        // (A bit per type; types past the 64th always get the check.)
        let mut known = 0u64;
        for (i, t) in self.types.iter().enumerate().take(64) {
            if issued && keys.with_type_changes(t.as_bytes(), |k| store.kind(k)) == KeyKind::ZSet {
                known |= 1 << i;
            }
        }
        for (rtype, bytes) in &self.options {
            match bytes {
                Some(b) => store.hset(keys.options(), &[(rtype.as_bytes(), b.as_slice())]),
                None => store.hdel(keys.options(), &[rtype.as_bytes()]),
            }
        }
        if issued && self.env.cluster && store.kind(keys.marker()) == KeyKind::Missing {
            store.set(keys.marker(), MARKER);
        }
        if issued && self.state.server_version.is_none() {
            store.set(
                keys.server_version(),
                self.server_version().to_string().as_bytes(),
            );
        }
        // A record both put and deleted in this command ends as its last
        // operation left it (only a command that does both needs to look).
        let last_op = self.last_ops();
        let live = |field: &[u8]| last_op.as_ref().and_then(|m| m.get(field).copied());
        let set_live = |(f, i): &&(Vec<u8>, usize)| live(f).is_none_or(|(last, _)| last == *i);
        let sets = self.record_sets.iter().filter(set_live);
        let n = sets.clone().count();
        if n > 0 {
            let pairs = sets.map(|(f, i)| (f.as_slice(), self.changes[*i].1.as_slice()));
            with_slice(n, pairs, |pairs| store.hset(keys.records(), pairs));
        }
        for (rtype, adds) in &self.type_adds {
            let kept = adds
                .iter()
                .filter(|(_, m)| {
                    last_op.is_none()
                        || live(&member_field(rtype.as_bytes(), m)).is_some_and(|(_, put)| put)
                })
                .map(|(s, m)| (*s, m.as_slice()));
            let n = kept.clone().count();
            if n > 0 {
                with_slice(n, kept, |kept| {
                    keys.with_type_changes(rtype.as_bytes(), |k| store.zadd(k, kept))
                });
            }
        }
        let fields: Vec<&[u8]> = self
            .record_dels
            .iter()
            .filter(|(f, i)| live(f).is_none_or(|(last, _)| last == *i))
            .map(|(f, _)| f.as_slice())
            .collect();
        if !fields.is_empty() {
            store.hdel(keys.records(), &fields);
        }
        for (rtype, rems) in &self.type_rems {
            let members: Vec<&[u8]> = rems
                .iter()
                .filter(|m| {
                    last_op.is_none() || !live(&member_field(rtype, m)).is_some_and(|(_, put)| put)
                })
                .map(Vec::as_slice)
                .collect();
            if !members.is_empty() {
                keys.with_type_changes(rtype, |k| store.zrem(k, &members));
            }
        }
        if issued {
            let pairs = self.changes.iter().map(|(v, b)| (*v as f64, b.as_slice()));
            with_slice(self.changes.len(), pairs, |pairs| {
                store.zadd(keys.changes(), pairs)
            });
            let types_key = keys.record_types();
            let new_types: Vec<&[u8]> = self
                .types
                .iter()
                .enumerate()
                .filter(|(i, _)| *i >= 64 || known & (1 << i) == 0)
                .map(|(_, t)| t.as_bytes())
                .filter(|t| !store.sismember(types_key, t))
                .collect();
            if !new_types.is_empty() {
                store.sadd(types_key, &new_types);
            }
            if let Some((key, value, at_ms)) = &self.remember {
                store.set_px_at(key, value, *at_ms);
            }
            let mut text = [0u8; 20];
            let last_text = decimal(last, &mut text);
            store.set(keys.last_version(), last_text);
            if self.stats.puts > 0 {
                store.notify("db.put", keys.records());
            }
            if self.stats.deletes + self.stats.evictions > 0 {
                store.notify("db.delete", keys.records());
            }
            let mut stats = self.stats;
            let t = retention::trim(
                store,
                keys,
                self.env.now_us,
                self.env.changes_ttl_ms,
                retention::TRIM_BATCH,
                self.env.oldest_change_us,
            );
            stats.trimmed = t.count as u64;
            stats.oldest_change_us = t.oldest_us;
            store.publish(keys.last_version_ch(), last_text);
            store.signal_ready(keys.last_version());
            return Ok(stats);
        }
        Ok(self.stats)
    }

    /// For a command that both puts and deletes records: each written
    /// field's last operation (its index in `changes`, and whether it was a
    /// put). None otherwise.
    fn last_ops(&self) -> Option<HashMap<&[u8], (usize, bool)>> {
        let mixed = self.stats.puts > 0 && self.stats.deletes + self.stats.evictions > 0;
        if !mixed {
            return None;
        }
        let mut last: HashMap<&[u8], (usize, bool)> = HashMap::new();
        let ops = self.record_sets.iter().map(|(f, i)| (f, *i, true));
        for (f, i, put) in ops.chain(self.record_dels.iter().map(|(f, i)| (f, *i, false))) {
            let slot = last.entry(f.as_slice()).or_insert((i, put));
            if i > slot.0 {
                *slot = (i, put);
            }
        }
        Some(last)
    }

    /// The `DB.PUT`/`DB.DELETE` reply: `[server_version, modified_at_us, [versions]]`.
    pub fn write_reply(&self, versions: &[u64]) -> Reply {
        Reply::Array(vec![
            Reply::uint(self.server_version()),
            Reply::Int(self.env.now_us),
            Reply::Array(versions.iter().map(|v| Reply::uint(*v)).collect()),
        ])
    }
}

/// Runs `f` on the `n` items of `items` as a slice, on the stack when few.
fn with_slice<T: Copy + Default, R>(
    n: usize,
    items: impl Iterator<Item = T>,
    f: impl FnOnce(&[T]) -> R,
) -> R {
    let mut few = [T::default(); 8];
    if n <= few.len() {
        let mut k = 0;
        for (slot, item) in few.iter_mut().zip(items) {
            *slot = item;
            k += 1;
        }
        f(&few[..k])
    } else {
        f(&items.collect::<Vec<T>>())
    }
}

/// `n` in decimal, written into `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn varint_len(n: u64) -> usize {
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_bytes(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    if !bytes.is_empty() {
        out.push(tag);
        put_varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
}

fn bytes_len(bytes: &[u8]) -> usize {
    if bytes.is_empty() {
        0
    } else {
        1 + varint_len(bytes.len() as u64) + bytes.len()
    }
}

/// `record::encode(&record::new_record(..))`, written straight into one
/// buffer of the exact size (the same bytes prost writes: proto3 fields
/// in order, defaults left out, `data` always present).
fn encode_put(version: u64, rtype: &str, id: &str, payload: &[u8], now_us: i64) -> Vec<u8> {
    let ts = record::timestamp(now_us);
    let (secs, nanos) = (ts.seconds as u64, ts.nanos as i64 as u64);
    let ts_len = if secs != 0 { 1 + varint_len(secs) } else { 0 }
        + if nanos != 0 { 1 + varint_len(nanos) } else { 0 };
    let any_len = bytes_len(rtype.as_bytes()) + bytes_len(payload);
    let len = if version != 0 {
        1 + varint_len(version)
    } else {
        0
    } + bytes_len(rtype.as_bytes())
        + bytes_len(id.as_bytes())
        + 1
        + varint_len(any_len as u64)
        + any_len
        + 1
        + varint_len(ts_len as u64)
        + ts_len;
    let mut out = Vec::with_capacity(len);
    if version != 0 {
        out.push(0x08);
        put_varint(&mut out, version);
    }
    put_bytes(&mut out, 0x12, rtype.as_bytes());
    put_bytes(&mut out, 0x1a, id.as_bytes());
    out.push(0x22);
    put_varint(&mut out, any_len as u64);
    put_bytes(&mut out, 0x0a, rtype.as_bytes());
    put_bytes(&mut out, 0x12, payload);
    out.push(0x2a);
    put_varint(&mut out, ts_len as u64);
    if secs != 0 {
        out.push(0x08);
        put_varint(&mut out, secs);
    }
    if nanos != 0 {
        out.push(0x10);
        put_varint(&mut out, nanos);
    }
    debug_assert_eq!(out.len(), len);
    out
}

/// A new namespace's server version from a random number: 1 to 2^53.
pub fn new_server_version(random: u64) -> u64 {
    random % MAX_VERSION + 1
}

/// The records field of a `changes.<type>` member (binary).
fn member_field(rtype: &[u8], member: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(rtype.len() + 1 + member.len());
    f.extend_from_slice(rtype);
    f.push(b'/');
    f.extend_from_slice(member);
    f
}

/// Checks that the `records` field of `(rtype, id)` is free or holds that
/// record (`CONFLICT` otherwise, `CORRUPT` when it does not decode); true
/// when the record exists. Reads only the owner, not the data.
pub fn check_own(store: &mut impl Store, keys: &Keys, rtype: &str, id: &str) -> DbResult<bool> {
    with_record_field(rtype, id, |field| {
        let mut checked = Ok(true);
        let found = store.hget_with(keys.records(), field, &mut |bytes| {
            checked = match record::owner(bytes) {
                Some((t, i)) if (t, i) == (rtype, id) => Ok(true),
                Some((t, i)) => Err(conflict(field, t, i)),
                None => Err(DbError::corrupt(format!(
                    "{} field {} does not decode as a Record",
                    record::show(keys.records()),
                    record::show(field)
                ))),
            };
        });
        if found {
            checked
        } else {
            Ok(false)
        }
    })
}

/// Reads the record at `field` and checks it belongs to `(rtype, id)`:
/// `CONFLICT` when the field holds another record, `CORRUPT` when it does not decode.
pub fn read_own(
    store: &mut impl Store,
    keys: &Keys,
    rtype: &str,
    id: &str,
) -> DbResult<Option<Record>> {
    let field = record_field(rtype, id);
    let Some(bytes) = store.hget(keys.records(), &field) else {
        return Ok(None);
    };
    let rec = record::decode(&bytes, || {
        format!(
            "{} field {}",
            record::show(keys.records()),
            record::show(&field)
        )
    })?;
    if rec.r#type != rtype || rec.id != id {
        return Err(conflict(&field, &rec.r#type, &rec.id));
    }
    Ok(Some(rec))
}

/// The `CONFLICT` error for a field held by `(held_type, held_id)`.
pub fn conflict(field: &[u8], held_type: &str, held_id: &str) -> DbError {
    DbError::Conflict(format!(
        "field {} already holds the record of type {:?} id {:?}",
        record::show(field),
        held_type,
        held_id
    ))
}

#[cfg(test)]
mod encode_tests {
    use super::*;

    #[test]
    fn decimal_text() {
        for n in [0u64, 7, 10, 99, 1 << 53, u64::MAX] {
            let mut buf = [0u8; 20];
            assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
        }
        let few = with_slice(3, [1, 2, 3].into_iter(), |s: &[i32]| s.to_vec());
        assert_eq!(few, [1, 2, 3]);
        let many = with_slice(9, 0..9, |s: &[i32]| s.to_vec());
        assert_eq!(many, (0..9).collect::<Vec<_>>());
    }

    #[test]
    fn encode_put_is_prost_encoding() {
        let big = vec![7u8; 300];
        for (v, t, i, p, now) in [
            (1u64, "t", "a", &b"x"[..], 1_732_563_189_123_456i64),
            (0, "", "", &b""[..], 0),
            (u64::MAX, "type/with/slash", "id", &big[..], -1),
            (1 << 53, "t", "\u{e9}", &[0u8, 1, 2][..], -1_000_001),
            (300, "x", "y", &big[..200], 1_000_000),
            (5, "x", "y", &b"z"[..], 999_999),
        ] {
            assert_eq!(
                encode_put(v, t, i, p, now),
                record::encode(&record::new_record(v, t, i, p, now)),
                "{v} {t:?} {i:?} {now}"
            );
        }
    }
}
