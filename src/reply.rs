//! Writes a [`Reply`] or a [`DbError`] to the client with the raw reply API.

use std::ffi::CString;
use std::os::raw::{c_char, c_long};

use databroker_core::{DbError, Reply};
use redis_module::raw::{self, RedisModuleCtx};

/// Sends `reply` (maps become flat arrays for RESP2 clients).
pub fn send(ctx: *mut RedisModuleCtx, reply: &Reply) {
    // SAFETY: ctx is the context of the command (or blocked-client callback) being answered.
    unsafe {
        match reply {
            Reply::Simple(s) => {
                let s = CString::new(*s).unwrap_or_default();
                raw::RedisModule_ReplyWithSimpleString.expect("api")(ctx, s.as_ptr());
            }
            Reply::Int(i) => {
                raw::RedisModule_ReplyWithLongLong.expect("api")(ctx, *i);
            }
            Reply::Name(n) => {
                raw::RedisModule_ReplyWithStringBuffer.expect("api")(
                    ctx,
                    n.as_ptr().cast::<c_char>(),
                    n.len(),
                );
            }
            Reply::Bulk(b) => {
                raw::RedisModule_ReplyWithStringBuffer.expect("api")(
                    ctx,
                    b.as_ptr().cast::<c_char>(),
                    b.len(),
                );
            }
            Reply::Null => {
                raw::RedisModule_ReplyWithNull.expect("api")(ctx);
            }
            Reply::Array(items) => {
                raw::RedisModule_ReplyWithArray.expect("api")(ctx, items.len() as c_long);
                for item in items {
                    send(ctx, item);
                }
            }
            Reply::Map(pairs) => {
                raw::RedisModule_ReplyWithMap.expect("api")(ctx, pairs.len() as c_long);
                for (k, v) in pairs {
                    send(ctx, k);
                    send(ctx, v);
                }
            }
        }
    }
}

/// Sends a command's outcome: the reply, or the error (counted in INFO).
pub fn send_result(ctx: *mut RedisModuleCtx, result: Result<&Reply, &DbError>) {
    match result {
        Ok(r) => send(ctx, r),
        Err(e) => {
            crate::stats::ERRORS.add(1);
            send_error(ctx, e);
        }
    }
}

/// Answers a command whose code panicked (the panic was caught; counted in INFO).
pub fn send_panic(ctx: *mut RedisModuleCtx) {
    crate::stats::ERRORS.add(1);
    send_error_text(ctx, "ERR internal error in databroker (see the server log)");
}

/// Sends an error reply; arity errors use Redis's standard message.
pub fn send_error(ctx: *mut RedisModuleCtx, err: &DbError) {
    if *err == DbError::WrongArity {
        // SAFETY: valid ctx.
        unsafe { raw::RedisModule_WrongArity.expect("api")(ctx) };
        return;
    }
    send_error_text(ctx, &err.to_string());
}

/// Sends an error reply with `text` (NUL and newlines made printable).
pub fn send_error_text(ctx: *mut RedisModuleCtx, text: &str) {
    let clean: String = text
        .chars()
        .map(|c| {
            if c == '\0' || c == '\r' || c == '\n' {
                ' '
            } else {
                c
            }
        })
        .collect();
    let c = CString::new(clean).unwrap_or_default();
    // SAFETY: valid ctx and NUL-terminated message. (No panic here: this
    // also answers for caught panics, outside any panic barrier.)
    if let Some(reply_with_error) = unsafe { raw::RedisModule_ReplyWithError } {
        unsafe { reply_with_error(ctx, c.as_ptr()) };
    }
}
