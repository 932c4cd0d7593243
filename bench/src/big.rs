//! The 1M-record figures: memory per record vs a plain hash, DB.SYNC
//! catch-up vs XRANGE, DB.SYNCLATEST full scan vs HSCAN, and the longest
//! stall a concurrent PING client sees while SYNCLATEST pages through.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;

use crate::report::{Check, Report};
use crate::resp::{encode_into, now_ns, Conn, Value};
use crate::util::{commandstat, show, si, used_memory, x, Spread};
use crate::workload::{self, TYPE};
use crate::Bench;

const NS: &str = "big";
const STREAM: &str = "bigstream";

fn versions(c: &mut Conn) -> io::Result<(Vec<u8>, u64)> {
    let v = c.call(&[b"DB.VERSIONS", NS.as_bytes()])?;
    let items = v.items();
    let sv = match items.first() {
        Some(Value::Int(i)) => i.to_string().into_bytes(),
        Some(Value::Bulk(Some(b))) => b.clone(),
        other => return Err(io::Error::other(format!("DB.VERSIONS replied {other:?}"))),
    };
    let last = items.get(2).and_then(Value::as_u64).unwrap_or(0);
    Ok((sv, last))
}

/// Catches up from version 0 with DB.SYNC COUNT `count`; returns records read.
fn sync_all(c: &mut Conn, sv: &[u8], last: u64, count: u64) -> io::Result<u64> {
    let mut after = 0u64;
    let mut total = 0u64;
    let cnt = count.to_string();
    while after < last {
        let a = after.to_string();
        let r = c.call(&[
            b"DB.SYNC",
            NS.as_bytes(),
            sv,
            a.as_bytes(),
            b"COUNT",
            cnt.as_bytes(),
            b"FORMAT",
            b"PROTO",
        ])?;
        let items = r.items();
        let next = items
            .get(1)
            .and_then(Value::as_u64)
            .ok_or_else(|| io::Error::other(format!("DB.SYNC reply without next_after: {r:?}")))?;
        let n = items.get(2).map_or(0, |v| v.items().len()) as u64;
        if next <= after && n == 0 {
            return Err(io::Error::other(format!(
                "DB.SYNC made no progress at {after}"
            )));
        }
        total += n;
        after = next;
    }
    Ok(total)
}

/// Reads the whole stream with XRANGE COUNT `count`; returns entries read.
fn xrange_all(c: &mut Conn, count: u64) -> io::Result<u64> {
    let cnt = count.to_string();
    let mut start = b"-".to_vec();
    let mut total = 0u64;
    loop {
        let r = c.call(&[
            b"XRANGE",
            STREAM.as_bytes(),
            &start,
            b"+",
            b"COUNT",
            cnt.as_bytes(),
        ])?;
        let items = r.items();
        total += items.len() as u64;
        if (items.len() as u64) < count {
            return Ok(total);
        }
        match items.last().and_then(|e| e.items().first()) {
            Some(Value::Bulk(Some(id))) => {
                start = b"(".to_vec();
                start.extend_from_slice(id);
            }
            other => {
                return Err(io::Error::other(format!(
                    "XRANGE entry without id: {other:?}"
                )))
            }
        }
    }
}

/// Pages through DB.SYNCLATEST COUNT `count`; returns records read and pages.
fn synclatest_all(c: &mut Conn, count: u64) -> io::Result<(u64, u64)> {
    let cnt = count.to_string();
    let mut cursor = b"0".to_vec();
    let (mut total, mut pages) = (0u64, 0u64);
    loop {
        let r = c.call(&[
            b"DB.SYNCLATEST",
            NS.as_bytes(),
            b"CURSOR",
            &cursor,
            b"COUNT",
            cnt.as_bytes(),
            b"FORMAT",
            b"PROTO",
        ])?;
        let items = r.items();
        total += items.get(3).map_or(0, |v| v.items().len()) as u64;
        pages += 1;
        let next = items.get(2).and_then(Value::as_u64).ok_or_else(|| {
            io::Error::other(format!("DB.SYNCLATEST reply without cursor: {r:?}"))
        })?;
        if next == 0 {
            return Ok((total, pages));
        }
        cursor = next.to_string().into_bytes();
    }
}

