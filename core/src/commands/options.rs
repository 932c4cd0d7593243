//! `DB.SETOPTIONS <ns> <type> [CAPACITY <n>]` and `DB.GETOPTIONS <ns> <type>`.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;

use super::txn::{Txn, WriteStats};
use super::{arity, capacity, expect_kind, refuse_growth, Env};
use crate::args::{is_word, parse_name, parse_u64, Opts};
use crate::error::{DbError, DbResult};
use crate::keys::Keys;
use crate::pb::Options;
use crate::reply::Reply;
use crate::store::{KeyKind, Store};

/// Runs `DB.SETOPTIONS`: stores the options and enforces the capacity at
/// once; without `CAPACITY` removes the type's options.
pub fn set(store: &mut impl Store, env: Env, args: &[&[u8]]) -> DbResult<(Reply, WriteStats)> {
    arity(args.len() >= 2)?;
    let keys = Keys::new(args[0]);
    let rtype = parse_name(args[1], "type")?;
    let mut cap = None;
    let mut opts = Opts::new(&args[2..]);
    while let Some(name) = opts.next_name() {
        if is_word(name, "CAPACITY") {
            cap = Some(parse_u64(opts.value()?, "CAPACITY")?);
        } else {
            return Err(DbError::Syntax);
        }
    }
    let mut txn = Txn::begin(store, &keys, env)?;
    txn.check_type(store, rtype)?;
    if env.oom {
        // Above maxmemory only a capacity reduction runs: it can only free memory.
        expect_kind(store, keys.options(), KeyKind::Hash)?;
        let old = capacity::read_options(store, keys.options(), rtype)?.and_then(|o| o.capacity);
        let reduces = match (cap, old) {
            (Some(new), Some(old)) => new <= old,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !reduces {
            refuse_growth(&env)?;
        }
    }
    if let Some(c) = cap {
        // One call evicts at most max-records-per-call records: lower a
        // capacity in steps, so that no single call stalls the server.
        let live = store.zcard(&keys.type_changes(rtype.as_bytes()));
        let evict = live.saturating_sub(c);
        if evict > env.max_records_per_call {
            return Err(DbError::arg(
                "CAPACITY",
                format!(
                    "would evict {evict} records in one call, more than max-records-per-call ({}): lower it in steps",
                    env.max_records_per_call
                ),
            ));
        }
        capacity::enforce(
            store,
            &mut txn,
            rtype,
            c,
            &BTreeMap::new(),
            &BTreeSet::new(),
            0.0,
        )?;
        txn.set_options(rtype, Some(Options { capacity: Some(c) }.encode_to_vec()));
    } else if store.hget(keys.options(), rtype.as_bytes()).is_some() {
        txn.set_options(rtype, None);
    }
    let stats = txn.commit(store)?;
    Ok((Reply::OK, stats))
}

/// Runs `DB.GETOPTIONS`: `{capacity: n}` or an empty map.
pub fn get(store: &mut impl Store, args: &[&[u8]]) -> DbResult<Reply> {
    arity(args.len() == 2)?;
    let keys = Keys::new(args[0]);
    let rtype = parse_name(args[1], "type")?;
    expect_kind(store, keys.options(), KeyKind::Hash)?;
    let opts = capacity::read_options(store, keys.options(), rtype)?;
    let mut map = Vec::new();
    if let Some(c) = opts.and_then(|o| o.capacity) {
        map.push((Reply::text("capacity"), Reply::uint(c)));
    }
    Ok(Reply::Map(map))
}
