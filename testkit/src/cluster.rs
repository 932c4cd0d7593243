//! A Redis Cluster of master-only nodes on loopback ports, each with the
//! module loaded, created with `redis-cli --cluster create`.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::{Flavor, Options, Server};

/// A running cluster; its nodes are killed on drop.
pub struct Cluster {
    /// The nodes, each a master owning a share of the slots.
    pub nodes: Vec<Server>,
}

/// The `redis-cli` binary: `$REDIS_CLI`, else `redis-cli` on the PATH.
pub fn redis_cli() -> String {
    std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".to_string())
}

impl Cluster {
    /// Starts `masters` nodes of `flavor` (at least 3) with the module, joins
    /// them into a cluster without replicas, and waits until every node
    /// reports `cluster_state:ok`.
    pub fn start(flavor: Flavor, masters: usize) -> Cluster {
        Self::start_with(Options::flavor(flavor), masters)
    }

    /// As [`Cluster::start`], with `options` for every node (cluster
    /// arguments are added).
    pub fn start_with(options: Options, masters: usize) -> Cluster {
        assert!(
            masters >= 3,
            "redis-cli --cluster create needs at least 3 masters"
        );
        let nodes: Vec<Server> = (0..masters)
            .map(|_| {
                Server::start(options.clone().arg([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                ]))
            })
            .collect();
        let mut create = Command::new(redis_cli());
        create.arg("--cluster").arg("create");
        for n in &nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        create.args(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = create
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", redis_cli()));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Cluster { nodes };
        cluster.wait_ok(Duration::from_secs(30));
        cluster
    }

    fn wait_ok(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let ready = self.nodes.iter().all(|n| {
                let mut c = n.conn();
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut c)
                    .unwrap_or_default();
                let slots: Vec<redis::Value> = redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query(&mut c)
                    .unwrap_or_default();
                info.contains("cluster_state:ok") && slots.len() >= self.nodes.len()
            });
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cluster did not reach cluster_state:ok"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `redis://127.0.0.1:<port>` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Server::url).collect()
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`).
    pub fn keyslot(&self, key: &str) -> u16 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.nodes[0].conn())
            .expect("CLUSTER KEYSLOT")
    }

    /// The index in [`Cluster::nodes`] of the master that owns `slot`.
    pub fn owner(&self, slot: u16) -> usize {
        let ranges: Vec<(u16, u16, u16)> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query::<Vec<redis::Value>>(&mut self.nodes[0].conn())
            .expect("CLUSTER SLOTS")
            .into_iter()
            .filter_map(|r| match r {
                redis::Value::Array(items) if items.len() >= 3 => {
                    let int = |v: &redis::Value| match v {
                        redis::Value::Int(i) => Some(*i),
                        _ => None,
                    };
                    let (start, end) = (int(&items[0])?, int(&items[1])?);
                    let port = match &items[2] {
                        redis::Value::Array(m) if m.len() >= 2 => int(&m[1])?,
                        _ => return None,
                    };
                    Some((start as u16, end as u16, port as u16))
                }
                _ => None,
            })
            .collect();
        let port = ranges
            .iter()
            .find(|(s, e, _)| (*s..=*e).contains(&slot))
            .map(|(_, _, p)| *p)
            .unwrap_or_else(|| panic!("no node owns slot {slot}"));
        self.nodes
            .iter()
            .position(|n| n.port == port)
            .unwrap_or_else(|| panic!("slot {slot} is owned by unknown port {port}"))
    }

    /// The index of the master that owns the key `key`.
    pub fn owner_of(&self, key: &str) -> usize {
        self.owner(self.keyslot(key))
    }
}
