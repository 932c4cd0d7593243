//! [`Store`] over the Redis module API. Reads use the low-level key API;
//! every write is applied natively and propagated to replicas and the AOF as
//! the equivalent deterministic native command (HSET, ZADD, SET ... PXAT, ...).
//! Sets have no low-level API, so they go through `RedisModule_Call`.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::raw::{c_char, c_int};
use std::ptr;

use databroker_core::store::{Bound, KeyKind, Store};
use redis_module::raw::{self, RedisModuleCtx, RedisModuleKey, RedisModuleString};
use redis_module::{Context, NotifyEvent, RedisString, RedisValue};

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

/// The Store of one command invocation; open keys are cached and closed on drop.
pub struct RedisStore<'c> {
    ctx: &'c Context,
    writable: bool,
    open: HashMap<Vec<u8>, (*mut RedisModuleKey, RStr)>,
}

impl<'c> RedisStore<'c> {
    /// A store for a command; `writable` opens keys for writing.
    pub fn new(ctx: &'c Context, writable: bool) -> Self {
        RedisStore {
            ctx,
            writable,
            open: HashMap::new(),
        }
    }

    fn raw_ctx(&self) -> *mut RedisModuleCtx {
        self.ctx.ctx
    }

    /// The open key handle (null when the key is missing and the store is read-only).
    fn key(&mut self, name: &[u8]) -> *mut RedisModuleKey {
        if let Some((k, _)) = self.open.get(name) {
            return *k;
        }
        let ctx = self.raw_ctx();
        let s = RStr::new(ctx, name);
        let mode = if self.writable {
            raw::REDISMODULE_READ | raw::REDISMODULE_WRITE
        } else {
            raw::REDISMODULE_READ
        };
        // SAFETY: valid ctx and key name; the handle is closed in Drop.
        let k = unsafe { raw::RedisModule_OpenKey.expect("OpenKey")(ctx, s.ptr, mode as c_int) };
        self.open.insert(name.to_vec(), (k.cast(), s));
        k.cast()
    }

    fn key_type(&mut self, name: &[u8]) -> c_int {
        let k = self.key(name);
        if k.is_null() {
            return EMPTY;
        }
        // SAFETY: open key handle.
        unsafe { raw::RedisModule_KeyType.expect("KeyType")(k) }
    }

    /// Propagates `cmd args...` to replicas and the AOF.
    fn replicate(&self, cmd: &str, args: &[&[u8]]) {
        self.replicate_with(cmd, args, "v");
    }

    /// Propagates with a `RedisModule_Replicate` format: `"v"`, or `"vA"`
    /// for replicas only (no AOF).
    fn replicate_with(&self, cmd: &str, args: &[&[u8]], format: &str) {
        let ctx = self.raw_ctx();
        let strs: Vec<RStr> = args.iter().map(|a| RStr::new(ctx, a)).collect();
        let mut ptrs: Vec<*mut RedisModuleString> = strs.iter().map(|s| s.ptr).collect();
        let (Ok(cmd), Ok(fmt)) = (CString::new(cmd), CString::new(format)) else {
            return;
        };
        // SAFETY: "v" takes (RedisModuleString **argv, size_t argc).
        unsafe {
            raw::RedisModule_Replicate.expect("Replicate")(
                ctx,
                cmd.as_ptr(),
                fmt.as_ptr(),
                ptrs.as_mut_ptr(),
                ptrs.len(),
            );
        }
    }

    /// `RedisModule_Call` without propagation (the caller replicates).
    fn call(&self, cmd: &str, args: &[&[u8]]) -> Option<RedisValue> {
        self.ctx.call(cmd, args).ok()
    }

    fn hash_set_one(&mut self, key: *mut RedisModuleKey, field: &[u8], value: Option<&[u8]>) {
        let ctx = self.raw_ctx();
        let f = RStr::new(ctx, field);
        let v = value.map(|v| RStr::new(ctx, v));
        let vptr = v
            .as_ref()
            .map_or(1usize as *mut RedisModuleString, |v| v.ptr); // REDISMODULE_HASH_DELETE
                                                                  // SAFETY: open writable hash key; NULL-terminated field/value list.
        unsafe {
            raw::RedisModule_HashSet.expect("HashSet")(
                key,
                raw::REDISMODULE_HASH_NONE as c_int,
                f.ptr,
                vptr,
                ptr::null_mut::<RedisModuleString>(),
            );
        }
    }
}

