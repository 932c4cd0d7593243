//! Replication and persistence: a replica and an AOF reload end with the same
//! `DEBUG DIGEST` as the primary after mixed writes, deletes, evictions,
//! leases and retention trims; followers on a replica are woken by replicated writes.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::{Connection, Value};

const NS: &str = "{rep}";

fn mixed_writes(c: &mut Connection, seed: u64, ops: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..ops {
        let rtype = ["t", "u", "capped"][rng.random_range(0..3)];
        let id = format!("id{}", rng.random_range(0..30));
        match rng.random_range(0..10) {
            0..=4 => {
                let n = rng.random_range(1..5);
                let mut args = vec!["DB.PUT".to_string(), NS.to_string()];
                for k in 0..n {
                    args.extend([
                        rtype.to_string(),
                        format!("{id}-{k}"),
                        format!("payload-{i}-{k}"),
                    ]);
                }
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                ok(c, &a);
            }
            5..=6 => {
                ok(c, &["DB.DELETE", NS, rtype, &format!("{id}-0")]);
            }
            7 => {
                let cap = rng.random_range(2..8).to_string();
                ok(c, &["DB.SETOPTIONS", NS, "capped", "CAPACITY", &cap]);
            }
            8 => {
                let holder = format!("h{}", rng.random_range(0..3));
                ok(c, &["DB.LEASE", NS, "leader", &holder, "600000"]);
            }
            _ => {
                let holder = format!("h{}", rng.random_range(0..3));
                ok(c, &["DB.RELEASE", NS, "leader", &holder]);
            }
        }
    }
}

fn replica_and_aof(flavor: Flavor) {
    let mut primary = Server::start(
        Options::flavor(flavor)
            .arg(["--appendonly", "yes", "--appendfsync", "always"])
            .module_args(["changes-ttl-ms", "0"]),
    );
    let replica = Server::start(Options::flavor(flavor).arg([
        "--replicaof",
        "127.0.0.1",
        &primary.port.to_string(),
    ]));
    wait_link_up(&replica);
    let mut c = primary.conn();
    mixed_writes(&mut c, 7, 250);
    // Retention: shorten the TTL so that the next writes and the timer trim.
    ok(
        &mut c,
        &["CONFIG", "SET", "databroker.changes-ttl-ms", "300"],
    );
    // With no writes, the primary's timer trims (and replicates the ZREMs).
    let deadline = Instant::now() + Duration::from_secs(10);
    while t::<i64>(&mut c, &["EXISTS", "{rep}.changes"]).unwrap() == 1 {
        assert!(Instant::now() < deadline, "the timer did not trim");
        thread::sleep(Duration::from_millis(100));
    }
    let _: i64 = t(&mut c, &["WAIT", "1", "5000"]).unwrap();
    assert_eq!(
        replica.digest(),
        primary.digest(),
        "replica differs after timer trims"
    );
    mixed_writes(&mut c, 8, 100);
    thread::sleep(Duration::from_millis(400));
    mixed_writes(&mut c, 9, 100); // these writes trim the previous batch
                                  // Writes inside MULTI/EXEC and Lua replicate the same effects.
    let _: () = redis::pipe()
        .atomic()
        .cmd("DB.PUT")
        .arg(NS)
        .arg("t")
        .arg("in-multi")
        .arg("x")
        .ignore()
        .cmd("DB.DELETE")
        .arg(NS)
        .arg("t")
        .arg("id1-0")
        .ignore()
        .query(&mut c)
        .unwrap();
    ok(
        &mut c,
        &[
            "EVAL",
            "return redis.call('DB.PUT', KEYS[1], 't', 'in-lua', 'y')",
            "1",
            NS,
        ],
    );
    let info: String = t(&mut c, &["INFO", "databroker"]).unwrap();
    assert!(
        !info.contains("databroker_trimmed_changes:0\r"),
        "nothing was trimmed: {info}"
    );
    assert!(
        !info.contains("databroker_evictions:0\r"),
        "nothing was evicted: {info}"
    );
    let _: i64 = t(&mut c, &["WAIT", "1", "5000"]).unwrap();
    let d = primary.digest();
    assert_eq!(replica.digest(), d, "replica digest differs");
    // DEBUG DIGEST ignores expiry times: compare the lease's exactly.
    let mut rc = replica.conn();
    for _ in 0..200 {
        ok(&mut c, &["DB.LEASE", NS, "exact", "me", "600000"]);
    }
    let _: i64 = t(&mut c, &["WAIT", "1", "5000"]).unwrap();
    let on_primary: i64 = t(&mut c, &["PEXPIRETIME", "{rep}.lease.exact"]).unwrap();
    let on_replica: i64 = t(&mut rc, &["PEXPIRETIME", "{rep}.lease.exact"]).unwrap();
    assert_eq!(
        on_primary, on_replica,
        "lease expiry differs on the replica"
    );

    // Reads work on the replica.
    let mut rc = replica.conn();
    let v = ok(&mut rc, &["DB.VERSIONS", NS]);
    assert_eq!(v, ok(&mut c, &["DB.VERSIONS", NS]));
    // A follower blocked on the replica wakes when the primary writes.
    let sv = int(&arr(&v)[0]).to_string();
    let last = int(&arr(&v)[2]).to_string();
    rc.send_packed_command(
        &redis::cmd("DB.SYNC")
            .arg(NS)
            .arg(&sv)
            .arg(&last)
            .arg("BLOCK")
            .arg("10000")
            .get_packed_command(),
    )
    .unwrap();
    let mut sub = replica.conn();
    let mut pubsub = sub.as_pubsub();
    pubsub.subscribe("{rep}.last_version_ch").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    ok(&mut c, &["DB.PUT", NS, "t", "late", "x"]);
    let published: String = pubsub.get_message().unwrap().get_payload().unwrap();
    assert_eq!(
        published,
        (int(&arr(&v)[2]) + 1).to_string(),
        "replica subscribers get the publish"
    );
    let r = rc.recv_response().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "woken after {:?}",
        start.elapsed()
    );
    assert_eq!(arr(&arr(&r)[2]).len(), 1);
    let _: i64 = t(&mut c, &["WAIT", "1", "5000"]).unwrap();
    let d = primary.digest();
    assert_eq!(replica.digest(), d);

    // The AOF reloads to the same digest (with the module loaded or not).
    primary.restart();
    assert_eq!(primary.digest(), d, "AOF reload digest differs");
    let mut c = primary.conn();
    assert_ne!(ok(&mut c, &["DB.GET", NS, "t", "late"]), Value::Nil);
    primary.options.module_args = None;
    primary.restart();
    assert_eq!(primary.digest(), d, "AOF reload without the module differs");
}

on_both!(replica_and_aof);
