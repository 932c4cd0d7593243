//! Key names of one namespace (SPEC section 1): `<ns>` + suffix.

use std::cell::OnceCell;

/// The key names of one namespace, each built on first use and kept for
/// the rest of the command.
#[derive(Debug, Clone)]
pub struct Keys {
    ns: Vec<u8>,
    server_version: OnceCell<Vec<u8>>,
    last_version: OnceCell<Vec<u8>>,
    last_version_ch: OnceCell<Vec<u8>>,
    records: OnceCell<Vec<u8>>,
    changes: OnceCell<Vec<u8>>,
    options: OnceCell<Vec<u8>>,
    record_types: OnceCell<Vec<u8>>,
}

impl PartialEq for Keys {
    fn eq(&self, other: &Self) -> bool {
        self.ns == other.ns
    }
}

impl Eq for Keys {}

fn join(ns: &[u8], suffix: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(ns.len() + suffix.len());
    k.extend_from_slice(ns);
    k.extend_from_slice(suffix);
    k
}

impl Keys {
    /// Keys of namespace `ns` (binary-safe).
    pub fn new(ns: &[u8]) -> Self {
        Keys {
            ns: ns.to_vec(),
            server_version: OnceCell::new(),
            last_version: OnceCell::new(),
            last_version_ch: OnceCell::new(),
            records: OnceCell::new(),
            changes: OnceCell::new(),
            options: OnceCell::new(),
            record_types: OnceCell::new(),
        }
    }

    fn name<'a>(&'a self, cell: &'a OnceCell<Vec<u8>>, suffix: &[u8]) -> &'a [u8] {
        cell.get_or_init(|| join(&self.ns, suffix))
    }

    /// The namespace itself.
    pub fn ns(&self) -> &[u8] {
        &self.ns
    }

    /// `<ns>` itself: in cluster mode, the key every command names. Writes
    /// keep a small string there, so while the namespace's slot migrates,
    /// commands run where the data is (the source until this key has moved
    /// with the others, then the target) instead of being sent to an empty
    /// target with `ASK`.
    pub fn marker(&self) -> &[u8] {
        &self.ns
    }

    /// `<ns>.server_version` (string).
    pub fn server_version(&self) -> &[u8] {
        self.name(&self.server_version, b".server_version")
    }

    /// `<ns>.last_version` (string).
    pub fn last_version(&self) -> &[u8] {
        self.name(&self.last_version, b".last_version")
    }

    /// `<ns>.last_version_ch` (pub/sub channel).
    pub fn last_version_ch(&self) -> &[u8] {
        self.name(&self.last_version_ch, b".last_version_ch")
    }

    /// `<ns>.records` (hash `<type>/<id>` -> Record).
    pub fn records(&self) -> &[u8] {
        self.name(&self.records, b".records")
    }

    /// `<ns>.changes` (zset version -> Record).
    pub fn changes(&self) -> &[u8] {
        self.name(&self.changes, b".changes")
    }

    /// `<ns>.changes.<type>` (zset of live ids by modified_at).
    pub fn type_changes(&self, record_type: &[u8]) -> Vec<u8> {
        let mut k = join(&self.ns, b".changes.");
        k.extend_from_slice(record_type);
        k
    }

    /// `<ns>.options` (hash `<type>` -> Options).
    pub fn options(&self) -> &[u8] {
        self.name(&self.options, b".options")
    }

    /// `<ns>.lease.<name>` (string holding the lease id).
    pub fn lease(&self, name: &[u8]) -> Vec<u8> {
        let mut k = join(&self.ns, b".lease.");
        k.extend_from_slice(name);
        k
    }

    /// `<ns>.token.<token>` (string: a remembered write, with an expiry).
    pub fn token(&self, token: &[u8]) -> Vec<u8> {
        let mut k = join(&self.ns, b".token.");
        k.extend_from_slice(token);
        k
    }

    /// `<ns>.record_types` (set).
    pub fn record_types(&self) -> &[u8] {
        self.name(&self.record_types, b".record_types")
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
