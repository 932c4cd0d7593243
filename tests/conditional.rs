//! Conditional writes (`IF`) and exactly-once retries (`TOKEN`) on `DB.PUT`
//! and `DB.WRITE`: all-or-nothing batches, conflict replies, remembered
//! replies, token expiry, a retried write applied once, and replicas and AOF
//! reloads digest-equal with both.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use redis::{Connection, Value};

const NS: &str = "{cw}";

fn versions_of(v: &Value) -> Vec<i64> {
    arr(&arr(v)[2]).iter().map(int).collect()
}

fn last_version(c: &mut Connection) -> i64 {
    int(&arr(&ok(c, &["DB.VERSIONS", NS]))[2])
}

fn conditions_are_all_or_nothing(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    ok(&mut c, &["DB.PUT", NS, "t", "a", "1", "t", "b", "2"]);
    // Versions: a=1, b=2. A batch whose conditions hold is applied.
    let r = ok(
        &mut c,
        &[
            "DB.PUT", NS, "IF", "1,0,*", "t", "a", "x", "t", "c", "y", "t", "b", "z",
        ],
    );
    assert_eq!(versions_of(&r), [3, 4, 5]);
    // One stale condition: nothing is written, the reply names the current versions.
    let d = s.digest();
    let (code, msg) = err(
        &mut c,
        &["DB.PUT", NS, "IF", "3,1", "t", "a", "p", "t", "b", "q"],
    );
    assert_eq!(code, "CONFLICT");
    assert!(msg.contains("current versions 3,5 (expected 3,1)"), "{msg}");
    assert_eq!(s.digest(), d);
    // 0 means absent or deleted.
    assert_eq!(
        err(&mut c, &["DB.PUT", NS, "IF", "0", "t", "a", "p"]).0,
        "CONFLICT"
    );
    ok(&mut c, &["DB.DELETE", NS, "t", "a"]);
    ok(&mut c, &["DB.PUT", NS, "IF", "0", "t", "a", "p"]);
    // Mixed batches with per-record conditions.
    let r = ok(
        &mut c,
        &[
            "DB.WRITE", NS, "PUT", "t", "d", "1", "IF", "0", "DEL", "t", "b", "IF", "5", "PUT",
            "t", "b", "again",
        ],
    );
    assert_eq!(versions_of(&r), [8, 9, 10]);
    let b = ok(&mut c, &["DB.GET", NS, "t", "b"]);
    assert_eq!(
        int(&field(&b, "version")),
        10,
        "a put after a delete in one call wins"
    );
    let d = s.digest();
    let (code, msg) = err(
        &mut c,
        &[
            "DB.WRITE", NS, "DEL", "t", "d", "IF", "8", "DEL", "t", "b", "IF", "9",
        ],
    );
    assert_eq!(code, "CONFLICT");
    assert!(msg.contains("current versions 8,10"), "{msg}");
    assert_eq!(s.digest(), d);
    // Syntax errors and counts.
    assert_eq!(
        err(&mut c, &["DB.PUT", NS, "IF", "1,2", "t", "a", "x"]).0,
        "ERR"
    );
    assert_eq!(
        err(&mut c, &["DB.PUT", NS, "IF", "x", "t", "a", "x"]).0,
        "ERR"
    );
    assert_eq!(err(&mut c, &["DB.WRITE", NS, "PUT", "t", "a"]).0, "ERR");
    assert_eq!(err(&mut c, &["DB.WRITE", NS, "NOPE", "t", "a"]).0, "ERR");
    // Today's calls keep their meaning: a record of type "IF" is a record.
    let r = ok(&mut c, &["DB.PUT", NS, "IF", "1", "x"]);
    assert_eq!(versions_of(&r).len(), 1);
    assert_eq!(
        bulk(&field(&ok(&mut c, &["DB.GET", NS, "IF", "1"]), "data")),
        b"x"
    );
    assert!(arr(&ok(&mut c, &["DB.CHECK", NS])).is_empty());
}

