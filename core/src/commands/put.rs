//! `DB.PUT <ns> <type> <id> <payload> [<type> <id> <payload> ...]`

use std::collections::{BTreeMap, HashMap};

use prost_types::Any;

use super::txn::{check_own, conflict, Txn, WriteStats};
use super::{arity, capacity, refuse_growth, Env};
use crate::args::parse_name;
use crate::error::DbResult;
use crate::keys::{record_field, Keys};
use crate::record::type_score;
use crate::reply::Reply;
use crate::store::Store;

/// Runs `DB.PUT`.
pub fn run(store: &mut impl Store, env: Env, args: &[&[u8]]) -> DbResult<(Reply, WriteStats)> {
    arity(args.len() >= 4 && (args.len() - 1).is_multiple_of(3))?;
    refuse_growth(&env)?;
    let keys = Keys::new(args[0]);
    let mut items = Vec::with_capacity((args.len() - 1) / 3);
    for t in args[1..].chunks_exact(3) {
        items.push((parse_name(t[0], "type")?, parse_name(t[1], "id")?, t[2]));
    }
    let mut txn = Txn::begin(store, &keys, env)?;

    // Validate: key types, ambiguous fields (stored or within this call), options.
    let mut seen: HashMap<Vec<u8>, (&str, &str)> = HashMap::new();
    let mut caps: Vec<(&str, Option<u64>)> = Vec::new();
    for &(rtype, id, _) in &items {
        if items.len() == 1 {
            // Nothing else in this call can share the field.
            check_own(store, &keys, rtype, id)?;
        } else {
            let field = record_field(rtype, id);
            match seen.get(&field) {
                Some(&(t, i)) if (t, i) != (rtype, id) => return Err(conflict(&field, t, i)),
                Some(_) => {}
                None => {
                    check_own(store, &keys, rtype, id)?;
                    seen.insert(field, (rtype, id));
                }
            }
        }
        if !caps.iter().any(|(t, _)| *t == rtype) {
            txn.check_type(store, rtype)?;
            let opts = capacity::read_options(store, keys.options(), rtype)?;
            caps.push((rtype, opts.and_then(|o| o.capacity)));
        }
    }

    let versions: Vec<u64> = items.iter().map(|&(t, i, p)| txn.put(t, i, p)).collect();
    let score = type_score(env.now_us);
    for (rtype, cap) in caps {
        let Some(cap) = cap else { continue };
        let data: Vec<(&str, Any)> = items
            .iter()
            .filter(|(t, _, _)| *t == rtype)
            .map(|&(t, i, p)| {
                (
                    i,
                    Any {
                        type_url: t.to_string(),
                        value: p.to_vec(),
                    },
                )
            })
            .collect();
        // Later puts of the same id win, as in the records hash.
        let fresh: BTreeMap<&str, &Any> = data.iter().map(|(i, a)| (*i, a)).collect();
        capacity::enforce(store, &mut txn, rtype, cap, &fresh, score)?;
    }
    let reply = txn.write_reply(&versions);
    let stats = txn.commit(store)?;
    Ok((reply, stats))
}
