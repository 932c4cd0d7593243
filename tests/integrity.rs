//! Never a silent wrong answer (issue #9): evicting memory policies refuse
//! writes, keys deleted by hand give `CORRUPT` (never a re-issued version) and
//! show in `DB.CHECK`, rolled-back namespaces (RDB restore, truncated AOF,
//! failover to a lagging replica) make stamped followers start over,
//! deleted namespaces wake their waiters, and OOM still runs the commands
//! that free memory.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use redis::{Connection, Value};

const NS: &str = "{ig}";

fn sv_of(c: &mut Connection) -> String {
    let v = ok(c, &["DB.VERSIONS", NS]);
    int(&arr(&v)[0]).to_string()
}

/// `DB.SYNC` from `after` with `stamp`: (next_after, next_stamp, records).
fn sync(
    c: &mut Connection,
    sv: &str,
    after: u64,
    stamp: i64,
) -> Result<(u64, i64, usize), (String, String)> {
    let (a, s) = (after.to_string(), stamp.to_string());
    match t::<Value>(c, &["DB.SYNC", NS, sv, &a, "STAMP", &s, "COUNT", "1000"]) {
        Ok(v) => {
            let items = arr(&v);
            Ok((int(&items[1]) as u64, int(&items[3]), arr(&items[2]).len()))
        }
        Err(e) => Err((e.code().unwrap_or("").to_string(), e.to_string())),
    }
}

fn check(c: &mut Connection) -> Vec<String> {
    let v = ok(c, &["DB.CHECK", NS]);
    arr(&v)
        .iter()
        .map(|l| String::from_utf8_lossy(bulk(l)).into_owned())
        .collect()
}

fn info(c: &mut Connection) -> String {
    t(c, &["INFO", "databroker"]).unwrap()
}

