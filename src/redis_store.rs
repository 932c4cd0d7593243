//! [`Store`] over the Redis module API. Reads use the low-level key API;
//! every write is applied natively and propagated to replicas and the AOF as
//! the equivalent deterministic native command (HSET, ZADD, SET ... PXAT, ...).
//! Sets have no low-level API, so they go through `RedisModule_Call`.

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use databroker_core::store::{Bound, KeyKind, Store};
use redis_module::raw::{self, RedisModuleCtx, RedisModuleKey, RedisModuleString};
use redis_module::{Context, RedisValue};

const EMPTY: c_int = raw::REDISMODULE_KEYTYPE_EMPTY as c_int;
const STRING: c_int = raw::REDISMODULE_KEYTYPE_STRING as c_int;
const HASH: c_int = raw::REDISMODULE_KEYTYPE_HASH as c_int;
const ZSET: c_int = raw::REDISMODULE_KEYTYPE_ZSET as c_int;
const SET: c_int = raw::REDISMODULE_KEYTYPE_SET as c_int;

/// An owned `RedisModuleString`, freed on drop.
pub struct RStr {
    ctx: *mut RedisModuleCtx,
    /// The raw string.
    pub ptr: *mut RedisModuleString,
}

impl RStr {
    /// Copies `bytes` into a new Redis string.
    pub fn new(ctx: *mut RedisModuleCtx, bytes: &[u8]) -> Self {
        // SAFETY: CreateString copies `len` bytes from `ptr`.
        let ptr = unsafe {
            raw::RedisModule_CreateString.expect("CreateString")(
                ctx,
                bytes.as_ptr().cast::<c_char>(),
                bytes.len(),
            )
        };
        RStr { ctx, ptr }
    }
}

impl RStr {
    /// Another owned reference to the same string.
    fn retained(&self) -> Self {
        // SAFETY: a valid string; the new reference is freed on drop.
        unsafe { raw::RedisModule_RetainString.expect("RetainString")(self.ctx, self.ptr) };
        RStr {
            ctx: self.ctx,
            ptr: self.ptr,
        }
    }
}

impl Drop for RStr {
    fn drop(&mut self) {
        // SAFETY: created by CreateString on the same context.
        unsafe { raw::RedisModule_FreeString.expect("FreeString")(self.ctx, self.ptr) }
    }
}

/// Copies the bytes of a Redis string.
///
/// # Safety
/// `s` must be a valid Redis string.
unsafe fn bytes_of(s: *const RedisModuleString) -> Vec<u8> {
    let mut len = 0usize;
    let p = raw::RedisModule_StringPtrLen.expect("StringPtrLen")(s, &mut len);
    if p.is_null() {
        return Vec::new();
    }
    std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec()
}

/// True once the module turned off the implicit "modified key" signal of
/// write-opened keys ([`init`]): the store then signals every key it writes
/// itself, and may open keys for writing before knowing whether it writes.
static EXPLICIT_SIGNALS: AtomicBool = AtomicBool::new(false);

/// Sets the module options (at load): keys opened for writing no longer
/// signal themselves as modified when closed (`WATCH`, client tracking);
/// [`RedisStore`] calls `RedisModule_SignalModifiedKey` for each key it
/// actually writes. Without both APIs the implicit signal stays on and
/// stores open keys for writing only when they write.
pub fn init(ctx: &Context) {
    // SAFETY: load context; both are plain API calls.
    unsafe {
        if let (Some(set_options), Some(_)) = (
            raw::RedisModule_SetModuleOptions,
            raw::RedisModule_SignalModifiedKey,
        ) {
            set_options(
                ctx.ctx,
                raw::REDISMODULE_OPTION_NO_IMPLICIT_SIGNAL_MODIFIED as c_int,
            );
            EXPLICIT_SIGNALS.store(true, Ordering::Relaxed);
        }
    }
}

/// One open key: its handle and name as a Redis string (reused for
/// replication, notifications and signals).
struct Open {
    key: *mut RedisModuleKey,
    rname: RStr,
    /// The bytes of `rname` (stable while it is held).
    name: *const u8,
    name_len: usize,
    /// Opened for writing (else read-only, and null when the key is missing).
    write: bool,
    /// Signaled as modified by this store.
    signaled: bool,
}

impl Open {
    fn is(&self, name: &[u8]) -> bool {
        // SAFETY: the bytes of `rname`, which this entry holds.
        self.name_len == name.len()
            && unsafe { std::slice::from_raw_parts(self.name, self.name_len) } == name
    }
}