/// Pages through the records hash with HSCAN COUNT `count`.
fn hscan_all(c: &mut Conn, count: u64) -> io::Result<(u64, u64)> {
    let cnt = count.to_string();
    let key = format!("{NS}.records");
    let mut cursor = b"0".to_vec();
    let (mut total, mut pages) = (0u64, 0u64);
    loop {
        let r = c.call(&[b"HSCAN", key.as_bytes(), &cursor, b"COUNT", cnt.as_bytes()])?;
        let items = r.items();
        total += items.get(1).map_or(0, |v| v.items().len() / 2) as u64;
        pages += 1;
        let next = items.first().and_then(Value::as_u64).unwrap_or(0);
        if next == 0 {
            return Ok((total, pages));
        }
        cursor = next.to_string().into_bytes();
    }
}

/// Loads the stream baseline: one entry per record, holding the same protobuf bytes.
fn load_stream(c: &mut Conn, count: u64) {
    let payload = workload::payload();
    let now = workload::now_us();
    let mut i = 0u64;
    while i < count {
        let mut out = Vec::new();
        let mut sent = 0;
        while sent < 1000 && i < count {
            let bytes = workload::encode_record(i + 1, TYPE, &format!("id:{i:012}"), &payload, now);
            encode_into(&mut out, &[b"XADD", STREAM.as_bytes(), b"*", b"r", &bytes]);
            sent += 1;
            i += 1;
        }
        c.send_raw(&out).expect("send XADD");
        for _ in 0..sent {
            c.read().expect("read").ok("XADD").expect("XADD");
        }
    }
}

/// Loads `count` records into one plain hash (field `<type>/<id>`, value the payload).
fn load_plain(c: &mut Conn, count: u64) {
    let payload = workload::payload();
    let mut i = 0u64;
    while i < count {
        let mut out = Vec::new();
        let mut sent = 0;
        while sent < 20 && i < count {
            let fields: Vec<String> = (i..(i + 100).min(count))
                .map(|k| format!("{TYPE}/id:{k:012}"))
                .collect();
            i += fields.len() as u64;
            let mut args: Vec<&[u8]> = vec![b"HSET", b"plain"];
            for f in &fields {
                args.push(f.as_bytes());
                args.push(&payload);
            }
            encode_into(&mut out, &args);
            sent += 1;
        }
        c.send_raw(&out).expect("send HSET");
        for _ in 0..sent {
            c.read().expect("read").ok("HSET").expect("HSET");
        }
    }
}

fn memory_usage(c: &mut Conn, key: &str) -> u64 {
    c.call(&[b"MEMORY", b"USAGE", key.as_bytes(), b"SAMPLES", b"1000"])
        .ok()
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
}

