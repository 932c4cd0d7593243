//! Machine facts, CPU pinning, `redis-benchmark`, INFO parsing and summary
//! statistics.

use std::process::Command;

use crate::resp::Conn;

/// The CPUs the bench process may use.
pub fn nproc() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `model name` from /proc/cpuinfo.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The 1/5/15-minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// `uname -r`.
pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Pins the calling process (and the threads it creates later) to `cpu`.
pub fn pin_self(cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Pins every thread of process `pid` to `cpu` (with `taskset`).
pub fn pin_pid(pid: u64, cpu: usize) -> bool {
    Command::new("taskset")
        .args(["-a", "-cp", &cpu.to_string(), &pid.to_string()])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Raises the open-file limit to its hard limit (1000 followers need sockets).
pub fn raise_nofile() -> u64 {
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max.min(1 << 20);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        }
        r.rlim_cur
    }
}

/// One field of `INFO <section>`.
pub fn info_field(c: &mut Conn, section: &str, field: &str) -> Option<String> {
    let v = c.call(&[b"INFO", section.as_bytes()]).ok()?;
    let crate::resp::Value::Bulk(Some(text)) = v else {
        return None;
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|s| s.trim().to_string()))
}

/// `used_memory` in bytes.
pub fn used_memory(c: &mut Conn) -> u64 {
    info_field(c, "memory", "used_memory")
        .and_then(|s| s.parse().ok())
        .expect("INFO memory has used_memory")
}

/// `usec_per_call` and `calls` of one command from `INFO commandstats`.
pub fn commandstat(c: &mut Conn, cmd: &str) -> Option<(f64, u64)> {
    let line = info_field(
        c,
        "commandstats",
        &format!("cmdstat_{}", cmd.to_lowercase()),
    )?;
    let mut per = None;
    let mut calls = None;
    for kv in line.split(',') {
        if let Some(v) = kv.strip_prefix("usec_per_call=") {
            per = v.parse().ok();
        } else if let Some(v) = kv.strip_prefix("calls=") {
            calls = v.parse().ok();
        }
    }
    Some((per?, calls?))
}

/// Total `usec` and `calls` of one command from `INFO commandstats`.
pub fn commandstat_usec(c: &mut Conn, cmd: &str) -> Option<(f64, u64)> {
    let line = info_field(
        c,
        "commandstats",
        &format!("cmdstat_{}", cmd.to_lowercase()),
    )?;
    let mut usec = None;
    let mut calls = None;
    for kv in line.split(',') {
        if let Some(v) = kv.strip_prefix("usec=") {
            usec = v.parse().ok();
        } else if let Some(v) = kv.strip_prefix("calls=") {
            calls = v.parse().ok();
        }
    }
    Some((usec?, calls?))
}

/// Runs `redis-benchmark` with one custom command; returns requests/s.
pub fn redis_benchmark(
    port: u16,
    clients: usize,
    pipeline: usize,
    requests: u64,
    args: &[String],
) -> f64 {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-c", &clients.to_string(), "-P", &pipeline.to_string()])
        .args(["-n", &requests.to_string(), "-r", "100000", "--csv"])
        .args(args)
        .output()
        .expect(
            "cannot run redis-benchmark (Debian: apt-get install redis-tools; make setup does)",
        );
    assert!(
        out.status.success(),
        "redis-benchmark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .rfind(|l| l.starts_with('"') && !l.starts_with("\"test\""))
        .unwrap_or_else(|| panic!("no CSV row from redis-benchmark: {text}"));
    let fields: Vec<&str> = row.split("\",\"").collect();
    let rps: f64 = fields
        .get(1)
        .and_then(|f| f.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("bad redis-benchmark CSV row: {row}"));
    assert!(
        rps.is_finite() && rps > 0.0,
        "redis-benchmark reported {rps} req/s"
    );
    rps
}

/// Median, minimum and maximum of some samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// How many samples.
    pub n: usize,
}

impl Spread {
    /// The spread of `samples` (all NaN-free).
    pub fn of(samples: &[f64]) -> Spread {
        if samples.is_empty() {
            return Spread {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
                n: 0,
            };
        }
        let mut s = samples.to_vec();
        s.sort_by(|a, b| a.total_cmp(b));
        let m = s.len() / 2;
        let median = if s.len() % 2 == 1 {
            s[m]
        } else {
            (s[m - 1] + s[m]) / 2.0
        };
        Spread {
            median,
            min: s[0],
            max: s[s.len() - 1],
            n: s.len(),
        }
    }

    /// True when there is at least one sample.
    pub fn valid(&self) -> bool {
        self.n > 0 && self.median.is_finite()
    }
}

/// `1234567.8` as `1.23M`, `12345` as `12.3k`.
pub fn si(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A spread as `median (min–max)` with `fmt` for each number.
pub fn show(s: &Spread, fmt: impl Fn(f64) -> String) -> String {
    if !s.valid() {
        return "n/a".into();
    }
    if s.n == 1 || (s.max - s.min).abs() < f64::EPSILON * s.median.abs().max(1.0) {
        fmt(s.median)
    } else {
        format!("{} ({}–{})", fmt(s.median), fmt(s.min), fmt(s.max))
    }
}

/// A ratio as `0.42x`.
pub fn x(v: f64) -> String {
    if !v.is_finite() {
        "n/a".into()
    } else if v >= 10.0 {
        format!("{v:.0}x")
    } else {
        format!("{v:.2}x")
    }
}

/// Busy and total jiffies of the whole machine (/proc/stat).
fn machine_jiffies() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// utime + stime (+ reaped children's when `children`) of a process, in jiffies.
fn process_jiffies(pid: &str, children: bool) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesized command name; utime is field 14 overall.
    let Some(rest) = text.rfind(')').map(|i| &text[i + 2..]) else {
        return 0;
    };
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|s| s.parse().unwrap_or(0))
        .collect();
    let get = |i: usize| f.get(i - 3).copied().unwrap_or(0);
    get(14) + get(15) + if children { get(16) + get(17) } else { 0 }
}

/// Measures how much CPU processes other than the bench, its children and
/// the server used over an interval: the noise other work on the machine adds.
pub struct CpuMeter {
    server_pid: u64,
    start: (u64, u64, u64),
}

impl CpuMeter {
    /// Starts measuring.
    pub fn start(server_pid: u64) -> CpuMeter {
        let mut m = CpuMeter {
            server_pid,
            start: (0, 0, 0),
        };
        m.start = m.sample();
        m
    }

    fn sample(&self) -> (u64, u64, u64) {
        let (busy, total) = machine_jiffies();
        let ours =
            process_jiffies("self", true) + process_jiffies(&self.server_pid.to_string(), false);
        (busy, total, ours)
    }

    /// Share of the machine's CPU time used by other processes since `start`
    /// (0.5 = one of two cores fully busy with other work).
    pub fn foreign_share(&self) -> f64 {
        let (b, t, o) = self.sample();
        let (b0, t0, o0) = self.start;
        let total = t.saturating_sub(t0).max(1) as f64;
        let foreign = b.saturating_sub(b0) as f64 - o.saturating_sub(o0) as f64;
        (foreign / total).clamp(0.0, 1.0)
    }
}
