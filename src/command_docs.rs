//! What `COMMAND DOCS DB.<name>` replies, and what `redis-cli` uses for its
//! argument hints: each command's summary, `since`, complexity and argument
//! tree, handed to Redis with the key specs in the one
//! `RedisModule_SetCommandInfo` call `key_specs` makes per command (Redis 7.0+
//! and Valkey 8 accept it once per command).
//!
//! The table is plain `&'static str` data; [`CDocs::new`] turns one entry into
//! the C structures Redis wants (NUL-terminated strings, argument arrays ending
//! with an all-zero entry), owned by the `CDocs` value, which the caller keeps
//! alive across the call (Redis copies everything during it).

use std::ffi::CString;
use std::os::raw::{c_char, c_int};
use std::ptr;

use redis_module::raw;

/// Every command's `since`: the module version that introduced it.
pub const SINCE: &str = "0.1.0";

/// An argument's type (`RedisModuleCommandArgType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The key (key spec 0: the namespace).
    Key,
    /// Any bytes.
    String,
    /// A decimal integer.
    Integer,
    /// A keyword alone (`token` is the word).
    PureToken,
    /// Exactly one of the sub-arguments.
    OneOf,
    /// The sub-arguments in sequence.
    Block,
}

/// One argument of a command.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    /// Its name, as `COMMAND DOCS` shows it.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// The keyword before it (`FORMAT`), if any.
    pub token: Option<&'static str>,
    /// May be left out.
    pub optional: bool,
    /// May be repeated.
    pub multiple: bool,
    /// One line about it.
    pub summary: Option<&'static str>,
    /// For `OneOf` and `Block`: what it is made of.
    pub subargs: &'static [Arg],
}

impl Arg {
    const fn new(name: &'static str, kind: Kind) -> Arg {
        Arg {
            name,
            kind,
            token: None,
            optional: false,
            multiple: false,
            summary: None,
            subargs: &[],
        }
    }
    /// Preceded by the keyword `token`.
    const fn token(mut self, token: &'static str) -> Arg {
        self.token = Some(token);
        self
    }
    /// May be left out.
    const fn optional(mut self) -> Arg {
        self.optional = true;
        self
    }
    /// May be repeated.
    const fn multiple(mut self) -> Arg {
        self.multiple = true;
        self
    }
    /// With a one-line summary.
    const fn about(mut self, summary: &'static str) -> Arg {
        self.summary = Some(summary);
        self
    }
}

const fn key(name: &'static str) -> Arg {
    Arg::new(name, Kind::Key)
}
const fn string(name: &'static str) -> Arg {
    Arg::new(name, Kind::String)
}
const fn integer(name: &'static str) -> Arg {
    Arg::new(name, Kind::Integer)
}
const fn word(name: &'static str, token: &'static str) -> Arg {
    Arg::new(name, Kind::PureToken).token(token)
}
const fn block(name: &'static str, subargs: &'static [Arg]) -> Arg {
    let mut a = Arg::new(name, Kind::Block);
    a.subargs = subargs;
    a
}
const fn oneof(name: &'static str, subargs: &'static [Arg]) -> Arg {
    let mut a = Arg::new(name, Kind::OneOf);
    a.subargs = subargs;
    a
}

/// The documentation of one command.
#[derive(Debug, Clone, Copy)]
pub struct Doc {
    /// Lowercase command name.
    pub name: &'static str,
    /// One line: what it does.
    pub summary: &'static str,
    /// Its time complexity.
    pub complexity: &'static str,
    /// Its arguments, in order.
    pub args: &'static [Arg],
}

const NS: Arg = key("ns").about("the namespace, e.g. {pomerium_v3}");
const TYPE: Arg = string("type").about("record type, 1 to 1024 bytes of UTF-8");
const ID: Arg = string("id").about("record id, 1 to 1024 bytes of UTF-8");
const FORMAT: Arg = oneof("format", &[word("map", "MAP"), word("proto", "PROTO")])
    .token("FORMAT")
    .optional()
    .about("reply records as a map (default) or as protobuf Record bytes");
const OPT_TYPE: Arg = string("type")
    .token("TYPE")
    .optional()
    .about("only records of this type");
const OPT_COUNT: Arg = integer("count")
    .token("COUNT")
    .optional()
    .about("records per call: default 100, at most databroker.max-count");

const OP_IF: Arg = integer("version")
    .token("IF")
    .optional()
    .about("the record's current version must be this (0: absent or deleted)");