/// The bytes of a Redis string, borrowed.
///
/// # Safety
/// `s` must be a valid Redis string that outlives the slice.
unsafe fn str_bytes<'a>(s: *const RedisModuleString) -> &'a [u8] {
    let mut len = 0usize;
    let p = raw::RedisModule_StringPtrLen.expect("StringPtrLen")(s, &mut len);
    if p.is_null() {
        return &[];
    }
    std::slice::from_raw_parts(p.cast::<u8>(), len)
}

/// Buffers a store reuses between commands (main thread; a nested store
/// starts empty ones).
#[derive(Default)]
struct Scratch {
    open: Vec<Open>,
    argv: Vec<*mut RedisModuleString>,
    strs: Vec<RStr>,
    /// Strings made for values this command wrote, by content: the encoded
    /// record goes into `records` and `changes` as the same string.
    shared: Vec<RStr>,
}

thread_local! {
    static SCRATCH: Cell<Option<Scratch>> = const { Cell::new(None) };
    /// Key names as Redis strings made without a context, most recent last,
    /// kept between commands (a namespace's commands name the same keys).
    /// Redis never changes a string it does not own alone; each user takes
    /// its own reference. Never freed at exit.
    static NAMES: RefCell<Vec<CachedName>> = const { RefCell::new(Vec::new()) };
}

/// A key name in [`NAMES`]: the string and its bytes (stable while cached).
#[derive(Clone, Copy)]
struct CachedName {
    ptr: *mut RedisModuleString,
    bytes: *const u8,
    len: usize,
}

/// Key names kept in [`NAMES`].
const NAMES_MAX: usize = 24;

/// A Redis string holding the key name `name`, from [`NAMES`] when there.
fn key_name(name: &[u8]) -> RStr {
    let null = ptr::null_mut();
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        // SAFETY: the bytes of a cached string, which the cache holds.
        let hit = names.iter().rposition(|c| {
            c.len == name.len() && unsafe { std::slice::from_raw_parts(c.bytes, c.len) } == name
        });
        if let Some(i) = hit {
            let c = names[i];
            if i + 1 != names.len() {
                names.remove(i);
                names.push(c);
            }
            // SAFETY: a valid string; the new reference is freed on drop.
            unsafe { raw::RedisModule_RetainString.expect("RetainString")(null, c.ptr) };
            return RStr {
                ctx: null,
                ptr: c.ptr,
            };
        }
        let s = RStr::new(null, name);
        if names.len() >= NAMES_MAX {
            let old = names.remove(0);
            // SAFETY: the cache's own reference.
            unsafe { raw::RedisModule_FreeString.expect("FreeString")(null, old.ptr) };
        }
        // SAFETY: a valid string; the cache's reference is freed on eviction.
        let bytes = unsafe {
            raw::RedisModule_RetainString.expect("RetainString")(null, s.ptr);
            str_bytes(s.ptr)
        };
        names.push(CachedName {
            ptr: s.ptr,
            bytes: bytes.as_ptr(),
            len: bytes.len(),
        });
        s
    })
}

/// Values at least this long are kept in [`Scratch::shared`] for reuse.
const SHARE_MIN: usize = 64;
/// At most this many values are kept for reuse per command.
const SHARE_MAX: usize = 32;

/// The Store of one command invocation; open keys are cached (a command
/// touches a handful) and closed on drop.
pub struct RedisStore<'c> {
    ctx: &'c Context,
    open: Vec<Open>,
    argv: Vec<*mut RedisModuleString>,
    strs: Vec<RStr>,
    shared: Vec<RStr>,
    /// Open every key for writing at once (see [`RedisStore::for_write`]).
    write_all: bool,
}

impl<'c> RedisStore<'c> {
    /// A store for one command (or callback) on `ctx`.
    pub fn new(ctx: &'c Context) -> Self {
        let s = SCRATCH.with(Cell::take).unwrap_or_default();
        RedisStore {
            ctx,
            open: s.open,
            argv: s.argv,
            strs: s.strs,
            shared: s.shared,
            write_all: false,
        }
    }

    /// A store for a write command: each key is opened once, for reading
    /// and writing (when the module signals modified keys itself, see
    /// [`init`], so keys only read, and every key of a failed command, still
    /// count as unmodified).
    pub fn for_write(ctx: &'c Context) -> Self {
        let mut s = Self::new(ctx);
        s.write_all = EXPLICIT_SIGNALS.load(Ordering::Relaxed);
        s
    }

