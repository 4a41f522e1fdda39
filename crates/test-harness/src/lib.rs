//! Real servers for tests: `nats-server` with JetStream, `redis-server` and
//! `prometheus` (with history backfilled through `promtool`).
//!
//! Each server runs as a child process on a free loopback port with its own
//! temporary directory, so tests run in parallel and leave nothing behind:
//! dropping the handle kills the process and removes the directory. A missing
//! binary fails the test with the command that installs it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod cluster;

use rand::Rng;
use tempfile::TempDir;

/// How long a server may take to become ready before the test fails.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A random name usable as a NATS subject prefix or Redis key prefix, so that
/// tests sharing a server never see each other's messages.
pub fn unique_name(stem: &str) -> String {
    let suffix: u64 = rand::rng().random();
    format!("{stem}_{suffix:016x}")
}

/// Finds `binary` on PATH (or in the usual sbin folders Debian installs to),
/// or panics with the install command.
pub fn require_binary(binary: &str, debian_package: &str) -> PathBuf {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path_var).collect();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/bin", "/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{binary}` is not installed, and this test needs a real one. \
                 Install it with: sudo apt-get install -y {debian_package}"
            )
        })
}

/// Environment variable naming the folder that holds the public corpora
/// (`loghub-2k/`, `nab/`). Tests that need them are `#[ignore]`d and read it
/// only when run with `--include-ignored`; `.ci/run` points it at
/// `../shared/data`.
pub const CORPORA_ENV: &str = "PROACTIVE_INSPECTOR_CORPORA";

/// The reason corpus tests give in `#[ignore = ...]` (kept in one place so the
/// runner's output tells a user what to do). Attributes need a literal, so
/// this constant is the reference that a unit test compares them against.
pub const CORPORA_IGNORE_REASON: &str = "needs the public corpora: set PROACTIVE_INSPECTOR_CORPORA to a folder with loghub-2k/ and nab/ and run with --include-ignored (see README)";

/// The corpus `name` (e.g. `loghub-2k`, `nab`) under [`CORPORA_ENV`], or a
/// panic that says how to provide it. Call only from `#[ignore]`d tests.
pub fn corpus(name: &str) -> PathBuf {
    let Some(root) = std::env::var_os(CORPORA_ENV) else {
        panic!(
            "{CORPORA_ENV} is not set; it must name a folder holding {name}/ \
             (for example ../shared/data, or a download as the README says)"
        );
    };
    let dir = PathBuf::from(root).join(name);
    assert!(
        dir.is_dir(),
        "{} does not exist: {CORPORA_ENV} must name a folder holding {name}/",
        dir.display()
    );
    dir
}

/// Environment variable giving a fuzz run's length in seconds: the
/// `#[ignore]`d long fuzz tests run their property for that long.
pub const FUZZ_SECONDS_ENV: &str = "FUZZ_SECONDS";

/// How long a long fuzz test runs (`FUZZ_SECONDS`, default 60 s).
pub fn fuzz_budget() -> Duration {
    std::env::var(FUZZ_SECONDS_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(60), Duration::from_secs)
}

/// `GET path` on a loopback `port` (HTTP/1.0, blocking, for tests of the
/// service binaries): the status and body, or `Err` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP response: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((status, body.to_string()))
}

/// Runs `test` on values of `strategy` in batches of `batch` cases until
/// [`fuzz_budget`] is spent; panics (with proptest's shrunk case) on the
/// first failure. Returns the cases run. Each batch gets a fresh runner and
/// seed: a runner that has run its cases runs no more.
pub fn fuzz_for_budget<S>(batch: u32, strategy: &S, test: impl Fn(S::Value)) -> u64
where
    S: proptest::strategy::Strategy,
    S::Value: std::fmt::Debug,
{
    use proptest::test_runner::{Config, TestRunner};
    let deadline = Instant::now() + fuzz_budget();
    let mut cases = 0u64;
    while Instant::now() < deadline {
        let mut runner = TestRunner::new(Config {
            failure_persistence: None,
            ..Config::with_cases(batch)
        });
        runner
            .run(strategy, |value| {
                test(value);
                Ok(())
            })
            .unwrap();
        cases += u64::from(batch);
    }
    cases
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("no free loopback port")
}

