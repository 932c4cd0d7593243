//! The seam between command logic and Redis: every read and write a command
//! makes. The module implements it over the Redis module API (each write is
//! applied and propagated to replicas/AOF as the equivalent native command);
//! [`crate::memstore::MemoryStore`] implements it for unit tests.

/// What a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The key does not exist.
    Missing,
    /// A string.
    String,
    /// A hash.
    Hash,
    /// A sorted set.
    ZSet,
    /// A set.
    Set,
    /// A list, stream or module type.
    Other,
}

/// A sorted-set score bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// Score >= value.
    Incl(f64),
    /// Score > value.
    Excl(f64),
}

impl Bound {
    /// True when `score` is on the inner side of this lower bound.
    pub fn admits(self, score: f64) -> bool {
        match self {
            Bound::Incl(b) => score >= b,
            Bound::Excl(b) => score > b,
        }
    }
}

/// Reads and writes of one command. Keys, fields and members are binary.
/// Writes are deterministic effects: the implementation may replicate each
/// one verbatim as the named native command.
pub trait Store {
    /// What `key` holds.
    fn kind(&mut self, key: &[u8]) -> KeyKind;
    /// `GET key`.
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>>;
    /// `HGET key field`.
    fn hget(&mut self, key: &[u8], field: &[u8]) -> Option<Vec<u8>>;
    /// `HSCAN key cursor COUNT count`: calls `visit(field, value)` for each
    /// pair (borrowed, no copies) and returns the next cursor (0 at the end).
    fn hscan(
        &mut self,
        key: &[u8],
        cursor: u64,
        count: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> u64;
    /// `ZSCAN key cursor COUNT count`: calls `visit(member, score)` for each
    /// member and returns the next cursor (0 at the end).
    fn zscan(
        &mut self,
        key: &[u8],
        cursor: u64,
        count: usize,
        visit: &mut dyn FnMut(&[u8], f64),
    ) -> u64;
    /// `ZCARD key`.
    fn zcard(&mut self, key: &[u8]) -> u64;
    /// `ZSCORE key member`.
    fn zscore(&mut self, key: &[u8], member: &[u8]) -> Option<f64>;
    /// Up to `limit` members with score from `min` upward, ascending by
    /// (score, member): `ZRANGE key min +inf BYSCORE LIMIT 0 limit WITHSCORES`.
    fn zrange_from(&mut self, key: &[u8], min: Bound, limit: usize) -> Vec<(Vec<u8>, f64)>;
    /// The member with the highest score (ties: the greatest member):
    /// `ZRANGE key +inf -inf BYSCORE REV LIMIT 0 1 WITHSCORES`.
    fn zlast(&mut self, key: &[u8]) -> Option<(Vec<u8>, f64)>;
    /// `GET key`, lending the value to `visit` (no copy where the
    /// implementation can avoid one); false when there is none.
    fn get_with(&mut self, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> bool {
        match self.get(key) {
            Some(v) => {
                visit(&v);
                true
            }
            None => false,
        }
    }
    /// `HGET key field`, lending the value to `visit` (no copy where the
    /// implementation can avoid one); false when there is none.
    fn hget_with(&mut self, key: &[u8], field: &[u8], visit: &mut dyn FnMut(&[u8])) -> bool {
        match self.hget(key, field) {
            Some(v) => {
                visit(&v);
                true
            }
            None => false,
        }
    }
    /// [`Store::zlast`], lending the member to `visit`; false when empty.
    fn zlast_with(&mut self, key: &[u8], visit: &mut dyn FnMut(&[u8], f64)) -> bool {
        match self.zlast(key) {
            Some((m, score)) => {
                visit(&m, score);
                true
            }
            None => false,
        }
    }
    /// `SMEMBERS key`, in any order.
    fn smembers(&mut self, key: &[u8]) -> Vec<Vec<u8>>;
    /// `SISMEMBER key member`.
    fn sismember(&mut self, key: &[u8], member: &[u8]) -> bool;

    /// `SET key value`.
    fn set(&mut self, key: &[u8], value: &[u8]);
    /// `SET key value PXAT at_ms` (the key expires at that Unix time in ms).
    fn set_px_at(&mut self, key: &[u8], value: &[u8], at_ms: i64);
    /// `DEL key`.
    fn del(&mut self, key: &[u8]);
    /// `HSET key field value [field value ...]`.
    fn hset(&mut self, key: &[u8], pairs: &[(&[u8], &[u8])]);
    /// `HDEL key field [field ...]`.
    fn hdel(&mut self, key: &[u8], fields: &[&[u8]]);
    /// `ZADD key score member [score member ...]`.
    fn zadd(&mut self, key: &[u8], pairs: &[(f64, &[u8])]);
    /// `ZREM key member [member ...]`.
    fn zrem(&mut self, key: &[u8], members: &[&[u8]]);
    /// `SADD key member [member ...]`.
    fn sadd(&mut self, key: &[u8], members: &[&[u8]]);

    /// `PUBLISH channel message` (to replicas too, not to the AOF).
    fn publish(&mut self, channel: &[u8], message: &[u8]);
    /// Emits keyspace event `event` for `key`.
    fn notify(&mut self, event: &str, key: &[u8]);
    /// Wakes clients blocked on `key`.
    fn signal_ready(&mut self, key: &[u8]);
}
