//! ACL key permissions on every key a command touches, and ACL categories.
//!
//! Redis checks a command's declared key (`<ns>`) only; the module's
//! commands read and write `<ns>.records`, `<ns>.lease.<name>`, ... too. So
//! before a command runs (and again when a blocked `DB.SYNC` wakes), the
//! current user's permissions are checked on each key from
//! [`databroker_core::commands::access::touched`], and the command is
//! refused with `NOPERM` naming the first key it may not use. Clients
//! without an ACL user (the replication link, AOF loading) are not checked.
//! On servers without the ACL module API the check is skipped (logged once
//! at load).

use std::ffi::CString;
use std::os::raw::c_int;

use databroker_core::commands::access::{visit_touched, Access};
use databroker_core::record::show;
use databroker_core::store::{KeyKind, Store};
use databroker_core::Keys;
use databroker_core::{DbError, DbResult};
use redis_module::raw;
use redis_module::{Context, ContextFlags};

use crate::redis_store::RedisStore;

const OK: c_int = raw::REDISMODULE_OK as c_int;

fn api_present() -> bool {
    // SAFETY: copying the API pointers filled at load.
    let (a, b, c, d, e) = unsafe {
        (
            raw::RedisModule_GetClientId,
            raw::RedisModule_GetClientUserNameById,
            raw::RedisModule_GetModuleUserFromUserName,
            raw::RedisModule_ACLCheckKeyPermissions,
            raw::RedisModule_FreeModuleUser,
        )
    };
    a.is_some() && b.is_some() && c.is_some() && d.is_some() && e.is_some()
}

/// The current client's ACL user, or None when it has none (replication
/// link, AOF) or the API is missing. `Err` when its user no longer exists.
struct User(*mut raw::RedisModuleUser);

impl Drop for User {
    fn drop(&mut self) {
        // SAFETY: a user from GetModuleUserFromUserName, freed once.
        unsafe { raw::RedisModule_FreeModuleUser.expect("api")(self.0) };
    }
}

fn current_user(ctx: &Context, flags: &ContextFlags) -> DbResult<Option<User>> {
    if !api_present() {
        return Ok(None);
    }
    if flags.intersects(ContextFlags::REPLICATED | ContextFlags::LOADING) {
        return Ok(None);
    }
    // SAFETY: valid ctx; API presence checked above.
    unsafe {
        // The current client's user: in a script, the script's client,
        // which carries the caller's user. Without GetCurrentUserName (older
        // servers), the user of the client by id.
        let name = match raw::RedisModule_GetCurrentUserName {
            Some(current) => current(ctx.ctx),
            None => {
                let id = raw::RedisModule_GetClientId.expect("api")(ctx.ctx);
                if id == 0 {
                    return Ok(None);
                }
                raw::RedisModule_GetClientUserNameById.expect("api")(ctx.ctx, id)
            }
        };
        if name.is_null() {
            if flags.contains(ContextFlags::LUA) {
                return Err(DbError::NoPerm(
                    "cannot determine the script caller's ACL user".into(),
                ));
            }
            // No ACL user (the master or AOF client), which may do anything.
            return Ok(None);
        }
        let user = raw::RedisModule_GetModuleUserFromUserName.expect("api")(name);
        raw::RedisModule_FreeString.expect("api")(ctx.ctx, name);
        if user.is_null() {
            return Err(DbError::NoPerm(
                "the client's ACL user no longer exists".into(),
            ));
        }
        Ok(Some(User(user)))
    }
}

/// Checks `user`'s permission to use `key` as `access` says.
fn check_key(user: &User, store: &mut RedisStore<'_>, key: &[u8], access: Access) -> DbResult<()> {
    let (flags, what) = match access {
        Access::Read => (raw::REDISMODULE_CMD_KEY_ACCESS, "read"),
        Access::ReadWrite => (
            raw::REDISMODULE_CMD_KEY_ACCESS | raw::REDISMODULE_CMD_KEY_UPDATE,
            "read and write",
        ),
    };
    let name = store.key_name(key);
    // SAFETY: valid user and key string; API presence checked.
    let rc = unsafe {
        raw::RedisModule_ACLCheckKeyPermissions.expect("api")(user.0, name, flags as c_int)
    };
    if rc == OK {
        Ok(())
    } else {
        Err(DbError::NoPerm(format!(
            "this user has no permissions to {what} the key {}",
            show(key)
        )))
    }
}

