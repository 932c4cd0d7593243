//! `Backend::follow`: a copy of the namespace kept from a snapshot plus the
//! feed converges to the server's records, also after the namespace was
//! recreated (server restart without persistence), after its history was
//! trimmed while the follower was behind, and after a rollback that issued
//! the same versions again (caught by the cursor's stamp).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use databroker_client::{new_record, FollowEvent, Follower, RecordExt};

type Copy = BTreeMap<(String, String), pb::Record>;

/// The server's current records as `(type, id) -> payload`.
async fn server_records(db: &Backend) -> BTreeMap<(String, String), Vec<u8>> {
    use futures::StreamExt;
    let (_, mut pages) = db.snapshot(None, None).await.unwrap();
    let mut out = BTreeMap::new();
    while let Some(r) = pages.next().await {
        let r = r.unwrap();
        out.insert((r.r#type.clone(), r.id.clone()), r.payload().to_vec());
    }
    out
}

fn payloads(copy: &Copy) -> BTreeMap<(String, String), Vec<u8>> {
    copy.iter()
        .map(|(k, r)| (k.clone(), r.payload().to_vec()))
        .collect()
}

/// Applies the follower's events to `copy` until it equals the server's
/// records (checked whenever the follower is quiet), within `secs`.
/// Returns the errors the follower reported.
async fn converge(
    follower: &mut Follower,
    copy: &mut Copy,
    db: &Backend,
    secs: u64,
) -> Vec<String> {
    use futures::StreamExt;
    let start = Instant::now();
    let mut reports = Vec::new();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "no convergence within {secs} s; reports {reports:?}; copy {:?}",
            payloads(copy)
        );
        match tokio::time::timeout(Duration::from_millis(200), follower.next()).await {
            Ok(Some(Ok(event))) => event.apply_to(copy),
            Ok(Some(Err(e))) => reports.push(e.to_string()),
            Ok(None) => panic!("the follower ended"),
            Err(_) => {
                if payloads(copy) == server_records(db).await {
                    return reports;
                }
            }
        }
    }
}