    fn raw_ctx(&self) -> *mut RedisModuleCtx {
        self.ctx.ctx
    }

    /// Index of the open key `name` for reading, opening it on first use.
    fn slot(&mut self, name: &[u8]) -> usize {
        self.open_with(name, false)
    }

    /// The name of key `name` as a Redis string, opening the key for reading
    /// (the command then reuses both): for checking ACL permissions without
    /// copying names twice. Valid while the store lives.
    pub fn key_name(&mut self, name: &[u8]) -> *mut RedisModuleString {
        let i = self.slot(name);
        self.open[i].rname.ptr
    }

    /// Index of the open key `name` for writing, signaled as modified.
    /// Without [`RedisStore::for_write`], keys are opened for reading first
    /// and reopened for writing only when written, so a command that fails
    /// validation (or only reads a key) signals no key as modified (no
    /// `WATCH` or client-tracking invalidation).
    fn wslot(&mut self, name: &[u8]) -> usize {
        let i = self.open_with(name, true);
        if !self.open[i].signaled && EXPLICIT_SIGNALS.load(Ordering::Relaxed) {
            self.open[i].signaled = true;
            // SAFETY: valid ctx and key name.
            unsafe {
                raw::RedisModule_SignalModifiedKey.expect("SignalModifiedKey")(
                    self.raw_ctx(),
                    self.open[i].rname.ptr,
                )
            };
        }
        i
    }

    fn open_with(&mut self, name: &[u8], write: bool) -> usize {
        let write = write || self.write_all;
        if let Some(i) = self.open.iter().position(|o| o.is(name)) {
            if self.open[i].write || !write {
                return i;
            }
            close_handle(self.open.swap_remove(i));
        }
        let ctx = self.raw_ctx();
        let rname = key_name(name);
        let mode = if write {
            raw::REDISMODULE_READ | raw::REDISMODULE_WRITE
        } else {
            raw::REDISMODULE_READ
        };
        // SAFETY: valid ctx and key name; the handle is closed in Drop or `close`.
        let key =
            unsafe { raw::RedisModule_OpenKey.expect("OpenKey")(ctx, rname.ptr, mode as c_int) };
        // SAFETY: a valid string; its buffer lives as long as the entry.
        let bytes = unsafe { str_bytes(rname.ptr) };
        let (name, name_len) = (bytes.as_ptr(), bytes.len());
        self.open.push(Open {
            key: key.cast(),
            name,
            name_len,
            rname,
            write,
            signaled: false,
        });
        self.open.len() - 1
    }

    /// The open key handle (null when the key is missing and the store is read-only).
    fn key(&mut self, name: &[u8]) -> *mut RedisModuleKey {
        let i = self.slot(name);
        self.open[i].key
    }

    fn key_type(&mut self, name: &[u8]) -> c_int {
        let k = self.key(name);
        if k.is_null() {
            return EMPTY;
        }
        // SAFETY: open key handle.
        unsafe { raw::RedisModule_KeyType.expect("KeyType")(k) }
    }

    /// Propagates `cmd argv...` to replicas and the AOF, or to replicas
    /// only when `aof` is false. Redis takes its own references to the
    /// strings. Up to four arguments go one by one ("sss"), which lets
    /// Redis size its argument vector once (a vector, "v", grows it again).
    fn replicate(&self, cmd: &CStr, aof: bool, argv: &[*mut RedisModuleString]) {
        // SAFETY: API pointers are filled once at load.
        let f = unsafe { raw::RedisModule_Replicate }.expect("Replicate");
        let ctx = self.raw_ctx();
        let c = cmd.as_ptr();
        // SAFETY: each format letter "s" takes one RedisModuleString*, "v"
        // takes (RedisModuleString **argv, size_t argc); "A" takes none.
        unsafe {
            match (argv, aof) {
                ([a], true) => f(ctx, c, c"s".as_ptr(), *a),
                ([a, b], true) => f(ctx, c, c"ss".as_ptr(), *a, *b),
                ([a, b], false) => f(ctx, c, c"ssA".as_ptr(), *a, *b),
                ([a, b, d], true) => f(ctx, c, c"sss".as_ptr(), *a, *b, *d),
                ([a, b, d, e], true) => f(ctx, c, c"ssss".as_ptr(), *a, *b, *d, *e),
                (_, true) => f(ctx, c, c"v".as_ptr(), argv.as_ptr(), argv.len()),
                (_, false) => f(ctx, c, c"vA".as_ptr(), argv.as_ptr(), argv.len()),
            };
        }
    }

