//! Every command's success and error paths against a real server, on Redis and Valkey.

mod common;

use common::*;
use databroker_core::pb::Record;
use prost::Message;
use redis::Value;

const NS: &str = "{ns}";

fn server(flavor: Flavor) -> Server {
    Server::start(Options::flavor(flavor))
}

fn put_get(flavor: Flavor) {
    let s = server(flavor);
    let mut c = s.conn();
    let r = ok(
        &mut c,
        &["DB.PUT", NS, "t", "a", "hello", "t", "b", "world"],
    );
    let r = arr(&r);
    let sv = int(&r[0]);
    assert!(sv > 0);
    let now = int(&r[1]);
    assert_eq!(arr(&r[2]).iter().map(int).collect::<Vec<_>>(), [1, 2]);
    let g = ok(&mut c, &["DB.GET", NS, "t", "a"]);
    assert_eq!(bulk(&field(&g, "type")), b"t");
    assert_eq!(bulk(&field(&g, "id")), b"a");
    assert_eq!(int(&field(&g, "version")), 1);
    assert_eq!(int(&field(&g, "modified_at")), now);
    assert_eq!(field(&g, "deleted_at"), Value::Nil);
    assert_eq!(bulk(&field(&g, "data")), b"hello");
    // PROTO: the stored bytes.
    let p = ok(&mut c, &["DB.GET", NS, "t", "b", "FORMAT", "PROTO"]);
    let rec = Record::decode(bulk(&p)).unwrap();
    assert_eq!(
        (rec.version, rec.r#type.as_str(), rec.id.as_str()),
        (2, "t", "b")
    );
    assert_eq!(rec.data.unwrap().value, b"world");
    assert_eq!(ok(&mut c, &["DB.GET", NS, "t", "missing"]), Value::Nil);
    // A second write keeps the server version and continues the versions.
    let r = ok(&mut c, &["DB.PUT", NS, "u", "a", "x"]);
    assert_eq!(int(&arr(&r)[0]), sv);
    assert_eq!(arr(&arr(&r)[2]).iter().map(int).collect::<Vec<_>>(), [3]);
}

fn resp3_map(flavor: Flavor) {
    let s = server(flavor);
    let mut c = s.conn();
    ok(&mut c, &["DB.PUT", NS, "t", "a", "hello"]);
    ok(&mut c, &["HELLO", "3"]);
    let g = ok(&mut c, &["DB.GET", NS, "t", "a"]);
    let Value::Map(m) = &g else {
        panic!("RESP3 reply should be a map: {g:?}")
    };
    let names: Vec<&[u8]> = m.iter().map(|(k, _)| bulk(k)).collect();
    assert_eq!(
        names,
        [
            &b"type"[..],
            b"id",
            b"version",
            b"modified_at",
            b"deleted_at",
            b"data"
        ]
    );
    assert_eq!(m[4].1, Value::Nil);
    let o = ok(&mut c, &["DB.GETOPTIONS", NS, "t"]);
    assert_eq!(o, Value::Map(vec![]));
}

fn binary_arguments(flavor: Flavor) {
    let s = server(flavor);
    let mut c = s.conn();
    let payload: Vec<u8> = (0..=255u8).collect();
    let r: Value = q(&mut c, &[b"DB.PUT", b"{n\0s}", b"t", b"i\0d", &payload]).unwrap();
    assert_eq!(arr(&arr(&r)[2]).len(), 1);
    let g: Value = q(&mut c, &[b"DB.GET", b"{n\0s}", b"t", b"i\0d"]).unwrap();
    assert_eq!(bulk(&field(&g, "data")), &payload[..]);
    assert_eq!(bulk(&field(&g, "id")), b"i\0d");
    let e = q::<Value>(&mut c, &[b"DB.PUT", b"{ns}", b"\xff", b"a", b"x"]).unwrap_err();
    assert!(e.to_string().contains("type must be valid UTF-8"), "{e}");
    let e = q::<Value>(&mut c, &[b"DB.PUT", b"{ns}", b"t", &[b'a'; 1025], b"x"]).unwrap_err();
    assert!(
        e.to_string().contains("id must be at most 1024 bytes"),
        "{e}"
    );
}

fn delete(flavor: Flavor) {
    let s = server(flavor);
    let mut c = s.conn();
    ok(&mut c, &["DB.PUT", NS, "t", "a", "hello"]);
    let r = ok(&mut c, &["DB.DELETE", NS, "t", "a", "t", "never"]);
    assert_eq!(arr(&arr(&r)[2]).iter().map(int).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(ok(&mut c, &["DB.GET", NS, "t", "a"]), Value::Nil);
    let members: Vec<Vec<u8>> = t(&mut c, &["ZRANGE", "{ns}.changes", "0", "-1"]).unwrap();
    let tomb = Record::decode(&members[1][..]).unwrap();
    assert_eq!(tomb.version, 2);
    assert_eq!(tomb.deleted_at, tomb.modified_at);
    assert!(tomb.deleted_at.is_some());
    assert_eq!(
        tomb.data.unwrap().value,
        b"hello",
        "the tombstone carries the last data"
    );
    assert_eq!(
        t::<i64>(&mut c, &["EXISTS", "{ns}.records", "{ns}.changes.t"]).unwrap(),
        0
    );
    assert_eq!(err(&mut c, &["DB.DELETE", NS, "t"]).0, "ERR");
}

fn conflict(flavor: Flavor) {
    let s = server(flavor);
    let mut c = s.conn();
    ok(&mut c, &["DB.PUT", NS, "a/b", "c", "x"]);
    let d = s.digest();
    let (code, msg) = err(&mut c, &["DB.PUT", NS, "a", "b/c", "y"]);
    assert_eq!(code, "CONFLICT", "{msg}");
    assert_eq!(err(&mut c, &["DB.DELETE", NS, "a", "b/c"]).0, "CONFLICT");
    assert_eq!(
        err(&mut c, &["DB.PUT", NS, "p/q", "r", "1", "p", "q/r", "2"]).0,
        "CONFLICT"
    );
    assert_eq!(s.digest(), d);
    assert_eq!(ok(&mut c, &["DB.GET", NS, "a", "b/c"]), Value::Nil);
}

fn capacity(flavor: Flavor) {
    let s = server(flavor);
    let mut c = s.conn();
    for id in ["a", "b", "c"] {
        ok(&mut c, &["DB.PUT", NS, "t", id, id]);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert_eq!(
        ok(&mut c, &["DB.SETOPTIONS", NS, "t", "CAPACITY", "2"]),
        Value::Okay
    );
    let live: Vec<String> = t(&mut c, &["ZRANGE", "{ns}.changes.t", "0", "-1"]).unwrap();
    assert_eq!(live, ["b", "c"]);
    assert_eq!(ok(&mut c, &["DB.GET", NS, "t", "a"]), Value::Nil);
    let o = ok(&mut c, &["DB.GETOPTIONS", NS, "t"]);
    assert_eq!(int(&field(&o, "capacity")), 2);
    ok(&mut c, &["DB.PUT", NS, "t", "d", "d"]);
    let live: Vec<String> = t(&mut c, &["ZRANGE", "{ns}.changes.t", "0", "-1"]).unwrap();
    assert_eq!(live, ["c", "d"]);
    assert_eq!(t::<i64>(&mut c, &["HLEN", "{ns}.records"]).unwrap(), 2);
    // Versions stay gapless: 3 puts, 1 eviction, 1 put, 1 eviction.
    let r = ok(&mut c, &["DB.VERSIONS", NS]);
    assert_eq!(int(&arr(&r)[2]), 6);
    assert_eq!(t::<i64>(&mut c, &["ZCARD", "{ns}.changes"]).unwrap(), 6);
    // Removing options removes the limit.
    assert_eq!(ok(&mut c, &["DB.SETOPTIONS", NS, "t"]), Value::Okay);
    assert_eq!(fields(&ok(&mut c, &["DB.GETOPTIONS", NS, "t"])).len(), 0);
    ok(&mut c, &["DB.PUT", NS, "t", "e", "e"]);
    assert_eq!(t::<i64>(&mut c, &["HLEN", "{ns}.records"]).unwrap(), 3);
    assert_eq!(
        err(&mut c, &["DB.SETOPTIONS", NS, "t", "CAPACITY", "-1"]).0,
        "ERR"
    );
    assert_eq!(
        err(&mut c, &["DB.SETOPTIONS", NS, "t", "LIMIT", "1"]),
        ("ERR".into(), "ResponseError: syntax error".into())
    );
}

fn leases(flavor: Flavor) {
    let s = server(flavor);
    let mut c = s.conn();
    assert_eq!(
        ok(&mut c, &["DB.LEASE", NS, "l", "me", "150"]),
        Value::Int(1)
    );
    assert_eq!(
        ok(&mut c, &["DB.LEASE", NS, "l", "you", "150"]),
        Value::Int(0)
    );
    let pttl: i64 = t(&mut c, &["PTTL", "{ns}.lease.l"]).unwrap();
    assert!(pttl > 0 && pttl <= 150, "{pttl}");
    assert_eq!(
        ok(&mut c, &["DB.LEASE", NS, "l", "me", "10000"]),
        Value::Int(1),
        "renew"
    );
    assert!(t::<i64>(&mut c, &["PTTL", "{ns}.lease.l"]).unwrap() > 5000);
    assert_eq!(ok(&mut c, &["DB.RELEASE", NS, "l", "you"]), Value::Int(0));
    assert_eq!(ok(&mut c, &["DB.RELEASE", NS, "l", "me"]), Value::Int(1));
    assert_eq!(
        ok(&mut c, &["DB.LEASE", NS, "l", "you", "100"]),
        Value::Int(1)
    );
    std::thread::sleep(std::time::Duration::from_millis(150));
    assert_eq!(
        ok(&mut c, &["DB.LEASE", NS, "l", "me", "1000"]),
        Value::Int(1),
        "expired lease is free"
    );
    assert_eq!(
        ok(&mut c, &["DB.LEASE", NS, "l", "me", "0"]),
        Value::Int(0),
        "ttl 0 gives it up"
    );
    assert_eq!(t::<i64>(&mut c, &["EXISTS", "{ns}.lease.l"]).unwrap(), 0);
    assert_eq!(err(&mut c, &["DB.LEASE", NS, "l", "me", "-5"]).0, "ERR");
    assert!(err(&mut c, &["DB.LEASE", NS, "l", "me", "soon"])
        .1
        .contains("ttl_ms"));
    assert_eq!(err(&mut c, &["DB.LEASE", NS, "l", "me"]).0, "ERR");
    assert_eq!(err(&mut c, &["DB.RELEASE", NS, "l"]).0, "ERR");
}

fn versions_and_types(flavor: Flavor) {
    let s = server(flavor);
    let mut c = s.conn();
    let v = ok(&mut c, &["DB.VERSIONS", NS]);
    assert_eq!(arr(&v).iter().map(int).collect::<Vec<_>>(), [0, 1, 0]);
    assert_eq!(ok(&mut c, &["DB.TYPES", NS]), Value::Array(vec![]));
    let r = ok(&mut c, &["DB.PUT", NS, "zeta", "1", "x", "alpha", "1", "x"]);
    let v = ok(&mut c, &["DB.VERSIONS", NS]);
    assert_eq!(
        arr(&v).iter().map(int).collect::<Vec<_>>(),
        [int(&arr(&r)[0]), 1, 2]
    );
    let types: Vec<String> = t(&mut c, &["DB.TYPES", NS]).unwrap();
    assert_eq!(types, ["alpha", "zeta"]);
    assert_eq!(err(&mut c, &["DB.VERSIONS", NS, "extra"]).0, "ERR");
}

fn wrong_type_and_corrupt(flavor: Flavor) {
    let s = server(flavor);
    let mut c = s.conn();
    for key in [
        "{ns}.records",
        "{ns}.changes",
        "{ns}.changes.t",
        "{ns}.options",
        "{ns}.record_types",
    ] {
        ok(&mut c, &["SET", key, "x"]);
        let d = s.digest();
        assert_eq!(
            err(&mut c, &["DB.PUT", NS, "t", "a", "x"]).0,
            "WRONGTYPE",
            "{key}"
        );
        assert_eq!(s.digest(), d);
        ok(&mut c, &["DEL", key]);
    }
    ok(&mut c, &["LPUSH", "{ns}.last_version", "x"]);
    assert_eq!(err(&mut c, &["DB.VERSIONS", NS]).0, "WRONGTYPE");
    assert_eq!(err(&mut c, &["DB.DELETE", NS, "t", "a"]).0, "WRONGTYPE");
    ok(&mut c, &["DEL", "{ns}.last_version"]);
    ok(&mut c, &["HSET", "{ns}.lease.l", "f", "v"]);
    assert_eq!(
        err(&mut c, &["DB.LEASE", NS, "l", "me", "100"]).0,
        "WRONGTYPE"
    );
    ok(&mut c, &["SET", "{ns}.last_version", "not a number"]);
    assert_eq!(err(&mut c, &["DB.PUT", NS, "t", "a", "x"]).0, "CORRUPT");
    ok(&mut c, &["DEL", "{ns}.last_version"]);
    ok(&mut c, &["HSET", "{ns}.records", "t/a", "\u{ff}garbage"]);
    assert_eq!(err(&mut c, &["DB.GET", NS, "t", "a"]).0, "CORRUPT");
    assert_eq!(err(&mut c, &["DB.PUT", NS, "t", "a", "x"]).0, "CORRUPT");
    ok(&mut c, &["HSET", "{ns}.options", "t", "\u{ff}garbage"]);
    assert_eq!(err(&mut c, &["DB.GETOPTIONS", NS, "t"]).0, "CORRUPT");
    assert_eq!(ok(&mut c, &["PING"]), Value::SimpleString("PONG".into()));
}

fn errors_change_nothing(flavor: Flavor) {
    let s = server(flavor);
    let mut c = s.conn();
    ok(&mut c, &["DB.PUT", NS, "t", "a", "x", "t", "b", "y"]);
    ok(&mut c, &["DB.SETOPTIONS", NS, "t", "CAPACITY", "5"]);
    let d = s.digest();
    let bad: &[&[&str]] = &[
        &["DB.PUT", NS, "t", "c", "z", "t", "", "w"],
        &["DB.PUT", NS, "t", "c", "z", "t"],
        &["DB.PUT"],
        &["DB.DELETE", NS, "t", "a", "t", ""],
        &["DB.SETOPTIONS", NS, "t", "CAPACITY", "x"],
        &["DB.SETOPTIONS", NS, "t", "CAPACITY", "1", "BOGUS"],
        &["DB.GET", NS, "t", "a", "FORMAT", "XML"],
        &["DB.LEASE", NS, "l", "id", "1e3"],
        &["DB.RELEASE", NS, "", "id"],
        &["DB.TYPES"],
    ];
    for args in bad {
        let (code, msg) = err(&mut c, args);
        assert_eq!(code, "ERR", "{args:?}: {msg}");
        assert_eq!(s.digest(), d, "{args:?} changed the keyspace");
    }
    assert!(err(&mut c, &["DB.PUT"])
        .1
        .contains("wrong number of arguments"));
}

fn notifications_and_publish(flavor: Flavor) {
    let s = server(flavor);
    let mut c = s.conn();
    ok(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Kh"]);
    let mut sub = s.conn();
    let mut pubsub = sub.as_pubsub();
    pubsub.subscribe("{ns}.last_version_ch").unwrap();
    pubsub.psubscribe("__keyspace@0__:{ns}.*").unwrap();
    pubsub
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    ok(&mut c, &["DB.PUT", NS, "t", "a", "x"]);
    ok(&mut c, &["DB.DELETE", NS, "t", "a"]);
    let mut got = Vec::new();
    for _ in 0..4 {
        let m = pubsub.get_message().unwrap();
        got.push((
            m.get_channel_name().to_string(),
            m.get_payload::<String>().unwrap(),
        ));
    }
    got.sort();
    assert_eq!(
        got,
        [
            (
                "__keyspace@0__:{ns}.records".to_string(),
                "db.delete".to_string()
            ),
            (
                "__keyspace@0__:{ns}.records".to_string(),
                "db.put".to_string()
            ),
            ("{ns}.last_version_ch".to_string(), "1".to_string()),
            ("{ns}.last_version_ch".to_string(), "2".to_string()),
        ]
    );
}

fn info_and_config(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor).module_args([
        "changes-ttl-ms",
        "3600000",
        "max-count",
        "500",
    ]));
    let mut c = s.conn();
    let cfg: Vec<String> = t(&mut c, &["CONFIG", "GET", "databroker.changes-ttl-ms"]).unwrap();
    assert_eq!(cfg[1], "3600000");
    let cfg: Vec<String> = t(&mut c, &["CONFIG", "GET", "databroker.max-count"]).unwrap();
    assert_eq!(cfg[1], "500");
    ok(&mut c, &["CONFIG", "SET", "databroker.max-count", "20000"]);
    let cfg: Vec<String> = t(&mut c, &["CONFIG", "GET", "databroker.max-count"]).unwrap();
    assert_eq!(cfg[1], "20000");
    assert!(t::<Value>(&mut c, &["CONFIG", "SET", "databroker.max-count", "0"]).is_err());
    ok(&mut c, &["DB.PUT", NS, "t", "a", "x", "t", "b", "y"]);
    ok(&mut c, &["DB.DELETE", NS, "t", "a"]);
    let _ = t::<Value>(&mut c, &["DB.GET", NS, "t", ""]); // ERR id must not be empty
    let info: String = t(&mut c, &["INFO", "databroker"]).unwrap();
    for line in [
        "databroker_cmd_put:1",
        "databroker_records_written:2",
        "databroker_tombstones:1",
        "databroker_errors:1",
    ] {
        assert!(info.contains(line), "{line} missing from {info}");
    }
}

fn command_metadata(flavor: Flavor) {
    let s = server(flavor);
    let mut c = s.conn();
    let keys: Vec<String> =
        t(&mut c, &["COMMAND", "GETKEYS", "DB.PUT", NS, "t", "a", "x"]).unwrap();
    assert_eq!(keys, [NS]);
    let keys: Vec<String> = t(
        &mut c,
        &["COMMAND", "GETKEYS", "DB.GET", "{other}", "t", "a"],
    )
    .unwrap();
    assert_eq!(keys, ["{other}"]);
    // Write commands are refused above maxmemory; reads still work.
    ok(&mut c, &["DB.PUT", NS, "t", "a", "x"]);
    ok(&mut c, &["CONFIG", "SET", "maxmemory", "1"]);
    assert_eq!(err(&mut c, &["DB.PUT", NS, "t", "b", "x"]).0, "OOM");
    assert_ne!(ok(&mut c, &["DB.GET", NS, "t", "a"]), Value::Nil);
}

fn cluster_needs_hash_tag(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor).arg([
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
    ]));
    let mut c = s.conn();
    ok(&mut c, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    for _ in 0..200 {
        let info: String = t(&mut c, &["CLUSTER", "INFO"]).unwrap();
        if info.contains("cluster_state:ok") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert_eq!(
        err(&mut c, &["DB.PUT", "plain", "t", "a", "x"]).0,
        "CROSSSLOT"
    );
    assert_eq!(err(&mut c, &["DB.GET", "{}", "t", "a"]).0, "CROSSSLOT");
    ok(&mut c, &["DB.PUT", "{pomerium_v3}", "t", "a", "x"]);
    assert_ne!(
        ok(&mut c, &["DB.GET", "{pomerium_v3}", "t", "a"]),
        Value::Nil
    );
}

/// A Go-backend-style client WATCHing the namespace sees module writes.
fn watch_sees_module_writes(flavor: Flavor) {
    let s = server(flavor);
    let mut go = s.conn();
    let mut c = s.conn();
    ok(&mut go, &["WATCH", "{ns}.last_version"]);
    ok(&mut c, &["DB.PUT", NS, "t", "a", "x"]);
    ok(&mut go, &["MULTI"]);
    ok(&mut go, &["SET", "{ns}.last_version", "999"]);
    assert_eq!(
        ok(&mut go, &["EXEC"]),
        Value::Nil,
        "the transaction must abort"
    );
    let v = ok(&mut c, &["DB.VERSIONS", NS]);
    assert_eq!(int(&arr(&v)[2]), 1);
    // Keys a command only reads, and every key of a failed command, stay unmodified.
    ok(&mut c, &["DB.PUT", NS, "a/b", "c", "x"]);
    ok(
        &mut go,
        &["WATCH", "{ns}.records", "{ns}.options", "{ns}.last_version"],
    );
    assert_eq!(err(&mut c, &["DB.PUT", NS, "a", "b/c", "y"]).0, "CONFLICT");
    ok(&mut c, &["DB.GET", NS, "t", "a"]);
    ok(&mut go, &["MULTI"]);
    ok(&mut go, &["PING"]);
    assert_ne!(
        ok(&mut go, &["EXEC"]),
        Value::Nil,
        "reads and failed writes must not abort it"
    );
    // Every key a write changes is signaled, each on its own.
    for key in [
        "{ns}.records",
        "{ns}.changes",
        "{ns}.changes.t",
        "{ns}.last_version",
    ] {
        ok(&mut go, &["WATCH", key]);
        ok(&mut c, &["DB.PUT", NS, "t", "w", "x"]);
        ok(&mut go, &["MULTI"]);
        ok(&mut go, &["PING"]);
        assert_eq!(ok(&mut go, &["EXEC"]), Value::Nil, "{key} was written");
    }
    ok(&mut go, &["WATCH", "{ns}.options"]);
    ok(&mut c, &["DB.PUT", NS, "t", "b", "x"]); // reads the options, writes other keys
    ok(&mut go, &["MULTI"]);
    ok(&mut go, &["PING"]);
    assert_ne!(
        ok(&mut go, &["EXEC"]),
        Value::Nil,
        "the options were only read"
    );
}

/// ACL key patterns apply to the namespace: reads need read permission
/// only, writes need write permission.
fn acl_key_patterns(flavor: Flavor) {
    let s = server(flavor);
    let mut c = s.conn();
    let r = ok(&mut c, &["DB.PUT", NS, "t", "a", "x"]);
    let sv = int(&arr(&r)[0]).to_string();
    ok(
        &mut c,
        &["ACL", "SETUSER", "reader", "on", ">pw", "%R~{ns}*", "+@all"],
    );
    ok(
        &mut c,
        &[
            "ACL",
            "SETUSER",
            "stranger",
            "on",
            ">pw",
            "~{other}*",
            "+@all",
        ],
    );
    let mut reader = s.conn();
    ok(&mut reader, &["AUTH", "reader", "pw"]);
    assert_ne!(ok(&mut reader, &["DB.GET", NS, "t", "a"]), Value::Nil);
    ok(&mut reader, &["DB.VERSIONS", NS]);
    ok(&mut reader, &["DB.SYNC", NS, &sv, "0"]);
    ok(&mut reader, &["DB.SYNCLATEST", NS]);
    ok(&mut reader, &["DB.GETOPTIONS", NS, "t"]);
    ok(&mut reader, &["DB.TYPES", NS]);
    assert_eq!(err(&mut reader, &["DB.PUT", NS, "t", "b", "y"]).0, "NOPERM");
    assert_eq!(
        err(&mut reader, &["DB.LEASE", NS, "l", "me", "100"]).0,
        "NOPERM"
    );
    let mut stranger = s.conn();
    ok(&mut stranger, &["AUTH", "stranger", "pw"]);
    assert_eq!(err(&mut stranger, &["DB.GET", NS, "t", "a"]).0, "NOPERM");
    ok(&mut stranger, &["DB.PUT", "{other}", "t", "a", "x"]);
}

/// A write sets `last_version` as SET does: the value, without an expiry
/// (the module overwrites an existing string in place when it has none).
fn last_version_written_like_set(flavor: Flavor) {
    let s = server(flavor);
    let mut c = s.conn();
    ok(&mut c, &["DB.PUT", NS, "t", "a", "x"]);
    ok(&mut c, &["DB.PUT", NS, "t", "b", "x"]);
    assert_eq!(
        ok(&mut c, &["GET", "{ns}.last_version"]),
        Value::BulkString(b"2".to_vec())
    );
    ok(&mut c, &["PEXPIRE", "{ns}.last_version", "100000"]);
    ok(&mut c, &["DB.PUT", NS, "t", "c", "x"]);
    assert_eq!(int(&ok(&mut c, &["PTTL", "{ns}.last_version"])), -1);
    for i in 0..12 {
        ok(&mut c, &["DB.PUT", NS, "t", &format!("id{i}"), "x"]);
    }
    assert_eq!(
        ok(&mut c, &["GET", "{ns}.last_version"]),
        Value::BulkString(b"15".to_vec())
    );
    assert_eq!(int(&ok(&mut c, &["STRLEN", "{ns}.last_version"])), 2);
}

on_both!(
    acl_key_patterns,
    last_version_written_like_set,
    watch_sees_module_writes,
    put_get,
    resp3_map,
    binary_arguments,
    delete,
    conflict,
    capacity,
    leases,
    versions_and_types,
    wrong_type_and_corrupt,
    errors_change_nothing,
    notifications_and_publish,
    info_and_config,
    command_metadata,
    cluster_needs_hash_tag,
);
