//! Every key a command reads or writes, computed from its arguments before
//! it runs, so that the module can check the caller's ACL key permissions
//! on all of them (Redis itself checks only the declared key, `<ns>`) and
//! refuse before the first write. Arguments that do not parse contribute no
//! keys: the command then fails on them anyway.

use crate::args::{is_word, parse_name, parse_token};
use crate::filter::{plan, Filter, Plan};
use crate::keys::Keys;

/// How a command uses a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads it.
    Read,
    /// Reads and writes it.
    ReadWrite,
}

/// The keys of one command, each with how it is used.
pub type Touched = Vec<(Vec<u8>, Access)>;

/// The keys a write to the namespace reads and writes (a [`super::txn::Txn`]),
/// plus `<ns>.changes.<type>` for each of `types`.
fn txn_keys(keys: &Keys, types: &[&[u8]], cluster: bool) -> Touched {
    use Access::*;
    let mut out = vec![
        (keys.server_version().to_vec(), ReadWrite),
        (keys.last_version().to_vec(), ReadWrite),
        (keys.records().to_vec(), ReadWrite),
        (keys.changes().to_vec(), ReadWrite),
        (keys.options().to_vec(), Read),
        (keys.record_types().to_vec(), ReadWrite),
    ];
    if cluster {
        out.push((keys.marker().to_vec(), ReadWrite));
    }
    let mut seen: Vec<&[u8]> = Vec::new();
    for t in types {
        if !seen.contains(t) {
            seen.push(t);
            out.push((keys.type_changes(t), ReadWrite));
        }
    }
    out
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

/// The keys command `name` (lowercase, e.g. `db.put`) touches with `args`
/// (the arguments after the command name; `args[0]` is the namespace).
pub fn touched(name: &str, args: &[&[u8]], cluster: bool) -> Touched {
    use Access::*;
    let name = name.strip_prefix("db.").unwrap_or(name);
    let Some(&ns) = args.first() else {
        return Vec::new();
    };
    let keys = Keys::new(ns);
    let rest = &args[1..];
    let lease = |out: &mut Touched| {
        if let Some(n) = rest.first().and_then(|n| parse_token(n, "name").ok()) {
            out.push((keys.lease(n), ReadWrite));
        }
    };
    match name {
        "put" => {
            let Ok((_, token, records)) = super::write::leading_options(rest, 3) else {
                return txn_keys(&keys, &[], cluster);
            };
            let types: Vec<&[u8]> = records.chunks(3).map(|c| c[0]).collect();
            let mut out = txn_keys(&keys, &types, cluster);
            if let Some(t) = token {
                out.push((keys.token(t), ReadWrite));
            }
            out
        }
        "write" => {
            // [TOKEN <t>] then PUT <type> <id> <payload> [IF <v>] | DEL <type> <id> [IF <v>] ...
            let mut types: Vec<&[u8]> = Vec::new();
            let mut token = None;
            let mut i = 0;
            if rest.len() >= 2 && is_word(rest[0], "TOKEN") {
                token = Some(rest[1]);
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
            let mut out = txn_keys(&keys, &types, cluster);
            if let Some(t) = token.and_then(|t| parse_token(t, "TOKEN").ok()) {
                out.push((keys.token(t), ReadWrite));
            }
            out
        }
        "check" => vec![
            (keys.server_version().to_vec(), Read),
            (keys.last_version().to_vec(), Read),
            (keys.records().to_vec(), Read),
            (keys.changes().to_vec(), Read),
            (keys.options().to_vec(), Read),
            (keys.record_types().to_vec(), Read),
        ],
        "delete" => {
            let types: Vec<&[u8]> = rest.chunks(2).map(|c| c[0]).collect();
            txn_keys(&keys, &types, cluster)
        }
        "setoptions" => {
            let mut out = txn_keys(&keys, &rest[..rest.len().min(1)], cluster);
            out.retain(|(k, _)| k != keys.options());
            out.push((keys.options().to_vec(), ReadWrite));
            out
        }
        "lease" => {
            let mut out = Vec::new();
            lease(&mut out);
            if cluster {
                out.push((keys.marker().to_vec(), ReadWrite));
            }
            out
        }
        "release" => {
            let mut out = Vec::new();
            lease(&mut out);
            out
        }
        "get" => vec![(keys.records().to_vec(), Read)],
        "getoptions" => vec![(keys.options().to_vec(), Read)],
        "types" => vec![(keys.record_types().to_vec(), Read)],
        "versions" | "sync" => vec![
            (keys.server_version().to_vec(), Read),
            (keys.last_version().to_vec(), Read),
            (keys.changes().to_vec(), Read),
        ],
        "synclatest" => {
            let mut out = vec![
                (keys.server_version().to_vec(), Read),
                (keys.last_version().to_vec(), Read),
                (keys.records().to_vec(), Read),
            ];
            let rtype = option(rest, "TYPE").and_then(|t| parse_name(t, "TYPE").ok());
            let filter = match option(rest, "FILTER") {
                Some(f) => Filter::parse(f).ok(),
                None => Some(Filter::All),
            };
            let scanned = match filter.map(|f| plan(rtype, &f)) {
                Some(Plan::ScanType(t)) => Some(t),
                _ => rtype.map(str::to_string),
            };
            if let Some(t) = scanned {
                out.push((keys.type_changes(t.as_bytes()), Read));
            }
            out
        }
        // A command without its own entry is checked as a write of the
        // namespace's fixed keys (fail closed).
        _ => txn_keys(&keys, &[], cluster),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
