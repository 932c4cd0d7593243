//! Records on the wire (SPEC section 2): building, encoding, decoding, and the
//! two reply formats.

use prost::Message;
use prost_types::{Any, Timestamp};

use crate::error::{DbError, DbResult};
use crate::pb::{Options, Record};
use crate::reply::Reply;

/// How a command replies with records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// A map of named fields (default, for people).
    #[default]
    Map,
    /// The stored protobuf bytes, unchanged (for clients).
    Proto,
}

/// Microseconds since the Unix epoch as a protobuf timestamp.
pub fn timestamp(us: i64) -> Timestamp {
    Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
    }
}

/// A protobuf timestamp as microseconds since the Unix epoch.
pub fn micros(ts: &Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(ts.nanos) / 1000)
}

/// The `changes.<type>` score of a modification time: seconds as a float
/// with a microsecond fraction (the Go backend's layout).
pub fn type_score(us: i64) -> f64 {
    us as f64 / 1e6
}

/// A live record as `DB.PUT` stores it.
pub fn new_record(version: u64, rtype: &str, id: &str, payload: &[u8], now_us: i64) -> Record {
    Record {
        version,
        r#type: rtype.to_string(),
        id: id.to_string(),
        data: Some(Any {
            type_url: rtype.to_string(),
            value: payload.to_vec(),
        }),
        modified_at: Some(timestamp(now_us)),
        deleted_at: None,
    }
}

/// A tombstone: the record's last data (if any) with a new version and
/// `modified_at = deleted_at = now`.
pub fn tombstone(version: u64, rtype: &str, id: &str, data: Option<Any>, now_us: i64) -> Record {
    Record {
        version,
        r#type: rtype.to_string(),
        id: id.to_string(),
        data,
        modified_at: Some(timestamp(now_us)),
        deleted_at: Some(timestamp(now_us)),
    }
}

/// One field of a protobuf message, as [`walk`] sees it.
enum Field<'a> {
    /// A varint (wire type 0).
    Varint(u64),
    /// A length-delimited value (wire type 2).
    Bytes(&'a [u8]),
    /// A fixed 32- or 64-bit value (skipped).
    Fixed,
}

fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        if shift == 63 && byte > 1 {
            return None; // more than 64 bits (prost refuses it too)
        }
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Visits the top-level fields of protobuf bytes without decoding (no
/// allocation); None when the bytes are not a well-formed message.
fn walk<'a>(bytes: &'a [u8], mut visit: impl FnMut(u64, Field<'a>)) -> Option<()> {
    let mut pos = 0;
    while pos < bytes.len() {
        let key = varint(bytes, &mut pos)?;
        if key > u64::from(u32::MAX) {
            return None;
        }
        let (field, wire) = (key >> 3, key & 7);
        let value = match wire {
            0 => Field::Varint(varint(bytes, &mut pos)?),
            1 => {
                pos = pos.checked_add(8)?;
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(varint(bytes, &mut pos)?).ok()?;
                let end = pos.checked_add(len)?;
                let val = bytes.get(pos..end)?;
                pos = end;
                Field::Bytes(val)
            }
            5 => {
                pos = pos.checked_add(4)?;
                Field::Fixed
            }
            _ => return None,
        };
        if field == 0 || pos > bytes.len() {
            return None;
        }
        visit(field, value);
    }
    Some(())
}

/// The `(type, id)` of stored record bytes, read without decoding the rest
/// (no allocation): fields 2 and 3 of the protobuf `Record`. None when the
/// bytes are not a well-formed protobuf message or the strings not UTF-8.
pub fn owner(bytes: &[u8]) -> Option<(&str, &str)> {
    let (mut rtype, mut id) = (Some(""), Some(""));
    walk(bytes, |field, value| match (field, value) {
        (2, Field::Bytes(v)) => rtype = std::str::from_utf8(v).ok(),
        (3, Field::Bytes(v)) => id = std::str::from_utf8(v).ok(),
        _ => {}
    })?;
    Some((rtype?, id?))
}

/// The `modified_at` of stored record bytes in microseconds, read without
/// decoding the rest: the change's *stamp*, which a `DB.SYNC` cursor carries
/// to detect a rolled-back namespace. None when absent or malformed.
pub fn stamp(bytes: &[u8]) -> Option<i64> {
    let mut ts = None;
    walk(bytes, |field, value| {
        if let (5, Field::Bytes(v)) = (field, value) {
            ts = Some(v);
        }
    })?;
    let (mut seconds, mut nanos) = (0i64, 0i32);
    walk(ts?, |field, value| match (field, value) {
        (1, Field::Varint(v)) => seconds = v as i64,
        (2, Field::Varint(v)) => nanos = v as i32,
        _ => {}
    })?;
    Some(micros(&Timestamp { seconds, nanos }))
}

/// Stored record bytes read in place, without decoding (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct View<'a> {
    /// Field 1.
    pub version: u64,
    /// Field 2.
    pub rtype: &'a str,
    /// Field 3.
    pub id: &'a str,
    /// The `value` of the `Any` in field 4, when the field is present.
    pub data: Option<&'a [u8]>,
    /// Field 5 in microseconds.
    pub modified_at: Option<i64>,
    /// Field 6 in microseconds.
    pub deleted_at: Option<i64>,
}

