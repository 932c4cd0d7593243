//! Cluster behaviour of the module itself: a `DB.SYNC` client waiting on a
//! namespace whose slot moves to another master is redirected with `MOVED`.

mod common;

use std::time::Duration;

use common::*;
use databroker_testkit::Cluster;
use redis::Value;

fn node_id(c: &mut redis::Connection) -> String {
    t(c, &["CLUSTER", "MYID"]).unwrap()
}

fn waiting_sync_redirected_when_slot_moves(flavor: Flavor) {
    let cluster = Cluster::start(flavor, 3);
    let ns = "{moving}";
    let slot = cluster.keyslot(ns);
    let from = cluster.owner(slot);
    let to = (from + 1) % cluster.nodes.len();
    let (src, dst) = (&cluster.nodes[from], &cluster.nodes[to]);
    let mut a = src.conn();
    let mut b = dst.conn();
    let r = ok(&mut a, &["DB.PUT", ns, "t", "x", "1"]);
    let sv = int(&arr(&r)[0]).to_string();

    let mut follower = src.conn();
    let cmd = redis::cmd("DB.SYNC")
        .arg(ns)
        .arg(&sv)
        .arg("1")
        .arg("BLOCK")
        .arg("0")
        .get_packed_command();
    follower.send_packed_command(&cmd).unwrap();
    std::thread::sleep(Duration::from_millis(100));

    // Move the slot with its keys: IMPORTING/MIGRATING, MIGRATE, then NODE on both.
    let (src_id, dst_id) = (node_id(&mut a), node_id(&mut b));
    let slot = slot.to_string();
    ok(&mut b, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &src_id]);
    ok(&mut a, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &dst_id]);
    let keys: Vec<String> = t(&mut a, &["CLUSTER", "GETKEYSINSLOT", &slot, "100"]).unwrap();
    assert!(keys.len() >= 4, "{keys:?}");
    let mut migrate = vec![
        "MIGRATE".to_string(),
        "127.0.0.1".into(),
        dst.port.to_string(),
        "".into(),
        "0".into(),
        "5000".into(),
        "KEYS".into(),
    ];
    migrate.extend(keys);
    let m: Vec<&str> = migrate.iter().map(String::as_str).collect();
    ok(&mut a, &m);
    ok(&mut b, &["CLUSTER", "SETSLOT", &slot, "NODE", &dst_id]);
    ok(&mut a, &["CLUSTER", "SETSLOT", &slot, "NODE", &dst_id]);

    follower
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let got = follower.recv_response();
    let moved = match &got {
        Err(e) => e.code() == Some("MOVED") || e.to_string().contains("MOVED"),
        Ok(Value::ServerError(e)) => e.code() == "MOVED",
        Ok(_) => false,
    };
    assert!(moved, "the waiting client should get MOVED: {got:?}");
    // The namespace works on its new master.
    let v = ok(&mut b, &["DB.VERSIONS", ns]);
    assert_eq!(int(&arr(&v)[2]), 1);
    ok(&mut b, &["DB.PUT", ns, "t", "y", "2"]);
}

on_both!(waiting_sync_redirected_when_slot_moves);
