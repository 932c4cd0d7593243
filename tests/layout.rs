//! The Go backend's key layout, key by key, for namespace `{pomerium_v3}`:
//! what the module writes is what the Go backend reads.

mod common;

use std::collections::BTreeSet;

use common::*;
use databroker_core::pb::{Options as PbOptions, Record};
use prost::Message;

const NS: &str = "{pomerium_v3}";

fn go_layout(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    let r = ok(
        &mut c,
        &[
            "DB.PUT",
            NS,
            "type.googleapis.com/session",
            "s1",
            "one",
            "type.googleapis.com/user",
            "u1",
            "two",
        ],
    );
    let sv = int(&arr(&r)[0]);
    ok(
        &mut c,
        &["DB.PUT", NS, "type.googleapis.com/session", "s2", "three"],
    );
    ok(
        &mut c,
        &["DB.DELETE", NS, "type.googleapis.com/session", "s1"],
    );
    ok(
        &mut c,
        &[
            "DB.SETOPTIONS",
            NS,
            "type.googleapis.com/user",
            "CAPACITY",
            "10",
        ],
    );
    ok(&mut c, &["DB.LEASE", NS, "leader", "me", "60000"]);

    let keys: BTreeSet<String> = t(&mut c, &["KEYS", "*"]).unwrap();
    let want: BTreeSet<String> = [
        ".server_version",
        ".last_version",
        ".records",
        ".changes",
        ".changes.type.googleapis.com/session",
        ".changes.type.googleapis.com/user",
        ".options",
        ".lease.leader",
        ".record_types",
    ]
    .iter()
    .map(|k| format!("{NS}{k}"))
    .collect();
    assert_eq!(keys, want);
    let ty = |c: &mut redis::Connection, k: &str| -> String {
        t(c, &["TYPE", &format!("{NS}{k}")]).unwrap()
    };
    assert_eq!(ty(&mut c, ".server_version"), "string");
    assert_eq!(ty(&mut c, ".last_version"), "string");
    assert_eq!(ty(&mut c, ".records"), "hash");
    assert_eq!(ty(&mut c, ".changes"), "zset");
    assert_eq!(ty(&mut c, ".changes.type.googleapis.com/user"), "zset");
    assert_eq!(ty(&mut c, ".options"), "hash");
    assert_eq!(ty(&mut c, ".lease.leader"), "string");
    assert_eq!(ty(&mut c, ".record_types"), "set");

    let stored_sv: String = t(&mut c, &["GET", "{pomerium_v3}.server_version"]).unwrap();
    assert_eq!(stored_sv, sv.to_string());
    let last: String = t(&mut c, &["GET", "{pomerium_v3}.last_version"]).unwrap();
    assert_eq!(last, "4");

    // records: field <type>/<id> -> Record of the current version.
    let records: Vec<(Vec<u8>, Vec<u8>)> =
        t(&mut c, &["HGETALL", "{pomerium_v3}.records"]).unwrap();
    let mut fields = Vec::new();
    for (f, v) in &records {
        let rec = Record::decode(&v[..]).expect("records value decodes as Record");
        assert_eq!(
            String::from_utf8_lossy(f),
            format!("{}/{}", rec.r#type, rec.id)
        );
        assert!(rec.deleted_at.is_none());
        let data = rec.data.as_ref().unwrap();
        assert_eq!(data.type_url, rec.r#type);
        fields.push((
            String::from_utf8_lossy(f).to_string(),
            rec.version,
            String::from_utf8_lossy(&data.value).to_string(),
        ));
    }
    fields.sort();
    assert_eq!(
        fields,
        [
            (
                "type.googleapis.com/session/s2".to_string(),
                3,
                "three".to_string()
            ),
            (
                "type.googleapis.com/user/u1".to_string(),
                2,
                "two".to_string()
            ),
        ]
    );

    // changes: score = version, member = Record as of that version, gapless.
    let changes: Vec<(Vec<u8>, f64)> = t(
        &mut c,
        &["ZRANGE", "{pomerium_v3}.changes", "0", "-1", "WITHSCORES"],
    )
    .unwrap();
    let versions: Vec<u64> = changes
        .iter()
        .map(|(m, score)| {
            let rec = Record::decode(&m[..]).expect("changes member decodes as Record");
            assert_eq!(rec.version as f64, *score);
            rec.version
        })
        .collect();
    assert_eq!(versions, [1, 2, 3, 4]);
    let tomb = Record::decode(&changes[3].0[..]).unwrap();
    assert_eq!((tomb.id.as_str(), tomb.deleted_at.is_some()), ("s1", true));

    // changes.<type>: live ids scored by modified_at in seconds (microsecond fraction).
    for (rtype, id) in [
        ("type.googleapis.com/session", "s2"),
        ("type.googleapis.com/user", "u1"),
    ] {
        let members: Vec<(String, f64)> = t(
            &mut c,
            &[
                "ZRANGE",
                &format!("{NS}.changes.{rtype}"),
                "0",
                "-1",
                "WITHSCORES",
            ],
        )
        .unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].0, id);
        let g = ok(&mut c, &["DB.GET", NS, rtype, id]);
        let modified_us = int(&field(&g, "modified_at"));
        assert!(
            (members[0].1 - modified_us as f64 / 1e6).abs() < 1e-6,
            "{} vs {modified_us}",
            members[0].1
        );
    }

    // options: field <type> -> Options.
    let opts: Vec<u8> = t(
        &mut c,
        &["HGET", "{pomerium_v3}.options", "type.googleapis.com/user"],
    )
    .unwrap();
    assert_eq!(PbOptions::decode(&opts[..]).unwrap().capacity, Some(10));
    // record_types: every type written.
    let types: BTreeSet<String> = t(&mut c, &["SMEMBERS", "{pomerium_v3}.record_types"]).unwrap();
    assert_eq!(
        types,
        ["type.googleapis.com/session", "type.googleapis.com/user"]
            .map(String::from)
            .into()
    );
    // lease: the holder's id with a millisecond expiry.
    let holder: String = t(&mut c, &["GET", "{pomerium_v3}.lease.leader"]).unwrap();
    assert_eq!(holder, "me");
    let pttl: i64 = t(&mut c, &["PTTL", "{pomerium_v3}.lease.leader"]).unwrap();
    assert!(pttl > 50_000 && pttl <= 60_000);
}

