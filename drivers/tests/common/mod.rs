//! Real `allium-node` processes on 127.0.0.1 for end-to-end tests.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_allium-node");

/// A free loopback port for UDP and TCP (best effort: bound, then released).
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub struct NodeProcess {
    pub dir: PathBuf,
    pub listen: SocketAddr,
    pub control: SocketAddr,
    pub metrics: SocketAddr,
    child: Option<Child>,
    bootstrap: Vec<SocketAddr>,
    amnesia: bool,
    /// Extra `run` flags (e.g. `--set overlay.x=y`).
    extra: Vec<String>,
    /// Extra environment variables of `run`.
    env: Vec<(String, String)>,
}

impl NodeProcess {
    /// `allium-node init` in `dir`, then `run` with the given bootstrap peers.
    pub fn start(dir: &Path, bootstrap: &[SocketAddr]) -> Self {
        Self::start_with(dir, bootstrap, &[])
    }

    /// Like [`NodeProcess::start`], with extra `run` flags (kept across restarts).
    pub fn start_with(dir: &Path, bootstrap: &[SocketAddr], extra: &[&str]) -> Self {
        Self::start_configured(dir, bootstrap, "", extra, &[])
    }

    /// Like [`NodeProcess::start_with`], with `toml` appended to the
    /// generated config.toml and extra environment variables.
    pub fn start_configured(
        dir: &Path,
        bootstrap: &[SocketAddr],
        toml: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let (mut node, _) = Self::init(dir, bootstrap, extra, env);
        if !toml.is_empty() {
            node.append_config(toml);
        }
        node.spawn();
        node
    }

    /// `allium-node init` in `dir` only (start it with [`NodeProcess::restart`]);
    /// also returns what `init` printed (node id, signing key).
    pub fn init(dir: &Path, bootstrap: &[SocketAddr], extra: &[&str], env: &[(&str, &str)]) -> (Self, String) {
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let (listen, control, metrics) = (addr(free_port()), addr(free_port()), addr(free_port()));
        let out = Command::new(BIN)
            .args(["init", "--dir", dir.to_str().unwrap()])
            .args([
                "--listen",
                &listen.to_string(),
                "--control",
                &control.to_string(),
                "--metrics",
                &metrics.to_string(),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        let node = NodeProcess {
            dir: dir.to_path_buf(),
            listen,
            control,
            metrics,
            child: None,
            bootstrap: bootstrap.to_vec(),
            amnesia: false,
            extra: extra.iter().map(ToString::to_string).collect(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        (node, String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Appends `toml` to the node's config.toml.
    pub fn append_config(&self, toml: &str) {
        let path = self.dir.join("config.toml");
        let config = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{config}\n{toml}\n")).unwrap();
    }

    /// Whether the process is running (not killed or stopped by the test).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `allium-node run --amnesia` with flags only: no init, no config file.
    pub fn start_amnesiac(dir: &Path) -> Self {
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let mut node = NodeProcess {
            dir: dir.to_path_buf(),
            listen: addr(free_port()),
            control: addr(free_port()),
            metrics: addr(free_port()),
            child: None,
            bootstrap: Vec::new(),
            amnesia: true,
            extra: Vec::new(),
            env: Vec::new(),
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        let mut command = Command::new(BIN);
        let log = if self.amnesia {
            // Flags only, and the log kept out of the data directory.
            command.args(["run", "--amnesia", "--data-dir", self.dir.to_str().unwrap()]);
            command.args(["--listen", &self.listen.to_string(), "--control", &self.control.to_string()]);
            command.args(["--metrics", &self.metrics.to_string()]);
            tempfile::tempfile().unwrap()
        } else {
            command.args(["run", "--config", self.dir.join("config.toml").to_str().unwrap()]);
            std::fs::File::create(self.dir.join("node.log")).unwrap()
        };
        if !self.bootstrap.is_empty() {
            let list: Vec<String> = self.bootstrap.iter().map(ToString::to_string).collect();
            command.args(["--bootstrap", &list.join(",")]);
        }
        command.args(&self.extra);
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command.env("ALLIUM_LOG", "debug").stdout(Stdio::null()).stderr(log);
        self.child = Some(command.spawn().unwrap());
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        child.wait().unwrap()
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        self.spawn();
    }

    /// Runs `allium-node ctl --control … ARGS`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(BIN).args(["ctl", "--control", &self.control.to_string()]).args(args).output().unwrap()
    }

    /// `ctl stats --json` parsed.
    pub fn stats(&self) -> serde_json::Value {
        let out = self.ctl(&["stats", "--json"]);
        assert!(out.status.success(), "stats failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// HTTP status of `curl http://metrics-addr/PATH`.
    pub fn curl_status(&self, path: &str) -> u16 {
        let out = curl(&["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("http://{}{path}", self.metrics)]);
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
    }

    /// Waits until `/readyz` says the node has joined.
    pub fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.curl_status("/readyz") == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("node at {} not ready; log:\n{}", self.listen, self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs curl, which the test machine must have (`.ci/run` installs it).
pub fn curl(args: &[&str]) -> Output {
    Command::new("curl").args(args).output().expect("curl must be installed to run this test")
}

/// Retries `f` until it returns Some or `within` passes.
pub fn eventually<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A finished command's status, stdout and stderr, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `allium-node ARGS`, asserting success; returns stdout, trimmed.
pub fn cli(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "allium-node {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The value after `label` in `init`'s output (`node id`, `signing`).
pub fn field(init: &str, label: &str) -> String {
    init.lines()
        .find_map(|line| line.strip_prefix(label))
        .map(|rest| rest.trim().to_string())
        .unwrap_or_else(|| panic!("no {label:?} in {init}"))
}

/// Makes an election group with the CLI: a founder key (`root/founder.key`)
/// and a membership list of `members` (signing key, listen address,
/// priority), copied to each of `configs` (node directories) with an
/// `[[election.groups]]` table appended to its config.toml. Returns the
/// founder key file and the founder's public key.
pub fn election_group(
    root: &Path,
    group: &str,
    members: &[(String, SocketAddr, u8)],
    configs: &[&NodeProcess],
) -> (PathBuf, String) {
    let founder = root.join("founder.key");
    let founder_key = cli(&["election", "founder-key", "--out", founder.to_str().unwrap()]);
    assert_eq!(founder_key.len(), 64, "{founder_key}");
    let membership = root.join(format!("{group}.membership"));
    let mut args: Vec<String> = ["election", "membership", "--founder", founder.to_str().unwrap(), "--group", group]
        .iter()
        .map(ToString::to_string)
        .collect();
    for (key, addr, priority) in members {
        args.push("--member".into());
        args.push(format!("{key}@{addr}:{priority}"));
    }
    args.extend(["--out".to_string(), membership.to_str().unwrap().to_string()]);
    cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // Each node names the list relative to its config directory.
    for node in configs {
        std::fs::copy(&membership, node.dir.join(format!("{group}.membership"))).unwrap();
        node.append_config(&format!(
            "[[election.groups]]\nname = \"{group}\"\nfounder_key = \"{founder_key}\"\nmembership = \"{group}.membership\"\n"
        ));
    }
    (founder, founder_key)
}
