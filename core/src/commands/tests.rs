//! Unit tests of the command logic against the in-memory store.

use super::*;
use crate::keys::Keys;
use crate::memstore::MemoryStore;
use crate::pb::Record;
use crate::record::decode;
use crate::reply::Reply;
use crate::store::Store;

const NS: &[u8] = b"{t}";

fn argv<'a>(a: &'a [&'a str]) -> Vec<&'a [u8]> {
    a.iter().map(|s| s.as_bytes()).collect()
}

fn put(s: &mut MemoryStore, now: i64, a: &[&str]) -> DbResult<Reply> {
    let mut v: Vec<&[u8]> = vec![NS];
    v.extend(argv(a));
    put::run(s, Env::at(now), &v).map(|(r, _)| r)
}

fn del(s: &mut MemoryStore, now: i64, a: &[&str]) -> DbResult<Reply> {
    let mut v: Vec<&[u8]> = vec![NS];
    v.extend(argv(a));
    delete::run(s, Env::at(now), &v).map(|(r, _)| r)
}

fn versions_of(r: &Reply) -> Vec<i64> {
    r.as_array().unwrap()[2]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_int().unwrap())
        .collect()
}

fn changes(s: &mut MemoryStore) -> Vec<Record> {
    let k = Keys::new(NS).changes().to_vec();
    s.zrange_from(&k, crate::store::Bound::Incl(f64::NEG_INFINITY), usize::MAX)
        .into_iter()
        .map(|(m, _)| decode(&m, String::new).unwrap())
        .collect()
}

fn live_ids(s: &mut MemoryStore, t: &str) -> Vec<String> {
    let k = Keys::new(NS).type_changes(t.as_bytes());
    s.zrange_from(&k, crate::store::Bound::Incl(f64::NEG_INFINITY), usize::MAX)
        .into_iter()
        .map(|(m, _)| String::from_utf8(m).unwrap())
        .collect()
}

