//! [`Backend::sync_latest`](crate::Backend::sync_latest): pages through all
//! current records with `DB.SYNCLATEST ... CURSOR`.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::cipher::open_with;
use crate::error::{Error, Result};
use crate::pb::Record;
use crate::reply::{self, PageReply};
use crate::shared::Shared;
use crate::stream::RecordStream;
use crate::sync::SyncCursor;

async fn page(
    shared: &Shared,
    record_type: Option<&str>,
    filter: Option<&str>,
    at: &str,
) -> Result<PageReply> {
    let config = &shared.config;
    let mut cmd = redis::cmd("DB.SYNCLATEST");
    cmd.arg(&config.namespace);
    if let Some(t) = record_type {
        cmd.arg("TYPE").arg(t);
    }
    if let Some(f) = filter {
        cmd.arg("FILTER").arg(f);
    }
    cmd.arg("CURSOR")
        .arg(at)
        .arg("COUNT")
        .arg(config.batch_size.max(1))
        .arg("FORMAT")
        .arg("PROTO");
    reply::page_reply(shared.query(&cmd).await?)
}

struct Pages {
    shared: Arc<Shared>,
    record_type: Option<String>,
    filter: Option<String>,
    server_version: u64,
    /// The cursor of the next page; `None` after the last page.
    cursor: Option<String>,
    buffer: VecDeque<Record>,
    done: bool,
}

impl Pages {
    async fn next(&mut self) -> Option<Result<Record>> {
        loop {
            if let Some(r) = self.buffer.pop_front() {
                return Some(open_with(self.shared.config.cipher.as_ref(), r));
            }
            let at = match (&self.cursor, self.done) {
                (Some(at), false) => at.clone(),
                _ => return None,
            };
            match page(
                &self.shared,
                self.record_type.as_deref(),
                self.filter.as_deref(),
                &at,
            )
            .await
            {
                Ok(p) if p.server_version != self.server_version => {
                    self.done = true;
                    return Some(Err(Error::InvalidServerVersion(format!(
                        "the server version changed from {} to {} while paging",
                        self.server_version, p.server_version
                    ))));
                }
                Ok(p) => {
                    self.cursor = (p.next_cursor != "0").then_some(p.next_cursor);
                    self.buffer.extend(p.records);
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Reads the first page and returns the cursor the feed continues from and
/// a stream over all pages.
pub(crate) async fn start(
    shared: Arc<Shared>,
    record_type: Option<String>,
    filter: Option<String>,
) -> Result<(SyncCursor, RecordStream)> {
    let first = page(&shared, record_type.as_deref(), filter.as_deref(), "0").await?;
    let cursor = SyncCursor {
        server_version: first.server_version,
        record_version: first.record_version,
        stamp: first.record_stamp,
    };
    shared.remember_stamp(cursor.server_version, cursor.record_version, cursor.stamp);
    let state = Pages {
        shared,
        record_type,
        filter,
        server_version: first.server_version,
        cursor: (first.next_cursor != "0").then_some(first.next_cursor),
        buffer: first.records.into(),
        done: false,
    };
    let stream: RecordStream = Box::pin(futures::stream::unfold(state, |mut s| async move {
        let item = s.next().await?;
        Some((item, s))
    }));
    Ok((cursor, stream))
}
