//! Per-namespace figures for `INFO databroker`, designed to cost nothing on
//! the command path and little at INFO time.
//!
//! A bounded registry remembers the namespaces this process has seen, by
//! (database, namespace): written (`DB.PUT`, `DB.DELETE`, `DB.WRITE`, `DB.SETOPTIONS`, or
//! the replicated write on a replica), trimmed or found by the retention
//! timer's walk of database 0 (so existing namespaces appear after a restart),
//! or waited on by a blocking `DB.SYNC`. Each hook is one hash-map update and
//! keeps only what the keys cannot tell: when it was last written, when
//! retention last trimmed it and how many changes it trimmed since load.
//!
//! At INFO time every registered namespace's record and retained-change counts
//! are read from its keys (`HLEN`, `ZCARD`: O(1) each, so O(registered) in all,
//! at most [`MAX_TRACKED`]); the [`TOP_N`] largest by records are itemized with
//! their earliest/latest version and waiting followers, and totals cover all
//! registered namespaces. Past [`MAX_TRACKED`] namespaces the least recently
//! active entry is dropped for the new one (`namespaces_dropped` counts them;
//! a dropped namespace comes back at its next write, trim or wait, and the
//! totals miss it meanwhile). Entries whose keys are gone are dropped at INFO
//! time; `FLUSHDB`/`FLUSHALL` drop their database's entries at once and
//! `SWAPDB` swaps them. Names longer than [`TRACKED_NAME_MAX`] bytes are not
//! registered, so the registry holds at most about 1 MB. Main thread only.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::os::raw::c_int;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use databroker_core::Keys;
use redis_module::raw::{self, RedisModuleCtx, RedisModuleInfoCtx, RedisModuleKey};
use redis_module::Context;

use crate::redis_store::RStr;

/// Namespaces remembered at most.
pub const MAX_TRACKED: usize = 1000;
/// Namespaces itemized in INFO, the largest by records.
pub const TOP_N: usize = 10;
/// Bytes of a namespace name shown in INFO (longer names end with `...`).
const NAME_MAX: usize = 128;
/// Namespaces with longer names are not registered (bounds the memory).
pub const TRACKED_NAME_MAX: usize = 1024;

/// What the registry keeps per namespace (times in Unix µs, 0 = never).
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// Activity order: the entry with the lowest is dropped first.
    seq: u64,
    last_seen_us: i64,
    last_write_us: i64,
    last_trim_us: i64,
    trimmed: u64,
}

#[derive(Default)]
struct Registry {
    dbs: HashMap<c_int, HashMap<Vec<u8>, Entry>>,
    len: usize,
    dropped: u64,
    seq: u64,
}

impl Registry {
    /// Runs `f` on the entry of (db, ns), creating it (and dropping the
    /// least recently active one when full) if needed.
    fn update(&mut self, db: c_int, ns: &[u8], f: impl FnOnce(&mut Entry)) {
        let now = now_us();
        self.seq += 1;
        let seq = self.seq;
        if let Some(e) = self.dbs.get_mut(&db).and_then(|m| m.get_mut(ns)) {
            e.seq = seq;
            e.last_seen_us = now;
            f(e);
            return;
        }
        if self.len >= MAX_TRACKED {
            self.drop_least_recent();
        }
        let mut e = Entry {
            seq,
            last_seen_us: now,
            ..Entry::default()
        };
        f(&mut e);
        self.dbs.entry(db).or_default().insert(ns.to_vec(), e);
        self.len += 1;
    }

    fn drop_least_recent(&mut self) {
        let oldest = self
            .dbs
            .iter()
            .flat_map(|(db, m)| m.iter().map(move |(ns, e)| (e.seq, *db, ns)))
            .min_by_key(|(t, _, _)| *t)
            .map(|(_, db, ns)| (db, ns.clone()));
        if let Some((db, ns)) = oldest {
            self.remove(db, &ns);
            self.dropped += 1;
        }
    }

