//! The client's error type and the classification of Redis failures.

use redis::{ErrorKind, RedisError, ServerErrorKind};

/// Everything a [`Backend`](crate::Backend) call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `SERVERVERSION`: the namespace's server version is not the one given, or
    /// the version asked for is beyond the newest one. Start over with
    /// [`Backend::sync_latest`](crate::Backend::sync_latest).
    #[error("invalid server version: {0}")]
    InvalidServerVersion(String),
    /// `TRIMMED`: changes the caller needs were removed by retention. Start
    /// over with [`Backend::sync_latest`](crate::Backend::sync_latest).
    #[error("changes were trimmed: {0}")]
    Trimmed(String),
    /// A transient failure (connection refused or reset, `LOADING`, `BUSY`,
    /// `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, a timeout) persisted through
    /// every attempt the [`RetryPolicy`](crate::RetryPolicy) allows.
    #[error("gave up after {attempts} attempts: {last}")]
    ExceededMaxRetries {
        /// How many attempts were made.
        attempts: u32,
        /// The failure of the last attempt.
        #[source]
        last: RedisError,
    },
    /// `CONFLICT`: the record's `<type>/<id>` field holds a different record
    /// (a type containing `/` made the field ambiguous).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A payload did not open: tampered, moved to another record, sealed with
    /// a key this client does not have, or not sealed at all.
    #[error("cannot decrypt {record_type}/{id}: {reason}")]
    Decrypt {
        /// The record's type.
        record_type: String,
        /// The record's id.
        id: String,
        /// Why it did not open.
        reason: String,
    },
    /// An argument the client refuses before sending anything (empty or too
    /// long type or id, data whose type URL is not the record's type, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A configuration the client cannot use (bad URL, unreadable TLS
    /// material, duplicate key ids, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The server replied with something this client does not understand.
    #[error("unexpected reply: {0}")]
    Protocol(String),
    /// [`Backend::close`](crate::Backend::close) was called.
    #[error("the backend is closed")]
    Closed,
    /// Any other Redis failure (server error replies such as `ERR`, `CORRUPT`,
    /// `CROSSSLOT`, `WRONGTYPE`, `OOM`, or a non-transient I/O or TLS error).
    #[error(transparent)]
    Redis(#[from] RedisError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The Redis error code word (`ERR`, `CROSSSLOT`, `TRIMMED`, ...) when the
    /// error came from a server reply.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::InvalidServerVersion(_) => Some("SERVERVERSION"),
            Error::Trimmed(_) => Some("TRIMMED"),
            Error::Conflict(_) => Some("CONFLICT"),
            Error::Redis(e) | Error::ExceededMaxRetries { last: e, .. } => e.code(),
            _ => None,
        }
    }

    /// Maps a Redis failure that is not retried to the typed error.
    pub(crate) fn from_redis(e: RedisError) -> Error {
        // A failed command inside MULTI/EXEC carries its code in the list of
        // server errors rather than in `code()`.
        let (code, detail) = match e.code() {
            Some(code) => (code.to_string(), e.detail().unwrap_or_default().to_string()),
            None => match e.clone().into_server_errors().as_deref() {
                Some([(_, first), ..]) => (
                    first.code().to_string(),
                    first.details().unwrap_or_default().to_string(),
                ),
                _ => return Error::Redis(e),
            },
        };
        match code.as_str() {
            "SERVERVERSION" => Error::InvalidServerVersion(detail),
            "TRIMMED" => Error::Trimmed(detail),
            "CONFLICT" => Error::Conflict(detail),
            _ => Error::Redis(e),
        }
    }

    pub(crate) fn protocol(what: impl Into<String>) -> Error {
        Error::Protocol(what.into())
    }
}

/// True for failures that may go away by themselves: worth a retry.
pub(crate) fn is_transient(e: &RedisError) -> bool {
    if e.is_connection_refusal() || e.is_connection_dropped() || e.is_timeout() {
        return true;
    }
    match e.kind() {
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown,
        )
        | ErrorKind::ClusterConnectionNotFound => true,
        _ => matches!(
            e.code(),
            Some("BUSY" | "LOADING" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN")
        ),
    }
}

/// True when the connection that produced `e` should be replaced.
pub(crate) fn needs_reconnect(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_unrecoverable_error()
}
