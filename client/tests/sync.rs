//! `sync` and `sync_latest` against a live module: following, both error
//! paths, paging, filters, waiting longer than the response timeout, and
//! surviving a server restart.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use databroker_client::{new_record, tombstone, Filter, RecordExt};

#[tokio::test]
async fn follows_puts_and_deletions_in_order() {
    let server = Server::redis();
    let db = backend(&server, config("follow")).await;
    let sv = db.put(&mut [new_record("t", "before", "0")]).await.unwrap();
    let mut feed = db.sync(None, sv, 1);
    let mut typed = db.sync(Some("u"), sv, 1);
    let writer = db.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer
            .put(&mut [new_record("t", "a", "1"), new_record("u", "b", "2")])
            .await
            .unwrap();
        writer.delete([("t", "a")]).await.unwrap();
        writer.put(&mut [new_record("u", "c", "3")]).await.unwrap();
    });
    let mut seen = Vec::new();
    for _ in 0..4 {
        let r = next_within(&mut feed, 5).await.unwrap().unwrap();
        seen.push((r.version, r.r#type.clone(), r.id.clone(), r.is_deleted()));
    }
    assert_eq!(
        seen,
        [
            (2, "t".into(), "a".into(), false),
            (3, "u".into(), "b".into(), false),
            (4, "t".into(), "a".into(), true),
            (5, "u".into(), "c".into(), false),
        ]
    );
    let b = next_within(&mut typed, 5).await.unwrap().unwrap();
    let c = next_within(&mut typed, 5).await.unwrap().unwrap();
    assert_eq!(
        (b.id.as_str(), b.payload(), c.id.as_str()),
        ("b", &b"2"[..], "c")
    );
}

#[tokio::test]
async fn waits_longer_than_the_response_timeout() {
    let server = Server::redis();
    // Ordinary calls time out after 200 ms; the feed blocks 2 s per call.
    let cfg = config("wait")
        .response_timeout(Duration::from_millis(200))
        .sync_block(Duration::from_secs(2));
    let db = backend(&server, cfg).await;
    let sv = db.put(&mut [new_record("t", "a", "1")]).await.unwrap();
    let mut feed = db.sync(None, sv, 1);
    let writer = db.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        writer
            .put(&mut [new_record("t", "late", "2")])
            .await
            .unwrap();
    });
    let r = next_within(&mut feed, 5).await.unwrap().unwrap();
    assert_eq!((r.version, r.id.as_str()), (2, "late"));
    // The blocking feed does not hold up ordinary calls.
    assert!(db.get("t", "a").await.unwrap().is_some());
}

#[tokio::test]
async fn wrong_server_version_ends_the_stream() {
    let server = Server::redis();
    let db = backend(&server, config("sv")).await;
    let sv = db.put(&mut [new_record("t", "a", "1")]).await.unwrap();
    let mut feed = db.sync(None, sv.wrapping_add(1), 0);
    let err = next_within(&mut feed, 5).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::InvalidServerVersion(_)), "{err:?}");
    assert!(
        next_within(&mut feed, 5).await.is_none(),
        "the stream ends after the error"
    );
    // A version beyond the newest one is refused the same way.
    let mut ahead = db.sync(None, sv, 100);
    let err = next_within(&mut ahead, 5).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::InvalidServerVersion(_)), "{err:?}");
    assert!(next_within(&mut ahead, 5).await.is_none());
}

#[tokio::test]
async fn trimmed_history_ends_the_stream() {
    let server = Server::start(Options::default().module_args(["changes-ttl-ms", "200"]));
    let db = backend(&server, config("trim")).await;
    let sv = db
        .put(&mut [new_record("t", "a", "1"), new_record("t", "b", "2")])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    db.put(&mut [new_record("t", "c", "3")]).await.unwrap(); // trims versions 1 and 2
    let mut feed = db.sync(None, sv, 0);
    let err = next_within(&mut feed, 5).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Trimmed(_)), "{err:?}");
    assert_eq!(err.code(), Some("TRIMMED"));
    assert!(
        next_within(&mut feed, 5).await.is_none(),
        "the stream ends after the error"
    );
    // Starting over with sync_latest works.
    let (sv2, rv, mut pages) = db.sync_latest(None, None).await.unwrap();
    assert_eq!((sv2, rv), (sv, 3));
    let mut ids = Vec::new();
    while let Some(r) = next_within(&mut pages, 5).await {
        ids.push(r.unwrap().id);
    }
    ids.sort();
    assert_eq!(ids, ["a", "b", "c"]);
}

