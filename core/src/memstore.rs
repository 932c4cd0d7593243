//! An in-memory [`Store`] with Redis semantics, for unit tests of the command
//! logic (and of the client's pure helpers) without a server.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::store::{Bound, KeyKind, Store};

/// One key's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (with an optional expiry in Unix ms, never enforced here).
    Str(Vec<u8>, Option<i64>),
    /// A hash.
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    /// A sorted set: member -> score.
    ZSet(HashMap<Vec<u8>, f64>),
    /// A set.
    Set(BTreeSet<Vec<u8>>),
    /// Any other type (to test WRONGTYPE).
    Other,
}

/// Keys in memory, plus a log of the writes, publishes and events a command made.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    /// The keyspace.
    pub keys: BTreeMap<Vec<u8>, Value>,
    /// Every write, as the native command name and first key.
    pub writes: Vec<(String, Vec<u8>)>,
    /// Every publish: (channel, message).
    pub published: Vec<(Vec<u8>, Vec<u8>)>,
    /// Every keyspace event: (event, key).
    pub events: Vec<(String, Vec<u8>)>,
    /// Every key signalled as ready.
    pub signalled: Vec<Vec<u8>>,
}

impl MemoryStore {
    /// An empty keyspace.
    pub fn new() -> Self {
        Self::default()
    }

    fn log(&mut self, cmd: &str, key: &[u8]) {
        self.writes.push((cmd.to_string(), key.to_vec()));
    }

    fn sorted(&self, key: &[u8]) -> Vec<(Vec<u8>, f64)> {
        let mut v: Vec<(Vec<u8>, f64)> = match self.keys.get(key) {
            Some(Value::ZSet(z)) => z.iter().map(|(m, s)| (m.clone(), *s)).collect(),
            _ => Vec::new(),
        };
        v.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        v
    }

    fn drop_if_empty(&mut self, key: &[u8]) {
        let empty = match self.keys.get(key) {
            Some(Value::Hash(h)) => h.is_empty(),
            Some(Value::ZSet(z)) => z.is_empty(),
            Some(Value::Set(s)) => s.is_empty(),
            _ => false,
        };
        if empty {
            self.keys.remove(key);
        }
    }
}

impl MemoryStore {
    /// `HLEN key`, for tests.
    pub fn hlen(&self, key: &[u8]) -> u64 {
        match self.keys.get(key) {
            Some(Value::Hash(h)) => h.len() as u64,
            _ => 0,
        }
    }
}

