//! How a [`Backend`](crate::Backend) connects: namespace, TLS, cipher, retries
//! and timeouts.

use std::time::Duration;

use crate::cipher::Cipher;

/// The namespace Pomerium's Go backend uses; its key names are identical.
pub const DEFAULT_NAMESPACE: &str = "{pomerium_v3}";

/// Settings of a [`Backend`](crate::Backend). Start from
/// [`Config::default`] and change what you need:
///
/// ```
/// use std::time::Duration;
/// use databroker_client::Config;
/// let config = Config::default()
///     .namespace("{my_app}")
///     .response_timeout(Duration::from_secs(2));
/// assert_eq!(config.namespace, "{my_app}");
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// The namespace (first argument of every command). In a cluster it must
    /// hold a hash tag, e.g. `{pomerium_v3}`.
    pub namespace: String,
    /// TLS material for `rediss://` URLs (custom CA, client certificate).
    /// Without it, `rediss://` verifies the server against the system roots.
    pub tls: Option<TlsConfig>,
    /// Seals payloads with AES-256-GCM before they leave the client.
    pub cipher: Option<Cipher>,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Longest wait for a connection: TCP (and TLS) connect plus the
    /// handshake (`AUTH`, `SELECT`, ...), and the longest an attempt waits
    /// for the backend's shared connection to come up.
    pub connect_timeout: Duration,
    /// Longest wait for a reply to an ordinary command. A [`Backend::sync`]
    /// stream waits [`Config::sync_block`] plus this margin for each
    /// blocking `DB.SYNC` reply (see [`Config::sync_stall_timeout`]).
    ///
    /// [`Backend::sync`]: crate::Backend::sync
    pub response_timeout: Duration,
    /// How long one `DB.SYNC` call of a [`Backend::sync`] stream waits on
    /// the server for a change before it is issued again.
    ///
    /// [`Backend::sync`]: crate::Backend::sync
    pub sync_block: Duration,
    /// Records asked for per `DB.SYNC` / `DB.SYNCLATEST` call (`COUNT`).
    pub batch_size: u32,
    /// TCP keepalive on connections to a single server (`redis://`,
    /// `rediss://`): the kernel probes a connection idle this long, then
    /// every this long, and drops it after 3 unanswered probes. `None`
    /// leaves the system default (off). Dead connections are found by the
    /// timeouts anyway; keepalive also keeps idle paths through NATs and
    /// firewalls open.
    pub tcp_keepalive: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            namespace: DEFAULT_NAMESPACE.to_string(),
            tls: None,
            cipher: None,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            sync_block: Duration::from_secs(10),
            batch_size: 500,
            tcp_keepalive: Some(Duration::from_secs(30)),
        }
    }
}

impl Config {
    /// The deadline of every call of a [`Backend`](crate::Backend) (`get`,
    /// `put`, `versions`, each page of `sync_latest`, ...): every call ends,
    /// with its result or an error, within
    ///
    /// `max_attempts * (connect_timeout + response_timeout)
    ///  + sum(min(initial_backoff * 2^(k-1), max_backoff) for k in 1..max_attempts)`
    ///
    /// however many calls are waiting. A call that reaches it fails with
    /// [`Error::ExceededMaxRetries`](crate::Error::ExceededMaxRetries) (its
    /// last failure is a timeout). With the defaults (5 attempts, 5 s + 5 s,
    /// backoff 50 ms doubling to 2 s): 50.75 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use databroker_client::Config;
    /// assert_eq!(Config::default().call_timeout(), Duration::from_millis(50_750));
    /// assert_eq!(Config::default().sync_stall_timeout(), Duration::from_secs(15));
    /// ```
    pub fn call_timeout(&self) -> Duration {
        let attempts = self.retry.max_attempts.max(1);
        let per_attempt = self.connect_timeout.saturating_add(self.response_timeout);
        let mut total = per_attempt.saturating_mul(attempts);
        for k in 1..attempts {
            total = total.saturating_add(self.retry.max_wait(k));
        }
        total
    }

