//! 1000 random argument vectors per command: the server stays alive, every
//! reply is a reply, and a command that fails leaves the keyspace unchanged.

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;

const COMMANDS: [&str; 11] = [
    "DB.PUT",
    "DB.DELETE",
    "DB.GET",
    "DB.SETOPTIONS",
    "DB.GETOPTIONS",
    "DB.LEASE",
    "DB.RELEASE",
    "DB.SYNC",
    "DB.SYNCLATEST",
    "DB.VERSIONS",
    "DB.TYPES",
];

fn token(rng: &mut StdRng) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "{f}",
        "{f}",
        "{f}",
        "f",
        "",
        "t",
        "t",
        "a",
        "a/b",
        "b/c",
        "0",
        "1",
        "2",
        "5",
        "-1",
        "1.5",
        "abc",
        "+3",
        "18446744073709551615",
        "18446744073709551616",
        "9007199254740993",
        "FORMAT",
        "PROTO",
        "MAP",
        "TYPE",
        "COUNT",
        "BLOCK",
        "CURSOR",
        "FILTER",
        "CAPACITY",
        "{}",
        r#"{"id":"a"}"#,
        r#"{"type":"t","id":"a"}"#,
        r#"{"$or":[{"id":"a"},{"type":"t"}]}"#,
        r#"{"$and":[]}"#,
        r#"{"$index":"x"}"#,
        "{\"id\":",
        "[1,2]",
    ];
    match rng.random_range(0..10) {
        0 => (0..rng.random_range(0..12)).map(|_| rng.random()).collect(),
        1 => vec![b'x'; rng.random_range(1000..1100)],
        _ => WORDS[rng.random_range(0..WORDS.len())].as_bytes().to_vec(),
    }
}

fn vector(rng: &mut StdRng, cmd: &str) -> Vec<Vec<u8>> {
    let mut v = vec![cmd.as_bytes().to_vec()];
    for _ in 0..rng.random_range(0..9) {
        v.push(token(rng));
    }
    // Never wait long: whatever follows BLOCK becomes 1 ms.
    for i in 1..v.len() {
        if v[i - 1].eq_ignore_ascii_case(b"BLOCK") {
            v[i] = b"1".to_vec();
        }
    }
    v
}

fn random_arguments(flavor: Flavor) {
    let s = Server::start(Options::flavor(flavor));
    let mut c = s.conn();
    ok(&mut c, &["DB.PUT", "{f}", "t", "a", "x", "a/b", "c", "y"]);
    let mut rng = StdRng::seed_from_u64(42);
    let mut failures = 0usize;
    for cmd in COMMANDS {
        // Leases expire on their own, so a lease command's digest may change without a write of ours.
        let check_digest = !matches!(cmd, "DB.LEASE" | "DB.RELEASE");
        for chunk in 0..10 {
            // A small keyspace keeps DEBUG DIGEST cheap.
            ok(&mut c, &["FLUSHALL"]);
            ok(&mut c, &["DB.PUT", "{f}", "t", "a", "x", "a/b", "c", "y"]);
            ok(&mut c, &["DB.LEASE", "{f}", "t", "a", "600000"]);
            let mut p = redis::pipe();
            let vectors: Vec<Vec<Vec<u8>>> = (0..100).map(|_| vector(&mut rng, cmd)).collect();
            for v in &vectors {
                p.cmd("DEBUG").arg("DIGEST");
                let mut c = redis::cmd(cmd);
                for a in &v[1..] {
                    c.arg(a.as_slice());
                }
                p.add_command(c);
                p.cmd("DEBUG").arg("DIGEST");
            }
            // Each reply: Ok(value) or Err(error text) for an error reply.
            let replies: Vec<Result<Value, String>> = p
                .ignore_errors()
                .query::<Vec<redis::RedisResult<Value>>>(&mut c)
                .unwrap_or_else(|e| panic!("{cmd} chunk {chunk}: {e}; log:\n{}", s.log()))
                .into_iter()
                .map(|r| r.map_err(|e| e.to_string()))
                .collect();
            for (i, triple) in replies.chunks_exact(3).enumerate() {
                if let Err(e) = &triple[1] {
                    failures += 1;
                    if check_digest {
                        assert_eq!(
                            triple[0], triple[2],
                            "{cmd} {:?} failed ({e}) but changed the keyspace",
                            vectors[i]
                        );
                    }
                }
            }
        }
        assert_eq!(
            ok(&mut c, &["PING"]),
            Value::SimpleString("PONG".into()),
            "after {cmd}"
        );
    }
    assert!(
        failures > 5000,
        "the vectors should mostly be invalid: {failures}"
    );
    assert!(
        !s.log().contains("panic"),
        "a panic was caught: {}",
        s.log()
    );
}

on_both!(random_arguments);