/// Data written by plain commands in the Go layout (as the Go backend
/// would, including a stale id in `changes.<type>`) is served by the module.
fn reads_go_written_data(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    let rec = Record {
        version: 7,
        r#type: "t".into(),
        id: "a".into(),
        data: Some(prost_types::Any {
            type_url: "t".into(),
            value: b"go".to_vec(),
        }),
        modified_at: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5000,
        }),
        deleted_at: None,
    }
    .encode_to_vec();
    let _: () = redis::pipe()
        .cmd("SET")
        .arg("{g}.server_version")
        .arg("18446744073709551000")
        .ignore()
        .cmd("SET")
        .arg("{g}.last_version")
        .arg("7")
        .ignore()
        .cmd("HSET")
        .arg("{g}.records")
        .arg("t/a")
        .arg(&rec)
        .ignore()
        .cmd("ZADD")
        .arg("{g}.changes")
        .arg(7)
        .arg(&rec)
        .ignore()
        .cmd("ZADD")
        .arg("{g}.changes.t")
        .arg(1_700_000_000.000005)
        .arg("a")
        .ignore()
        .cmd("ZADD")
        .arg("{g}.changes.t")
        .arg(1.0)
        .arg("deleted-long-ago")
        .ignore()
        .query(&mut c)
        .unwrap();
    let g = ok(&mut c, &["DB.GET", "{g}", "t", "a"]);
    assert_eq!(int(&field(&g, "version")), 7);
    assert_eq!(int(&field(&g, "modified_at")), 1_700_000_000_000_005);
    // A Go server_version above 2^63 is replied as its digits.
    let v = ok(&mut c, &["DB.VERSIONS", "{g}"]);
    assert_eq!(bulk(&arr(&v)[0]), b"18446744073709551000");
    let r = ok(
        &mut c,
        &[
            "DB.SYNC",
            "{g}",
            "18446744073709551000",
            "6",
            "FORMAT",
            "PROTO",
        ],
    );
    assert_eq!(arr(&arr(&r)[2]).len(), 1);
    // The stale id is skipped when paging by type and dropped by capacity.
    let r = ok(
        &mut c,
        &["DB.SYNCLATEST", "{g}", "TYPE", "t", "FORMAT", "PROTO"],
    );
    assert_eq!(arr(&arr(&r)[3]).len(), 1);
    ok(&mut c, &["DB.SETOPTIONS", "{g}", "t", "CAPACITY", "1"]);
    let ids: Vec<String> = t(&mut c, &["ZRANGE", "{g}.changes.t", "0", "-1"]).unwrap();
    assert_eq!(ids, ["a"]);
    assert_ne!(ok(&mut c, &["DB.GET", "{g}", "t", "a"]), redis::Value::Nil);
    // Writes continue the Go version sequence.
    let r = ok(&mut c, &["DB.PUT", "{g}", "t", "b", "x"]);
    assert_eq!(arr(&arr(&r)[2]).iter().map(int).collect::<Vec<_>>(), [8]);
}

on_both!(go_layout, reads_go_written_data);
