//! "A server that explains itself" (issue #13), against real servers:
//! `COMMAND DOCS` of every `DB.*` command, the per-namespace figures of
//! `INFO databroker`, and the production `redis.conf` fragment / `make run DATA=`.

mod common;

use common::*;
use redis::Value;

/// A reply element as text (bulk or status).
fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        other => panic!("not text: {other:?}"),
    }
}

/// A flat `[name, value, name, value, ...]` array (or a RESP3 map) as pairs.
fn pairs(v: &Value) -> Vec<(String, Value)> {
    match v {
        Value::Map(m) => m.iter().map(|(k, v)| (text(k), v.clone())).collect(),
        Value::Array(a) => a
            .chunks_exact(2)
            .map(|p| (text(&p[0]), p[1].clone()))
            .collect(),
        other => panic!("not a map: {other:?}"),
    }
}

fn get(v: &Value, name: &str) -> Option<Value> {
    pairs(v)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn get_text(v: &Value, name: &str) -> String {
    text(&get(v, name).unwrap_or_else(|| panic!("no {name} in {v:?}")))
}

/// The `arguments` of a doc (or of a block/oneof argument).
fn arguments(v: &Value) -> Vec<Value> {
    get(v, "arguments").map_or_else(Vec::new, |a| arr(&a).to_vec())
}

fn flags(v: &Value) -> Vec<String> {
    get(v, "flags").map_or_else(Vec::new, |f| arr(&f).iter().map(text).collect())
}

/// `COMMAND DOCS <name>`: the doc map of that one command.
fn docs(c: &mut redis::Connection, name: &str) -> Value {
    let r = ok(c, &["COMMAND", "DOCS", name]);
    let all = pairs(&r);
    assert_eq!(all.len(), 1, "one command documented: {r:?}");
    assert_eq!(all[0].0.to_lowercase(), name.to_lowercase());
    all[0].1.clone()
}

const COMMANDS: [&str; 12] = [
    "db.put",
    "db.delete",
    "db.get",
    "db.setoptions",
    "db.getoptions",
    "db.lease",
    "db.release",
    "db.sync",
    "db.synclatest",
    "db.versions",
    "db.types",
    "db.check",
];

fn command_docs(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    for name in COMMANDS {
        let d = docs(&mut c, name);
        assert!(get_text(&d, "summary").len() > 20, "{name}: {d:?}");
        assert_eq!(get_text(&d, "since"), "0.1.0", "{name}");
        assert!(get_text(&d, "complexity").starts_with("O("), "{name}");
        assert_eq!(get_text(&d, "group"), "module", "{name}");
        assert_eq!(get_text(&d, "module"), "databroker", "{name}");
        let args = arguments(&d);
        let first = args
            .first()
            .unwrap_or_else(|| panic!("{name}: no arguments"));
        assert_eq!(get_text(first, "name"), "ns", "{name}");
        assert_eq!(get_text(first, "type"), "key", "{name}");
        assert_eq!(int(&get(first, "key_spec_index").unwrap()), 0, "{name}");
    }

    // DB.PUT <ns> <type> <id> <payload> [<type> <id> <payload> ...]
    let d = docs(&mut c, "DB.PUT");
    assert!(get_text(&d, "summary").contains("Writes records atomically"));
    let args = arguments(&d);
    let names: Vec<String> = args.iter().map(|a| get_text(a, "name")).collect();
    assert_eq!(names, ["ns", "record"]);
    assert_eq!(get_text(&args[1], "type"), "block");
    assert_eq!(flags(&args[1]), ["multiple"]);
    let sub: Vec<(String, String)> = arguments(&args[1])
        .iter()
        .map(|a| (get_text(a, "name"), get_text(a, "type")))
        .collect();
    assert_eq!(
        sub,
        [
            ("type".into(), "string".into()),
            ("id".into(), "string".into()),
            ("payload".into(), "string".into())
        ]
    );

    // DB.SYNC: the positional integers, then the options with their tokens.
    let d = docs(&mut c, "db.sync");
    let args = arguments(&d);
    let shape: Vec<(String, String, String, Vec<String>)> = args
        .iter()
        .map(|a| {
            (
                get_text(a, "name"),
                get_text(a, "type"),
                get(a, "token").map_or_else(String::new, |t| text(&t)),
                flags(a),
            )
        })
        .collect();
    let opt = || vec!["optional".to_string()];
    assert_eq!(
        shape,
        [
            ("ns".into(), "key".into(), String::new(), vec![]),
            (
                "server_version".into(),
                "integer".into(),
                String::new(),
                vec![]
            ),
            (
                "after_version".into(),
                "integer".into(),
                String::new(),
                vec![]
            ),
            ("stamp".into(), "integer".into(), "STAMP".into(), opt()),
            ("type".into(), "string".into(), "TYPE".into(), opt()),
            ("count".into(), "integer".into(), "COUNT".into(), opt()),
            ("ms".into(), "integer".into(), "BLOCK".into(), opt()),
            ("format".into(), "oneof".into(), "FORMAT".into(), opt()),
        ]
    );
    let format: Vec<(String, String)> = arguments(&args[7])
        .iter()
        .map(|a| (get_text(a, "type"), get_text(a, "token")))
        .collect();
    assert_eq!(
        format,
        [
            ("pure-token".into(), "MAP".into()),
            ("pure-token".into(), "PROTO".into())
        ]
    );

    // The documentation came with the key specs, which still hold: a
    // read-only key for DB.GET, read-write for DB.PUT.
    let info = ok(&mut c, &["COMMAND", "INFO", "db.get", "db.put"]);
    let specs = format!("{info:?}");
    assert!(
        specs.contains("\"RO\"") && specs.contains("\"RW\""),
        "{specs}"
    );
    // And the commands work as before.
    ok(&mut c, &["DB.PUT", "{ns}", "t", "a", "x"]);
    assert!(
        !s.log().contains("refused the documentation"),
        "{}",
        s.log()
    );
}

on_both!(command_docs);