#[test]
fn put_issues_gapless_versions_and_one_clock_reading() {
    let mut s = MemoryStore::new();
    let r = put(&mut s, 1_000_000, &["t", "a", "x", "t", "b", "y"]).unwrap();
    assert_eq!(versions_of(&r), [1, 2]);
    let sv = r.as_array().unwrap()[0].as_int().unwrap();
    assert!(sv > 0);
    assert_eq!(r.as_array().unwrap()[1], Reply::Int(1_000_000));
    let r = put(&mut s, 2_000_000, &["u", "a", "z"]).unwrap();
    assert_eq!(versions_of(&r), [3]);
    assert_eq!(
        r.as_array().unwrap()[0].as_int().unwrap(),
        sv,
        "server_version never changes"
    );
    let ch = changes(&mut s);
    assert_eq!(ch.iter().map(|r| r.version).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(s.get(Keys::new(NS).last_version()), Some(b"3".to_vec()));
    assert_eq!(s.published.last().unwrap().1, b"3");
    assert_eq!(
        s.smembers(Keys::new(NS).record_types()),
        [b"t".to_vec(), b"u".to_vec()]
    );
}

#[test]
fn get_both_formats() {
    let mut s = MemoryStore::new();
    put(&mut s, 5, &["t", "a\0b", "payload"]).unwrap();
    let r = get::run(&mut s, &[NS, b"t", b"a\0b"]).unwrap();
    let Reply::Map(m) = r else { panic!() };
    assert_eq!(m[1].1, Reply::Bulk(b"a\0b".to_vec()));
    assert_eq!(m[5].1, Reply::Bulk(b"payload".to_vec()));
    let Reply::Bulk(b) = get::run(&mut s, &[NS, b"t", b"a\0b", b"format", b"proto"]).unwrap()
    else {
        panic!()
    };
    assert_eq!(decode(&b, String::new).unwrap().version, 1);
    assert_eq!(get::run(&mut s, &[NS, b"t", b"zz"]).unwrap(), Reply::Null);
    assert_eq!(
        get::run(&mut s, &[NS, b"t", b"a", b"FORMAT"]),
        Err(DbError::Syntax)
    );
    assert_eq!(
        get::run(&mut s, &[NS, b"t", b"a", b"BOGUS", b"x"]),
        Err(DbError::Syntax)
    );
}

#[test]
fn delete_writes_tombstones_with_last_data() {
    let mut s = MemoryStore::new();
    put(&mut s, 5, &["t", "a", "payload"]).unwrap();
    let r = del(&mut s, 7, &["t", "a", "t", "a", "t", "never"]).unwrap();
    assert_eq!(versions_of(&r), [2, 3, 4]);
    let ch = changes(&mut s);
    assert_eq!(ch[1].data.as_ref().unwrap().value, b"payload");
    assert!(
        ch[2].data.is_none(),
        "second delete of the same id carries no data"
    );
    assert!(ch[3].data.is_none());
    assert_eq!(crate::record::micros(ch[1].deleted_at.as_ref().unwrap()), 7);
    assert_eq!(get::run(&mut s, &[NS, b"t", b"a"]).unwrap(), Reply::Null);
    assert!(live_ids(&mut s, "t").is_empty());
    assert!(!s.keys.contains_key(Keys::new(NS).records()));
}

#[test]
fn conflicting_fields_are_refused_without_writes() {
    let mut s = MemoryStore::new();
    put(&mut s, 5, &["a/b", "c", "x"]).unwrap();
    let before = s.keys.clone();
    s.writes.clear();
    let e = put(&mut s, 6, &["a", "b/c", "y"]).unwrap_err();
    assert_eq!(e.code(), "CONFLICT");
    let e = del(&mut s, 6, &["a", "b/c"]).unwrap_err();
    assert_eq!(e.code(), "CONFLICT");
    let e = put(&mut s, 6, &["q/r", "s", "1", "q", "r/s", "2"]).unwrap_err();
    assert_eq!(e.code(), "CONFLICT");
    assert!(s.writes.is_empty());
    assert_eq!(s.keys, before);
    // The same (type, id) twice is fine: last wins.
    put(&mut s, 7, &["q", "r", "1", "q", "r", "2"]).unwrap();
    let Reply::Map(m) = get::run(&mut s, &[NS, b"q", b"r"]).unwrap() else {
        panic!()
    };
    assert_eq!(m[5].1, Reply::Bulk(b"2".to_vec()));
}

#[test]
fn bad_arguments_and_wrong_types() {
    let mut s = MemoryStore::new();
    assert_eq!(put(&mut s, 1, &["t", "a"]), Err(DbError::WrongArity));
    assert!(put(&mut s, 1, &["", "a", "x"])
        .unwrap_err()
        .to_string()
        .starts_with("ERR type"));
    s.keys.insert(
        Keys::new(NS).changes().to_vec(),
        crate::memstore::Value::Other,
    );
    assert_eq!(put(&mut s, 1, &["t", "a", "x"]), Err(DbError::WrongType));
    s.keys.clear();
    s.keys.insert(
        Keys::new(NS).type_changes(b"t"),
        crate::memstore::Value::Other,
    );
    assert_eq!(put(&mut s, 1, &["t", "a", "x"]), Err(DbError::WrongType));
    assert_eq!(put(&mut s, 1, &["u", "a", "x"]).map(|_| ()), Ok(()));
    s.keys.insert(
        Keys::new(NS).last_version().to_vec(),
        crate::memstore::Value::Str(b"x".to_vec(), None),
    );
    assert_eq!(
        put(&mut s, 1, &["u", "a", "x"]).unwrap_err().code(),
        "CORRUPT"
    );
}

#[test]
fn corrupt_record_is_reported() {
    let mut s = MemoryStore::new();
    s.hset(Keys::new(NS).records(), &[(b"t/a", b"\xff\xff")]);
    assert_eq!(
        get::run(&mut s, &[NS, b"t", b"a"]).unwrap_err().code(),
        "CORRUPT"
    );
    assert_eq!(
        put(&mut s, 1, &["t", "a", "x"]).unwrap_err().code(),
        "CORRUPT"
    );
    assert_eq!(del(&mut s, 1, &["t", "a"]).unwrap_err().code(), "CORRUPT");
}

#[test]
fn capacity_evicts_oldest_then_by_id() {
    let mut s = MemoryStore::new();
    put(&mut s, 1_000_000, &["t", "old", "1"]).unwrap();
    put(&mut s, 2_000_000, &["t", "b", "2", "t", "a", "3"]).unwrap();
    options::set(&mut s, Env::at(3_000_000), &[NS, b"t", b"CAPACITY", b"2"]).unwrap();
    assert_eq!(live_ids(&mut s, "t"), ["a", "b"]);
    let ch = changes(&mut s);
    let last = ch.last().unwrap();
    assert_eq!((last.version, last.id.as_str()), (4, "old"));
    assert!(last.deleted_at.is_some());
    assert_eq!(last.data.as_ref().unwrap().value, b"1");
    // A put over capacity evicts the oldest (ties by id): a before b.
    let r = put(&mut s, 4_000_000, &["t", "c", "4"]).unwrap();
    assert_eq!(versions_of(&r), [5]);
    assert_eq!(live_ids(&mut s, "t"), ["b", "c"]);
    assert_eq!(changes(&mut s).last().unwrap().id, "a");
    // A batch larger than capacity keeps the last ids by (score, id).
    put(
        &mut s,
        5_000_000,
        &["t", "z", "5", "t", "y", "6", "t", "x", "7"],
    )
    .unwrap();
    assert_eq!(live_ids(&mut s, "t"), ["y", "z"]);
    assert_eq!(
        get::run(&mut s, &[NS, b"t", b"x"]).unwrap(),
        Reply::Null,
        "x was put and evicted by the same command"
    );
    // Re-putting an existing id moves it to the newest position.
    put(&mut s, 6_000_000, &["t", "y", "8"]).unwrap();
    put(&mut s, 7_000_000, &["t", "w", "9"]).unwrap();
    assert_eq!(live_ids(&mut s, "t"), ["y", "w"], "ordered by modified_at");
    // Versions stay gapless through all of it.
    let vs: Vec<u64> = changes(&mut s).iter().map(|r| r.version).collect();
    assert_eq!(vs, (1..=vs.len() as u64).collect::<Vec<_>>());
}

#[test]
fn capacity_drops_stale_members_without_counting_them() {
    let mut s = MemoryStore::new();
    put(&mut s, 1_000_000, &["t", "a", "1", "t", "b", "2"]).unwrap();
    // A Go-written leftover: an id in changes.t with no record.
    s.zadd(&Keys::new(NS).type_changes(b"t"), &[(0.5, b"ghost")]);
    options::set(&mut s, Env::at(2_000_000), &[NS, b"t", b"CAPACITY", b"2"]).unwrap();
    assert_eq!(live_ids(&mut s, "t"), ["a", "b"]);
    assert_eq!(changes(&mut s).len(), 2, "no tombstone for a stale member");
}

#[test]
fn options_round_trip() {
    let mut s = MemoryStore::new();
    assert_eq!(
        options::get(&mut s, &[NS, b"t"]).unwrap(),
        Reply::Map(vec![])
    );
    options::set(&mut s, Env::at(1), &[NS, b"t", b"capacity", b"10"]).unwrap();
    assert_eq!(
        options::get(&mut s, &[NS, b"t"]).unwrap(),
        Reply::Map(vec![(Reply::text("capacity"), Reply::Int(10))])
    );
    options::set(&mut s, Env::at(1), &[NS, b"t"]).unwrap();
    assert_eq!(
        options::get(&mut s, &[NS, b"t"]).unwrap(),
        Reply::Map(vec![])
    );
    assert!(options::set(&mut s, Env::at(1), &[NS, b"t", b"CAPACITY", b"-1"]).is_err());
    assert_eq!(
        options::set(&mut s, Env::at(1), &[NS, b"t", b"CAP"]).unwrap_err(),
        DbError::Syntax
    );
}

#[test]
fn leases() {
    let mut s = MemoryStore::new();
    let l = |s: &mut MemoryStore, id: &str, ttl: &str| {
        lease::lease(
            s,
            Env::at(1_000_000),
            &[NS, b"n", id.as_bytes(), ttl.as_bytes()],
        )
        .unwrap()
    };
    assert_eq!(l(&mut s, "a", "100"), Reply::Int(1));
    assert_eq!(
        s.keys.get(&Keys::new(NS).lease(b"n")),
        Some(&crate::memstore::Value::Str(b"a".to_vec(), Some(1100)))
    );
    assert_eq!(l(&mut s, "b", "100"), Reply::Int(0));
    assert_eq!(l(&mut s, "a", "200"), Reply::Int(1));
    assert_eq!(l(&mut s, "b", "0"), Reply::Int(0));
    assert_eq!(l(&mut s, "a", "0"), Reply::Int(0));
    assert_eq!(l(&mut s, "b", "100"), Reply::Int(1));
    assert_eq!(
        lease::release(&mut s, &[NS, b"n", b"a"]).unwrap(),
        Reply::Int(0)
    );
    assert_eq!(
        lease::release(&mut s, &[NS, b"n", b"b"]).unwrap(),
        Reply::Int(1)
    );
    assert!(lease::lease(&mut s, Env::at(1), &[NS, b"n", b"a", b"x"]).is_err());
}

#[test]
fn versions_and_types() {
    let mut s = MemoryStore::new();
    let v = versions::versions(&mut s, &[NS]).unwrap();
    assert_eq!(
        v,
        Reply::Array(vec![Reply::Int(0), Reply::Int(1), Reply::Int(0)])
    );
    put(&mut s, 1, &["b", "1", "x", "a", "1", "x"]).unwrap();
    let v = versions::versions(&mut s, &[NS]).unwrap();
    assert_eq!(v.as_array().unwrap()[1..], [Reply::Int(1), Reply::Int(2)]);
    assert_eq!(
        versions::types(&mut s, &[NS]).unwrap(),
        Reply::Array(vec![Reply::text("a"), Reply::text("b")])
    );
}

fn sync_args(sv: u64, after: u64, extra: &[&str]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = vec![
        NS.to_vec(),
        sv.to_string().into_bytes(),
        after.to_string().into_bytes(),
    ];
    v.extend(extra.iter().map(|s| s.as_bytes().to_vec()));
    v
}

fn do_sync(s: &mut MemoryStore, sv: u64, after: u64, extra: &[&str]) -> DbResult<sync::SyncAnswer> {
    let owned = sync_args(sv, after, extra);
    let args: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    let a = sync::SyncArgs::parse(&args, &Env::at(0))?;
    sync::run(s, &a)
}

fn sync_versions(ans: &sync::SyncAnswer) -> (i64, Vec<i64>) {
    let a = ans.reply.as_array().unwrap();
    let recs = a[2]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let Reply::Bulk(b) = r else { panic!() };
            decode(b, String::new).unwrap().version as i64
        })
        .collect();
    (a[1].as_int().unwrap(), recs)
}