    fn remove(&mut self, db: c_int, ns: &[u8]) {
        if let Some(m) = self.dbs.get_mut(&db) {
            if m.remove(ns).is_some() {
                self.len -= 1;
            }
            if m.is_empty() {
                self.dbs.remove(&db);
            }
        }
    }
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// A context for reading keys at INFO time (the INFO callback gets none).
static READER: AtomicPtr<RedisModuleCtx> = AtomicPtr::new(ptr::null_mut());

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn update(db: c_int, ns: &[u8], f: impl FnOnce(&mut Entry)) {
    if ns.len() > TRACKED_NAME_MAX {
        return;
    }
    REGISTRY.with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            r.update(db, ns, f);
        }
    });
}

fn selected_db(ctx: &Context) -> c_int {
    crate::waiters::selected_db(ctx.ctx)
}

/// Creates the INFO-time reading context (call from the module's init).
pub fn init(ctx: &Context) {
    if let Some(detached) = unsafe { raw::RedisModule_GetDetachedThreadSafeContext } {
        // SAFETY: valid load context; the context lives as long as the module.
        READER.store(unsafe { detached(ctx.ctx) }, Ordering::Relaxed);
    }
}

/// A write command changed `ns` (and its own retention trimmed `trimmed`).
pub fn wrote(ctx: &Context, ns: &[u8], trimmed: u64) {
    update(selected_db(ctx), ns, |e| {
        e.last_write_us = e.last_seen_us;
        if trimmed > 0 {
            e.last_trim_us = e.last_seen_us;
            e.trimmed += trimmed;
        }
    });
}

/// A replicated write to `ns` arrived (replicas).
pub fn replicated_write(ctx: *mut RedisModuleCtx, ns: &[u8]) {
    update(crate::waiters::selected_db(ctx), ns, |e| {
        e.last_write_us = e.last_seen_us
    });
}

/// The retention timer visited `ns` and trimmed `count` changes.
pub fn trimmed(ctx: &Context, ns: &[u8], count: u64) {
    update(selected_db(ctx), ns, |e| {
        if count > 0 {
            e.last_trim_us = e.last_seen_us;
            e.trimmed += count;
        }
    });
}

/// A client waits on `ns` in database `db`.
pub fn waited(db: c_int, ns: &[u8]) {
    update(db, ns, |_| {});
}

/// `FLUSHDB` (Some(db)) or `FLUSHALL` (None) emptied databases.
pub fn flushed(db: Option<c_int>) {
    REGISTRY.with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            match db {
                Some(db) => {
                    let n = r.dbs.remove(&db).map_or(0, |m| m.len());
                    r.len -= n;
                }
                None => {
                    r.dbs.clear();
                    r.len = 0;
                }
            }
        }
    });
}

/// `SWAPDB a b` swapped two databases.
pub fn swapped(a: c_int, b: c_int) {
    REGISTRY.with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            let ma = r.dbs.remove(&a);
            let mb = r.dbs.remove(&b);
            if let Some(m) = ma {
                r.dbs.insert(b, m);
            }
            if let Some(m) = mb {
                r.dbs.insert(a, m);
            }
        }
    });
}

/// Read-only access to one key at INFO time.
struct Key {
    ctx: *mut RedisModuleCtx,
    key: *mut RedisModuleKey,
    _name: RStr,
}

impl Key {
    fn open(ctx: *mut RedisModuleCtx, name: &[u8]) -> Option<Key> {
        let open = unsafe { raw::RedisModule_OpenKey }?;
        let rname = RStr::new(ctx, name);
        // Leave no trace: no LRU/LFU touch and, where the server knows the
        // flags (Redis 7.2+), no keyspace hit/miss counts and no expiry.
        let extra = raw::REDISMODULE_OPEN_KEY_NOSTATS | raw::REDISMODULE_OPEN_KEY_NOEFFECTS;
        // SAFETY: no arguments; absent before Redis 7.2.
        let known = unsafe { raw::RedisModule_GetOpenKeyModesAll.map_or(0, |f| f()) } as u32;
        let mode = raw::REDISMODULE_READ | raw::REDISMODULE_OPEN_KEY_NOTOUCH | (extra & known);
        // SAFETY: valid ctx and name; closed in Drop.
        let key = unsafe { open(ctx, rname.ptr, mode as c_int) }.cast::<RedisModuleKey>();
        (!key.is_null()).then_some(Key {
            ctx,
            key,
            _name: rname,
        })
    }

