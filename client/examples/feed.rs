//! Puts records, reads one back, and keeps a copy of the namespace with a
//! follower (snapshot, then the change feed, healing itself).
//!
//! Start a server with the module (`make run`), then:
//!
//! ```text
//! cargo run -p databroker-client --example feed -- redis://127.0.0.1:6379
//! cargo run -p databroker-client --example feed -- redis://127.0.0.1:6379 --follow
//! ```
//!
//! Without `--follow` it exits after showing its own changes; with it, it
//! keeps printing every change to the namespace (try `redis-cli DB.PUT`).

use std::collections::BTreeMap;

use databroker_client::{new_record, Backend, Config, FollowEvent, RecordExt};
use futures::StreamExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_string());
    let follow = args.any(|a| a == "--follow");

    let db = Backend::connect(&url, Config::default()).await?;

    let mut records = vec![
        new_record("example/session", "alice", "signed in"),
        new_record("example/session", "bob", "signed in"),
    ];
    db.put(&mut records).await?;
    for r in &records {
        println!("put {}/{} -> version {}", r.r#type, r.id, r.version);
    }
    if let Some(r) = db.get("example/session", "alice").await? {
        println!(
            "get {}/{} = {:?}",
            r.r#type,
            r.id,
            String::from_utf8_lossy(r.payload())
        );
    }

    // A follower keeps a copy of the namespace: a snapshot, then every
    // change; after a restart of the server, a rollback or trimmed history
    // it takes a fresh snapshot by itself (Snapshot again: replace the copy).
    let mut copy = BTreeMap::new();
    let mut follower = db.follow(None);
    let mut changes = 0;
    while let Some(event) = follower.next().await {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                eprintln!("follower: {e} (it starts over by itself)");
                continue;
            }
        };
        match &event {
            FollowEvent::Snapshot { cursor, records } => {
                println!(
                    "snapshot of {}: {} records up to version {}",
                    db.namespace(),
                    records.len(),
                    cursor.record_version
                );
                if changes == 0 {
                    // Two changes for the feed to show.
                    db.delete([("example/session", "bob")]).await?;
                    db.put(&mut [new_record("example/session", "carol", "signed in")])
                        .await?;
                }
            }
            FollowEvent::Change(change) => {
                let what = if change.is_deleted() {
                    "deleted"
                } else {
                    "put"
                };
                println!(
                    "feed: version {} {what} {}/{} {:?}",
                    change.version,
                    change.r#type,
                    change.id,
                    String::from_utf8_lossy(change.payload())
                );
                changes += 1;
            }
        }
        event.apply_to(&mut copy);
        if !follow && changes == 2 {
            break;
        }
    }
    println!("the copy holds {} records", copy.len());
    db.close().await;
    Ok(())
}