fn wait_until(what: &str, child: &mut Child, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited during start-up ({status}); its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    panic!(
        "{what} was not ready within {STARTUP_TIMEOUT:?}; its log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn accepts_connections(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

fn spawn(binary: &Path, args: &[String], log: &Path) -> Child {
    let log_file = std::fs::File::create(log).expect("create server log");
    Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("clone log handle"))
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {}: {e}", binary.display()))
}

fn stop(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A `nats-server -js` on a free port with a temporary store.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    /// Extra `nats-server` arguments (e.g. `--user`, `--pass`).
    extra: Vec<String>,
}

impl NatsServer {
    /// Starts a server and waits until it accepts clients.
    pub fn start() -> Self {
        let dir = TempDir::with_prefix("inspector-nats-").expect("temp dir");
        let mut server = NatsServer {
            child: None,
            port: 0,
            dir,
            extra: Vec::new(),
        };
        server.launch(None);
        server
    }

    /// Starts a server with extra arguments, e.g. `["--user", "u", "--pass", "p"]`.
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = TempDir::with_prefix("inspector-nats-").expect("temp dir");
        let mut server = NatsServer {
            child: None,
            port: 0,
            dir,
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        server.launch(None);
        server
    }

    /// Starts a server on a given port (to test clients that were started first).
    pub fn start_on_port(port: u16) -> Self {
        let dir = TempDir::with_prefix("inspector-nats-").expect("temp dir");
        let mut server = NatsServer {
            child: None,
            port,
            dir,
            extra: Vec::new(),
        };
        server.launch(Some(port));
        server
    }

    fn launch(&mut self, port: Option<u16>) {
        let binary = require_binary("nats-server", "nats-server");
        let log = self.dir.path().join("nats.log");
        let _ = std::fs::remove_file(&log);
        // `-p -1` lets the server pick a free port; it logs which one.
        let port_arg = port.map_or_else(|| "-1".to_string(), |p| p.to_string());
        let mut args: Vec<String> = vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port_arg,
            "-js".into(),
            "-sd".into(),
            self.dir.path().join("store").display().to_string(),
            "-l".into(),
            log.display().to_string(),
        ];
        args.extend(self.extra.iter().cloned());
        let mut child = spawn(&binary, &args, &self.dir.path().join("nats.out"));
        let marker = "Listening for client connections on ";
        let mut found = None;
        wait_until("nats-server", &mut child, &log, || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            found = text.lines().find_map(|line| {
                let rest = &line[line.find(marker)? + marker.len()..];
                rest.rsplit(':').next()?.trim().parse::<u16>().ok()
            });
            found.is_some() && text.contains("Server is ready")
        });
        self.port = found.expect("nats-server logged its port");
        self.child = Some(child);
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server, keeping its store.
    pub fn stop(&mut self) {
        stop(&mut self.child);
    }

    /// Starts the server again on the same port with the same store
    /// (JetStream streams and consumers survive).
    pub fn restart(&mut self) {
        self.stop();
        self.launch(Some(self.port));
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A `redis-server` on a free port, keeping nothing on disk.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts with extra `redis-server` arguments, e.g.
    /// `["--requirepass", "secret"]` (readiness is then judged by `PING`
    /// answering at all, authenticated or not).
    pub fn start_with(extra: &[&str]) -> Self {
        let binary = require_binary("redis-server", "redis-server");
        let dir = TempDir::with_prefix("inspector-redis-").expect("temp dir");
        // Another process may take the port between our probe and redis'
        // bind: retry a few times with a fresh one.
        for _ in 0..5 {
            let port = free_port();
            let log = dir.path().join("redis.log");
            let args: Vec<String> = vec![
                "--port".into(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
                "--dir".into(),
                dir.path().display().to_string(),
                "--logfile".into(),
                log.display().to_string(),
            ];
            let args: Vec<String> = args
                .into_iter()
                .chain(extra.iter().map(|a| a.to_string()))
                .collect();
            let mut child = spawn(&binary, &args, &dir.path().join("redis.out"));
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let deadline = Instant::now() + STARTUP_TIMEOUT;
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken: try another
                }
                if redis_ping(addr) {
                    return RedisServer {
                        child: Some(child),
                        port,
                        dir,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!(
                        "redis-server not ready; log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("redis-server could not bind a free port after 5 tries");
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (to test how clients cope with Redis going away).
    pub fn stop(&mut self) {
        stop(&mut self.child);
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn redis_ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    // `-NOAUTH` from a server with a password is an answer too.
    matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"))
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// An Alertmanager (Debian's `prometheus-alertmanager`) on a free port with
/// its own storage, clustering off, and one route to a receiver that sends
/// nothing: tests read what it holds through its API.
#[derive(Debug)]
pub struct AlertmanagerServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl AlertmanagerServer {
    pub fn start() -> Self {
        let dir = TempDir::with_prefix("inspector-alertmanager-").expect("temp dir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: blackhole\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: blackhole\n",
        )
        .expect("write alertmanager config");
        let mut server = AlertmanagerServer {
            child: None,
            port: free_port(),
            dir,
        };
        // The port may be taken between picking and binding: pick again.
        for _ in 0..5 {
            match server.try_launch() {
                Ok(()) => return server,
                Err(log) if log.contains("address already in use") => server.port = free_port(),
                Err(log) => panic!("alertmanager exited during start-up; its log:\n{log}"),
            }
        }
        panic!("no free port for alertmanager after 5 tries");
    }

    fn launch(&mut self) {
        if let Err(log) = self.try_launch() {
            panic!("alertmanager exited during start-up; its log:\n{log}");
        }
    }

    fn try_launch(&mut self) -> Result<(), String> {
        // Debian names it prometheus-alertmanager; upstream, alertmanager.
        let path_var = std::env::var_os("PATH").unwrap_or_default();
        let upstream = std::env::split_paths(&path_var)
            .map(|dir| dir.join("alertmanager"))
            .find(|candidate| candidate.is_file());
        let binary = upstream.unwrap_or_else(|| {
            require_binary("prometheus-alertmanager", "prometheus-alertmanager")
        });
        let dir = self.dir.path();
        let args = vec![
            format!("--config.file={}", dir.join("alertmanager.yml").display()),
            format!("--storage.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{}", self.port),
            // An empty address turns the gossip cluster off.
            "--cluster.listen-address=".to_string(),
        ];
        let log = dir.join("alertmanager.log");
        let mut child = spawn(&binary, &args, &log);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while !http_ok(self.port, "/-/ready") {
            if let Ok(Some(_)) = child.try_wait() {
                return Err(std::fs::read_to_string(&log).unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "alertmanager not ready");
            std::thread::sleep(Duration::from_millis(25));
        }
        self.child = Some(child);
        Ok(())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills it (alerts are held in memory: they are gone).
    pub fn stop(&mut self) {
        stop(&mut self.child);
    }

    /// Starts it again on the same port and storage (silences survive).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for AlertmanagerServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A `prometheus` serving history backfilled from OpenMetrics text with
/// `promtool tsdb create-blocks-from openmetrics`. It scrapes nothing.
#[derive(Debug)]
pub struct PrometheusServer {
    child: Option<Child>,
    port: u16,
    _dir: TempDir,
}

impl PrometheusServer {
    /// Backfills `openmetrics` (text ending in `# EOF`, timestamps in
    /// seconds, each series' samples in time order) and starts Prometheus on it.
    pub fn start_with_openmetrics(openmetrics: &str) -> Self {
        let prometheus = require_binary("prometheus", "prometheus");
        let promtool = require_binary("promtool", "prometheus");
        let dir = TempDir::with_prefix("inspector-prometheus-").expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("create data dir");
        if !openmetrics.trim().is_empty() {
            let input = dir.path().join("history.om");
            std::fs::write(&input, openmetrics).expect("write openmetrics");
            let output = Command::new(&promtool)
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&input)
                .arg(&data)
                .output()
                .expect("run promtool");
            assert!(
                output.status.success(),
                "promtool backfill failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1h\n").expect("write config");
        for _ in 0..5 {
            let port = free_port();
            let log = dir.path().join("prometheus.log");
            let args: Vec<String> = vec![
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", data.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--storage.tsdb.retention.time=3650d".into(),
                "--log.level=warn".into(),
            ];
            let mut child = spawn(&prometheus, &args, &log);
            let deadline = Instant::now() + STARTUP_TIMEOUT;
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken: try another
                }
                if http_ok(port, "/-/ready") {
                    return PrometheusServer {
                        child: Some(child),
                        port,
                        _dir: dir,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!(
                        "prometheus not ready; log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("prometheus could not bind a free port after 5 tries");
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn http_ok(port: u16, path: &str) -> bool {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    if !accepts_connections(addr) {
        return false;
    }
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    matches!(stream.read(&mut head), Ok(n) if n >= 12 && &head[9..12] == b"200")
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A service binary under test: killed on drop if the test fails before
/// stopping it.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Child,
}

impl ServiceProcess {
    /// Spawns `command` (configure stdio and env first).
    pub fn spawn(command: &mut Command) -> Self {
        ServiceProcess {
            child: command.spawn().expect("spawn the service binary"),
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit.
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the service") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "did not stop within {timeout:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One series for [`OpenMetrics::gauge`]: its labels and `(unix seconds, value)` samples.
pub type GaugeSeries<'a> = (&'a [(&'a str, &'a str)], Vec<(i64, f64)>);

/// Builds OpenMetrics text for backfilling: one gauge family, several series.
#[derive(Debug, Default)]
pub struct OpenMetrics {
    text: String,
}

impl OpenMetrics {
    pub fn new() -> Self {
        OpenMetrics::default()
    }

    /// Adds a gauge family `name` whose series are given as
    /// `(labels, samples)`, with samples as `(unix seconds, value)` in time order.
    pub fn gauge(mut self, name: &str, series: &[GaugeSeries<'_>]) -> Self {
        use std::fmt::Write as _;
        let _ = writeln!(self.text, "# TYPE {name} gauge");
        for (labels, samples) in series {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            let labels = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", labels.join(","))
            };
            for (t, v) in samples {
                let _ = writeln!(self.text, "{name}{labels} {v} {t}");
            }
        }
        self
    }

    /// The finished text, ending in `# EOF`.
    pub fn finish(mut self) -> String {
        self.text.push_str("# EOF\n");
        self.text
    }
}

/// Runs `promtool check metrics` on `text` (the Prometheus text format, as
/// `/metrics` serves it to a plain scraper). `Err` holds promtool's findings.
pub fn promtool_check_metrics(text: &str) -> Result<(), String> {
    let promtool = require_binary("promtool", "prometheus");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool ran");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics ({}): {said}",
            output.status
        ))
    }
}

/// A NATS server requiring `user`/`password`, and its URL carrying them;
/// with the URL of a NATS that is not there, carrying them too (tests that
/// plant credentials).
pub fn nats_with_url_credentials(user: &str, password: &str) -> (NatsServer, String, String) {
    let nats = NatsServer::start_with(&["--user", user, "--pass", password]);
    let authed = nats
        .url()
        .replacen("nats://", &format!("nats://{user}:{password}@"), 1);
    let unreachable = format!("nats://{user}:{password}@127.0.0.1:{}", free_port());
    (nats, authed, unreachable)
}

/// Runs a service binary (`command`, with its ops endpoints on `port`) with
/// stdout and stderr captured, until `done(log, metrics)` holds, then stops
/// it and asserts `secret` is in neither its log nor the bodies of `paths`
/// (read just before it stopped). Panics after 30 s without `done`.
pub fn assert_secret_never_shown(
    command: &mut Command,
    port: u16,
    secret: &str,
    paths: &[&str],
    done: impl Fn(&str, &str) -> bool,
) {
    let log = tempfile::NamedTempFile::new().expect("log file");
    let mut child = ServiceProcess::spawn(
        command
            .env("RUST_LOG", "debug")
            .stdout(log.reopen().expect("log file"))
            .stderr(log.reopen().expect("log file")),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let logged = std::fs::read_to_string(log.path()).unwrap_or_default();
        let metrics = http_get(port, "/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default();
        if done(&logged, &metrics) {
            break;
        }
        assert!(Instant::now() < deadline, "never got that far:\n{logged}");
    }
    let served: Vec<(String, String)> = paths
        .iter()
        .filter_map(|path| {
            http_get(port, path)
                .ok()
                .map(|(_, body)| (path.to_string(), body))
        })
        .collect();
    child.terminate(Duration::from_secs(15));
    let logged = std::fs::read_to_string(log.path()).unwrap_or_default();
    assert!(!logged.contains(secret), "secret in the log:\n{logged}");
    for (path, body) in served {
        assert!(!body.contains(secret), "secret in {path}:\n{body}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_start_and_stop() {
        let nats = NatsServer::start();
        let redis = RedisServer::start();
        let nats_addr: SocketAddr = nats.url().trim_start_matches("nats://").parse().unwrap();
        assert!(accepts_connections(nats_addr));
        assert!(redis_ping(
            redis.url().trim_start_matches("redis://").parse().unwrap()
        ));
        let redis_dir = redis.dir().to_path_buf();
        drop(redis);
        assert!(!redis_dir.exists(), "temp dir removed on drop");
        drop(nats);
        assert!(
            !accepts_connections(nats_addr),
            "nats-server killed on drop"
        );
    }

    #[test]
    fn nats_restart_keeps_the_port() {
        let mut nats = NatsServer::start();
        let url = nats.url();
        nats.restart();
        assert_eq!(nats.url(), url);
        assert!(accepts_connections(
            url.trim_start_matches("nats://").parse().unwrap()
        ));
    }

    #[test]
    fn openmetrics_text_shape() {
        let text = OpenMetrics::new()
            .gauge("m", &[(&[("a", "1")], vec![(10, 1.5), (20, 2.0)])])
            .finish();
        assert_eq!(
            text,
            "# TYPE m gauge\nm{a=\"1\"} 1.5 10\nm{a=\"1\"} 2 20\n# EOF\n"
        );
    }

    #[test]
    fn unique_names_differ() {
        assert_ne!(unique_name("t"), unique_name("t"));
    }
}