    /// A Redis string holding `bytes`, appended to `self.strs`. Long values
    /// are made once per command and shared (the same record bytes go into
    /// `records` and `changes`).
    fn push_str(&mut self, bytes: &[u8]) {
        let ctx = self.raw_ctx();
        if bytes.len() >= SHARE_MIN {
            // SAFETY: strings owned by this store.
            if let Some(s) = self
                .shared
                .iter()
                .rev()
                .find(|s| unsafe { str_bytes(s.ptr) } == bytes)
            {
                self.strs.push(s.retained());
                return;
            }
            let s = RStr::new(ctx, bytes);
            if self.shared.len() < SHARE_MAX {
                self.shared.push(s.retained());
            }
            self.strs.push(s);
            return;
        }
        self.strs.push(RStr::new(ctx, bytes));
    }

    /// Runs `apply(key, argument strings)` for a write on `key` whose
    /// arguments are `args`, then replicates `cmd key args...`.
    fn write_with_args(
        &mut self,
        cmd: &CStr,
        key: &[u8],
        args: &[&[u8]],
        apply: impl FnOnce(*mut RedisModuleKey, &[RStr]),
    ) {
        self.write_with(
            cmd,
            key,
            args.len(),
            |st| {
                for a in args {
                    st.push_str(a);
                }
            },
            apply,
        );
    }

    /// [`RedisStore::write_with_args`] with the `n` argument strings made
    /// by `make` (through [`RedisStore::push_str`]).
    fn write_with(
        &mut self,
        cmd: &CStr,
        key: &[u8],
        n: usize,
        make: impl FnOnce(&mut Self),
        apply: impl FnOnce(*mut RedisModuleKey, &[RStr]),
    ) {
        let i = self.wslot(key);
        self.strs.clear();
        self.strs.reserve(n);
        make(self);
        apply(self.open[i].key, &self.strs);
        let mut argv = std::mem::take(&mut self.argv);
        argv.clear();
        argv.push(self.open[i].rname.ptr);
        argv.extend(self.strs.iter().map(|s| s.ptr));
        self.replicate(cmd, true, &argv);
        self.argv = argv;
        self.strs.clear();
    }

    /// `HSCAN`/`ZSCAN key cursor COUNT count` through `RedisModule_Call`,
    /// visiting the flat items in place (no copies); returns the next cursor.
    fn scan(
        &self,
        cmd: &CStr,
        key: &[u8],
        cursor: u64,
        count: usize,
        visit: &mut dyn FnMut(&[u8]),
    ) -> u64 {
        let (Ok(cur), Ok(cnt)) = (
            CString::new(cursor.to_string()),
            CString::new(count.max(1).to_string()),
        ) else {
            return 0;
        };
        let ctx = self.raw_ctx();
        // SAFETY: "bccc" = (ptr, len) key, then three C strings; the reply is freed below.
        let reply = unsafe {
            raw::RedisModule_Call.expect("Call")(
                ctx,
                cmd.as_ptr(),
                c"bccc".as_ptr(),
                key.as_ptr().cast::<c_char>(),
                key.len(),
                cur.as_ptr(),
                c"COUNT".as_ptr(),
                cnt.as_ptr(),
            )
        };
        if reply.is_null() {
            return 0;
        }
        // SAFETY: a valid call reply; element pointers live until FreeCallReply.
        let next = unsafe {
            let str_of = |r: *mut raw::RedisModuleCallReply| -> Option<&[u8]> {
                if r.is_null() {
                    return None;
                }
                let mut len = 0usize;
                let p =
                    raw::RedisModule_CallReplyStringPtr.expect("CallReplyStringPtr")(r, &mut len);
                (!p.is_null()).then(|| std::slice::from_raw_parts(p.cast::<u8>(), len))
            };
            let element = raw::RedisModule_CallReplyArrayElement.expect("CallReplyArrayElement");
            let length = raw::RedisModule_CallReplyLength.expect("CallReplyLength");
            let next = str_of(element(reply, 0))
                .and_then(|c| std::str::from_utf8(c).ok()?.parse::<u64>().ok())
                .unwrap_or(0);
            let items = element(reply, 1);
            if !items.is_null() {
                for i in 0..length(items) {
                    if let Some(item) = str_of(element(items, i)) {
                        visit(item);
                    }
                }
            }
            raw::RedisModule_FreeCallReply.expect("FreeCallReply")(reply);
            next
        };
        next
    }

