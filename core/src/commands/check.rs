//! `DB.CHECK <ns>`: a full consistency check of a namespace, for an operator
//! after an incident. It reads every key of the namespace (O(N) in records
//! plus retained changes, like `DEBUG DIGEST-VALUE`), writes nothing, and
//! replies with one line per violated invariant (an empty array when the
//! namespace is consistent). Lease keys are not checked (they have no
//! counterpart to check against).

use std::collections::{BTreeMap, BTreeSet};

use super::{arity, Env};
use crate::error::DbResult;
use crate::keys::{record_field, Keys};
use crate::pb::Record;
use crate::record::{self, micros, show, type_score};
use crate::reply::Reply;
use crate::store::{KeyKind, Store};
use crate::MAX_VERSION;

/// Most problems listed; the rest are counted in a last line.
pub const MAX_PROBLEMS: usize = 100;
/// Items one scan step asks for.
const STEP: usize = 1000;

/// The problems found so far.
struct Problems {
    lines: Vec<String>,
    more: usize,
}

impl Problems {
    fn add(&mut self, key: &[u8], what: impl Into<String>) {
        if self.lines.len() < MAX_PROBLEMS {
            self.lines.push(format!("{}: {}", show(key), what.into()));
        } else {
            self.more += 1;
        }
    }
}

fn kind_name(k: KeyKind) -> &'static str {
    match k {
        KeyKind::Missing => "nothing",
        KeyKind::String => "a string",
        KeyKind::Hash => "a hash",
        KeyKind::ZSet => "a sorted set",
        KeyKind::Set => "a set",
        KeyKind::Other => "another type",
    }
}

/// True when `key` is missing or of kind `want`; reports it otherwise.
fn kind_ok(store: &mut impl Store, p: &mut Problems, key: &[u8], want: KeyKind) -> bool {
    let k = store.kind(key);
    if k == KeyKind::Missing || k == want {
        return true;
    }
    p.add(
        key,
        format!("holds {}, not {}", kind_name(k), kind_name(want)),
    );
    false
}

fn counter(store: &mut impl Store, p: &mut Problems, key: &[u8]) -> Option<u64> {
    if !kind_ok(store, p, key, KeyKind::String) {
        return None;
    }
    super::state::read_u64(store, key).unwrap_or_else(|_| {
        p.add(key, "does not hold a decimal u64");
        None
    })
}

/// The latest retained change of one record.
struct Latest {
    version: u64,
    deleted: bool,
    bytes: Vec<u8>,
}

