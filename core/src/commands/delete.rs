//! `DB.DELETE <ns> <type> <id> [<type> <id> ...]` (conditions and tokens:
//! `DB.WRITE`, since pairs leave no unambiguous room for options).

use super::txn::WriteStats;
use super::write::{self, Batch, Expect, Op};
use super::{arity, Env};
use crate::args::parse_name;
use crate::error::DbResult;
use crate::keys::Keys;
use crate::reply::Reply;
use crate::store::Store;

/// Runs `DB.DELETE`: a tombstone per pair, even for absent records.
pub fn run(store: &mut impl Store, env: Env, args: &[&[u8]]) -> DbResult<(Reply, WriteStats)> {
    arity(args.len() >= 3 && (args.len() - 1).is_multiple_of(2))?;
    let keys = Keys::new(args[0]);
    let mut ops = Vec::with_capacity((args.len() - 1) / 2);
    for t in args[1..].chunks_exact(2) {
        ops.push((
            Op::Delete(parse_name(t[0], "type")?, parse_name(t[1], "id")?),
            Expect::Any,
        ));
    }
    write::execute(store, env, &keys, &Batch { ops, token: None })
}
