//! Helpers shared by the integration tests: servers come from the testkit.
#![allow(dead_code)]

#[allow(unused_imports)] // each test binary uses a different subset
pub use databroker_testkit::{Flavor, Options, Server};
use redis::{Connection, FromRedisValue, RedisError, Value};

/// Waits until `replica` reports its link to the primary up.
pub fn wait_link_up(replica: &Server) {
    let mut c = replica.conn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let info: String = t(&mut c, &["INFO", "replication"]).unwrap();
        if info.contains("master_link_status:up") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replica did not sync: {info}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Runs one command (binary arguments).
pub fn q<T: FromRedisValue>(c: &mut Connection, args: &[&[u8]]) -> Result<T, RedisError> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).expect("command name"));
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c)
}

/// Runs one command with text arguments.
pub fn t<T: FromRedisValue>(c: &mut Connection, args: &[&str]) -> Result<T, RedisError> {
    let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    q(c, &v)
}

/// Runs a command that must succeed.
pub fn ok(c: &mut Connection, args: &[&str]) -> Value {
    t(c, args).unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
}

/// Runs a command that must fail; returns the error's code word and message.
pub fn err(c: &mut Connection, args: &[&str]) -> (String, String) {
    match t::<Value>(c, args) {
        Ok(v) => panic!("{args:?} should fail, got {v:?}"),
        Err(e) => (e.code().unwrap_or("").to_string(), e.to_string()),
    }
}

/// The integer inside a reply.
pub fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

/// The elements of an array reply.
pub fn arr(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        other => panic!("not an array: {other:?}"),
    }
}

/// The bytes of a bulk reply.
pub fn bulk(v: &Value) -> &[u8] {
    match v {
        Value::BulkString(b) => b,
        other => panic!("not a bulk string: {other:?}"),
    }
}

/// A record reply in MAP format (RESP2 flat array or RESP3 map) as name -> value.
pub fn fields(v: &Value) -> Vec<(String, Value)> {
    match v {
        Value::Map(m) => m
            .iter()
            .map(|(k, v)| (String::from_utf8(bulk(k).to_vec()).unwrap(), v.clone()))
            .collect(),
        Value::Array(a) => a
            .chunks_exact(2)
            .map(|p| {
                (
                    String::from_utf8(bulk(&p[0]).to_vec()).unwrap(),
                    p[1].clone(),
                )
            })
            .collect(),
        other => panic!("not a record: {other:?}"),
    }
}

/// One field of a MAP record.
pub fn field(v: &Value, name: &str) -> Value {
    fields(v)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name}"))
}

/// Runs `$body(flavor)` as one test per server flavor.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[test]
            fn redis() { super::$name($crate::common::Flavor::Redis) }
            #[test]
            fn valkey() { super::$name($crate::common::Flavor::Valkey) }
        })*
    };
}
