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

/// What a failed fetch means for the stream.
enum Stop {
    /// The backend was closed: end quietly.
    Closed,
    /// Transient: reconnect after a backoff.
    Retry,
    /// Terminal: yield the error, then end.
    Fail(Error),
}

struct Follow {
    shared: Arc<Shared>,
    record_type: Option<String>,
    server_version: u64,
    /// `after_version` of the next call: the last `next_after` received.
    after: u64,
    buffer: VecDeque<Record>,
    conn: Option<Conn>,
    failures: u32,
    done: bool,
    closed: watch::Receiver<bool>,
}

/// The stream of changes after `after` (see `Backend::sync`).
pub(crate) fn follow(
    shared: Arc<Shared>,
    record_type: Option<String>,
    server_version: u64,
    after: u64,
) -> RecordStream {
    let closed = shared.closed();
    let state = Follow {
        shared,
        record_type,
        server_version,
        after,
        buffer: VecDeque::new(),
        conn: None,
        failures: 0,
        done: false,
        closed,
    };
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        let item = s.next().await?;
        Some((item, s))
    }))
}

impl Follow {
    async fn next(&mut self) -> Option<Result<Record>> {
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
            .arg(self.server_version)
            .arg(self.after);
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

    /// One `DB.SYNC` call: fills the buffer and advances `after`.
    async fn fetch(&mut self) -> std::result::Result<(), Stop> {
        let config = &self.shared.config;
        let mut conn = match &self.conn {
            Some(c) => c.clone(),
            None => {
                let target = self.shared.target.clone();
                let connect = target.connect(config.connect_timeout, None);
                let c = tokio::select! {
                    c = connect => c.map_err(Self::classify)?,
                    _ = self.closed.wait_for(|c| *c) => return Err(Stop::Closed),
                };
                self.conn = Some(c.clone());
                c
            }
        };
        let cmd = self.command();
        let value: Value = tokio::select! {
            r = Request::Cmd(&cmd).run(&mut conn) => r.map_err(Self::classify)?,
            _ = self.closed.wait_for(|c| *c) => return Err(Stop::Closed),
        };
        let [sv, next_after, records] =
            reply::tuple::<3>(value, "DB.SYNC reply").map_err(Stop::Fail)?;
        let sv = reply::uint(&sv, "server_version").map_err(Stop::Fail)?;
        if self.server_version != 0 && sv != self.server_version {
            return Err(Stop::Fail(Error::InvalidServerVersion(format!(
                "the namespace's server version is {sv}, not {}",
                self.server_version
            ))));
        }
        self.server_version = sv;
        let next_after = reply::uint(&next_after, "next_after").map_err(Stop::Fail)?;
        self.buffer
            .extend(reply::records(records).map_err(Stop::Fail)?);
        self.after = self.after.max(next_after);
        Ok(())
    }
}
