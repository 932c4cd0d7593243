//! ACL: every key a command touches is checked against the caller's key
//! permissions (Redis itself checks only `<ns>`), a waiting `DB.SYNC` is
//! re-checked when it wakes, and the commands sit in ACL categories where
//! the server supports it (issue #11).

mod common;

use std::time::Duration;

use common::*;
use redis::Value;

fn server(flavor: Flavor) -> Server {
    Server::start(Options::flavor(flavor))
}

/// A connection authenticated as `user` (created with `nopass`).
fn as_user(s: &Server, user: &str) -> redis::Connection {
    let c = redis::Client::open(format!("redis://{user}:x@127.0.0.1:{}", s.port))
        .unwrap()
        .get_connection()
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

fn keys(c: &mut redis::Connection) -> Vec<String> {
    let mut k: Vec<String> = t(c, &["KEYS", "*"]).unwrap();
    k.sort();
    k
}

fn every_key_is_checked(flavor: Flavor) {
    let s = server(flavor);
    let mut admin = s.conn();
    ok(
        &mut admin,
        &["ACL", "SETUSER", "u", "on", "nopass", "~cfg", "+@all"],
    );
    ok(
        &mut admin,
        &["ACL", "SETUSER", "full", "on", "nopass", "~cfg*", "+@all"],
    );
    ok(&mut admin, &["SET", "cfg.lease.adminlock", "me"]);
    let mut u = as_user(&s, "u");
    // The native command is refused, so the module's must be too.
    assert!(t::<Value>(&mut u, &["HSET", "cfg.records", "f", "v"]).is_err());
    for (args, key) in [
        (&["DB.PUT", "cfg", "t", "i", "v"][..], "cfg.server_version"),
        (&["DB.DELETE", "cfg", "t", "i"], "cfg.server_version"),
        (
            &["DB.SETOPTIONS", "cfg", "t", "CAPACITY", "1"],
            "cfg.server_version",
        ),
        (
            &["DB.RELEASE", "cfg", "adminlock", "me"],
            "cfg.lease.adminlock",
        ),
        (
            &["DB.LEASE", "cfg", "adminlock", "me", "1000"],
            "cfg.lease.adminlock",
        ),
        (&["DB.GET", "cfg", "t", "i"], "cfg.records"),
        (&["DB.GETOPTIONS", "cfg", "t"], "cfg.options"),
        (&["DB.VERSIONS", "cfg"], "cfg.server_version"),
        (&["DB.TYPES", "cfg"], "cfg.record_types"),
        (&["DB.SYNC", "cfg", "0", "0"], "cfg.server_version"),
        (&["DB.SYNCLATEST", "cfg"], "cfg.server_version"),
        (
            &[
                "EVAL",
                "return redis.call('DB.PUT', KEYS[1], 't', 'i', 'v')",
                "1",
                "cfg",
            ],
            "cfg.server_version",
        ),
    ] {
        let e = t::<Value>(&mut u, args).unwrap_err();
        assert_eq!(e.code(), Some("NOPERM"), "{args:?}: {e}");
        assert!(e.to_string().contains(key), "{args:?}: {e}");
    }
    assert_eq!(keys(&mut admin), ["cfg.lease.adminlock"]);
    // A user allowed every key of the namespace may do everything.
    let mut f = as_user(&s, "full");
    ok(&mut f, &["DB.PUT", "cfg", "t", "i", "v"]);
    assert_eq!(
        int(&ok(&mut f, &["DB.RELEASE", "cfg", "adminlock", "me"])),
        1
    );
    ok(
        &mut f,
        &["DB.SYNCLATEST", "cfg", "FILTER", r#"{"type":"t"}"#],
    );
    // Read-only keys: reads pass, writes are refused before writing.
    ok(
        &mut admin,
        &["ACL", "SETUSER", "ro", "on", "nopass", "%R~cfg*", "+@all"],
    );
    let mut ro = as_user(&s, "ro");
    ok(&mut ro, &["DB.GET", "cfg", "t", "i"]);
    ok(&mut ro, &["DB.SYNCLATEST", "cfg", "TYPE", "t"]);
    let e = t::<Value>(&mut ro, &["DB.PUT", "cfg", "t", "j", "v"]).unwrap_err();
    assert_eq!(e.code(), Some("NOPERM"), "{e}");
    // Permission on the records alone is not enough for a lease.
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "rec",
            "on",
            "nopass",
            "~cfg",
            "~cfg.records",
            "+@all",
        ],
    );
    let mut rec = as_user(&s, "rec");
    let e = t::<Value>(&mut rec, &["DB.LEASE", "cfg", "x", "me", "1000"]).unwrap_err();
    assert!(e.to_string().contains("cfg.lease.x"), "{e}");
    ok(&mut rec, &["DB.GET", "cfg", "t", "i"]);
    // Every key but the idempotency tokens: writes pass, a TOKEN is refused.
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "notok",
            "on",
            "nopass",
            "+@all",
            "~{t}",
            "~{t}.server_version",
            "~{t}.last_version",
            "~{t}.records",
            "~{t}.changes*",
            "~{t}.options",
            "~{t}.record_types",
        ],
    );
    let mut nt = as_user(&s, "notok");
    ok(&mut nt, &["DB.PUT", "{t}", "t", "i", "v"]);
    ok(
        &mut nt,
        &["DB.WRITE", "{t}", "PUT", "t", "j", "v", "DEL", "u", "k"],
    );
    for args in [
        &["DB.PUT", "{t}", "TOKEN", "x", "t", "i", "v"][..],
        &["DB.WRITE", "{t}", "TOKEN", "x", "PUT", "t", "i", "v"],
    ] {
        let e = t::<Value>(&mut nt, args).unwrap_err();
        assert_eq!(e.code(), Some("NOPERM"), "{args:?}: {e}");
        assert!(e.to_string().contains("{t}.token.x"), "{e}");
    }
    let e = t::<Value>(&mut rec, &["DB.CHECK", "cfg"]).unwrap_err();
    assert_eq!(e.code(), Some("NOPERM"), "{e}");
    ok(&mut f, &["DB.CHECK", "cfg"]);
}

