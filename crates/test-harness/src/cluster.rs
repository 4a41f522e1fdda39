//! Real clusters on loopback: a NATS cluster with JetStream (servers joined
//! by routes) and a Redis Cluster (primaries with one replica each), for
//! tests of what the services do when one node is lost.

use std::net::SocketAddr;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{STARTUP_TIMEOUT, free_port, redis_ping, require_binary, spawn, stop};

/// `n` `nats-server`s with JetStream, clustered by routes.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<NatsNode>,
    _dir: TempDir,
}

#[derive(Debug)]
struct NatsNode {
    child: Option<Child>,
    port: u16,
}

impl NatsCluster {
    /// Starts `n` servers and waits until each accepts clients. JetStream's
    /// meta leader may still be being elected: clients retry set-up. Ports
    /// are picked free and may be taken by another test before the servers
    /// bind them: then the whole cluster is started again on new ones.
    pub fn start(n: usize) -> Self {
        for _ in 0..5 {
            match Self::try_start(n) {
                Ok(cluster) => return cluster,
                Err(log) if log.contains("address already in use") => continue,
                Err(log) => panic!("nats-server (cluster) exited during start-up; its log:\n{log}"),
            }
        }
        panic!("no free ports for a NATS cluster after 5 tries");
    }

    fn try_start(n: usize) -> Result<Self, String> {
        let binary = require_binary("nats-server", "nats-server");
        let dir = TempDir::with_prefix("inspector-nats-cluster-").expect("temp dir");
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let mut cluster = NatsCluster {
            nodes: Vec::new(),
            _dir: dir,
        };
        for (i, (port, cluster_port)) in ports.iter().enumerate() {
            let routes: Vec<String> = ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (_, c))| format!("nats://127.0.0.1:{c}"))
                .collect();
            let dir = cluster._dir.path();
            let log = dir.join(format!("n{i}.log"));
            let args: Vec<String> = vec![
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
                "-js".into(),
                "-sd".into(),
                dir.join(format!("n{i}")).display().to_string(),
                "--server_name".into(),
                format!("n{i}"),
                "--cluster_name".into(),
                "inspector".into(),
                "--cluster".into(),
                format!("nats://127.0.0.1:{cluster_port}"),
                "--routes".into(),
                routes.join(","),
                "-l".into(),
                log.display().to_string(),
            ];
            let mut child = spawn(&binary, &args, &dir.join(format!("n{i}.out")));
            let deadline = Instant::now() + STARTUP_TIMEOUT;
            loop {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains("Server is ready") {
                    break;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    // Dropping the cluster stops the nodes already started.
                    return Err(text);
                }
                assert!(
                    Instant::now() < deadline,
                    "nats-server {i} not ready:\n{text}"
                );
                std::thread::sleep(Duration::from_millis(25));
            }
            cluster.nodes.push(NatsNode {
                child: Some(child),
                port: *port,
            });
        }
        Ok(cluster)
    }

    /// Every server's URL, comma-separated (as `nats.url` takes them).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("nats://127.0.0.1:{}", node.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kills server `i`.
    pub fn kill(&mut self, i: usize) {
        stop(&mut self.nodes[i].child);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            stop(&mut node.child);
        }
    }
}

/// A Redis Cluster of `primaries` primaries with one replica each, made
/// with `redis-cli --cluster create`.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<(Option<Child>, u16)>,
    _dir: TempDir,
}

