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

const COMMANDS: [&str; 13] = [
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
    "db.write",
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
    assert_eq!(names, ["ns", "versions", "token", "record"]);
    assert_eq!(text(&get(&args[1], "token").unwrap()), "IF");
    assert_eq!(text(&get(&args[2], "token").unwrap()), "TOKEN");
    assert_eq!(flags(&args[1]), ["optional"]);
    assert_eq!(get_text(&args[3], "type"), "block");
    assert_eq!(flags(&args[3]), ["multiple"]);
    // DB.WRITE: an optional token, then PUT/DEL operations with their own IF.
    let w = docs(&mut c, "DB.WRITE");
    let wargs = arguments(&w);
    let wnames: Vec<String> = wargs.iter().map(|a| get_text(a, "name")).collect();
    assert_eq!(wnames, ["ns", "token", "operation"]);
    assert_eq!(get_text(&wargs[2], "type"), "oneof");
    let ops: Vec<String> = arguments(&wargs[2])
        .iter()
        .map(|a| text(&get(a, "token").unwrap()))
        .collect();
    assert_eq!(ops, ["PUT", "DEL"]);
    let sub: Vec<(String, String)> = arguments(&args[3])
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

/// `INFO databroker` as field -> value (without the `databroker_` prefix).
fn info(c: &mut redis::Connection) -> Vec<(String, String)> {
    let text: String = t(c, &["INFO", "databroker"]).expect("INFO");
    text.lines()
        .filter_map(|l| l.strip_prefix("databroker_"))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn info_u64(info: &[(String, String)], name: &str) -> u64 {
    info.iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name} in {info:?}"))
        .1
        .parse()
        .unwrap()
}

/// The itemized namespaces (`ns_<i>` fields), in order, as key -> value maps.
fn namespaces(info: &[(String, String)]) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    for i in 0.. {
        let Some((_, v)) = info.iter().find(|(k, _)| *k == format!("ns_{i}")) else {
            break;
        };
        out.push(
            v.split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }
    out
}

/// The itemized namespace `name` in database `db`.
fn ns_of(info: &[(String, String)], name: &str, db: u64) -> Option<Vec<(String, String)>> {
    namespaces(info).into_iter().find(|n| {
        n.iter().any(|(k, v)| k == "name" && v == name)
            && n.iter().any(|(k, v)| k == "db" && *v == db.to_string())
    })
}

fn num(ns: &[(String, String)], name: &str) -> u64 {
    ns.iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name} in {ns:?}"))
        .1
        .parse()
        .unwrap()
}