/// Reads `Timestamp` bytes into `ts` (merging, as protobuf does when the
/// field repeats); false when malformed.
fn merge_timestamp(bytes: &[u8], ts: &mut (i64, i32)) -> bool {
    let mut ok = true;
    let walked = walk(bytes, |field, value| match (field, value) {
        (1, Field::Varint(v)) => ts.0 = v as i64,
        (2, Field::Varint(v)) => ts.1 = v as i32,
        (1 | 2, _) => ok = false,
        _ => {}
    });
    ok && walked.is_some()
}

/// Reads `Any` bytes into `value` (merging); false when malformed.
fn merge_any<'a>(bytes: &'a [u8], value: &mut &'a [u8]) -> bool {
    let mut ok = true;
    let walked = walk(bytes, |field, v| match (field, v) {
        (1, Field::Bytes(url)) => ok &= std::str::from_utf8(url).is_ok(),
        (2, Field::Bytes(b)) => *value = b,
        (1 | 2, _) => ok = false,
        _ => {}
    });
    ok && walked.is_some()
}

/// Reads stored record bytes in place: the same values [`decode`] gives.
/// None when the bytes use an encoding this reader does not take (which
/// [`decode`] then judges: groups in unknown fields) or are malformed.
pub fn view(bytes: &[u8]) -> Option<View<'_>> {
    let mut v = View::default();
    // (seconds, nanos) of each timestamp, when present.
    let mut modified: Option<(i64, i32)> = None;
    let mut deleted: Option<(i64, i32)> = None;
    let mut ok = true;
    walk(bytes, |field, value| match (field, value) {
        (1, Field::Varint(x)) => v.version = x,
        (2, Field::Bytes(b)) => match std::str::from_utf8(b) {
            Ok(t) => v.rtype = t,
            Err(_) => ok = false,
        },
        (3, Field::Bytes(b)) => match std::str::from_utf8(b) {
            Ok(i) => v.id = i,
            Err(_) => ok = false,
        },
        (4, Field::Bytes(b)) => {
            let mut value = v.data.unwrap_or_default();
            ok &= merge_any(b, &mut value);
            v.data = Some(value);
        }
        (5, Field::Bytes(b)) => ok &= merge_timestamp(b, modified.get_or_insert((0, 0))),
        (6, Field::Bytes(b)) => ok &= merge_timestamp(b, deleted.get_or_insert((0, 0))),
        (1..=6, _) => ok = false,
        _ => {}
    })?;
    let us = |(seconds, nanos): (i64, i32)| micros(&Timestamp { seconds, nanos });
    v.modified_at = modified.map(us);
    v.deleted_at = deleted.map(us);
    ok.then_some(v)
}