fn follower_config(prefix: &str) -> Config {
    config(prefix)
        .sync_block(Duration::from_millis(300))
        .response_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_after_a_restart_without_persistence() {
    let mut server = Server::redis(); // no RDB, no AOF
    let cfg = follower_config("restart");
    let writer = backend(&server, cfg.clone()).await;
    let reader = backend(&server, cfg).await;
    writer
        .put(&mut [new_record("t", "a", "1"), new_record("t", "b", "2")])
        .await
        .unwrap();
    let mut follower = reader.follow(None);
    let mut copy = Copy::new();
    converge(&mut follower, &mut copy, &writer, 10).await;
    writer.put(&mut [new_record("u", "c", "3")]).await.unwrap();
    writer.delete([("t", "a")]).await.unwrap();
    converge(&mut follower, &mut copy, &writer, 10).await;
    assert_eq!(copy.len(), 2);

    // The server comes back empty: a new namespace, versions from 1 again.
    let url = server.url();
    tokio::task::block_in_place(|| server.restart());
    assert_eq!(server.url(), url, "restarted on the same port");
    writer
        .put(&mut [new_record("t", "x", "after"), new_record("t", "b", "new")])
        .await
        .unwrap();
    let reports = converge(&mut follower, &mut copy, &writer, 15).await;
    assert_eq!(
        payloads(&copy),
        BTreeMap::from([
            (("t".into(), "b".into()), b"new".to_vec()),
            (("t".into(), "x".into()), b"after".to_vec()),
        ])
    );
    println!("reports: {reports:?}");
    // It goes on following the new namespace.
    writer
        .put(&mut [new_record("t", "y", "more")])
        .await
        .unwrap();
    converge(&mut follower, &mut copy, &writer, 10).await;
    assert_eq!(copy.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_after_trimmed_history() {
    use futures::StreamExt;
    let server = Server::start(Options::default().module_args(["changes-ttl-ms", "200"]));
    let cfg = follower_config("trimmed");
    let writer = backend(&server, cfg.clone()).await;
    let reader = backend(&server, cfg).await;
    writer
        .put(&mut [new_record("t", "a", "1"), new_record("t", "b", "2")])
        .await
        .unwrap();
    let mut follower = reader.follow(None);
    let mut copy = Copy::new();
    converge(&mut follower, &mut copy, &writer, 10).await;

    // The follower is not polled while the namespace changes and retention
    // trims those changes: its next DB.SYNC gets TRIMMED.
    for i in 0..20 {
        writer
            .put(&mut [new_record("t", format!("n{i}"), i.to_string())])
            .await
            .unwrap();
    }
    writer.delete([("t", "a")]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    writer
        .put(&mut [new_record("t", "last", "z")])
        .await
        .unwrap(); // trims the old ones
    let versions = writer.versions().await.unwrap();
    assert!(versions.earliest_record_version > 3, "{versions:?}");

    let mut saw_trimmed = false;
    let mut snapshots = 0;
    let start = Instant::now();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), follower.next())
            .await
            .expect("an event")
            .expect("the follower goes on");
        match event {
            Err(e) => {
                saw_trimmed |= matches!(e, Error::Trimmed(_));
            }
            Ok(event) => {
                if matches!(event, FollowEvent::Snapshot { .. }) {
                    snapshots += 1;
                }
                event.apply_to(&mut copy);
            }
        }
        if snapshots > 0 && payloads(&copy) == server_records(&writer).await {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10));
    }
    assert!(saw_trimmed, "the follower reported TRIMMED");
    assert!(!copy.contains_key(&("t".to_string(), "a".to_string())));
    assert_eq!(copy.len(), 22);
    writer.delete([("t", "b")]).await.unwrap();
    converge(&mut follower, &mut copy, &writer, 10).await;
    assert_eq!(copy.len(), 21);
}

#[tokio::test]
async fn changes_held_by_the_snapshot_are_not_repeated() {
    use futures::StreamExt;
    let server = Server::redis();
    let cfg = follower_config("norepeat").batch_size(1);
    let writer = backend(&server, cfg.clone()).await;
    let reader = backend(&server, cfg).await;
    for i in 0..30 {
        writer
            .put(&mut [new_record("t", format!("r{i}"), "0")])
            .await
            .unwrap();
    }
    let mut follower = reader.follow(None);
    // Writes go on while the follower pages (one record per page).
    let w = writer.clone();
    let busy = tokio::spawn(async move {
        for round in 1..4 {
            for i in 0..30 {
                w.put(&mut [new_record("t", format!("r{i}"), round.to_string())])
                    .await
                    .unwrap();
            }
        }
    });
    let mut copy = Copy::new();
    let start = Instant::now();
    while !busy.is_finished() || payloads(&copy) != server_records(&writer).await {
        assert!(start.elapsed() < Duration::from_secs(15));
        let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(200), follower.next()).await
        else {
            continue;
        };
        let event = event.unwrap();
        if let FollowEvent::Change(r) = &event {
            let key = (r.r#type.clone(), r.id.clone());
            let held = copy.get(&key).map_or(0, |h| h.version);
            assert!(
                r.version > held,
                "change {} of {key:?} repeats {held}",
                r.version
            );
        }
        event.apply_to(&mut copy);
    }
    busy.await.unwrap();
}

