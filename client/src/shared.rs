//! State shared by a [`Backend`](crate::Backend) and its clones: the target,
//! the configuration, one connection shared by every call (dialled by one
//! caller at a time, with backoff between failed dials), the retry loop
//! with its deadline, and the closed flag.
//!
//! No lock is held across an `.await`: the connection slot is a plain mutex
//! around a small state machine, and a dial in progress is a shared future
//! that every caller waiting for the connection polls.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared as SharedFuture};
use redis::{FromRedisValue, RedisError, Value};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::Config;
use crate::conn::{Conn, Request, Target};
use crate::error::{is_transient, needs_reconnect, Error, Result};

/// An open connection and what is known about it.
#[derive(Clone)]
struct Live {
    generation: u64,
    conn: Conn,
    /// Set once a request on it got a reply: a connection that worked is
    /// replaced at once when it breaks, one that never did counts as a
    /// failed dial.
    healthy: Arc<AtomicBool>,
}

type Dial = SharedFuture<BoxFuture<'static, std::result::Result<Live, RedisError>>>;

enum Slot {
    /// No connection. The next dial may start at `not_before`; `last` is
    /// why the previous connection or dial failed.
    Idle {
        not_before: Instant,
        last: Option<RedisError>,
    },
    /// One dial in flight, shared by every caller that needs a connection.
    Dialing {
        dial: Dial,
        id: u64,
    },
    Ready(Live),
}

struct State {
    slot: Slot,
    /// Dials in a row that failed or gave a connection that never answered.
    streak: u32,
}

/// How many `(server_version, record_version) -> stamp` pairs a backend
/// remembers from its snapshots, for `sync(type, sv, rv)`.
const REMEMBERED_STAMPS: usize = 64;

pub(crate) struct Shared {
    pub(crate) target: Target,
    pub(crate) config: Config,
    state: Mutex<State>,
    closed: watch::Sender<bool>,
    stamps: Mutex<VecDeque<(u64, u64, u64)>>,
    /// Connections opened (dials started), for tests and diagnostics.
    dials: AtomicU64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// `wait` from now (far in the future for durations too long to add).
fn later(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(10 * 365 * 86_400))
}

/// A timeout failure (transient).
pub(crate) fn timeout_error(what: &'static str) -> RedisError {
    RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}

/// What an attempt to get the shared connection gave.
enum Acquired {
    Conn(Live),
    Failed(RedisError),
}

