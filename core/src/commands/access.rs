//! Every key a command reads or writes, computed from its arguments before
//! it runs, so that the module can check the caller's ACL key permissions
//! on all of them (Redis itself checks only the declared key, `<ns>`) and
//! refuse before the first write. Arguments that do not parse contribute no
//! keys: the command then fails on them anyway.

use crate::args::{is_word, parse_name, parse_token};
use crate::filter::{plan, Filter, Plan};
use crate::keys::{suffix, with_key};

/// How a command uses a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads it.
    Read,
    /// Reads and writes it.
    ReadWrite,
}

/// Visits `<ns><suffix><part>` with `access` (the name built on the stack).
fn key(ns: &[u8], suffix: &[u8], part: &[u8], access: Access, visit: Visit<'_>) -> bool {
    with_key(ns, suffix, part, |k| visit(k, access))
}

/// What a caller does with each key; false stops the visit.
pub type Visit<'v> = &'v mut dyn FnMut(&[u8], Access) -> bool;

/// The keys a write to the namespace reads and writes (a [`super::txn::Txn`]),
/// plus `<ns>.changes.<type>` for each of `types` (first seen order).
fn txn_keys<'a>(
    ns: &[u8],
    types: impl Iterator<Item = &'a [u8]> + Clone,
    cluster: bool,
    visit: Visit<'_>,
) -> bool {
    use Access::*;
    let fixed = [
        (suffix::SERVER_VERSION, ReadWrite),
        (suffix::LAST_VERSION, ReadWrite),
        (suffix::RECORDS, ReadWrite),
        (suffix::CHANGES, ReadWrite),
        (suffix::OPTIONS, Read),
        (suffix::RECORD_TYPES, ReadWrite),
    ];
    for (sfx, access) in fixed {
        if !key(ns, sfx, b"", access, visit) {
            return false;
        }
    }
    if cluster && !visit(ns, ReadWrite) {
        return false;
    }
    // Each type once: a scan of the earlier ones for a few, a set for many
    // (a call may carry thousands of records).
    let many = types.clone().nth(32).is_some();
    let mut seen = std::collections::HashSet::new();
    for (i, t) in types.clone().enumerate() {
        let dup = if many {
            !seen.insert(t)
        } else {
            types.clone().take(i).any(|s| s == t)
        };
        if dup {
            continue;
        }
        if !key(ns, suffix::TYPE_CHANGES, t, ReadWrite, visit) {
            return false;
        }
    }
    true
}

/// Value of option `name` among `[NAME value ...]` options (the last one wins).
fn option<'a>(opts: &[&'a [u8]], name: &str) -> Option<&'a [u8]> {
    let mut found = None;
    let mut i = 0;
    while i + 1 < opts.len() {
        if is_word(opts[i], name) {
            found = Some(opts[i + 1]);
        }
        i += 2;
    }
    found
}

