//! Puts records, reads one back, and follows the change feed.
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

use databroker_client::{new_record, Backend, Config, RecordExt};
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
    let server_version = db.put(&mut records).await?;
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

    // Read every current record, then follow the feed from that point.
    let (_, record_version, mut current) = db.sync_latest(None, None).await?;
    let mut existing = 0;
    while let Some(record) = current.next().await {
        record?;
        existing += 1;
    }
    println!(
        "namespace {}: {existing} records up to version {record_version}",
        db.namespace()
    );
    let mut feed = db.sync(None, server_version, record_version);

    db.delete([("example/session", "bob")]).await?;
    db.put(&mut [new_record("example/session", "carol", "signed in")])
        .await?;

    let mut shown = 0;
    while let Some(change) = feed.next().await {
        let change = change?;
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
        shown += 1;
        if !follow && shown == 2 {
            break;
        }
    }
    db.close().await;
    Ok(())
}
