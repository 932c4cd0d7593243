//! Key names of one namespace (SPEC section 1): `<ns>` + suffix.
//!
//! **Naming rule.** A namespace is non-empty and contains no `.`. Every key
//! of a namespace is `<ns>` itself (the cluster marker) or `<ns>` + a suffix
//! starting with `.`, so the namespace a key belongs to is exactly the part
//! before its first `.` (the whole key when it has none): two different
//! namespaces can never share a key, whatever their types and lease names
//! and tokens (which may hold any bytes, dots included). Within one namespace the
//! suffixes differ before any user-chosen part (`.changes.<type>` vs
//! `.changes`, `.lease.<name>` vs `.last_version`, `.token.<t>`, ...), see [`check_namespace`]
//! and the tests, which enumerate them.

/// The fixed key names of a namespace, by suffix (index into `Keys::names`).
const SUFFIXES: [&[u8]; 7] = [
    b".server_version",
    b".last_version",
    b".last_version_ch",
    b".records",
    b".changes",
    b".options",
    b".record_types",
];
const SERVER_VERSION: usize = 0;
const LAST_VERSION: usize = 1;
const LAST_VERSION_CH: usize = 2;
const RECORDS: usize = 3;
const CHANGES: usize = 4;
const OPTIONS: usize = 5;
const RECORD_TYPES: usize = 6;

use crate::error::{DbError, DbResult};

/// Checks the namespace naming rule: non-empty, no `.`.
pub fn check_namespace(ns: &[u8]) -> DbResult<()> {
    if ns.is_empty() {
        return Err(DbError::arg("namespace", "must not be empty"));
    }
    if ns.contains(&b'.') {
        return Err(DbError::arg(
            "namespace",
            "must not contain '.' (the namespace's keys are <ns>.<suffix>, so a dot would let one namespace's keys be another's)",
        ));
    }
    Ok(())
}

/// The key names of one namespace, all built at once into one buffer (a
/// command uses most of them).
#[derive(Debug, Clone)]
pub struct Keys {
    /// `<ns>`, then each `<ns><suffix>` of [`SUFFIXES`] in order.
    buf: Vec<u8>,
    ns_len: usize,
}

impl PartialEq for Keys {
    fn eq(&self, other: &Self) -> bool {
        self.ns() == other.ns()
    }
}

impl Eq for Keys {}

impl Keys {
    /// Keys of namespace `ns` (binary-safe).
    pub fn new(ns: &[u8]) -> Self {
        let len = ns.len() * (1 + SUFFIXES.len()) + SUFFIXES.iter().map(|s| s.len()).sum::<usize>();
        let mut buf = Vec::with_capacity(len);
        buf.extend_from_slice(ns);
        for suffix in SUFFIXES {
            buf.extend_from_slice(ns);
            buf.extend_from_slice(suffix);
        }
        Keys {
            buf,
            ns_len: ns.len(),
        }
    }

    fn name(&self, which: usize) -> &[u8] {
        let start =
            self.ns_len * (1 + which) + SUFFIXES[..which].iter().map(|s| s.len()).sum::<usize>();
        &self.buf[start..start + self.ns_len + SUFFIXES[which].len()]
    }

    /// The namespace itself.
    pub fn ns(&self) -> &[u8] {
        &self.buf[..self.ns_len]
    }

    /// `<ns>` itself: in cluster mode, the key every command names. Writes
    /// keep a small string there, so while the namespace's slot migrates,
    /// commands run where the data is (the source until this key has moved
    /// with the others, then the target) instead of being sent to an empty
    /// target with `ASK`.
    pub fn marker(&self) -> &[u8] {
        self.ns()
    }

    /// `<ns>.server_version` (string).
    pub fn server_version(&self) -> &[u8] {
        self.name(SERVER_VERSION)
    }

    /// `<ns>.last_version` (string).
    pub fn last_version(&self) -> &[u8] {
        self.name(LAST_VERSION)
    }

    /// `<ns>.last_version_ch` (pub/sub channel).
    pub fn last_version_ch(&self) -> &[u8] {
        self.name(LAST_VERSION_CH)
    }

    /// `<ns>.records` (hash `<type>/<id>` -> Record).
    pub fn records(&self) -> &[u8] {
        self.name(RECORDS)
    }

    /// `<ns>.changes` (zset version -> Record).
    pub fn changes(&self) -> &[u8] {
        self.name(CHANGES)
    }

    /// `<ns>.changes.<type>` (zset of live ids by modified_at).
    pub fn type_changes(&self, record_type: &[u8]) -> Vec<u8> {
        [self.ns(), suffix::TYPE_CHANGES, record_type].concat()
    }

    /// Runs `f` with `<ns>.changes.<type>`, built on the stack when short.
    pub fn with_type_changes<R>(&self, record_type: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
        with_key(self.ns(), suffix::TYPE_CHANGES, record_type, f)
    }

    /// `<ns>.options` (hash `<type>` -> Options).
    pub fn options(&self) -> &[u8] {
        self.name(OPTIONS)
    }