impl Shared {
    pub(crate) fn new(target: Target, config: Config) -> Shared {
        Shared {
            target,
            config,
            state: Mutex::new(State {
                slot: Slot::Idle {
                    not_before: Instant::now(),
                    last: None,
                },
                streak: 0,
            }),
            closed: watch::Sender::new(false),
            stamps: Mutex::new(VecDeque::new()),
            dials: AtomicU64::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every
        // critical section is a single assignment.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True after [`Shared::close`].
    pub(crate) fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// A receiver that sees `true` once the backend is closed.
    pub(crate) fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    /// Marks the backend closed and drops its connection (and a dial in
    /// flight). Never waits: calls in progress end with `Error::Closed`.
    pub(crate) fn close(&self) {
        self.closed.send_replace(true);
        let old = std::mem::replace(
            &mut self.state().slot,
            Slot::Idle {
                not_before: Instant::now(),
                last: None,
            },
        );
        drop(old);
    }

    /// Connections this backend has dialled for its calls so far.
    pub(crate) fn dials(&self) -> u64 {
        self.dials.load(Ordering::Relaxed)
    }

    /// Remembers the stamp of `record_version` (from a snapshot).
    pub(crate) fn remember_stamp(&self, server_version: u64, record_version: u64, stamp: u64) {
        if stamp == 0 {
            return;
        }
        let mut stamps = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        stamps.retain(|(sv, rv, _)| (*sv, *rv) != (server_version, record_version));
        if stamps.len() >= REMEMBERED_STAMPS {
            stamps.pop_front();
        }
        stamps.push_back((server_version, record_version, stamp));
    }

    /// The stamp remembered for `(server_version, record_version)`, or 0.
    pub(crate) fn stamp_of(&self, server_version: u64, record_version: u64) -> u64 {
        let stamps = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        stamps
            .iter()
            .rev()
            .find(|(sv, rv, _)| (*sv, *rv) == (server_version, record_version))
            .map_or(0, |(_, _, stamp)| *stamp)
    }

    /// A new dial of the shared connection, as a future any caller can poll.
    fn dial(&self) -> Dial {
        self.dials.fetch_add(1, Ordering::Relaxed);
        let target = self.target.clone();
        let connect_timeout = self.config.connect_timeout;
        let response_timeout = self.config.response_timeout;
        async move {
            // The connection timeout covers connect and handshake; this
            // outer one also covers what the driver does not bound.
            let conn = tokio::time::timeout(
                connect_timeout,
                target.connect(connect_timeout, Some(response_timeout)),
            )
            .await
            .map_err(|_| timeout_error("connect timed out"))??;
            Ok(Live {
                generation: next_id(),
                conn,
                healthy: Arc::new(AtomicBool::new(false)),
            })
        }
        .boxed()
        .shared()
    }

    /// The shared connection, waiting at most until `until` for it: joins
    /// the dial in flight, or starts one when the backoff since the last
    /// failure has passed. A permanent failure of the last dial (refused
    /// credentials) is returned at once until the backoff has passed.
    async fn acquire(&self, until: Instant) -> Acquired {
        enum Next {
            Have(Live),
            Join(Dial, u64),
            WaitUntil(Instant),
            Fail(RedisError),
        }
        loop {
            let next = {
                let mut state = self.state();
                if self.is_closed() {
                    // close() takes this lock after setting the flag: no
                    // dial starts after it.
                    return Acquired::Failed(timeout_error("the backend is closed"));
                }
                match &state.slot {
                    Slot::Ready(live) => Next::Have(live.clone()),
                    Slot::Dialing { dial, id } => Next::Join(dial.clone(), *id),
                    Slot::Idle { not_before, last } => {
                        if Instant::now() < *not_before {
                            match last {
                                Some(e) if !is_transient(e) => Next::Fail(e.clone()),
                                Some(e) if *not_before > until => Next::Fail(e.clone()),
                                None if *not_before > until => Next::Fail(timeout_error(
                                    "no connection within the connect timeout",
                                )),
                                _ => Next::WaitUntil(*not_before),
                            }
                        } else {
                            let id = next_id();
                            let dial = self.dial();
                            state.slot = Slot::Dialing {
                                dial: dial.clone(),
                                id,
                            };
                            Next::Join(dial, id)
                        }
                    }
                }
            };
            let (dial, id) = match next {
                Next::Have(live) => return Acquired::Conn(live),
                Next::Fail(e) => return Acquired::Failed(e),
                Next::WaitUntil(at) => {
                    tokio::time::sleep_until(at).await;
                    continue;
                }
                Next::Join(dial, id) => (dial, id),
            };
            let result = tokio::select! {
                r = dial => r,
                _ = tokio::time::sleep_until(until) => {
                    return Acquired::Failed(timeout_error("no connection within the connect timeout"));
                }
            };
            return self.dialled(id, result);
        }
    }

    /// Records the outcome of dial `id` (if it is still the current one).
    fn dialled(&self, id: u64, result: std::result::Result<Live, RedisError>) -> Acquired {
        let mut state = self.state();
        let current = matches!(&state.slot, Slot::Dialing { id: i, .. } if *i == id);
        match result {
            Ok(live) => {
                if current {
                    state.slot = Slot::Ready(live.clone());
                }
                Acquired::Conn(live)
            }
            Err(e) => {
                if current {
                    state.streak = state.streak.saturating_add(1);
                    let wait = self.config.retry.backoff(state.streak);
                    state.slot = Slot::Idle {
                        not_before: later(wait),
                        last: Some(e.clone()),
                    };
                }
                Acquired::Failed(e)
            }
        }
    }

    /// Drops the connection `live` after `error` (if it is still the
    /// current one). A connection that had worked is replaced at once; one
    /// that never answered counts as a failed dial and the next dial waits
    /// the backoff. True when `live` had worked.
    fn drop_conn(&self, live: &Live, error: &RedisError) -> bool {
        let healthy = live.healthy.load(Ordering::Relaxed);
        let mut state = self.state();
        if matches!(&state.slot, Slot::Ready(l) if l.generation == live.generation) {
            let not_before = if healthy {
                state.streak = 0;
                Instant::now()
            } else {
                state.streak = state.streak.saturating_add(1);
                later(self.config.retry.backoff(state.streak))
            };
            state.slot = Slot::Idle {
                not_before,
                last: Some(error.clone()),
            };
        }
        healthy
    }

    /// Sleeps `wait`, or less when the backend is closed meanwhile.
    pub(crate) async fn pause(&self, wait: Duration) {
        let mut closed = self.closed();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = closed.wait_for(|c| *c) => {}
        }
    }

    /// Runs `request`, retrying transient failures with backoff up to
    /// `retry.max_attempts` attempts in all, within
    /// [`Config::call_timeout`]; ends with `Error::Closed` as soon as the
    /// backend is closed.
    pub(crate) async fn request(&self, request: Request<'_>) -> Result<Value> {
        self.bounded(|mut conn| async move { request.run(&mut conn).await })
            .await
    }

    async fn bounded<F, Fut>(&self, op: F) -> Result<Value>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = std::result::Result<Value, RedisError>>,
    {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let mut closed = self.closed();
        let attempts = AtomicU32::new(0);
        let deadline = later(self.config.call_timeout());
        let result = tokio::select! {
            r = self.with_retry(op, &attempts) => r,
            _ = closed.wait_for(|c| *c) => Err(Error::Closed),
            _ = tokio::time::sleep_until(deadline) => Err(Error::ExceededMaxRetries {
                attempts: attempts.load(Ordering::Relaxed).max(1),
                last: timeout_error("the call's deadline (Config::call_timeout) passed"),
            }),
        };
        result
    }

    async fn with_retry<F, Fut>(&self, op: F, attempts: &AtomicU32) -> Result<Value>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = std::result::Result<Value, RedisError>>,
    {
        let config = &self.config;
        let policy = config.retry;
        let max = policy.max_attempts.max(1);
        let mut attempt = 0;
        // Backoffs taken; an immediate retry after a working connection
        // broke does not count.
        let mut backoffs = 0;
        loop {
            if self.is_closed() {
                return Err(Error::Closed);
            }
            attempt += 1;
            attempts.store(attempt, Ordering::Relaxed);
            let mut retry_at_once = false;
            let failure = match self.acquire(later(config.connect_timeout)).await {
                Acquired::Failed(e) => e,
                Acquired::Conn(live) => match op(live.conn.clone()).await {
                    Ok(v) => {
                        live.healthy.store(true, Ordering::Relaxed);
                        return Ok(v);
                    }
                    Err(e) => {
                        if needs_reconnect(&e) {
                            // A connection that worked and is known to be
                            // closed now (idle timeout, server restart) is
                            // replaced at once, without a backoff.
                            retry_at_once = self.drop_conn(&live, &e) && e.is_connection_dropped();
                        } else {
                            live.healthy.store(true, Ordering::Relaxed);
                        }
                        e
                    }
                },
            };
            if self.is_closed() {
                return Err(Error::Closed);
            }
            if !is_transient(&failure) {
                return Err(Error::from_redis(failure));
            }
            if attempt >= max {
                return Err(Error::ExceededMaxRetries {
                    attempts: attempt,
                    last: failure,
                });
            }
            if !retry_at_once {
                backoffs += 1;
                self.pause(policy.backoff(backoffs)).await;
            }
        }
    }

    /// Runs a command and converts its reply.
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T> {
        let value = self.request(Request::Cmd(cmd)).await?;
        T::from_redis_value(value).map_err(|_| {
            Error::protocol(format!(
                "the reply to {} has an unexpected shape",
                cmd_name(cmd)
            ))
        })
    }
}

/// The name of `cmd` (its first argument), for messages.
pub(crate) fn cmd_name(cmd: &redis::Cmd) -> String {
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => String::from_utf8_lossy(name).into_owned(),
        _ => "the command".to_string(),
    }
}
