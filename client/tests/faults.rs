//! The client under network faults, through a fault-injecting proxy
//! (`common::proxy`): a silently dead feed connection is replaced within
//! `Config::sync_stall_timeout` with no gap and no duplicate, every call
//! ends within `Config::call_timeout`, connection attempts stay spaced by
//! backoff under refusal and refused credentials, `close()` never waits, a
//! server without the module is refused at `connect`, and a connection the
//! server closed is replaced at once.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::proxy::{Mode, Proxy};
use common::*;
use databroker_client::{new_record, tombstone, RecordExt};
use futures::StreamExt;

/// Short timeouts so that faults show quickly.
fn fault_config(prefix: &str) -> Config {
    Config::default()
        .namespace(namespace(prefix))
        .retry(RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
        })
        .connect_timeout(Duration::from_millis(400))
        .response_timeout(Duration::from_millis(400))
        .sync_block(Duration::from_millis(500))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_resumes_after_a_silent_connection_death() {
    let server = Server::redis();
    let proxy = Proxy::to(&server).await;
    let cfg = fault_config("silent");
    let writer = backend(&server, cfg.clone()).await;
    let reader = Backend::connect(&proxy.url(), cfg.clone()).await.unwrap();
    writer
        .put(&mut [new_record("t", "first", "0")])
        .await
        .unwrap();
    let (cursor, _) = reader.snapshot(None, None).await.unwrap();
    let mut feed = reader.sync_from(None, cursor);

    // Writes go straight to the server, one record every ~2 ms, for 4 s.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writes = Some({
        let (writer, stop) = (writer.clone(), stop.clone());
        tokio::spawn(async move {
            let mut last = 0;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut r = [new_record("t", format!("r{}", i % 50), i.to_string())];
                writer.put(&mut r).await.unwrap();
                last = r[0].version;
                i += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            last
        })
    });
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(4)).await;
            stop.store(true, Ordering::Relaxed);
        })
    };

    let started = Instant::now();
    let mut blackholed_at = None;
    let mut expected = cursor.record_version + 1;
    let mut last_seen = Instant::now();
    let mut longest_silence = Duration::ZERO;
    let mut last_version = None;
    loop {
        if blackholed_at.is_none() && started.elapsed() > Duration::from_secs(1) {
            // The feed's connection goes silent: no RST, no FIN; new
            // connections still work.
            proxy.set(Mode::BlackholeExisting);
            blackholed_at = Some(Instant::now());
        }
        if let Some(done) = last_version {
            if expected > done {
                break;
            }
        } else if writes.as_ref().is_some_and(|w| w.is_finished()) {
            last_version = Some(writes.take().unwrap().await.unwrap());
            continue;
        }
        let Ok(item) = tokio::time::timeout(Duration::from_millis(100), feed.next()).await else {
            continue;
        };
        let change = item.expect("the feed goes on").expect("no error");
        assert_eq!(change.version, expected, "no gap, no duplicate");
        expected += 1;
        let now = Instant::now();
        longest_silence = longest_silence.max(now - last_seen);
        last_seen = now;
        assert!(started.elapsed() < Duration::from_secs(20), "feed too slow");
    }
    stopper.await.unwrap();
    let bound = cfg.sync_stall_timeout();
    println!(
        "longest silence {longest_silence:?} (bound {bound:?}); {} changes; {} connections",
        expected - cursor.record_version - 1,
        proxy.accepted()
    );
    assert!(blackholed_at.is_some());
    assert!(
        longest_silence <= bound + Duration::from_millis(1200),
        "the feed resumed after {longest_silence:?}, bound {bound:?}"
    );
    assert!(
        proxy.accepted() >= 3,
        "the feed reconnected (calls, snapshot and feed connections)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_below_the_timeouts_is_not_a_fault() {
    let server = Server::redis();
    let proxy = Proxy::to(&server).await;
    let cfg = fault_config("latency");
    let writer = backend(&server, cfg.clone()).await;
    let db = Backend::connect(&proxy.url(), cfg).await.unwrap();
    let mut follower = db.follow(None); // on a namespace never written
    let mut copy = std::collections::BTreeMap::new();
    next_within(&mut follower, 5)
        .await
        .unwrap()
        .unwrap()
        .apply_to(&mut copy);
    assert!(copy.is_empty());
    writer.put(&mut [new_record("t", "0", "0")]).await.unwrap();
    // The namespace's creation is no error: a new snapshot holds the record.
    match next_within(&mut follower, 5).await.unwrap().unwrap() {
        e @ databroker_client::FollowEvent::Snapshot { .. } => e.apply_to(&mut copy),
        other => panic!("{other:?}"),
    }
    assert_eq!(copy.len(), 1);
    proxy.set(Mode::Latency(Duration::from_millis(150)));
    let start = Instant::now();
    db.put(&mut [new_record("t", "a", "1")]).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "delayed both ways"
    );
    writer.put(&mut [new_record("t", "b", "2")]).await.unwrap();
    for _ in 0..2 {
        next_within(&mut follower, 5)
            .await
            .unwrap()
            .unwrap()
            .apply_to(&mut copy);
    }
    assert_eq!(copy.len(), 3);
    // Blocking calls longer than the latency go on without a reconnect.
    let opened = proxy.accepted();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    writer.put(&mut [new_record("t", "c", "3")]).await.unwrap();
    next_within(&mut follower, 5)
        .await
        .unwrap()
        .unwrap()
        .apply_to(&mut copy);
    assert_eq!(copy.len(), 4);
    assert_eq!(proxy.accepted(), opened, "no reconnect under latency");
}

