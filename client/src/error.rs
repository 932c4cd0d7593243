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
    /// A conditional write ([`Backend::put_if`](crate::Backend::put_if))
    /// found other versions than expected and wrote nothing.
    #[error("version conflict: current versions {current:?}")]
    VersionConflict {
        /// The current version of each record of the call, in order (0: absent).
        current: Vec<u64>,
    },
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
    /// The server refused the credentials (`WRONGPASS`, `NOAUTH`, a failed
    /// `AUTH` while connecting). Not retried: the backend waits its backoff
    /// before it dials again, and calls in between get this error at once.
    #[error("authentication failed: {0}")]
    Authentication(#[source] RedisError),
    /// The server does not know the module's commands: the databroker module
    /// is not loaded there. Holds the command the server did not know.
    #[error("the databroker module is not loaded on the server (unknown command {0})")]
    ModuleNotLoaded(String),
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
            Error::Conflict(_) | Error::VersionConflict { .. } => Some("CONFLICT"),
            Error::Redis(e)
            | Error::ExceededMaxRetries { last: e, .. }
            | Error::Authentication(e) => e.code(),
            _ => None,
        }
    }

    /// Maps a Redis failure that is not retried to the typed error. Server
    /// error texts that echo the command's arguments (`unknown command ...,
    /// with args beginning with: ...`) are scrubbed, so no error this crate
    /// returns carries payload bytes.
    pub(crate) fn from_redis(e: RedisError) -> Error {
        if is_auth_failure(&e) {
            return Error::Authentication(e);
        }
        // Inside MULTI/EXEC (EXECABORT), the queued commands' own errors.
        if let Some(errors) = e.clone().into_server_errors() {
            for (_, se) in errors.iter() {
                if let Some(command) = unknown_command(se.details().unwrap_or_default()) {
                    if command.to_ascii_uppercase().starts_with("DB.") {
                        return Error::ModuleNotLoaded(command);
                    }
                }
            }
        }
        // A failed command inside MULTI/EXEC carries its code in the list of
        // server errors rather than in `code()`.
        let (code, detail) = match e.code() {
            Some(code) => (code.to_string(), e.detail().unwrap_or_default().to_string()),
            None => match e.clone().into_server_errors().as_deref() {
                Some(errors) => {
                    // The first error that says something: in an aborted
                    // transaction, the queued command's own error.
                    let pick = errors
                        .iter()
                        .find(|(_, se)| unknown_command(se.details().unwrap_or_default()).is_some())
                        .or_else(|| errors.first());
                    match pick {
                        Some((_, first)) => (
                            first.code().to_string(),
                            first.details().unwrap_or_default().to_string(),
                        ),
                        None => return Error::Redis(scrub(e)),
                    }
                }
                _ => return Error::Redis(scrub(e)),
            },
        };
        if let Some(command) = unknown_command(&detail) {
            if command.to_ascii_uppercase().starts_with("DB.") {
                return Error::ModuleNotLoaded(command);
            }
        }
        match code.as_str() {
            "SERVERVERSION" => Error::InvalidServerVersion(detail),
            "TRIMMED" => Error::Trimmed(detail),
            "CONFLICT" => match version_conflict(&detail) {
                Some(current) => Error::VersionConflict { current },
                None => Error::Conflict(detail),
            },
            "NOAUTH" | "WRONGPASS" => Error::Authentication(e),
            _ => Error::Redis(scrub(e)),
        }
    }

    pub(crate) fn protocol(what: impl Into<String>) -> Error {
        Error::Protocol(what.into())
    }
}

/// The current versions of `CONFLICT IF failed: current versions 3,0 (expected ...)`.
pub(crate) fn version_conflict(detail: &str) -> Option<Vec<u64>> {
    let rest = detail.strip_prefix("IF failed: current versions ")?;
    let list = rest.split(' ').next()?;
    list.split(',').map(|v| v.parse().ok()).collect()
}

/// The command named by a server's `unknown command '<name>', with args
/// beginning with: ...` message (the name only, never the arguments).
pub(crate) fn unknown_command(detail: &str) -> Option<String> {
    let rest = detail.strip_prefix("unknown command ")?;
    let quote = rest.chars().next().filter(|c| matches!(c, '\'' | '`'))?;
    let name: String = rest[1..]
        .chars()
        .take_while(|c| *c != quote)
        .take(64)
        .collect();
    Some(name)
}

/// Marker the server puts before the arguments it echoes.
const ECHOED_ARGS: &str = "with args beginning with";

/// `e` without the arguments a server error echoes (the command name and
/// error code stay). Errors that echo nothing are returned as they are.
pub(crate) fn scrub(e: RedisError) -> RedisError {
    let echoes = |s: &str| s.contains(ECHOED_ARGS);
    let detail_echoes = e.detail().is_some_and(echoes)
        || e.clone().into_server_errors().is_some_and(|errors| {
            errors
                .iter()
                .any(|(_, se)| se.details().is_some_and(echoes))
        });
    if !detail_echoes && !echoes(&e.to_string()) {
        return e;
    }
    let detail = e.detail().unwrap_or_default();
    let kept = match detail.find(ECHOED_ARGS) {
        Some(at) => format!("{}(arguments not shown)", &detail[..at]),
        None => "(server error text not shown: it echoed the arguments)".to_string(),
    };
    RedisError::from((e.kind(), "server error", kept))
}

/// True when the server refused the credentials.
pub(crate) fn is_auth_failure(e: &RedisError) -> bool {
    e.kind() == ErrorKind::AuthenticationFailed || matches!(e.code(), Some("NOAUTH" | "WRONGPASS"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(text: &str) -> RedisError {
        let parsed = redis::parse_redis_value(format!("-{text}\r\n").as_bytes()).unwrap();
        match parsed {
            redis::Value::ServerError(e) => e.into(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_commands() {
        let e = Error::from_redis(server_error(
            "ERR unknown command 'DB.PUT', with args beginning with: '{ns}' 't' 'a' 'SECRET' ",
        ));
        assert!(
            matches!(&e, Error::ModuleNotLoaded(c) if c == "DB.PUT"),
            "{e:?}"
        );
        assert!(!format!("{e} {e:?}").contains("SECRET"));
        let e = Error::from_redis(server_error(
            "ERR unknown command 'FOO', with args beginning with: 'SECRET' ",
        ));
        assert!(matches!(e, Error::Redis(_)), "{e:?}");
        let shown = format!("{e} {e:?}");
        assert!(
            !shown.contains("SECRET") && shown.contains("FOO"),
            "{shown}"
        );
        assert_eq!(e.code(), Some("ERR"));
    }

    #[test]
    fn typed_codes() {
        assert!(matches!(
            Error::from_redis(server_error("WRONGPASS invalid username-password pair")),
            Error::Authentication(_)
        ));
        assert!(matches!(
            Error::from_redis(server_error("NOAUTH Authentication required.")),
            Error::Authentication(_)
        ));
        assert!(matches!(
            Error::from_redis(server_error("TRIMMED changes after 3 were trimmed")),
            Error::Trimmed(_)
        ));
    }
}
