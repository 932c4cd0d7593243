//! Write throughput: DB.PUT vs HSET vs EVALSHA (redis-benchmark, pipelined,
//! server-bound) and DB.PUT vs the Go-style WATCH/MULTI client (Rust driver,
//! 50 clients, one request or transaction in flight each).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::report::{Check, Report};
use crate::resp::{self, encode, Conn, Value};
use crate::util::{commandstat, commandstat_usec, redis_benchmark, show, si, x, Spread};
use crate::workload::{self, go_style_exec, lua_args, put_args, Rng, TYPE};
use crate::Bench;

/// Namespace written by the write benchmarks.
const NS: &str = "w";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Contender {
    Hset,
    Put,
    Lua,
    /// DB.PUT with `databroker.changes-ttl-ms 0`: no retention trimming.
    PutNoTrim,
}

impl Contender {
    fn stat(self) -> &'static str {
        match self {
            Contender::Hset => "hset",
            Contender::Put | Contender::PutNoTrim => "db.put",
            Contender::Lua => "evalsha",
        }
    }

    /// redis-benchmark arguments for a batch of `b` records with random ids.
    fn args(self, sha: &str, b: usize, payload: &[u8]) -> Vec<String> {
        let p = String::from_utf8(payload.to_vec()).expect("printable payload");
        let ids: Vec<String> = (0..b).map(|_| "id:__rand_int__".to_string()).collect();
        match self {
            Contender::Hset => {
                let mut a = vec!["HSET".to_string(), format!("{NS}.plain")];
                for id in &ids {
                    a.push(format!("{TYPE}/{id}"));
                    a.push(p.clone());
                }
                a
            }
            Contender::Put | Contender::PutNoTrim => put_args(NS, &ids, payload)
                .into_iter()
                .map(|v| String::from_utf8(v).expect("utf8"))
                .collect(),
            Contender::Lua => {
                let mut a = vec!["EVALSHA".to_string()];
                a.extend(
                    lua_args(sha, NS, &ids, payload)
                        .into_iter()
                        .map(|v| String::from_utf8(v).expect("utf8")),
                );
                a
            }
        }
    }
}

/// Loads the Lua script; returns its SHA1.
pub fn load_script(c: &mut Conn) -> String {
    match c
        .call(&[b"SCRIPT", b"LOAD", workload::LUA_PUT.as_bytes()])
        .expect("SCRIPT LOAD")
    {
        Value::Bulk(Some(s)) => String::from_utf8(s).expect("sha"),
        other => panic!("SCRIPT LOAD replied {other:?}"),
    }
}

fn flush(c: &mut Conn) {
    c.call(&[b"FLUSHALL"]).expect("FLUSHALL");
}

/// The module's retention setting, to restore after the no-trim runs.
fn ttl(c: &mut Conn) -> Option<Vec<u8>> {
    let v = c
        .call(&[b"CONFIG", b"GET", b"databroker.changes-ttl-ms"])
        .ok()?;
    match v.items().get(1) {
        Some(Value::Bulk(Some(b))) => Some(b.clone()),
        _ => None,
    }
}

fn set_ttl(c: &mut Conn, value: &[u8]) {
    c.call(&[b"CONFIG", b"SET", b"databroker.changes-ttl-ms", value])
        .expect("CONFIG SET databroker.changes-ttl-ms");
}

