//! Every `Backend` method against a live module, on Redis and on Valkey.

mod common;

use std::time::Duration;

use common::*;
use databroker_client::{message_record, new_record, tombstone, RecordExt};
use prost_types::Timestamp;

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[tokio::test]
            async fn redis() { super::$name(super::Flavor::Redis).await }
            #[tokio::test]
            async fn valkey() { super::$name(super::Flavor::Valkey).await }
        })*
    };
}

on_both!(
    put_get_delete,
    mixed_batch,
    options_and_capacity,
    leases,
    versions_and_types,
    messages,
    close_ends_everything
);

async fn put_get_delete(flavor: Flavor) {
    let server = Server::start(Options::flavor(flavor));
    let db = backend(&server, config("pgd")).await;
    assert_eq!(db.get("t", "a").await.unwrap(), None);

    let mut records = vec![
        new_record("t", "a", "one"),
        new_record("t", "b", "two"),
        new_record("u", "c", "three"),
    ];
    let sv = db.put(&mut records).await.unwrap();
    assert_ne!(sv, 0);
    let versions: Vec<u64> = records.iter().map(|r| r.version).collect();
    assert_eq!(versions, [1, 2, 3]);
    let at = records[0].modified_at.expect("modified_at is filled");
    assert!(
        at.seconds > 1_600_000_000,
        "modified_at is a real time: {at:?}"
    );
    assert!(records
        .iter()
        .all(|r| r.modified_at == Some(at) && r.deleted_at.is_none()));

    let got = db.get("t", "b").await.unwrap().expect("b exists");
    assert_eq!(got, records[1], "get returns exactly what put stored");
    assert_eq!(got.payload(), b"two");
    assert_eq!(got.data.as_ref().map(|d| d.type_url.as_str()), Some("t"));

    // Overwrite: a new version, same server version.
    let mut again = vec![new_record("t", "a", "uno")];
    assert_eq!(db.put(&mut again).await.unwrap(), sv);
    assert_eq!(again[0].version, 4);
    assert_eq!(db.get("t", "a").await.unwrap().unwrap().payload(), b"uno");

    let deleted = db.delete([("t", "a"), ("t", "missing")]).await.unwrap();
    assert_eq!(deleted.server_version, sv);
    assert_eq!(deleted.versions, [5, 6]);
    assert!(deleted.modified_at.seconds >= at.seconds);
    assert_eq!(db.get("t", "a").await.unwrap(), None);
    assert!(db.get("t", "b").await.unwrap().is_some());

    // An empty put only reports the server version.
    assert_eq!(db.put(&mut []).await.unwrap(), sv);
    // Arguments the module would refuse are refused before sending.
    for bad in [
        new_record("", "x", "p"),
        new_record("t", "", "p"),
        new_record("t", "x".repeat(1025), "p"),
    ] {
        assert!(matches!(
            db.put(&mut [bad]).await,
            Err(Error::InvalidArgument(_))
        ));
    }
    let mut wrong_url = new_record("t", "x", "p");
    wrong_url.data.as_mut().unwrap().type_url = "type.googleapis.com/other".into();
    assert!(matches!(
        db.put(&mut [wrong_url]).await,
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(
        db.versions().await.unwrap().latest_record_version,
        6,
        "refused writes sent nothing"
    );
}

async fn mixed_batch(flavor: Flavor) {
    let server = Server::start(Options::flavor(flavor));
    let db = backend(&server, config("mixed")).await;
    let mut batch = vec![
        new_record("t", "a", "1"),
        new_record("t", "b", "2"),
        tombstone("t", "a"),
        new_record("t", "c", "3"),
        tombstone("t", "b"),
    ];
    db.put(&mut batch).await.unwrap();
    assert_eq!(
        batch.iter().map(|r| r.version).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(batch[2].deleted_at.is_some() && batch[2].deleted_at == batch[2].modified_at);
    assert!(batch[4].is_deleted() && !batch[3].is_deleted());
    assert_eq!(db.get("t", "a").await.unwrap(), None);
    assert_eq!(db.get("t", "b").await.unwrap(), None);
    assert_eq!(db.get("t", "c").await.unwrap().unwrap().version, 4);

    // The feed holds the changes in argument order, tombstones included.
    let (sv, _, _) = db.sync_latest(None, None).await.unwrap();
    let mut feed = db.sync(None, sv, 0);
    let mut seen = Vec::new();
    for _ in 0..5 {
        let r = next_within(&mut feed, 5).await.unwrap().unwrap();
        seen.push((r.version, r.id.clone(), r.is_deleted()));
    }
    assert_eq!(
        seen,
        [
            (1, "a".into(), false),
            (2, "b".into(), false),
            (3, "a".into(), true),
            (4, "c".into(), false),
            (5, "b".into(), true)
        ]
    );

    // A type containing '/' makes `<type>/<id>` ambiguous: CONFLICT.
    db.put(&mut [new_record("x/y", "z", "p")]).await.unwrap();
    let err = db
        .put(&mut [new_record("x", "y/z", "q")])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(err.code(), Some("CONFLICT"));
    // Inside a mixed batch, too.
    let err = db
        .put(&mut [tombstone("t", "c"), new_record("x", "y/z", "q")])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
}

async fn options_and_capacity(flavor: Flavor) {
    let server = Server::start(Options::flavor(flavor));
    let db = backend(&server, config("opts")).await;
    assert_eq!(db.get_options("t").await.unwrap(), pb::Options::default());
    db.set_options("t", &pb::Options { capacity: Some(2) })
        .await
        .unwrap();
    assert_eq!(db.get_options("t").await.unwrap().capacity, Some(2));
    for id in ["a", "b", "c"] {
        db.put(&mut [new_record("t", id, id)]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(
        db.get("t", "a").await.unwrap(),
        None,
        "the oldest record was evicted"
    );
    assert!(db.get("t", "b").await.unwrap().is_some());
    assert!(db.get("t", "c").await.unwrap().is_some());
    db.set_options("t", &pb::Options::default()).await.unwrap();
    assert_eq!(db.get_options("t").await.unwrap(), pb::Options::default());
    assert!(matches!(
        db.set_options("", &pb::Options::default()).await,
        Err(Error::InvalidArgument(_))
    ));
}

async fn leases(flavor: Flavor) {
    let server = Server::start(Options::flavor(flavor));
    let db = backend(&server, config("lease")).await;
    let ttl = Duration::from_secs(30);
    assert!(db.lease("l", "one", ttl).await.unwrap());
    assert!(
        !db.lease("l", "two", ttl).await.unwrap(),
        "held by another id"
    );
    assert!(
        db.lease("l", "one", ttl).await.unwrap(),
        "renewed by its holder"
    );
    assert!(!db.release("l", "two").await.unwrap());
    assert!(db.release("l", "one").await.unwrap());
    assert!(!db.release("l", "one").await.unwrap());
    assert!(db
        .lease("l", "two", Duration::from_millis(150))
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        db.lease("l", "one", ttl).await.unwrap(),
        "an expired lease is free"
    );
    assert!(
        !db.lease("l", "one", Duration::ZERO).await.unwrap(),
        "a zero ttl gives it up"
    );
    assert!(db.lease("l", "two", ttl).await.unwrap());
}

async fn versions_and_types(flavor: Flavor) {
    let server = Server::start(Options::flavor(flavor));
    let db = backend(&server, config("vt")).await;
    let v = db.versions().await.unwrap();
    assert_eq!((v.server_version, v.latest_record_version), (0, 0));
    assert!(db.types().await.unwrap().is_empty());
    let mut rs = vec![
        new_record("zeta", "1", "p"),
        new_record("alpha", "1", "p"),
        new_record("mid", "1", "p"),
    ];
    let sv = db.put(&mut rs).await.unwrap();
    db.delete([("mid", "1")]).await.unwrap();
    let v = db.versions().await.unwrap();
    assert_eq!(v.server_version, sv);
    assert_eq!(v.latest_record_version, 4);
    assert!(v.earliest_record_version <= 1);
    assert_eq!(db.types().await.unwrap(), ["alpha", "mid", "zeta"]);
}

async fn messages(flavor: Flavor) {
    let server = Server::start(Options::flavor(flavor));
    let db = backend(&server, config("msg")).await;
    let ts = Timestamp {
        seconds: 1234,
        nanos: 5678,
    };
    let mut rs = vec![message_record("when", &ts)];
    db.put(&mut rs).await.unwrap();
    assert_eq!(
        rs[0].r#type,
        "type.googleapis.com/google.protobuf.Timestamp"
    );
    assert_eq!(db.get_message::<Timestamp>("when").await.unwrap(), Some(ts));
    assert_eq!(db.get_message::<Timestamp>("other").await.unwrap(), None);
    let got = db.get(&rs[0].r#type, "when").await.unwrap().unwrap();
    assert_eq!(got.message::<Timestamp>().unwrap(), ts);
}

async fn close_ends_everything(flavor: Flavor) {
    let server = Server::start(Options::flavor(flavor));
    let db = backend(&server, config("close")).await;
    let clone = db.clone();
    let mut feed = db.sync(None, 0, 0);
    db.close().await;
    assert!(matches!(clone.get("t", "a").await, Err(Error::Closed)));
    assert!(matches!(db.versions().await, Err(Error::Closed)));
    assert!(
        next_within(&mut feed, 5).await.is_none(),
        "sync streams end on close"
    );
}

#[tokio::test]
async fn unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("redis.sock");
    let sock_s = sock.to_str().unwrap().to_string();
    let server = Server::start(Options::default().arg([
        "--unixsocket",
        sock_s.as_str(),
        "--unixsocketperm",
        "700",
    ]));
    for url in [format!("unix://{sock_s}"), format!("redis+unix://{sock_s}")] {
        let db = Backend::connect(&url, config("unix")).await.unwrap();
        let mut rs = vec![new_record("t", "a", "over a socket")];
        db.put(&mut rs).await.unwrap();
        assert_eq!(
            db.get("t", "a").await.unwrap().unwrap().payload(),
            b"over a socket"
        );
    }
    drop(server);
}

#[tokio::test]
async fn server_errors_are_typed() {
    let server = Server::redis();
    let cfg = config("errs");
    let ns = cfg.namespace.clone();
    let db = backend(&server, cfg).await;
    // A key of the namespace with the wrong type: WRONGTYPE, passed through.
    raw::<()>(&server, &[b"SET", format!("{ns}.records").as_bytes(), b"x"]).unwrap();
    let err = db.get("t", "a").await.unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"), "{err:?}");
    assert!(matches!(err, Error::Redis(_)));
    // Bad URL and bad namespace are configuration errors.
    assert!(matches!(
        Backend::connect("nope://x", Config::default()).await,
        Err(Error::Config(_))
    ));
    assert!(matches!(
        Backend::connect(&server.url(), Config::default().namespace("")).await,
        Err(Error::Config(_))
    ));
}
