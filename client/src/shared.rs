//! State shared by a [`Backend`](crate::Backend) and its clones: the target,
//! the configuration, one lazily (re)opened connection, the retry loop, and
//! the closed flag.

use std::time::Duration;

use redis::{FromRedisValue, RedisError, Value};
use tokio::sync::{watch, Mutex};

use crate::config::Config;
use crate::conn::{Conn, Request, Target};
use crate::error::{is_transient, needs_reconnect, Error, Result};

pub(crate) struct Shared {
    pub(crate) target: Target,
    pub(crate) config: Config,
    /// The connection for ordinary commands, with a generation number so a
    /// failed request only drops the connection it used.
    conn: Mutex<Option<(u64, Conn)>>,
    closed: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn new(target: Target, config: Config) -> Shared {
        Shared {
            target,
            config,
            conn: Mutex::new(None),
            closed: watch::Sender::new(false),
        }
    }

    /// True after [`Shared::close`].
    pub(crate) fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// A receiver that sees `true` once the backend is closed.
    pub(crate) fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    /// Marks the backend closed and drops its connection.
    pub(crate) async fn close(&self) {
        self.closed.send_replace(true);
        self.conn.lock().await.take();
    }

    /// The current connection, opened when there is none.
    async fn conn(&self) -> std::result::Result<(u64, Conn), RedisError> {
        let mut guard = self.conn.lock().await;
        if let Some((generation, conn)) = guard.as_ref() {
            return Ok((*generation, conn.clone()));
        }
        let conn = self
            .target
            .connect(
                self.config.connect_timeout,
                Some(self.config.response_timeout),
            )
            .await?;
        static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *guard = Some((generation, conn.clone()));
        Ok((generation, conn))
    }

    /// Drops the connection of `generation` if it is still the current one.
    async fn drop_conn(&self, generation: u64) {
        let mut guard = self.conn.lock().await;
        if guard.as_ref().is_some_and(|(g, _)| *g == generation) {
            *guard = None;
        }
    }

    /// Sleeps `wait`, or less when the backend is closed meanwhile.
    pub(crate) async fn pause(&self, wait: Duration) {
        let mut closed = self.closed();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = closed.wait_for(|c| *c) => {}
        }
    }

    /// Opens a connection (for [`Shared::request`] and for `connect`'s
    /// eager check), retrying transient failures.
    pub(crate) async fn ensure_connected(&self) -> Result<()> {
        self.with_retry(|_| async { Ok(Value::Nil) })
            .await
            .map(|_| ())
    }

    /// Runs `request`, retrying transient failures with backoff up to
    /// `retry.max_attempts` attempts in all.
    pub(crate) async fn request(&self, request: Request<'_>) -> Result<Value> {
        self.with_retry(|mut conn| async move { request.run(&mut conn).await })
            .await
    }

    async fn with_retry<F, Fut>(&self, op: F) -> Result<Value>
    where
        F: Fn(Conn) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<Value, RedisError>>,
    {
        let policy = self.config.retry;
        let max = policy.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            if self.is_closed() {
                return Err(Error::Closed);
            }
            attempt += 1;
            let failure = match self.conn().await {
                Err(e) => e,
                Ok((generation, conn)) => match op(conn).await {
                    Ok(v) => return Ok(v),
                    Err(e) => {
                        if needs_reconnect(&e) {
                            self.drop_conn(generation).await;
                        }
                        e
                    }
                },
            };
            if !is_transient(&failure) {
                return Err(Error::from_redis(failure));
            }
            if attempt >= max {
                return Err(Error::ExceededMaxRetries {
                    attempts: attempt,
                    last: failure,
                });
            }
            self.pause(policy.backoff(attempt)).await;
        }
    }

    /// Runs a command and converts its reply.
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T> {
        let value = self.request(Request::Cmd(cmd)).await?;
        T::from_redis_value(value).map_err(|e| Error::protocol(e.to_string()))
    }
}
