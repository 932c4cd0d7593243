//! Decoding the module's replies.

use prost::Message;
use redis::Value;

use crate::error::{Error, Result};
use crate::pb::Record;

/// The kind of a reply, for messages (never its content: a reply may hold
/// payload bytes).
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) => "a bulk string",
        Value::Array(_) => "an array",
        Value::SimpleString(_) => "a simple string",
        Value::Okay => "OK",
        Value::Map(_) => "a map",
        Value::Set(_) => "a set",
        Value::Double(_) => "a double",
        Value::Boolean(_) => "a boolean",
        Value::ServerError(_) => "an error",
        _ => "another kind of reply",
    }
}

/// An integer reply (also accepted as a decimal bulk string).
pub(crate) fn uint(v: &Value, what: &str) -> Result<u64> {
    match v {
        Value::Int(i) => {
            u64::try_from(*i).map_err(|_| Error::protocol(format!("{what} is negative: {i}")))
        }
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::protocol(format!("{what} is not a number"))),
        other => Err(Error::protocol(format!(
            "{what}: expected an integer, got {}",
            kind(other)
        ))),
    }
}

/// An integer reply that may be negative (timestamps).
pub(crate) fn int(v: &Value, what: &str) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(Error::protocol(format!(
            "{what}: expected an integer, got {}",
            kind(other)
        ))),
    }
}

/// The elements of an array reply.
pub(crate) fn array(v: Value, what: &str) -> Result<Vec<Value>> {
    match v {
        Value::Array(items) | Value::Set(items) => Ok(items),
        other => Err(Error::protocol(format!(
            "{what}: expected an array, got {}",
            kind(&other)
        ))),
    }
}

/// The first `N` elements of an array reply (newer servers may append more).
pub(crate) fn tuple<const N: usize>(v: Value, what: &str) -> Result<[Value; N]> {
    let mut items = array(v, what)?;
    let len = items.len();
    items.truncate(N);
    items
        .try_into()
        .map_err(|_| Error::protocol(format!("{what}: expected {N} elements, got {len}")))
}

/// Bytes of a bulk string (or simple string) reply.
pub(crate) fn bytes(v: Value, what: &str) -> Result<Vec<u8>> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        other => Err(Error::protocol(format!(
            "{what}: expected a string, got {}",
            kind(&other)
        ))),
    }
}

/// A UTF-8 string reply.
pub(crate) fn string(v: Value, what: &str) -> Result<String> {
    String::from_utf8(bytes(v, what)?).map_err(|_| Error::protocol(format!("{what} is not UTF-8")))
}

/// A protobuf `Record` in `FORMAT PROTO`.
pub(crate) fn record(v: Value) -> Result<Record> {
    let b = bytes(v, "record")?;
    Record::decode(b.as_slice())
        .map_err(|e| Error::protocol(format!("record does not decode: {e}")))
}

/// A list of `FORMAT PROTO` records.
pub(crate) fn records(v: Value) -> Result<Vec<Record>> {
    array(v, "records")?.into_iter().map(record).collect()
}

/// A map reply (RESP3 map or RESP2 flat field-value array) as pairs.
pub(crate) fn pairs(v: Value, what: &str) -> Result<Vec<(String, Value)>> {
    match v {
        Value::Map(m) => m
            .into_iter()
            .map(|(k, v)| Ok((string(k, what)?, v)))
            .collect(),
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return Err(Error::protocol(format!(
                    "{what}: odd number of map elements"
                )));
            }
            let mut out = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((string(k, what)?, v));
            }
            Ok(out)
        }
        other => Err(Error::protocol(format!(
            "{what}: expected a map, got {}",
            kind(&other)
        ))),
    }
}

/// The reply of `DB.PUT` / `DB.DELETE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WriteReply {
    pub(crate) server_version: u64,
    pub(crate) modified_at_us: i64,
    pub(crate) versions: Vec<u64>,
}

/// Decodes `[server_version, modified_at_us, [v1..vn]]`.
pub(crate) fn write_reply(v: Value) -> Result<WriteReply> {
    let [sv, at, versions] = tuple::<3>(v, "write reply")?;
    Ok(WriteReply {
        server_version: uint(&sv, "server_version")?,
        modified_at_us: int(&at, "modified_at")?,
        versions: array(versions, "versions")?
            .iter()
            .map(|v| uint(v, "version"))
            .collect::<Result<_>>()?,
    })
}

/// The reply of `DB.SYNC`: `[server_version, next_after, [records...]]`,
/// with `next_stamp` as a 4th element on servers that detect rollbacks.
pub(crate) struct SyncReply {
    pub(crate) server_version: u64,
    pub(crate) next_after: u64,
    pub(crate) records: Vec<Record>,
    /// 0 when the server did not say.
    pub(crate) next_stamp: u64,
}