impl Store for MemoryStore {
    fn kind(&mut self, key: &[u8]) -> KeyKind {
        match self.keys.get(key) {
            None => KeyKind::Missing,
            Some(Value::Str(..)) => KeyKind::String,
            Some(Value::Hash(_)) => KeyKind::Hash,
            Some(Value::ZSet(_)) => KeyKind::ZSet,
            Some(Value::Set(_)) => KeyKind::Set,
            Some(Value::Other) => KeyKind::Other,
        }
    }

    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        match self.keys.get(key) {
            Some(Value::Str(v, _)) => Some(v.clone()),
            _ => None,
        }
    }

    fn hget(&mut self, key: &[u8], field: &[u8]) -> Option<Vec<u8>> {
        match self.keys.get(key) {
            Some(Value::Hash(h)) => h.get(field).cloned(),
            _ => None,
        }
    }

    fn hscan(
        &mut self,
        key: &[u8],
        cursor: u64,
        count: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> u64 {
        // The cursor is a position in field order; stable while nothing changes.
        let Some(Value::Hash(h)) = self.keys.get(key) else {
            return 0;
        };
        let mut seen = 0;
        for (f, v) in h.iter().skip(cursor as usize).take(count.max(1)) {
            visit(f, v);
            seen += 1;
        }
        let next = cursor + seen;
        if next as usize >= h.len() {
            0
        } else {
            next
        }
    }

    fn zscan(
        &mut self,
        key: &[u8],
        cursor: u64,
        count: usize,
        visit: &mut dyn FnMut(&[u8], f64),
    ) -> u64 {
        // Position in member order; stable while nothing changes.
        let mut members: Vec<(&Vec<u8>, f64)> = match self.keys.get(key) {
            Some(Value::ZSet(z)) => z.iter().map(|(m, s)| (m, *s)).collect(),
            _ => return 0,
        };
        members.sort_by(|a, b| a.0.cmp(b.0));
        let mut seen = 0;
        for (m, s) in members.iter().skip(cursor as usize).take(count.max(1)) {
            visit(m, *s);
            seen += 1;
        }
        let next = cursor + seen;
        if next as usize >= members.len() {
            0
        } else {
            next
        }
    }

    fn zcard(&mut self, key: &[u8]) -> u64 {
        match self.keys.get(key) {
            Some(Value::ZSet(z)) => z.len() as u64,
            _ => 0,
        }
    }

    fn zscore(&mut self, key: &[u8], member: &[u8]) -> Option<f64> {
        match self.keys.get(key) {
            Some(Value::ZSet(z)) => z.get(member).copied(),
            _ => None,
        }
    }

    fn zrange_from(&mut self, key: &[u8], min: Bound, limit: usize) -> Vec<(Vec<u8>, f64)> {
        self.sorted(key)
            .into_iter()
            .filter(|(_, s)| min.admits(*s))
            .take(limit)
            .collect()
    }

    fn zlast(&mut self, key: &[u8]) -> Option<(Vec<u8>, f64)> {
        self.sorted(key).pop()
    }

    fn smembers(&mut self, key: &[u8]) -> Vec<Vec<u8>> {
        match self.keys.get(key) {
            Some(Value::Set(s)) => s.iter().cloned().collect(),
            _ => Vec::new(),
        }
    }

    fn sismember(&mut self, key: &[u8], member: &[u8]) -> bool {
        matches!(self.keys.get(key), Some(Value::Set(s)) if s.contains(member))
    }

    fn set(&mut self, key: &[u8], value: &[u8]) {
        self.log("SET", key);
        self.keys
            .insert(key.to_vec(), Value::Str(value.to_vec(), None));
    }

    fn set_px_at(&mut self, key: &[u8], value: &[u8], at_ms: i64) {
        self.log("SET", key);
        self.keys
            .insert(key.to_vec(), Value::Str(value.to_vec(), Some(at_ms)));
    }

    fn del(&mut self, key: &[u8]) {
        self.log("DEL", key);
        self.keys.remove(key);
    }

    fn hset(&mut self, key: &[u8], pairs: &[(&[u8], &[u8])]) {
        self.log("HSET", key);
        let e = self
            .keys
            .entry(key.to_vec())
            .or_insert_with(|| Value::Hash(BTreeMap::new()));
        if let Value::Hash(h) = e {
            for (f, v) in pairs {
                h.insert(f.to_vec(), v.to_vec());
            }
        }
    }

    fn hdel(&mut self, key: &[u8], fields: &[&[u8]]) {
        self.log("HDEL", key);
        if let Some(Value::Hash(h)) = self.keys.get_mut(key) {
            for f in fields {
                h.remove(*f);
            }
        }
        self.drop_if_empty(key);
    }

    fn zadd(&mut self, key: &[u8], pairs: &[(f64, &[u8])]) {
        self.log("ZADD", key);
        let e = self
            .keys
            .entry(key.to_vec())
            .or_insert_with(|| Value::ZSet(HashMap::new()));
        if let Value::ZSet(z) = e {
            for (s, m) in pairs {
                z.insert(m.to_vec(), *s);
            }
        }
    }

    fn zrem(&mut self, key: &[u8], members: &[&[u8]]) {
        self.log("ZREM", key);
        if let Some(Value::ZSet(z)) = self.keys.get_mut(key) {
            for m in members {
                z.remove(*m);
            }
        }
        self.drop_if_empty(key);
    }

    fn sadd(&mut self, key: &[u8], members: &[&[u8]]) {
        self.log("SADD", key);
        let e = self
            .keys
            .entry(key.to_vec())
            .or_insert_with(|| Value::Set(BTreeSet::new()));
        if let Value::Set(s) = e {
            for m in members {
                s.insert(m.to_vec());
            }
        }
    }

    fn publish(&mut self, channel: &[u8], message: &[u8]) {
        self.published.push((channel.to_vec(), message.to_vec()));
    }

    fn notify(&mut self, event: &str, key: &[u8]) {
        self.events.push((event.to_string(), key.to_vec()));
    }

    fn signal_ready(&mut self, key: &[u8]) {
        self.signalled.push(key.to_vec());
    }
}