    fn kind(&self) -> c_int {
        // SAFETY: open key.
        unsafe { raw::RedisModule_KeyType.map_or(0, |f| f(self.key)) }
    }

    /// HLEN / ZCARD when the key is of `kind`, else 0.
    fn len_if(&self, kind: isize) -> u64 {
        if self.kind() != kind as c_int {
            return 0;
        }
        // SAFETY: open key.
        unsafe { raw::RedisModule_ValueLength.map_or(0, |f| f(self.key) as u64) }
    }

    /// The lowest score of a sorted set.
    fn first_score(&self) -> Option<f64> {
        if self.kind() != raw::REDISMODULE_KEYTYPE_ZSET as c_int {
            return None;
        }
        // SAFETY: open zset key; the range is stopped and the element freed.
        unsafe {
            let first = raw::RedisModule_ZsetFirstInScoreRange?;
            let current = raw::RedisModule_ZsetRangeCurrentElement?;
            let stop = raw::RedisModule_ZsetRangeStop?;
            let free = raw::RedisModule_FreeString?;
            if first(self.key, f64::NEG_INFINITY, f64::INFINITY, 0, 0)
                != raw::REDISMODULE_OK as c_int
            {
                return None;
            }
            let mut score = 0.0;
            let el = current(self.key, &mut score);
            stop(self.key);
            if el.is_null() {
                return None;
            }
            free(self.ctx, el);
            Some(score)
        }
    }

    /// A string key's value as a decimal u64.
    fn as_u64(&self) -> Option<u64> {
        if self.kind() != raw::REDISMODULE_KEYTYPE_STRING as c_int {
            return None;
        }
        let dma = unsafe { raw::RedisModule_StringDMA }?;
        let mut len = 0usize;
        // SAFETY: open string key, read-only access to `len` bytes.
        let p = unsafe { dma(self.key, &mut len, raw::REDISMODULE_READ as c_int) };
        if p.is_null() {
            return None;
        }
        // SAFETY: DMA pointer valid for `len` bytes while the key is open.
        let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) };
        std::str::from_utf8(bytes).ok()?.parse().ok()
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if let Some(close) = unsafe { raw::RedisModule_CloseKey } {
            // SAFETY: opened by OpenKey, closed once.
            unsafe { close(self.key) };
        }
    }
}

/// One namespace's figures at INFO time.
struct Figures {
    db: c_int,
    ns: Vec<u8>,
    entry: Entry,
    records: u64,
    changes: u64,
    waiting: u64,
}