    /// `<ns>.lease.<name>` (string holding the lease id).
    pub fn lease(&self, name: &[u8]) -> Vec<u8> {
        [self.ns(), suffix::LEASE, name].concat()
    }

    /// `<ns>.token.<token>` (string: a remembered write, with an expiry).
    pub fn token(&self, token: &[u8]) -> Vec<u8> {
        [self.ns(), suffix::TOKEN, token].concat()
    }

    /// `<ns>.record_types` (set).
    pub fn record_types(&self) -> &[u8] {
        self.name(RECORD_TYPES)
    }
}

/// Runs `f` with the key name `<ns><suffix><part>`, built on the stack when
/// short (no allocation on the hot paths).
pub fn with_key<R>(ns: &[u8], suffix: &[u8], part: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    let mut short = [0u8; 192];
    let len = ns.len() + suffix.len() + part.len();
    match short.get_mut(..len) {
        Some(out) => {
            out[..ns.len()].copy_from_slice(ns);
            out[ns.len()..ns.len() + suffix.len()].copy_from_slice(suffix);
            out[ns.len() + suffix.len()..].copy_from_slice(part);
            f(out)
        }
        None => f(&[ns, suffix, part].concat()),
    }
}

/// Suffixes of the fixed keys, for [`with_key`].
pub mod suffix {
    /// `.server_version`
    pub const SERVER_VERSION: &[u8] = super::SUFFIXES[super::SERVER_VERSION];
    /// `.last_version`
    pub const LAST_VERSION: &[u8] = super::SUFFIXES[super::LAST_VERSION];
    /// `.records`
    pub const RECORDS: &[u8] = super::SUFFIXES[super::RECORDS];
    /// `.changes`
    pub const CHANGES: &[u8] = super::SUFFIXES[super::CHANGES];
    /// `.options`
    pub const OPTIONS: &[u8] = super::SUFFIXES[super::OPTIONS];
    /// `.record_types`
    pub const RECORD_TYPES: &[u8] = super::SUFFIXES[super::RECORD_TYPES];
    /// `.changes.` + type
    pub const TYPE_CHANGES: &[u8] = b".changes.";
    /// `.lease.` + name
    pub const LEASE: &[u8] = b".lease.";
    /// `.token.` + token
    pub const TOKEN: &[u8] = b".token.";
}

/// Runs `f` with the `records` field `<type>/<id>`, built on the stack
/// when short (the hot paths: `DB.GET`, the owner check of a put).
pub fn with_record_field<R>(rtype: &str, id: &str, f: impl FnOnce(&[u8]) -> R) -> R {
    let mut short = [0u8; 128];
    let len = rtype.len() + 1 + id.len();
    if len <= short.len() {
        short[..rtype.len()].copy_from_slice(rtype.as_bytes());
        short[rtype.len()] = b'/';
        short[rtype.len() + 1..len].copy_from_slice(id.as_bytes());
        f(&short[..len])
    } else {
        f(&record_field(rtype, id))
    }
}

/// The `records` hash field of a record: `<type>/<id>`.
pub fn record_field(record_type: &str, id: &str) -> Vec<u8> {
    let mut f = Vec::with_capacity(record_type.len() + 1 + id.len());
    f.extend_from_slice(record_type.as_bytes());
    f.push(b'/');
    f.extend_from_slice(id.as_bytes());
    f
}

