//! Transient failures: retried with backoff up to the configured number of
//! attempts, then `ExceededMaxRetries`; recovery once the server is back.

mod common;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use databroker_client::{new_record, RecordExt};

#[tokio::test]
async fn server_down_gives_exceeded_max_retries() {
    let server = Server::redis();
    let url = server.url();
    drop(server); // nothing listens there now
    let start = Instant::now();
    let err = Backend::connect(&url, config("down").retry(fast_retry(3)))
        .await
        .unwrap_err();
    match &err {
        Error::ExceededMaxRetries { attempts, last } => {
            assert_eq!(*attempts, 3);
            assert!(last.is_connection_refusal(), "{last:?}");
        }
        other => panic!("expected ExceededMaxRetries, got {other:?}"),
    }
    // Two backoffs of at least 15 and 30 ms (20 and 40 ms minus jitter).
    assert!(
        start.elapsed() >= Duration::from_millis(45),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn attempts_are_counted_on_the_wire() {
    // A listener that accepts each connection and closes it at once.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (accepted, stop) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((sock, _)) => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        drop(sock);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        })
    };
    let err = Backend::connect(&url, config("wire").retry(fast_retry(4)))
        .await
        .unwrap_err();
    stop.store(true, Ordering::Relaxed);
    thread.join().unwrap();
    assert!(
        matches!(err, Error::ExceededMaxRetries { attempts: 4, .. }),
        "{err:?}"
    );
    assert_eq!(
        accepted.load(Ordering::Relaxed),
        4,
        "one connection per attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_server_comes_back() {
    let mut server =
        Server::start(Options::default().arg(["--appendonly", "yes", "--appendfsync", "always"]));
    let db = backend(&server, config("back").retry(fast_retry(3))).await;
    db.put(&mut [new_record("t", "a", "kept")]).await.unwrap();
    tokio::task::block_in_place(|| server.kill());
    let err = db.get("t", "a").await.unwrap_err();
    assert!(
        matches!(err, Error::ExceededMaxRetries { attempts: 3, .. }),
        "{err:?}"
    );
    tokio::task::block_in_place(|| server.restart());
    assert_eq!(db.get("t", "a").await.unwrap().unwrap().payload(), b"kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_is_retried() {
    let server = Server::start(Options::default().arg(["--busy-reply-threshold", "100"]));
    let cfg = config("busy");
    let patient = backend(
        &server,
        cfg.clone().retry(RetryPolicy {
            max_attempts: 40,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
        }),
    )
    .await;
    let hasty = backend(&server, cfg.retry(fast_retry(2))).await;
    patient.put(&mut [new_record("t", "a", "x")]).await.unwrap();

    // A script that runs until killed makes the server reply BUSY.
    let url = server.url();
    let script = std::thread::spawn(move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        redis::cmd("EVAL")
            .arg("while true do end")
            .arg(0)
            .query::<redis::Value>(&mut c)
    });
    tokio::time::sleep(Duration::from_millis(400)).await;

    let err = hasty.get("t", "a").await.unwrap_err();
    match &err {
        Error::ExceededMaxRetries { attempts: 2, last } => assert_eq!(last.code(), Some("BUSY")),
        other => panic!("expected ExceededMaxRetries after BUSY, got {other:?}"),
    }

    let kill_url = server.url();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut c = redis::Client::open(kill_url)
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("SCRIPT").arg("KILL").query::<()>(&mut c)
    });
    let got = patient.get("t", "a").await.unwrap();
    assert_eq!(got.unwrap().payload(), b"x");
    killer.join().unwrap().unwrap();
    assert!(script.join().unwrap().is_err(), "the script was killed");
}