    /// The longest a [`Backend::sync`](crate::Backend::sync) stream waits
    /// for the reply of one blocking `DB.SYNC` before it declares the
    /// connection dead and resumes on a new one: `sync_block +
    /// response_timeout` (a live server always answers within `sync_block`).
    pub fn sync_stall_timeout(&self) -> Duration {
        self.sync_block.saturating_add(self.response_timeout)
    }

    /// Sets [`Config::namespace`].
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets [`Config::tls`] (the Go backend's `WithTLSConfig`).
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets [`Config::cipher`].
    pub fn cipher(mut self, cipher: Cipher) -> Self {
        self.cipher = Some(cipher);
        self
    }

    /// Sets [`Config::retry`].
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets [`Config::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`Config::response_timeout`].
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Sets [`Config::sync_block`].
    pub fn sync_block(mut self, block: Duration) -> Self {
        self.sync_block = block;
        self
    }

    /// Sets [`Config::tcp_keepalive`].
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.tcp_keepalive = idle;
        self
    }

    /// Sets [`Config::batch_size`].
    pub fn batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size;
        self
    }
}

/// TLS material, PEM-encoded (the Go backend's `WithTLSConfig`).
#[derive(Clone, Default)]
pub struct TlsConfig {
    /// CA certificate(s) that sign the server's certificate. `None` uses the
    /// system's trust store.
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Client certificate chain and private key, for servers that require
    /// client authentication (`tls-auth-clients yes`).
    pub client_identity: Option<ClientIdentity>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_cert_pem", &self.ca_cert_pem.as_ref().map(|_| "<set>"))
            .field(
                "client_identity",
                &self.client_identity.as_ref().map(|_| "<set>"),
            )
            .finish()
    }
}

/// A client certificate chain and its private key, PEM-encoded.
#[derive(Clone)]
pub struct ClientIdentity {
    /// The certificate chain, leaf first.
    pub cert_pem: Vec<u8>,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
}

impl TlsConfig {
    /// Trusts the CA certificate(s) in `pem` instead of the system roots.
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_cert_pem = Some(pem.into());
        self
    }

    /// Presents this client certificate chain and key.
    pub fn client_identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.client_identity = Some(ClientIdentity {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
        });
        self
    }

    pub(crate) fn certificates(&self) -> redis::TlsCertificates {
        redis::TlsCertificates {
            client_tls: self
                .client_identity
                .as_ref()
                .map(|c| redis::ClientTlsConfig {
                    client_cert: c.cert_pem.clone(),
                    client_key: c.key_pem.clone(),
                }),
            root_cert: self.ca_cert_pem.clone(),
        }
    }
}

/// How transient failures are retried: up to `max_attempts` attempts in all,
/// waiting `initial_backoff`, then twice as long each time (with jitter), at
/// most `max_backoff`; every call ends within [`Config::call_timeout`].
///
/// Transient means: connection refused, reset or dropped, a timeout,
/// `LOADING`, `BUSY`, `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`. Other
/// failures (refused credentials, a missing module, `ERR`, ...) are returned
/// at once. A write whose reply was lost (connection dropped or timed out
/// after sending) is retried with the same idempotency token, so the server
/// applies it once and answers the retry with the original reply (within its
/// `databroker.token-ttl-ms`, 10 minutes by default).
///
/// The same backoff spaces connection attempts: all callers of a
/// [`Backend`](crate::Backend) share one connection and one dial at a time;
/// after the n-th failed dial in a row the next one waits `backoff(n)`. A
/// connection that had worked and broke is replaced at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first one included (at least 1). When all fail,
    /// the call returns [`Error::ExceededMaxRetries`](crate::Error::ExceededMaxRetries).
    /// [`Backend::sync`](crate::Backend::sync) streams retry without limit.
    pub max_attempts: u32,
    /// Wait before the second attempt.
    pub initial_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based): exponential,
    /// capped, with up to 25% random jitter subtracted.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let jitter = rand::random_range(0.0..0.25);
        self.max_wait(attempt).mul_f64(1.0 - jitter)
    }

    /// The longest [`RetryPolicy::backoff`] after attempt `attempt`:
    /// `min(initial_backoff * 2^(attempt-1), max_backoff)`.
    pub fn max_wait(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        self.initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff)
    }
}
