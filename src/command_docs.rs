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
    pub(crate) const fn token(mut self, token: &'static str) -> Arg {
        self.token = Some(token);
        self
    }
    /// May be left out.
    pub(crate) const fn optional(mut self) -> Arg {
        self.optional = true;
        self
    }
    /// May be repeated.
    pub(crate) const fn multiple(mut self) -> Arg {
        self.multiple = true;
        self
    }
    /// With a one-line summary.
    pub(crate) const fn about(mut self, summary: &'static str) -> Arg {
        self.summary = Some(summary);
        self
    }
}

pub(crate) const fn key(name: &'static str) -> Arg {
    Arg::new(name, Kind::Key)
}
pub(crate) const fn string(name: &'static str) -> Arg {
    Arg::new(name, Kind::String)
}
pub(crate) const fn integer(name: &'static str) -> Arg {
    Arg::new(name, Kind::Integer)
}
pub(crate) const fn word(name: &'static str, token: &'static str) -> Arg {
    Arg::new(name, Kind::PureToken).token(token)
}
pub(crate) const fn block(name: &'static str, subargs: &'static [Arg]) -> Arg {
    let mut a = Arg::new(name, Kind::Block);
    a.subargs = subargs;
    a
}
pub(crate) const fn oneof(name: &'static str, subargs: &'static [Arg]) -> Arg {
    let mut a = Arg::new(name, Kind::OneOf);
    a.subargs = subargs;
    a
}

/// The documentation of one command.
#[derive(Debug, Clone, Copy)]
pub struct Doc {
    /// One line: what it does.
    pub summary: &'static str,
    /// Its time complexity.
    pub complexity: &'static str,
    /// Its arguments, in order.
    pub args: &'static [Arg],
}

pub(crate) const NS: Arg = key("ns").about("the namespace, e.g. {pomerium_v3}");
pub(crate) const TYPE: Arg = string("type").about("record type, 1 to 1024 bytes of UTF-8");
pub(crate) const ID: Arg = string("id").about("record id, 1 to 1024 bytes of UTF-8");
pub(crate) const FORMAT: Arg = oneof("format", &[word("map", "MAP"), word("proto", "PROTO")])
    .token("FORMAT")
    .optional()
    .about("reply records as a map (default) or as protobuf Record bytes");
pub(crate) const OPT_TYPE: Arg = string("type")
    .token("TYPE")
    .optional()
    .about("only records of this type");
pub(crate) const OPT_COUNT: Arg = integer("count")
    .token("COUNT")
    .optional()
    .about("records per call: default 100, at most databroker.max-count");

pub(crate) const OP_IF: Arg = integer("version")
    .token("IF")
    .optional()
    .about("the record's current version must be this (0: absent or deleted)");

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