#[test]
fn sync_pages_and_filters_by_type() {
    let mut s = MemoryStore::new();
    let r = put(&mut s, 1, &["t", "a", "1", "u", "b", "2", "t", "c", "3"]).unwrap();
    let sv = r.as_array().unwrap()[0].as_int().unwrap() as u64;
    del(&mut s, 2, &["t", "a"]).unwrap();
    let ans = do_sync(&mut s, sv, 0, &["FORMAT", "PROTO"]).unwrap();
    assert_eq!(sync_versions(&ans), (4, vec![1, 2, 3, 4]));
    assert!(!ans.caught_up);
    let ans = do_sync(&mut s, sv, 1, &["COUNT", "2", "FORMAT", "PROTO"]).unwrap();
    assert_eq!(sync_versions(&ans), (3, vec![2, 3]));
    let ans = do_sync(&mut s, sv, 0, &["TYPE", "t", "FORMAT", "PROTO"]).unwrap();
    assert_eq!(sync_versions(&ans), (4, vec![1, 3, 4]));
    let ans = do_sync(
        &mut s,
        sv,
        0,
        &["TYPE", "u", "COUNT", "1", "FORMAT", "PROTO"],
    )
    .unwrap();
    assert_eq!(
        sync_versions(&ans),
        (2, vec![2]),
        "next_after is the last version examined"
    );
    let ans = do_sync(&mut s, sv, 4, &[]).unwrap();
    assert!(ans.caught_up);
    assert_eq!(ans.reply.as_array().unwrap()[1], Reply::Int(4));
    // MAP format carries deleted_at on tombstones.
    let ans = do_sync(&mut s, sv, 3, &[]).unwrap();
    let Reply::Map(m) = &ans.reply.as_array().unwrap()[2].as_array().unwrap()[0] else {
        panic!()
    };
    assert_eq!(m[4].1, Reply::Int(2));
}

