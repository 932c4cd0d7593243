//! Wake-up latency: from the moment the writer receives its DB.PUT reply to
//! the moment each blocked DB.SYNC follower receives the new record. Both
//! moments are the kernel's receive timestamps (SO_TIMESTAMPNS) of the
//! sockets, so the client's own processing of 1000 replies on one core does
//! not inflate the figures.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::report::{Check, Report};
use crate::resp::{now_ns, Conn, Value};
use crate::util::{info_field, Spread};
use crate::workload::{self, TYPE};
use crate::Bench;

const NS: &str = "wake";

struct Scenario {
    label: String,
    followers: usize,
    idle_elsewhere: usize,
    rounds: usize,
}

struct Outcome {
    from_reply: Histogram<u64>,
    from_send: Histogram<u64>,
    before_reply: u64,
    not_blocked: usize,
}

fn blocked(c: &mut Conn) -> usize {
    info_field(c, "clients", "blocked_clients")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn wait_blocked(c: &mut Conn, want: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if blocked(c) >= want {
            return true;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    false
}

fn put(writer: &mut Conn, id: &str, payload: &[u8]) -> std::io::Result<(Value, Option<i64>)> {
    writer.send(&[
        b"DB.PUT",
        NS.as_bytes(),
        TYPE.as_bytes(),
        id.as_bytes(),
        payload,
    ])?;
    writer.read_stamped()
}

fn run_one(port: u16, s: &Scenario) -> std::io::Result<Outcome> {
    let payload = workload::payload();
    let mut admin = Conn::connect(port)?;
    admin.call(&[b"FLUSHALL"])?;
    let mut writer = Conn::connect(port)?;
    writer.enable_timestamps()?;
    let (first, _) = put(&mut writer, "seed", &payload)?;
    let first = first.ok("DB.PUT")?;
    let sv = match first.items().first() {
        Some(Value::Int(i)) => i.to_string(),
        Some(Value::Bulk(Some(b))) => String::from_utf8_lossy(b).into_owned(),
        other => return Err(std::io::Error::other(format!("DB.PUT replied {other:?}"))),
    };
    let mut last = first
        .items()
        .get(2)
        .and_then(|v| v.items().first())
        .and_then(Value::as_u64)
        .unwrap_or(1);

    // Idle followers wait on namespaces that are never written.
    let mut idle = Vec::with_capacity(s.idle_elsewhere);
    for k in 0..s.idle_elsewhere {
        let mut c = Conn::connect(port)?;
        c.send(&[
            b"DB.SYNC",
            format!("idle{k}").as_bytes(),
            b"0",
            b"0",
            b"BLOCK",
            b"0",
        ])?;
        idle.push(c);
    }
    let mut followers = Vec::with_capacity(s.followers);
    for _ in 0..s.followers {
        let mut c = Conn::connect(port)?;
        c.enable_timestamps()?;
        followers.push(c);
    }
    let mut out = Outcome {
        from_reply: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram"),
        from_send: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram"),
        before_reply: 0,
        not_blocked: 0,
    };
    for round in 0..s.rounds {
        let after = last.to_string();
        for f in followers.iter_mut() {
            f.send(&[
                b"DB.SYNC",
                NS.as_bytes(),
                sv.as_bytes(),
                after.as_bytes(),
                b"COUNT",
                b"10",
                b"BLOCK",
                b"10000",
                b"FORMAT",
                b"PROTO",
            ])?;
        }
        if !wait_blocked(&mut admin, s.followers + s.idle_elsewhere) {
            out.not_blocked += 1;
        }
        let t_send = now_ns();
        let (reply, stamp) = put(&mut writer, &format!("id:{round}"), &payload)?;
        let t_reply = stamp.unwrap_or_else(now_ns);
        let reply = reply.ok("DB.PUT")?;
        last = reply
            .items()
            .get(2)
            .and_then(|v| v.items().first())
            .and_then(Value::as_u64)
            .ok_or_else(|| std::io::Error::other(format!("DB.PUT replied {reply:?}")))?;
        for f in followers.iter_mut() {
            let (r, stamp) = f.read_stamped()?;
            let r = r.ok("DB.SYNC")?;
            if r.items().get(2).map_or(0, |v| v.items().len()) == 0 {
                return Err(std::io::Error::other(format!(
                    "a follower woke without the record: {r:?}"
                )));
            }
            let t = stamp.unwrap_or_else(now_ns);
            if t < t_reply {
                out.before_reply += 1;
            }
            out.from_reply
                .saturating_record((t - t_reply).max(1) as u64);
            out.from_send.saturating_record((t - t_send).max(1) as u64);
        }
    }
    drop(idle);
    Ok(out)
}

/// The wake-up scenarios.
pub fn run(bench: &Bench, report: &mut Report) {
    let scenarios = [
        Scenario {
            label: "1 follower".into(),
            followers: 1,
            idle_elsewhere: 0,
            rounds: bench.wake_rounds(1),
        },
        Scenario {
            label: "100 followers".into(),
            followers: 100,
            idle_elsewhere: 0,
            rounds: bench.wake_rounds(100),
        },
        Scenario {
            label: "1000 followers".into(),
            followers: 1000,
            idle_elsewhere: 0,
            rounds: bench.wake_rounds(1000),
        },
        Scenario {
            label: "1 follower + 1000 idle on other namespaces".into(),
            followers: 1,
            idle_elsewhere: 1000,
            rounds: bench.wake_rounds(1),
        },
    ];
    let mut md = String::from(
        "Followers block in `DB.SYNC <ns> <sv> <last> COUNT 10 BLOCK 10000 FORMAT PROTO` on one namespace; \
         once all show as blocked (INFO clients), one `DB.PUT` wakes them all. Times are the kernel's \
         receive timestamps (SO_TIMESTAMPNS) of each socket, so the client's own work on 1000 replies \
         does not count. Redis writes the woken followers' replies *before* the writer's reply in the same \
         event-loop cycle, so measured from the writer's DB.PUT reply (the issue's definition) every \
         delay is ≤ 0; the table therefore judges the stricter delay from the moment the DB.PUT was \
         sent, which also includes the write's own execution and one loopback trip. \
         Samples = followers × writes.\n\n\
         | waiting | samples | p50 | p99 | p99.9 | max | served before the writer's reply |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let ms = |ns: u64| format!("{:.3} ms", ns as f64 / 1e6);
    for s in &scenarios {
        match run_one(bench.port, s) {
            Ok(o) => {
                let h = &o.from_send;
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {:.0}% |\n",
                    s.label,
                    h.len(),
                    ms(h.value_at_quantile(0.5)),
                    ms(h.value_at_quantile(0.99)),
                    ms(h.value_at_quantile(0.999)),
                    ms(h.max()),
                    100.0 * o.before_reply as f64 / h.len().max(1) as f64
                ));
                println!(
                    "  wake-up, {}: p50 {} p99 {} p99.9 {} (from the writer's reply: p99 {})",
                    s.label,
                    ms(h.value_at_quantile(0.5)),
                    ms(h.value_at_quantile(0.99)),
                    ms(h.value_at_quantile(0.999)),
                    ms(o.from_reply.value_at_quantile(0.99)),
                );
                if o.not_blocked > 0 {
                    report.notes.push(format!(
                        "wake-up, {}: in {} of {} rounds not every follower showed as blocked within 5 s",
                        s.label, o.not_blocked, s.rounds
                    ));
                }
                if s.idle_elsewhere == 0 {
                    let p99 = h.value_at_quantile(0.99) as f64 / 1e6;
                    let ev = format!(
                        "from DB.PUT sent: p50 {} / p99.9 {}; from its reply: ≤ 0 for {:.0}%",
                        ms(h.value_at_quantile(0.5)),
                        ms(h.value_at_quantile(0.999)),
                        100.0 * o.before_reply as f64 / h.len().max(1) as f64
                    );
                    report.checks.push(Check::lower(
                        &format!("wake-up p99, {}", s.label),
                        Spread::of(&[p99]),
                        1.0,
                        "ms",
                        &ev,
                    ));
                }
            }
            Err(e) => {
                println!("  wake-up, {}: not measured: {e}", s.label);
                report
                    .notes
                    .push(format!("wake-up, {}: not measured: {e}", s.label));
                if s.idle_elsewhere == 0 {
                    report.checks.push(Check::lower(
                        &format!("wake-up p99, {}", s.label),
                        Spread::of(&[]),
                        1.0,
                        "ms",
                        "not measured",
                    ));
                }
            }
        }
    }
    report.section("Wake-up latency of blocked DB.SYNC followers", md);
}