fn evicting_policies_refuse_writes(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor).arg([
        "--maxmemory",
        "200mb",
        "--maxmemory-policy",
        "allkeys-lru",
    ]));
    let mut c = s.conn();
    assert!(info(&mut c).contains("eviction_policy_unsafe:1"));
    assert!(s
        .log()
        .contains("refuses writes while maxmemory-policy is allkeys-lru"));
    for policy in [
        "allkeys-lru",
        "allkeys-random",
        "volatile-lru",
        "allkeys-lfu",
        "volatile-ttl",
    ] {
        ok(&mut c, &["CONFIG", "SET", "maxmemory-policy", policy]);
        let d = s.digest();
        for cmd in [
            &["DB.PUT", NS, "t", "a", "x"][..],
            &["DB.DELETE", NS, "t", "a"],
            &["DB.SETOPTIONS", NS, "t", "CAPACITY", "3"],
            &["DB.LEASE", NS, "l", "me", "1000"],
            &["DB.RELEASE", NS, "l", "me"],
        ] {
            let (code, msg) = err(&mut c, cmd);
            assert_eq!(code, "MISCONF", "{policy} {cmd:?}");
            assert!(msg.contains(policy), "{msg}");
            assert!(
                msg.contains("CONFIG SET maxmemory-policy noeviction"),
                "{msg}"
            );
        }
        assert_eq!(s.digest(), d, "refused writes change nothing");
        // Reads still answer.
        ok(&mut c, &["DB.VERSIONS", NS]);
    }
    ok(&mut c, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    ok(&mut c, &["DB.PUT", NS, "t", "a", "x"]);
    ok(&mut c, &["DB.LEASE", NS, "l", "me", "1000"]);
    // The timer notices the change within a second and logs it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !info(&mut c).contains("eviction_policy_unsafe:0") {
        assert!(
            Instant::now() < deadline,
            "INFO never showed the safe policy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(s.log().contains("writes are accepted again"));
    assert!(info(&mut c).contains("writes_refused_eviction:25"));
    // maxmemory 0 disables eviction whatever the policy.
    ok(
        &mut c,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
    );
    ok(&mut c, &["CONFIG", "SET", "maxmemory", "0"]);
    ok(&mut c, &["DB.PUT", NS, "t", "b", "y"]);
}

/// A namespace with versions 1..=4: puts of t/a, t/b, t/c and a delete of t/b.
fn seeded(c: &mut Connection) -> String {
    ok(c, &["FLUSHALL"]);
    ok(
        c,
        &["DB.PUT", NS, "t", "a", "1", "t", "b", "2", "t", "c", "3"],
    );
    ok(c, &["DB.DELETE", NS, "t", "b"]);
    ok(c, &["DB.PUT", NS, "u", "z", "9"]);
    assert!(check(c).is_empty(), "a healthy namespace: {:?}", check(c));
    sv_of(c)
}

fn versions_of(v: &Value) -> Vec<i64> {
    arr(&arr(v)[2]).iter().map(int).collect()
}

fn keys_deleted_by_hand(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    let lost = |c: &mut Connection, key: &str| {
        ok(c, &["DEL", &format!("{NS}{key}")]);
    };

    // last_version: every command that issues or reads versions says CORRUPT.
    let sv = seeded(&mut c);
    lost(&mut c, ".last_version");
    let d = s.digest();
    for cmd in [
        &["DB.PUT", NS, "t", "d", "4"][..],
        &["DB.DELETE", NS, "t", "a"],
        &["DB.VERSIONS", NS],
        &["DB.SYNC", NS, &sv, "2"],
        &["DB.SYNCLATEST", NS],
    ] {
        let (code, msg) = err(&mut c, cmd);
        assert_eq!(code, "CORRUPT", "{cmd:?}");
        assert!(
            msg.contains("{ig}.last_version") && msg.contains("DB.CHECK"),
            "{msg}"
        );
    }
    assert_eq!(s.digest(), d);
    assert!(check(&mut c)
        .iter()
        .any(|l| l.starts_with("{ig}.last_version")));

    // A last_version set back (what a partial restore does) would re-issue: refused.
    let sv = seeded(&mut c);
    ok(&mut c, &["SET", "{ig}.last_version", "2"]);
    assert_eq!(err(&mut c, &["DB.PUT", NS, "t", "d", "4"]).0, "CORRUPT");
    assert_eq!(err(&mut c, &["DB.SYNC", NS, &sv, "1"]).0, "CORRUPT");
    assert!(!check(&mut c).is_empty());

    // server_version.
    let sv = seeded(&mut c);
    lost(&mut c, ".server_version");
    assert_eq!(err(&mut c, &["DB.PUT", NS, "t", "d", "4"]).0, "CORRUPT");
    assert_eq!(err(&mut c, &["DB.SYNC", NS, &sv, "2"]).0, "CORRUPT");
    assert!(check(&mut c)
        .iter()
        .any(|l| l.starts_with("{ig}.server_version")));

    // changes: no version is re-issued; followers behind get TRIMMED.
    let sv = seeded(&mut c);
    lost(&mut c, ".changes");
    assert_eq!(err(&mut c, &["DB.SYNC", NS, &sv, "2"]).0, "TRIMMED");
    assert!(check(&mut c)
        .iter()
        .any(|l| l.contains("has no change at version")));
    let r = ok(&mut c, &["DB.PUT", NS, "t", "d", "4"]);
    assert_eq!(versions_of(&r), [6]);

    // records: a snapshot would miss records without a tombstone.
    seeded(&mut c);
    lost(&mut c, ".records");
    let (code, msg) = err(&mut c, &["DB.SYNCLATEST", NS]);
    assert_eq!(code, "CORRUPT", "{msg}");
    let problems = check(&mut c);
    assert!(
        problems
            .iter()
            .any(|l| l.contains("lost without a tombstone")),
        "{problems:?}"
    );

    // changes.<type>, record_types, options: DB.CHECK reports them.
    seeded(&mut c);
    lost(&mut c, ".changes.t");
    assert!(check(&mut c)
        .iter()
        .any(|l| l.contains("lacks live record id \"a\"")));
    seeded(&mut c);
    lost(&mut c, ".record_types");
    assert!(check(&mut c).iter().any(|l| l.contains("lacks type \"t\"")));
    seeded(&mut c);
    ok(&mut c, &["HSET", "{ig}.options", "t", "\u{ff}garbage"]);
    assert!(check(&mut c)
        .iter()
        .any(|l| l.starts_with("{ig}.options: field t")));
    seeded(&mut c);
    ok(&mut c, &["ZADD", "{ig}.changes", "5", "dup"]);
    let problems = check(&mut c);
    assert!(
        problems
            .iter()
            .any(|l| l.contains("two changes at version 5")),
        "{problems:?}"
    );
}

fn stamps_follow_a_healthy_namespace(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    let sv = seeded(&mut c);
    // SYNCLATEST hands out the stamp of record_version.
    let v = ok(&mut c, &["DB.SYNCLATEST", NS]);
    let items = arr(&v);
    assert_eq!(int(&items[1]), 5);
    let stamp5 = int(&items[4]);
    assert!(stamp5 > 0);
    // A follower walks the feed one change at a time with stamps.
    let (mut after, mut stamp) = (0, 0);
    while after < 5 {
        let a = (after).to_string();
        let st = stamp.to_string();
        let v = ok(
            &mut c,
            &["DB.SYNC", NS, &sv, &a, "STAMP", &st, "COUNT", "1"],
        );
        after = int(&arr(&v)[1]) as u64;
        stamp = int(&arr(&v)[3]);
    }
    assert_eq!(stamp, stamp5);
    assert_eq!(sync(&mut c, &sv, 5, stamp5), Ok((5, stamp5, 0)));
    // A wrong stamp for a retained change means another history.
    let (code, msg) = sync(&mut c, &sv, 5, stamp5 + 1).unwrap_err();
    assert_eq!(code, "SERVERVERSION");
    assert!(msg.contains("rolled back"), "{msg}");
    // STAMP 0 (or none) checks nothing.
    assert_eq!(sync(&mut c, &sv, 3, 0).map(|r| r.0), Ok(5));
    // After a trim of the cursor's change there is nothing to compare: no error.
    ok(&mut c, &["CONFIG", "SET", "databroker.changes-ttl-ms", "1"]);
    std::thread::sleep(Duration::from_millis(5));
    ok(&mut c, &["DB.PUT", NS, "t", "e", "5"]);
    let v = ok(&mut c, &["DB.VERSIONS", NS]);
    assert_eq!(
        int(&arr(&v)[1]),
        6,
        "everything but the newest change trimmed"
    );
    assert_eq!(sync(&mut c, &sv, 5, stamp5).map(|r| r.0), Ok(6));
}

/// A follower that read versions 1..=3 with stamps: (sv, stamp at 3).
fn follow_to_3(c: &mut Connection) -> (String, i64) {
    let sv = sv_of(c);
    let (after, stamp, n) = sync(c, &sv, 0, 0).unwrap();
    assert_eq!((after, n), (3, 3));
    (sv, stamp)
}

fn rollback_rdb_restore(flavor: Flavor) {
    let mut s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    ok(&mut c, &["DB.PUT", NS, "a", "1", "x"]);
    ok(&mut c, &["SAVE"]);
    ok(&mut c, &["DB.PUT", NS, "a", "2", "y", "a", "3", "z"]);
    let (sv, stamp3) = follow_to_3(&mut c);
    s.restart(); // kill -9; dump.rdb holds version 1 only
    let mut c = s.conn();
    assert_eq!(int(&arr(&ok(&mut c, &["DB.VERSIONS", NS]))[2]), 1);
    // Before versions are re-issued the cursor is beyond last_version.
    assert_eq!(sync(&mut c, &sv, 3, stamp3).unwrap_err().0, "SERVERVERSION");
    let r = ok(
        &mut c,
        &["DB.PUT", NS, "a", "4", "w", "a", "5", "v", "a", "6", "u"],
    );
    assert_eq!(versions_of(&r), [2, 3, 4]);
    let (code, msg) = sync(&mut c, &sv, 3, stamp3).unwrap_err();
    assert_eq!(code, "SERVERVERSION");
    assert!(msg.contains("rolled back"), "{msg}");

    // A restart that lost nothing: the same cursor goes on.
    ok(&mut c, &["SAVE"]);
    let (after, stamp, _) = sync(&mut c, &sv, 0, 0).unwrap();
    s.restart();
    let mut c = s.conn();
    assert_eq!(sync(&mut c, &sv, after, stamp), Ok((after, stamp, 0)));
    ok(&mut c, &["DB.PUT", NS, "a", "7", "t"]);
    assert_eq!(
        sync(&mut c, &sv, after, stamp).map(|r| (r.0, r.2)),
        Ok((after + 1, 1))
    );
}

fn aof_file(s: &Server) -> std::path::PathBuf {
    let dir = s.dir.path().join("appendonlydir");
    std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .unwrap_or_else(|| panic!("no incr AOF in {}", dir.display()))
}

fn rollback_truncated_aof(flavor: Flavor) {
    let mut s = Server::start(Options::flavor(flavor).arg([
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ]));
    let mut c = s.conn();
    ok(&mut c, &["DB.PUT", NS, "a", "1", "x"]);
    let aof = aof_file(&s);
    let keep = std::fs::metadata(&aof).unwrap().len();
    ok(&mut c, &["DB.PUT", NS, "a", "2", "y", "a", "3", "z"]);
    let (sv, stamp3) = follow_to_3(&mut c);
    s.kill();
    // The tail is lost mid-transaction (a torn write).
    let f = std::fs::OpenOptions::new().write(true).open(&aof).unwrap();
    f.set_len(keep + 20).unwrap();
    drop(f);
    s.restart();
    let mut c = s.conn();
    assert_eq!(
        int(&arr(&ok(&mut c, &["DB.VERSIONS", NS]))[2]),
        1,
        "{}",
        s.log()
    );
    let r = ok(
        &mut c,
        &["DB.PUT", NS, "a", "4", "w", "a", "5", "v", "a", "6", "u"],
    );
    assert_eq!(versions_of(&r), [2, 3, 4]);
    let (code, msg) = sync(&mut c, &sv, 3, stamp3).unwrap_err();
    assert_eq!(code, "SERVERVERSION", "{msg}");

    // A clean restart from the AOF: nothing lost, the cursor goes on.
    let (after, stamp, _) = sync(&mut c, &sv, 0, 0).unwrap();
    s.restart();
    let mut c = s.conn();
    assert_eq!(sync(&mut c, &sv, after, stamp), Ok((after, stamp, 0)));
}

fn rollback_failover_to_lagging_replica(flavor: Flavor) {
    let primary = Server::start(Options::flavor(flavor));
    let replica = Server::start(Options::flavor(flavor));
    let mut p = primary.conn();
    let mut r = replica.conn();
    ok(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &primary.port.to_string()],
    );
    wait_link_up(&replica);
    ok(&mut p, &["DB.PUT", NS, "a", "1", "x"]);
    let acked = int(&ok(&mut p, &["WAIT", "1", "5000"]));
    assert_eq!(acked, 1);
    // The replica falls behind (its link is cut: it is promoted before the
    // next writes reach it), the primary takes writes a follower reads, and
    // dies; clients move to the promoted replica.
    ok(&mut r, &["REPLICAOF", "NO", "ONE"]);
    ok(&mut p, &["DB.PUT", NS, "a", "2", "y", "a", "3", "z"]);
    let (sv, stamp3) = follow_to_3(&mut p);
    drop(primary);
    assert_eq!(sv_of(&mut r), sv, "same namespace, same server_version");
    let w = ok(&mut r, &["DB.PUT", NS, "a", "4", "w", "a", "5", "v"]);
    assert_eq!(versions_of(&w), [2, 3]);
    let (code, msg) = sync(&mut r, &sv, 3, stamp3).unwrap_err();
    assert_eq!(code, "SERVERVERSION", "{msg}");
    assert!(msg.contains("rolled back"));
}

