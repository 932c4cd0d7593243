//! `DB.SYNCLATEST <ns> [TYPE <type>] [FILTER <json>] [CURSOR <c>] [COUNT <n>]
//! [FORMAT MAP|PROTO]`: pages through all live records.

use super::{arity, expect_kind, state, Env};
use crate::args::{is_word, parse_in_range, parse_name, parse_u64, Opts};
use crate::error::{DbError, DbResult};
use crate::filter::{plan, Filter, Plan};
use crate::keys::{record_field, Keys};
use crate::record::{self, show, Format};
use crate::reply::Reply;
use crate::store::{KeyKind, Store};

/// Default `COUNT`.
pub const DEFAULT_COUNT: u64 = 100;
/// Most hash buckets (or sorted-set entries) one call scans, whatever the
/// `COUNT`: it keeps each call short (about half a millisecond for 256
/// records of a few hundred bytes) so that paging never stalls the server.
pub const MAX_SCAN_STEP: u64 = 256;

/// Runs `DB.SYNCLATEST`: `[server_version, record_version, next_cursor,
/// [records...], record_stamp]`; `record_stamp` is the stamp of the change at
/// `record_version` (0 when it is not retained): a `DB.SYNC` cursor starting
/// at `record_version` passes it as `STAMP`.
pub fn run(store: &mut impl Store, env: Env, args: &[&[u8]]) -> DbResult<Reply> {
    arity(!args.is_empty())?;
    let keys = Keys::new(args[0]);
    let mut rtype = None;
    let mut filter = Filter::All;
    let mut cursor = 0u64;
    let mut count = DEFAULT_COUNT.min(env.max_count);
    let mut format = Format::Map;
    let mut opts = Opts::new(&args[1..]);
    while let Some(name) = opts.next_name() {
        if is_word(name, "TYPE") {
            rtype = Some(parse_name(opts.value()?, "TYPE")?);
        } else if is_word(name, "FILTER") {
            filter = Filter::parse(opts.value()?)?;
        } else if is_word(name, "CURSOR") {
            cursor = parse_u64(opts.value()?, "CURSOR")?;
        } else if is_word(name, "COUNT") {
            count = parse_in_range(opts.value()?, "COUNT", 1, env.max_count)?;
        } else if is_word(name, "FORMAT") {
            format = opts.format()?;
        } else {
            return Err(DbError::Syntax);
        }
    }
    let st = state::read(store, &keys)?;
    let records_key = keys.records();
    expect_kind(store, records_key, KeyKind::Hash)?;
    if cursor == 0 {
        check_newest_record(store, &keys)?;
    }

    // Candidates as (field, stored bytes); every plan re-checks type, id and filter.
    let mut out = Vec::new();
    let mut failed = None;
    // Keeps a record unless its field belongs elsewhere or the query does not select it.
    let mut consider = |field: &[u8], bytes: &[u8]| {
        if failed.is_some() {
            return;
        }
        let keep = |t: &str, i: &str| {
            rtype.is_none_or(|want| want == t)
                && filter.matches(t, i)
                && record_field(t, i) == field
        };
        let what = || format!("{} field {}", show(records_key), show(field));
        match record::formatted(bytes, format, keep, what) {
            Ok(Some(r)) => out.push(r),
            Ok(None) => {}
            Err(e) => failed = Some(e),
        }
    };
    let step = count.min(MAX_SCAN_STEP) as usize;
    let next_cursor = match plan(rtype, &filter) {
        Plan::Nothing => 0,
        Plan::Lookup(pairs) => {
            // The cursor is the position in the sorted list of named pairs.
            let start = usize::try_from(cursor)
                .unwrap_or(usize::MAX)
                .min(pairs.len());
            let end = start.saturating_add(step).min(pairs.len());
            for (t, i) in &pairs[start..end] {
                let f = record_field(t, i);
                if let Some(v) = store.hget(records_key, &f) {
                    consider(&f, &v);
                }
            }
            if end < pairs.len() {
                end as u64
            } else {
                0
            }
        }
        Plan::ScanAll => store.hscan(records_key, cursor, step, &mut consider),
        Plan::ScanType(t) => {
            let zkey = keys.type_changes(t.as_bytes());
            expect_kind(store, &zkey, KeyKind::ZSet)?;
            let mut ids = Vec::new();
            let next = store.zscan(&zkey, cursor, step, &mut |id, _| ids.push(id.to_vec()));
            for id in ids {
                // Ids that are not UTF-8 cannot name a record (stale members are skipped).
                let Ok(id) = std::str::from_utf8(&id) else {
                    continue;
                };
                let f = record_field(&t, id);
                if let Some(v) = store.hget(records_key, &f) {
                    consider(&f, &v);
                }
            }
            next
        }
    };
    if let Some(e) = failed {
        return Err(e);
    }
    // The stamp of record_version: the newest change (state::read checked
    // that it is exactly last_version when one is retained).
    let mut record_stamp = 0;
    store.zlast_with(keys.changes(), &mut |member, _| {
        record_stamp = record::stamp(member).unwrap_or(0);
    });
    Ok(Reply::Array(vec![
        Reply::uint(st.server_version_or_zero()),
        Reply::uint(st.last_version),
        Reply::uint(next_cursor),
        Reply::Array(out),
        Reply::Int(record_stamp),
    ]))
}

/// A snapshot must not silently miss records: when the newest change is a
/// put, its record must be in `<ns>.records` with that version (a cheap
/// check that catches a lost `records` hash).
fn check_newest_record(store: &mut impl Store, keys: &Keys) -> DbResult<()> {
    let Some((member, version)) = store.zlast(keys.changes()) else {
        return Ok(());
    };
    let Ok(change) = record::decode(&member, String::new) else {
        return Ok(()); // served as CORRUPT by DB.SYNC; a snapshot does not read it
    };
    if change.deleted_at.is_some() {
        return Ok(());
    }
    let field = record_field(&change.r#type, &change.id);
    let held = store
        .hget(keys.records(), &field)
        .and_then(|b| record::decode(&b, String::new).ok());
    match held {
        Some(r) if r.version == change.version => Ok(()),
        _ => Err(state::inconsistent(
            keys,
            format!(
                "{} has no record {} at version {version} although it is the newest change",
                show(keys.records()),
                show(&field)
            ),
        )),
    }
}