fn waiting_sync_is_rechecked_on_wake(flavor: Flavor) {
    let s = server(flavor);
    let mut admin = s.conn();
    ok(
        &mut admin,
        &["ACL", "SETUSER", "w", "on", "nopass", "~{s}*", "+@all"],
    );
    ok(&mut admin, &["DB.PUT", "{s}", "t", "a", "1"]);
    let v = ok(&mut admin, &["DB.VERSIONS", "{s}"]);
    let sv = int(&arr(&v)[0]).to_string();
    let mut w = as_user(&s, "w");
    let waiter = std::thread::spawn(move || {
        t::<Value>(&mut w, &["DB.SYNC", "{s}", &sv, "1", "BLOCK", "8000"])
    });
    // Wait until it is blocked, then revoke its key access and write.
    for _ in 0..200 {
        let info: String = t(&mut admin, &["INFO", "databroker"]).unwrap();
        if info.contains("databroker_waiting_sync_clients:1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    ok(
        &mut admin,
        &["ACL", "SETUSER", "w", "resetkeys", "~{other}*"],
    );
    ok(&mut admin, &["DB.PUT", "{s}", "t", "b", "2"]);
    let e = waiter.join().unwrap().unwrap_err();
    assert_eq!(e.code(), Some("NOPERM"), "{e}");
    assert!(e.to_string().contains("{s}.server_version"), "{e}");
}

fn commands_have_acl_categories(flavor: Flavor) {
    let s = server(flavor);
    let mut admin = s.conn();
    match flavor {
        // Valkey 8 (like Redis 7.2+/7.4+) can put module commands in categories.
        Flavor::Valkey => {
            ok(
                &mut admin,
                &[
                    "ACL", "SETUSER", "rw", "on", "nopass", "~{n}*", "+@read", "+@write",
                ],
            );
            ok(
                &mut admin,
                &["ACL", "SETUSER", "r", "on", "nopass", "~{n}*", "+@read"],
            );
            ok(
                &mut admin,
                &[
                    "ACL",
                    "SETUSER",
                    "db",
                    "on",
                    "nopass",
                    "~{n}*",
                    "+@databroker",
                ],
            );
            let mut rw = as_user(&s, "rw");
            ok(&mut rw, &["DB.PUT", "{n}", "t", "i", "v"]);
            ok(&mut rw, &["DB.GET", "{n}", "t", "i"]);
            ok(&mut rw, &["DB.LEASE", "{n}", "l", "me", "1000"]);
            let mut r = as_user(&s, "r");
            ok(&mut r, &["DB.SYNCLATEST", "{n}"]);
            ok(&mut r, &["DB.VERSIONS", "{n}"]);
            let e = t::<Value>(&mut r, &["DB.PUT", "{n}", "t", "i", "v"]).unwrap_err();
            assert_eq!(e.code(), Some("NOPERM"), "{e}");
            let mut db = as_user(&s, "db");
            ok(&mut db, &["DB.DELETE", "{n}", "t", "i"]);
            let mut cmds: Vec<String> = t(&mut admin, &["ACL", "CAT", "databroker"]).unwrap();
            cmds.sort();
            assert_eq!(cmds.len(), 13, "{cmds:?}");
            let reads: Vec<String> = t(&mut admin, &["ACL", "CAT", "read"]).unwrap();
            assert!(reads.iter().any(|c| c == "db.sync"));
            assert!(!reads.iter().any(|c| c == "db.put"));
        }
        // Redis 7.0 cannot: users are granted the commands by name (README).
        Flavor::Redis => {
            assert!(
                s.log().contains("grant the DB.* commands by name"),
                "{}",
                s.log()
            );
            ok(
                &mut admin,
                &[
                    "ACL",
                    "SETUSER",
                    "named",
                    "on",
                    "nopass",
                    "~{n}*",
                    "+db.put",
                    "+db.delete",
                    "+db.get",
                    "+db.setoptions",
                    "+db.getoptions",
                    "+db.lease",
                    "+db.release",
                    "+db.sync",
                    "+db.synclatest",
                    "+db.versions",
                    "+db.types",
                ],
            );
            let mut n = as_user(&s, "named");
            ok(&mut n, &["DB.PUT", "{n}", "t", "i", "v"]);
            ok(&mut n, &["DB.GET", "{n}", "t", "i"]);
        }
    }
}

/// `DB.CHECK` reads the per-type set of every type in `record_types`: a
/// user who may not read one of them is refused, naming it.
fn check_covers_every_type_set(flavor: Flavor) {
    let s = server(flavor);
    let mut admin = s.conn();
    ok(
        &mut admin,
        &["DB.PUT", "{k}", "t", "a", "1", "secret", "b", "2"],
    );
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "chk",
            "on",
            "nopass",
            "~{k}",
            "~{k}.server_version",
            "~{k}.last_version",
            "~{k}.records",
            "~{k}.changes",
            "~{k}.options",
            "~{k}.record_types",
            "~{k}.changes.t",
            "+@all",
        ],
    );
    let mut chk = as_user(&s, "chk");
    let e = t::<Value>(&mut chk, &["DB.CHECK", "{k}"]).unwrap_err();
    assert_eq!(e.code(), Some("NOPERM"), "{e}");
    assert!(e.to_string().contains("{k}.changes.secret"), "{e}");
    ok(
        &mut admin,
        &["ACL", "SETUSER", "chk", "~{k}.changes.secret"],
    );
    assert!(arr(&ok(&mut chk, &["DB.CHECK", "{k}"])).is_empty());
}

on_both!(
    check_covers_every_type_set,
    every_key_is_checked,
    waiting_sync_is_rechecked_on_wake,
    commands_have_acl_categories,
);