#[test]
fn sync_errors() {
    let mut s = MemoryStore::new();
    assert!(
        do_sync(&mut s, 0, 0, &[]).unwrap().caught_up,
        "0 matches a namespace never written"
    );
    let r = put(&mut s, 1, &["t", "a", "1"]).unwrap();
    let sv = r.as_array().unwrap()[0].as_int().unwrap() as u64;
    assert_eq!(
        do_sync(&mut s, 0, 0, &[]).unwrap_err().code(),
        "SERVERVERSION"
    );
    assert_eq!(
        do_sync(&mut s, sv + 1, 0, &[]).unwrap_err().code(),
        "SERVERVERSION"
    );
    assert_eq!(
        do_sync(&mut s, sv, 2, &[]).unwrap_err().code(),
        "SERVERVERSION"
    );
    assert_eq!(
        do_sync(&mut s, sv, 0, &["COUNT", "0"]).unwrap_err().code(),
        "ERR"
    );
    assert_eq!(
        do_sync(&mut s, sv, 0, &["COUNT", "10001"])
            .unwrap_err()
            .code(),
        "ERR"
    );
    assert_eq!(
        do_sync(&mut s, sv, 0, &["BLOCK"]).unwrap_err(),
        DbError::Syntax
    );
    assert_eq!(
        do_sync(&mut s, sv, 0, &["NOPE", "1"]).unwrap_err(),
        DbError::Syntax
    );
    assert!(do_sync(&mut s, sv, 0, &["BLOCK", "100"]).is_ok());
    assert_eq!(
        do_sync(&mut s, sv, 0, &["BLOCK", "18446744073709551615"])
            .unwrap_err()
            .code(),
        "ERR"
    );
}

