//! Unit tests of the per-call limits (issue #11).

use super::*;
use crate::keys::Keys;
use crate::memstore::MemoryStore;
use crate::reply::Reply;
use crate::store::Store;
use crate::MAX_VERSION;

const NS: &[u8] = b"{t}";

fn env(max: u64) -> Env {
    Env {
        max_records_per_call: max,
        ..Env::at(1)
    }
}

#[test]
fn put_and_delete_are_limited_per_call() {
    let mut s = MemoryStore::new();
    let mut args: Vec<&[u8]> = vec![NS];
    for _ in 0..4 {
        args.extend([&b"t"[..], b"i", b"v"]);
    }
    let e = put::run(&mut s, env(3), &args).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ERR records 4 in one call, more than max-records-per-call (3): split the batch"
    );
    assert!(s.kind(Keys::new(NS).records()) == crate::store::KeyKind::Missing);
    assert!(put::run(&mut s, env(4), &args).is_ok());
    let mut dargs: Vec<&[u8]> = vec![NS];
    for _ in 0..4 {
        dargs.extend([&b"t"[..], b"i"]);
    }
    assert!(delete::run(&mut s, env(3), &dargs).is_err());
    assert!(delete::run(&mut s, env(4), &dargs).is_ok());
}

#[test]
fn setoptions_evicts_at_most_the_limit_per_call() {
    let mut s = MemoryStore::new();
    let ids: Vec<String> = (0..10).map(|i| format!("i{i}")).collect();
    let mut args: Vec<&[u8]> = vec![NS];
    for id in &ids {
        args.extend([&b"t"[..], id.as_bytes(), b"v"]);
    }
    put::run(&mut s, env(100), &args).unwrap();
    let e = options::set(&mut s, env(4), &[NS, b"t", b"CAPACITY", b"5"]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("ERR CAPACITY would evict 5 records"),
        "{e}"
    );
    options::set(&mut s, env(5), &[NS, b"t", b"CAPACITY", b"5"]).unwrap();
    options::set(&mut s, env(4), &[NS, b"t", b"CAPACITY", b"1"]).unwrap();
}

#[test]
fn new_server_versions_stay_within_2_pow_53() {
    for random in [
        0,
        1,
        1 << 53,
        (1 << 53) - 1,
        1 << 62,
        u64::MAX,
        i64::MAX as u64,
    ] {
        let sv = txn::new_server_version(random);
        assert!((1..=MAX_VERSION).contains(&sv), "{random} -> {sv}");
    }
    let mut s = MemoryStore::new();
    let e = Env {
        random: 1 << 62,
        ..Env::at(1)
    };
    let (r, _) = put::run(&mut s, e, &[NS, b"t", b"i", b"v"]).unwrap();
    let Reply::Array(parts) = r else { panic!() };
    assert_eq!(parts[0], Reply::Int(1));
}
