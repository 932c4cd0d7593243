//! Async Rust client for the redis-databroker module: the API of Pomerium's
//! Go databroker backend (`get`, `put`, `sync`, `sync_latest`, leases, ...)
//! over the module's `DB.*` commands, on `redis` (redis-rs) and tokio.
//!
//! ```no_run
//! use databroker_client::{new_record, Backend, Config, RecordExt};
//! use futures::StreamExt;
//!
//! # async fn demo() -> Result<(), databroker_client::Error> {
//! let db = Backend::connect("redis://127.0.0.1:6379", Config::default()).await?;
//! let mut records = vec![new_record("example/session", "s1", b"hello".to_vec())];
//! let server_version = db.put(&mut records).await?;
//! let current = db.get("example/session", "s1").await?;
//! assert_eq!(current.map(|r| r.payload().to_vec()), Some(b"hello".to_vec()));
//! let mut feed = db.sync(None, server_version, 0);
//! while let Some(change) = feed.next().await {
//!     let change = change?;
//!     println!("{} {}/{}", change.version, change.r#type, change.id);
//! }
//! # Ok(()) }
//! ```
//!
//! Connections: [`Backend::connect`] takes `redis://`, `rediss://` (TLS, with
//! [`TlsConfig`] for a custom CA and a client certificate) and unix socket
//! URLs; [`Backend::connect_cluster`] takes the nodes of a Redis Cluster.
//! Transient failures are retried per [`RetryPolicy`], and every call ends
//! within [`Config::call_timeout`]. [`Backend::follow`] keeps a copy of the
//! namespace converging to the server's (snapshot, feed, and a fresh
//! snapshot whenever the feed cannot go on). With a [`Cipher`], payloads
//! are sealed with AES-256-GCM before they leave the client.
#![deny(missing_docs)]

mod backend;
mod cipher;
mod config;
mod conn;
mod error;
mod filter;
mod follower;
mod record;
mod reply;
mod shared;
mod stream;
mod sync;
mod sync_latest;
mod write;

pub use backend::{Backend, Versions};
pub use cipher::{Cipher, KEY_LEN};
pub use config::{ClientIdentity, Config, RetryPolicy, TlsConfig, DEFAULT_NAMESPACE};
pub use error::{Error, Result};
pub use filter::Filter;
pub use follower::{FollowEvent, Follower};
pub use record::{message_record, new_record, tombstone, RecordExt};
pub use stream::RecordStream;
pub use sync::SyncCursor;
pub use write::WriteResult;

/// Protobuf messages (`Record`, `Options`), wire-compatible with Pomerium's.
pub use databroker_core::pb;
/// The `redis` crate this client is built on (for its error type).
pub use redis;
