//! [`Backend::sync`](crate::Backend::sync): follows the change feed with
//! blocking `DB.SYNC` calls on a dedicated connection.

use std::collections::VecDeque;
use std::sync::Arc;

use redis::{RedisError, Value};
use tokio::sync::watch;

use crate::cipher::open_with;
use crate::conn::{Conn, Request};
use crate::error::{is_transient, Error, Result};
use crate::pb::Record;
use crate::reply;
use crate::shared::Shared;
use crate::stream::RecordStream;

/// Where a change feed continues: the namespace's server version, the
/// version after which changes are wanted, and the stamp of that version.
///
/// The stamp is the `modified_at` (µs) of the change at `record_version`
/// as this client saw it; the server compares it with its own (`DB.SYNC ...
/// STAMP`) and answers `SERVERVERSION` when the namespace was rolled back
/// (the change at that version is another one now). 0 means unknown: no
/// check. Take cursors from [`Backend::snapshot`](crate::Backend::snapshot)
/// and pass them to [`Backend::sync_from`](crate::Backend::sync_from); do
/// not make up stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SyncCursor {
    /// The namespace's server version (0 for a namespace never written).
    pub server_version: u64,
    /// Changes with a higher version are wanted.
    pub record_version: u64,
    /// `modified_at` in µs of the change at `record_version`; 0 = unknown.
    pub stamp: u64,
}

/// What a failed fetch means for the stream.
enum Stop {
    /// The backend was closed: end quietly.
    Closed,
    /// Transient: reconnect (after a backoff unless the connection had
    /// worked).
    Retry,
    /// Terminal: yield the error, then end.
    Fail(Error),
}

/// The state of a feed; also driven directly by the follower.
pub(crate) struct Follow {
    shared: Arc<Shared>,
    record_type: Option<String>,
    cursor: SyncCursor,
    buffer: VecDeque<Record>,
    conn: Option<Conn>,
    /// True once the current connection answered a `DB.SYNC`.
    conn_worked: bool,
    failures: u32,
    /// Replies received so far.
    pub(crate) replies: u64,
    done: bool,
    closed: watch::Receiver<bool>,
}

/// The stream of changes after `cursor` (see `Backend::sync_from`).
pub(crate) fn follow(
    shared: Arc<Shared>,
    record_type: Option<String>,
    cursor: SyncCursor,
) -> RecordStream {
    let state = Follow::new(shared, record_type, cursor);
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        let item = s.next().await?;
        Some((item, s))
    }))
}

impl Follow {
    pub(crate) fn new(
        shared: Arc<Shared>,
        record_type: Option<String>,
        cursor: SyncCursor,
    ) -> Follow {
        let closed = shared.closed();
        Follow {
            shared,
            record_type,
            cursor,
            buffer: VecDeque::new(),
            conn: None,
            conn_worked: false,
            failures: 0,
            replies: 0,
            done: false,
            closed,
        }
    }

    /// Where the feed continues.
    pub(crate) fn cursor(&self) -> SyncCursor {
        self.cursor
    }

    /// The next change; `Some(Err)` of a decryption failure goes on, any
    /// other error ends the feed (`None` after it).
    pub(crate) async fn next(&mut self) -> Option<Result<Record>> {
        loop {
            if let Some(r) = self.buffer.pop_front() {
                return Some(open_with(self.shared.config.cipher.as_ref(), r));
            }
            if self.done || self.shared.is_closed() {
                return None;
            }
            match self.fetch().await {
                Ok(()) => self.failures = 0,
                Err(Stop::Closed) => return None,
                Err(Stop::Fail(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Err(Stop::Retry) => {
                    self.conn = None;
                    if std::mem::take(&mut self.conn_worked) {
                        // A connection that worked broke (or went silent
                        // for longer than `sync_stall_timeout`): resume on
                        // a new one at once.
                        self.failures = 0;
                        continue;
                    }
                    self.failures = self.failures.saturating_add(1);
                    self.shared
                        .pause(self.shared.config.retry.backoff(self.failures))
                        .await;
                }
            }
        }
    }

    fn classify(e: RedisError) -> Stop {
        if is_transient(&e) {
            Stop::Retry
        } else {
            Stop::Fail(Error::from_redis(e))
        }
    }

    fn command(&self) -> redis::Cmd {
        let config = &self.shared.config;
        let mut cmd = redis::cmd("DB.SYNC");
        cmd.arg(&config.namespace)
            .arg(self.cursor.server_version)
            .arg(self.cursor.record_version);
        if self.cursor.stamp != 0 {
            cmd.arg("STAMP").arg(self.cursor.stamp);
        }
        if let Some(t) = &self.record_type {
            cmd.arg("TYPE").arg(t);
        }
        let block_ms = u64::try_from(config.sync_block.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        cmd.arg("COUNT")
            .arg(config.batch_size.max(1))
            .arg("BLOCK")
            .arg(block_ms)
            .arg("FORMAT")
            .arg("PROTO");
        cmd
    }

    /// One `DB.SYNC` call: fills the buffer and advances the cursor.
    async fn fetch(&mut self) -> std::result::Result<(), Stop> {
        let config = &self.shared.config;
        let mut conn = match &self.conn {
            Some(c) => c.clone(),
            None => {
                let target = self.shared.target.clone();
                // Each reply is due within the block time plus a margin: a
                // connection silent for longer is dead.
                let connect = tokio::time::timeout(
                    config.connect_timeout,
                    target.connect(config.connect_timeout, Some(config.sync_stall_timeout())),
                );
                let c = tokio::select! {
                    c = connect => match c {
                        Ok(c) => c.map_err(Self::classify)?,
                        Err(_) => return Err(Stop::Retry),
                    },
                    _ = self.closed.wait_for(|c| *c) => return Err(Stop::Closed),
                };
                self.conn = Some(c.clone());
                c
            }
        };
        let cmd = self.command();
        let stall = tokio::time::sleep(config.sync_stall_timeout());
        let value: Value = tokio::select! {
            r = Request::Cmd(&cmd).run(&mut conn) => r.map_err(Self::classify)?,
            _ = stall => return Err(Stop::Retry),
            _ = self.closed.wait_for(|c| *c) => return Err(Stop::Closed),
        };
        self.conn_worked = true;
        let reply = reply::sync_reply(value).map_err(Stop::Fail)?;
        let sv = self.cursor.server_version;
        if sv != 0 && reply.server_version != sv {
            return Err(Stop::Fail(Error::InvalidServerVersion(format!(
                "the namespace's server version is {}, not {sv}",
                reply.server_version
            ))));
        }
        self.cursor.server_version = reply.server_version;
        self.replies += 1;
        self.buffer.extend(reply.records);
        if reply.next_after > self.cursor.record_version {
            self.cursor.record_version = reply.next_after;
            self.cursor.stamp = reply.next_stamp;
        } else if reply.next_after == self.cursor.record_version && reply.next_stamp != 0 {
            self.cursor.stamp = reply.next_stamp;
        }
        Ok(())
    }
}