/// Checks the current user's permissions on every key `command` (lowercase
/// name) touches with `args` (after the command name).
pub fn check(
    ctx: &Context,
    flags: &ContextFlags,
    store: &mut RedisStore<'_>,
    command: &str,
    args: &[&[u8]],
) -> DbResult<()> {
    let Some(user) = current_user(ctx, flags)? else {
        return Ok(());
    };
    let cluster = flags.contains(ContextFlags::CLUSTER);
    let mut outcome = Ok(());
    visit_touched(command, args, cluster, &mut |key, access| {
        outcome = check_key(&user, store, key, access);
        outcome.is_ok()
    });
    outcome?;
    if command.strip_prefix("db.").unwrap_or(command) == "check" {
        // DB.CHECK also reads the per-type set of every type the namespace lists.
        if let Some(&ns) = args.first() {
            let names = Keys::new(ns);
            if store.kind(names.record_types()) == KeyKind::Set {
                for t in store.smembers(names.record_types()) {
                    check_key(&user, store, &names.type_changes(&t), Access::Read)?;
                }
            }
        }
    }
    Ok(())
}

/// Re-checks a waiting `DB.SYNC` (its arguments including the command
/// name) when it wakes: the user's permissions may have changed meanwhile.
pub fn check_woken_sync(ctx: &Context, argv: &[redis_module::RedisString]) -> DbResult<()> {
    let args: Vec<&[u8]> = argv.iter().skip(1).map(|a| a.as_slice()).collect();
    check(
        ctx,
        &ctx.get_flags(),
        &mut RedisStore::new(ctx),
        "sync",
        &args,
    )
}

/// The module's own ACL category (where the server can add one).
pub const CATEGORY: &str = "databroker";

/// Puts the commands in `@read`/`@write` (and `@fast`/`@slow`,
/// `@blocking`), plus `@databroker` where the server can add categories
/// (Redis 7.4+, Valkey 8); logs when it cannot (Redis 7.0: grant the
/// commands by name, see the README). Call from the module's init.
pub fn register(ctx: &Context) {
    if !api_present() {
        crate::log::warning(
            "databroker: this server lacks the ACL module API; per-key ACL checks are off",
        );
    }
    // SAFETY: API pointers filled at load; checked for presence.
    let (Some(get_command), Some(set_categories)) =
        (unsafe { raw::RedisModule_GetCommand }, unsafe {
            raw::RedisModule_SetCommandACLCategories
        })
    else {
        crate::log::warning(
            "databroker: this server cannot put module commands in ACL categories; grant the DB.* commands by name",
        );
        return;
    };
    let mut own = false;
    if let (Some(add), Ok(c)) = (
        unsafe { raw::RedisModule_AddACLCategory },
        CString::new(CATEGORY),
    ) {
        // SAFETY: valid load context and C string.
        own = unsafe { add(ctx.ctx, c.as_ptr()) } == OK;
    }
    for (name, cats) in crate::command_table::COMMANDS
        .iter()
        .map(|c| (c.name, c.acl))
    {
        let cats = if own {
            format!("{cats} {CATEGORY}")
        } else {
            cats.to_string()
        };
        let (Ok(cname), Ok(ccats)) = (CString::new(name), CString::new(cats)) else {
            continue;
        };
        // SAFETY: valid load context and names.
        let command = unsafe { get_command(ctx.ctx, cname.as_ptr()) };
        if command.is_null() || unsafe { set_categories(command, ccats.as_ptr()) } != OK {
            crate::log::warning(&format!(
                "databroker: could not set the ACL categories of {name}"
            ));
        }
    }
}
