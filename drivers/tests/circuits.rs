//! Onion circuits end to end with real processes on 127.0.0.1: a client-only
//! node with a SOCKS5 listener, three relays (the third an exit for
//! 127.0.0.1), curl through the SOCKS listener to a local HTTP server.
//!
//! * A 10 MiB download arrives byte-identical; its throughput is printed.
//! * With a relay flipping one bit of a cell mid-download (the `test-hooks`
//!   feature, which the crate's dev-dependency on itself turns on), the
//!   download fails and every byte delivered is a prefix of the file.
//! * A destination the exit policy refuses gets SOCKS reply 0x02.
#![cfg(not(madsim))]

mod common;

use common::{NodeProcess, eventually, free_port};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Size of the served file: 10 MiB.
const FILE_BYTES: usize = 10 << 20;

/// The port the exit refuses on 127.0.0.1 (`reject 127.0.0.1:9` precedes `accept 127.0.0.1:*`).
const REFUSED_PORT: u16 = 9;

/// The tests run one network at a time, so the throughput figure is not shared with another test.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Deterministic pseudo-random bytes (xorshift64).
fn file_bytes() -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(FILE_BYTES);
    while out.len() < FILE_BYTES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(FILE_BYTES);
    out
}

/// A minimal HTTP/1.0 server on 127.0.0.1 answering every request with `body`.
fn serve_http(body: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let body = std::sync::Arc::new(body);
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).and_then(|()| conn.write_all(&body));
            });
        }
    });
    addr
}

struct Network {
    client: NodeProcess,
    relays: Vec<NodeProcess>,
    socks: SocketAddr,
    _root: tempfile::TempDir,
}