/// The `MAP` format: type, id, version, modified_at, deleted_at, data.
pub fn view_reply(v: &View<'_>) -> Reply {
    let ts = |t: Option<i64>| t.map_or(Reply::Null, Reply::Int);
    Reply::Map(vec![
        (
            Reply::Name("type"),
            Reply::Bulk(v.rtype.as_bytes().to_vec()),
        ),
        (Reply::Name("id"), Reply::Bulk(v.id.as_bytes().to_vec())),
        (Reply::Name("version"), Reply::uint(v.version)),
        (Reply::Name("modified_at"), ts(v.modified_at)),
        (Reply::Name("deleted_at"), ts(v.deleted_at)),
        (
            Reply::Name("data"),
            v.data.map_or(Reply::Null, |d| Reply::Bulk(d.to_vec())),
        ),
    ])
}

/// Protobuf bytes of a record.
pub fn encode(record: &Record) -> Vec<u8> {
    record.encode_to_vec()
}

/// Decodes stored record bytes, naming `what` (a key and field) on failure.
pub fn decode(bytes: &[u8], what: impl FnOnce() -> String) -> DbResult<Record> {
    Record::decode(bytes)
        .map_err(|e| DbError::corrupt(format!("{} does not decode as a Record: {e}", what())))
}

/// Decodes stored options bytes.
pub fn decode_options(bytes: &[u8], what: impl FnOnce() -> String) -> DbResult<Options> {
    Options::decode(bytes)
        .map_err(|e| DbError::corrupt(format!("{} does not decode as Options: {e}", what())))
}

