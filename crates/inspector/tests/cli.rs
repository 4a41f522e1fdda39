//! The `inspector` CLI against a real NATS that requires credentials
//! (issue 10, case 9: the CLI takes the services' NATS options).

use std::process::Command;

use inspector_test_harness::{NatsServer, unique_name};

fn report(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_inspector"))
        .arg("report")
        .args(args)
        .env_remove("NATS_USER")
        .env_remove("NATS_PASSWORD")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn report_uses_nats_credentials() {
    let nats = NatsServer::start_with(&["--user", "operator", "--pass", "s3cret-pass"]);
    let prefix = unique_name("cli");
    let url = nats.url();
    // Without credentials the server refuses the connection itself.
    let (ok, stderr) = report(&["--nats-url", &url, "--prefix", &prefix]);
    assert!(!ok);
    assert!(stderr.contains("connecting to NATS"), "{stderr}");
    // With them, the connection works; no aggregator answers here.
    let (ok, stderr) = report(&[
        "--nats-url",
        &url,
        "--prefix",
        &prefix,
        "--nats-user",
        "operator",
        "--nats-password",
        "s3cret-pass",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("no aggregator answered") || stderr.contains("no answer"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cret-pass"),
        "the password leaked: {stderr}"
    );
}

/// `inspector logs mine | head -1`: a reader that stops early ends the
/// command quietly (exit 0, no panic), and the first line is the summary.
#[test]
fn logs_mine_stops_quietly_when_its_reader_does() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("lines.log");
    let mut file = std::fs::File::create(&input).unwrap();
    // Many distinct templates (words without digits, which masks keep),
    // so the output is far larger than a pipe holds.
    let word = |mut n: u32| {
        let mut word = String::new();
        for _ in 0..4 {
            word.push(char::from(b'a' + (n % 26) as u8));
            n /= 26;
        }
        word
    };
    for i in 0..20_000u32 {
        let (a, b, c) = (word(i), word(i * 7 + 3), word(i * 13 + 5));
        writeln!(file, "worker {a} started job {b} queue {c}").unwrap();
        writeln!(file, "event number {} happened", i % 7).unwrap();
    }
    drop(file);
    let mut child = Command::new(env!("CARGO_BIN_EXE_inspector"))
        .args(["logs", "mine"])
        .arg(&input)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone: the rest of the output meets a closed pipe.
    let output = child.wait_with_output().unwrap();
    assert!(first.starts_with("40000 lines, "), "{first}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
