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

/// While a namespace's slot migrates, commands keep running on the source
/// (the marker key `<ns>` is still there) until all of the namespace's keys
/// move in one MIGRATE; then they are sent to the target with ASK and
/// continue the same namespace there (no second server_version).
fn namespace_survives_a_slot_migration(flavor: Flavor) {
    let cluster = Cluster::start(flavor, 3);
    let ns = "{migrating}";
    let slot = cluster.keyslot(ns);
    let from = cluster.owner(slot);
    let to = (from + 1) % cluster.nodes.len();
    let (src, dst) = (&cluster.nodes[from], &cluster.nodes[to]);
    let mut a = src.conn();
    let mut b = dst.conn();
    let r = ok(&mut a, &["DB.PUT", ns, "t", "x", "1"]);
    let sv = int(&arr(&r)[0]);
    ok(&mut a, &["DB.LEASE", ns, "leader", "me", "60000"]);
    assert_eq!(
        t::<String>(&mut a, &["TYPE", ns]).unwrap(),
        "string",
        "marker key"
    );

    let (src_id, dst_id) = (node_id(&mut a), node_id(&mut b));
    let slot_s = slot.to_string();
    ok(
        &mut b,
        &["CLUSTER", "SETSLOT", &slot_s, "IMPORTING", &src_id],
    );
    ok(
        &mut a,
        &["CLUSTER", "SETSLOT", &slot_s, "MIGRATING", &dst_id],
    );
    // Still served by the source while its keys are there.
    let r = ok(&mut a, &["DB.PUT", ns, "t", "y", "2"]);
    assert_eq!(int(&arr(&r)[0]), sv);
    assert_eq!(arr(&arr(&r)[2]).iter().map(int).collect::<Vec<_>>(), [2]);

    let keys: Vec<String> = t(&mut a, &["CLUSTER", "GETKEYSINSLOT", &slot_s, "100"]).unwrap();
    let mut migrate = vec!["MIGRATE", "127.0.0.1"];
    let port = dst.port.to_string();
    migrate.extend([port.as_str(), "", "0", "5000", "KEYS"]);
    migrate.extend(keys.iter().map(String::as_str));
    ok(&mut a, &migrate);
    // Now the source redirects; the target serves the same namespace.
    let e = t::<Value>(&mut a, &["DB.PUT", ns, "t", "z", "3"]).unwrap_err();
    assert!(e.to_string().to_uppercase().starts_with("ASK"), "{e}");
    let r: Vec<Value> = redis::pipe()
        .cmd("ASKING")
        .cmd("DB.PUT")
        .arg(ns)
        .arg("t")
        .arg("z")
        .arg("3")
        .query(&mut b)
        .unwrap();
    assert_eq!(
        int(&arr(&r[1])[0]),
        sv,
        "the same namespace continues on the target"
    );
    assert_eq!(arr(&arr(&r[1])[2]).iter().map(int).collect::<Vec<_>>(), [3]);
    ok(&mut b, &["CLUSTER", "SETSLOT", &slot_s, "NODE", &dst_id]);
    ok(&mut a, &["CLUSTER", "SETSLOT", &slot_s, "NODE", &dst_id]);
    let v = ok(&mut b, &["DB.VERSIONS", ns]);
    assert_eq!(arr(&v).iter().map(int).collect::<Vec<_>>(), [sv, 1, 3]);
    assert_eq!(
        ok(&mut b, &["DB.LEASE", ns, "leader", "you", "1000"]),
        Value::Int(0),
        "the lease moved too"
    );
}

on_both!(namespace_survives_a_slot_migration);