/// Runs `DB.CHECK`.
pub fn run(store: &mut impl Store, env: Env, args: &[&[u8]]) -> DbResult<Reply> {
    arity(args.len() == 1)?;
    let keys = Keys::new(args[0]);
    let mut p = Problems {
        lines: Vec::new(),
        more: 0,
    };
    let sv = counter(store, &mut p, keys.server_version());
    let lv_key = keys.last_version();
    let lv_present = store.kind(lv_key) != KeyKind::Missing;
    let lv = counter(store, &mut p, lv_key).unwrap_or(0);
    if lv > MAX_VERSION {
        p.add(
            lv_key,
            format!("holds {lv}, beyond the largest version 2^53"),
        );
    }
    if sv == Some(0) {
        p.add(keys.server_version(), "is 0 (server versions are non-zero)");
    }

    // Changes: every retained version once, contiguous, ending at last_version.
    let changes_key = keys.changes();
    let mut changes: Vec<(f64, Vec<u8>)> = Vec::new();
    if kind_ok(store, &mut p, changes_key, KeyKind::ZSet) {
        let mut cursor = 0;
        loop {
            cursor = store.zscan(changes_key, cursor, STEP, &mut |m, s| {
                changes.push((s, m.to_vec()))
            });
            if cursor == 0 {
                break;
            }
        }
    }
    changes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut latest: BTreeMap<(String, String), Latest> = BTreeMap::new();
    let mut prev: Option<u64> = None;
    let mut types_seen: BTreeSet<String> = BTreeSet::new();
    for (score, member) in &changes {
        let v = *score as u64;
        if *score != v as f64 || v == 0 || v > MAX_VERSION {
            p.add(
                changes_key,
                format!("holds a change with score {score}, not a version"),
            );
            continue;
        }
        match prev {
            Some(q) if q == v => p.add(
                changes_key,
                format!("holds two changes at version {v} (a version was issued twice)"),
            ),
            Some(q) if v > q + 1 => p.add(
                changes_key,
                format!("versions {} to {} are missing", q + 1, v - 1),
            ),
            _ => {}
        }
        prev = Some(v);
        if v > lv {
            p.add(
                changes_key,
                format!("holds version {v}, beyond last_version {lv}"),
            );
        }
        let rec = match record::decode(member, String::new) {
            Ok(r) => r,
            Err(_) => {
                p.add(
                    changes_key,
                    format!("change at version {v} does not decode"),
                );
                continue;
            }
        };
        if rec.version != v {
            p.add(
                changes_key,
                format!("change at version {v} says version {}", rec.version),
            );
        }
        if rec.modified_at.is_none() {
            p.add(
                changes_key,
                format!("change at version {v} has no modified_at"),
            );
        }
        types_seen.insert(rec.r#type.clone());
        latest.insert(
            (rec.r#type, rec.id),
            Latest {
                version: v,
                deleted: rec.deleted_at.is_some(),
                bytes: member.clone(),
            },
        );
    }
    let earliest = changes.first().map_or(lv + 1, |(s, _)| *s as u64);
    match changes.last() {
        Some((s, _)) if (*s as u64) < lv => p.add(
            changes_key,
            format!("ends at version {s} but last_version is {lv} (its newest changes are gone)"),
        ),
        Some(_) if !lv_present => p.add(lv_key, "is missing while changes hold versions"),
        _ => {}
    }
    if lv > 0 && sv.is_none() {
        p.add(
            keys.server_version(),
            "is missing while versions were issued",
        );
    }

    // Records: each decodes, sits in its own field, is live, matches its newest change.
    let records_key = keys.records();
    let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let records_ok = kind_ok(store, &mut p, records_key, KeyKind::Hash);
    if records_ok {
        let mut cursor = 0;
        loop {
            cursor = store.hscan(records_key, cursor, STEP, &mut |f, v| {
                records.push((f.to_vec(), v.to_vec()))
            });
            if cursor == 0 {
                break;
            }
        }
    }
    if records_ok && !records.is_empty() && lv == 0 {
        p.add(lv_key, "is missing while records exist");
    }
    let cutoff = (env.changes_ttl_ms > 0).then(|| {
        env.now_us.saturating_sub(
            i64::try_from(env.changes_ttl_ms.saturating_mul(1000)).unwrap_or(i64::MAX),
        )
    });
    let mut live: BTreeMap<String, Vec<(String, Record)>> = BTreeMap::new();
    let mut live_ids: BTreeSet<(String, String)> = BTreeSet::new();
    for (field, bytes) in &records {
        let Ok(rec) = record::decode(bytes, String::new) else {
            p.add(
                records_key,
                format!("field {} does not decode", show(field)),
            );
            continue;
        };
        let name = format!("field {}", show(field));
        if record_field(&rec.r#type, &rec.id) != *field {
            p.add(
                records_key,
                format!(
                    "{name} holds the record of type {:?} id {:?}",
                    rec.r#type, rec.id
                ),
            );
        }
        if rec.deleted_at.is_some() {
            p.add(records_key, format!("{name} holds a deleted record"));
        }
        if rec.version > lv {
            p.add(
                records_key,
                format!(
                    "{name} has version {}, beyond last_version {lv}",
                    rec.version
                ),
            );
        }
        let id = (rec.r#type.clone(), rec.id.clone());
        match latest.get(&id) {
            Some(l) if l.version > rec.version && l.deleted => p.add(
                records_key,
                format!(
                    "{name} (version {}) survives its deletion at version {}",
                    rec.version, l.version
                ),
            ),
            Some(l) if l.version != rec.version => p.add(
                records_key,
                format!(
                    "{name} has version {} but its newest change is version {}",
                    rec.version, l.version
                ),
            ),
            Some(l) if l.bytes != *bytes => p.add(
                records_key,
                format!("{name} differs from its change at version {}", l.version),
            ),
            Some(_) => {}
            None if rec.version >= earliest => p.add(
                changes_key,
                format!("has no change at version {} ({name})", rec.version),
            ),
            None => {
                // Not retained: fine if retention trimmed it (old enough), else lost.
                let young = match (cutoff, rec.modified_at.as_ref()) {
                    (None, _) => true,
                    (Some(c), Some(t)) => micros(t) >= c,
                    (Some(_), None) => false,
                };
                if young {
                    p.add(
                        changes_key,
                        format!(
                            "has no change at version {} ({name}) although retention would keep it",
                            rec.version
                        ),
                    );
                }
            }
        }
        types_seen.insert(rec.r#type.clone());
        live_ids.insert(id);
        live.entry(rec.r#type.clone())
            .or_default()
            .push((rec.id.clone(), rec));
    }
    for ((t, i), l) in &latest {
        if !l.deleted && !live_ids.contains(&(t.clone(), i.clone())) {
            p.add(
                records_key,
                format!(
                    "has no record {} although its newest change (version {}) is a put (lost without a tombstone)",
                    show(&record_field(t, i)),
                    l.version
                ),
            );
        }
    }

    // Per-type sets: one member per live record, scored by its modified_at.
    let types_key = keys.record_types();
    let mut known_types: BTreeSet<String> = BTreeSet::new();
    if kind_ok(store, &mut p, types_key, KeyKind::Set) {
        for m in store.smembers(types_key) {
            known_types.insert(String::from_utf8_lossy(&m).into_owned());
        }
    }
    for t in &types_seen {
        if !known_types.contains(t) {
            p.add(types_key, format!("lacks type {t:?}"));
        }
    }
    for t in known_types
        .iter()
        .chain(types_seen.difference(&known_types))
    {
        let zkey = keys.type_changes(t.as_bytes());
        if !kind_ok(store, &mut p, &zkey, KeyKind::ZSet) {
            continue;
        }
        let mut members: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
        let mut cursor = 0;
        loop {
            cursor = store.zscan(&zkey, cursor, STEP, &mut |m, s| {
                members.insert(m.to_vec(), s);
            });
            if cursor == 0 {
                break;
            }
        }
        let recs = live.get(t).map(Vec::as_slice).unwrap_or_default();
        for (id, rec) in recs {
            match members.get(id.as_bytes()) {
                None => p.add(&zkey, format!("lacks live record id {id:?}")),
                Some(s) => {
                    let want = rec.modified_at.as_ref().map(|m| type_score(micros(m)));
                    if want.is_some_and(|w| (w - s).abs() > 1e-3) {
                        p.add(&zkey, format!("scores id {id:?} {s}, not its modified_at"));
                    }
                }
            }
        }
        // Members without a record are stale ids the Go backend left behind
        // (tolerated, dropped by the next write), unless the records hash is
        // gone altogether.
        if records.is_empty() && !members.is_empty() && lv > 0 {
            p.add(
                records_key,
                format!("is empty while {} holds {} ids", show(&zkey), members.len()),
            );
        }
    }

    // Options decode, and capacities hold.
    let options_key = keys.options();
    if kind_ok(store, &mut p, options_key, KeyKind::Hash) {
        let mut opts: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = store.hscan(options_key, cursor, STEP, &mut |f, v| {
                opts.push((f.to_vec(), v.to_vec()))
            });
            if cursor == 0 {
                break;
            }
        }
        for (t, bytes) in opts {
            match record::decode_options(&bytes, String::new) {
                Err(_) => p.add(options_key, format!("field {} does not decode", show(&t))),
                Ok(o) => {
                    let n = live.get(&*String::from_utf8_lossy(&t)).map_or(0, Vec::len) as u64;
                    if let Some(c) = o.capacity.filter(|c| n > *c) {
                        p.add(
                            options_key,
                            format!(
                                "type {} holds {n} records, above its capacity {c}",
                                show(&t)
                            ),
                        );
                    }
                }
            }
        }
    }

    let mut out: Vec<Reply> = p
        .lines
        .into_iter()
        .map(|l| Reply::Bulk(l.into_bytes()))
        .collect();
    if p.more > 0 {
        out.push(Reply::Bulk(
            format!("... and {} more problems", p.more).into_bytes(),
        ));
    }
    Ok(Reply::Array(out))
}
