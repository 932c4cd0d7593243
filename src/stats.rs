//! Counters reported by `INFO databroker`.

use std::ffi::CString;
use std::os::raw::c_int;

use databroker_core::commands::txn::WriteStats;
use redis_module::raw::{self, RedisModuleInfoCtx};

pub use crate::counter::Counter;

/// Records put.
pub static RECORDS_WRITTEN: Counter = Counter::new();
/// Tombstones written by deletes.
pub static TOMBSTONES: Counter = Counter::new();
/// Tombstones written by capacity eviction.
pub static EVICTIONS: Counter = Counter::new();
/// Changes removed by retention.
pub static TRIMMED: Counter = Counter::new();
/// Clients waiting in a blocking `DB.SYNC` now.
pub static WAITING: Counter = Counter::new();
/// Error replies.
pub static ERRORS: Counter = Counter::new();

/// The most commands the module may have (the size of [`CALLS`]).
pub const MAX_COMMANDS: usize = 32;

/// Per-command call counters, by index in [`crate::command_table::COMMANDS`].
pub static CALLS: [Counter; MAX_COMMANDS] = [const { Counter::new() }; MAX_COMMANDS];

/// Adds a committed write's counts.
pub fn record_write(s: WriteStats) {
    RECORDS_WRITTEN.add(s.puts);
    TOMBSTONES.add(s.deletes);
    EVICTIONS.add(s.evictions);
    TRIMMED.add(s.trimmed);
}

/// The INFO callback: section `databroker`.
///
/// # Safety
/// Called by Redis with a valid info context.
pub unsafe extern "C" fn info_func(ctx: *mut RedisModuleInfoCtx, _for_crash_report: c_int) {
    let _ = std::panic::catch_unwind(|| {
        let add_section = raw::RedisModule_InfoAddSection.expect("api");
        let add = raw::RedisModule_InfoAddFieldLongLong.expect("api");
        add_section(ctx, std::ptr::null_mut());
        let field = |name: &str, v: u64| {
            if let Ok(n) = CString::new(name) {
                add(ctx, n.as_ptr(), v.min(i64::MAX as u64) as i64);
            }
        };
        for (cmd, c) in crate::command_table::COMMANDS.iter().zip(CALLS.iter()) {
            let name = cmd.name.strip_prefix("db.").unwrap_or(cmd.name);
            field(&format!("cmd_{name}"), c.get());
        }
        field("records_written", RECORDS_WRITTEN.get());
        field("tombstones", TOMBSTONES.get());
        field("evictions", EVICTIONS.get());
        field("trimmed_changes", TRIMMED.get());
        field("waiting_sync_clients", WAITING.get());
        field("errors", ERRORS.get());
        field("retention_hint_bytes", crate::oldest_change::bytes() as u64);
        field(
            "writes_refused_eviction",
            crate::memory_policy::REFUSED.get(),
        );
        field(
            "eviction_policy_unsafe",
            u64::from(crate::memory_policy::evicting_seen()),
        );
        crate::namespaces::info(ctx, _for_crash_report != 0);
    });
}