/// Calls `visit` with each key command `name` (lowercase, e.g. `db.put`)
/// touches with `args` (after the command name; `args[0]` is the
/// namespace), building names on the stack; stops when `visit` returns
/// false. Returns false when stopped.
pub fn visit_touched(name: &str, args: &[&[u8]], cluster: bool, visit: Visit<'_>) -> bool {
    use Access::*;
    let name = name.strip_prefix("db.").unwrap_or(name);
    let Some(&ns) = args.first() else {
        return true;
    };
    let rest = &args[1..];
    let lease = |visit: Visit<'_>| match rest.first().and_then(|n| parse_token(n, "name").ok()) {
        Some(n) => key(ns, suffix::LEASE, n, ReadWrite, visit),
        None => true,
    };
    let token = |t: Option<&[u8]>, visit: Visit<'_>| match t {
        Some(t) => key(ns, suffix::TOKEN, t, ReadWrite, visit),
        None => true,
    };
    match name {
        "put" => {
            let Ok((_, tk, records)) = super::write::leading_options(rest, 3) else {
                return txn_keys(ns, [].into_iter(), cluster, visit);
            };
            txn_keys(ns, records.chunks(3).map(|c| c[0]), cluster, visit) && token(tk, visit)
        }
        "write" => {
            // [TOKEN <t>] then PUT <type> <id> <payload> [IF <v>] | DEL <type> <id> [IF <v>] ...
            let mut types: Vec<&[u8]> = Vec::new();
            let mut tk = None;
            let mut i = 0;
            if rest.len() >= 2 && is_word(rest[0], "TOKEN") {
                tk = Some(rest[1]);
                i = 2;
            }
            while i < rest.len() {
                let w = rest[i];
                let n = if is_word(w, "PUT") {
                    3
                } else if is_word(w, "DEL") {
                    2
                } else {
                    break;
                };
                if let Some(t) = rest.get(i + 1) {
                    types.push(t);
                }
                i += 1 + n;
                if rest.get(i).is_some_and(|w| is_word(w, "IF")) {
                    i += 2;
                }
            }
            txn_keys(ns, types.iter().copied(), cluster, visit)
                && token(tk.and_then(|t| parse_token(t, "TOKEN").ok()), visit)
        }
        "check" => [
            suffix::SERVER_VERSION,
            suffix::LAST_VERSION,
            suffix::RECORDS,
            suffix::CHANGES,
            suffix::OPTIONS,
            suffix::RECORD_TYPES,
        ]
        .into_iter()
        .all(|sfx| key(ns, sfx, b"", Read, visit)),
        "delete" => txn_keys(ns, rest.chunks(2).map(|c| c[0]), cluster, visit),
        "setoptions" => {
            // The options hash is written here, not only read.
            txn_keys(
                ns,
                rest[..rest.len().min(1)].iter().copied(),
                cluster,
                &mut |k, a| {
                    if with_key(ns, suffix::OPTIONS, b"", |o| k == o) {
                        true
                    } else {
                        visit(k, a)
                    }
                },
            ) && key(ns, suffix::OPTIONS, b"", ReadWrite, visit)
        }
        "lease" => lease(visit) && (!cluster || visit(ns, ReadWrite)),
        "release" => lease(visit),
        "get" => key(ns, suffix::RECORDS, b"", Read, visit),
        "getoptions" => key(ns, suffix::OPTIONS, b"", Read, visit),
        "types" => key(ns, suffix::RECORD_TYPES, b"", Read, visit),
        "versions" | "sync" => [
            suffix::SERVER_VERSION,
            suffix::LAST_VERSION,
            suffix::CHANGES,
        ]
        .into_iter()
        .all(|sfx| key(ns, sfx, b"", Read, visit)),
        "synclatest" => {
            let fixed = [
                suffix::SERVER_VERSION,
                suffix::LAST_VERSION,
                suffix::RECORDS,
            ];
            if !fixed.into_iter().all(|sfx| key(ns, sfx, b"", Read, visit)) {
                return false;
            }
            let rtype = option(rest, "TYPE").and_then(|t| parse_name(t, "TYPE").ok());
            let filter = match option(rest, "FILTER") {
                Some(f) => Filter::parse(f).ok(),
                None => Some(Filter::All),
            };
            let scanned = match filter.map(|f| plan(rtype, &f)) {
                Some(Plan::ScanType(t)) => Some(t),
                _ => rtype.map(str::to_string),
            };
            match scanned {
                Some(t) => key(ns, suffix::TYPE_CHANGES, t.as_bytes(), Read, visit),
                None => true,
            }
        }
        // A command without its own entry is checked as a write of the
        // namespace's fixed keys (fail closed).
        _ => txn_keys(ns, [].into_iter(), cluster, visit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of one command, each with how it is used.
    type Touched = Vec<(Vec<u8>, Access)>;

    /// The keys command `name` touches with `args`, collected.
    fn touched(name: &str, args: &[&[u8]], cluster: bool) -> Touched {
        let mut out = Vec::new();
        visit_touched(name, args, cluster, &mut |k, a| {
            out.push((k.to_vec(), a));
            true
        });
        out
    }

    fn names(t: &Touched) -> Vec<String> {
        t.iter()
            .map(|(k, a)| format!("{}:{a:?}", String::from_utf8_lossy(k)))
            .collect()
    }

    #[test]
    fn every_key_of_each_command() {
        let put = touched(
            "db.put",
            &[b"n", b"t", b"i", b"v", b"u", b"j", b"w", b"t", b"k", b"x"],
            true,
        );
        assert_eq!(
            names(&put),
            [
                "n.server_version:ReadWrite",
                "n.last_version:ReadWrite",
                "n.records:ReadWrite",
                "n.changes:ReadWrite",
                "n.options:Read",
                "n.record_types:ReadWrite",
                "n:ReadWrite",
                "n.changes.t:ReadWrite",
                "n.changes.u:ReadWrite",
            ]
        );
        let so = touched("db.setoptions", &[b"n", b"t", b"CAPACITY", b"1"], false);
        assert!(names(&so).contains(&"n.options:ReadWrite".to_string()));
        assert!(names(&so).contains(&"n.changes.t:ReadWrite".to_string()));
        assert_eq!(
            names(&touched("db.release", &[b"n", b"l", b"me"], false)),
            ["n.lease.l:ReadWrite"]
        );
        assert_eq!(
            names(&touched("db.lease", &[b"n", b"l", b"me", b"1"], true)),
            ["n.lease.l:ReadWrite", "n:ReadWrite"]
        );
        assert_eq!(
            names(&touched("db.get", &[b"n", b"t", b"i"], false)),
            ["n.records:Read"]
        );
        let sl = touched(
            "db.synclatest",
            &[b"n", b"FILTER", br#"{"type":"t"}"#],
            false,
        );
        assert!(names(&sl).contains(&"n.changes.t:Read".to_string()));
        let sl = touched("db.synclatest", &[b"n", b"TYPE", b"u"], false);
        assert!(names(&sl).contains(&"n.changes.u:Read".to_string()));
        assert_eq!(touched("db.sync", &[b"n", b"1", b"0"], false).len(), 3);
        assert!(touched("db.put", &[], false).is_empty());
        let put = touched("put", &[b"n", b"TOKEN", b"tk", b"t", b"i", b"v"], false);
        assert!(names(&put).contains(&"n.token.tk:ReadWrite".to_string()));
        assert!(names(&put).contains(&"n.changes.t:ReadWrite".to_string()));
        assert!(!names(&put).iter().any(|k| k.contains("changes.TOKEN")));
        let w = touched(
            "write",
            &[
                b"n", b"TOKEN", b"tk", b"PUT", b"t", b"i", b"v", b"IF", b"3", b"DEL", b"u", b"j",
            ],
            false,
        );
        for k in [
            "n.token.tk:ReadWrite",
            "n.changes.t:ReadWrite",
            "n.changes.u:ReadWrite",
        ] {
            assert!(names(&w).contains(&k.to_string()), "{k} in {:?}", names(&w));
        }
        assert_eq!(touched("check", &[b"n"], false).len(), 6);
        // Many records: each type's set once, in first-seen order.
        let types: Vec<Vec<u8>> = (0..120)
            .map(|i| format!("t{}", i % 40).into_bytes())
            .collect();
        let mut args: Vec<&[u8]> = vec![b"n"];
        for t in &types {
            args.extend([t.as_slice(), b"i", b"v"]);
        }
        let sets: Vec<String> = names(&touched("db.put", &args, false))
            .into_iter()
            .filter(|k| k.starts_with("n.changes."))
            .collect();
        let want: Vec<String> = (0..40)
            .map(|i| format!("n.changes.t{i}:ReadWrite"))
            .collect();
        assert_eq!(sets, want);
    }
}