/// True when `ns` holds a non-empty hash tag (`{...}`), the rule Redis Cluster
/// uses to put every key of the namespace in one slot.
pub fn has_hash_tag(ns: &[u8]) -> bool {
    match ns.iter().position(|&b| b == b'{') {
        Some(open) => match ns[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) => len > 0,
            None => false,
        },
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_layout_names() {
        let k = Keys::new(b"{pomerium_v3}");
        assert_eq!(k.records(), b"{pomerium_v3}.records");
        assert_eq!(k.changes(), b"{pomerium_v3}.changes");
        assert_eq!(k.type_changes(b"t"), b"{pomerium_v3}.changes.t");
        assert_eq!(k.lease(b"l"), b"{pomerium_v3}.lease.l");
        assert_eq!(k.last_version_ch(), b"{pomerium_v3}.last_version_ch");
        assert_eq!(record_field("a", "b"), b"a/b");
        assert_eq!(k.ns(), b"{pomerium_v3}");
        assert_eq!(k.marker(), b"{pomerium_v3}");
        assert_eq!(k.server_version(), b"{pomerium_v3}.server_version");
        assert_eq!(k.last_version(), b"{pomerium_v3}.last_version");
        assert_eq!(k.options(), b"{pomerium_v3}.options");
        assert_eq!(k.record_types(), b"{pomerium_v3}.record_types");
        assert_eq!(
            with_key(b"{pomerium_v3}", suffix::RECORDS, b"", <[u8]>::to_vec),
            b"{pomerium_v3}.records"
        );
        let long = vec![b'n'; 300];
        assert_eq!(
            with_key(&long, suffix::TYPE_CHANGES, b"t", <[u8]>::to_vec),
            [&long[..], b".changes.t"].concat()
        );
        let empty = Keys::new(b"");
        assert_eq!(empty.records(), b".records");
        assert_eq!(empty.record_types(), b".record_types");
        assert_eq!(empty.ns(), b"");
    }

    /// Every key (and the channel) of `ns` for the given types and lease
    /// names, with what it is.
    fn all_keys(ns: &[u8], names: &[&[u8]]) -> Vec<(Vec<u8>, String)> {
        let k = Keys::new(ns);
        let mut out = vec![
            (k.marker().to_vec(), "marker".to_string()),
            (k.server_version().to_vec(), "server_version".into()),
            (k.last_version().to_vec(), "last_version".into()),
            (k.last_version_ch().to_vec(), "last_version_ch".into()),
            (k.records().to_vec(), "records".into()),
            (k.changes().to_vec(), "changes".into()),
            (k.options().to_vec(), "options".into()),
            (k.record_types().to_vec(), "record_types".into()),
        ];
        for n in names {
            out.push((
                k.type_changes(n),
                format!("changes.{}", String::from_utf8_lossy(n)),
            ));
            out.push((k.lease(n), format!("lease.{}", String::from_utf8_lossy(n))));
            out.push((k.token(n), format!("token.{}", String::from_utf8_lossy(n))));
        }
        out
    }

    #[test]
    fn namespaces_never_share_a_key() {
        let suffixes: [&[u8]; 15] = [
            b".token",
            b".token.",
            b".token.x",
            b".server_version",
            b".last_version",
            b".last_version_ch",
            b".records",
            b".changes",
            b".changes.",
            b".changes.x",
            b".options",
            b".lease",
            b".lease.",
            b".lease.x",
            b".record_types",
        ];
        // Namespaces: every string of up to 3 bytes over an alphabet of
        // separators and tag braces, and each of those with every suffix.
        let alphabet: [&[u8]; 5] = [b"a", b".", b"{", b"}", b"e"];
        let mut bases: Vec<Vec<u8>> = vec![Vec::new()];
        for len in 1..=3 {
            let mut next = Vec::new();
            for b in bases.iter().filter(|b| b.len() == len - 1) {
                for c in alphabet {
                    let mut n = b.clone();
                    n.extend_from_slice(c);
                    next.push(n);
                }
            }
            bases.extend(next);
        }
        bases.push(b"{pomerium_v3}".to_vec());
        let mut names: Vec<Vec<u8>> = bases.clone();
        for b in &bases {
            for s in suffixes {
                let mut n = b.clone();
                n.extend_from_slice(s);
                names.push(n);
            }
        }
        names.sort();
        names.dedup();
        // Types and lease names: any bytes, dots and slashes included.
        let mut parts: Vec<&[u8]> = vec![
            b"x",
            b"t",
            b".",
            b"..",
            b"type.googleapis.com/pomerium.Session",
            b"lease",
            b"x.records",
            b"records",
            b"last_version",
            b"x.lease.y",
        ];
        parts.extend(suffixes.iter().map(|s| &s[1..]).filter(|s| !s.is_empty()));
        parts.extend(suffixes.iter().copied());
        parts.sort();
        parts.dedup();

        let valid: Vec<&Vec<u8>> = names
            .iter()
            .filter(|n| check_namespace(n).is_ok())
            .collect();
        assert!(valid.len() > 50 && valid.len() < names.len());
        assert!(check_namespace(b"{pomerium_v3}").is_ok());
        let mut owner: std::collections::HashMap<Vec<u8>, (&[u8], String)> =
            std::collections::HashMap::new();
        for ns in &valid {
            for (key, what) in all_keys(ns, &parts) {
                if let Some((other, other_what)) = owner.get(&key) {
                    panic!(
                        "{:?} is {} of {:?} and {} of {:?}",
                        String::from_utf8_lossy(&key),
                        other_what,
                        String::from_utf8_lossy(other),
                        what,
                        String::from_utf8_lossy(ns)
                    );
                }
                // The owner is recoverable: the part before the first dot.
                let cut = key.iter().position(|&b| b == b'.').unwrap_or(key.len());
                assert_eq!(&key[..cut], ns.as_slice());
                owner.insert(key, (ns.as_slice(), what));
            }
        }
        // Without the rule the overlaps happen.
        let a = all_keys(b"{a}", &[b"last_version"]);
        let b = all_keys(b"{a}.lease", &[b"x"]);
        assert!(a.iter().any(|(k, _)| b.iter().any(|(l, _)| l == k)));
        assert!(check_namespace(b"{a}.lease").is_err());
        assert!(check_namespace(b"").is_err());
        assert!(check_namespace(b"{a}.changes.X")
            .unwrap_err()
            .to_string()
            .starts_with("ERR namespace must not contain '.'"));
    }

    #[test]
    fn hash_tags() {
        assert!(has_hash_tag(b"{a}"));
        assert!(has_hash_tag(b"x{ab}y"));
        assert!(!has_hash_tag(b"{}"));
        assert!(!has_hash_tag(b"{}a}"));
        assert!(!has_hash_tag(b"abc"));
        assert!(!has_hash_tag(b"{abc"));
    }
}