/// The namespace name for INFO: printable ASCII except `%,:=` and spaces
/// kept, other bytes percent-encoded; at most [`NAME_MAX`] bytes of it.
fn show(ns: &[u8]) -> String {
    let mut s = String::new();
    for &b in ns.iter().take(NAME_MAX) {
        if b.is_ascii_graphic() && !matches!(b, b'%' | b',' | b':' | b'=') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    if ns.len() > NAME_MAX {
        s.push_str("...");
    }
    s
}

/// Adds the per-namespace fields to the `databroker` INFO section.
///
/// # Safety
/// `ctx` is the INFO callback's context, inside the `databroker` section.
pub unsafe fn info(ctx: *mut RedisModuleInfoCtx, for_crash_report: bool) {
    let Some(add_ll) = raw::RedisModule_InfoAddFieldLongLong else {
        return;
    };
    let field = |name: &str, v: u64| {
        if let Ok(n) = CString::new(name) {
            add_ll(ctx, n.as_ptr(), v.min(i64::MAX as u64) as i64);
        }
    };
    let reader = READER.load(Ordering::Relaxed);
    let (entries, dropped) = REGISTRY.with(|r| match r.try_borrow() {
        Ok(r) => {
            let list: Vec<(c_int, Vec<u8>, Entry)> = r
                .dbs
                .iter()
                .flat_map(|(db, m)| m.iter().map(move |(ns, e)| (*db, ns.clone(), *e)))
                .collect();
            (list, r.dropped)
        }
        Err(_) => (Vec::new(), 0),
    });
    if for_crash_report || reader.is_null() {
        field("namespaces", entries.len() as u64);
        field("namespaces_dropped", dropped);
        return;
    }
    let Some(select) = raw::RedisModule_SelectDb else {
        return;
    };
    // Waiting followers by (db, namespace).
    let mut waiting: HashMap<(c_int, Vec<u8>), u64> = HashMap::new();
    for (db, key) in crate::waiters::waiting_keys() {
        if let Some(ns) = key.strip_suffix(b".last_version") {
            *waiting.entry((db, ns.to_vec())).or_default() += 1;
        }
    }
    let mut figures = Vec::with_capacity(entries.len());
    let mut gone = Vec::new();
    for (db, ns, entry) in entries {
        let w = waiting.get(&(db, ns.clone())).copied().unwrap_or(0);
        if select(reader, db) != raw::REDISMODULE_OK as c_int {
            gone.push((db, ns));
            continue;
        }
        let keys = Keys::new(&ns);
        let records = Key::open(reader, keys.records());
        let changes = Key::open(reader, keys.changes());
        let exists = records.is_some()
            || changes.is_some()
            || Key::open(reader, keys.server_version()).is_some()
            || Key::open(reader, keys.last_version()).is_some();
        if !exists && w == 0 {
            gone.push((db, ns));
            continue;
        }
        figures.push(Figures {
            records: records.map_or(0, |k| k.len_if(raw::REDISMODULE_KEYTYPE_HASH)),
            changes: changes.map_or(0, |k| k.len_if(raw::REDISMODULE_KEYTYPE_ZSET)),
            db,
            ns,
            entry,
            waiting: w,
        });
    }
    REGISTRY.with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            for (db, ns) in &gone {
                r.remove(*db, ns);
            }
        }
    });
    field("namespaces", figures.len() as u64);
    field("namespaces_dropped", dropped);
    field("records", figures.iter().map(|f| f.records).sum());
    field("changes_retained", figures.iter().map(|f| f.changes).sum());
    figures.sort_by(|a, b| {
        (b.records, b.changes)
            .cmp(&(a.records, a.changes))
            .then_with(|| (a.db, &a.ns).cmp(&(b.db, &b.ns)))
    });
    let (Some(begin), Some(end), Some(add_str)) = (
        raw::RedisModule_InfoBeginDictField,
        raw::RedisModule_InfoEndDictField,
        raw::RedisModule_InfoAddFieldCString,
    ) else {
        return;
    };
    for (i, f) in figures.iter().take(TOP_N).enumerate() {
        let keys = Keys::new(&f.ns);
        let _ = select(reader, f.db);
        let latest = Key::open(reader, keys.last_version())
            .and_then(|k| k.as_u64())
            .unwrap_or(0);
        let earliest = Key::open(reader, keys.changes())
            .and_then(|k| k.first_score())
            .map_or(latest + 1, |s| s as u64);
        let (Ok(dict), Ok(name)) = (CString::new(format!("ns_{i}")), CString::new(show(&f.ns)))
        else {
            continue;
        };
        begin(ctx, dict.as_ptr());
        add_str(ctx, c"name".as_ptr(), name.as_ptr());
        field("db", f.db as u64);
        field("records", f.records);
        field("changes", f.changes);
        field("earliest_version", earliest);
        field("latest_version", latest);
        field("waiting", f.waiting);
        field("last_write_ms", (f.entry.last_write_us / 1000) as u64);
        field("last_trim_ms", (f.entry.last_trim_us / 1000) as u64);
        field("trimmed", f.entry.trimmed);
        end(ctx);
    }
}