#[test]
fn retention_trims_old_changes_and_sync_reports_trimmed() {
    let mut s = MemoryStore::new();
    let hour = 3_600_000_000i64;
    let r = put(&mut s, 0, &["t", "a", "1", "t", "b", "2"]).unwrap();
    let sv = r.as_array().unwrap()[0].as_int().unwrap() as u64;
    let mut env = Env::at(2 * hour);
    env.changes_ttl_ms = 3_600_000;
    let (_, stats) = put::run(&mut s, env, &[NS, b"t", b"c", b"3"]).unwrap();
    assert_eq!(stats.trimmed, 2);
    assert_eq!(
        changes(&mut s)
            .iter()
            .map(|r| r.version)
            .collect::<Vec<_>>(),
        [3]
    );
    assert_eq!(do_sync(&mut s, sv, 0, &[]).unwrap_err().code(), "TRIMMED");
    assert_eq!(do_sync(&mut s, sv, 1, &[]).unwrap_err().code(), "TRIMMED");
    assert_eq!(
        sync_versions(&do_sync(&mut s, sv, 2, &["FORMAT", "PROTO"]).unwrap()).1,
        [3]
    );
    let v = versions::versions(&mut s, &[NS]).unwrap();
    assert_eq!(v.as_array().unwrap()[1..], [Reply::Int(3), Reply::Int(3)]);
    // Current records are never trimmed.
    assert_eq!(s.hlen(Keys::new(NS).records()), 3);
    // Everything trimmed: the history is empty but the cursor at last_version is valid.
    assert_eq!(
        retention::trim(&mut s, &Keys::new(NS), 4 * hour, 3_600_000, 10, None).count,
        1
    );
    assert!(do_sync(&mut s, sv, 3, &[]).unwrap().caught_up);
    assert_eq!(do_sync(&mut s, sv, 2, &[]).unwrap_err().code(), "TRIMMED");
}

fn latest(s: &mut MemoryStore, extra: &[&str]) -> DbResult<Reply> {
    let mut v: Vec<&[u8]> = vec![NS];
    v.extend(argv(extra));
    synclatest::run(s, Env::at(0), &v)
}

fn latest_ids(r: &Reply) -> Vec<String> {
    let mut ids: Vec<String> = r.as_array().unwrap()[3]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let Reply::Bulk(b) = x else { panic!() };
            let rec = decode(b, String::new).unwrap();
            format!("{}/{}", rec.r#type, rec.id)
        })
        .collect();
    ids.sort();
    ids
}