#[tokio::test]
async fn sync_latest_pages_and_filters() {
    let server = Server::redis();
    // Four records per call: 30 records take several pages.
    let db = backend(&server, config("latest").batch_size(4)).await;
    let mut records: Vec<_> = (0..30)
        .map(|i| {
            new_record(
                if i % 3 == 0 { "x" } else { "y" },
                format!("r{i:02}"),
                format!("p{i}"),
            )
        })
        .collect();
    let sv = db.put(&mut records).await.unwrap();
    db.put(&mut [tombstone("y", "r01")]).await.unwrap();

    let (sv2, rv, mut pages) = db.sync_latest(None, None).await.unwrap();
    assert_eq!((sv2, rv), (sv, 31));
    let mut all = BTreeMap::new();
    while let Some(r) = next_within(&mut pages, 5).await {
        let r = r.unwrap();
        let keep = all.get(&r.id).is_none_or(|v: &u64| *v < r.version);
        if keep {
            all.insert(r.id.clone(), r.version);
        }
    }
    assert_eq!(all.len(), 29, "every live record, deleted ones excluded");
    assert!(!all.contains_key("r01"));

    let (_, _, mut xs) = db.sync_latest(Some("x"), None).await.unwrap();
    let mut n = 0;
    while let Some(r) = next_within(&mut xs, 5).await {
        assert_eq!(r.unwrap().r#type, "x");
        n += 1;
    }
    assert_eq!(n, 10);

    let filter = Filter::or([
        Filter::and([Filter::record_type("x"), Filter::id("r03")]),
        Filter::id("r04"),
    ]);
    let (_, _, mut some) = db.sync_latest(None, Some(&filter)).await.unwrap();
    let mut got = Vec::new();
    while let Some(r) = next_within(&mut some, 5).await {
        let r = r.unwrap();
        let payload = r.payload().to_vec();
        got.push((r.r#type, r.id, payload));
    }
    got.sort();
    assert_eq!(
        got,
        [
            ("x".into(), "r03".into(), b"p3".to_vec()),
            ("y".into(), "r04".into(), b"p4".to_vec())
        ]
    );

    // After the last page, sync from the record version misses nothing.
    let mut feed = db.sync(None, sv, rv);
    db.put(&mut [new_record("x", "new", "n")]).await.unwrap();
    let r = next_within(&mut feed, 5).await.unwrap().unwrap();
    assert_eq!((r.version, r.id.as_str()), (32, "new"));
}

#[tokio::test]
async fn empty_namespace() {
    let server = Server::redis();
    let db = backend(&server, config("empty")).await;
    let (sv, rv, mut pages) = db.sync_latest(None, None).await.unwrap();
    assert_eq!((sv, rv), (0, 0));
    assert!(next_within(&mut pages, 5).await.is_none());
    // Server version 0 matches a namespace never written; its first write
    // gives it a server version, so the follower must start over (SPEC 3).
    let mut feed = db.sync(None, 0, 0);
    let writer = db.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer
            .put(&mut [new_record("t", "first", "1")])
            .await
            .unwrap();
    });
    let err = next_within(&mut feed, 5).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::InvalidServerVersion(_)), "{err:?}");
    assert!(next_within(&mut feed, 5).await.is_none());
    let (sv, rv, _) = db.sync_latest(None, None).await.unwrap();
    assert_ne!(sv, 0);
    assert_eq!(rv, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_server_restart() {
    let mut server =
        Server::start(Options::default().arg(["--appendonly", "yes", "--appendfsync", "always"]));
    let db = backend(&server, config("restart")).await;
    let sv = db.put(&mut [new_record("t", "r0", "0")]).await.unwrap();
    let mut feed = db.sync(None, sv, 0);

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(item) = futures::StreamExt::next(&mut feed).await {
            if tx.send(item).is_err() {
                break;
            }
        }
    });
    let mut versions = Vec::new();

    // Some changes before the restart.
    for i in 1..=5 {
        db.put(&mut [new_record("t", format!("r{i}"), "x")])
            .await
            .unwrap();
    }
    while versions.len() < 6 {
        let item = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        versions.push(item.unwrap().version);
    }
    // Restart (AOF reloads the data); the feed's connection drops.
    tokio::task::block_in_place(|| server.restart());
    // Changes written while the stream reconnects, and after.
    for i in 6..=15 {
        db.put(&mut [new_record("t", format!("r{i}"), "x")])
            .await
            .unwrap();
        if i % 3 == 0 {
            db.delete([("t", format!("r{}", i - 1))]).await.unwrap();
        }
    }
    let last = db.versions().await.unwrap();
    assert_eq!(last.server_version, sv, "AOF kept the namespace's history");
    while versions.len() < last.latest_record_version as usize {
        let item = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("feed stalled after {versions:?}"))
            .unwrap();
        versions.push(item.unwrap().version);
    }
    let expected: Vec<u64> = (1..=last.latest_record_version).collect();
    assert_eq!(
        versions, expected,
        "every change once, in order, none missed"
    );
    reader.abort();
}
