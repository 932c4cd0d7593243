//! `make bench`: measures the databroker module against its alternatives on
//! this machine, in one run, and writes `bench/results.md` and
//! `bench/chart.svg`.
//!
//! The server (release module) runs pinned to CPU 0 and every client
//! (redis-benchmark, the Rust drivers) to CPU 1 when there are two CPUs.
//! `BENCH_QUICK=1` runs a short smoke version (smaller data, one round).

mod big;
mod chart;
mod latency;
mod reads;
mod report;
mod resp;
mod util;
mod workload;
mod writes;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use databroker_testkit::{Options, Server};

use crate::report::Report;
use crate::resp::{Conn, Value};

/// Run parameters.
pub struct Bench {
    /// The server's port.
    pub port: u16,
    /// Concurrent clients for throughput runs.
    pub clients: usize,
    /// redis-benchmark pipeline depth for the server-bound runs.
    pub pipeline: usize,
    /// Interleaved rounds for redis-benchmark comparisons.
    pub rounds: usize,
    /// Interleaved rounds for the 50-client driver.
    pub rounds_concurrent: usize,
    /// Interleaved rounds for the full scans.
    pub rounds_scan: usize,
    /// Target seconds per redis-benchmark run.
    pub run_secs: f64,
    /// Requests of the sizing (warm-up) run.
    pub warm_requests: u64,
    /// Seconds per driver run.
    pub drive_secs: f64,
    /// Records of the big dataset.
    pub records: u64,
    /// redis-server version.
    pub server_version: String,
    quick: bool,
}

