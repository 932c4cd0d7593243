//! Redis 7 key specs: every command's key is the namespace (argument 1),
//! declared read-only for the read commands and read-write for the writes,
//! so ACL users limited to reads (`%R~{pomerium_v3}*`) can run the reads.
//! On a server without `RedisModule_SetCommandInfo` the legacy key range
//! registered with the command stays in force.

use std::ffi::CString;
use std::os::raw::c_int;
use std::ptr;

use redis_module::{raw, Context};

fn key_spec(read_only: bool) -> raw::RedisModuleCommandKeySpec {
    let flags = if read_only {
        raw::REDISMODULE_CMD_KEY_RO | raw::REDISMODULE_CMD_KEY_ACCESS
    } else {
        raw::REDISMODULE_CMD_KEY_RW | raw::REDISMODULE_CMD_KEY_UPDATE
    };
    raw::RedisModuleCommandKeySpec {
        notes: ptr::null(),
        flags: u64::from(flags),
        begin_search_type: raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX,
        bs: raw::RedisModuleCommandKeySpec__bindgen_ty_1 {
            index: raw::RedisModuleCommandKeySpec__bindgen_ty_1__bindgen_ty_1 { pos: 1 },
        },
        find_keys_type: raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE,
        fk: raw::RedisModuleCommandKeySpec__bindgen_ty_2 {
            range: raw::RedisModuleCommandKeySpec__bindgen_ty_2__bindgen_ty_1 {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        },
    }
}

/// Sets arity and key specs of every command (call from the module's init).
pub fn register(ctx: &Context) {
    // SAFETY: API pointers filled at load; checked for presence.
    let (Some(get_command), Some(set_info)) = (unsafe { raw::RedisModule_GetCommand }, unsafe {
        raw::RedisModule_SetCommandInfo
    }) else {
        return;
    };
    let version = raw::RedisModuleCommandInfoVersion {
        version: 1,
        sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
        sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
        sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
    };
    for cmd in crate::command_table::COMMANDS {
        let (name, arity, read_only) = (cmd.name, cmd.arity, cmd.read_only());
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        // SAFETY: valid load context and command name.
        let command = unsafe { get_command(ctx.ctx, cname.as_ptr()) };
        if command.is_null() {
            continue;
        }
        // The key spec array ends with an all-zero entry.
        // SAFETY: an all-zero key spec is the documented terminator.
        let mut specs = [key_spec(read_only), unsafe { std::mem::zeroed() }];
        // `COMMAND DOCS` content (summary, since, complexity, arguments);
        // `docs` owns the C strings and arrays and outlives the call.
        let docs = Some(crate::command_docs::CDocs::new(&cmd.doc));
        let mut info = raw::RedisModuleCommandInfo {
            version: &version,
            summary: docs.as_ref().map_or(ptr::null(), |d| d.summary),
            complexity: docs.as_ref().map_or(ptr::null(), |d| d.complexity),
            since: docs.as_ref().map_or(ptr::null(), |d| d.since),
            history: ptr::null_mut(),
            tips: ptr::null(),
            arity,
            key_specs: specs.as_mut_ptr(),
            args: docs.as_ref().map_or(ptr::null_mut(), |d| d.args),
        };
        // SAFETY: Redis copies what it needs from `info` during the call.
        let mut status = unsafe { set_info(command, &info) };
        if status != raw::REDISMODULE_OK as c_int && docs.is_some() {
            // A server that refuses the documentation still gets the key specs.
            crate::log::warning(&format!(
                "databroker: the server refused the documentation of {name}; setting key specs only"
            ));
            info.summary = ptr::null();
            info.complexity = ptr::null();
            info.since = ptr::null();
            info.args = ptr::null_mut();
            // SAFETY: as above; nothing was set by the refused call.
            status = unsafe { set_info(command, &info) };
        }
        drop(docs);
        if status != raw::REDISMODULE_OK as c_int {
            crate::log::warning(&format!(
                "databroker: could not set the key specs of {name}"
            ));
        }
    }
}