/// Stored record bytes in the requested format, if they belong to a record
/// that `keep(type, id)` accepts: `PROTO` only reads the owner (no decode)
/// and copies the bytes only when kept, `MAP` decodes. `what` names the
/// stored value for a `CORRUPT` error.
pub fn formatted<B: AsRef<[u8]> + Into<Vec<u8>>>(
    bytes: B,
    format: Format,
    keep: impl FnOnce(&str, &str) -> bool,
    what: impl FnOnce() -> String,
) -> DbResult<Option<Reply>> {
    match format {
        Format::Proto => {
            let Some((t, i)) = owner(bytes.as_ref()) else {
                return Err(DbError::corrupt(format!(
                    "{} does not decode as a Record",
                    what()
                )));
            };
            Ok(keep(t, i).then(|| Reply::Bulk(bytes.into())))
        }
        Format::Map => match view(bytes.as_ref()) {
            // Read in place; the rare encodings the view does not take are decoded.
            Some(v) => Ok(keep(v.rtype, v.id).then(|| view_reply(&v))),
            None => {
                let rec = decode(bytes.as_ref(), what)?;
                Ok(keep(&rec.r#type, &rec.id).then(|| map_reply(rec)))
            }
        },
    }
}

/// The `MAP` format of a decoded record (see [`view_reply`]).
pub fn map_reply(record: Record) -> Reply {
    view_reply(&View {
        version: record.version,
        rtype: &record.r#type,
        id: &record.id,
        data: record.data.as_ref().map(|d| d.value.as_slice()),
        modified_at: record.modified_at.as_ref().map(micros),
        deleted_at: record.deleted_at.as_ref().map(micros),
    })
}

/// Printable form of a binary key or field for error messages.
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-place view reads exactly what prost decodes, on valid records
    /// and on thousands of mutated ones (flipped bytes, cuts, junk appended,
    /// repeated fields).
    #[test]
    fn view_agrees_with_prost() {
        let mut seeds = vec![
            encode(&new_record(7, "t", "a", b"payload", 1_732_563_189_123_456)),
            encode(&tombstone(1 << 53, "type/x", "\u{e9}", None, -1)),
            encode(&tombstone(
                3,
                "t",
                "b",
                Some(Any {
                    type_url: "t".into(),
                    value: vec![0, 1, 2],
                }),
                5,
            )),
            encode(&Record::default()),
        ];
        // Repeated message fields merge; repeated scalars: the last wins.
        let twice = [seeds[0].clone(), seeds[2].clone()].concat();
        seeds.push(twice);
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut inputs = seeds.clone();
        for _ in 0..5000 {
            let mut b = seeds[next() as usize % seeds.len()].clone();
            for _ in 0..1 + next() % 3 {
                match next() % 4 {
                    0 if !b.is_empty() => {
                        let i = next() as usize % b.len();
                        b[i] = next() as u8;
                    }
                    1 if !b.is_empty() => b.truncate(next() as usize % b.len()),
                    2 => b.extend((0..next() % 12).map(|_| next() as u8)),
                    _ => b.extend_from_slice(&[0xff; 10][..next() as usize % 11]),
                }
            }
            inputs.push(b);
        }
        let mut viewed = 0;
        for b in &inputs {
            let Some(v) = view(b) else { continue };
            viewed += 1;
            let rec = Record::decode(b.as_slice())
                .unwrap_or_else(|e| panic!("view took {b:?}, prost refused: {e}"));
            assert_eq!(view_reply(&v), map_reply(rec), "{b:?}");
        }
        assert!(viewed > 100, "{viewed}");
    }

    #[test]
    fn timestamps_round_trip() {
        for us in [
            0i64,
            1,
            999_999,
            1_000_000,
            1_732_563_189_123_456,
            -1,
            -1_000_001,
        ] {
            assert_eq!(micros(&timestamp(us)), us);
        }
        assert_eq!(
            timestamp(1_500_000),
            Timestamp {
                seconds: 1,
                nanos: 500_000_000
            }
        );
    }

    #[test]
    fn record_encoding_round_trips() {
        let r = new_record(7, "t", "i\0d", b"\x00\xffpayload", 1_700_000_000_000_001);
        let back = decode(&encode(&r), || "x".into()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.data.unwrap().type_url, "t");
    }

    #[test]
    fn owner_matches_full_decode() {
        let r = new_record(u64::MAX, "type/x", "i\0d", &[7u8; 300], -5);
        let bytes = encode(&r);
        assert_eq!(owner(&bytes), Some(("type/x", "i\0d")));
        let t = tombstone(1, "t", "i", None, 1);
        assert_eq!(owner(&encode(&t)), Some(("t", "i")));
        assert_eq!(owner(b""), Some(("", "")));
        // Every truncation either fails or agrees with prost.
        for cut in 0..bytes.len() {
            let part = &bytes[..cut];
            if let Some((t, i)) = owner(part) {
                if let Ok(full) = Record::decode(part) {
                    assert_eq!((full.r#type.as_str(), full.id.as_str()), (t, i));
                }
            }
        }
        assert_eq!(owner(b"\xff\xff\xff"), None);
        assert_eq!(owner(b"\x12\x05ab"), None, "length past the end");
    }

    #[test]
    fn stamp_matches_full_decode() {
        for us in [1_700_000_000_000_001i64, 0, 5, -1_000_001, 1_000_000] {
            let r = new_record(9, "t", "i", b"payload", us);
            assert_eq!(stamp(&encode(&r)), Some(us));
            let t = tombstone(9, "t", "i", r.data.clone(), us);
            assert_eq!(stamp(&encode(&t)), Some(us));
        }
        let mut r = new_record(9, "t", "i", b"p", 7);
        r.modified_at = None;
        assert_eq!(stamp(&encode(&r)), None);
        assert_eq!(stamp(b"\xff\xff"), None);
    }

    #[test]
    fn garbage_is_corrupt() {
        let e = decode(b"\xff\xff\xff", || "k f".into()).unwrap_err();
        assert_eq!(e.code(), "CORRUPT");
        assert!(e.to_string().contains("k f"));
    }

    #[test]
    fn map_format_fields_in_order() {
        let r = tombstone(3, "t", "i", None, 5);
        let Reply::Map(m) = map_reply(r) else {
            panic!()
        };
        let names: Vec<&[u8]> = m.iter().filter_map(|(k, _)| k.as_bytes()).collect();
        assert_eq!(
            names,
            ["type", "id", "version", "modified_at", "deleted_at", "data"].map(str::as_bytes)
        );
        assert_eq!(m[4].1, Reply::Int(5));
        assert_eq!(m[5].1, Reply::Null);
    }
}