impl Bench {
    /// Writes per wake-up scenario (samples = followers × writes).
    pub fn wake_rounds(&self, followers: usize) -> usize {
        let r = match followers {
            1 => 2000,
            100 => 100,
            _ => 40,
        };
        if self.quick {
            (r / 10).max(3)
        } else {
            r
        }
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn release_module() -> PathBuf {
    if let Some(p) = std::env::var_os("DATABROKER_MODULE") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from);
    let p = target.join("release").join("libdatabroker.so");
    assert!(
        p.exists(),
        "{} is missing: run `make bench` (it builds the release module first)",
        p.display()
    );
    std::env::set_var("DATABROKER_MODULE", &p);
    p
}

fn git_describe() -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(workspace())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = run(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = run(&["status", "--porcelain", "--", "src", "core"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head} (module sources modified)")
    } else {
        head
    }
}

fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Checks that DB.PUT, the Lua script and the Go-style transaction leave the
/// same state: the module reads what each baseline wrote and can write on top.
fn equivalence(port: u16, sha: &str) -> String {
    let mut c = Conn::connect(port).expect("connect");
    c.call(&[b"FLUSHALL"]).expect("FLUSHALL");
    let payload = workload::payload();
    let ids = vec!["a".to_string(), "b".to_string()];
    let refs = |v: &[Vec<u8>]| -> Vec<Vec<u8>> { v.to_vec() };
    // DB.PUT
    let a = workload::put_args("eq_put", &ids, &payload);
    let a: Vec<&[u8]> = a.iter().map(Vec::as_slice).collect();
    c.call(&a).expect("DB.PUT");
    // Lua
    let mut a = vec![b"EVALSHA".to_vec()];
    a.extend(refs(&workload::lua_args(sha, "eq_lua", &ids, &payload)));
    let a: Vec<&[u8]> = a.iter().map(Vec::as_slice).collect();
    c.call(&a).expect("EVALSHA");
    // Go-style
    c.call(&[b"SET", b"eq_go.server_version", b"12345"])
        .expect("SET");
    c.call(&[b"WATCH", b"eq_go.last_version"]).expect("WATCH");
    let last = c
        .call(&[b"GET", b"eq_go.last_version"])
        .expect("GET")
        .as_u64()
        .unwrap_or(0);
    let (cmd, n) = workload::go_style_exec("eq_go", last + 1, &ids, &payload, workload::now_us());
    c.send_raw(&cmd).expect("send");
    let mut replies = Vec::new();
    for _ in 0..n {
        replies.push(c.read().expect("read"));
    }
    assert!(
        matches!(replies.last(), Some(Value::Array(Some(_)))),
        "Go-style EXEC failed: {replies:?}"
    );

    let mut shapes = Vec::new();
    for ns in ["eq_put", "eq_lua", "eq_go"] {
        for (i, id) in ids.iter().enumerate() {
            let r = c
                .call(&[
                    b"DB.GET",
                    ns.as_bytes(),
                    workload::TYPE.as_bytes(),
                    id.as_bytes(),
                ])
                .unwrap_or_else(|e| panic!("{ns}: the module cannot read what was written: {e}"));
            let items = r.items();
            let field = |name: &str| {
                items
                    .chunks(2)
                    .find(|p| {
                        matches!(&p[0], Value::Bulk(Some(b)) if b == name.as_bytes())
                            || p[0] == Value::Simple(name.into())
                    })
                    .map(|p| p[1].clone())
            };
            assert_eq!(
                field("data"),
                Some(Value::Bulk(Some(payload.clone()))),
                "{ns}/{id}: data differs: {r:?}"
            );
            assert_eq!(
                field("version").and_then(|v| v.as_u64()),
                Some(i as u64 + 1),
                "{ns}/{id}: version: {r:?}"
            );
            assert_eq!(
                field("deleted_at"),
                Some(Value::Bulk(None)),
                "{ns}/{id}: deleted_at: {r:?}"
            );
        }
        // The module writes on top of the state each baseline left.
        c.call(&[
            b"DB.PUT",
            ns.as_bytes(),
            workload::TYPE.as_bytes(),
            b"c",
            &payload,
        ])
        .unwrap_or_else(|e| panic!("{ns}: DB.PUT on top failed: {e}"));
        let mut shape = Vec::new();
        for suffix in [
            ".records",
            ".changes",
            ".changes.t",
            ".record_types",
            ".last_version",
        ] {
            let key = format!("{ns}{suffix}");
            let t = c.call(&[b"TYPE", key.as_bytes()]).expect("TYPE");
            shape.push(format!("{suffix}:{t:?}"));
        }
        let zc = c
            .call(&[b"ZCARD", format!("{ns}.changes").as_bytes()])
            .expect("ZCARD");
        shape.push(format!("changes:{zc:?}"));
        let lv = c
            .call(&[b"GET", format!("{ns}.last_version").as_bytes()])
            .expect("GET");
        shape.push(format!("last:{lv:?}"));
        shapes.push(shape);
    }
    assert!(
        shapes.windows(2).all(|w| w[0] == w[1]),
        "baselines leave different key layouts: {shapes:?}"
    );
    c.call(&[b"FLUSHALL"]).expect("FLUSHALL");
    "DB.PUT, the Lua script and the Go-style transaction were checked to leave the same keys \
     (records hash, changes zset, changes.<type> zset, record_types set, last_version): the module's \
     DB.GET reads each baseline's records (type, id, version, data) and DB.PUT continues their version sequence."
        .to_string()
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some_and(|v| v != "0");
    // BENCH_ONLY=writes,reads,big,latency runs a subset (for development).
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let phase = |name: &str| only.is_empty() || only.split(',').any(|p| p.trim() == name);
    let started = Instant::now();
    let nproc = util::nproc();
    let load_before = util::loadavg();
    let nofile = util::raise_nofile();
    let module = release_module();
    let pinned = nproc >= 2 && util::pin_self(1);
    println!(
        "databroker bench: module {}{}",
        module.display(),
        if quick { " (BENCH_QUICK)" } else { "" }
    );

    let server = Server::start(Options::default().arg([
        "--maxclients",
        "20000",
        "--slowlog-max-len",
        "100000",
        "--appendonly",
        "no",
    ]));
    let mut admin = Conn::connect(server.port).expect("connect");
    let pid: u64 = util::info_field(&mut admin, "server", "process_id")
        .and_then(|s| s.parse().ok())
        .expect("INFO server process_id");
    let server_pinned = pinned && util::pin_pid(pid, 0);
    let server_version =
        util::info_field(&mut admin, "server", "redis_version").unwrap_or_default();
    println!(
        "  redis-server {server_version}, pid {pid}, port {}",
        server.port
    );
    let bench = Bench {
        port: server.port,
        clients: 50,
        pipeline: 16,
        rounds: if quick { 1 } else { 3 },
        rounds_concurrent: if quick { 1 } else { 2 },
        rounds_scan: if quick { 1 } else { 2 },
        run_secs: if quick { 0.3 } else { 1.2 },
        warm_requests: if quick { 5_000 } else { 20_000 },
        drive_secs: if quick { 0.5 } else { 2.0 },
        records: if quick { 100_000 } else { 1_000_000 },
        server_version: server_version.clone(),
        quick,
    };

    let sha = writes::load_script(&mut admin);
    let mut report = Report::default();
    let eq = equivalence(server.port, &sha);
    println!("  equivalence of the baselines: ok");

    let whole = util::CpuMeter::start(pid);
    let mut noise = Vec::new();
    type Phase = fn(&Bench, &mut Report);
    let phases: [(&str, Phase); 4] = [
        ("writes", writes::run),
        ("reads", reads::run),
        ("big", big::run),
        ("latency", latency::run),
    ];
    for (name, run) in phases {
        if !phase(name) {
            continue;
        }
        println!("{name}...");
        let meter = util::CpuMeter::start(pid);
        let t = Instant::now();
        run(&bench, &mut report);
        let share = meter.foreign_share();
        println!(
            "  ({name}: {:.0} s; other processes used {:.0}% of the machine's CPU)",
            t.elapsed().as_secs_f64(),
            share * 100.0
        );
        noise.push(format!("{name} {:.0}%", share * 100.0));
    }
    let foreign = whole.foreign_share();

    let load_after = util::loadavg();
    report.header = format!(
        "## Machine and run\n\n\
         | | |\n|---|---|\n\
         | date | {} |\n\
         | commit | {} |\n\
         | CPU | {} × {} (nproc {}) |\n\
         | load average (1/5/15 min) before → after | {load_before} → {load_after} |\n\
         | CPU used by other processes during the run | {:.0}% of the machine (per phase: {}) |\n\
         | kernel | {} |\n\
         | server | redis-server {server_version} (Debian), module {} (release build), persistence off, loopback TCP |\n\
         | pinning | {} |\n\
         | open-file limit | {nofile} |\n\
         | run time | {:.0} s{} |\n\n\
         Baselines: {eq} The Lua script builds the protobuf Record itself from the raw payload \
         (no pre-encoded bytes) and skips the module's validation reads, which favors it; the \
         Go-style client encodes the Record on the client.\n",
        utc_now(),
        git_describe(),
        util::cpu_model(),
        nproc,
        nproc,
        foreign * 100.0,
        noise.join(", "),
        util::kernel(),
        module.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        if server_pinned {
            "server on CPU 0, all clients on CPU 1"
        } else {
            "none (fewer than 2 CPUs or taskset missing)"
        },
        started.elapsed().as_secs_f64(),
        if quick { " (BENCH_QUICK: reduced sizes, one round)" } else { "" }
    );
    println!("\n{}", report.summary());
    for n in &report.notes {
        println!("note: {n}");
    }
    report.write(Path::new(env!("CARGO_MANIFEST_DIR")));
    drop(server);
}
