//! Helpers shared by the client's integration tests: real servers from the
//! testkit, fast retry settings, raw commands.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[allow(unused_imports)]
pub use databroker_client::{pb, Backend, Config, Error, RetryPolicy};
#[allow(unused_imports)]
pub use databroker_testkit::{Cluster, Flavor, Options, Server};
use futures::StreamExt;

/// A namespace no other test uses (with a hash tag).
pub fn namespace(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{{{prefix}-{}}}", N.fetch_add(1, Ordering::Relaxed))
}

/// Retries that give up quickly.
pub fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    }
}

/// A config for tests: own namespace, quick retries and timeouts.
pub fn config(prefix: &str) -> Config {
    Config::default()
        .namespace(namespace(prefix))
        .retry(fast_retry(4))
        .connect_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(2))
        .sync_block(Duration::from_millis(500))
}

/// Connects to `server` with `config`.
pub async fn backend(server: &Server, config: Config) -> Backend {
    Backend::connect(&server.url(), config)
        .await
        .expect("connect")
}

/// The next item of a stream, failing the test after `secs` seconds.
pub async fn next_within<S>(stream: &mut S, secs: u64) -> Option<S::Item>
where
    S: futures::Stream + Unpin,
{
    tokio::time::timeout(Duration::from_secs(secs), stream.next())
        .await
        .unwrap_or_else(|_| panic!("no stream item within {secs} s"))
}

/// Runs a raw command on `server`.
pub fn raw<T: redis::FromRedisValue>(server: &Server, args: &[&[u8]]) -> redis::RedisResult<T> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).expect("name"));
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut server.conn())
}
pub mod proxy;