/// Every `DB.*` command.
pub static DOCS: &[Doc] = &[
    Doc {
        name: "db.put",
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
    Doc {
        name: "db.write",
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
    Doc {
        name: "db.delete",
        summary: "Deletes records, writing a tombstone change with a new version for each.",
        complexity: "O(N log(C)) for N records deleted and C changes retained, plus the same per change trimmed by retention (at most 256).",
        args: &[NS, block("record", &[TYPE, ID]).multiple()],
    },
    Doc {
        name: "db.get",
        summary: "Returns the current version of a record, or null when it is absent or deleted.",
        complexity: "O(1)",
        args: &[NS, TYPE, ID, FORMAT],
    },
    Doc {
        name: "db.setoptions",
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
    Doc {
        name: "db.getoptions",
        summary: "Returns a record type's options: {capacity: n}, or an empty map.",
        complexity: "O(1)",
        args: &[NS, TYPE],
    },
    Doc {
        name: "db.lease",
        summary: "Acquires or renews a named lease for lease_id for ttl_ms (0 gives it up); replies 1 when lease_id holds it.",
        complexity: "O(1)",
        args: &[
            NS,
            string("name").about("lease name"),
            string("lease_id").about("the holder's id"),
            integer("ttl_ms").about("1 to 2^53 ms; 0 gives the lease up"),
        ],
    },
    Doc {
        name: "db.release",
        summary: "Deletes a lease when lease_id holds it; replies 1 if it did.",
        complexity: "O(1)",
        args: &[
            NS,
            string("name").about("lease name"),
            string("lease_id").about("the holder's id"),
        ],
    },
    Doc {
        name: "db.sync",
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
    Doc {
        name: "db.synclatest",
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
    Doc {
        name: "db.versions",
        summary: "Returns the namespace's server_version, earliest retained version and last version.",
        complexity: "O(log(C)) for C changes retained",
        args: &[NS],
    },
    Doc {
        name: "db.types",
        summary: "Returns the record types ever written to the namespace, sorted.",
        complexity: "O(T log(T)) for T record types",
        args: &[NS],
    },
    Doc {
        name: "db.check",
        summary: "Checks the namespace's invariants and lists every violation (empty when consistent).",
        complexity: "O(R + C + I) for R records, C changes retained and I per-type ids: reads the whole namespace.",
        args: &[NS],
    },
];

/// The documentation of `name` (lowercase), if any.
pub fn find(name: &str) -> Option<&'static Doc> {
    DOCS.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

/// One [`Doc`] in C form. Pointers into it stay valid while it lives (the
/// strings and arrays are heap buffers that never move).
pub struct CDocs {
    strings: Vec<CString>,
    arrays: Vec<Vec<raw::RedisModuleCommandArg>>,
    /// `summary`, or null.
    pub summary: *const c_char,
    /// `complexity`, or null.
    pub complexity: *const c_char,
    /// `since`, or null.
    pub since: *const c_char,
    /// The argument array (ends with an all-zero entry), or null.
    pub args: *mut raw::RedisModuleCommandArg,
}

impl CDocs {
    /// The C form of `doc`. Never panics: a string that cannot be a C
    /// string (none in the table) becomes null.
    pub fn new(doc: &Doc) -> CDocs {
        let mut c = CDocs {
            strings: Vec::new(),
            arrays: Vec::new(),
            summary: ptr::null(),
            complexity: ptr::null(),
            since: ptr::null(),
            args: ptr::null_mut(),
        };
        c.summary = c.cstr(Some(doc.summary));
        c.complexity = c.cstr(Some(doc.complexity));
        c.since = c.cstr(Some(SINCE));
        c.args = c.array(doc.args);
        c
    }

    fn cstr(&mut self, s: Option<&str>) -> *const c_char {
        match s.map(CString::new) {
            Some(Ok(s)) => {
                let p = s.as_ptr();
                self.strings.push(s); // moves the handle, not the buffer
                p
            }
            _ => ptr::null(),
        }
    }

    fn array(&mut self, args: &[Arg]) -> *mut raw::RedisModuleCommandArg {
        if args.is_empty() {
            return ptr::null_mut();
        }
        let mut out = Vec::with_capacity(args.len() + 1);
        for a in args {
            let kind = match a.kind {
                Kind::Key => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY,
                Kind::String => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
                Kind::Integer => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
                Kind::PureToken => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
                Kind::OneOf => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF,
                Kind::Block => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK,
            };
            let mut flags = raw::REDISMODULE_CMD_ARG_NONE;
            if a.optional {
                flags |= raw::REDISMODULE_CMD_ARG_OPTIONAL;
            }
            if a.multiple {
                flags |= raw::REDISMODULE_CMD_ARG_MULTIPLE;
            }
            let subargs = self.array(a.subargs);
            out.push(raw::RedisModuleCommandArg {
                name: self.cstr(Some(a.name)),
                type_: kind,
                // The namespace is key spec 0; other arguments name none.
                key_spec_index: if a.kind == Kind::Key { 0 } else { -1 },
                token: self.cstr(a.token),
                summary: self.cstr(a.summary),
                since: ptr::null(),
                flags: flags as c_int,
                deprecated_since: ptr::null(),
                subargs,
                display_text: ptr::null(),
            });
        }
        // SAFETY: an all-zero argument (null name) ends the array.
        out.push(unsafe { std::mem::zeroed() });
        let p = out.as_mut_ptr();
        self.arrays.push(out); // moves the handle, not the buffer
        p
    }
}
