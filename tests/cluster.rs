//! Cluster behaviour of the module itself when a namespace's slot moves to
//! another master: waiting `DB.SYNC` clients get `MOVED`, and the namespace
//! is served where its data is throughout the migration.

mod common;

use std::time::Duration;

use common::*;
use databroker_testkit::Cluster;
use redis::{Connection, Value};

/// One namespace's slot moving from one master (`a`) to another (`b`).
struct Move {
    slot: String,
    a: Connection,
    b: Connection,
    a_id: String,
    b_id: String,
    b_port: String,
}

impl Move {
    fn new(cluster: &Cluster, ns: &str) -> Move {
        let slot = cluster.keyslot(ns);
        let from = cluster.owner(slot);
        let (src, dst) = (
            &cluster.nodes[from],
            &cluster.nodes[(from + 1) % cluster.nodes.len()],
        );
        let (mut a, mut b) = (src.conn(), dst.conn());
        let a_id: String = t(&mut a, &["CLUSTER", "MYID"]).unwrap();
        let b_id: String = t(&mut b, &["CLUSTER", "MYID"]).unwrap();
        Move {
            slot: slot.to_string(),
            a,
            b,
            a_id,
            b_id,
            b_port: dst.port.to_string(),
        }
    }

    /// Marks the slot IMPORTING on `b` and MIGRATING on `a`.
    fn begin(&mut self) {
        ok(
            &mut self.b,
            &["CLUSTER", "SETSLOT", &self.slot, "IMPORTING", &self.a_id],
        );
        ok(
            &mut self.a,
            &["CLUSTER", "SETSLOT", &self.slot, "MIGRATING", &self.b_id],
        );
    }

    /// Moves every key of the slot in one MIGRATE.
    fn migrate_keys(&mut self) {
        let keys: Vec<String> = t(
            &mut self.a,
            &["CLUSTER", "GETKEYSINSLOT", &self.slot, "100"],
        )
        .unwrap();
        assert!(keys.len() >= 4, "{keys:?}");
        let mut args = vec![
            "MIGRATE",
            "127.0.0.1",
            &self.b_port,
            "",
            "0",
            "5000",
            "KEYS",
        ];
        args.extend(keys.iter().map(String::as_str));
        ok(&mut self.a, &args);
    }

    /// Assigns the slot to `b` on both masters.
    fn finish(&mut self) {
        ok(
            &mut self.b,
            &["CLUSTER", "SETSLOT", &self.slot, "NODE", &self.b_id],
        );
        ok(
            &mut self.a,
            &["CLUSTER", "SETSLOT", &self.slot, "NODE", &self.b_id],
        );
    }
}

fn waiting_sync_redirected_when_slot_moves(flavor: Flavor) {
    let cluster = Cluster::start(flavor, 3);
    let ns = "{moving}";
    let mut m = Move::new(&cluster, ns);
    let r = ok(&mut m.a, &["DB.PUT", ns, "t", "x", "1"]);
    let sv = int(&arr(&r)[0]).to_string();
    let mut follower = cluster.nodes[cluster.owner(cluster.keyslot(ns))].conn();
    let cmd = redis::cmd("DB.SYNC")
        .arg(ns)
        .arg(&sv)
        .arg("1")
        .arg("BLOCK")
        .arg("0")
        .get_packed_command();
    follower.send_packed_command(&cmd).unwrap();
    std::thread::sleep(Duration::from_millis(100));

    m.begin();
    m.migrate_keys();
    m.finish();

    follower
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let got = follower.recv_response();
    let moved = match &got {
        Err(e) => e.code() == Some("MOVED") || e.to_string().to_uppercase().starts_with("MOVED"),
        Ok(Value::ServerError(e)) => e.code() == "MOVED",
        Ok(_) => false,
    };
    assert!(moved, "the waiting client should get MOVED: {got:?}");
    // The namespace works on its new master.
    let v = ok(&mut m.b, &["DB.VERSIONS", ns]);
    assert_eq!(int(&arr(&v)[2]), 1);
    ok(&mut m.b, &["DB.PUT", ns, "t", "y", "2"]);
}

/// While a namespace's slot migrates, commands keep running on the source
/// (the marker key `<ns>` is still there) until all of the namespace's keys
/// move in one MIGRATE; then they are sent to the target with ASK and
/// continue the same namespace there (no second server_version).
fn namespace_survives_a_slot_migration(flavor: Flavor) {
    let cluster = Cluster::start(flavor, 3);
    let ns = "{migrating}";
    let mut m = Move::new(&cluster, ns);
    let r = ok(&mut m.a, &["DB.PUT", ns, "t", "x", "1"]);
    let sv = int(&arr(&r)[0]);
    ok(&mut m.a, &["DB.LEASE", ns, "leader", "me", "60000"]);
    assert_eq!(
        t::<String>(&mut m.a, &["TYPE", ns]).unwrap(),
        "string",
        "marker key"
    );

    m.begin();
    // Still served by the source while its keys are there.
    let r = ok(&mut m.a, &["DB.PUT", ns, "t", "y", "2"]);
    assert_eq!(int(&arr(&r)[0]), sv);
    assert_eq!(arr(&arr(&r)[2]).iter().map(int).collect::<Vec<_>>(), [2]);

    m.migrate_keys();
    // Now the source redirects; the target serves the same namespace.
    let e = t::<Value>(&mut m.a, &["DB.PUT", ns, "t", "z", "3"]).unwrap_err();
    assert!(e.to_string().to_uppercase().starts_with("ASK"), "{e}");
    let r: Vec<Value> = redis::pipe()
        .cmd("ASKING")
        .cmd("DB.PUT")
        .arg(ns)
        .arg("t")
        .arg("z")
        .arg("3")
        .query(&mut m.b)
        .unwrap();
    assert_eq!(
        int(&arr(&r[1])[0]),
        sv,
        "the same namespace continues on the target"
    );
    assert_eq!(arr(&arr(&r[1])[2]).iter().map(int).collect::<Vec<_>>(), [3]);
    m.finish();
    let v = ok(&mut m.b, &["DB.VERSIONS", ns]);
    assert_eq!(arr(&v).iter().map(int).collect::<Vec<_>>(), [sv, 1, 3]);
    assert_eq!(
        ok(&mut m.b, &["DB.LEASE", ns, "leader", "you", "1000"]),
        Value::Int(0),
        "the lease moved too"
    );
}

on_both!(
    waiting_sync_redirected_when_slot_moves,
    namespace_survives_a_slot_migration
);
