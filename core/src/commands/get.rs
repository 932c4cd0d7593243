//! `DB.GET <ns> <type> <id> [FORMAT MAP|PROTO]`

use super::{arity, expect_kind};
use crate::args::{is_word, parse_name, Opts};
use crate::error::{DbError, DbResult};
use crate::keys::{suffix, with_key, with_record_field};
use crate::record::{self, show, Format};
use crate::reply::Reply;
use crate::store::{KeyKind, Store};

/// Parses `[FORMAT MAP|PROTO]` (the only option).
pub fn parse_format_only(rest: &[&[u8]]) -> DbResult<Format> {
    let mut format = Format::Map;
    let mut opts = Opts::new(rest);
    while let Some(name) = opts.next_name() {
        if is_word(name, "FORMAT") {
            format = opts.format()?;
        } else {
            return Err(DbError::Syntax);
        }
    }
    Ok(format)
}

/// Runs `DB.GET`: the current record, or null.
pub fn run(store: &mut impl Store, args: &[&[u8]]) -> DbResult<Reply> {
    arity(args.len() >= 3)?;

    let rtype = parse_name(args[1], "type")?;
    let id = parse_name(args[2], "id")?;
    let format = parse_format_only(&args[3..])?;
    with_key(args[0], suffix::RECORDS, b"", |records| {
        expect_kind(store, records, KeyKind::Hash)?;
        // A field that belongs to another (type, id) reads as absent; the value
        // is borrowed (MAP reads it in place, PROTO copies it once).
        let mut reply = Ok(None);
        with_record_field(rtype, id, |field| {
            store.hget_with(records, field, &mut |bytes| {
                reply = record::formatted(
                    bytes,
                    format,
                    |t, i| (t, i) == (rtype, id),
                    || format!("{} field {}", show(records), show(field)),
                );
            })
        });
        Ok(reply?.unwrap_or(Reply::Null))
    })
}