fn tokens_apply_a_write_once(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    let first = ok(&mut c, &["DB.PUT", NS, "TOKEN", "op-1", "t", "a", "1"]);
    let lv = last_version(&mut c);
    let again = ok(&mut c, &["DB.PUT", NS, "TOKEN", "op-1", "t", "a", "1"]);
    assert_eq!(first, again, "the original reply");
    assert_eq!(last_version(&mut c), lv, "nothing written");
    let (code, msg) = err(&mut c, &["DB.PUT", NS, "TOKEN", "op-1", "t", "a", "2"]);
    assert_eq!(code, "CONFLICT");
    assert!(msg.contains("another write"), "{msg}");
    // DB.WRITE with a token, and both options on DB.PUT.
    let w = ok(
        &mut c,
        &[
            "DB.WRITE", NS, "TOKEN", "op-2", "DEL", "t", "a", "PUT", "t", "b", "2",
        ],
    );
    assert_eq!(
        ok(
            &mut c,
            &["DB.WRITE", NS, "TOKEN", "op-2", "DEL", "t", "a", "PUT", "t", "b", "2"]
        ),
        w
    );
    let p = ok(
        &mut c,
        &["DB.PUT", NS, "TOKEN", "op-3", "IF", "0", "t", "c", "3"],
    );
    assert_eq!(
        ok(
            &mut c,
            &["DB.PUT", NS, "IF", "0", "TOKEN", "op-3", "t", "c", "3"]
        ),
        p
    );
    // A token that looks like a namespace counter is not taken for one.
    ok(
        &mut c,
        &["DB.PUT", NS, "TOKEN", "x.last_version", "t", "z", "1"],
    );
    let info: String = t(&mut c, &["INFO", "databroker"]).unwrap();
    assert!(!info.contains(".token."), "{info}");
    // The token key expires after token-ttl-ms.
    let pttl = int(&ok(&mut c, &["PTTL", "{cw}.token.op-1"]));
    assert!(pttl > 590_000 && pttl <= 600_000, "{pttl}");
    ok(&mut c, &["CONFIG", "SET", "databroker.token-ttl-ms", "100"]);
    let r1 = ok(&mut c, &["DB.PUT", NS, "TOKEN", "short", "t", "d", "4"]);
    std::thread::sleep(Duration::from_millis(250));
    let r2 = ok(&mut c, &["DB.PUT", NS, "TOKEN", "short", "t", "d", "4"]);
    assert_ne!(
        versions_of(&r1),
        versions_of(&r2),
        "an expired token is forgotten"
    );
    assert!(arr(&ok(&mut c, &["DB.CHECK", NS])).is_empty());
}

/// The reply is lost (the client disconnects right after sending), the
/// client retries with the same token: the feed holds exactly one change.
fn retried_write_with_lost_reply_applies_once(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    ok(&mut c, &["DB.PUT", NS, "t", "seed", "0"]);
    let packed = redis::cmd("DB.PUT")
        .arg(NS)
        .arg("TOKEN")
        .arg("retry-1")
        .arg("t")
        .arg("a")
        .arg("payload")
        .get_packed_command();
    {
        let mut sock = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        sock.write_all(&packed).unwrap();
        sock.shutdown(std::net::Shutdown::Both).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while last_version(&mut c) < 2 {
        assert!(Instant::now() < deadline, "the first attempt never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    let retry = ok(
        &mut c,
        &["DB.PUT", NS, "TOKEN", "retry-1", "t", "a", "payload"],
    );
    assert_eq!(versions_of(&retry), [2]);
    let sv = int(&arr(&retry)[0]).to_string();
    let feed = ok(&mut c, &["DB.SYNC", NS, &sv, "1"]);
    assert_eq!(
        arr(&arr(&feed)[2]).len(),
        1,
        "exactly one change after the seed"
    );
    assert_eq!(last_version(&mut c), 2);
}

fn replicas_and_aof_agree(flavor: Flavor) {
    let mut primary = Server::start(Options::flavor(flavor).arg([
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ]));
    let replica = Server::start(Options::flavor(flavor));
    let mut r = replica.conn();
    ok(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &primary.port.to_string()],
    );
    wait_link_up(&replica);
    let mut p = primary.conn();
    ok(&mut p, &["DB.SETOPTIONS", NS, "t", "CAPACITY", "3"]);
    for i in 0..20 {
        let id = format!("id{}", i % 6);
        let tok = format!("tok{i}");
        let _ = t::<Value>(
            &mut p,
            &["DB.PUT", NS, "TOKEN", &tok, "IF", "*", "t", &id, "v"],
        );
        let _ = t::<Value>(
            &mut p,
            &["DB.PUT", NS, "TOKEN", &tok, "IF", "*", "t", &id, "v"],
        );
        let _ = t::<Value>(
            &mut p,
            &[
                "DB.WRITE", NS, "DEL", "t", &id, "IF", "0", "PUT", "u", &id, "w",
            ],
        );
        let _ = t::<Value>(
            &mut p,
            &[
                "DB.WRITE",
                NS,
                "TOKEN",
                &format!("w{i}"),
                "PUT",
                "t",
                &format!("x{i}"),
                "1",
                "DEL",
                "t",
                &id,
            ],
        );
    }
    assert_eq!(int(&ok(&mut p, &["WAIT", "1", "5000"])), 1);
    let d = primary.digest();
    assert_eq!(replica.digest(), d, "replica");
    let expiry = |c: &mut Connection| int(&ok(c, &["PEXPIRETIME", "{cw}.token.tok7"]));
    let e = expiry(&mut p);
    assert!(e > 0);
    assert_eq!(expiry(&mut r), e, "same absolute expiry on the replica");
    primary.restart();
    assert_eq!(primary.digest(), d, "AOF reload");
    assert_eq!(
        expiry(&mut primary.conn()),
        e,
        "same absolute expiry after the reload"
    );
    assert!(arr(&ok(&mut primary.conn(), &["DB.CHECK", NS])).is_empty());
}

on_both!(
    conditions_are_all_or_nothing,
    tokens_apply_a_write_once,
    retried_write_with_lost_reply_applies_once,
    replicas_and_aof_agree,
);