/// Sends a blocking `DB.SYNC` on a raw socket (the reply is read later).
fn block_forever(port: u16, sv: &str, after: &str, db: u32) -> TcpStream {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut cmd = redis::cmd("SELECT").arg(db).get_packed_command();
    cmd.extend(
        redis::cmd("DB.SYNC")
            .arg(NS)
            .arg(sv)
            .arg(after)
            .arg("BLOCK")
            .arg("0")
            .get_packed_command(),
    );
    sock.write_all(&cmd).unwrap();
    sock
}

/// Reads a waiter's reply (after SELECT's `+OK`) within `limit`.
fn reply_within(sock: &mut TcpStream, limit: Duration) -> String {
    sock.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !(got.starts_with(b"+OK\r\n") && got.len() > 5 && got.ends_with(b"\r\n")) {
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "no reply within {limit:?}: {e} (got {:?})",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    String::from_utf8_lossy(&got[5..]).into_owned()
}

fn wait_waiting(c: &mut Connection, n: usize) {
    let want = format!("waiting_sync_clients:{n}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !info(c).contains(&want) {
        assert!(Instant::now() < deadline, "{}", info(c));
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn deleted_namespace_wakes_waiters(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    let all = [
        "{ig}.server_version",
        "{ig}.last_version",
        "{ig}.changes",
        "{ig}.changes.t",
        "{ig}.records",
        "{ig}.record_types",
    ];
    let del: Vec<&str> = std::iter::once("DEL").chain(all).collect();
    let unlink: Vec<&str> = std::iter::once("UNLINK").chain(all).collect();
    // (deletion, the answer a fresh DB.SYNC gets afterwards)
    let deletions: [(&[&str], &str); 6] = [
        (&["FLUSHALL"], "-SERVERVERSION"),
        (&["FLUSHDB"], "-SERVERVERSION"),
        (&del, "-SERVERVERSION"),
        (&unlink, "-SERVERVERSION"),
        (&["SWAPDB", "0", "1"], "-SERVERVERSION"),
        // Only the counters: the records left behind make it CORRUPT.
        (&["DEL", "{ig}.last_version"], "-CORRUPT"),
    ];
    for (deletion, answer) in deletions {
        ok(&mut c, &["FLUSHALL"]);
        let r = ok(&mut c, &["DB.PUT", NS, "t", "a", "1"]);
        let sv = int(&arr(&r)[0]).to_string();
        let mut waiters: Vec<TcpStream> =
            (0..3).map(|_| block_forever(s.port, &sv, "1", 0)).collect();
        wait_waiting(&mut c, 3);
        let start = Instant::now();
        ok(&mut c, deletion);
        for w in &mut waiters {
            let reply = reply_within(w, Duration::from_secs(2));
            assert!(reply.starts_with(answer), "{deletion:?}: {reply}");
        }
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(100),
            "{deletion:?} woke waiters after {took:?}"
        );
        wait_waiting(&mut c, 0);
    }
    // Waiters of another namespace and database are not disturbed.
    ok(&mut c, &["FLUSHALL"]);
    let r = ok(&mut c, &["DB.PUT", NS, "t", "a", "1"]);
    let sv = int(&arr(&r)[0]).to_string();
    let mut w = block_forever(s.port, &sv, "1", 0);
    wait_waiting(&mut c, 1);
    ok(&mut c, &["DEL", "{other}.last_version"]);
    ok(&mut c, &["SELECT", "2"]);
    ok(&mut c, &["FLUSHDB"]);
    std::thread::sleep(Duration::from_millis(100));
    ok(&mut c, &["SELECT", "0"]);
    wait_waiting(&mut c, 1);
    ok(&mut c, &["DB.PUT", NS, "t", "b", "2"]);
    let reply = reply_within(&mut w, Duration::from_secs(2));
    assert!(reply.starts_with('*'), "{reply}");
}

fn oom_runs_what_frees_memory(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    ok(
        &mut c,
        &["DB.PUT", NS, "t", "a", "1", "t", "b", "2", "t", "c", "3"],
    );
    ok(&mut c, &["DB.SETOPTIONS", NS, "t", "CAPACITY", "10"]);
    ok(&mut c, &["DB.LEASE", NS, "leader", "me", "60000"]);
    ok(&mut c, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    ok(&mut c, &["CONFIG", "SET", "maxmemory", "1"]);
    // Growth is refused, and refusals change nothing.
    let d = s.digest();
    for cmd in [
        &["DB.PUT", NS, "t", "d", "4"][..],
        &["DB.LEASE", NS, "other", "me", "60000"],
        &["DB.SETOPTIONS", NS, "t", "CAPACITY", "20"],
        &["DB.SETOPTIONS", NS, "t"],
    ] {
        assert_eq!(err(&mut c, cmd).0, "OOM", "{cmd:?}");
        assert_eq!(s.digest(), d, "{cmd:?}");
    }
    // What frees memory (or keeps a lease alive) runs.
    assert_eq!(
        int(&ok(&mut c, &["DB.LEASE", NS, "leader", "me", "60000"])),
        1
    );
    assert_eq!(
        int(&ok(&mut c, &["DB.LEASE", NS, "leader", "thief", "60000"])),
        0
    );
    ok(&mut c, &["DB.DELETE", NS, "t", "a"]);
    ok(&mut c, &["DB.SETOPTIONS", NS, "t", "CAPACITY", "1"]);
    let latest = ok(&mut c, &["DB.SYNCLATEST", NS]);
    assert_eq!(arr(&arr(&latest)[3]).len(), 1);
    assert_eq!(int(&ok(&mut c, &["DB.RELEASE", NS, "leader", "me"])), 1);
    ok(&mut c, &["CONFIG", "SET", "maxmemory", "0"]);
    ok(&mut c, &["DB.PUT", NS, "t", "d", "4"]);
    assert!(check(&mut c).is_empty());
}

on_both!(
    evicting_policies_refuse_writes,
    keys_deleted_by_hand,
    stamps_follow_a_healthy_namespace,
    rollback_rdb_restore,
    rollback_truncated_aof,
    rollback_failover_to_lagging_replica,
    deleted_namespace_wakes_waiters,
    oom_runs_what_frees_memory,
);
