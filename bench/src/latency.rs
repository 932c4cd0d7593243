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

/// What the followers block on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Feed {
    /// `DB.SYNC ... BLOCK`, woken by `DB.PUT`.
    DbSync,
    /// Baseline: `XREAD BLOCK` on a stream, woken by `XADD` of the same Record bytes.
    Xread,
}

const STREAM: &str = "wakestream";

struct Scenario {
    label: String,
    feed: Feed,
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

impl Outcome {
    /// Records one follower woken at kernel time `t` (ns), for a write sent
    /// at `t_send` whose reply arrived at `t_reply`.
    fn record(&mut self, t: i64, t_send: i64, t_reply: i64) {
        if t < t_reply {
            self.before_reply += 1;
        }
        self.from_reply
            .saturating_record((t - t_reply).max(1) as u64);
        self.from_send.saturating_record((t - t_send).max(1) as u64);
    }
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

fn xadd(writer: &mut Conn, version: u64, payload: &[u8]) -> std::io::Result<(Value, Option<i64>)> {
    let rec = workload::encode_record(
        version,
        TYPE,
        &format!("id:{version}"),
        payload,
        workload::now_us(),
    );
    writer.send(&[b"XADD", STREAM.as_bytes(), b"*", b"r", &rec])?;
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
            if s.feed == Feed::Xread {
                f.send(&[
                    b"XREAD",
                    b"COUNT",
                    b"10",
                    b"BLOCK",
                    b"10000",
                    b"STREAMS",
                    STREAM.as_bytes(),
                    b"$",
                ])?;
                continue;
            }
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
        let (reply, stamp) = match s.feed {
            Feed::DbSync => put(&mut writer, &format!("id:{round}"), &payload)?,
            Feed::Xread => xadd(&mut writer, round as u64 + 1, &payload)?,
        };
        let t_reply = stamp.unwrap_or_else(now_ns);
        let reply = reply.ok("write")?;
        if s.feed == Feed::Xread {
            for f in followers.iter_mut() {
                let (r, stamp) = f.read_stamped()?;
                let r = r.ok("XREAD")?;
                if r.items().is_empty() {
                    return Err(std::io::Error::other(
                        "an XREAD follower woke without the entry",
                    ));
                }
                out.record(stamp.unwrap_or_else(now_ns), t_send, t_reply);
            }
            continue;
        }
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
            out.record(stamp.unwrap_or_else(now_ns), t_send, t_reply);
        }
    }
    drop(idle);
    Ok(out)
}

/// The wake-up scenarios.
pub fn run(bench: &Bench, report: &mut Report) {
    let sc = |label: &str, feed: Feed, followers: usize, idle_elsewhere: usize| Scenario {
        label: label.into(),
        feed,
        followers,
        idle_elsewhere,
        rounds: bench.wake_rounds(followers),
    };
    let scenarios = [
        sc("1 follower", Feed::DbSync, 1, 0),
        sc(
            "baseline: 1 XREAD BLOCK follower, woken by XADD",
            Feed::Xread,
            1,
            0,
        ),
        sc("100 followers", Feed::DbSync, 100, 0),
        sc("baseline: 100 XREAD BLOCK followers", Feed::Xread, 100, 0),
        sc("1000 followers", Feed::DbSync, 1000, 0),
        sc("baseline: 1000 XREAD BLOCK followers", Feed::Xread, 1000, 0),
        sc(
            "1 follower + 1000 idle on other namespaces",
            Feed::DbSync,
            1,
            1000,
        ),
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
    let mut pending: Vec<(usize, Check)> = Vec::new();
    let mut xread_p99: Vec<(usize, u64)> = Vec::new();
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
                if s.feed == Feed::Xread {
                    xread_p99.push((s.followers, h.value_at_quantile(0.99)));
                }
                if s.idle_elsewhere == 0 && s.feed == Feed::DbSync {
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
                if s.idle_elsewhere == 0 && s.feed == Feed::DbSync {
                    pending.push((
                        s.followers,
                        Check::lower(
                            &format!("wake-up p99, {}", s.label),
                            Spread::of(&[]),
                            1.0,
                            "ms",
                            "not measured",
                        ),
                    ));
                }
            }
        }
    }
    for (followers, mut check) in pending {
        if let Some((_, p)) = xread_p99.iter().find(|(f, _)| *f == followers) {
            check.evidence = format!("{}; XREAD BLOCK baseline p99 {}", check.evidence, ms(*p));
        }
        report.checks.push(check);
    }
    report.section("Wake-up latency of blocked DB.SYNC followers", md);
}
