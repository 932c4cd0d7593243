//! Encryption against a live module: the server only sees ciphertext;
//! tampering, moving and wrong keys give `Decrypt`; rotation keeps old data
//! readable.

mod common;

use common::*;
use databroker_client::{new_record, Cipher, RecordExt};
use prost::Message;

const SECRET: &[u8] = b"attack at dawn";

/// The stored payload of `(t, id)`, read with a raw command.
fn stored_payload(server: &Server, ns: &str, t: &str, id: &str) -> Vec<u8> {
    let bytes: Vec<u8> = raw(
        server,
        &[
            b"DB.GET",
            ns.as_bytes(),
            t.as_bytes(),
            id.as_bytes(),
            b"FORMAT",
            b"PROTO",
        ],
    )
    .unwrap();
    let record = pb::Record::decode(bytes.as_slice()).unwrap();
    record.data.unwrap().value
}

/// Writes a raw payload with a raw command (as an attacker with server access could).
fn put_raw(server: &Server, ns: &str, t: &str, id: &str, payload: &[u8]) {
    raw::<redis::Value>(
        server,
        &[
            b"DB.PUT",
            ns.as_bytes(),
            t.as_bytes(),
            id.as_bytes(),
            payload,
        ],
    )
    .unwrap();
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn round_trip_and_server_sees_ciphertext() {
    let server = Server::redis();
    let key = Cipher::generate_key();
    let cfg = config("enc").cipher(Cipher::new(1, &key).unwrap());
    let ns = cfg.namespace.clone();
    let db = backend(&server, cfg).await;
    let sv = db.put(&mut [new_record("t", "a", SECRET)]).await.unwrap();

    assert_eq!(db.get("t", "a").await.unwrap().unwrap().payload(), SECRET);
    let stored = stored_payload(&server, &ns, "t", "a");
    assert!(
        !contains(&stored, SECRET),
        "the server holds ciphertext only"
    );
    assert_eq!(stored.len(), 1 + 4 + 12 + SECRET.len() + 16);
    // A second write of the same plaintext uses a fresh nonce.
    db.put(&mut [new_record("t", "a", SECRET)]).await.unwrap();
    assert_ne!(stored_payload(&server, &ns, "t", "a"), stored);

    // sync and sync_latest decrypt too.
    let mut feed = db.sync(None, sv, 0);
    let first = next_within(&mut feed, 5).await.unwrap().unwrap();
    assert_eq!(first.payload(), SECRET);
    let (_, _, mut pages) = db.sync_latest(None, None).await.unwrap();
    assert_eq!(
        next_within(&mut pages, 5).await.unwrap().unwrap().payload(),
        SECRET
    );
    // A deletion's tombstone carries the last (sealed) data and opens as well.
    db.delete([("t", "a")]).await.unwrap();
    let _second = next_within(&mut feed, 5).await.unwrap().unwrap();
    let tomb = next_within(&mut feed, 5).await.unwrap().unwrap();
    assert!(tomb.is_deleted());
    assert_eq!(tomb.payload(), SECRET);
}

#[tokio::test]
async fn tampering_moving_and_wrong_keys_fail() {
    let server = Server::redis();
    let key = Cipher::generate_key();
    let cfg = config("tamper").cipher(Cipher::new(1, &key).unwrap());
    let ns = cfg.namespace.clone();
    let db = backend(&server, cfg.clone()).await;
    db.put(&mut [new_record("t", "a", SECRET)]).await.unwrap();
    let sealed = stored_payload(&server, &ns, "t", "a");

    // One flipped bit in the ciphertext.
    let mut flipped = sealed.clone();
    let last = flipped.len() - 20;
    flipped[last] ^= 0x01;
    put_raw(&server, &ns, "t", "flipped", &flipped);
    let err = db.get("t", "flipped").await.unwrap_err();
    assert!(
        matches!(&err, Error::Decrypt { id, .. } if id == "flipped"),
        "{err:?}"
    );

    // The intact ciphertext copied to another id, and to another type.
    put_raw(&server, &ns, "t", "copy", &sealed);
    assert!(matches!(
        db.get("t", "copy").await,
        Err(Error::Decrypt { .. })
    ));
    put_raw(&server, &ns, "u", "a", &sealed);
    assert!(matches!(db.get("u", "a").await, Err(Error::Decrypt { .. })));

    // A client with another key under the same id, and one without that id.
    let wrong = backend(
        &server,
        cfg.clone()
            .cipher(Cipher::new(1, &Cipher::generate_key()).unwrap()),
    )
    .await;
    assert!(matches!(
        wrong.get("t", "a").await,
        Err(Error::Decrypt { .. })
    ));
    let other_id = backend(&server, cfg.clone().cipher(Cipher::new(9, &key).unwrap())).await;
    assert!(matches!(
        other_id.get("t", "a").await,
        Err(Error::Decrypt { .. })
    ));
    // Unsealed data is refused, not passed through.
    put_raw(&server, &ns, "t", "plain", SECRET);
    assert!(matches!(
        db.get("t", "plain").await,
        Err(Error::Decrypt { .. })
    ));

    // The original still opens; in a feed, a bad record is an error item and
    // the stream goes on.
    assert_eq!(db.get("t", "a").await.unwrap().unwrap().payload(), SECRET);
    let v = db.versions().await.unwrap();
    let mut feed = db.sync(None, v.server_version, 0);
    let mut items = Vec::new();
    for _ in 0..5 {
        items.push(next_within(&mut feed, 5).await.unwrap());
    }
    let ok: Vec<_> = items
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(ok, ["a"]);
    assert_eq!(
        items
            .iter()
            .filter(|r| matches!(r, Err(Error::Decrypt { .. })))
            .count(),
        4
    );
}

#[tokio::test]
async fn rotation_keeps_old_data_readable() {
    let server = Server::redis();
    let old_key = Cipher::generate_key();
    let new_key = Cipher::generate_key();
    let cfg = config("rotate");
    let ns = cfg.namespace.clone();
    let before = backend(
        &server,
        cfg.clone().cipher(Cipher::new(1, &old_key).unwrap()),
    )
    .await;
    before
        .put(&mut [new_record("t", "old", "sealed with key 1")])
        .await
        .unwrap();

    let rotated = Cipher::new(2, &new_key)
        .unwrap()
        .with_old_key(1, &old_key)
        .unwrap();
    let after = backend(&server, cfg.clone().cipher(rotated)).await;
    assert_eq!(
        after.get("t", "old").await.unwrap().unwrap().payload(),
        b"sealed with key 1"
    );
    after
        .put(&mut [new_record("t", "new", "sealed with key 2")])
        .await
        .unwrap();
    assert_eq!(
        after.get("t", "new").await.unwrap().unwrap().payload(),
        b"sealed with key 2"
    );
    // New writes use the new key id (bytes 1..5 of the envelope).
    assert_eq!(
        stored_payload(&server, &ns, "t", "new")[..5],
        [1, 0, 0, 0, 2]
    );
    assert_eq!(
        stored_payload(&server, &ns, "t", "old")[..5],
        [1, 0, 0, 0, 1]
    );
    // A client that only has the old key cannot read the new data.
    assert!(matches!(
        before.get("t", "new").await,
        Err(Error::Decrypt { .. })
    ));
}
