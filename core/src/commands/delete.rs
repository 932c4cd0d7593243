//! `DB.DELETE <ns> <type> <id> [<type> <id> ...]`

use std::collections::HashMap;

use prost_types::Any;

use super::txn::{conflict, read_own, Txn, WriteStats};
use super::{arity, check_records_per_call, Env};
use crate::args::parse_name;
use crate::error::DbResult;
use crate::keys::{record_field, Keys};
use crate::reply::Reply;
use crate::store::Store;

/// Who holds a records field and the data it holds, as a delete proceeds.
type Holder<'a> = ((&'a str, &'a str), Option<Any>);

/// Runs `DB.DELETE`: a tombstone per pair, even for absent records.
pub fn run(store: &mut impl Store, env: Env, args: &[&[u8]]) -> DbResult<(Reply, WriteStats)> {
    arity(args.len() >= 3 && (args.len() - 1).is_multiple_of(2))?;
    check_records_per_call((args.len() - 1) / 2, &env)?;
    let keys = Keys::new(args[0]);
    let mut pairs = Vec::with_capacity((args.len() - 1) / 2);
    for t in args[1..].chunks_exact(2) {
        pairs.push((parse_name(t[0], "type")?, parse_name(t[1], "id")?));
    }
    let mut txn = Txn::begin(store, &keys, env)?;
    // field -> (owner, data it holds now within this command)
    let mut current: HashMap<Vec<u8>, Holder<'_>> = HashMap::new();
    let mut checked_types: Vec<&str> = Vec::new();
    for &(rtype, id) in &pairs {
        if !checked_types.contains(&rtype) {
            txn.check_type(store, rtype)?;
            checked_types.push(rtype);
        }
        let field = record_field(rtype, id);
        match current.get(&field) {
            Some(((t, i), _)) if (*t, *i) != (rtype, id) => return Err(conflict(&field, t, i)),
            Some(_) => {}
            None => {
                let data = read_own(store, &keys, rtype, id)?.and_then(|r| r.data);
                current.insert(field, ((rtype, id), data));
            }
        }
    }
    let mut versions = Vec::with_capacity(pairs.len());
    for &(rtype, id) in &pairs {
        let data = current
            .get_mut(&record_field(rtype, id))
            .and_then(|(_, d)| d.take());
        versions.push(txn.delete(rtype, id, data));
    }
    let reply = txn.write_reply(&versions);
    let stats = txn.commit(store)?;
    Ok((reply, stats))
}