#[test]
fn synclatest_pages_all_records() {
    let mut s = MemoryStore::new();
    for i in 0..25 {
        put(&mut s, i, &["t", &format!("id{i:02}"), "x"]).unwrap();
    }
    put(&mut s, 30, &["u", "z", "x"]).unwrap();
    del(&mut s, 31, &["t", "id00"]).unwrap();
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    let mut record_version = None;
    loop {
        let r = latest(
            &mut s,
            &["CURSOR", &cursor, "COUNT", "7", "FORMAT", "PROTO"],
        )
        .unwrap();
        let a = r.as_array().unwrap();
        record_version.get_or_insert(a[1].as_int().unwrap());
        seen.extend(latest_ids(&r));
        cursor = a[2].as_int().unwrap().to_string();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(record_version, Some(27));
    seen.sort();
    assert_eq!(seen.len(), 25);
    assert!(!seen.contains(&"t/id00".to_string()));
    let r = latest(&mut s, &["TYPE", "u", "FORMAT", "PROTO"]).unwrap();
    assert_eq!(latest_ids(&r), ["u/z"]);
}

#[test]
fn synclatest_filters() {
    let mut s = MemoryStore::new();
    put(&mut s, 1, &["t", "a", "1", "t", "b", "2", "u", "a", "3"]).unwrap();
    let f = |s: &mut MemoryStore, extra: &[&str]| latest_ids(&latest(s, extra).unwrap());
    assert_eq!(
        f(&mut s, &["FILTER", r#"{"id":"a"}"#, "FORMAT", "PROTO"]),
        ["t/a", "u/a"]
    );
    assert_eq!(
        f(&mut s, &["FILTER", r#"{"type":"t"}"#, "FORMAT", "PROTO"]),
        ["t/a", "t/b"]
    );
    assert_eq!(
        f(
            &mut s,
            &["TYPE", "t", "FILTER", r#"{"id":"b"}"#, "FORMAT", "PROTO"]
        ),
        ["t/b"]
    );
    assert_eq!(
        f(
            &mut s,
            &[
                "FILTER",
                r#"{"$or":[{"type":"u"},{"id":"b"}]}"#,
                "FORMAT",
                "PROTO"
            ]
        ),
        ["t/b", "u/a"]
    );
    // A direct lookup reads only the named fields.
    s.writes.clear();
    assert_eq!(
        f(
            &mut s,
            &["FILTER", r#"{"type":"t","id":"zz"}"#, "FORMAT", "PROTO"]
        ),
        Vec::<String>::new()
    );
    assert!(latest(&mut s, &["FILTER", "{"])
        .unwrap_err()
        .to_string()
        .contains("not valid JSON"));
    assert!(latest(&mut s, &["FILTER", r#"{"data":"x"}"#])
        .unwrap_err()
        .to_string()
        .contains("\"data\""));
    assert_eq!(latest(&mut s, &["CURSOR", "x"]).unwrap_err().code(), "ERR");
}

#[test]
fn retention_hint_skips_reads_until_the_oldest_change_expires() {
    let mut s = MemoryStore::new();
    let keys = Keys::new(NS);
    put(&mut s, 1_000_000, &["t", "a", "1"]).unwrap();
    let t = retention::trim(&mut s, &keys, 2_000_000, 10_000, 10, None);
    assert_eq!(
        t,
        retention::Trimmed {
            count: 0,
            oldest_us: Some(1_000_000)
        }
    );
    // With the hint, a trim before expiry reads nothing and keeps the hint.
    let mut empty = MemoryStore::new();
    let t = retention::trim(&mut empty, &keys, 5_000_000, 10_000, 10, Some(1_000_000));
    assert_eq!(t.oldest_us, Some(1_000_000));
    // After expiry the hint does not stop trimming.
    let t = retention::trim(&mut s, &keys, 20_000_000, 10_000, 10, Some(1_000_000));
    assert_eq!(t.count, 1);
}

#[test]
fn last_version_beyond_2_pow_53_is_corrupt_everywhere() {
    let mut s = MemoryStore::new();
    put(&mut s, 1, &["t", "a", "x"]).unwrap();
    s.set(
        Keys::new(NS).last_version(),
        u64::MAX.to_string().as_bytes(),
    );
    assert_eq!(
        put(&mut s, 2, &["t", "b", "x"]).unwrap_err().code(),
        "CORRUPT"
    );
    assert_eq!(del(&mut s, 2, &["t", "a"]).unwrap_err().code(), "CORRUPT");
    assert_eq!(
        versions::versions(&mut s, &[NS]).unwrap_err().code(),
        "CORRUPT"
    );
    assert_eq!(
        do_sync(&mut s, 0, u64::MAX, &[]).unwrap_err().code(),
        "CORRUPT"
    );
    assert_eq!(
        options::set(&mut s, Env::at(2), &[NS, b"t", b"CAPACITY", b"1"])
            .unwrap_err()
            .code(),
        "CORRUPT"
    );
}

#[test]
fn retention_trims_undecodable_changes_instead_of_stopping() {
    let mut s = MemoryStore::new();
    let keys = Keys::new(NS);
    // Version 1's change is replaced by bytes that do not decode.
    put(&mut s, 1_000_000, &["t", "z", "0"]).unwrap();
    let (first, _) = s.zlast(keys.changes()).unwrap();
    s.zrem(keys.changes(), &[first.as_slice()]);
    s.zadd(keys.changes(), &[(1.0, b"\xff\xff garbage")]);
    put(&mut s, 1_000_000, &["t", "a", "1"]).unwrap();
    let t = retention::trim(&mut s, &keys, 10_000_000_000, 1_000, 10, None);
    assert_eq!(t.count, 2);
    assert_eq!(s.zcard(keys.changes()), 0);
}

#[test]
fn synclatest_lookups_page_by_count() {
    let mut s = MemoryStore::new();
    let ids: Vec<String> = (0..5).map(|i| format!("id{i}")).collect();
    for id in &ids {
        put(&mut s, 1, &["t", id, "x"]).unwrap();
    }
    let filter = format!(
        "{{\"$or\":[{}]}}",
        ids.iter()
            .map(|i| format!("{{\"type\":\"t\",\"id\":\"{i}\"}}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = latest(
            &mut s,
            &[
                "FILTER", &filter, "CURSOR", &cursor, "COUNT", "2", "FORMAT", "PROTO",
            ],
        )
        .unwrap();
        let a = r.as_array().unwrap();
        assert!(a[3].as_array().unwrap().len() <= 2);
        seen.extend(latest_ids(&r));
        cursor = a[2].as_int().unwrap().to_string();
        pages += 1;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(pages, 3);
    seen.sort();
    assert_eq!(
        seen,
        ids.iter().map(|i| format!("t/{i}")).collect::<Vec<_>>()
    );
}

fn check_lines(s: &mut MemoryStore, now: i64) -> Vec<String> {
    let r = check::run(s, Env::at(now), &[NS]).unwrap();
    r.as_array()
        .unwrap()
        .iter()
        .map(|l| String::from_utf8(l.as_bytes().unwrap().to_vec()).unwrap())
        .collect()
}

#[test]
fn check_is_clean_after_every_kind_of_write() {
    let mut s = MemoryStore::new();
    put(&mut s, 1, &["t", "a", "1", "t", "b", "2", "u", "c", "3"]).unwrap();
    del(&mut s, 2, &["t", "a", "t", "nope"]).unwrap();
    options::set(&mut s, Env::at(3), &[NS, b"u", b"CAPACITY", b"1"]).unwrap();
    put(&mut s, 4, &["u", "d", "4", "u", "e", "5"]).unwrap();
    lease::lease(&mut s, Env::at(5), &[NS, b"l", b"me", b"100"]).unwrap();
    assert_eq!(check_lines(&mut s, 6), Vec::<String>::new());
}

#[test]
fn check_reports_lost_and_reissued_versions() {
    let keys = Keys::new(NS);
    let mut s = MemoryStore::new();
    put(&mut s, 1, &["t", "a", "1", "t", "b", "2"]).unwrap();
    let mut lost = s.clone();
    lost.del(keys.records());
    let lines = check_lines(&mut lost, 2);
    assert!(
        lines.iter().any(|l| l.contains("lost without a tombstone")),
        "{lines:?}"
    );
    let mut twice = s.clone();
    twice.zadd(keys.changes(), &[(2.0, b"another change")]);
    let lines = check_lines(&mut twice, 2);
    assert!(
        lines.iter().any(|l| l.contains("two changes at version 2")),
        "{lines:?}"
    );
    // Writes refuse a namespace whose counter is behind its changes.
    twice.set(keys.last_version(), b"1");
    assert_eq!(
        put(&mut twice, 3, &["t", "c", "3"]).unwrap_err().code(),
        "CORRUPT"
    );
}

fn sync_stamped(s: &mut MemoryStore, sv: i64, after: u64, stamp: i64) -> DbResult<(u64, i64)> {
    let (svt, a, st) = (sv.to_string(), after.to_string(), stamp.to_string());
    let args: Vec<&[u8]> = vec![NS, svt.as_bytes(), a.as_bytes(), b"STAMP", st.as_bytes()];
    let parsed = sync::SyncArgs::parse(&args, &Env::at(0))?;
    let ans = sync::run(s, &parsed)?;
    let items = ans.reply.as_array().unwrap().to_vec();
    Ok((
        items[1].as_int().unwrap() as u64,
        items[3].as_int().unwrap(),
    ))
}

#[test]
fn stamps_detect_a_rollback() {
    let mut s = MemoryStore::new();
    let r = put(&mut s, 10, &["t", "a", "1"]).unwrap();
    let sv = r.as_array().unwrap()[0].as_int().unwrap();
    let saved = s.clone();
    put(&mut s, 20, &["t", "b", "2", "t", "c", "3"]).unwrap();
    assert_eq!(sync_stamped(&mut s, sv, 0, 0), Ok((3, 20)));
    assert_eq!(sync_stamped(&mut s, sv, 3, 20), Ok((3, 20)));
    // Restore the snapshot taken at version 1 and write again.
    let mut s = saved;
    put(&mut s, 30, &["t", "d", "4", "t", "e", "5"]).unwrap();
    let e = sync_stamped(&mut s, sv, 3, 20).unwrap_err();
    assert_eq!(e.code(), "SERVERVERSION");
    assert!(e.to_string().contains("rolled back"));
    // The same cursor without a stamp is not checked; a right stamp passes.
    assert_eq!(sync_stamped(&mut s, sv, 3, 0), Ok((3, 30)));
    assert_eq!(sync_stamped(&mut s, sv, 1, 10), Ok((3, 30)));
}

#[test]
fn oom_refuses_growth_only() {
    let mut s = MemoryStore::new();
    put(&mut s, 1, &["t", "a", "1", "t", "b", "2"]).unwrap();
    options::set(&mut s, Env::at(1), &[NS, b"t", b"CAPACITY", b"5"]).unwrap();
    lease::lease(&mut s, Env::at(1), &[NS, b"l", b"me", b"100000"]).unwrap();
    let oom = Env {
        oom: true,
        ..Env::at(2)
    };
    let before = s.keys.clone();
    assert_eq!(
        put::run(&mut s, oom, &[NS, b"t", b"c", b"3"]).unwrap_err(),
        DbError::Oom
    );
    assert_eq!(
        lease::lease(&mut s, oom, &[NS, b"x", b"me", b"10"]).unwrap_err(),
        DbError::Oom
    );
    assert_eq!(
        options::set(&mut s, oom, &[NS, b"t", b"CAPACITY", b"6"]).unwrap_err(),
        DbError::Oom
    );
    assert_eq!(
        options::set(&mut s, oom, &[NS, b"t"]).unwrap_err(),
        DbError::Oom
    );
    assert_eq!(s.keys, before);
    assert_eq!(
        lease::lease(&mut s, oom, &[NS, b"l", b"me", b"100"]).unwrap(),
        Reply::Int(1)
    );
    delete::run(&mut s, oom, &[NS, b"t", b"a"]).unwrap();
    options::set(&mut s, oom, &[NS, b"t", b"CAPACITY", b"0"]).unwrap();
    assert_eq!(check_lines(&mut s, 3), Vec::<String>::new());
}

fn write_cmd(s: &mut MemoryStore, now: i64, a: &[&str]) -> DbResult<Reply> {
    let mut v: Vec<&[u8]> = vec![NS];
    v.extend(argv(a));
    write::run(s, Env::at(now), &v).map(|(r, _)| r)
}

#[test]
fn write_mixes_puts_and_deletes_in_order_with_capacity() {
    let mut s = MemoryStore::new();
    options::set(&mut s, Env::at(1), &[NS, b"t", b"CAPACITY", b"2"]).unwrap();
    put(&mut s, 2, &["t", "a", "1", "t", "b", "2"]).unwrap();
    // Deleting one and adding one stays within capacity: nothing evicted.
    let r = write_cmd(&mut s, 3, &["DEL", "t", "a", "PUT", "t", "c", "3"]).unwrap();
    assert_eq!(versions_of(&r), [3, 4]);
    assert_eq!(live_ids(&mut s, "t"), ["b", "c"]);
    // Put then delete of the same record: gone; delete then put: back.
    write_cmd(&mut s, 4, &["PUT", "t", "x", "9", "DEL", "t", "x"]).unwrap();
    write_cmd(&mut s, 5, &["DEL", "t", "c", "PUT", "t", "c", "again"]).unwrap();
    assert_eq!(live_ids(&mut s, "t"), ["b", "c"]);
    let c = get::run(&mut s, &[NS, b"t", b"c"]).unwrap();
    assert_ne!(c, Reply::Null);
    // The tombstone of x carries the data it was put with.
    let x = changes(&mut s)
        .into_iter()
        .find(|r| r.id == "x" && r.deleted_at.is_some())
        .unwrap();
    assert_eq!(x.data.unwrap().value, b"9");
    assert_eq!(check_lines(&mut s, 6), Vec::<String>::new());
}