impl Drop for RedisStore<'_> {
    fn drop(&mut self) {
        for (_, (k, _)) in self.open.drain() {
            if !k.is_null() {
                // SAFETY: opened by OpenKey, closed once.
                unsafe { raw::RedisModule_CloseKey.expect("CloseKey")(k) }
            }
        }
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
        if self.key_type(key) != STRING {
            return None;
        }
        let k = self.key(key);
        let mut len = 0usize;
        // SAFETY: open string key, read-only DMA.
        let p = unsafe {
            raw::RedisModule_StringDMA.expect("StringDMA")(
                k,
                &mut len,
                raw::REDISMODULE_READ as c_int,
            )
        };
        if p.is_null() {
            return Some(Vec::new());
        }
        // SAFETY: DMA pointer valid for `len` bytes until the key changes.
        Some(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec() })
    }

    fn hget(&mut self, key: &[u8], field: &[u8]) -> Option<Vec<u8>> {
        if self.key_type(key) != HASH {
            return None;
        }
        let k = self.key(key);
        let ctx = self.raw_ctx();
        let f = RStr::new(ctx, field);
        let mut out: *mut RedisModuleString = ptr::null_mut();
        // SAFETY: open hash key; NULL-terminated field/out list.
        unsafe {
            raw::RedisModule_HashGet.expect("HashGet")(
                k,
                raw::REDISMODULE_HASH_NONE as c_int,
                f.ptr,
                &mut out as *mut *mut RedisModuleString,
                ptr::null_mut::<RedisModuleString>(),
            );
        }
        if out.is_null() {
            return None;
        }
        // SAFETY: HashGet returned a new string we own.
        let v = unsafe { bytes_of(out) };
        unsafe { raw::RedisModule_FreeString.expect("FreeString")(ctx, out) };
        Some(v)
    }

    fn hlen(&mut self, key: &[u8]) -> u64 {
        if self.key_type(key) != HASH {
            return 0;
        }
        let k = self.key(key);
        // SAFETY: open key.
        unsafe { raw::RedisModule_ValueLength.expect("ValueLength")(k) as u64 }
    }

    fn hscan(&mut self, key: &[u8], cursor: u64, count: usize) -> (u64, Vec<(Vec<u8>, Vec<u8>)>) {
        let cur = cursor.to_string();
        let cnt = count.max(1).to_string();
        let Some(RedisValue::Array(parts)) =
            self.call("HSCAN", &[key, cur.as_bytes(), b"COUNT", cnt.as_bytes()])
        else {
            return (0, Vec::new());
        };
        let next = parts.first().and_then(value_int).unwrap_or(0) as u64;
        let mut out = Vec::new();
        if let Some(RedisValue::Array(items)) = parts.get(1) {
            for pair in items.chunks_exact(2) {
                if let (Some(f), Some(v)) = (value_bytes(&pair[0]), value_bytes(&pair[1])) {
                    out.push((f, v));
                }
            }
        }
        (next, out)
    }

    fn zscan(&mut self, key: &[u8], cursor: u64, count: usize) -> (u64, Vec<Vec<u8>>) {
        let cur = cursor.to_string();
        let cnt = count.max(1).to_string();
        let Some(RedisValue::Array(parts)) =
            self.call("ZSCAN", &[key, cur.as_bytes(), b"COUNT", cnt.as_bytes()])
        else {
            return (0, Vec::new());
        };
        let next = parts.first().and_then(value_int).unwrap_or(0) as u64;
        let mut out = Vec::new();
        if let Some(RedisValue::Array(items)) = parts.get(1) {
            out.extend(items.chunks_exact(2).filter_map(|p| value_bytes(&p[0])));
        }
        (next, out)
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
        let k = self.key(key);
        let v = RStr::new(self.raw_ctx(), value);
        // SAFETY: open writable key.
        unsafe { raw::RedisModule_StringSet.expect("StringSet")(k, v.ptr) };
        self.replicate("SET", &[key, value]);
    }

    fn set_px_at(&mut self, key: &[u8], value: &[u8], at_ms: i64) {
        let k = self.key(key);
        let v = RStr::new(self.raw_ctx(), value);
        // SAFETY: open writable key. SetExpire takes a relative time.
        let now_ms = unsafe { raw::RedisModule_Milliseconds.expect("Milliseconds")() };
        unsafe {
            raw::RedisModule_StringSet.expect("StringSet")(k, v.ptr);
            raw::RedisModule_SetExpire.expect("SetExpire")(k, (at_ms - now_ms).max(1));
        }
        let at = at_ms.to_string();
        self.replicate("SET", &[key, value, b"PXAT", at.as_bytes()]);
    }

    fn del(&mut self, key: &[u8]) {
        let k = self.key(key);
        // SAFETY: open writable key.
        unsafe { raw::RedisModule_DeleteKey.expect("DeleteKey")(k) };
        self.replicate("DEL", &[key]);
    }

    fn hset(&mut self, key: &[u8], pairs: &[(&[u8], &[u8])]) {
        let k = self.key(key);
        let mut args: Vec<&[u8]> = Vec::with_capacity(1 + 2 * pairs.len());
        args.push(key);
        for (f, v) in pairs {
            self.hash_set_one(k, f, Some(v));
            args.push(f);
            args.push(v);
        }
        self.replicate("HSET", &args);
    }

    fn hdel(&mut self, key: &[u8], fields: &[&[u8]]) {
        let k = self.key(key);
        let mut args: Vec<&[u8]> = vec![key];
        for f in fields {
            self.hash_set_one(k, f, None);
            args.push(f);
        }
        self.replicate("HDEL", &args);
    }

    fn zadd(&mut self, key: &[u8], pairs: &[(f64, &[u8])]) {
        let k = self.key(key);
        let ctx = self.raw_ctx();
        let scores: Vec<String> = pairs.iter().map(|(s, _)| s.to_string()).collect();
        let mut args: Vec<&[u8]> = vec![key];
        for ((s, m), text) in pairs.iter().zip(&scores) {
            let ms = RStr::new(ctx, m);
            let mut flags: c_int = 0;
            // SAFETY: open writable key.
            unsafe { raw::RedisModule_ZsetAdd.expect("ZsetAdd")(k, *s, ms.ptr, &mut flags) };
            args.push(text.as_bytes());
            args.push(m);
        }
        self.replicate("ZADD", &args);
    }

    fn zrem(&mut self, key: &[u8], members: &[&[u8]]) {
        let k = self.key(key);
        let ctx = self.raw_ctx();
        let mut args: Vec<&[u8]> = vec![key];
        for m in members {
            let ms = RStr::new(ctx, m);
            let mut deleted: c_int = 0;
            // SAFETY: open writable key (ZsetRem on an empty key is a no-op).
            unsafe { raw::RedisModule_ZsetRem.expect("ZsetRem")(k, ms.ptr, &mut deleted) };
            args.push(m);
        }
        self.replicate("ZREM", &args);
    }

    fn sadd(&mut self, key: &[u8], members: &[&[u8]]) {
        let mut args: Vec<&[u8]> = vec![key];
        args.extend_from_slice(members);
        self.call("SADD", &args);
        self.replicate("SADD", &args);
    }

    fn publish(&mut self, channel: &[u8], message: &[u8]) {
        let ctx = self.raw_ctx();
        let (c, m) = (RStr::new(ctx, channel), RStr::new(ctx, message));
        // SAFETY: valid strings.
        unsafe { raw::RedisModule_PublishMessage.expect("PublishMessage")(ctx, c.ptr, m.ptr) };
        // Like a native PUBLISH: subscribers on replicas get it too; the AOF does not.
        self.replicate_with("PUBLISH", &[channel, message], "vA");
    }

    fn notify(&mut self, event: &str, key: &[u8]) {
        let name = RedisString::create_from_slice(self.raw_ctx(), key);
        self.ctx
            .notify_keyspace_event(NotifyEvent::HASH, event, &name);
    }

    fn signal_ready(&mut self, key: &[u8]) {
        let s = RStr::new(self.raw_ctx(), key);
        if let Some(signal) = unsafe { raw::RedisModule_SignalKeyAsReady } {
            // SAFETY: valid ctx and key name.
            unsafe { signal(self.raw_ctx(), s.ptr) };
        }
    }
}
