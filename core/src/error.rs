//! Typed errors of every command, converted to a Redis error reply at the boundary.

use std::fmt;

/// Why a command failed. [`fmt::Display`] gives the full error reply text,
/// starting with the code word of SPEC section 4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// Wrong number of arguments (the module replies Redis's standard message).
    WrongArity,
    /// An unknown option or misplaced word: `ERR syntax error`.
    Syntax,
    /// A bad argument: `ERR <argument> <why>`.
    Arg(&'static str, String),
    /// A key of the namespace holds a value of another type.
    WrongType,
    /// `DB.SYNC` was given another namespace's server version, or a cursor past `last_version`.
    ServerVersion(String),
    /// Changes after the cursor were removed by retention.
    Trimmed(String),
    /// A `<type>/<id>` field already holds a record of another `(type, id)`.
    Conflict(String),
    /// A stored value does not decode.
    Corrupt(String),
    /// In cluster mode, the namespace has no hash tag.
    CrossSlot,
    /// The caller's ACL user may not access a key the command touches.
    NoPerm(String),
    /// Used memory is above `maxmemory` and the command would grow it.
    Oom,
    /// The server is configured so that writes could be lost silently (an
    /// evicting `maxmemory-policy`); the message names the setting.
    Misconf(String),
}

impl DbError {
    /// `ERR <arg> <why>`.
    pub fn arg(name: &'static str, why: impl Into<String>) -> Self {
        DbError::Arg(name, why.into())
    }

    /// `CORRUPT <what>`.
    pub fn corrupt(what: impl Into<String>) -> Self {
        DbError::Corrupt(what.into())
    }

    /// The code word the reply starts with.
    pub fn code(&self) -> &'static str {
        match self {
            DbError::WrongArity | DbError::Syntax | DbError::Arg(..) => "ERR",
            DbError::WrongType => "WRONGTYPE",
            DbError::ServerVersion(_) => "SERVERVERSION",
            DbError::Trimmed(_) => "TRIMMED",
            DbError::Conflict(_) => "CONFLICT",
            DbError::Corrupt(_) => "CORRUPT",
            DbError::CrossSlot => "CROSSSLOT",
            DbError::NoPerm(_) => "NOPERM",
            DbError::Oom => "OOM",
            DbError::Misconf(_) => "MISCONF",
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::WrongArity => write!(f, "ERR wrong number of arguments"),
            DbError::Syntax => write!(f, "ERR syntax error"),
            DbError::Arg(name, why) => write!(f, "ERR {name} {why}"),
            DbError::WrongType => write!(
                f,
                "WRONGTYPE Operation against a key holding the wrong kind of value"
            ),
            DbError::ServerVersion(m) => write!(f, "SERVERVERSION {m}"),
            DbError::Trimmed(m) => write!(f, "TRIMMED {m}"),
            DbError::Conflict(m) => write!(f, "CONFLICT {m}"),
            DbError::Corrupt(m) => write!(f, "CORRUPT {m}"),
            DbError::NoPerm(m) => write!(f, "NOPERM {m}"),
            DbError::Oom => write!(
                f,
                "OOM command not allowed when used memory > 'maxmemory' (deletes, lease renewals and releases, and capacity reductions still run)"
            ),
            DbError::Misconf(m) => write!(f, "MISCONF {m}"),
            DbError::CrossSlot => write!(
                f,
                "CROSSSLOT in cluster mode the namespace must contain a non-empty hash tag, like {{pomerium_v3}}"
            ),
        }
    }
}

impl std::error::Error for DbError {}

/// Result of a command.
pub type DbResult<T> = Result<T, DbError>;