/// Runs `callers` concurrent calls against a blackholed server and checks
/// that each ends within `Config::call_timeout`.
async fn calls_under_blackhole(callers: usize) {
    let server = Server::redis();
    let proxy = Proxy::to(&server).await;
    let cfg = fault_config("blackhole");
    let deadline = cfg.call_timeout();
    let db = Backend::connect(&proxy.url(), cfg).await.unwrap();
    db.put(&mut [new_record("t", "a", "1")]).await.unwrap();
    proxy.set(Mode::Blackhole);
    let mut tasks = Vec::new();
    for i in 0..callers {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            let result = if i % 2 == 0 {
                db.get("t", "a").await.map(|_| ())
            } else {
                db.put(&mut [new_record("t", format!("p{i}"), "x")])
                    .await
                    .map(|_| ())
            };
            (start.elapsed(), result)
        }));
    }
    let mut longest = Duration::ZERO;
    for t in tasks {
        let (took, result) = t.await.unwrap();
        longest = longest.max(took);
        let err = result.unwrap_err();
        assert!(matches!(err, Error::ExceededMaxRetries { .. }), "{err:?}");
    }
    println!(
        "{callers} callers: longest call {longest:?}, deadline {deadline:?}, {} connections",
        proxy.accepted()
    );
    assert!(
        longest <= deadline + Duration::from_millis(500),
        "{longest:?} > {deadline:?}"
    );
    // Dials were shared: far fewer connections than calls x attempts.
    assert!(proxy.accepted() <= 10, "{} connections", proxy.accepted());
    // The network heals: so does the backend.
    proxy.set(Mode::Forward);
    let start = Instant::now();
    loop {
        match db.get("t", "a").await {
            Ok(r) => {
                assert_eq!(r.unwrap().payload(), b"1");
                break;
            }
            Err(e) => assert!(start.elapsed() < Duration::from_secs(10), "{e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_ends_within_its_deadline_under_a_blackhole() {
    calls_under_blackhole(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_calls_end_within_their_deadline_under_a_blackhole() {
    calls_under_blackhole(50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_does_not_wait_for_calls_in_progress() {
    let server = Server::redis();
    let proxy = Proxy::to(&server).await;
    let cfg = fault_config("close").response_timeout(Duration::from_secs(5));
    let db = Backend::connect(&proxy.url(), cfg).await.unwrap();
    let mut feed = db.follow(None);
    assert!(matches!(
        next_within(&mut feed, 5).await,
        Some(Ok(databroker_client::FollowEvent::Snapshot { .. }))
    ));
    proxy.set(Mode::Blackhole);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let r = db.get("t", "a").await;
            (Instant::now(), r)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let accepted = proxy.accepted();
    let start = Instant::now();
    db.close().await;
    let closed_in = start.elapsed();
    for t in tasks {
        let (at, r) = t.await.unwrap();
        assert!(matches!(r, Err(Error::Closed)), "{r:?}");
        assert!(at.duration_since(start) < Duration::from_millis(500));
    }
    assert!(
        next_within(&mut feed, 2).await.is_none(),
        "the follower ends"
    );
    assert!(
        closed_in < Duration::from_millis(200),
        "close took {closed_in:?}"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(proxy.accepted(), accepted, "nothing dials after close()");
}

/// Loops of `get` on one backend for `run`; returns how many calls ended
/// and the errors they gave.
async fn hammer(db: &Backend, loops: usize, run: Duration) -> (usize, Vec<Error>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..loops {
        let (db, calls) = (db.clone(), calls.clone());
        tasks.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            let start = Instant::now();
            while start.elapsed() < run {
                if let Err(e) = db.get("t", "a").await {
                    errors.push(e);
                }
                calls.fetch_add(1, Ordering::Relaxed);
            }
            errors
        }));
    }
    let mut errors = Vec::new();
    for t in tasks {
        errors.extend(t.await.unwrap());
    }
    (calls.load(Ordering::Relaxed), errors)
}

/// The most connections a backend may open in `run` while every dial
/// fails: one per backoff (jitter takes off at most 25%), growing from
/// `initial_backoff` to `max_backoff`.
fn dial_bound(cfg: &Config, run: Duration) -> usize {
    let mut t = Duration::ZERO;
    let mut dials = 1;
    let mut k = 1;
    while t < run {
        t += cfg.retry.max_wait(k).mul_f64(0.75);
        dials += 1;
        k += 1;
    }
    dials
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_attempts_are_spaced_under_refusal() {
    let server = Server::redis();
    let proxy = Proxy::to(&server).await;
    let cfg = fault_config("refuse").connect_timeout(Duration::from_secs(1));
    let db = Backend::connect(&proxy.url(), cfg.clone()).await.unwrap();
    proxy.set(Mode::Reset);
    tokio::time::sleep(Duration::from_millis(50)).await;
    proxy.set(Mode::Refuse);
    let before = proxy.accepted();
    let run = Duration::from_secs(2);
    let (calls, errors) = hammer(&db, 20, run).await;
    let dials = proxy.accepted() - before;
    let bound = dial_bound(&cfg, run + cfg.call_timeout());
    println!("refusal: {calls} calls, {dials} connections in {run:?} (bound {bound})");
    assert_eq!(errors.len(), calls, "every call failed");
    assert!(dials <= bound, "{dials} connections > {bound}");
    assert!(dials >= 2, "it kept trying");
    proxy.set(Mode::Forward);
    let start = Instant::now();
    while db.get("t", "a").await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_typed_and_not_retried_in_a_loop() {
    let server = Server::redis();
    raw::<()>(&server, &[b"CONFIG", b"SET", b"requirepass", b"old"]).unwrap();
    let proxy = Proxy::to(&server).await;
    let cfg = fault_config("auth");
    let url = format!("redis://:old@{}", proxy.addr);
    let db = Backend::connect(&url, cfg.clone()).await.unwrap();
    db.put(&mut [new_record("t", "a", "1")]).await.unwrap();

    // The password is rotated and the connection drops.
    let mut admin = redis::Client::open(format!("redis://:old@127.0.0.1:{}", server.port))
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("new")
        .query::<()>(&mut admin)
        .unwrap();
    proxy.set(Mode::Reset);
    tokio::time::sleep(Duration::from_millis(50)).await;
    proxy.set(Mode::Forward);
    let before = proxy.accepted();
    let run = Duration::from_secs(2);
    let (calls, errors) = hammer(&db, 20, run).await;
    let dials = proxy.accepted() - before;
    // One more than the spacing allows: the dial that found the rotation.
    let bound = dial_bound(&cfg, run) + 1;
    println!("refused credentials: {calls} calls, {dials} connections in {run:?} (bound {bound})");
    assert_eq!(errors.len(), calls);
    assert!(
        errors
            .iter()
            .filter(|e| !matches!(e, Error::Authentication(_)))
            .count()
            <= 20,
        "calls fail with Error::Authentication: {:?}",
        &errors[..3]
    );
    assert!(calls >= 200, "calls return at once ({calls})");
    assert!(dials <= bound, "{dials} connections > {bound}");

    // Rotated back: the backend recovers by itself.
    redis::cmd("AUTH")
        .arg("new")
        .query::<()>(&mut admin)
        .unwrap();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("old")
        .query::<()>(&mut admin)
        .unwrap();
    let start = Instant::now();
    while db.get("t", "a").await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_server_without_the_module_is_refused_at_connect() {
    let server = Server::start(Options {
        module_args: None,
        ..Options::default()
    });
    let err = Backend::connect(&server.url(), config("nomodule"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ModuleNotLoaded(_)), "{err:?}");
    assert!(err.to_string().contains("module is not loaded"), "{err}");
}

#[tokio::test]
async fn errors_never_echo_payloads() {
    // The backend connects to a server with the module; then its address
    // leads to one without (a failover to a misconfigured server).
    let server = Server::redis();
    let plain = Server::start(Options {
        module_args: None,
        ..Options::default()
    });
    let proxy = Proxy::to(&server).await;
    let db = Backend::connect(&proxy.url(), config("echo"))
        .await
        .unwrap();
    proxy.set_upstream(std::net::SocketAddr::from(([127, 0, 0, 1], plain.port)));
    proxy.set(Mode::Reset);
    tokio::time::sleep(Duration::from_millis(50)).await;
    proxy.set(Mode::Forward);
    let secret = "SECRET-PAYLOAD-bytes";
    let single = db
        .put(&mut [new_record("t", "a", secret)])
        .await
        .unwrap_err();
    let mixed = db
        .put(&mut [new_record("t", "a", secret), tombstone("t", "b")])
        .await
        .unwrap_err();
    for err in [single, mixed] {
        assert!(matches!(err, Error::ModuleNotLoaded(_)), "{err:?}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}

#[tokio::test]
async fn a_connection_the_server_closed_is_replaced_at_once() {
    let server = Server::start(Options::default().arg(["--timeout", "1"]));
    // A backoff would show: at least 750 ms.
    let cfg = config("idle").retry(RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(2),
    });
    let db = backend(&server, cfg).await;
    db.put(&mut [new_record("t", "a", "1")]).await.unwrap();
    let opened = db.connections_opened();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(2500)).await; // closed as idle
        let start = Instant::now();
        assert!(db.get("t", "a").await.unwrap().is_some());
        let took = start.elapsed();
        assert!(took < Duration::from_millis(500), "get took {took:?}");
    }
    assert_eq!(
        db.connections_opened(),
        opened + 2,
        "one new connection each time"
    );
}
