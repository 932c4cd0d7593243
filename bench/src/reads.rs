//! DB.GET vs HGET of the same stored bytes (redis-benchmark, pipelined).

use crate::report::{Check, Report};
use crate::resp::{encode_into, Conn};
use crate::util::{commandstat, redis_benchmark, show, si, x, Spread};
use crate::workload::{self, TYPE};
use crate::Bench;

const NS: &str = "r";
const IDS: u64 = 100_000;

/// Loads `count` records `id:<12 digits>` into `ns` with DB.PUT batches of 100.
pub fn load(c: &mut Conn, ns: &str, count: u64) {
    let payload = workload::payload();
    let per_call = 100u64;
    let in_flight = 20u64;
    let mut next = 0u64;
    while next < count {
        let mut out = Vec::new();
        let mut sent = 0;
        while sent < in_flight && next < count {
            let ids: Vec<String> = (next..(next + per_call).min(count))
                .map(|i| format!("id:{i:012}"))
                .collect();
            next += ids.len() as u64;
            let args = workload::put_args(ns, &ids, &payload);
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            encode_into(&mut out, &refs);
            sent += 1;
        }
        c.send_raw(&out).expect("send DB.PUT");
        for _ in 0..sent {
            c.read()
                .expect("read")
                .ok("DB.PUT")
                .expect("DB.PUT while loading");
        }
    }
}

/// DB.GET (PROTO and MAP) vs HGET.
pub fn run(bench: &Bench, report: &mut Report) {
    let mut c = Conn::connect(bench.port).expect("connect");
    c.call(&[b"FLUSHALL"]).expect("FLUSHALL");
    load(&mut c, NS, IDS);
    let key = format!("{NS}.records");
    let field = format!("{TYPE}/id:__rand_int__");
    let hget: Vec<String> = vec!["HGET".into(), key, field];
    let get = |fmt: &str| -> Vec<String> {
        vec![
            "DB.GET".into(),
            NS.into(),
            TYPE.into(),
            "id:__rand_int__".into(),
            "FORMAT".into(),
            fmt.into(),
        ]
    };
    let contenders: [(&str, Vec<String>, &str); 3] = [
        ("HGET", hget, "hget"),
        ("DB.GET FORMAT PROTO", get("PROTO"), "db.get"),
        ("DB.GET FORMAT MAP", get("MAP"), "db.get"),
    ];
    let mut est = [0f64; 3];
    for (i, (_, args, _)) in contenders.iter().enumerate() {
        est[i] = redis_benchmark(
            bench.port,
            bench.clients,
            bench.pipeline,
            bench.warm_requests,
            args,
        );
    }
    let mut rps: [Vec<f64>; 3] = Default::default();
    let mut usec: [Vec<f64>; 3] = Default::default();
    let mut r_proto = Vec::new();
    let mut r_map = Vec::new();
    let mut us_proto = Vec::new();
    let mut us_map = Vec::new();
    for round in 0..bench.rounds {
        let mut this = [0f64; 3];
        let mut this_us = [f64::NAN; 3];
        for j in 0..3 {
            let i = (j + round) % 3;
            c.call(&[b"CONFIG", b"RESETSTAT"])
                .expect("CONFIG RESETSTAT");
            let n = ((est[i] * bench.run_secs) as u64).max(1000);
            this[i] = redis_benchmark(
                bench.port,
                bench.clients,
                bench.pipeline,
                n,
                &contenders[i].1,
            );
            rps[i].push(this[i]);
            if let Some((per, _)) = commandstat(&mut c, contenders[i].2) {
                usec[i].push(per);
                this_us[i] = per;
            }
        }
        r_proto.push(this[1] / this[0]);
        r_map.push(this[2] / this[0]);
        // Server time per call, relative to HGET's in the same round.
        for (j, out) in [(1, &mut us_proto), (2, &mut us_map)] {
            let r = this_us[j] / this_us[0];
            if r.is_finite() {
                out.push(r);
            }
        }
    }
    let s: Vec<Spread> = rps.iter().map(|v| Spread::of(v)).collect();
    let (rp, rm) = (Spread::of(&r_proto), Spread::of(&r_map));
    let mut md = format!(
        "redis-benchmark, {} clients, pipeline {}, random ids among {IDS} stored records \
         (the same stored protobuf bytes: HGET reads `{NS}.records` directly), {} interleaved rounds.\n\n\
         | command | reads/s | ÷ HGET | server µs/call | server time ÷ HGET's |\n|---|---|---|---|---|\n",
        bench.clients, bench.pipeline, bench.rounds
    );
    for (i, (name, _, _)) in contenders.iter().enumerate() {
        let ratio = match i {
            0 => "1".to_string(),
            1 => show(&rp, x),
            _ => show(&rm, x),
        };
        let time_ratio = match i {
            0 => "1".to_string(),
            1 => show(&Spread::of(&us_proto), x),
            _ => show(&Spread::of(&us_map), x),
        };
        md.push_str(&format!(
            "| {name} | {} | {ratio} | {:.2} | {time_ratio} |\n",
            show(&s[i], si),
            Spread::of(&usec[i]).median
        ));
    }
    println!(
        "  reads HGET {} DB.GET PROTO {} ({}) MAP {} ({})",
        si(s[0].median),
        si(s[1].median),
        x(rp.median),
        si(s[2].median),
        x(rm.median)
    );
    let ev = format!("{} vs {} reads/s", si(s[1].median), si(s[0].median));
    report
        .checks
        .push(Check::higher("DB.GET (PROTO) ÷ HGET", rp, 0.8, &ev));
    let ev = format!("{} vs {} reads/s", si(s[2].median), si(s[0].median));
    report
        .checks
        .push(Check::higher("DB.GET (MAP) ÷ HGET", rm, 0.8, &ev));
    for (name, samples, i, target) in [
        ("DB.GET (PROTO) server time ÷ HGET's", &us_proto, 1, 1.3),
        ("DB.GET (MAP) server time ÷ HGET's", &us_map, 2, 1.6),
    ] {
        let ev = format!(
            "{:.2} vs {:.2} server µs/call",
            Spread::of(&usec[i]).median,
            Spread::of(&usec[0]).median
        );
        report
            .checks
            .push(Check::lower(name, Spread::of(samples), target, "x", &ev));
    }
    report.section("Reads: DB.GET vs HGET", md);
    c.call(&[b"FLUSHALL"]).expect("FLUSHALL");
}
