//! `DB.SYNCLATEST <ns> [TYPE <type>] [FILTER <json>] [CURSOR <c>] [COUNT <n>]
//! [FORMAT MAP|PROTO]`: pages through all live records.

use super::{arity, expect_kind, state, Env};
use crate::args::{is_word, parse_in_range, parse_name, parse_u64, Opts};
use crate::error::{DbError, DbResult};
use crate::filter::{plan, Filter, Plan};
use crate::keys::{record_field, Keys};
use crate::record::{self, show, Format};
use crate::reply::Reply;
use crate::store::{KeyKind, ScanPage, Store};

/// Default `COUNT`.
pub const DEFAULT_COUNT: u64 = 100;

/// Runs `DB.SYNCLATEST`: `[server_version, record_version, next_cursor, [records...]]`.
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

    // Candidates as (field, stored bytes); every plan re-checks type, id and filter.
    let (next_cursor, candidates): ScanPage<(Vec<u8>, Vec<u8>)> = match plan(rtype, &filter) {
        Plan::Nothing => (0, Vec::new()),
        Plan::Lookup(pairs) => {
            let found = pairs
                .iter()
                .filter_map(|(t, i)| {
                    let f = record_field(t, i);
                    store.hget(records_key, &f).map(|v| (f, v))
                })
                .collect();
            (0, found)
        }
        Plan::ScanAll => store.hscan(records_key, cursor, count as usize),
        Plan::ScanType(t) => {
            let zkey = keys.type_changes(t.as_bytes());
            expect_kind(store, &zkey, KeyKind::ZSet)?;
            let (next, ids) = store.zscan(&zkey, cursor, count as usize);
            let found = ids
                .iter()
                .filter_map(|id| {
                    let f = record_field(&t, std::str::from_utf8(id).ok()?);
                    store.hget(records_key, &f).map(|v| (f, v))
                })
                .collect();
            (next, found)
        }
    };

    let mut out = Vec::with_capacity(candidates.len());
    for (field, bytes) in candidates {
        // Skip a field whose record belongs elsewhere, or that the query does not select.
        let keep = |t: &str, i: &str| {
            rtype.is_none_or(|want| want == t)
                && filter.matches(t, i)
                && record_field(t, i) == field
        };
        let what = || format!("{} field {}", show(records_key), show(&field));
        if let Some(r) = record::formatted(bytes, format, keep, what)? {
            out.push(r);
        }
    }
    Ok(Reply::Array(vec![
        Reply::uint(st.server_version_or_zero()),
        Reply::uint(st.last_version),
        Reply::uint(next_cursor),
        Reply::Array(out),
    ]))
}