/// Decodes a `DB.SYNC` reply of 3 or 4 elements.
pub(crate) fn sync_reply(v: Value) -> Result<SyncReply> {
    let mut items = array(v, "DB.SYNC reply")?;
    if !(3..=4).contains(&items.len()) {
        return Err(Error::protocol(format!(
            "DB.SYNC reply: expected 3 or 4 elements, got {}",
            items.len()
        )));
    }
    let next_stamp = match items.get(3) {
        Some(v) => uint(v, "next_stamp")?,
        None => 0,
    };
    items.truncate(3);
    let records = items.pop().unwrap_or(Value::Nil);
    Ok(SyncReply {
        server_version: uint(&items[0], "server_version")?,
        next_after: uint(&items[1], "next_after")?,
        records: self::records(records)?,
        next_stamp,
    })
}

/// The reply of `DB.SYNCLATEST`: `[server_version, record_version,
/// next_cursor, [records...]]`, with `record_stamp` as a 5th element on
/// servers that detect rollbacks.
pub(crate) struct PageReply {
    pub(crate) server_version: u64,
    pub(crate) record_version: u64,
    pub(crate) next_cursor: String,
    pub(crate) records: Vec<Record>,
    /// 0 when the server did not say.
    pub(crate) record_stamp: u64,
}

/// Decodes a `DB.SYNCLATEST` reply of 4 or 5 elements.
pub(crate) fn page_reply(v: Value) -> Result<PageReply> {
    let mut items = array(v, "DB.SYNCLATEST reply")?;
    if !(4..=5).contains(&items.len()) {
        return Err(Error::protocol(format!(
            "DB.SYNCLATEST reply: expected 4 or 5 elements, got {}",
            items.len()
        )));
    }
    let record_stamp = match items.get(4) {
        Some(v) => uint(v, "record_stamp")?,
        None => 0,
    };
    items.truncate(4);
    let records = items.pop().unwrap_or(Value::Nil);
    let next_cursor = match items.pop() {
        Some(Value::Int(i)) => i.to_string(),
        Some(v) => string(v, "next_cursor")?,
        None => return Err(Error::protocol("DB.SYNCLATEST reply: no cursor")),
    };
    Ok(PageReply {
        server_version: uint(&items[0], "server_version")?,
        record_version: uint(&items[1], "record_version")?,
        next_cursor,
        records: self::records(records)?,
        record_stamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(version: u64) -> Value {
        let r = Record {
            version,
            r#type: "t".into(),
            id: "a".into(),
            ..Record::default()
        };
        Value::BulkString(r.encode_to_vec())
    }

    #[test]
    fn sync_replies_of_both_shapes() {
        let old = Value::Array(vec![
            Value::Int(7),
            Value::Int(3),
            Value::Array(vec![rec(3)]),
        ]);
        let r = sync_reply(old).unwrap();
        assert_eq!((r.server_version, r.next_after, r.next_stamp), (7, 3, 0));
        assert_eq!(r.records.len(), 1);
        let new = Value::Array(vec![
            Value::Int(7),
            Value::Int(3),
            Value::Array(vec![]),
            Value::Int(1_700_000_000_000_000),
        ]);
        let r = sync_reply(new).unwrap();
        assert_eq!(r.next_stamp, 1_700_000_000_000_000);
        assert!(sync_reply(Value::Array(vec![Value::Int(1), Value::Int(2)])).is_err());
    }

    #[test]
    fn page_replies_of_both_shapes() {
        let old = Value::Array(vec![
            Value::Int(7),
            Value::Int(9),
            Value::BulkString(b"0".to_vec()),
            Value::Array(vec![rec(9)]),
        ]);
        let p = page_reply(old).unwrap();
        assert_eq!(
            (
                p.server_version,
                p.record_version,
                p.next_cursor.as_str(),
                p.record_stamp
            ),
            (7, 9, "0", 0)
        );
        let new = Value::Array(vec![
            Value::Int(7),
            Value::Int(9),
            Value::Int(12),
            Value::Array(vec![]),
            Value::Int(42),
        ]);
        let p = page_reply(new).unwrap();
        assert_eq!((p.next_cursor.as_str(), p.record_stamp), ("12", 42));
    }

    #[test]
    fn messages_never_show_reply_content() {
        let secret = Value::BulkString(b"SECRET-PAYLOAD".to_vec());
        let e = uint(&Value::Array(vec![secret.clone()]), "x").unwrap_err();
        assert!(!format!("{e} {e:?}").contains("SECRET"));
        let e = array(secret, "x").unwrap_err();
        assert!(!format!("{e} {e:?}").contains("SECRET"));
    }
}
