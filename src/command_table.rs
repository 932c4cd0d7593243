//! The module's commands, one row each: name, registration flags, arity,
//! ACL categories, how it runs (a function of `databroker-core` over the
//! store) and its `COMMAND DOCS`. Registration, key specs, ACL categories,
//! INFO counters and dispatch all read this table, so a new command is one
//! `run` in `core/src/commands/` plus one row here.

use std::os::raw::c_int;

use databroker_core::commands::txn::WriteStats;
use databroker_core::commands::{self, Env};
use databroker_core::{DbResult, Reply};

use crate::command_docs::*;
use crate::env::current_env;
use crate::redis_store::RedisStore;

/// A command body over the store: the arguments after the command name.
pub type Body<T> = for<'a, 'b, 'c> fn(&'a mut RedisStore<'b>, Env, &'c [&'c [u8]]) -> DbResult<T>;

/// How a command runs.
#[derive(Clone, Copy)]
pub enum Run {
    /// Reads only (gets the configuration, no clock).
    Read(Body<Reply>),
    /// Issues versions (counted in INFO; refused while keys may be evicted).
    Write(Body<(Reply, WriteStats)>),
    /// Writes a lease key (refused while keys may be evicted).
    Lease(Body<Reply>),
    /// `DB.SYNC`, which may block (see `sync_cmd`).
    Sync,
}

/// One command.
pub struct Command {
    /// Lowercase name.
    pub name: &'static str,
    /// `RedisModule_CreateCommand` flags.
    pub flags: &'static str,
    /// Arity including the command name (negative: at least).
    pub arity: c_int,
    /// ACL categories where the server supports them.
    pub acl: &'static str,
    /// How it runs.
    pub run: Run,
    /// `COMMAND DOCS`.
    pub doc: Doc,
}

impl Command {
    /// Declares its key read-only (reads) rather than read-write.
    pub fn read_only(&self) -> bool {
        matches!(self.run, Run::Read(_) | Run::Sync)
    }

    /// Writes keys.
    pub fn writes(&self) -> bool {
        !self.read_only()
    }
}

/// Every command; the index is the command's INFO counter.
pub static COMMANDS: &[Command] = &[
    Command {
        name: "db.put",
        flags: "write deny-oom",
        arity: -5,
        acl: "write slow",
        run: Run::Write(|s, e, a| commands::put::run(s, e, a)),
        doc: Doc {
            summary: "Writes records atomically; each gets the next version of the namespace's change feed.",
            complexity: "O(N log(C)) for N records written and C changes retained, plus the same per record evicted by capacity and per change trimmed by retention (at most 256).",
            args: &[
                NS,
                string("versions")
                    .token("IF")
                    .optional()
                    .about("one expected version per record, comma-separated: v, 0 (absent) or * (any); all or nothing"),
                string("token")
                    .token("TOKEN")
                    .optional()
                    .about("idempotency token: the same token again answers the original reply"),
                block("record", &[TYPE, ID, string("payload").about("any bytes")]).multiple(),
            ],
        },
    },
    Command {
        name: "db.delete",
        flags: "write",
        arity: -4,
        acl: "write slow",
        run: Run::Write(|s, e, a| commands::delete::run(s, e, a)),
        doc: Doc {
            summary: "Deletes records, writing a tombstone change with a new version for each.",
            complexity: "O(N log(C)) for N records deleted and C changes retained, plus the same per change trimmed by retention (at most 256).",
            args: &[NS, block("record", &[TYPE, ID]).multiple()],
        },
    },
    Command {
        name: "db.get",
        flags: "readonly fast",
        arity: -4,
        acl: "read fast",
        run: Run::Read(|s, _, a| commands::get::run(s, a)),
        doc: Doc {
            summary: "Returns the current version of a record, or null when it is absent or deleted.",
            complexity: "O(1)",
            args: &[NS, TYPE, ID, FORMAT],
        },
    },
    Command {
        name: "db.setoptions",
        flags: "write",
        arity: -3,
        acl: "write slow",
        run: Run::Write(|s, e, a| commands::options::set(s, e, a)),
        doc: Doc {
            summary: "Sets a record type's capacity (evicting the oldest records at once), or removes its options.",
            complexity: "O(1), plus O(E log(C)) for E records evicted by a lowered capacity.",
            args: &[
                NS,
                TYPE,
                integer("capacity")
                    .token("CAPACITY")
                    .optional()
                    .about("keep at most this many live records of the type; leave out to remove the limit"),
            ],
        },
    },
    Command {
        name: "db.getoptions",
        flags: "readonly fast",
        arity: 3,
        acl: "read fast",
        run: Run::Read(|s, _, a| commands::options::get(s, a)),
        doc: Doc {
            summary: "Returns a record type's options: {capacity: n}, or an empty map.",
            complexity: "O(1)",
            args: &[NS, TYPE],
        },
    },
    Command {
        name: "db.lease",
        flags: "write fast",
        arity: 5,
        acl: "write fast",
        run: Run::Lease(|s, e, a| commands::lease::lease(s, e, a)),
        doc: Doc {
            summary: "Acquires or renews a named lease for lease_id for ttl_ms (0 gives it up); replies 1 when lease_id holds it.",
            complexity: "O(1)",
            args: &[
                NS,
                string("name").about("lease name"),
                string("lease_id").about("the holder's id"),
                integer("ttl_ms").about("1 to 2^53 ms; 0 gives the lease up"),
            ],
        },
    },
    Command {
        name: "db.release",
        flags: "write fast",
        arity: 4,
        acl: "write fast",
        run: Run::Lease(|s, _, a| commands::lease::release(s, a)),
        doc: Doc {
            summary: "Deletes a lease when lease_id holds it; replies 1 if it did.",
            complexity: "O(1)",
            args: &[
                NS,
                string("name").about("lease name"),
                string("lease_id").about("the holder's id"),
            ],
        },
    },
    Command {
        name: "db.sync",
        flags: "readonly",
        arity: -4,
        acl: "read slow blocking",
        run: Run::Sync,
        doc: Doc {
            summary: "Returns the changes after a version, in version order, optionally waiting for the next write (a change feed).",
            complexity: "O(log(C) + N) for C changes retained and N changes returned (with TYPE, N changes examined, at most max(COUNT, 1000)).",
            args: &[
                NS,
                integer("server_version").about("the namespace's server_version (0 for a namespace never written)"),
                integer("after_version").about("return changes with a higher version"),
                integer("stamp")
                    .token("STAMP")
                    .optional()
                    .about("modified_at (us) of the change at after_version, to detect a rollback"),
                OPT_TYPE,
                OPT_COUNT,
                integer("ms")
                    .token("BLOCK")
                    .optional()
                    .about("wait up to ms (0 = forever) for a write when there is no newer change"),
                FORMAT,
            ],
        },
    },
    Command {
        name: "db.synclatest",
        flags: "readonly",
        arity: -2,
        acl: "read slow",
        run: Run::Read(|s, e, a| commands::synclatest::run(s, e, a)),
        doc: Doc {
            summary: "Pages through the current records (a snapshot), with the version to follow the change feed from.",
            complexity: "O(COUNT) per call: at most 256 hash buckets scanned, or 256 (type, id) pairs looked up.",
            args: &[
                NS,
                OPT_TYPE,
                string("json")
                    .token("FILTER")
                    .optional()
                    .about("Pomerium filter: {\"id\": ..}, {\"type\": ..}, {\"$and\": [..]}, {\"$or\": [..]}"),
                integer("cursor")
                    .token("CURSOR")
                    .optional()
                    .about("0 (default) to start, then each next_cursor until it is 0"),
                OPT_COUNT,
                FORMAT,
            ],
        },
    },
    Command {
        name: "db.versions",
        flags: "readonly fast",
        arity: 2,
        acl: "read fast",
        run: Run::Read(|s, _, a| commands::versions::versions(s, a)),
        doc: Doc {
            summary: "Returns the namespace's server_version, earliest retained version and last version.",
            complexity: "O(log(C)) for C changes retained",
            args: &[NS],
        },
    },
    Command {
        name: "db.types",
        flags: "readonly",
        arity: 2,
        acl: "read slow",
        run: Run::Read(|s, _, a| commands::versions::types(s, a)),
        doc: Doc {
            summary: "Returns the record types ever written to the namespace, sorted.",
            complexity: "O(T log(T)) for T record types",
            args: &[NS],
        },
    },
    Command {
        name: "db.check",
        flags: "readonly",
        arity: 2,
        acl: "read slow",
        run: Run::Read(|s, _, a| commands::check::run(s, current_env(), a)),
        doc: Doc {
            summary: "Checks the namespace's invariants and lists every violation (empty when consistent).",
            complexity: "O(R + C + I) for R records, C changes retained and I per-type ids: reads the whole namespace.",
            args: &[NS],
        },
    },
    Command {
        name: "db.write",
        flags: "write",
        arity: -5,
        acl: "write slow",
        run: Run::Write(|s, e, a| commands::write::run(s, e, a)),
        doc: Doc {
            summary: "Applies puts and deletes in order in one atomic step, each optionally conditional, with an optional idempotency token.",
            complexity: "O(N log(C)) for N records written or deleted and C changes retained, plus the same per record evicted by capacity and per change trimmed by retention (at most 256).",
            args: &[
                NS,
                string("token")
                    .token("TOKEN")
                    .optional()
                    .about("idempotency token: the same token again answers the original reply"),
                oneof(
                    "operation",
                    &[
                        block("put", &[TYPE, ID, string("payload"), OP_IF]).token("PUT"),
                        block("del", &[TYPE, ID, OP_IF]).token("DEL"),
                    ],
                )
                .multiple(),
            ],
        },
    },
];

/// The index of command `name` (any case) in [`COMMANDS`].
pub fn index_of(name: &[u8]) -> Option<usize> {
    COMMANDS
        .iter()
        .position(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
}