/// Server-bound write throughput with redis-benchmark.
fn pipelined(bench: &Bench, c: &mut Conn, sha: &str, report: &mut Report, pipeline: usize) {
    let payload = workload::payload();
    let default_ttl = ttl(c);
    let mut contenders = vec![Contender::Hset, Contender::Put, Contender::Lua];
    if default_ttl.is_some() && pipeline > 1 {
        contenders.push(Contender::PutNoTrim);
    }
    let rounds = if pipeline > 1 {
        bench.rounds
    } else {
        bench.rounds_concurrent
    };
    let mode = if pipeline > 1 {
        format!("pipeline {pipeline}, server-bound")
    } else {
        format!("{} clients, unpipelined", bench.clients)
    };
    let k = contenders.len();
    let mut md = String::new();
    md.push_str(&format!(
        "redis-benchmark, {} clients, pipeline {}, random ids among 100k, 256-byte payload; \
         {} interleaved rounds, each contender on a freshly flushed server. \
         Figures are records/s (batch × commands/s): median (min–max). \
         Server CPU is `usec_per_call` from INFO commandstats, per record. \
         The last column is DB.PUT with retention off (`databroker.changes-ttl-ms 0`, the default is {}), \
         to show what the per-write retention check costs.\n\n",
        bench.clients,
        pipeline,
        rounds,
        default_ttl.as_deref().map_or("n/a".into(), |v| String::from_utf8_lossy(v).into_owned())
    ));
    md.push_str("| records per call | HSET | DB.PUT | EVALSHA (Lua) | DB.PUT ÷ HSET | DB.PUT ÷ Lua | server µs/record HSET / DB.PUT / Lua | DB.PUT, retention off (÷ HSET) |\n");
    md.push_str("|---|---|---|---|---|---|---|---|\n");
    // Without pipelining only one record per call is client/network-bound;
    // batches are server-bound either way (the pipelined table has them).
    let batches: &[usize] = if pipeline > 1 { &[1, 10, 100] } else { &[1] };
    for &b in batches {
        let run_one = |c: &mut Conn, kind: Contender, n: u64| -> (f64, Option<f64>) {
            c.call(&[b"FLUSHALL"]).expect("FLUSHALL");
            if kind == Contender::PutNoTrim {
                set_ttl(c, b"0");
            }
            c.call(&[b"CONFIG", b"RESETSTAT"])
                .expect("CONFIG RESETSTAT");
            let r = redis_benchmark(
                bench.port,
                bench.clients,
                pipeline,
                n,
                &kind.args(sha, b, &payload),
            );
            let per = commandstat(c, kind.stat()).map(|(per, _)| per / b as f64);
            if kind == Contender::PutNoTrim {
                set_ttl(c, default_ttl.as_deref().unwrap_or(b"0"));
            }
            (r * b as f64, per)
        };
        // Warm-up run per contender sizes the measured runs to ~`run_secs`.
        let est: Vec<f64> = contenders
            .iter()
            .map(|&kind| run_one(c, kind, (bench.warm_requests / b as u64).max(200)).0 / b as f64)
            .collect();
        let mut rps: Vec<Vec<f64>> = vec![Vec::new(); k];
        let mut usec: Vec<Vec<f64>> = vec![Vec::new(); k];
        let mut r_hset = Vec::new();
        let mut r_lua = Vec::new();
        let mut r_notrim = Vec::new();
        for round in 0..rounds {
            let mut this = vec![0f64; k];
            for j in 0..k {
                let i = (j + round) % k; // rotate the order between rounds
                let n = ((est[i] * bench.run_secs) as u64).max(1000);
                let (r, per) = run_one(c, contenders[i], n);
                this[i] = r;
                rps[i].push(r);
                if let Some(per) = per {
                    usec[i].push(per);
                }
            }
            r_hset.push(this[1] / this[0]);
            r_lua.push(this[1] / this[2]);
            if k > 3 {
                r_notrim.push(this[3] / this[0]);
            }
        }
        let s: Vec<Spread> = rps.iter().map(|v| Spread::of(v)).collect();
        let u: Vec<String> = usec
            .iter()
            .take(3)
            .map(|v| format!("{:.2}", Spread::of(v).median))
            .collect();
        let (rh, rl, rn) = (
            Spread::of(&r_hset),
            Spread::of(&r_lua),
            Spread::of(&r_notrim),
        );
        let notrim = if k > 3 {
            format!("{} ({})", show(&s[3], si), show(&rn, x))
        } else {
            "n/a".into()
        };
        md.push_str(&format!(
            "| {b} | {} | {} | {} | {} | {} | {} | {notrim} |\n",
            show(&s[0], si),
            show(&s[1], si),
            show(&s[2], si),
            show(&rh, x),
            show(&rl, x),
            u.join(" / ")
        ));
        println!(
            "  writes P={pipeline:<2} b={b:<3} HSET {} DB.PUT {} Lua {} -> {} of HSET, {} of Lua; retention off {}",
            si(s[0].median),
            si(s[1].median),
            si(s[2].median),
            x(rh.median),
            x(rl.median),
            notrim
        );
        let ev = format!("{} vs {} records/s", si(s[1].median), si(s[0].median));
        report.checks.push(Check::higher(
            &format!("DB.PUT ÷ HSET, {b} per call ({mode})"),
            rh,
            0.6,
            &ev,
        ));
        let ev = format!("{} vs {} records/s", si(s[1].median), si(s[2].median));
        report.checks.push(Check::higher(
            &format!("DB.PUT ÷ Lua, {b} per call ({mode})"),
            rl,
            2.0,
            &ev,
        ));
    }
    let title = if pipeline > 1 {
        format!("Writes, server-bound (pipeline {pipeline})")
    } else {
        "Writes, 50 clients without pipelining (one command in flight per client)".to_string()
    };
    report.section(&title, md);
}

