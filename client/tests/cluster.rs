//! A 3-master Redis Cluster on loopback ports: namespaces spread over the
//! masters, a namespace without a hash tag is refused, and put / get / sync
//! work through the cluster client.

mod common;

use std::collections::BTreeMap;

use common::*;
use databroker_client::{new_record, RecordExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster() {
    let cluster = tokio::task::block_in_place(|| Cluster::start(Flavor::Redis, 3));

    // One namespace per master: `{nsN}` hashes like `nsN`.
    let mut by_master: BTreeMap<usize, String> = BTreeMap::new();
    for i in 0..100 {
        let ns = format!("{{cluster-ns{i}}}");
        by_master.entry(cluster.owner_of(&ns)).or_insert(ns);
        if by_master.len() == 3 {
            break;
        }
    }
    assert_eq!(by_master.len(), 3, "namespaces on every master");

    for (master, ns) in &by_master {
        let db = Backend::connect_cluster(cluster.urls(), config("cluster").namespace(ns.as_str()))
            .await
            .unwrap();
        let sv = db
            .put(&mut [new_record("t", "a", ns.as_str())])
            .await
            .unwrap();
        assert_eq!(
            db.get("t", "a").await.unwrap().unwrap().payload(),
            ns.as_bytes()
        );
        // The namespace's keys live on the master that owns its slot.
        let key = format!("{ns}.records");
        let on_owner: i64 = raw(&cluster.nodes[*master], &[b"EXISTS", key.as_bytes()]).unwrap();
        assert_eq!(on_owner, 1, "{ns} lives on master {master}");
        for (other, node) in cluster
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| i != master)
        {
            let moved = raw::<i64>(node, &[b"EXISTS", key.as_bytes()]).unwrap_err();
            assert_eq!(
                moved.code(),
                Some("MOVED"),
                "master {other} does not own {ns}"
            );
        }

        // A mixed batch (MULTI/EXEC) and the feed through the cluster.
        let mut feed = db.sync(None, sv, 1);
        let writer = db.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let mut batch = vec![
                new_record("t", "b", "2"),
                databroker_client::tombstone("t", "a"),
            ];
            writer.put(&mut batch).await.unwrap();
        });
        let b = next_within(&mut feed, 10).await.unwrap().unwrap();
        let a = next_within(&mut feed, 10).await.unwrap().unwrap();
        assert_eq!(
            (b.version, b.id.as_str(), a.version, a.is_deleted()),
            (2, "b", 3, true)
        );
        let (sv2, rv, mut pages) = db.sync_latest(None, None).await.unwrap();
        assert_eq!((sv2, rv), (sv, 3));
        assert_eq!(next_within(&mut pages, 5).await.unwrap().unwrap().id, "b");
        assert!(next_within(&mut pages, 5).await.is_none());
        assert_eq!(db.types().await.unwrap(), ["t"]);
        db.close().await;
    }

    // A namespace without a hash tag would spread over slots: CROSSSLOT.
    let untagged =
        Backend::connect_cluster(cluster.urls(), config("cluster").namespace("pomerium_v3"))
            .await
            .unwrap();
    let err = untagged
        .put(&mut [new_record("t", "a", "x")])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("CROSSSLOT"), "{err:?}");
    assert!(matches!(err, Error::Redis(_)));
    let err = untagged.get("t", "a").await.unwrap_err();
    assert_eq!(err.code(), Some("CROSSSLOT"), "{err:?}");
}
