//! A reply tree, built by the pure command logic and written out by the module.

/// One RESP reply. `Map` is a RESP3 map, sent as a flat field-value array to
/// RESP2 clients.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`-style status.
    Simple(&'static str),
    /// Integer.
    Int(i64),
    /// Binary-safe bulk string.
    Bulk(Vec<u8>),
    /// A bulk string known at compile time (field names).
    Name(&'static str),
    /// Null (RESP3 `_`, RESP2 null bulk string).
    Null,
    /// Array.
    Array(Vec<Reply>),
    /// Map with keys in the given order.
    Map(Vec<(Reply, Reply)>),
}

impl Reply {
    /// `+OK`.
    pub const OK: Reply = Reply::Simple("OK");

    /// An unsigned number: an integer when it fits in i64, else its decimal
    /// digits as a bulk string (only a Go-written `server_version` can be that large).
    pub fn uint(v: u64) -> Reply {
        match i64::try_from(v) {
            Ok(i) => Reply::Int(i),
            Err(_) => Reply::Bulk(v.to_string().into_bytes()),
        }
    }

    /// A bulk string from text.
    pub fn text(s: &str) -> Reply {
        Reply::Bulk(s.as_bytes().to_vec())
    }

    /// The bytes of a bulk reply, for tests.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(b) => Some(b),
            Reply::Name(n) => Some(n.as_bytes()),
            _ => None,
        }
    }

    /// The integer inside, for tests.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The elements of an array, for tests.
    pub fn as_array(&self) -> Option<&[Reply]> {
        match self {
            Reply::Array(a) => Some(a),
            _ => None,
        }
    }
}