/// Latency of back-to-back PINGs (send to kernel receive time) while `work` runs.
fn ping_during<T>(port: u16, work: impl FnOnce() -> T) -> (T, Histogram<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let pinger = std::thread::spawn(move || {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
        let mut c = Conn::connect(port).expect("connect");
        c.enable_timestamps().expect("SO_TIMESTAMPNS");
        while !flag.load(Ordering::Relaxed) {
            let t0 = now_ns();
            c.send(&[b"PING"]).expect("PING");
            let (_, ts) = c.read_stamped().expect("PONG");
            let t1 = ts.unwrap_or_else(now_ns);
            h.saturating_record(((t1 - t0).max(1) / 1000) as u64);
        }
        h
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    let out = work();
    stop.store(true, Ordering::Relaxed);
    (out, pinger.join().expect("pinger"))
}

/// Longest server-side durations (µs) of `cmd` in the slow log.
fn slowlog_max(c: &mut Conn, cmd: &str) -> Option<u64> {
    let v = c.call(&[b"SLOWLOG", b"GET", b"-1"]).ok()?;
    v.items()
        .iter()
        .filter(|e| {
            e.items()
                .get(3)
                .and_then(|a| a.items().first())
                .is_some_and(|n| match n {
                    Value::Bulk(Some(b)) => b.eq_ignore_ascii_case(cmd.as_bytes()),
                    _ => false,
                })
        })
        .filter_map(|e| e.items().get(2).and_then(Value::as_u64))
        .max()
}

/// Everything on the 1M-record dataset.
pub fn run(bench: &Bench, report: &mut Report) {
    let n = bench.records;
    let mut c = Conn::connect(bench.port).expect("connect");
    c.call(&[b"FLUSHALL"]).expect("FLUSHALL");
    let m0 = used_memory(&mut c);
    let t = Instant::now();
    crate::reads::load(&mut c, NS, n);
    let load_secs = t.elapsed().as_secs_f64();
    let m1 = used_memory(&mut c);
    let keys = [
        format!("{NS}.records"),
        format!("{NS}.changes"),
        format!("{NS}.changes.{TYPE}"),
    ];
    let usage: Vec<u64> = keys.iter().map(|k| memory_usage(&mut c, k)).collect();
    let module_per = (m1 - m0) as f64 / n as f64;
    println!(
        "  loaded {} records with DB.PUT (100 per call) in {load_secs:.1} s; {module_per:.0} B/record",
        si(n as f64)
    );
    load_stream(&mut c, n);
    let m2 = used_memory(&mut c);
    let stream_per = (m2 - m1) as f64 / n as f64;

    // --- DB.SYNC catch-up vs XRANGE ---
    let mut md = String::new();
    let count = 1000u64;
    match versions(&mut c) {
        Ok((sv, last)) => {
            let mut ts = Vec::new();
            let mut tx = Vec::new();
            let mut ratio = Vec::new();
            let (mut us_sync, mut us_x) = (Vec::new(), Vec::new());
            let mut err = None;
            for round in 0..bench.rounds {
                let mut pair = [0f64; 2];
                for j in 0..2 {
                    let i = (j + round) % 2;
                    c.call(&[b"CONFIG", b"RESETSTAT"]).expect("RESETSTAT");
                    let t = Instant::now();
                    let got = if i == 0 {
                        sync_all(&mut c, &sv, last, count)
                    } else {
                        xrange_all(&mut c, count)
                    };
                    let secs = t.elapsed().as_secs_f64();
                    match got {
                        Ok(got) => {
                            pair[i] = got as f64 / secs;
                            let (name, v) = if i == 0 {
                                ("db.sync", &mut us_sync)
                            } else {
                                ("xrange", &mut us_x)
                            };
                            if let Some((per, calls)) = commandstat(&mut c, name) {
                                v.push(per * calls as f64 / got.max(1) as f64);
                            }
                        }
                        Err(e) => err = Some(e.to_string()),
                    }
                }
                if err.is_some() {
                    break;
                }
                ts.push(pair[0]);
                tx.push(pair[1]);
                ratio.push(pair[0] / pair[1]);
            }
            if let Some(e) = err {
                report
                    .notes
                    .push(format!("DB.SYNC catch-up not measured: {e}"));
                report.checks.push(Check::higher(
                    "DB.SYNC catch-up ÷ XRANGE",
                    Spread::of(&[]),
                    1.0,
                    "not measured",
                ));
            } else {
                let (s, xs, r) = (Spread::of(&ts), Spread::of(&tx), Spread::of(&ratio));
                let (us, ux) = (Spread::of(&us_sync).median, Spread::of(&us_x).median);
                md.push_str(&format!(
                    "One client reads all {} changes from version 0, {count} per call, and a stream of \
                     the same {} protobuf Records (one field per entry) with `XRANGE (<last id> + COUNT {count}`; \
                     {} interleaved rounds. Wall-clock includes the client's parsing.\n\n\
                     | reader | records/s | ÷ XRANGE | server µs/record |\n|---|---|---|---|\n\
                     | DB.SYNC COUNT {count} FORMAT PROTO | {} | {} | {us:.3} |\n\
                     | XRANGE COUNT {count} | {} | 1 | {ux:.3} |\n\n",
                    si(n as f64),
                    si(n as f64),
                    bench.rounds,
                    show(&s, si),
                    show(&r, x),
                    show(&xs, si),
                ));
                println!(
                    "  catch-up DB.SYNC {} XRANGE {} -> {}",
                    si(s.median),
                    si(xs.median),
                    x(r.median)
                );
                let ev = format!("{} vs {} records/s", si(s.median), si(xs.median));
                report
                    .checks
                    .push(Check::higher("DB.SYNC catch-up ÷ XRANGE", r, 1.0, &ev));
            }
        }
        Err(e) => report.notes.push(format!("DB.VERSIONS failed: {e}")),
    }
    report.section(
        &format!(
            "Change feed: DB.SYNC catch-up over {} changes vs XRANGE",
            si(n as f64)
        ),
        md,
    );

    // --- DB.SYNCLATEST full scan vs HSCAN ---
    let mut md = String::new();
    let mut tl = Vec::new();
    let mut th = Vec::new();
    let mut ratio = Vec::new();
    let mut seen = 0;
    let mut err = None;
    for round in 0..bench.rounds_scan {
        let mut pair = [0f64; 2];
        for j in 0..2 {
            let i = (j + round) % 2;
            let t = Instant::now();
            let got = if i == 0 {
                synclatest_all(&mut c, count)
            } else {
                hscan_all(&mut c, count)
            };
            let secs = t.elapsed().as_secs_f64();
            match got {
                Ok((got, _)) => {
                    pair[i] = got as f64 / secs;
                    if i == 0 {
                        seen = got;
                    }
                }
                Err(e) => err = Some(e.to_string()),
            }
        }
        if err.is_some() {
            break;
        }
        tl.push(pair[0]);
        th.push(pair[1]);
        ratio.push(pair[0] / pair[1]);
    }
    if let Some(e) = &err {
        report
            .notes
            .push(format!("DB.SYNCLATEST full scan not measured: {e}"));
    } else {
        let (s, h, r) = (Spread::of(&tl), Spread::of(&th), Spread::of(&ratio));
        md.push_str(&format!(
            "One client pages through all {} live records, COUNT {count} per call, {} interleaved rounds \
             (SYNCLATEST returned {} records per pass).\n\n\
             | scan | records/s | full scan takes | ÷ HSCAN |\n|---|---|---|---|\n\
             | DB.SYNCLATEST COUNT {count} FORMAT PROTO | {} | {:.2} s | {} |\n\
             | HSCAN `{NS}.records` COUNT {count} | {} | {:.2} s | 1 |\n\n",
            si(n as f64),
            bench.rounds_scan,
            seen,
            show(&s, si),
            n as f64 / s.median,
            show(&r, x),
            show(&h, si),
            n as f64 / h.median,
        ));
        println!(
            "  full scan DB.SYNCLATEST {} HSCAN {} -> {}",
            si(s.median),
            si(h.median),
            x(r.median)
        );
    }

    // --- the longest stall seen by a concurrent PING client ---
    c.call(&[b"CONFIG", b"SET", b"slowlog-log-slower-than", b"100"])
        .expect("CONFIG SET");
    c.call(&[b"CONFIG", b"SET", b"slowlog-max-len", b"100000"])
        .expect("CONFIG SET");
    let max_count = c
        .call(&[b"CONFIG", b"GET", b"databroker.max-count"])
        .ok()
        .and_then(|v| v.items().get(1).and_then(Value::as_u64))
        .unwrap_or(10_000);
    md.push_str(
        "A second client sends PING back to back while one full scan runs; latency is from sending \
         PING to the kernel's receive timestamp of PONG (SO_TIMESTAMPNS). \"Longest command\" is the \
         slow log's longest execution of the scan command (server time).\n\n\
         | scan running | PINGs | PING p50 | PING p99 | PING max (longest stall) | longest command |\n|---|---|---|---|---|---|\n",
    );
    let mut stall_1000 = None;
    let scans: Vec<(String, u64, bool)> = vec![
        (format!("DB.SYNCLATEST COUNT {count}"), count, true),
        (
            format!("DB.SYNCLATEST COUNT {max_count} (max-count)"),
            max_count,
            true,
        ),
        (format!("HSCAN COUNT {count}"), count, false),
    ];
    for (label, cnt, module) in scans {
        if module && err.is_some() {
            continue;
        }
        c.call(&[b"SLOWLOG", b"RESET"]).expect("SLOWLOG RESET");
        let port = bench.port;
        let (res, h) = ping_during(port, || {
            let mut sc = Conn::connect(port).expect("connect");
            if module {
                synclatest_all(&mut sc, cnt)
            } else {
                hscan_all(&mut sc, cnt)
            }
        });
        if let Err(e) = res {
            report.notes.push(format!("{label}: {e}"));
            continue;
        }
        let longest = slowlog_max(&mut c, if module { "DB.SYNCLATEST" } else { "HSCAN" });
        let ms = |us: u64| format!("{:.3} ms", us as f64 / 1000.0);
        md.push_str(&format!(
            "| {label} | {} | {} | {} | {} | {} |\n",
            h.len(),
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max()),
            longest.map_or("< 0.1 ms".into(), ms)
        ));
        println!(
            "  stall during {label}: PING p99 {} max {} longest command {}",
            ms(h.value_at_quantile(0.99)),
            ms(h.max()),
            longest.map_or("-".into(), ms)
        );
        if module && cnt == count {
            stall_1000 = Some((h.max() as f64 / 1000.0, longest));
        }
    }
    match stall_1000 {
        Some((max_ms, longest)) => {
            // Judged on the server's own longest execution (what the module
            // controls); the PING client's max also carries scheduling noise
            // from other processes on this 2-core machine.
            let longest_ms = longest.map_or(0.1, |u| u as f64 / 1000.0);
            let ev = format!(
                "longest DB.SYNCLATEST execution (slow log); PING client max {max_ms:.3} ms"
            );
            report.checks.push(Check::lower(
                &format!("longest stall during SYNCLATEST, COUNT {count}"),
                Spread::of(&[longest_ms]),
                2.0,
                "ms",
                &ev,
            ));
        }
        None => report.checks.push(Check::lower(
            "longest stall during SYNCLATEST",
            Spread::of(&[]),
            2.0,
            "ms",
            "not measured",
        )),
    }
    c.call(&[b"CONFIG", b"SET", b"slowlog-log-slower-than", b"10000"])
        .expect("CONFIG SET");
    report.section(
        &format!("Snapshot: DB.SYNCLATEST over {} records", si(n as f64)),
        md,
    );

    // --- memory: the same payloads in one plain hash ---
    c.call(&[b"FLUSHALL"]).expect("FLUSHALL");
    let p0 = used_memory(&mut c);
    load_plain(&mut c, n);
    let p1 = used_memory(&mut c);
    let plain_per = (p1 - p0) as f64 / n as f64;
    let ratio = module_per / plain_per;
    let md = format!(
        "`used_memory` growth for {} records with a 256-byte payload (Redis {}, jemalloc), \
         measured on a flushed server; per-key figures are `MEMORY USAGE ... SAMPLES 1000` estimates.\n\n\
         | layout | bytes/record | ÷ plain hash |\n|---|---|---|\n\
         | module: all keys of the namespace | {module_per:.0} | {} |\n\
         | &nbsp;&nbsp;`{NS}.records` (hash: `<type>/<id>` → Record) | {:.0} | |\n\
         | &nbsp;&nbsp;`{NS}.changes` (zset: version → Record) | {:.0} | |\n\
         | &nbsp;&nbsp;`{NS}.changes.{TYPE}` (zset: id by modified_at) | {:.0} | |\n\
         | plain hash: `<type>/<id>` → payload | {plain_per:.0} | 1 |\n\
         | (XRANGE baseline: stream of the Records) | {stream_per:.0} | {} |\n\n",
        si(n as f64),
        bench.server_version,
        x(ratio),
        usage[0] as f64 / n as f64,
        usage[1] as f64 / n as f64,
        usage[2] as f64 / n as f64,
        x(stream_per / plain_per),
    );
    println!(
        "  memory {module_per:.0} B/record vs plain hash {plain_per:.0} -> {}",
        x(ratio)
    );
    let ev = format!("{module_per:.0} vs {plain_per:.0} bytes/record");
    report.checks.push(Check::lower(
        "memory per record ÷ plain hash",
        Spread::of(&[ratio]),
        2.2,
        "x",
        &ev,
    ));
    report.section(&format!("Memory for {} records", si(n as f64)), md);
    c.call(&[b"FLUSHALL"]).expect("FLUSHALL");
}
