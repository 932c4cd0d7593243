//! Conditional writes (`Backend::put_if`) and exactly-once retries: every
//! write carries an idempotency token that its retries reuse, so a write
//! whose reply was lost (the proxy resets the connection instead of
//! forwarding the reply) is applied once.

mod common;

use std::time::Duration;

use common::proxy::{Mode, Proxy};
use common::*;
use databroker_client::{new_record, tombstone, RecordExt};

fn last_version(server: &Server, ns: &str) -> i64 {
    let v: Vec<redis::Value> = raw(server, &[b"DB.VERSIONS", ns.as_bytes()]).unwrap();
    match v[2] {
        redis::Value::Int(i) => i,
        _ => panic!("{v:?}"),
    }
}

#[tokio::test]
async fn put_if_is_all_or_nothing() {
    let server = Server::redis();
    let db = backend(&server, config("cond")).await;
    let mut first = [new_record("t", "a", "1"), new_record("t", "b", "2")];
    db.put(&mut first).await.unwrap();
    let (va, vb) = (first[0].version, first[1].version);
    // A safe read-modify-write.
    let current = db.get("t", "a").await.unwrap().unwrap();
    let mut next = [new_record("t", "a", "1+1")];
    db.put_if(&mut next, &[Some(current.version)])
        .await
        .unwrap();
    // A stale condition: nothing written, the current versions reported.
    let before = last_version(&server, db.namespace());
    let mut stale = [new_record("t", "a", "x"), new_record("t", "c", "y")];
    match db.put_if(&mut stale, &[Some(va), Some(0)]).await {
        Err(Error::VersionConflict { current }) => assert_eq!(current, [next[0].version, 0]),
        other => panic!("{other:?}"),
    }
    assert_eq!(last_version(&server, db.namespace()), before);
    // Conditions on deletions and mixed batches; None is no condition.
    let mut mixed = [tombstone("t", "b"), new_record("t", "c", "new")];
    db.put_if(&mut mixed, &[Some(vb), Some(0)]).await.unwrap();
    assert!(db.get("t", "b").await.unwrap().is_none());
    assert_eq!(db.get("t", "c").await.unwrap().unwrap().payload(), b"new");
    let mut any = [new_record("t", "c", "newer")];
    db.put_if(&mut any, &[None]).await.unwrap();
    assert!(matches!(
        db.put_if(&mut [new_record("t", "d", "x")], &[]).await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_write_whose_reply_was_lost_is_applied_once() {
    let server = Server::redis();
    let proxy = Proxy::to(&server).await;
    let cfg = config("once").retry(RetryPolicy {
        max_attempts: 20,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(100),
    });
    let db = Backend::connect(&proxy.url(), cfg).await.unwrap();
    let ns = db.namespace().to_string();
    db.put(&mut [new_record("t", "seed", "0")]).await.unwrap();
    let (cursor, _) = db.snapshot(None, None).await.unwrap();

    proxy.set(Mode::LoseReplies);
    let writer = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut r = [new_record("t", "a", "payload"), tombstone("t", "seed")];
            db.put(&mut r).await.map(|_| r)
        })
    };
    // The server applies the first attempt; its reply (and the retries') are lost.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while last_version(&server, &ns) < 3 {
        assert!(std::time::Instant::now() < deadline, "the write never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.set(Mode::Forward);
    let written = writer.await.unwrap().expect("the retried write succeeds");
    assert_eq!(
        written.iter().map(|r| r.version).collect::<Vec<_>>(),
        [2, 3],
        "the original versions"
    );
    assert_eq!(last_version(&server, &ns), 3, "applied once");
    // The feed after the snapshot holds exactly these two changes.
    let mut feed = db.sync_from(None, cursor);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let change = next_within(&mut feed, 5).await.unwrap().unwrap();
        seen.push(change.version);
    }
    assert_eq!(seen, [2, 3]);
    assert!(
        tokio::time::timeout(
            Duration::from_millis(700),
            futures::StreamExt::next(&mut feed)
        )
        .await
        .is_err(),
        "no third change"
    );
    db.close().await;
}
