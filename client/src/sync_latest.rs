//! [`Backend::sync_latest`](crate::Backend::sync_latest): pages through all
//! current records with `DB.SYNCLATEST ... CURSOR`.

use std::collections::VecDeque;
use std::sync::Arc;

use redis::Value;

use crate::cipher::open_with;
use crate::error::{Error, Result};
use crate::pb::Record;
use crate::reply;
use crate::shared::Shared;
use crate::stream::RecordStream;

/// One `DB.SYNCLATEST` reply.
struct Page {
    server_version: u64,
    record_version: u64,
    next_cursor: String,
    records: Vec<Record>,
}

fn cursor(v: Value) -> Result<String> {
    match v {
        Value::Int(i) => Ok(i.to_string()),
        v => reply::string(v, "next_cursor"),
    }
}

async fn page(
    shared: &Shared,
    record_type: Option<&str>,
    filter: Option<&str>,
    at: &str,
) -> Result<Page> {
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
    let [sv, rv, next, records] =
        reply::tuple::<4>(shared.query(&cmd).await?, "DB.SYNCLATEST reply")?;
    Ok(Page {
        server_version: reply::uint(&sv, "server_version")?,
        record_version: reply::uint(&rv, "record_version")?,
        next_cursor: cursor(next)?,
        records: reply::records(records)?,
    })
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

/// Reads the first page and returns the versions and a stream over all pages.
pub(crate) async fn start(
    shared: Arc<Shared>,
    record_type: Option<String>,
    filter: Option<String>,
) -> Result<(u64, u64, RecordStream)> {
    let first = page(&shared, record_type.as_deref(), filter.as_deref(), "0").await?;
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
    Ok((first.server_version, first.record_version, stream))
}
