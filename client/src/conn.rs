//! Connections: one multiplexed connection to a server, or a cluster
//! connection, behind one type that runs commands and pipelines.

use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::socket2;
use redis::{
    AsyncConnectionConfig, Client, Cmd, IntoConnectionInfo, Pipeline, RedisFuture, RedisResult,
    Value,
};

use crate::config::Config;
use crate::error::{Error, Result};

/// `url` without its credentials (`redis://user:pass@host` gives
/// `redis://<credentials>@host`), for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme + 3 => {
            format!("{}<credentials>{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Where to connect: built once from the URL(s) and the [`Config`].
#[derive(Clone)]
pub(crate) enum Target {
    /// One server (`redis://`, `rediss://`, `unix://`, `redis+unix://`).
    Single(Box<Client>),
    /// A Redis Cluster, from one or more seed nodes.
    Cluster(Box<ClusterClient>),
}

/// An open connection; cheap to clone (clones share the socket(s)).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Target {
    /// A single server at `url`.
    pub(crate) fn single(url: &str, config: &Config) -> Result<Target> {
        let bad = |e: redis::RedisError| Error::Config(format!("{}: {e}", redact(url)));
        let mut info = url.into_connection_info().map_err(bad)?;
        if let Some(idle) = config.tcp_keepalive.filter(|d| !d.is_zero()) {
            let keepalive = socket2::TcpKeepalive::new()
                .with_time(idle)
                .with_interval(idle)
                .with_retries(3);
            let settings = info.tcp_settings().clone().set_keepalive(keepalive);
            info = info.set_tcp_settings(settings);
        }
        let client = match &config.tls {
            Some(tls) => Client::build_with_tls(info, tls.certificates()),
            None => Client::open(info),
        }
        .map_err(bad)?;
        Ok(Target::Single(Box::new(client)))
    }

    /// A cluster reached through the seed nodes `urls`.
    pub(crate) fn cluster(urls: &[String], config: &Config) -> Result<Target> {
        if urls.is_empty() {
            return Err(Error::Config(
                "a cluster needs at least one node URL".to_string(),
            ));
        }
        let mut builder = ClusterClientBuilder::new(urls.to_vec())
            .connection_timeout(config.connect_timeout)
            .response_timeout(config.response_timeout)
            // Each attempt is bounded by its response timeout; the blocking
            // sync connection must not be cut by an overall limit.
            .overall_response_timeout(None);
        if let Some(tls) = &config.tls {
            builder = builder.certs(tls.certificates());
        }
        let client = builder.build().map_err(|e| {
            let urls: Vec<String> = urls.iter().map(|u| redact(u)).collect();
            Error::Config(format!("{urls:?}: {e}"))
        })?;
        Ok(Target::Cluster(Box::new(client)))
    }

    /// Opens a connection. `response_timeout` `None` waits for replies
    /// forever (for blocking `DB.SYNC`).
    pub(crate) async fn connect(
        &self,
        connect_timeout: Duration,
        response_timeout: Option<Duration>,
    ) -> RedisResult<Conn> {
        match self {
            Target::Single(client) => {
                let cfg = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(connect_timeout))
                    .set_response_timeout(response_timeout);
                Ok(Conn::Single(
                    client
                        .get_multiplexed_async_connection_with_config(&cfg)
                        .await?,
                ))
            }
            Target::Cluster(client) => {
                let mut cfg = ClusterConfig::new().set_connection_timeout(connect_timeout);
                if let Some(t) = response_timeout {
                    cfg = cfg.set_response_timeout(t);
                }
                Ok(Conn::Cluster(
                    client.get_async_connection_with_config(cfg).await?,
                ))
            }
        }
    }
}

/// One request: a command.
#[derive(Clone, Copy)]
pub(crate) enum Request<'a> {
    Cmd(&'a Cmd),
}

impl Request<'_> {
    /// Runs the request on `conn`.
    pub(crate) async fn run(self, conn: &mut Conn) -> RedisResult<Value> {
        match self {
            Request::Cmd(cmd) => cmd.query_async(conn).await,
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