impl RedisCluster {
    pub fn start(primaries: usize) -> Self {
        let server = require_binary("redis-server", "redis-server");
        let cli = require_binary("redis-cli", "redis-tools");
        let dir = TempDir::with_prefix("inspector-redis-cluster-").expect("temp dir");
        let mut nodes = Vec::new();
        let mut attempts = 0;
        while nodes.len() < primaries * 2 {
            let i = nodes.len();
            let port = free_port();
            let node_dir = dir.path().join(format!("r{i}"));
            std::fs::create_dir_all(&node_dir).expect("node dir");
            let args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                // A lost primary is replaced by its replica after this long.
                "--cluster-node-timeout",
                "1000",
                // Fail over however long the replica lost sight of its
                // primary (a test kills the primary at once).
                "--cluster-replica-validity-factor",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &node_dir.display().to_string(),
                "--logfile",
                &node_dir.join("redis.log").display().to_string(),
            ]
            .map(String::from)
            .to_vec();
            let mut child = spawn(&server, &args, &node_dir.join("redis.out"));
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let deadline = Instant::now() + STARTUP_TIMEOUT;
            let mut exited = false;
            while !redis_ping(addr) {
                if let Ok(Some(_)) = child.try_wait() {
                    exited = true; // the port was taken meanwhile
                    break;
                }
                assert!(Instant::now() < deadline, "redis-server {i} not ready");
                std::thread::sleep(Duration::from_millis(20));
            }
            if exited || matches!(child.try_wait(), Ok(Some(_))) {
                assert!(attempts < 10, "no free port for redis-server {i}");
                attempts += 1;
                continue;
            }
            nodes.push((Some(child), port));
        }
        let mut create = Command::new(&cli);
        create.args(["--cluster", "create"]);
        for (_, port) in &nodes {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let output = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let cluster = RedisCluster { nodes, _dir: dir };
        cluster.wait_until_ok();
        cluster
    }

    /// Seed URLs of every node (`redis.cluster` takes them).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|(_, port)| format!("redis://127.0.0.1:{port}"))
            .collect()
    }

    /// The ports of the nodes that are primaries now, by `CLUSTER NODES`.
    pub fn primaries(&self) -> Vec<u16> {
        let (_, port) = self
            .nodes
            .iter()
            .find(|(child, _)| child.is_some())
            .expect("a live node");
        let text = self.cli(*port, &["cluster", "nodes"]);
        text.lines()
            .filter(|line| line.contains("master") && !line.contains("fail"))
            .filter_map(|line| {
                let addr = line.split_whitespace().nth(1)?;
                addr.split(['@', ':']).nth(1)?.parse().ok()
            })
            .collect()
    }

    /// Kills the node on `port`.
    pub fn kill(&mut self, port: u16) {
        if let Some((child, _)) = self.nodes.iter_mut().find(|(_, p)| *p == port) {
            stop(child);
        }
    }

    /// Waits until every live node reports `cluster_state:ok`.
    pub fn wait_until_ok(&self) {
        self.wait_for("cluster_state:ok", |port| {
            self.cli(port, &["cluster", "info"])
                .contains("cluster_state:ok")
        });
    }

    /// Waits until the replicas of the primary on `port` have every write
    /// (replication is asynchronous), kills it, and waits until every live
    /// node has marked it failed and its replica serves its slots.
    pub fn fail_over(&mut self, port: u16) {
        self.wait_for("replicas in sync", |_| {
            let info = self.cli(port, &["info", "replication"]);
            let field = |name: &str| {
                info.lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(|v| v.trim().to_string())
            };
            let Some(offset) = field("master_repl_offset:") else {
                return false;
            };
            let replica = field("slave0:").unwrap_or_default();
            replica.contains("state=online") && replica.contains(&format!("offset={offset},"))
        });
        self.kill(port);
        let dead = format!("127.0.0.1:{port}@");
        self.wait_for("the failover", |live| {
            let nodes = self.cli(live, &["cluster", "nodes"]);
            nodes.lines().any(|line| {
                line.contains(&dead) && line.contains("fail") && !line.contains("fail?")
            }) && nodes
                .lines()
                .filter(|line| line.contains(&dead))
                // A failed node that lost its slots lists none after `connected`/`disconnected`.
                .all(|line| line.split_whitespace().count() <= 8)
        });
        self.wait_until_ok();
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut(u16) -> bool) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let live: Vec<u16> = self
                .nodes
                .iter()
                .filter(|(child, _)| child.is_some())
                .map(|(_, port)| *port)
                .collect();
            if live.iter().all(|port| done(*port)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis cluster: no {what} in time"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn cli(&self, port: u16, args: &[&str]) -> String {
        let cli = require_binary("redis-cli", "redis-tools");
        let output = Command::new(cli)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for (child, _) in &mut self.nodes {
            stop(child);
        }
    }
}
