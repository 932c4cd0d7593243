//! `DB.PUT <ns> [IF <v>[,<v>...]] [TOKEN <token>] <type> <id> <payload> [<type> <id> <payload> ...]`

use super::txn::WriteStats;
use super::write::{self, leading_options, with_conditions, Batch, Op};
use super::{arity, Env};
use crate::args::parse_name;
use crate::error::DbResult;
use crate::keys::Keys;
use crate::reply::Reply;
use crate::store::Store;

/// Runs `DB.PUT`.
pub fn run(store: &mut impl Store, env: Env, args: &[&[u8]]) -> DbResult<(Reply, WriteStats)> {
    arity(args.len() >= 4)?;
    let keys = Keys::new(args[0]);
    let (expect, token, records) = leading_options(&args[1..], 3)?;
    arity(!records.is_empty())?;
    let mut ops = Vec::with_capacity(records.len() / 3);
    for t in records.chunks_exact(3) {
        ops.push(Op::Put(
            parse_name(t[0], "type")?,
            parse_name(t[1], "id")?,
            t[2],
        ));
    }
    let batch = Batch {
        ops: with_conditions(ops, expect)?,
        token,
    };
    write::execute(store, env, &keys, &batch)
}
