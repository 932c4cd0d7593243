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

/// Calls with at most this many records check their fields against each
/// other pairwise instead of with a map.
const FEW: usize = 16;

/// True when `(type, id)` pairs `a` and `b` have the same `records` field
/// `<type>/<id>`.
fn same_field(a: (&str, &str), b: (&str, &str)) -> bool {
    fn field<'a>((t, i): (&'a str, &'a str)) -> impl Iterator<Item = u8> + 'a {
        t.bytes().chain(std::iter::once(b'/')).chain(i.bytes())
    }
    a.0.len() + a.1.len() == b.0.len() + b.1.len() && field(a).eq(field(b))
}

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
    for (k, &(rtype, id, _)) in items.iter().enumerate() {
        if items.len() <= FEW {
            // The first earlier item with the same field, found without
            // building fields (as the map below, for small calls).
            let same = items[..k]
                .iter()
                .find(|&&(t, i, _)| same_field((t, i), (rtype, id)));
            match same {
                Some(&(t, i, _)) if (t, i) != (rtype, id) => {
                    return Err(conflict(&record_field(rtype, id), t, i))
                }
                Some(_) => {}
                None => {
                    check_own(store, &keys, rtype, id)?;
                }
            }
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

#[cfg(test)]
mod tests {
    use super::same_field;

    #[test]
    fn same_field_is_field_equality() {
        assert!(same_field(("t", "a"), ("t", "a")));
        assert!(same_field(("a", "b/c"), ("a/b", "c")));
        assert!(!same_field(("t", "a"), ("t", "b")));
        assert!(!same_field(("t", "ab"), ("ta", "b")));
        assert!(!same_field(("t", "a"), ("t", "aa")));
    }
}
