//! A fault-injecting TCP proxy for the client's tests: listens on a free
//! 127.0.0.1 port, forwards every connection to one upstream loopback
//! address, and can be switched at any time to reset, refuse, blackhole or
//! delay traffic. It runs on the test's tokio runtime and stops when
//! dropped (its connections are then reset).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards everything.
    Forward,
    /// Forwards every chunk in both directions after this delay.
    Latency(Duration),
    /// Resets (RST) every existing connection now, and every new one as
    /// soon as it is accepted.
    Reset,
    /// Resets every new connection as soon as it is accepted, before any
    /// byte is exchanged: the client's connection attempt is refused (and
    /// counted by [`Proxy::accepted`]). Existing connections go on.
    Refuse,
    /// Stops forwarding on every connection, existing and new, without
    /// closing or resetting anything: a dead network path. New connections
    /// are accepted (the TCP handshake completes) and then hang.
    Blackhole,
    /// Stops forwarding on the connections that exist now (silently, as in
    /// `Blackhole`); connections opened afterwards work.
    BlackholeExisting,
    /// Forwards requests, but resets a connection instead of forwarding a
    /// reply: the server processed the command and the client never hears.
    LoseReplies,
    /// Internal: the proxy was dropped.
    Shutdown,
}

/// The current mode and, for `BlackholeExisting`, the first connection id
/// that is not affected.
type Setting = (Mode, u64);

/// A running proxy.
pub struct Proxy {
    /// The address it listens on.
    pub addr: SocketAddr,
    mode: Arc<watch::Sender<Setting>>,
    accepted: Arc<AtomicUsize>,
    next_id: Arc<AtomicU64>,
    upstream: Arc<Mutex<SocketAddr>>,
    acceptor: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (a loopback address).
    pub async fn start(upstream: SocketAddr) -> Proxy {
        assert!(upstream.ip().is_loopback(), "loopback only");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let mode = Arc::new(watch::Sender::new((Mode::Forward, 0)));
        let accepted = Arc::new(AtomicUsize::new(0));
        let next_id = Arc::new(AtomicU64::new(0));
        let upstream = Arc::new(Mutex::new(upstream));
        let acceptor = tokio::spawn(accept_loop(
            listener,
            upstream.clone(),
            mode.clone(),
            accepted.clone(),
            next_id.clone(),
        ));
        Proxy {
            addr,
            mode,
            accepted,
            next_id,
            upstream,
            acceptor,
        }
    }

    /// Sends new connections to another loopback address.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        assert!(upstream.ip().is_loopback(), "loopback only");
        *self.upstream.lock().unwrap() = upstream;
    }

    /// A proxy to a test server.
    pub async fn to(server: &databroker_testkit::Server) -> Proxy {
        Proxy::start(SocketAddr::from(([127, 0, 0, 1], server.port))).await
    }

    /// `redis://127.0.0.1:<proxy port>`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Switches the mode (effective at once for new connections, and for
    /// existing ones before their next chunk).
    pub fn set(&self, mode: Mode) {
        let cutoff = self.next_id.load(Ordering::SeqCst);
        self.mode.send_replace((mode, cutoff));
    }

    /// Connections accepted so far (refused and reset ones included).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.mode.send_replace((Mode::Shutdown, 0));
        self.acceptor.abort();
    }
}

#[allow(deprecated)] // set_linger: SO_LINGER 0 makes close() send RST
fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn accept_loop(
    listener: TcpListener,
    upstream: Arc<Mutex<SocketAddr>>,
    mode: Arc<watch::Sender<Setting>>,
    accepted: Arc<AtomicUsize>,
    next_id: Arc<AtomicU64>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        accepted.fetch_add(1, Ordering::SeqCst);
        let id = next_id.fetch_add(1, Ordering::SeqCst);
        let (current, _) = *mode.borrow();
        match current {
            Mode::Reset | Mode::Refuse | Mode::Shutdown => reset(client),
            _ => {
                let to = *upstream.lock().unwrap();
                tokio::spawn(pipe(id, client, to, mode.subscribe()));
            }
        }
    }
}

/// What a connection may do with its next chunk.
enum Gate {
    Pass(Option<Duration>),
    Close,
}

/// Waits until connection `id` may forward a chunk.
async fn gate(id: u64, rx: &mut watch::Receiver<Setting>) -> Gate {
    loop {
        let (mode, cutoff) = *rx.borrow_and_update();
        match mode {
            Mode::Reset | Mode::Shutdown => return Gate::Close,
            Mode::Blackhole => {}
            Mode::BlackholeExisting if id < cutoff => {}
            Mode::Latency(d) => return Gate::Pass(Some(d)),
            _ => return Gate::Pass(None),
        }
        if rx.changed().await.is_err() {
            return Gate::Close;
        }
    }
}

#[allow(deprecated)]
async fn pipe(id: u64, client: TcpStream, upstream: SocketAddr, mut rx: watch::Receiver<Setting>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        reset(client);
        return;
    };
    let _ = client.set_linger(Some(Duration::ZERO));
    let _ = server.set_linger(Some(Duration::ZERO));
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = tokio::io::split(server);
    let mut up = vec![0u8; 64 * 1024];
    let mut down = vec![0u8; 64 * 1024];
    loop {
        // Which direction has a chunk; forwarding waits for the gate.
        let (n, to_server) = tokio::select! {
            r = cr.read(&mut up) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => (n, true),
            },
            r = sr.read(&mut down) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => (n, false),
            },
            changed = rx.changed() => {
                if changed.is_err() || matches!(rx.borrow().0, Mode::Reset | Mode::Shutdown) {
                    break;
                }
                continue;
            }
        };
        if !to_server && rx.borrow().0 == Mode::LoseReplies {
            break;
        }
        match gate(id, &mut rx).await {
            Gate::Close => break,
            Gate::Pass(delay) => {
                if let Some(d) = delay {
                    tokio::time::sleep(d).await;
                }
            }
        }
        let written = if to_server {
            sw.write_all(&up[..n]).await
        } else {
            cw.write_all(&down[..n]).await
        };
        if written.is_err() {
            break;
        }
    }
    // Dropping both sockets (SO_LINGER 0) resets them.
}
