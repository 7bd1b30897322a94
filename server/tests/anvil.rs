//! Support for tests against a real anvil (npm `@foundry-rs/anvil-linux-amd64`, pinned by
//! scripts/chain-tools.sh): the node on a free loopback port, `cast` (npm
//! `@foundry-rs/cast-linux-amd64`) as the outside reader, and ledger setup through the storage
//! API (no model needed).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use provdb::storage::{Store, StoreOptions};

use crate::common::*;
use crate::ledger_check::{PAYER, fund, payment, synthetic_answer};

pub(crate) fn tool(name: &str) -> PathBuf {
    let script = repo_root().join("scripts/chain-tools.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(["path", name])
        .output()
        .unwrap();
    assert!(out.status.success(), "chain-tools: {}", stderr(&out));
    PathBuf::from(stdout(&out).trim())
}

/// An anvil on a free loopback port, killed on drop.
pub(crate) struct Anvil {
    child: Child,
    pub(crate) url: String,
    pub(crate) keys: Vec<String>,
    pub(crate) accounts: Vec<String>,
    state: Option<PathBuf>,
    port: u16,
    _dir: tempfile::TempDir,
}

/// Starts anvil on `port` (loading and dumping `state` if given) and waits until it listens
/// and has written its `config` (keys and accounts).
fn spawn_anvil(port: u16, config: &Path, state: Option<&Path>) -> Child {
    let mut command = Command::new(tool("anvil"));
    command
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--silent",
        ])
        .arg("--config-out")
        .arg(config);
    if let Some(state) = state {
        command.arg("--state").arg(state);
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let written = || {
        std::fs::read(config)
            .ok()
            .is_some_and(|b| serde_json::from_slice::<serde_json::Value>(&b).is_ok())
    };
    while !written() {
        assert!(Instant::now() < deadline, "anvil did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "anvil does not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

impl Anvil {
    pub(crate) fn start() -> Self {
        Self::start_with(false)
    }

    /// With `persistent`, the chain is kept in a state file across [`Anvil::restart`].
    pub(crate) fn start_with(persistent: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("anvil.json");
        let state = persistent.then(|| dir.path().join("state.json"));
        let child = spawn_anvil(port, &config, state.as_deref());
        let parsed: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
        let strings = |field: &str| -> Vec<String> {
            parsed[field]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            keys: strings("private_keys"),
            accounts: strings("available_accounts"),
            state,
            port,
            _dir: dir,
        }
    }

    /// Stops anvil (SIGTERM: it writes its state file) and starts it again on the same port.
    pub(crate) fn restart(&mut self, down_for: Duration) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        self.child.wait().unwrap();
        std::thread::sleep(down_for);
        let config = self._dir.path().join("anvil-again.json");
        self.child = spawn_anvil(self.port, &config, self.state.as_deref());
    }

    pub(crate) fn cast(&self, args: &[&str]) -> Output {
        Command::new(tool("cast"))
            .args(args)
            .args(["--rpc-url", &self.url])
            .output()
            .unwrap()
    }

    pub(crate) fn cast_ok(&self, args: &[&str]) -> String {
        let out = self.cast(args);
        assert!(out.status.success(), "cast {args:?}: {}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    /// A selector, hex without 0x (cast sig needs no node).
    pub(crate) fn selector(&self, signature: &str) -> String {
        let out = Command::new(tool("cast"))
            .args(["sig", signature])
            .output()
            .unwrap();
        assert!(out.status.success(), "cast sig: {}", stderr(&out));
        stdout(&out).trim().trim_start_matches("0x").to_string()
    }

    /// The events `signature` emitted by `contract`, as `cast logs` decodes them.
    pub(crate) fn event_logs(&self, contract: &str, signature: &str) -> Vec<serde_json::Value> {
        let out = self.cast_ok(&[
            "logs",
            "--from-block",
            "0",
            "--address",
            contract,
            signature,
            "--json",
        ]);
        match serde_json::from_str(&out).unwrap() {
            serde_json::Value::Array(logs) => logs,
            other => panic!("cast logs: {other}"),
        }
    }

    pub(crate) fn balance(&self, account: &str) -> u128 {
        self.cast_ok(&["balance", account]).parse().unwrap()
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn address(text: &str) -> provdb::Address {
    text.parse().unwrap()
}

/// Appends one answer per `(account, amount)` pair straight into the ledger, then closes an
/// epoch; returns its number. The binary must not be running.
pub(crate) fn pay_and_close(data: &Path, payments: &[(&str, u128)], salt: u64) -> u64 {
    let store = Store::open(
        data.join("storage"),
        StoreOptions {
            sync_writes: false,
            create_if_missing: false,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    fund(&store, PAYER);
    let answers = payments
        .iter()
        .enumerate()
        .map(|(i, (to, amount))| {
            let entries = vec![payment(address(to), *amount, 1_000_000)];
            synthetic_answer(
                &format!("{salt}/{i}"),
                1_700_000_000_000 + i as i64,
                entries,
            )
        })
        .collect();
    store.append_answers(answers).unwrap();
    store.close_epoch(1_700_000_000_000).unwrap().epoch
}

pub(crate) fn ingest(data: &Path, dir: &Path, name: &str, texts: &[&str]) {
    let input = dir.join(format!("{name}.jsonl"));
    let lines: Vec<String> = texts
        .iter()
        .map(|t| format!("{{\"text\":\"{t}\",\"contributor\":\"{ALICE}\"}}"))
        .collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    ok(provdb_without_models(
        data,
        &["ingest", name, input.to_str().unwrap(), "--no-index"],
    ));
}

/// A file holding `key` (readable by its owner only), for `--key-file`: keys never go on the
/// command line. One file per key and test process, kept for the process's life.
pub(crate) fn key_file(key: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let digits = key.trim_start_matches("0x");
    let path = std::env::temp_dir().join(format!(
        "provdb-test-key-{}-{}",
        std::process::id(),
        &digits[..digits.len().min(16)]
    ));
    std::fs::write(&path, key).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_str().unwrap().to_string()
}

pub(crate) fn chain(data: &Path, anvil: &Anvil, args: &[&str]) -> Output {
    let mut all = vec!["chain"];
    all.extend_from_slice(args);
    Command::new(env!("CARGO_BIN_EXE_provdb"))
        .arg("--data")
        .arg(data)
        .args(&all)
        .env_remove("PROVDB_DATA")
        .env_remove("PROVDB_CHAIN_KEY")
        .env_remove("PROVDB_CLAIM_KEY")
        .env("PROVDB_RPC", &anvil.url)
        .output()
        .unwrap()
}

/// The total (wei) of the last closed epoch, as `provdb epoch list` shows it.
pub(crate) fn last_epoch_total(data: &Path) -> u128 {
    let listed = json(&ok(provdb(data, &["epoch", "list", "--json"])));
    let last = listed.as_array().and_then(|epochs| epochs.last()).unwrap();
    last["total_wei"].as_str().unwrap().parse().unwrap()
}

/// Trains a rank-2 adapter on `datanet` with the tiny settings the chain tests need (one batch,
/// 32 tokens), publishes it for `owner`, and returns the published adapter.
pub(crate) fn train_tiny_adapter(data: &Path, datanet: &str, owner: &str) -> serde_json::Value {
    let job = json(&ok(provdb(
        data,
        &[
            "train",
            "create",
            datanet,
            "--rank",
            "2",
            "--targets",
            "q_proj",
            "--batch-size",
            "1",
            "--max-length",
            "32",
            "--json",
        ],
    )));
    let id = job["id"].as_str().expect("a job id");
    json(&ok(provdb(
        data,
        &["train", "publish", id, "--owner", owner, "--json"],
    )))
}