/// Rolls the server back to its last `SAVE` (as an RDB restore would).
fn roll_back(server: &Server) {
    raw::<()>(server, &[b"DEBUG", b"RELOAD", b"NOSAVE"]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_after_a_rollback_that_reissued_versions() {
    use futures::StreamExt;
    let server = Server::redis();
    let cfg = follower_config("rollback");
    let writer = backend(&server, cfg.clone()).await;
    let reader = backend(&server, cfg).await;
    for i in 1..=5 {
        writer
            .put(&mut [new_record("t", format!("a{i}"), "saved")])
            .await
            .unwrap();
    }
    raw::<()>(&server, &[b"SAVE"]).unwrap();
    let mut follower = reader.follow(None);
    let mut copy = Copy::new();
    converge(&mut follower, &mut copy, &writer, 10).await;
    writer
        .put(&mut [
            new_record("t", "x6", "lost"),
            new_record("t", "x7", "lost"),
            new_record("t", "x8", "lost"),
        ])
        .await
        .unwrap();
    // Take the changes up to version 8 and stop there, with no DB.SYNC in
    // flight: the follower's cursor is (8, stamp of change 8).
    loop {
        let event = next_within(&mut follower, 5).await.unwrap().unwrap();
        let version = match &event {
            FollowEvent::Change(r) => r.version,
            FollowEvent::Snapshot { .. } => 0,
        };
        event.apply_to(&mut copy);
        if version == 8 {
            break;
        }
    }
    // The namespace goes back to version 5, then versions 6 to 9 are
    // issued again for other changes: only the stamp tells them apart.
    roll_back(&server);
    for id in ["y6", "y7", "y8", "y9"] {
        writer
            .put(&mut [new_record("t", id, "after")])
            .await
            .unwrap();
    }
    let mut reports = Vec::new();
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(10), "{reports:?}");
        match tokio::time::timeout(Duration::from_millis(300), follower.next()).await {
            Ok(Some(Ok(event))) => event.apply_to(&mut copy),
            Ok(Some(Err(e))) => reports.push(e),
            Ok(None) => panic!("ended"),
            Err(_) => {
                if payloads(&copy) == server_records(&writer).await {
                    break;
                }
            }
        }
    }
    assert!(
        reports
            .iter()
            .any(|e| matches!(e, Error::InvalidServerVersion(m) if m.contains("rolled back"))),
        "{reports:?}"
    );
    assert!(!copy.keys().any(|(_, id)| id.starts_with('x')));
    assert_eq!(copy.len(), 9);
}

#[tokio::test]
async fn sync_after_sync_latest_detects_a_rollback() {
    use futures::StreamExt;
    let server = Server::redis();
    let db = backend(&server, follower_config("rollsync")).await;
    for i in 1..=3 {
        db.put(&mut [new_record("t", format!("a{i}"), "saved")])
            .await
            .unwrap();
    }
    raw::<()>(&server, &[b"SAVE"]).unwrap();
    db.put(&mut [new_record("t", "x4", "lost")]).await.unwrap();
    // Both ways of starting the feed present the snapshot's stamp.
    let (sv, rv, mut pages) = db.sync_latest(None, None).await.unwrap();
    while pages.next().await.is_some() {}
    let (cursor, _) = db.snapshot(None, None).await.unwrap();
    assert_eq!((cursor.server_version, cursor.record_version), (sv, rv));
    assert_eq!(rv, 4);
    assert_ne!(cursor.stamp, 0, "the server gives stamps");
    roll_back(&server);
    db.put(&mut [new_record("t", "y4", "after")]).await.unwrap();
    db.put(&mut [new_record("t", "y5", "after")]).await.unwrap();
    for mut feed in [db.sync(None, sv, rv), db.sync_from(None, cursor)] {
        let err = next_within(&mut feed, 5).await.unwrap().unwrap_err();
        assert!(matches!(err, Error::InvalidServerVersion(_)), "{err:?}");
        assert!(next_within(&mut feed, 5).await.is_none());
    }
    // Without the stamp the version-5 change would look like a follow-up.
    let mut blind = db.sync_from(None, databroker_client::SyncCursor { stamp: 0, ..cursor });
    let r = next_within(&mut blind, 5).await.unwrap().unwrap();
    assert_eq!((r.version, r.id.as_str()), (5, "y5"));
}
