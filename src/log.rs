//! The server log, from anywhere in the module.

/// Writes `message` to the server log (NUL bytes dropped; never panics).
pub fn warning(message: &str) {
    let clean: Vec<u8> = message.bytes().filter(|&b| b != 0).collect();
    let (Ok(text), Some(log)) = (std::ffi::CString::new(clean), unsafe {
        redis_module::raw::RedisModule_Log
    }) else {
        return;
    };
    // SAFETY: a NULL context logs for the module; "%s" takes the one C string.
    unsafe {
        log(
            std::ptr::null_mut(),
            c"warning".as_ptr(),
            c"%s".as_ptr(),
            text.as_ptr(),
        )
    };
}
