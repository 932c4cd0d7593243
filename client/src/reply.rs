//! Decoding the module's replies.

use prost::Message;
use redis::Value;

use crate::error::{Error, Result};
use crate::pb::Record;

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
            "{what}: expected an integer, got {other:?}"
        ))),
    }
}

/// An integer reply that may be negative (timestamps).
pub(crate) fn int(v: &Value, what: &str) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(Error::protocol(format!(
            "{what}: expected an integer, got {other:?}"
        ))),
    }
}

/// The elements of an array reply.
pub(crate) fn array(v: Value, what: &str) -> Result<Vec<Value>> {
    match v {
        Value::Array(items) | Value::Set(items) => Ok(items),
        other => Err(Error::protocol(format!(
            "{what}: expected an array, got {other:?}"
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
            "{what}: expected a string, got {other:?}"
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
            "{what}: expected a map, got {other:?}"
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