/// The client (first, so that every relay joins through it and publishes
/// its descriptor to a live peer), then three relays in distinct regions,
/// the third an exit for 127.0.0.1 (and not a guard);
/// `corrupt` goes to the first (non-exit) relay as
/// `ALLIUM_TEST_CORRUPT_RELAYED_CELL`. Returns once the client has an open
/// circuit.
fn start_network(corrupt: Option<u64>) -> Network {
    let root = tempfile::tempdir().unwrap();
    let socks = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let client = NodeProcess::start_configured(
        &root.path().join("client"),
        &[],
        &format!("[socks]\nlisten = \"{socks}\"\n"),
        // Three relays exist; look again every 2 s for descriptors not yet published.
        &["--set", "circuit.directory_target=3", "--set", "circuit.directory_refresh_secs=2"],
        &[],
    );
    client.wait_ready(Duration::from_secs(20));
    let corrupt = corrupt.map(|n| n.to_string());
    let relays: Vec<NodeProcess> = (0..3)
        .map(|i| {
            // The exit is not a guard: a client keeps its guard, and a guard that is
            // the only exit would leave no path (guard, middle and exit must differ).
            let exit = if i == 2 {
                "flags = [\"stable\"]\nexit_policy = [\"reject 127.0.0.1:9\", \"accept 127.0.0.1:*\", \"accept localhost:*\"]\n"
            } else {
                ""
            };
            let toml = format!("[relay]\nenabled = true\nregion = {}\n{exit}", i + 1);
            let env: Vec<(&str, &str)> = match (&corrupt, i) {
                (Some(n), 0) => vec![("ALLIUM_TEST_CORRUPT_RELAYED_CELL", n.as_str())],
                _ => Vec::new(),
            };
            NodeProcess::start_configured(&root.path().join(format!("relay{i}")), &[client.listen], &toml, &[], &env)
        })
        .collect();
    for relay in &relays {
        relay.wait_ready(Duration::from_secs(20));
    }
    let open = eventually(Duration::from_secs(40), || {
        let out = client.ctl(&["circuits", "--json"]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let open = report["circuits"].as_array()?.iter().any(|c| c["state"] == "open");
        (report["directory_relays"].as_u64()? >= 3 && open).then_some(report)
    });
    let report = open.unwrap_or_else(|| panic!("no open circuit; client log:\n{}", client.log()));
    assert_eq!(report["circuits"][0]["path"].as_array().map(Vec::len), Some(3), "{report}");
    Network { client, relays, socks, _root: root }
}

/// `curl --socks5-hostname` to `url`, output to `out`; returns curl's exit code and stderr.
fn curl_via(socks: SocketAddr, url: &str, out: &Path) -> (i32, String) {
    let output = common::curl(&[
        "-sS",
        "--max-time",
        "60",
        "--socks5-hostname",
        &socks.to_string(),
        url,
        "-o",
        out.to_str().unwrap(),
    ]);
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_download_through_three_relays_is_byte_identical_and_a_refused_port_gets_reply_2() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let file = file_bytes();
    let http = serve_http(file.clone());
    let net = start_network(None);
    let out = net._root.path().join("download");

    let started = Instant::now();
    let (code, stderr) = curl_via(net.socks, &format!("http://{http}/file"), &out);
    let elapsed = started.elapsed();
    assert_eq!(code, 0, "curl failed: {stderr}\nclient log:\n{}", net.client.log());
    let got = std::fs::read(&out).unwrap();
    assert!(got == file, "downloaded {} bytes, not the {} of the file (or different bytes)", got.len(), file.len());
    let mib = FILE_BYTES as f64 / (1024.0 * 1024.0);
    println!(
        "10 MiB through 3 relays via SOCKS5: {:.2} s, {:.2} MiB/s",
        elapsed.as_secs_f64(),
        mib / elapsed.as_secs_f64()
    );

    // ctl circuits shows the circuit carried the bytes; stats count the SOCKS connection.
    let report: serde_json::Value = serde_json::from_slice(&net.client.ctl(&["circuits", "--json"]).stdout).unwrap();
    let received: u64 =
        report["circuits"].as_array().unwrap().iter().filter_map(|c| c["bytes_received"].as_u64()).sum();
    assert!(received >= FILE_BYTES as u64, "{report}");
    let table = String::from_utf8_lossy(&net.client.ctl(&["circuits"]).stdout).into_owned();
    assert!(table.contains("directory   3 relays (1 exits)"), "{table}");
    let relayed: u64 = net.relays.iter().map(|r| r.stats()["relayed_circuits"].as_u64().unwrap_or(0)).sum();
    assert!(relayed >= 3, "each relay carries the circuit");
    assert_eq!(net.client.stats()["metrics"]["driver.socks.connections"].as_u64(), Some(1));

    // The exit refuses 127.0.0.1:9: curl reports SOCKS reply 2 ("not allowed by ruleset").
    let (code, stderr) = curl_via(net.socks, &format!("http://127.0.0.1:{REFUSED_PORT}/"), &out);
    eprintln!("refused by policy: curl exit {code}: {}", stderr.trim());
    assert_eq!(code, 97, "curl should fail the SOCKS handshake: {stderr}");
    assert!(stderr.contains("(2)") || stderr.to_lowercase().contains("ruleset"), "reply 2 expected: {stderr}");

    // The name `localhost` is allowed, but at the exit it resolves to 127.0.0.1 (port 9
    // refused) or ::1 (not allowed): the exit does not connect, the client gets reply 4.
    let (code, stderr) = curl_via(net.socks, &format!("http://localhost:{REFUSED_PORT}/"), &out);
    eprintln!("refused on the resolved address: curl exit {code}: {}", stderr.trim());
    assert_eq!(code, 97, "curl should fail the SOCKS handshake: {stderr}");
    assert!(stderr.contains("(4)") || stderr.to_lowercase().contains("unreachable"), "reply 4 expected: {stderr}");
    // …while the same name on an allowed port works.
    let (code, stderr) = curl_via(net.socks, &format!("http://localhost:{}/file", http.port()), &out);
    assert_eq!(code, 0, "localhost resolves to 127.0.0.1 at the exit: {stderr}");
    assert_eq!(std::fs::metadata(&out).unwrap().len(), FILE_BYTES as u64);
    assert_eq!(net.client.stats()["metrics"]["driver.socks.failures"].as_u64(), Some(2));

    // Handshakes the listener refuses, byte for byte.
    assert_eq!(socks_exchange(net.socks, &[5, 1, 2], &[]), vec![5, 0xFF], "no acceptable method");
    let bind = [5, 2, 0, 1, 127, 0, 0, 1, 0, 80];
    assert_eq!(socks_exchange(net.socks, &[5, 1, 0], &bind)[..4], [5, 0, 5, 7], "BIND: command not supported");
    let bad_atyp = [5, 1, 0, 9, 0, 0];
    assert_eq!(socks_exchange(net.socks, &[5, 1, 0], &bad_atyp)[..4], [5, 0, 5, 8], "address type not supported");
}

/// Sends a greeting, then (if not empty) a request, and returns everything the listener answers before closing.
fn socks_exchange(socks: SocketAddr, greeting: &[u8], request: &[u8]) -> Vec<u8> {
    let mut tcp = std::net::TcpStream::connect(socks).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(greeting).unwrap();
    if !request.is_empty() {
        let mut choice = [0u8; 2];
        tcp.read_exact(&mut choice).unwrap();
        let mut answer = choice.to_vec();
        tcp.write_all(request).unwrap();
        let _ = tcp.read_to_end(&mut answer);
        return answer;
    }
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    answer
}

#[test]
fn a_bit_flipped_by_a_relay_ends_the_download_without_delivering_a_corrupt_byte() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let file = file_bytes();
    let http = serve_http(file.clone());
    // Cell 3000 is well inside the ~9,000 cells the download takes.
    let net = start_network(Some(3000));
    assert!(
        net.relays[0].log().contains("test hook: corrupting relayed cell 3000"),
        "the test binary's allium-node must be built with the test-hooks feature"
    );
    let out = net._root.path().join("download");
    let (code, stderr) = curl_via(net.socks, &format!("http://{http}/file"), &out);
    let got = std::fs::read(&out).unwrap_or_default();
    assert!(code != 0 || got.len() < file.len(), "the download should fail; curl said: {stderr}");
    assert!(got.len() < file.len(), "got {} bytes", got.len());
    assert!(file.starts_with(&got), "every delivered byte is the file's ({} bytes delivered)", got.len());
    let stats = net.client.stats();
    let integrity = stats["metrics"].as_object().unwrap().iter().filter(|(k, _)| k.contains("integrity")).count();
    eprintln!(
        "corrupted download stopped after {} of {} bytes (curl exit {code}); integrity counters: {integrity}",
        got.len(),
        file.len()
    );
}
