//! The stream type returned by [`Backend::sync`](crate::Backend::sync) and
//! [`Backend::sync_latest`](crate::Backend::sync_latest).

use std::pin::Pin;

use futures::Stream;

use crate::error::Result;
use crate::pb::Record;

/// A stream of records (or errors); use it with
/// [`futures::StreamExt`](https://docs.rs/futures/latest/futures/stream/trait.StreamExt.html).
pub type RecordStream = Pin<Box<dyn Stream<Item = Result<Record>> + Send + 'static>>;