/// What one driver run achieved.
#[derive(Default, Clone, Copy)]
struct Driven {
    records: u64,
    attempts: u64,
    conflicts: u64,
    secs: f64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Driver {
    Put,
    GoStyle,
    /// The native floor: the same layout writes as plain commands, no
    /// transaction (versions from a counter shared by the clients).
    Native,
}

async fn client_loop(
    port: u16,
    seed: u64,
    driver: Driver,
    b: usize,
    stop: Arc<AtomicBool>,
    counts: Arc<[AtomicU64; 3]>,
    versions: Arc<AtomicU64>,
) -> std::io::Result<()> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(1 << 16);
    let mut rng = Rng::new(seed);
    let payload = workload::payload();
    let watch = encode(&[b"WATCH", format!("{NS}.last_version").as_bytes()]);
    let get = encode(&[b"GET", format!("{NS}.last_version").as_bytes()]);
    while !stop.load(Ordering::Relaxed) {
        let ids = rng.ids(b);
        match driver {
            Driver::Put => {
                let args = put_args(NS, &ids, &payload);
                let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                let r = resp::request_async(&mut s, &mut buf, &encode(&refs), 1).await?;
                if let Value::Error(e) = &r[0] {
                    return Err(std::io::Error::other(format!("DB.PUT: {e}")));
                }
                counts[0].fetch_add(b as u64, Ordering::Relaxed);
                counts[1].fetch_add(1, Ordering::Relaxed);
            }
            Driver::Native => {
                let first = versions.fetch_add(b as u64, Ordering::Relaxed) + 1;
                let (cmd, n) =
                    workload::native_floor(NS, first, &ids, &payload, workload::now_us());
                let r = resp::request_async(&mut s, &mut buf, &cmd, n).await?;
                if let Some(Value::Error(e)) = r.iter().find(|v| matches!(v, Value::Error(_))) {
                    return Err(std::io::Error::other(format!("native floor: {e}")));
                }
                counts[0].fetch_add(b as u64, Ordering::Relaxed);
                counts[1].fetch_add(1, Ordering::Relaxed);
            }
            Driver::GoStyle => loop {
                // WATCH last_version, GET it, then MULTI ... EXEC; retry on conflict.
                resp::request_async(&mut s, &mut buf, &watch, 1).await?;
                let v = resp::request_async(&mut s, &mut buf, &get, 1).await?;
                let last = v[0].as_u64().unwrap_or(0);
                let (cmd, n) = go_style_exec(NS, last + 1, &ids, &payload, workload::now_us());
                let r = resp::request_async(&mut s, &mut buf, &cmd, n).await?;
                counts[1].fetch_add(1, Ordering::Relaxed);
                match r.last() {
                    Some(Value::Array(Some(_))) => {
                        counts[0].fetch_add(b as u64, Ordering::Relaxed);
                        break;
                    }
                    Some(Value::Array(None)) => {
                        counts[2].fetch_add(1, Ordering::Relaxed);
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                    other => return Err(std::io::Error::other(format!("EXEC replied {other:?}"))),
                }
            },
        }
    }
    Ok(())
}

/// `clients` connections, each with one request (or transaction) in flight, for `secs`.
fn drive(port: u16, driver: Driver, b: usize, clients: usize, secs: f64) -> Driven {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let counts: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
        let versions = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|i| {
                tokio::spawn(client_loop(
                    port,
                    i as u64 + 1,
                    driver,
                    b,
                    stop.clone(),
                    counts.clone(),
                    versions.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        stop.store(true, Ordering::Relaxed);
        let elapsed = t0.elapsed().as_secs_f64();
        // Counted work stops at `stop`; stragglers finish their request.
        let snapshot = [
            counts[0].load(Ordering::Relaxed),
            counts[1].load(Ordering::Relaxed),
            counts[2].load(Ordering::Relaxed),
        ];
        for t in tasks {
            t.await.expect("driver task").expect("driver client");
        }
        Driven {
            records: snapshot[0],
            attempts: snapshot[1],
            conflicts: snapshot[2],
            secs: elapsed,
        }
    })
}

/// DB.PUT vs the Go-style client, 50 clients each.
fn concurrent(bench: &Bench, c: &mut Conn, report: &mut Report) {
    let mut md = String::new();
    md.push_str(&format!(
        "Rust driver (tokio, one thread), {} connections, each with one DB.PUT or one Go-style \
         transaction in flight (no pipelining), {:.1} s per run, {} interleaved rounds. The Go-style \
         client runs the seed's algorithm: `WATCH last_version`, `GET last_version`, then \
         `MULTI` + per record `HSET records` / `ZADD changes.<type>` / `ZADD changes` + `SADD record_types` \
         + `SET last_version` + `PUBLISH` + `EXEC` in one write, retrying at once on a conflict \
         (the Go backend also sleeps with exponential backoff between retries and sends UNWATCH; \
         both omitted, which favors it). It encodes the protobuf Record on the client.\n\n\
         The **native floor** is a third run with the same clients and records: each call pipelines \
         the plain commands for the same layout effects without any transaction (per record \
         `HSET records`, `ZADD changes.<type>`, `ZADD changes`, then `SET last_version` and \
         `PUBLISH last_version_ch`; `SADD record_types` is only needed for a new type and is left out), \
         versions from a counter the clients share. Its server time per record is the sum of \
         `usec` (usec_per_call × calls, INFO commandstats) of those commands divided by the records \
         written; DB.PUT's is its `usec_per_call` divided by the records per call. Both are measured \
         in the same round, on a freshly flushed server.\n\n",
        bench.clients, bench.drive_secs, bench.rounds_concurrent
    ));
    md.push_str("| records per call | DB.PUT records/s | Go-style records/s | Go-style conflicts per commit | DB.PUT ÷ Go-style | server µs/record: DB.PUT / Redis' own HSET + 2×ZADD in the Go-style run | server µs/record: native floor | DB.PUT ÷ native floor (server time) |\n");
    md.push_str("|---|---|---|---|---|---|---|---|\n");
    for &b in &[1usize, 10, 100] {
        let mut put = Vec::new();
        let mut go = Vec::new();
        let mut ratio = Vec::new();
        let mut conflict = Vec::new();
        let mut native = Vec::new();
        let mut module = Vec::new();
        let mut floor = Vec::new();
        let mut floor_ratio = Vec::new();
        for round in 0..bench.rounds_concurrent {
            let order = if round % 2 == 0 {
                [Driver::Put, Driver::Native, Driver::GoStyle]
            } else {
                [Driver::GoStyle, Driver::Native, Driver::Put]
            };
            let mut this = [0f64; 2];
            let mut server_us = [f64::NAN; 2];
            for d in order {
                flush(c);
                if d == Driver::GoStyle {
                    // The Go backend creates server_version once, at start-up.
                    c.call(&[
                        b"SET",
                        format!("{NS}.server_version").as_bytes(),
                        b"12345",
                        b"NX",
                    ])
                    .expect("SET server_version");
                }
                c.call(&[b"CONFIG", b"RESETSTAT"])
                    .expect("CONFIG RESETSTAT");
                let r = drive(bench.port, d, b, bench.clients, bench.drive_secs);
                let rate = r.records as f64 / r.secs;
                if d == Driver::GoStyle {
                    // Redis' own cost of the same data-structure writes, per record.
                    let hset = commandstat(c, "hset").map_or(0.0, |(u, _)| u);
                    let zadd = commandstat(c, "zadd").map_or(0.0, |(u, _)| u);
                    native.push(hset + 2.0 * zadd);
                } else if d == Driver::Native {
                    // One HSET per record written.
                    let records = commandstat_usec(c, "hset").map_or(0, |(_, n)| n);
                    let usec: f64 = ["hset", "zadd", "set", "publish"]
                        .iter()
                        .filter_map(|cmd| commandstat_usec(c, cmd))
                        .map(|(u, _)| u)
                        .sum();
                    if records > 0 {
                        server_us[1] = usec / records as f64;
                        floor.push(server_us[1]);
                    }
                    if std::env::var_os("BENCH_VERBOSE").is_some() {
                        let per: Vec<String> = ["hset", "zadd", "set", "publish"]
                            .iter()
                            .map(|cmd| {
                                let (u, n) = commandstat_usec(c, cmd).unwrap_or((0.0, 0));
                                format!("{cmd} {:.2} µs × {n}", u / n.max(1) as f64)
                            })
                            .collect();
                        println!("    native floor b={b}: {}", per.join(", "));
                    }
                } else if let Some((u, _)) = commandstat(c, "db.put") {
                    server_us[0] = u / b as f64;
                    module.push(server_us[0]);
                }
                match d {
                    Driver::Native => {}
                    Driver::Put => {
                        this[0] = rate;
                        put.push(rate);
                    }
                    Driver::GoStyle => {
                        this[1] = rate;
                        go.push(rate);
                        let commits = (r.attempts - r.conflicts).max(1);
                        conflict.push(r.conflicts as f64 / commits as f64);
                    }
                }
            }
            ratio.push(this[0] / this[1]);
            let fr = server_us[0] / server_us[1];
            if fr.is_finite() {
                floor_ratio.push(fr);
            }
        }
        let (sp, sg, sr, sc) = (
            Spread::of(&put),
            Spread::of(&go),
            Spread::of(&ratio),
            Spread::of(&conflict),
        );
        let sf = Spread::of(&floor_ratio);
        md.push_str(&format!(
            "| {b} | {} | {} | {:.1} | {} | {:.2} / {:.2} | {:.2} | {} |\n",
            show(&sp, si),
            show(&sg, si),
            sc.median,
            show(&sr, x),
            Spread::of(&module).median,
            Spread::of(&native).median,
            Spread::of(&floor).median,
            show(&sf, x)
        ));
        println!(
            "  concurrent b={b:<3} server µs/record DB.PUT {:.2} native floor {:.2} -> {}",
            Spread::of(&module).median,
            Spread::of(&floor).median,
            x(sf.median)
        );
        let floor_target = match b {
            1 => Some(1.25),
            10 => Some(1.1),
            _ => None,
        };
        if let Some(target) = floor_target {
            let ev = format!(
                "{:.2} vs {:.2} server µs/record",
                Spread::of(&module).median,
                Spread::of(&floor).median
            );
            report.checks.push(Check::lower(
                &format!("DB.PUT server time ÷ native floor, {b} per call"),
                sf,
                target,
                "x",
                &ev,
            ));
        }
        println!(
            "  concurrent b={b:<3} DB.PUT {} Go-style {} ({:.1} conflicts/commit) -> {}",
            si(sp.median),
            si(sg.median),
            sc.median,
            x(sr.median)
        );
        let ev = format!(
            "{} vs {} records/s, 50 clients",
            si(sp.median),
            si(sg.median)
        );
        report.checks.push(Check::higher(
            &format!("DB.PUT ÷ Go-style client, {b} per call"),
            sr,
            5.0,
            &ev,
        ));
    }
    report.section(
        "Writes, 50 concurrent clients: DB.PUT vs the Go-style client",
        md,
    );
}

/// Both write benchmarks.
pub fn run(bench: &Bench, report: &mut Report) {
    let mut c = Conn::connect(bench.port).expect("connect");
    let sha = load_script(&mut c);
    pipelined(bench, &mut c, &sha, report, bench.pipeline);
    pipelined(bench, &mut c, &sha, report, 1);
    concurrent(bench, &mut c, report);
    flush(&mut c);
}
