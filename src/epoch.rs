//! The write epoch and the wake-up answer cache of blocked `DB.SYNC`
//! followers: every write bumps the epoch, and an answer computed for one
//! woken follower serves every follower with the same arguments until then.

use std::cell::RefCell;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicU64, Ordering};

use databroker_core::{DbError, Reply};

/// Bumped by every write the module makes or sees replicated: a cached
/// wake-up answer is valid only within the epoch it was computed in.
pub static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Marks that namespace data may have changed.
pub fn bump() {
    EPOCH.fetch_add(1, Ordering::Relaxed);
    // The old answer can never be used again: free it (it may hold many records).
    WAKE_CACHE.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            c.take();
        }
    });
}

/// The answer computed for the first follower woken by a write, reused for
/// every other follower with the same arguments in the same epoch (a write
/// often wakes hundreds of identical `DB.SYNC` calls). Main thread only.
pub struct WakeAnswer {
    /// The epoch it was computed in.
    pub epoch: u64,
    /// The followers' database.
    pub db: c_int,
    /// The followers' arguments.
    pub args: Vec<Vec<u8>>,
    /// The answer: (reply, still caught up) or the error.
    pub result: Result<(Reply, bool), DbError>,
}

thread_local! {
    /// The current wake-up answer, if any.
    pub static WAKE_CACHE: RefCell<Option<WakeAnswer>> = const { RefCell::new(None) };
}
