//! `DB.PUT <ns> [IF <v>[,<v>...]] [TOKEN <token>] <type> <id> <payload> [<type> <id> <payload> ...]`

use super::txn::WriteStats;
use super::write::{self, conditions_match, leading_options, Batch, Expect, Op};
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
    let n = records.len() / 3;
    let mut ops = Vec::with_capacity(n);
    for (i, t) in records.chunks_exact(3).enumerate() {
        let op = Op::Put(parse_name(t[0], "type")?, parse_name(t[1], "id")?, t[2]);
        let e = expect.as_ref().and_then(|e| e.get(i).copied());
        ops.push((op, e.unwrap_or(Expect::Any)));
    }
    if let Some(e) = &expect {
        conditions_match(e.len(), n)?;
    }
    let batch = Batch { ops, token };
    write::execute(store, env, &keys, &batch)
}
