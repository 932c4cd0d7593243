//! [`Backend::follow`](crate::Backend::follow): a snapshot, then the change
//! feed, and a fresh snapshot whenever the feed cannot go on.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};

use crate::error::{Error, Result};
use crate::pb::Record;
use crate::record::RecordExt;
use crate::shared::Shared;
use crate::sync::{Follow, SyncCursor};

/// What a [`Follower`] tells its caller.
#[derive(Debug, Clone, PartialEq)]
pub enum FollowEvent {
    /// Replace everything you hold (of the followed type) with `records`:
    /// the server's current records, one per `(type, id)`, sorted. The
    /// first event, and again each time the follower had to start over.
    Snapshot {
        /// Where the feed continues after this snapshot.
        cursor: SyncCursor,
        /// The current records.
        records: Vec<Record>,
    },
    /// A change after the snapshot, in version order: store the record, or
    /// remove it when it is a deletion ([`RecordExt::is_deleted`]). Changes
    /// the snapshot already holds are not repeated.
    Change(Record),
}

impl FollowEvent {
    /// Applies the event to `state`, a map from `(type, id)` to the current
    /// record: a snapshot replaces it, a change updates it.
    pub fn apply_to(self, state: &mut BTreeMap<(String, String), Record>) {
        match self {
            FollowEvent::Snapshot { records, .. } => {
                state.clear();
                state.extend(
                    records
                        .into_iter()
                        .map(|r| ((r.r#type.clone(), r.id.clone()), r)),
                );
            }
            FollowEvent::Change(r) => {
                let key = (r.r#type.clone(), r.id.clone());
                if r.is_deleted() {
                    state.remove(&key);
                } else {
                    state.insert(key, r);
                }
            }
        }
    }
}

/// A follower of the namespace (see [`Backend::follow`](crate::Backend::follow)):
/// a [`Stream`] of [`FollowEvent`]s that never ends until the backend is
/// closed. `Err` items are reports: the follower goes on by itself.
pub struct Follower {
    inner: Pin<Box<dyn Stream<Item = Result<FollowEvent>> + Send + 'static>>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").finish_non_exhaustive()
    }
}

impl Stream for Follower {
    type Item = Result<FollowEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

struct State {
    shared: Arc<Shared>,
    record_type: Option<String>,
    feed: Option<Follow>,
    /// Records the snapshot holds at a version above its cursor (updated
    /// while it was paged): their older changes are not repeated.
    skip: HashMap<(String, String), u64>,
    skip_until: u64,
    /// Restarts in a row without the feed getting a reply.
    restarts: u32,
    pending: VecDeque<Result<FollowEvent>>,
}

pub(crate) fn follower(shared: Arc<Shared>, record_type: Option<String>) -> Follower {
    let state = State {
        shared,
        record_type,
        feed: None,
        skip: HashMap::new(),
        skip_until: 0,
        restarts: 0,
        pending: VecDeque::new(),
    };
    Follower {
        inner: Box::pin(futures::stream::unfold(state, |mut s| async move {
            let item = s.next().await?;
            Some((item, s))
        })),
    }
}

impl State {
    async fn next(&mut self) -> Option<Result<FollowEvent>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.shared.is_closed() {
                return None;
            }
            let Some(feed) = self.feed.as_mut() else {
                if self.restarts > 1 {
                    let wait = self.shared.config.retry.backoff(self.restarts - 1);
                    self.shared.pause(wait).await;
                    if self.shared.is_closed() {
                        return None;
                    }
                }
                match self.snapshot().await {
                    Ok(()) => continue,
                    Err(Error::Closed) => return None,
                    Err(e) => {
                        self.restarts = self.restarts.max(1).saturating_add(1);
                        return Some(Err(e));
                    }
                }
            };
            match feed.next().await {
                None => {
                    // Closed (or ended without an error: start over).
                    self.feed = None;
                }
                Some(Ok(change)) => {
                    self.restarts = 0;
                    if self.repeated(&change) {
                        continue;
                    }
                    return Some(Ok(FollowEvent::Change(change)));
                }
                Some(Err(e @ Error::Decrypt { .. })) => return Some(Err(e)),
                Some(Err(Error::Closed)) => return None,
                Some(Err(e)) => {
                    // SERVERVERSION (recreated or rolled back), TRIMMED, or
                    // a failure the feed does not retry: start over.
                    let progressed = feed.replies > 0;
                    let was_empty = feed.cursor().server_version == 0;
                    self.feed = None;
                    if was_empty && matches!(e, Error::InvalidServerVersion(_)) {
                        // The snapshot found a namespace never written; its
                        // first write is no news worth an error.
                        self.restarts = if progressed {
                            1
                        } else {
                            self.restarts.saturating_add(1)
                        };
                        continue;
                    }
                    self.restarts = if progressed {
                        1
                    } else {
                        self.restarts.saturating_add(1)
                    };
                    return Some(Err(e));
                }
            }
        }
    }

    /// True for a change the snapshot already holds (or something newer).
    fn repeated(&mut self, change: &Record) -> bool {
        if self.skip.is_empty() {
            return false;
        }
        let key = (change.r#type.clone(), change.id.clone());
        let repeated = match self.skip.get(&key) {
            Some(v) if change.version <= *v => true,
            Some(_) => {
                self.skip.remove(&key);
                false
            }
            None => false,
        };
        if change.version >= self.skip_until {
            self.skip.clear();
        }
        repeated
    }

    /// Reads a whole snapshot, queues it as an event and starts the feed
    /// after it.
    async fn snapshot(&mut self) -> Result<()> {
        let (cursor, mut pages) =
            crate::sync_latest::start(self.shared.clone(), self.record_type.clone(), None).await?;
        let mut current: HashMap<(String, String), Record> = HashMap::new();
        let mut reports = Vec::new();
        while let Some(item) = pages.next().await {
            match item {
                Ok(r) => {
                    let key = (r.r#type.clone(), r.id.clone());
                    match current.get(&key) {
                        Some(held) if held.version >= r.version => {}
                        _ => {
                            current.insert(key, r);
                        }
                    }
                }
                Err(e @ Error::Decrypt { .. }) => reports.push(Err(e)),
                Err(e) => return Err(e),
            }
        }
        self.skip = current
            .iter()
            .filter(|(_, r)| r.version > cursor.record_version)
            .map(|(k, r)| (k.clone(), r.version))
            .collect();
        self.skip_until = self.skip.values().copied().max().unwrap_or(0);
        let mut records: Vec<Record> = current.into_values().collect();
        records.sort_by(|a, b| (&a.r#type, &a.id).cmp(&(&b.r#type, &b.id)));
        self.pending.extend(reports);
        self.pending
            .push_back(Ok(FollowEvent::Snapshot { cursor, records }));
        self.feed = Some(Follow::new(
            self.shared.clone(),
            self.record_type.clone(),
            cursor,
        ));
        Ok(())
    }
}