    /// Runs a native command through `RedisModule_Call` (not propagated by
    /// itself) and replicates it as given.
    /// `args[0]` is the key: its open handle (if any) is closed first, since
    /// a native write may replace the value object a handle points to.
    fn call_and_replicate(&mut self, cmd: &str, ccmd: &CStr, args: &[&[u8]]) {
        if let Some(key) = args.first() {
            self.close(key);
        }
        self.call(cmd, args);
        let ctx = self.raw_ctx();
        let strs: Vec<RStr> = args.iter().map(|a| RStr::new(ctx, a)).collect();
        let argv: Vec<*mut RedisModuleString> = strs.iter().map(|s| s.ptr).collect();
        self.replicate(ccmd, true, &argv);
    }

    /// `RedisModule_Call` without propagation (the caller replicates).
    fn call(&self, cmd: &str, args: &[&[u8]]) -> Option<RedisValue> {
        self.ctx.call(cmd, args).ok()
    }
}

/// A score as ZADD text (as `f64`'s `Display`), formatted on the stack.
#[derive(Default)]
struct ScoreText {
    buf: [u8; 32],
    len: usize,
}

impl std::fmt::Write for ScoreText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl ScoreText {
    /// The text, or None when it does not fit (huge scores print every digit).
    fn format(&mut self, score: f64) -> Option<&[u8]> {
        use std::fmt::Write;
        self.len = 0;
        // Integral scores (versions) print the same through i64, faster.
        let r = if score.fract() == 0.0
            && score.abs() < 1e15
            && !(score == 0.0 && score.is_sign_negative())
        {
            write!(self, "{}", score as i64)
        } else {
            write!(self, "{score}")
        };
        r.ok().map(|()| &self.buf[..self.len])
    }
}

/// `RedisModule_HashSet` of one field; `value` None deletes the field.
fn hash_set_one(key: *mut RedisModuleKey, field: &RStr, value: Option<&RStr>) {
    // REDISMODULE_HASH_DELETE is the pointer value 1.
    let vptr = value.map_or(
        std::ptr::without_provenance_mut::<RedisModuleString>(1),
        |v| v.ptr,
    );
    // SAFETY: open writable hash key; NULL-terminated field/value list.
    unsafe {
        raw::RedisModule_HashSet.expect("HashSet")(
            key,
            raw::REDISMODULE_HASH_NONE as c_int,
            field.ptr,
            vptr,
            ptr::null_mut::<RedisModuleString>(),
        );
    }
}

impl RedisStore<'_> {
    /// Closes the open handle of `name`, if any (it reopens on next use).
    fn close(&mut self, name: &[u8]) {
        if let Some(i) = self.open.iter().position(|o| o.is(name)) {
            close_handle(self.open.swap_remove(i));
        }
    }
}

fn close_handle(o: Open) {
    if !o.key.is_null() {
        // SAFETY: opened by OpenKey, closed once (the entry is consumed).
        unsafe { raw::RedisModule_CloseKey.expect("CloseKey")(o.key) }
    }
}

impl Drop for RedisStore<'_> {
    fn drop(&mut self) {
        self.open.drain(..).for_each(close_handle);
        self.strs.clear();
        self.shared.clear();
        let s = Scratch {
            open: std::mem::take(&mut self.open),
            argv: std::mem::take(&mut self.argv),
            strs: std::mem::take(&mut self.strs),
            shared: std::mem::take(&mut self.shared),
        };
        SCRATCH.with(|c| c.set(Some(s)));
    }
}

