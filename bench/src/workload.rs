//! What each contender sends for "write `b` records": `DB.PUT`, plain `HSET`,
//! the Lua script, and the Go-style WATCH/MULTI transaction (the seed's
//! algorithm, as Pomerium's Go backend runs it).

/// Record type used everywhere.
pub const TYPE: &str = "t";

/// The 256-byte payload (printable, so it can go on a command line).
pub fn payload() -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..256)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            b'!' + (x % 94) as u8
        })
        .collect()
}

/// The Lua baseline: the same effects as `DB.PUT` for one record type. It
/// builds the protobuf `Record` itself (varints and length-delimited fields,
/// byte-identical to the module's encoding) from the raw payload, reads the
/// clock with TIME, and skips the module's validation reads (key types, the
/// stored record's type/id, the type's options), which favors it.
///
/// KEYS: server_version, last_version, records, changes, changes.<type>, record_types.
/// ARGV: channel, type, id1, payload1, id2, payload2, ...
pub const LUA_PUT: &str = r#"
local function varint(n)
  local t = {}
  while n >= 128 do
    t[#t + 1] = string.char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  t[#t + 1] = string.char(n)
  return table.concat(t)
end
local function ld(tag, s) return string.char(tag) .. varint(#s) .. s end
local sv = redis.call('GET', KEYS[1])
if not sv then
  sv = string.format('%.0f', math.random(1, 2147483647) * 4194304 + math.random(0, 4194303))
  redis.call('SET', KEYS[1], sv)
end
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local now = redis.call('TIME')
local secs, micros = tonumber(now[1]), tonumber(now[2])
local ts = string.char(0x08) .. varint(secs)
if micros > 0 then ts = ts .. string.char(0x10) .. varint(micros * 1000) end
local rtype = ARGV[2]
local tail = ld(0x2a, ts)
local score = string.format('%d.%06d', secs, micros)
local n = (#ARGV - 2) / 2
local hs, zc, zt, versions = {}, {}, {}, {}
for i = 1, n do
  local id, payload = ARGV[1 + 2 * i], ARGV[2 + 2 * i]
  local v = last + i
  local rec = string.char(0x08) .. varint(v) .. ld(0x12, rtype) .. ld(0x1a, id)
    .. ld(0x22, ld(0x0a, rtype) .. ld(0x12, payload)) .. tail
  hs[#hs + 1] = rtype .. '/' .. id
  hs[#hs + 1] = rec
  zc[#zc + 1] = v
  zc[#zc + 1] = rec
  zt[#zt + 1] = score
  zt[#zt + 1] = id
  versions[i] = v
end
redis.call('HSET', KEYS[3], unpack(hs))
redis.call('ZADD', KEYS[4], unpack(zc))
redis.call('ZADD', KEYS[5], unpack(zt))
redis.call('SADD', KEYS[6], rtype)
local lv = string.format('%.0f', last + n)
redis.call('SET', KEYS[2], lv)
redis.call('PUBLISH', ARGV[1], lv)
return {sv, secs * 1000000 + micros, versions}
"#;

/// The keys of namespace `ns` the Lua script takes, in order.
pub fn lua_keys(ns: &str) -> Vec<String> {
    vec![
        format!("{ns}.server_version"),
        format!("{ns}.last_version"),
        format!("{ns}.records"),
        format!("{ns}.changes"),
        format!("{ns}.changes.{TYPE}"),
        format!("{ns}.record_types"),
    ]
}

/// `EVALSHA` arguments writing `ids` with `payload` (without the command name).
pub fn lua_args(sha: &str, ns: &str, ids: &[String], payload: &[u8]) -> Vec<Vec<u8>> {
    let mut a: Vec<Vec<u8>> = vec![sha.into(), lua_keys(ns).len().to_string().into()];
    a.extend(lua_keys(ns).into_iter().map(String::into_bytes));
    a.push(format!("{ns}.last_version_ch").into_bytes());
    a.push(TYPE.into());
    for id in ids {
        a.push(id.clone().into_bytes());
        a.push(payload.to_vec());
    }
    a
}

/// `DB.PUT` arguments (with the command name).
pub fn put_args(ns: &str, ids: &[String], payload: &[u8]) -> Vec<Vec<u8>> {
    let mut a: Vec<Vec<u8>> = vec![b"DB.PUT".to_vec(), ns.into()];
    for id in ids {
        a.push(TYPE.into());
        a.push(id.clone().into_bytes());
        a.push(payload.to_vec());
    }
    a
}

/// The second round trip of the Go-style client: `MULTI`, per record
/// `HSET records`, `ZADD changes.<type>`, `ZADD changes`, then `SADD
/// record_types`, `SET last_version`, `PUBLISH`, `EXEC`. Returns the encoded
/// bytes and how many replies to read (the last is EXEC's: nil on conflict).
pub fn go_style_exec(
    ns: &str,
    first_version: u64,
    ids: &[String],
    payload: &[u8],
    now_us: i64,
) -> (Vec<u8>, usize) {
    use crate::resp::encode_into;
    let mut out = Vec::with_capacity(ids.len() * 800 + 256);
    encode_into(&mut out, &[b"MULTI"]);
    let records = format!("{ns}.records");
    let type_changes = format!("{ns}.changes.{TYPE}");
    let changes = format!("{ns}.changes");
    let score = type_score(now_us).to_string();
    for (i, id) in ids.iter().enumerate() {
        let v = first_version + i as u64;
        let bytes = encode_record(v, TYPE, id, payload, now_us);
        let field = format!("{TYPE}/{id}");
        encode_into(
            &mut out,
            &[b"HSET", records.as_bytes(), field.as_bytes(), &bytes],
        );
        encode_into(
            &mut out,
            &[
                b"ZADD",
                type_changes.as_bytes(),
                score.as_bytes(),
                id.as_bytes(),
            ],
        );
        encode_into(
            &mut out,
            &[
                b"ZADD",
                changes.as_bytes(),
                v.to_string().as_bytes(),
                &bytes,
            ],
        );
    }
    let last = (first_version + ids.len() as u64 - 1).to_string();
    encode_into(
        &mut out,
        &[
            b"SADD",
            format!("{ns}.record_types").as_bytes(),
            TYPE.as_bytes(),
        ],
    );
    encode_into(
        &mut out,
        &[
            b"SET",
            format!("{ns}.last_version").as_bytes(),
            last.as_bytes(),
        ],
    );
    encode_into(
        &mut out,
        &[
            b"PUBLISH",
            format!("{ns}.last_version_ch").as_bytes(),
            last.as_bytes(),
        ],
    );
    encode_into(&mut out, &[b"EXEC"]);
    (out, 3 * ids.len() + 5)
}

/// The native floor of a put of `ids`: the commands a client runs for the
/// same layout effects without a transaction, pipelined in one write: per
/// record `HSET records`, `ZADD changes.<type>`, `ZADD changes`, then `SET
/// last_version` and `PUBLISH` (`SADD record_types` only matters for a new
/// type and is left out). Returns the encoded bytes and the reply count.
pub fn native_floor(
    ns: &str,
    first_version: u64,
    ids: &[String],
    payload: &[u8],
    now_us: i64,
) -> (Vec<u8>, usize) {
    let (multi, n) = go_style_exec(ns, first_version, ids, payload, now_us);
    let mut out = Vec::with_capacity(multi.len());
    let mut rest = &multi[..];
    // Copy every command but MULTI, SADD and EXEC.
    while !rest.is_empty() {
        let end = command_len(rest);
        let cmd = &rest[..end];
        let skip = [&b"MULTI"[..], b"SADD", b"EXEC"]
            .iter()
            .any(|name| name_is(cmd, name));
        if !skip {
            out.extend_from_slice(cmd);
        }
        rest = &rest[end..];
    }
    (out, n - 3)
}

/// True when the RESP command `cmd` is `name`.
fn name_is(cmd: &[u8], name: &[u8]) -> bool {
    let Some(first) = cmd.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    let head = format!("${}\r\n", name.len());
    cmd[first + 2..].starts_with(head.as_bytes())
        && cmd[first + 2 + head.len()..].starts_with(name)
        && cmd[first + 2 + head.len() + name.len()..].starts_with(b"\r\n")
}

/// Length of the first RESP command (an array of bulk strings) in `b`.
fn command_len(b: &[u8]) -> usize {
    let line = |at: usize| -> (usize, usize) {
        let end = at + b[at..].windows(2).position(|w| w == b"\r\n").expect("CRLF");
        let n: usize = std::str::from_utf8(&b[at + 1..end])
            .expect("utf8")
            .parse()
            .expect("len");
        (n, end + 2)
    };
    let (items, mut at) = line(0);
    for _ in 0..items {
        let (len, data) = line(at);
        at = data + len + 2;
    }
    at
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The protobuf `databroker.Record` a put stores (what the Go backend builds
/// with `proto.Marshal`): version, type, id, `Any{type_url: type, value:
/// payload}`, modified_at. Encoded here, independently of the module's code;
/// the equivalence check at start-up confirms the module reads it.
pub fn encode_record(version: u64, rtype: &str, id: &str, payload: &[u8], now_us: i64) -> Vec<u8> {
    let mut any = Vec::with_capacity(payload.len() + rtype.len() + 8);
    field(&mut any, 0x0a, rtype.as_bytes());
    field(&mut any, 0x12, payload);
    let mut ts = Vec::with_capacity(16);
    let (secs, micros) = (now_us.div_euclid(1_000_000), now_us.rem_euclid(1_000_000));
    if secs != 0 {
        ts.push(0x08);
        varint(&mut ts, secs as u64);
    }
    if micros != 0 {
        ts.push(0x10);
        varint(&mut ts, (micros * 1000) as u64);
    }
    let mut out = Vec::with_capacity(any.len() + id.len() + rtype.len() + 32);
    out.push(0x08);
    varint(&mut out, version);
    field(&mut out, 0x12, rtype.as_bytes());
    field(&mut out, 0x1a, id.as_bytes());
    field(&mut out, 0x22, &any);
    field(&mut out, 0x2a, &ts);
    out
}

/// The `changes.<type>` score: seconds with a microsecond fraction.
pub fn type_score(now_us: i64) -> f64 {
    now_us as f64 / 1e6
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    crate::resp::now_ns() / 1000
}

/// A small, fast per-client random generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (seed 0 is remapped).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next value below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }

    /// `b` random ids `id:<12 digits>` below 100000 (redis-benchmark's `-r 100000` format).
    pub fn ids(&mut self, b: usize) -> Vec<String> {
        (0..b)
            .map(|_| format!("id:{:012}", self.below(100_000)))
            .collect()
    }
}
