//! The change feed against real servers: the no-miss property, blocking
//! semantics, paging, filters and retention.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use databroker_core::pb::Record;
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::{Connection, Value};

const NS: &str = "{feed}";

/// A follower's view: id -> (version, live data or None for a tombstone).
type View = BTreeMap<(String, String), (u64, Option<Vec<u8>>)>;

fn records_of(v: &Value) -> Vec<Record> {
    arr(v)
        .iter()
        .map(|r| Record::decode(bulk(r)).expect("PROTO record"))
        .collect()
}

/// Reads a full snapshot: (server_version, record_version, view).
fn snapshot(c: &mut Connection, count: usize) -> (u64, u64, View) {
    let mut view = View::new();
    let mut cursor = 0u64;
    let mut first = None;
    loop {
        let r = ok(
            c,
            &[
                "DB.SYNCLATEST",
                NS,
                "CURSOR",
                &cursor.to_string(),
                "COUNT",
                &count.to_string(),
                "FORMAT",
                "PROTO",
            ],
        );
        let a = arr(&r);
        first.get_or_insert((int(&a[0]) as u64, int(&a[1]) as u64));
        for rec in records_of(&a[3]) {
            apply(&mut view, &rec);
        }
        cursor = int(&a[2]) as u64;
        if cursor == 0 {
            break;
        }
    }
    let (sv, rv) = first.unwrap();
    (sv, rv, view)
}

