//! [`Backend`]: the Go backend's API over the module's `DB.*` commands.

use std::sync::Arc;
use std::time::Duration;

use prost::{Message, Name};
use redis::Value;

use crate::cipher::open_with;
use crate::config::Config;
use crate::conn::Target;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::follower::Follower;
use crate::pb::{Options, Record};
use crate::record::{tombstone, RecordExt};
use crate::reply;
use crate::shared::Shared;
use crate::stream::RecordStream;
use crate::sync::SyncCursor;
use crate::write::{check_name, write, WriteResult};

/// A client of one namespace of the store. Cheap to clone: clones share the
/// connection. Ordinary calls share one multiplexed connection (or cluster
/// connection); each [`Backend::sync`] stream opens its own.
#[derive(Clone)]
pub struct Backend {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("namespace", &self.shared.config.namespace)
            .finish()
    }
}

/// The namespace's version counters (`DB.VERSIONS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    /// Random id of the namespace's history (0 before the first write).
    pub server_version: u64,
    /// The oldest version still in the change feed.
    pub earliest_record_version: u64,
    /// The newest version issued (0 before the first write).
    pub latest_record_version: u64,
}

impl Backend {
    /// Connects to one server: `redis://host:port[/db]`, `rediss://...` (TLS,
    /// see [`Config::tls`]), or a unix socket (`unix:///path` or
    /// `redis+unix:///path`). Opens the connection before returning,
    /// retrying transient failures per [`Config::retry`].
    pub async fn connect(url: &str, config: Config) -> Result<Backend> {
        let target = Target::single(url, &config)?;
        Self::start(target, config).await
    }