/// Polls INFO until `done` holds (at most 5 s).
fn info_until(
    c: &mut redis::Connection,
    what: &str,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let i = info(c);
        if done(&i) {
            return i;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {i:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn info_namespaces(flavor: Flavor) {
    // Changes kept forever until the test turns retention on.
    let s = Server::start(Options::flavor(flavor).module_args(["changes-ttl-ms", "0"]));
    let mut c = s.conn();
    let before = info(&mut c);
    assert_eq!(info_u64(&before, "namespaces"), 0);
    assert_eq!(info_u64(&before, "records"), 0);

    ok(
        &mut c,
        &["DB.PUT", "{a}", "t", "1", "x", "t", "2", "y", "t", "3", "z"],
    );
    ok(&mut c, &["DB.DELETE", "{a}", "t", "1"]);
    let sv_b = int(&arr(&ok(&mut c, &["DB.PUT", "{b}", "t", "1", "x"]))[0]);
    // A name that needs escaping, and a namespace in another database.
    ok(&mut c, &["DB.PUT", "odd, name:=%", "t", "1", "x"]);
    let mut c1 = s.conn();
    ok(&mut c1, &["SELECT", "1"]);
    ok(&mut c1, &["DB.PUT", "{a}", "t", "1", "x", "t", "2", "y"]);

    // A follower waiting on {b}.
    let url = s.url();
    let follower = std::thread::spawn(move || {
        let mut f = redis::Client::open(url).unwrap().get_connection().unwrap();
        let sv = sv_b.to_string();
        let r = ok(&mut f, &["DB.SYNC", "{b}", &sv, "1", "BLOCK", "10000"]);
        arr(&arr(&r)[2]).len()
    });
    let i = info_until(&mut c, "the follower waits", |i| {
        ns_of(i, "{b}", 0).is_some_and(|n| num(&n, "waiting") == 1)
    });
    assert_eq!(info_u64(&i, "namespaces"), 4);
    assert_eq!(info_u64(&i, "namespaces_dropped"), 0);
    assert_eq!(info_u64(&i, "records"), 2 + 1 + 1 + 2);
    assert_eq!(info_u64(&i, "changes_retained"), 4 + 1 + 1 + 2);
    let a = ns_of(&i, "{a}", 0).expect("{a} itemized");
    assert_eq!(
        [
            num(&a, "records"),
            num(&a, "changes"),
            num(&a, "earliest_version"),
            num(&a, "latest_version"),
            num(&a, "waiting"),
            num(&a, "trimmed"),
            num(&a, "last_trim_ms"),
        ],
        [2, 4, 1, 4, 0, 0, 0]
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(num(&a, "last_write_ms").abs_diff(now_ms) < 60_000, "{a:?}");
    let a1 = ns_of(&i, "{a}", 1).expect("{a} in db 1 itemized");
    assert_eq!((num(&a1, "records"), num(&a1, "latest_version")), (2, 2));
    assert!(ns_of(&i, "odd%2C%20name%3A%3D%25", 0).is_some(), "{i:?}");
    // Largest first.
    assert_eq!(
        namespaces(&i)[0]
            .iter()
            .find(|(k, _)| k == "records")
            .unwrap()
            .1,
        "2"
    );

    // The write wakes the follower; it no longer counts.
    ok(&mut c, &["DB.PUT", "{b}", "t", "2", "y"]);
    assert_eq!(follower.join().unwrap(), 1);
    let i = info(&mut c);
    assert_eq!(num(&ns_of(&i, "{b}", 0).unwrap(), "waiting"), 0);

    // Retention on: the timer trims db 0's namespaces and says when.
    ok(&mut c, &["CONFIG", "SET", "databroker.changes-ttl-ms", "1"]);
    let i = info_until(&mut c, "the timer trims {a}", |i| {
        ns_of(i, "{a}", 0).is_some_and(|n| num(&n, "changes") == 0)
    });
    let a = ns_of(&i, "{a}", 0).unwrap();
    assert_eq!(
        [
            num(&a, "records"),
            num(&a, "trimmed"),
            num(&a, "earliest_version"),
            num(&a, "latest_version")
        ],
        [2, 4, 5, 4]
    );
    assert!(num(&a, "last_trim_ms").abs_diff(now_ms) < 60_000, "{a:?}");
    // A write trims too (db 1 is not walked by the timer).
    ok(&mut c1, &["DB.PUT", "{a}", "t", "3", "z"]);
    let a1 = ns_of(&info(&mut c), "{a}", 1).unwrap();
    assert_eq!((num(&a1, "trimmed"), num(&a1, "changes")), (2, 1));
    assert!(num(&a1, "last_trim_ms") > 0);

    // Namespaces deleted by hand leave at the next INFO; FLUSHDB and
    // FLUSHALL drop theirs.
    ok(
        &mut c,
        &[
            "DEL",
            "odd, name:=%.records",
            "odd, name:=%.changes",
            "odd, name:=%.server_version",
            "odd, name:=%.last_version",
            "odd, name:=%.changes.t",
            "odd, name:=%.record_types",
        ],
    );
    assert_eq!(info_u64(&info(&mut c), "namespaces"), 3);
    ok(&mut c, &["FLUSHDB"]);
    let i = info(&mut c);
    assert_eq!(info_u64(&i, "namespaces"), 1);
    assert!(ns_of(&i, "{a}", 1).is_some());
    ok(&mut c, &["FLUSHALL"]);
    let i = info(&mut c);
    assert_eq!(
        (
            info_u64(&i, "namespaces"),
            info_u64(&i, "records"),
            namespaces(&i).len()
        ),
        (0, 0, 0)
    );
    // Names longer than 1024 bytes are not registered (bounded memory).
    let long = "n".repeat(1025);
    ok(&mut c, &["DB.PUT", &long, "t", "1", "x"]);
    ok(&mut c, &["DB.PUT", &long[..1024], "t", "1", "x"]);
    let i = info(&mut c);
    assert_eq!(info_u64(&i, "namespaces"), 1);
    let shown = &namespaces(&i)[0];
    assert_eq!(
        shown.iter().find(|(k, _)| k == "name").unwrap().1,
        format!("{}...", "n".repeat(128))
    );
}

/// A replica learns its namespaces from the replicated writes.
fn info_on_replica(flavor: Flavor) {
    let primary = Server::start(Options::flavor(flavor));
    let replica = Server::start(Options::flavor(flavor).arg([
        "--replicaof",
        "127.0.0.1",
        &primary.port.to_string(),
    ]));
    wait_link_up(&replica);
    let mut r = replica.conn();
    let mut c = primary.conn();
    ok(
        &mut c,
        &["DB.PUT", "{r}", "t", "1", "x", "t", "2", "y", "t", "3", "z"],
    );
    let _: i64 = t(&mut c, &["WAIT", "1", "5000"]).unwrap();
    let i = info_until(&mut r, "the replica lists {r}", |i| {
        ns_of(i, "{r}", 0).is_some_and(|n| num(&n, "latest_version") == 3)
    });
    let n = ns_of(&i, "{r}", 0).unwrap();
    assert_eq!((num(&n, "records"), num(&n, "changes")), (3, 3));
    assert!(num(&n, "last_write_ms") > 0);
}

/// Many namespaces: INFO itemizes the 10 largest, totals cover up to 1000
/// registered namespaces, and past that the least recently active are dropped.
fn info_bounded(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    // 1010 namespaces; namespace i holds 1 + i % 25 records.
    let mut expected = Vec::new();
    let mut pipe = redis::pipe();
    for i in 0..1010u64 {
        let n = 1 + i % 25;
        let mut cmd = redis::cmd("DB.PUT");
        cmd.arg(format!("{{n{i}}}"));
        for r in 0..n {
            cmd.arg("t").arg(r).arg("x");
        }
        pipe.add_command(cmd).ignore();
        expected.push(n);
    }
    pipe.query::<()>(&mut c).unwrap();
    let started = std::time::Instant::now();
    let i = info(&mut c);
    let took = started.elapsed();
    eprintln!("{flavor:?}: INFO databroker with 1000 registered namespaces took {took:?}");
    assert_eq!(info_u64(&i, "namespaces"), 1000);
    assert_eq!(info_u64(&i, "namespaces_dropped"), 10);
    // The first 10 written were the least recently active.
    let kept: u64 = expected[10..].iter().sum();
    assert_eq!(info_u64(&i, "records"), kept);
    assert_eq!(info_u64(&i, "changes_retained"), kept);
    let items = namespaces(&i);
    assert_eq!(items.len(), 10);
    assert!(items.iter().all(|n| num(n, "records") == 25), "{items:?}");
    let text: String = t(&mut c, &["INFO", "databroker"]).unwrap();
    assert!(text.len() < 8192, "INFO stays small: {} bytes", text.len());
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    // A dropped namespace comes back at its next write (dropping another).
    ok(&mut c, &["DB.PUT", "{n0}", "t", "x", "x"]);
    let i = info(&mut c);
    assert_eq!(info_u64(&i, "namespaces_dropped"), 11);
    assert_eq!(info_u64(&i, "namespaces"), 1000);
}

on_both!(info_namespaces, info_bounded, info_on_replica);

/// A server process started by a test, killed on drop; and a directory
/// removed on drop.
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Dir(std::path::PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let p =
            std::env::temp_dir().join(format!("databroker-explain-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Spawns `cmd` (output to `log`) and waits until `port` answers PING (10 s).
fn spawn_server(mut cmd: std::process::Command, port: u16, log: &std::path::Path) -> Proc {
    let out = std::fs::File::create(log).unwrap();
    let child = cmd
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("spawn");
    let mut p = Proc(child);
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = p.0.try_wait() {
            panic!(
                "server exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Ok(mut c) = redis::Client::open(url.as_str()).unwrap().get_connection() {
            if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                return p;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn conn_at(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_connection()
        .unwrap()
}

fn config(c: &mut redis::Connection, name: &str) -> String {
    let r = ok(c, &["CONFIG", "GET", name]);
    let p = pairs(&r);
    assert_eq!(p.len(), 1, "{name}: {r:?}");
    text(&p[0].1)
}

const FRAGMENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/redis.conf");

/// scripts/redis.conf is a valid config for a real server: with only the
/// module path replaced and --port/--dir given, the server starts with the
/// production settings, serves DB.PUT, and keeps it across kill -9.
fn production_conf(flavor: Flavor) {
    let text_conf = std::fs::read_to_string(FRAGMENT).unwrap();
    let settings: Vec<&str> = text_conf
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for required in [
        "appendonly yes",
        "appendfsync always",
        "maxmemory-policy noeviction",
    ] {
        assert!(settings.contains(&required), "{required} in {settings:?}");
    }
    let module = databroker_testkit::module_path();
    let mut replaced = 0;
    let conf: String = text_conf
        .lines()
        .map(|l| match l.strip_prefix("loadmodule ") {
            Some(rest) => {
                replaced += 1;
                let args = rest.split_once(' ').map_or("", |(_, a)| a);
                assert!(args.contains("changes-ttl-ms"), "{l}");
                format!("loadmodule \"{}\" {args}\n", module.display())
            }
            None => format!("{l}\n"),
        })
        .collect();
    assert_eq!(replaced, 1, "one loadmodule line");
    let dir = Dir::new(&format!("conf-{flavor:?}"));
    let path = dir.0.join("redis.conf");
    std::fs::write(&path, conf).unwrap();
    let port = databroker_testkit::free_port();
    let start = || {
        let mut cmd = std::process::Command::new(flavor.binary());
        cmd.arg(&path)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(&dir.0);
        spawn_server(cmd, port, &dir.0.join("server.log"))
    };
    let mut server = start();
    let mut c = conn_at(port);
    assert_eq!(config(&mut c, "appendonly"), "yes");
    assert_eq!(config(&mut c, "appendfsync"), "always");
    assert_eq!(config(&mut c, "maxmemory-policy"), "noeviction");
    assert_eq!(config(&mut c, "databroker.changes-ttl-ms"), "86400000");
    assert_eq!(config(&mut c, "databroker.max-count"), "10000");
    let r = ok(
        &mut c,
        &["DB.PUT", "{pomerium_v3}", "session", "s1", "hello"],
    );
    let sv = int(&arr(&r)[0]);
    assert_eq!(info_u64(&info(&mut c), "eviction_policy_unsafe"), 0);
    // kill -9 loses nothing acknowledged.
    drop(c);
    let _ = server.0.kill();
    let _ = server.0.wait();
    drop(server);
    let _server = start();
    let mut c = conn_at(port);
    let v = ok(&mut c, &["DB.VERSIONS", "{pomerium_v3}"]);
    assert_eq!((int(&arr(&v)[0]), int(&arr(&v)[2])), (sv, 1));
    let g = ok(&mut c, &["DB.GET", "{pomerium_v3}", "session", "s1"]);
    assert_eq!(bulk(&field(&g, "data")), b"hello");
}

on_both!(production_conf);

/// `scripts/run.sh` (what `make run` starts): a demo server without DATA, a
/// durable one with its data in DATA, which keeps writes across kill -9.
#[test]
fn run_script_data() {
    let dir = Dir::new("run");
    let data = dir.0.join("data"); // created by the script
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/run.sh");
    let port = databroker_testkit::free_port();
    let run = |data: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new("bash");
        cmd.arg(script)
            .env("PORT", port.to_string())
            .env("DATABROKER_MODULE", databroker_testkit::module_path())
            .env("REDIS_SERVER", Flavor::Redis.binary())
            .env_remove("DATA");
        if let Some(d) = data {
            cmd.env("DATA", d);
        }
        // run.sh execs the server: the child is the server.
        spawn_server(cmd, port, &dir.0.join("run.log"))
    };

    // The quick demo: nothing on disk.
    let demo = run(None);
    let mut c = conn_at(port);
    assert_eq!(config(&mut c, "appendonly"), "no");
    ok(&mut c, &["DB.PUT", "{pomerium_v3}", "t", "a", "x"]);
    drop(c);
    drop(demo);

    let server = run(Some(&data));
    let log = std::fs::read_to_string(dir.0.join("run.log")).unwrap();
    assert!(log.contains("durable server"), "{log}");
    let mut c = conn_at(port);
    assert_eq!(config(&mut c, "appendonly"), "yes");
    assert_eq!(config(&mut c, "appendfsync"), "always");
    assert_eq!(config(&mut c, "maxmemory-policy"), "noeviction");
    assert_eq!(
        std::path::PathBuf::from(config(&mut c, "dir")),
        data.canonicalize().unwrap()
    );
    ok(&mut c, &["DB.PUT", "{pomerium_v3}", "t", "a", "kept"]);
    assert!(data.join("redis.conf").exists());
    assert!(data.join("appendonlydir").is_dir());
    drop(c);
    drop(server); // kill -9
    let _server = run(Some(&data));
    let mut c = conn_at(port);
    let g = ok(&mut c, &["DB.GET", "{pomerium_v3}", "t", "a"]);
    assert_eq!(bulk(&field(&g, "data")), b"kept");
}

/// Types into an interactive `redis-cli` (on a pseudo-terminal, 200 columns)
/// and returns what it drew: `help DB.PUT`, then the hint after `DB.SYNC `
/// and after its three positional arguments.
const CLI_SCRIPT: &str = r#"
import os, pty, sys, time, select, fcntl, termios, struct
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "xterm"
    os.execvp("redis-cli", ["redis-cli", "-p", sys.argv[1]])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
def read(t):
    out = b""; end = time.time() + t
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try: b = os.read(fd, 65536)
            except OSError: break
            out += b
            if b"\x1b[6n" in b: os.write(fd, b"\x1b[1;1R")  # cursor position query
    return out
read(1.0)
os.write(fd, b"help DB.PUT\r"); sys.stdout.write("HELP:" + read(1.0).decode("latin-1") + "\n")
os.write(fd, b"DB.SYNC "); sys.stdout.write("HINT1:" + read(1.0).decode("latin-1")[-400:] + "\n")
os.write(fd, b"{ns} 0 0 "); sys.stdout.write("HINT2:" + read(1.0).decode("latin-1")[-400:] + "\n")
os.write(fd, b"\x03"); read(0.3)
os.kill(pid, 9)
"#;

/// `redis-cli` (7.0.15) shows the module's argument hints while typing and
/// its `help` for DB.PUT, from `COMMAND DOCS`.
#[test]
fn redis_cli_hints() {
    let s = Server::redis();
    let out = std::process::Command::new("python3")
        .args(["-c", CLI_SCRIPT, &s.port.to_string()])
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    let (help, hints) = text.split_once("HINT1:").expect("script output");
    assert!(
        help.contains("DB.PUT")
            && help
                .contains("ns [IF versions] [TOKEN token] type id payload [type id payload ...]"),
        "{help}"
    );
    assert!(help.contains("Writes records atomically"), "{help}");
    assert!(help.contains("0.1.0"), "{help}");
    let (hint1, hint2) = hints.split_once("HINT2:").expect("script output");
    assert!(
        hint1.contains(
            "ns server_version after_version [STAMP stamp] [TYPE type] [COUNT count] [BLOCK ms] [FORMAT MAP|PROTO]"
        ),
        "{hint1:?}"
    );
    // Typed arguments leave the hint: only the options remain.
    let last = hint2.rfind("DB.SYNC {ns} 0 0").map_or("", |i| &hint2[i..]);
    assert!(
        last.contains("[STAMP stamp] [TYPE type]") && !last.contains("after_version"),
        "{hint2:?}"
    );
}