/// Applies a change unless the view already has a newer version of the record.
fn apply(view: &mut View, rec: &Record) {
    let key = (rec.r#type.clone(), rec.id.clone());
    if view.get(&key).is_some_and(|(v, _)| *v >= rec.version) {
        return;
    }
    let data = if rec.deleted_at.is_some() {
        None
    } else {
        rec.data.as_ref().map(|d| d.value.clone())
    };
    view.insert(key, (rec.version, data));
}

fn live(view: &View) -> BTreeMap<(String, String), Vec<u8>> {
    view.iter()
        .filter_map(|(k, (_, d))| d.clone().map(|d| (k.clone(), d)))
        .collect()
}

fn writer(url: String, seed: u64, ops: usize) {
    let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..ops {
        let rtype = ["t", "u", "capped"][rng.random_range(0..3)];
        let roll = rng.random_range(0..10);
        if roll < 6 {
            let mut args = vec!["DB.PUT".to_string(), NS.to_string()];
            for _ in 0..rng.random_range(1..4) {
                args.push(rtype.to_string());
                args.push(format!("id{}", rng.random_range(0..40)));
                args.push(format!("w{seed}-{i}"));
            }
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            ok(&mut c, &a);
        } else if roll < 9 {
            let id = format!("id{}", rng.random_range(0..40));
            ok(&mut c, &["DB.DELETE", NS, rtype, &id]);
        } else {
            let cap = rng.random_range(3..15).to_string();
            ok(&mut c, &["DB.SETOPTIONS", NS, "capped", "CAPACITY", &cap]);
        }
    }
}

fn no_miss(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    // Some history before the follower starts.
    writer(s.url(), 1, 200);
    let writers: Vec<_> = (2..5u64)
        .map(|seed| {
            let url = s.url();
            thread::spawn(move || writer(url, seed, 300))
        })
        .collect();
    let (sv, rv, mut view) = snapshot(&mut c, 5);
    let mut after = rv;
    let mut follower = s.conn();
    let mut done = false;
    loop {
        let r = ok(
            &mut follower,
            &[
                "DB.SYNC",
                NS,
                &sv.to_string(),
                &after.to_string(),
                "COUNT",
                "50",
                "BLOCK",
                "200",
                "FORMAT",
                "PROTO",
            ],
        );
        let a = arr(&r);
        assert_eq!(int(&a[0]) as u64, sv);
        for rec in records_of(&a[2]) {
            assert_eq!(
                rec.version,
                after + 1,
                "every version exactly once, in order"
            );
            after = rec.version;
            apply(&mut view, &rec);
        }
        assert_eq!(int(&a[1]) as u64, after);
        if done {
            let last = int(&arr(&ok(&mut c, &["DB.VERSIONS", NS]))[2]) as u64;
            if after == last {
                break;
            }
        } else if writers.iter().all(|w| w.is_finished()) {
            done = true;
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    let (_, _, fresh) = snapshot(&mut c, 1000);
    assert_eq!(
        live(&view),
        live(&fresh),
        "the follower's state equals a fresh snapshot"
    );
    assert!(live(&fresh).keys().filter(|(t, _)| t == "capped").count() <= 14);
}

fn thousand_followers(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    let r = ok(&mut c, &["DB.PUT", NS, "t", "first", "x"]);
    let sv = int(&arr(&r)[0]).to_string();
    let cmd = packed_sync(&[&sv, "1", "BLOCK", "0", "FORMAT", "PROTO"]);
    let mut followers: Vec<Connection> = (0..1000).map(|_| s.conn()).collect();
    for f in &mut followers {
        f.send_packed_command(&cmd).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !s_info(&mut c).contains("waiting_sync_clients:1000") {
        assert!(
            Instant::now() < deadline,
            "followers did not block: {}",
            s_info(&mut c)
        );
        thread::sleep(Duration::from_millis(20));
    }
    ok(&mut c, &["DB.PUT", NS, "t", "second", "y"]);
    for f in &mut followers {
        f.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let r = f.recv_response().unwrap();
        let recs = records_of(&arr(&r)[2]);
        assert_eq!(recs.len(), 1);
        assert_eq!((recs[0].version, recs[0].id.as_str()), (2, "second"));
    }
    assert!(s_info(&mut c).contains("waiting_sync_clients:0"));
}

/// A `DB.SYNC <NS> args...` command, packed for `send_packed_command`.
fn packed_sync(args: &[&str]) -> Vec<u8> {
    let mut cmd = redis::cmd("DB.SYNC");
    cmd.arg(NS);
    for a in args {
        cmd.arg(*a);
    }
    cmd.get_packed_command()
}

fn s_info(c: &mut Connection) -> String {
    t(c, &["INFO", "databroker"]).unwrap()
}

fn block_semantics(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    let r = ok(&mut c, &["DB.PUT", NS, "t", "a", "x"]);
    let sv = int(&arr(&r)[0]).to_string();
    // Timeout: the normal shape with no records.
    let start = Instant::now();
    let r = ok(&mut c, &["DB.SYNC", NS, &sv, "1", "BLOCK", "200"]);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(190) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert_eq!(arr(&r)[1], Value::Int(1));
    assert_eq!(arr(&r)[2], Value::Array(vec![]));
    // Data already there: no wait.
    let r = ok(&mut c, &["DB.SYNC", NS, &sv, "0", "BLOCK", "0"]);
    assert_eq!(arr(&arr(&r)[2]).len(), 1);
    // Inside MULTI and Lua it answers at once.
    let r: Vec<Value> = redis::pipe()
        .atomic()
        .cmd("DB.SYNC")
        .arg(NS)
        .arg(&sv)
        .arg("1")
        .arg("BLOCK")
        .arg("0")
        .query(&mut c)
        .unwrap();
    assert_eq!(arr(&r[0])[2], Value::Array(vec![]));
    let r = ok(
        &mut c,
        &[
            "EVAL",
            "return redis.call('DB.SYNC', KEYS[1], ARGV[1], '1', 'BLOCK', '0')",
            "1",
            NS,
            &sv,
        ],
    );
    assert_eq!(arr(&r)[2], Value::Array(vec![]));
    // A write wakes a waiter with the new change.
    let mut f = s.conn();
    let cmd = packed_sync(&[&sv, "1", "BLOCK", "0"]);
    f.send_packed_command(&cmd).unwrap();
    wait_waiting(&mut c, 1);
    let start = Instant::now();
    ok(&mut c, &["DB.PUT", NS, "t", "b", "y"]);
    let r = f.recv_response().unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(arr(&r)[1], Value::Int(2));
    // CLIENT UNBLOCK answers like a timeout.
    let id: i64 = t(&mut f, &["CLIENT", "ID"]).unwrap();
    f.send_packed_command(&packed_sync(&[&sv, "2", "BLOCK", "0"]))
        .unwrap();
    wait_waiting(&mut c, 1);
    assert_eq!(
        ok(&mut c, &["CLIENT", "UNBLOCK", &id.to_string()]),
        Value::Int(1)
    );
    let r = f.recv_response().unwrap();
    assert_eq!(arr(&r)[2], Value::Array(vec![]));
    wait_waiting(&mut c, 0);
}

fn wait_waiting(c: &mut Connection, n: usize) {
    let want = format!("waiting_sync_clients:{n}\r");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s_info(c).contains(&want) {
        assert!(
            Instant::now() < deadline,
            "expected {n} waiting: {}",
            s_info(c)
        );
        thread::sleep(Duration::from_millis(10));
    }
}

fn disconnect_and_flushall(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    let r = ok(&mut c, &["DB.PUT", NS, "t", "a", "x"]);
    let sv = int(&arr(&r)[0]).to_string();
    let cmd = packed_sync(&[&sv, "1", "BLOCK", "0"]);
    {
        let mut gone = s.conn();
        gone.send_packed_command(&cmd).unwrap();
        wait_waiting(&mut c, 1);
    } // dropped while blocked
    wait_waiting(&mut c, 0);
    ok(&mut c, &["DB.PUT", NS, "t", "b", "x"]);
    // FLUSHALL while blocked: the next answer is SERVERVERSION.
    let mut f = s.conn();
    f.send_packed_command(&packed_sync(&[&sv, "2", "BLOCK", "0"]))
        .unwrap();
    wait_waiting(&mut c, 1);
    ok(&mut c, &["FLUSHALL"]);
    ok(&mut c, &["DB.PUT", NS, "t", "c", "x"]);
    f.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let got = f.recv_response();
    let code = match &got {
        Err(e) => e.code().map(str::to_string),
        Ok(Value::ServerError(e)) => Some(e.code().to_string()),
        Ok(_) => None,
    };
    assert_eq!(code.as_deref(), Some("SERVERVERSION"), "{got:?}");
    wait_waiting(&mut c, 0);
    assert_eq!(err(&mut c, &["DB.SYNC", NS, &sv, "0"]).0, "SERVERVERSION");
    assert!(s_info(&mut c).contains("waiting_sync_clients:0"));
}

fn paging_10k(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    let mut p = redis::pipe();
    for i in 0..10_000 {
        p.cmd("DB.PUT")
            .arg(NS)
            .arg("t")
            .arg(format!("id{i}"))
            .arg("x")
            .ignore();
    }
    p.query::<()>(&mut c).unwrap();
    let mut seen = HashSet::new();
    let mut cursor = 0u64;
    let mut rv = None;
    let mut extra = 0;
    let mut pages = 0;
    loop {
        let r = ok(
            &mut c,
            &[
                "DB.SYNCLATEST",
                NS,
                "CURSOR",
                &cursor.to_string(),
                "COUNT",
                "100",
                "FORMAT",
                "PROTO",
            ],
        );
        let a = arr(&r);
        rv.get_or_insert(int(&a[1]) as u64);
        let recs = records_of(&a[3]);
        assert!(recs.len() <= 1000, "bounded page: {}", recs.len());
        seen.extend(recs.into_iter().map(|r| r.id));
        cursor = int(&a[2]) as u64;
        pages += 1;
        // Writes during paging: either in a page or after record_version.
        if pages % 10 == 0 {
            ok(&mut c, &["DB.PUT", NS, "t", &format!("new{extra}"), "y"]);
            extra += 1;
        }
        if cursor == 0 {
            break;
        }
    }
    assert!(pages > 10, "paged in {pages} pages");
    for i in 0..10_000 {
        assert!(seen.contains(&format!("id{i}")), "id{i} missing");
    }
    let sv = int(&arr(&ok(&mut c, &["DB.VERSIONS", NS]))[0]).to_string();
    let r = ok(
        &mut c,
        &[
            "DB.SYNC",
            NS,
            &sv,
            &rv.unwrap().to_string(),
            "COUNT",
            "1000",
            "FORMAT",
            "PROTO",
        ],
    );
    seen.extend(records_of(&arr(&r)[2]).into_iter().map(|r| r.id));
    for i in 0..extra {
        assert!(seen.contains(&format!("new{i}")), "new{i} missed");
    }
    // TYPE paging scans the type's ids.
    let r = ok(
        &mut c,
        &[
            "DB.SYNCLATEST",
            NS,
            "TYPE",
            "t",
            "COUNT",
            "10000",
            "FORMAT",
            "PROTO",
        ],
    );
    assert!(!records_of(&arr(&r)[3]).is_empty());
}

fn filters(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    ok(
        &mut c,
        &["DB.PUT", NS, "t", "a", "1", "t", "b", "2", "u", "a", "3"],
    );
    let ids = |c: &mut Connection, args: &[&str]| {
        let mut full = vec!["DB.SYNCLATEST", NS];
        full.extend_from_slice(args);
        full.extend_from_slice(&["FORMAT", "PROTO"]);
        let r = ok(c, &full);
        let mut v: Vec<String> = records_of(&arr(&r)[3])
            .iter()
            .map(|r| format!("{}/{}", r.r#type, r.id))
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&mut c, &["FILTER", r#"{"id":"a"}"#]), ["t/a", "u/a"]);
    assert_eq!(ids(&mut c, &["FILTER", r#"{"type":"t"}"#]), ["t/a", "t/b"]);
    assert_eq!(
        ids(&mut c, &["FILTER", r#"{"type":"t","id":"b"}"#]),
        ["t/b"]
    );
    assert_eq!(
        ids(&mut c, &["FILTER", r#"{"$and":[{"type":"u"},{"id":"a"}]}"#]),
        ["u/a"]
    );
    assert_eq!(
        ids(&mut c, &["FILTER", r#"{"$or":[{"type":"u"},{"id":"b"}]}"#]),
        ["t/b", "u/a"]
    );
    assert_eq!(
        ids(&mut c, &["TYPE", "t", "FILTER", r#"{"id":"a"}"#]),
        ["t/a"]
    );
    let (code, msg) = err(&mut c, &["DB.SYNCLATEST", NS, "FILTER", "{not json"]);
    assert_eq!(code, "ERR");
    assert!(msg.contains("not valid JSON"), "{msg}");
    let (_, msg) = err(
        &mut c,
        &["DB.SYNCLATEST", NS, "FILTER", r#"{"$index":"10.0.0.0/8"}"#],
    );
    assert!(msg.contains("$index"), "{msg}");
    let (_, msg) = err(&mut c, &["DB.SYNCLATEST", NS, "FILTER", r#"{"id":1}"#]);
    assert!(msg.contains("must be a string"), "{msg}");
    // MAP format for people.
    let r = ok(
        &mut c,
        &["DB.SYNCLATEST", NS, "FILTER", r#"{"type":"u","id":"a"}"#],
    );
    assert_eq!(bulk(&field(&arr(&arr(&r)[3])[0], "data")), b"3");
}

fn retention(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor).module_args(["changes-ttl-ms", "200"]));
    let mut c = s.conn();
    let r = ok(&mut c, &["DB.PUT", NS, "t", "a", "1", "t", "b", "2"]);
    let sv = int(&arr(&r)[0]).to_string();
    thread::sleep(Duration::from_millis(300));
    ok(&mut c, &["DB.PUT", NS, "t", "c", "3"]); // trims on write
    let v = ok(&mut c, &["DB.VERSIONS", NS]);
    assert_eq!(arr(&v).iter().map(int).collect::<Vec<_>>()[1..], [3, 3]);
    assert_eq!(err(&mut c, &["DB.SYNC", NS, &sv, "0"]).0, "TRIMMED");
    assert_eq!(err(&mut c, &["DB.SYNC", NS, &sv, "1"]).0, "TRIMMED");
    let r = ok(&mut c, &["DB.SYNC", NS, &sv, "2", "FORMAT", "PROTO"]);
    assert_eq!(records_of(&arr(&r)[2])[0].version, 3);
    assert_eq!(
        t::<i64>(&mut c, &["HLEN", "{feed}.records"]).unwrap(),
        3,
        "current records survive"
    );
    // The background timer trims without writes.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if t::<i64>(&mut c, &["EXISTS", "{feed}.changes"]).unwrap() == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "timer did not trim");
        thread::sleep(Duration::from_millis(100));
    }
    let v = ok(&mut c, &["DB.VERSIONS", NS]);
    assert_eq!(arr(&v).iter().map(int).collect::<Vec<_>>()[1..], [4, 3]);
    assert!(s_info(&mut c).contains("databroker_trimmed_changes:3"));
    let r = ok(&mut c, &["DB.SYNC", NS, &sv, "3"]);
    assert_eq!(arr(&r)[2], Value::Array(vec![]));
}

/// Followers with identical arguments in two databases, woken by one
/// transaction that writes both, each get their own database's change.
fn same_arguments_in_two_databases(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    for db in ["0", "1"] {
        ok(&mut c, &["SELECT", db]);
        ok(&mut c, &["SET", "{feed}.server_version", "42"]);
        ok(&mut c, &["DB.PUT", NS, "t", "a", db]);
    }
    let mut followers = Vec::new();
    for db in ["0", "1"] {
        let mut f = s.conn();
        ok(&mut f, &["SELECT", db]);
        let cmd = packed_sync(&["42", "1", "BLOCK", "0", "FORMAT", "PROTO"]);
        f.send_packed_command(&cmd).unwrap();
        followers.push(f);
    }
    wait_waiting(&mut c, 2);
    let _: () = redis::pipe()
        .atomic()
        .cmd("SELECT")
        .arg(0)
        .ignore()
        .cmd("DB.PUT")
        .arg(NS)
        .arg("t")
        .arg("b")
        .arg("zero")
        .ignore()
        .cmd("SELECT")
        .arg(1)
        .ignore()
        .cmd("DB.PUT")
        .arg(NS)
        .arg("t")
        .arg("b")
        .arg("one")
        .ignore()
        .query(&mut c)
        .unwrap();
    for (f, want) in followers.iter_mut().zip(["zero", "one"]) {
        let r = f.recv_response().unwrap();
        let recs = records_of(&arr(&r)[2]);
        assert_eq!(recs[0].data.as_ref().unwrap().value, want.as_bytes());
    }
}

on_both!(
    same_arguments_in_two_databases,
    no_miss,
    thousand_followers,
    block_semantics,
    disconnect_and_flushall,
    paging_10k,
    filters,
    retention
);