    /// Connects to a Redis Cluster through one or more of its nodes. The
    /// namespace must contain a hash tag (e.g. `{pomerium_v3}`) so that all
    /// its keys live in one slot; the server refuses others with `CROSSSLOT`.
    pub async fn connect_cluster<I, S>(urls: I, config: Config) -> Result<Backend>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let urls: Vec<String> = urls.into_iter().map(Into::into).collect();
        let target = Target::cluster(&urls, &config)?;
        Self::start(target, config).await
    }

    async fn start(target: Target, config: Config) -> Result<Backend> {
        if config.namespace.is_empty() {
            return Err(Error::Config("the namespace must not be empty".to_string()));
        }
        let shared = Arc::new(Shared::new(target, config));
        let backend = Backend { shared };
        // One probe: connects (retrying transient failures) and checks that
        // the server has the module, so a server without it is refused here
        // rather than at the first write. Other error replies (CROSSSLOT
        // for an untagged namespace in a cluster, NOPERM, ...) come from
        // the module or the server's checks: the module is there, and the
        // calls that meet them will say so.
        match backend.versions().await {
            Ok(_) => Ok(backend),
            Err(Error::Redis(e)) if e.code().is_some() => Ok(backend),
            Err(e) => Err(e),
        }
    }

    /// The namespace this backend works on.
    pub fn namespace(&self) -> &str {
        &self.shared.config.namespace
    }

    /// The configuration this backend was created with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    fn cmd(&self, name: &str) -> redis::Cmd {
        let mut cmd = redis::cmd(name);
        cmd.arg(&self.shared.config.namespace);
        cmd
    }

    fn open(&self, record: Record) -> Result<Record> {
        open_with(self.shared.config.cipher.as_ref(), record)
    }

    /// The current record `(record_type, id)`, or `None` when it does not
    /// exist or was deleted.
    pub async fn get(&self, record_type: &str, id: &str) -> Result<Option<Record>> {
        let mut cmd = self.cmd("DB.GET");
        cmd.arg(record_type).arg(id).arg("FORMAT").arg("PROTO");
        match self.shared.query::<Value>(&cmd).await? {
            Value::Nil => Ok(None),
            v => Ok(Some(self.open(reply::record(v)?)?)),
        }
    }

    /// The current message `M` with `id` (record type `M::type_url()`).
    pub async fn get_message<M: Name + Message + Default>(&self, id: &str) -> Result<Option<M>> {
        match self.get(&M::type_url(), id).await? {
            Some(r) => r.message::<M>().map(Some).map_err(|e| {
                Error::protocol(format!("{}/{id} does not decode: {e}", M::type_url()))
            }),
            None => Ok(None),
        }
    }

    /// Writes `records` atomically, in order: puts, and deletions for records
    /// whose `deleted_at` is set (see [`tombstone`](crate::tombstone)), in one
    /// `DB.WRITE`. Fills each record's `version` and `modified_at` (and
    /// `deleted_at` of deletions) and returns the server version.
    ///
    /// Every write carries a fresh idempotency token that retries reuse, so a
    /// write whose reply was lost (connection reset, timeout) and that is
    /// retried is applied at most once (within the server's
    /// `databroker.token-ttl-ms`, 10 minutes by default).
    ///
    /// A record's `data.type_url` must be empty or its type (the module
    /// stores the type as the type URL); the payload is `data.value`,
    /// sealed when a cipher is configured.
    pub async fn put(&self, records: &mut [Record]) -> Result<u64> {
        if records.is_empty() {
            return Ok(self.versions().await?.server_version);
        }
        write(&self.shared, records, None).await
    }

    /// [`put`](Self::put) with optimistic concurrency: `expected[i]` is the
    /// version record `i` must have now (`Some(0)`: absent or deleted;
    /// `None`: no condition). All conditions are checked before anything is
    /// written; when one fails nothing is written and the call fails with
    /// [`Error::VersionConflict`] listing the current versions. A safe
    /// read-modify-write: `get` (version `v`, or 0 when absent), compute,
    /// `put_if(&mut [new], &[Some(v)])`, and on `VersionConflict` read again:
    ///
    /// ```no_run
    /// use databroker_client::{new_record, Backend, Error, RecordExt};
    ///
    /// async fn bump(db: &Backend) -> Result<(), Error> {
    ///     loop {
    ///         let current = db.get("counter", "visits").await?;
    ///         let (version, n) = match &current {
    ///             Some(r) => (r.version, String::from_utf8_lossy(r.payload()).parse().unwrap_or(0u64)),
    ///             None => (0, 0),
    ///         };
    ///         let mut next = [new_record("counter", "visits", (n + 1).to_string())];
    ///         match db.put_if(&mut next, &[Some(version)]).await {
    ///             Ok(_) => return Ok(()),
    ///             Err(Error::VersionConflict { .. }) => continue, // read again
    ///             Err(e) => return Err(e),
    ///         }
    ///     }
    /// }
    /// ```
    pub async fn put_if(&self, records: &mut [Record], expected: &[Option<u64>]) -> Result<u64> {
        write(&self.shared, records, Some(expected)).await
    }

    /// Deletes the records `(type, id)` in order, atomically (a tombstone is
    /// written even for an absent record).
    pub async fn delete<I, T, D>(&self, keys: I) -> Result<WriteResult>
    where
        I: IntoIterator<Item = (T, D)>,
        T: Into<String>,
        D: Into<String>,
    {
        let mut records: Vec<Record> = keys.into_iter().map(|(t, id)| tombstone(t, id)).collect();
        if records.is_empty() {
            return Err(Error::InvalidArgument("nothing to delete".to_string()));
        }
        let server_version = write(&self.shared, &mut records, None).await?;
        Ok(WriteResult {
            server_version,
            modified_at: records[0].modified_at.unwrap_or_default(),
            versions: records.iter().map(|r| r.version).collect(),
        })
    }

    /// The options of `record_type` (empty when it has none).
    pub async fn get_options(&self, record_type: &str) -> Result<Options> {
        let mut cmd = self.cmd("DB.GETOPTIONS");
        cmd.arg(record_type);
        let mut options = Options::default();
        for (name, value) in reply::pairs(self.shared.query(&cmd).await?, "options")? {
            if name == "capacity" {
                options.capacity = Some(reply::uint(&value, "capacity")?);
            }
        }
        Ok(options)
    }

    /// Sets the options of `record_type`: with a capacity, the type keeps at
    /// most that many records (the oldest are deleted at once); without,
    /// its options are removed.
    pub async fn set_options(&self, record_type: &str, options: &Options) -> Result<()> {
        check_name("type", record_type)?;
        let mut cmd = self.cmd("DB.SETOPTIONS");
        cmd.arg(record_type);
        if let Some(capacity) = options.capacity {
            cmd.arg("CAPACITY").arg(capacity);
        }
        self.shared.query::<Value>(&cmd).await.map(|_| ())
    }

    /// Acquires the lease `name` for `lease_id`, or renews it when `lease_id`
    /// holds it, for `ttl`. True when `lease_id` holds it now. A zero `ttl`
    /// gives up a lease `lease_id` holds (and returns false).
    pub async fn lease(&self, name: &str, lease_id: &str, ttl: Duration) -> Result<bool> {
        let mut ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 && !ttl.is_zero() {
            ms = 1;
        }
        let mut cmd = self.cmd("DB.LEASE");
        cmd.arg(name).arg(lease_id).arg(ms);
        Ok(self.shared.query::<i64>(&cmd).await? == 1)
    }

    /// Releases the lease `name` if `lease_id` holds it; true if it did.
    pub async fn release(&self, name: &str, lease_id: &str) -> Result<bool> {
        let mut cmd = self.cmd("DB.RELEASE");
        cmd.arg(name).arg(lease_id);
        Ok(self.shared.query::<i64>(&cmd).await? == 1)
    }

    /// The namespace's server version and version range.
    pub async fn versions(&self) -> Result<Versions> {
        let [sv, earliest, latest] = reply::tuple::<3>(
            self.shared.query(&self.cmd("DB.VERSIONS")).await?,
            "versions",
        )?;
        Ok(Versions {
            server_version: reply::uint(&sv, "server_version")?,
            earliest_record_version: reply::uint(&earliest, "earliest_record_version")?,
            latest_record_version: reply::uint(&latest, "latest_record_version")?,
        })
    }

    /// Every record type ever written to the namespace, sorted.
    pub async fn types(&self) -> Result<Vec<String>> {
        reply::array(self.shared.query(&self.cmd("DB.TYPES")).await?, "types")?
            .into_iter()
            .map(|v| reply::string(v, "type"))
            .collect()
    }

    /// Follows the change feed after `record_version` (of `record_type`
    /// only, when given) forever: a stream of every change (puts and
    /// deletions), in version order.
    ///
    /// When `(server_version, record_version)` came from this backend's
    /// [`Backend::sync_latest`] (or [`Backend::snapshot`]), the stamp taken
    /// with it is used, so a rollback of the namespace is detected (see
    /// [`SyncCursor`]); [`Backend::sync_from`] takes the cursor explicitly.
    ///
    /// The stream has its own connection. It waits on the server
    /// (`DB.SYNC ... BLOCK`, [`Config::sync_block`]) for new changes, and
    /// declares the connection dead when a reply is later than
    /// [`Config::sync_stall_timeout`] (`sync_block + response_timeout`).
    /// After a failure of a connection that had worked it reconnects at
    /// once, otherwise with backoff ([`Config::retry`]), without limit, and
    /// resumes after the last version it received: no change is missed or
    /// repeated. It ends after yielding [`Error::InvalidServerVersion`] or
    /// [`Error::Trimmed`] (start over with [`Backend::sync_latest`], or use
    /// [`Backend::follow`], which does), any other non-transient error, or
    /// when the backend is closed. A record that does not decrypt yields
    /// [`Error::Decrypt`] and the stream goes on.
    pub fn sync(
        &self,
        record_type: Option<&str>,
        server_version: u64,
        record_version: u64,
    ) -> RecordStream {
        let cursor = SyncCursor {
            server_version,
            record_version,
            stamp: self.shared.stamp_of(server_version, record_version),
        };
        self.sync_from(record_type, cursor)
    }

    /// [`Backend::sync`] from a [`SyncCursor`] (from [`Backend::snapshot`]):
    /// the feed checks the cursor's stamp, so it ends with
    /// [`Error::InvalidServerVersion`] when the namespace was rolled back.
    pub fn sync_from(&self, record_type: Option<&str>, cursor: SyncCursor) -> RecordStream {
        crate::sync::follow(self.shared.clone(), record_type.map(str::to_string), cursor)
    }

    /// All current records (of `record_type` and selected by `filter`, when
    /// given): returns the server version, the record version to pass to
    /// [`Backend::sync`] afterwards, and a stream over every page. The
    /// backend remembers the stamp of that record version for
    /// [`Backend::sync`] ([`Backend::snapshot`] returns it).
    ///
    /// A record updated while the pages are read may come twice (keep the
    /// higher version). The first page is read before this returns; later
    /// pages are read as the stream is polled (each call retried per
    /// [`Config::retry`] within [`Config::call_timeout`]). A record that
    /// does not decrypt yields [`Error::Decrypt`] and the stream goes on;
    /// other errors end it.
    pub async fn sync_latest(
        &self,
        record_type: Option<&str>,
        filter: Option<&Filter>,
    ) -> Result<(u64, u64, RecordStream)> {
        let (cursor, records) = self.snapshot(record_type, filter).await?;
        Ok((cursor.server_version, cursor.record_version, records))
    }

    /// [`Backend::sync_latest`] returning the [`SyncCursor`] to continue
    /// from with [`Backend::sync_from`]:
    ///
    /// ```no_run
    /// # async fn demo(db: databroker_client::Backend) -> Result<(), databroker_client::Error> {
    /// use futures::StreamExt;
    /// let (cursor, mut records) = db.snapshot(None, None).await?;
    /// while let Some(record) = records.next().await {
    ///     let record = record?; // keep the higher version of a record seen twice
    /// }
    /// let mut changes = db.sync_from(None, cursor);
    /// # Ok(()) }
    /// ```
    pub async fn snapshot(
        &self,
        record_type: Option<&str>,
        filter: Option<&Filter>,
    ) -> Result<(SyncCursor, RecordStream)> {
        crate::sync_latest::start(
            self.shared.clone(),
            record_type.map(str::to_string),
            filter.map(Filter::to_json),
        )
        .await
    }

    /// A follower of the namespace (of `record_type` only, when given)
    /// that keeps a copy of its records converging to the server's: it
    /// takes a snapshot ([`FollowEvent::Snapshot`](crate::FollowEvent::Snapshot): replace what you hold),
    /// then follows the feed ([`FollowEvent::Change`](crate::FollowEvent::Change)). When the feed cannot
    /// go on (`SERVERVERSION`: the namespace was recreated, e.g. after a
    /// restart without persistence, or rolled back; `TRIMMED`: the follower
    /// fell behind retention; any other error the feed does not retry), it
    /// reports the error as an `Err` item and starts over with a fresh
    /// snapshot: at once the first time, with backoff when restarts
    /// follow each other without progress. It ends only when the backend is
    /// closed.
    ///
    /// ```no_run
    /// # async fn demo(db: databroker_client::Backend) {
    /// use std::collections::BTreeMap;
    /// use futures::StreamExt;
    /// let mut records = BTreeMap::new();
    /// let mut follower = db.follow(None);
    /// while let Some(event) = follower.next().await {
    ///     match event {
    ///         Ok(event) => event.apply_to(&mut records),
    ///         Err(e) => eprintln!("follower: {e} (it goes on)"),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn follow(&self, record_type: Option<&str>) -> Follower {
        crate::follower::follower(self.shared.clone(), record_type.map(str::to_string))
    }

    /// Closes the backend: drops its connection (and a connection attempt
    /// in flight), ends its sync streams and followers, and makes calls in
    /// progress and later calls (on every clone) fail with [`Error::Closed`]
    /// at once. Returns without waiting for anything.
    pub async fn close(&self) {
        self.shared.close();
    }

    /// How many connections this backend has opened (or tried to open) for
    /// its calls so far; sync streams and followers open their own and are
    /// not counted. For diagnostics.
    pub fn connections_opened(&self) -> u64 {
        self.shared.dials()
    }
}