fn value_bytes(v: &RedisValue) -> Option<Vec<u8>> {
    match v {
        RedisValue::StringBuffer(b) => Some(b.clone()),
        RedisValue::BulkString(s) | RedisValue::SimpleString(s) => Some(s.as_bytes().to_vec()),
        RedisValue::BulkRedisString(s) => Some(s.as_slice().to_vec()),
        RedisValue::SimpleStringStatic(s) => Some(s.as_bytes().to_vec()),
        RedisValue::Integer(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

fn value_int(v: &RedisValue) -> Option<i64> {
    match v {
        RedisValue::Integer(i) => Some(*i),
        other => value_bytes(other).and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok()),
    }
}

impl Store for RedisStore<'_> {
    fn kind(&mut self, key: &[u8]) -> KeyKind {
        match self.key_type(key) {
            EMPTY => KeyKind::Missing,
            STRING => KeyKind::String,
            HASH => KeyKind::Hash,
            ZSET => KeyKind::ZSet,
            SET => KeyKind::Set,
            _ => KeyKind::Other,
        }
    }

    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let mut out = None;
        self.get_with(key, &mut |v| out = Some(v.to_vec()));
        out
    }

    fn hget(&mut self, key: &[u8], field: &[u8]) -> Option<Vec<u8>> {
        let mut out = None;
        self.hget_with(key, field, &mut |v| out = Some(v.to_vec()));
        out
    }

    fn hscan(
        &mut self,
        key: &[u8],
        cursor: u64,
        count: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> u64 {
        let mut field: Option<Vec<u8>> = None;
        self.scan(
            c"HSCAN",
            key,
            cursor,
            count,
            &mut |item| match field.take() {
                None => field = Some(item.to_vec()),
                Some(f) => visit(&f, item),
            },
        )
    }

    fn zscan(
        &mut self,
        key: &[u8],
        cursor: u64,
        count: usize,
        visit: &mut dyn FnMut(&[u8], f64),
    ) -> u64 {
        let mut member: Option<Vec<u8>> = None; // member, score, member, score, ...
        self.scan(
            c"ZSCAN",
            key,
            cursor,
            count,
            &mut |item| match member.take() {
                None => member = Some(item.to_vec()),
                Some(m) => {
                    let score = std::str::from_utf8(item)
                        .ok()
                        .and_then(|t| t.parse::<f64>().ok())
                        .unwrap_or(f64::NAN);
                    visit(&m, score);
                }
            },
        )
    }

    fn zlast(&mut self, key: &[u8]) -> Option<(Vec<u8>, f64)> {
        let mut out = None;
        self.zlast_with(key, &mut |m, score| out = Some((m.to_vec(), score)));
        out
    }

    fn get_with(&mut self, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> bool {
        if self.key_type(key) != STRING {
            return false;
        }
        let k = self.key(key);
        let mut len = 0usize;
        // SAFETY: open string key, read-only DMA; the bytes are lent to
        // `visit` before anything else touches the key.
        unsafe {
            let p = raw::RedisModule_StringDMA.expect("StringDMA")(
                k,
                &mut len,
                raw::REDISMODULE_READ as c_int,
            );
            if p.is_null() {
                visit(&[]);
            } else {
                visit(std::slice::from_raw_parts(p.cast::<u8>(), len));
            }
        }
        true
    }

    fn hget_with(&mut self, key: &[u8], field: &[u8], visit: &mut dyn FnMut(&[u8])) -> bool {
        if self.key_type(key) != HASH {
            return false;
        }
        let k = self.key(key);
        let ctx = self.raw_ctx();
        let f = RStr::new(ctx, field);
        let mut out: *mut RedisModuleString = ptr::null_mut();
        // SAFETY: open hash key; NULL-terminated field/out list; the value
        // we own is lent to `visit`, then freed.
        unsafe {
            raw::RedisModule_HashGet.expect("HashGet")(
                k,
                raw::REDISMODULE_HASH_NONE as c_int,
                f.ptr,
                &mut out as *mut *mut RedisModuleString,
                ptr::null_mut::<RedisModuleString>(),
            );
            if out.is_null() {
                return false;
            }
            visit(str_bytes(out));
            raw::RedisModule_FreeString.expect("FreeString")(ctx, out);
        }
        true
    }

    fn zlast_with(&mut self, key: &[u8], visit: &mut dyn FnMut(&[u8], f64)) -> bool {
        if self.key_type(key) != ZSET {
            return false;
        }
        let k = self.key(key);
        // SAFETY: open zset key; the range is stopped before returning; the
        // element we own is lent to `visit`, then freed.
        unsafe {
            if raw::RedisModule_ZsetLastInScoreRange.expect("ZsetLastInScoreRange")(
                k,
                f64::NEG_INFINITY,
                f64::INFINITY,
                0,
                0,
            ) != raw::REDISMODULE_OK as c_int
            {
                return false;
            }
            let mut score = 0f64;
            let e = raw::RedisModule_ZsetRangeCurrentElement.expect("ZsetRangeCurrentElement")(
                k, &mut score,
            );
            let found = !e.is_null();
            if found {
                visit(str_bytes(e), score);
                raw::RedisModule_FreeString.expect("FreeString")(self.raw_ctx(), e);
            }
            raw::RedisModule_ZsetRangeStop.expect("ZsetRangeStop")(k);
            found
        }
    }

    fn zcard(&mut self, key: &[u8]) -> u64 {
        if self.key_type(key) != ZSET {
            return 0;
        }
        let k = self.key(key);
        // SAFETY: open key.
        unsafe { raw::RedisModule_ValueLength.expect("ValueLength")(k) as u64 }
    }

    fn zscore(&mut self, key: &[u8], member: &[u8]) -> Option<f64> {
        if self.key_type(key) != ZSET {
            return None;
        }
        let k = self.key(key);
        let m = RStr::new(self.raw_ctx(), member);
        let mut score = 0f64;
        // SAFETY: open zset key.
        let rc = unsafe { raw::RedisModule_ZsetScore.expect("ZsetScore")(k, m.ptr, &mut score) };
        (rc == raw::REDISMODULE_OK as c_int).then_some(score)
    }

    fn zrange_from(&mut self, key: &[u8], min: Bound, limit: usize) -> Vec<(Vec<u8>, f64)> {
        let mut out = Vec::new();
        if limit == 0 || self.key_type(key) != ZSET {
            return out;
        }
        let k = self.key(key);
        let (lo, ex) = match min {
            Bound::Incl(v) => (v, 0),
            Bound::Excl(v) => (v, 1),
        };
        // SAFETY: open zset key; the range is stopped before returning.
        unsafe {
            if raw::RedisModule_ZsetFirstInScoreRange.expect("ZsetFirstInScoreRange")(
                k,
                lo,
                f64::INFINITY,
                ex,
                0,
            ) != raw::REDISMODULE_OK as c_int
            {
                return out;
            }
            while raw::RedisModule_ZsetRangeEndReached.expect("ZsetRangeEndReached")(k) == 0
                && out.len() < limit
            {
                let mut score = 0f64;
                let e = raw::RedisModule_ZsetRangeCurrentElement.expect("ZsetRangeCurrentElement")(
                    k, &mut score,
                );
                if e.is_null() {
                    break;
                }
                out.push((bytes_of(e), score));
                raw::RedisModule_FreeString.expect("FreeString")(self.raw_ctx(), e);
                if raw::RedisModule_ZsetRangeNext.expect("ZsetRangeNext")(k) == 0 {
                    break;
                }
            }
            raw::RedisModule_ZsetRangeStop.expect("ZsetRangeStop")(k);
        }
        out
    }

    fn smembers(&mut self, key: &[u8]) -> Vec<Vec<u8>> {
        match self.call("SMEMBERS", &[key]) {
            Some(RedisValue::Array(items)) => items.iter().filter_map(value_bytes).collect(),
            _ => Vec::new(),
        }
    }

    fn sismember(&mut self, key: &[u8], member: &[u8]) -> bool {
        self.call("SISMEMBER", &[key, member])
            .and_then(|v| value_int(&v))
            == Some(1)
    }

    fn set(&mut self, key: &[u8], value: &[u8]) {
        self.write_with_args(c"SET", key, &[value], |k, s| {
            // SAFETY: open writable key; the DMA pointer is used at once.
            unsafe {
                // An existing string without expiry is overwritten in place:
                // the same effect as SET, and the value stays a raw string, so
                // reading it again (StringDMA) needs no conversion or copy.
                if raw::RedisModule_KeyType.expect("KeyType")(k) == STRING
                    && raw::RedisModule_GetExpire.expect("GetExpire")(k)
                        == raw::REDISMODULE_NO_EXPIRE as i64
                    && raw::RedisModule_StringTruncate.expect("StringTruncate")(k, value.len())
                        == raw::REDISMODULE_OK as c_int
                {
                    let mut len = 0usize;
                    let p = raw::RedisModule_StringDMA.expect("StringDMA")(
                        k,
                        &mut len,
                        raw::REDISMODULE_WRITE as c_int,
                    );
                    if !p.is_null() && len == value.len() {
                        std::ptr::copy_nonoverlapping(value.as_ptr(), p.cast::<u8>(), len);
                        return;
                    }
                }
                raw::RedisModule_StringSet.expect("StringSet")(k, s[0].ptr);
            }
        });
    }

    fn set_px_at(&mut self, key: &[u8], value: &[u8], at_ms: i64) {
        // The primary applies the same absolute expiry that replicas and the
        // AOF get (a relative expiry could land a millisecond apart).
        let at = at_ms.to_string();
        self.call_and_replicate("SET", c"SET", &[key, value, b"PXAT", at.as_bytes()]);
    }

    fn del(&mut self, key: &[u8]) {
        self.write_with_args(c"DEL", key, &[], |k, _| {
            // SAFETY: open writable key.
            unsafe { raw::RedisModule_DeleteKey.expect("DeleteKey")(k) };
        });
    }

    fn hset(&mut self, key: &[u8], pairs: &[(&[u8], &[u8])]) {
        self.write_with(
            c"HSET",
            key,
            2 * pairs.len(),
            |st| {
                for (f, v) in pairs {
                    st.push_str(f);
                    st.push_str(v);
                }
            },
            |k, s| {
                for fv in s.chunks_exact(2) {
                    hash_set_one(k, &fv[0], Some(&fv[1]));
                }
            },
        );
    }

    fn hdel(&mut self, key: &[u8], fields: &[&[u8]]) {
        self.write_with_args(c"HDEL", key, fields, |k, s| {
            for f in s {
                hash_set_one(k, f, None);
            }
        });
    }

    fn zadd(&mut self, key: &[u8], pairs: &[(f64, &[u8])]) {
        self.write_with(
            c"ZADD",
            key,
            2 * pairs.len(),
            |st| {
                let mut buf = ScoreText::default();
                // (score, index in strs of its text): a batch's `changes.<type>`
                // members share one score, made into a string once.
                let mut last: Option<(u64, usize)> = None;
                for (score, m) in pairs {
                    match last {
                        Some((bits, i)) if bits == score.to_bits() => {
                            let same = st.strs[i].retained();
                            st.strs.push(same);
                        }
                        _ => {
                            last = Some((score.to_bits(), st.strs.len()));
                            match buf.format(*score) {
                                Some(text) => st.push_str(text),
                                None => st.push_str(score.to_string().as_bytes()),
                            }
                        }
                    }
                    st.push_str(m);
                }
            },
            |k, s| {
                for ((score, _), sm) in pairs.iter().zip(s.chunks_exact(2)) {
                    let mut flags: c_int = 0;
                    // SAFETY: open writable key.
                    unsafe {
                        raw::RedisModule_ZsetAdd.expect("ZsetAdd")(k, *score, sm[1].ptr, &mut flags)
                    };
                }
            },
        );
    }

    fn zrem(&mut self, key: &[u8], members: &[&[u8]]) {
        self.write_with_args(c"ZREM", key, members, |k, s| {
            for m in s {
                let mut deleted: c_int = 0;
                // SAFETY: open writable key (ZsetRem on an empty key is a no-op).
                unsafe { raw::RedisModule_ZsetRem.expect("ZsetRem")(k, m.ptr, &mut deleted) };
            }
        });
    }

    fn sadd(&mut self, key: &[u8], members: &[&[u8]]) {
        let mut args: Vec<&[u8]> = vec![key];
        args.extend_from_slice(members);
        self.call_and_replicate("SADD", c"SADD", &args);
    }

    fn publish(&mut self, channel: &[u8], message: &[u8]) {
        let ctx = self.raw_ctx();
        // The channel is a namespace's name like its keys: kept between commands.
        let (c, m) = (key_name(channel), RStr::new(ctx, message));
        // SAFETY: valid strings.
        unsafe { raw::RedisModule_PublishMessage.expect("PublishMessage")(ctx, c.ptr, m.ptr) };
        // Like a native PUBLISH: subscribers on replicas get it too; the AOF does not.
        self.replicate(c"PUBLISH", false, &[c.ptr, m.ptr]);
    }

    fn notify(&mut self, event: &str, key: &[u8]) {
        let i = self.slot(key);
        let mut text = [0u8; 64];
        if event.len() >= text.len() || event.as_bytes().contains(&0) {
            return;
        }
        text[..event.len()].copy_from_slice(event.as_bytes());
        let (Ok(ev), Some(notify)) = (CStr::from_bytes_until_nul(&text), unsafe {
            raw::RedisModule_NotifyKeyspaceEvent
        }) else {
            return;
        };
        // SAFETY: valid ctx, event and key name.
        unsafe {
            notify(
                self.raw_ctx(),
                raw::REDISMODULE_NOTIFY_HASH as c_int,
                ev.as_ptr(),
                self.open[i].rname.ptr,
            )
        };
    }

    fn signal_ready(&mut self, key: &[u8]) {
        let i = self.slot(key);
        if let Some(signal) = unsafe { raw::RedisModule_SignalKeyAsReady } {
            // SAFETY: valid ctx and key name.
            unsafe { signal(self.raw_ctx(), self.open[i].rname.ptr) };
        }
    }
}
