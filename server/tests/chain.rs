//! `provdb chain deploy|sync|status|claim` against a real anvil (npm
//! `@foundry-rs/anvil-linux-amd64`, pinned by scripts/chain-tools.sh), with `cast` (npm
//! `@foundry-rs/cast-linux-amd64`) as the outside reader and as the sender of the transactions
//! provdb itself never sends (a forged proof, an epoch out of order). Ledger entries are
//! appended through the storage API (no model needed).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use provdb::storage::{
    AnswerId, AnswerRecord, NewAnswer, NewEntry, Role, Store, StoreOptions, keccak256,
};

use crate::common::*;

fn tool(name: &str) -> PathBuf {
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
    accounts: Vec<String>,
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
    fn start_with(persistent: bool) -> Self {
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
    fn restart(&mut self, down_for: Duration) {
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

    fn cast(&self, args: &[&str]) -> Output {
        Command::new(tool("cast"))
            .args(args)
            .args(["--rpc-url", &self.url])
            .output()
            .unwrap()
    }

    fn cast_ok(&self, args: &[&str]) -> String {
        let out = self.cast(args);
        assert!(out.status.success(), "cast {args:?}: {}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    /// A selector, hex without 0x (cast sig needs no node).
    fn selector(&self, signature: &str) -> String {
        let out = Command::new(tool("cast"))
            .args(["sig", signature])
            .output()
            .unwrap();
        assert!(out.status.success(), "cast sig: {}", stderr(&out));
        stdout(&out).trim().trim_start_matches("0x").to_string()
    }

    fn balance(&self, account: &str) -> u128 {
        self.cast_ok(&["balance", account]).parse().unwrap()
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn address(text: &str) -> provdb::Address {
    text.parse().unwrap()
}

/// Appends one answer per `(account, amount)` pair straight into the ledger, then closes an
/// epoch; returns its number. The binary must not be running.
fn pay_and_close(data: &Path, payments: &[(&str, u128)], salt: u64) -> u64 {
    let store = Store::open(
        data.join("storage"),
        StoreOptions {
            sync_writes: false,
            create_if_missing: false,
        },
    )
    .unwrap();
    let answers = payments
        .iter()
        .enumerate()
        .map(|(i, (to, amount))| NewAnswer {
            record: AnswerRecord {
                answer_id: AnswerId(keccak256(format!("{salt}/{i}").as_bytes())),
                ts_ms: 1_700_000_000_000 + i as i64,
                caller: None,
                datanet_ids: vec![],
                question: "q".into(),
                text: "a".into(),
                model: "test".into(),
                adapter: None,
                fee_wei: *amount,
                attribution: "cited".into(),
                citations: vec![],
                first_seq: 0,
                entries: 0,
            },
            entries: vec![NewEntry {
                datanet_id: None,
                record_id: None,
                chunk_id: None,
                to: address(to),
                role: Role::Contributor,
                weight_ppm: 1_000_000,
                amount_wei: *amount,
            }],
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

#[test]
fn three_contributors_claim_exactly_their_balances_and_nothing_twice() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    ok(provdb(&data, &["datanet", "create", "aero"]));
    ingest(&data, dir.path(), "aero", &["lift and drag", "shock waves"]);

    let operator = anvil.keys[0].as_str();
    let relayer = anvil.keys[4].as_str();
    let contributors: Vec<&str> = anvil.accounts[1..4].iter().map(String::as_str).collect();
    let amounts = [1_000_000_000_000_000u128, 2_500_000_000_000_000, 7];
    let payments: Vec<(&str, u128)> = contributors.iter().copied().zip(amounts).collect();
    assert_eq!(pay_and_close(&data, &payments, 1), 1);

    let status_before = chain(&data, &anvil, &["status"]);
    assert_eq!(
        status_before.status.code(),
        Some(1),
        "{}",
        stderr(&status_before)
    );
    assert!(stderr(&status_before).contains("chain deploy"));

    let deployed = json(&ok(chain(
        &data,
        &anvil,
        &["deploy", "--rpc", &anvil.url, "--key", operator, "--json"],
    )));
    assert_eq!(deployed["chain_id"], 31337);
    let distributor = deployed["distributor"].as_str().unwrap().to_string();
    let again = chain(
        &data,
        &anvil,
        &["deploy", "--rpc", &anvil.url, "--key", operator],
    );
    assert_eq!(
        again.status.code(),
        Some(1),
        "a second deploy needs --force"
    );

    // Two adapters, one with an owner: only that one is registered.
    let peft = dir.path().join("peft");
    let peft_arg = peft.to_str().unwrap();
    ok(provdb(
        &data,
        &[
            "adapter",
            "random",
            peft_arg,
            "--count",
            "2",
            "--rank",
            "2",
            "--targets",
            "q_proj",
        ],
    ));
    let owned = json(&ok(provdb(
        &data,
        &[
            "adapter",
            "add",
            &format!("{peft_arg}/adapter-0000"),
            "--owner",
            contributors[0],
            "--json",
        ],
    )));
    ok(provdb(
        &data,
        &["adapter", "add", &format!("{peft_arg}/adapter-0001")],
    ));
    let adapter_id = owned[0]["id"].as_str().unwrap().to_string();
    // A Model Factory adapter, trained on aero's records, is registered with their root.
    let job = json(&ok(provdb(
        &data,
        &[
            "train",
            "create",
            "aero",
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
    let trained = json(&ok(provdb(
        &data,
        &[
            "train",
            "publish",
            job["id"].as_str().unwrap(),
            "--owner",
            contributors[1],
            "--json",
        ],
    )));
    let trained_id = trained["id"].as_str().unwrap().to_string();

    let synced = json(&ok(chain(
        &data,
        &anvil,
        &["sync", "--key", operator, "--json"],
    )));
    let registered = synced["adapters_registered"].as_array().unwrap();
    assert_eq!(registered.len(), 2, "{synced}");
    assert!(
        registered.iter().any(|r| r["id"] == adapter_id.as_str()),
        "{synced}"
    );
    let registry = deployed["registry"].as_str().unwrap().to_string();
    let on_chain_trained = anvil.cast_ok(&[
        "call",
        &registry,
        "adapters(bytes32)(address,bytes32,bytes32)",
        &trained_id,
    ]);
    let fields: Vec<&str> = on_chain_trained.lines().collect();
    assert_eq!(fields[0].to_lowercase(), contributors[1].to_lowercase());
    assert_eq!(
        fields[2],
        trained["training"]["records_root"].as_str().unwrap()
    );
    assert_ne!(fields[2], format!("0x{}", "0".repeat(64)));
    let on_chain = anvil.cast_ok(&[
        "call",
        &registry,
        "adapters(bytes32)(address,bytes32,bytes32)",
        &adapter_id,
    ]);
    let mut fields = on_chain.lines();
    assert_eq!(
        fields.next().unwrap().to_lowercase(),
        contributors[0].to_lowercase()
    );
    assert_eq!(
        fields.next().unwrap(),
        owned[0]["base_model"].as_str().unwrap()
    );
    assert_eq!(
        synced["epochs_posted"].as_array().unwrap().len(),
        1,
        "{synced}"
    );
    assert_eq!(
        synced["batches_anchored"].as_array().unwrap().len(),
        1,
        "{synced}"
    );
    assert_eq!(
        synced["datanets_registered"].as_array().unwrap().len(),
        1,
        "{synced}"
    );
    let epoch_gas = synced["epochs_posted"][0]["gas_used"].as_u64().unwrap();
    eprintln!("epoch_commit_gas {epoch_gas}");
    let resynced = json(&ok(chain(
        &data,
        &anvil,
        &["sync", "--key", operator, "--json"],
    )));
    assert!(
        resynced["epochs_posted"].as_array().unwrap().is_empty(),
        "{resynced}"
    );
    assert!(
        resynced["batches_anchored"].as_array().unwrap().is_empty(),
        "{resynced}"
    );
    assert!(
        resynced["adapters_registered"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{resynced}"
    );

    // Seen from outside: cast reads the root and the funding.
    let local = json(&ok(provdb(&data, &["epoch", "list", "--json"])));
    let root = anvil.cast_ok(&["call", &distributor, "roots(uint256)(bytes32)", "1"]);
    assert_eq!(root, local[0]["root"].as_str().unwrap());
    let total: u128 = amounts.iter().sum();
    assert_eq!(anvil.balance(&distributor), total);
    let status = json(&ok(chain(&data, &anvil, &["status", "--json"])));
    assert_eq!(status["epochs"][0]["state"], "synced", "{status}");
    assert_eq!(status["pending_batches"], 0, "{status}");

    // Each contributor is paid its exact balance; the relayer pays the gas.
    for (account, amount) in &payments {
        let before = anvil.balance(account);
        let claim = json(&ok(chain(
            &data,
            &anvil,
            &["claim", account, "--key", relayer, "--json"],
        )));
        assert_eq!(claim["paid_wei"], amount.to_string());
        let gas = claim["gas_used"].as_u64().unwrap();
        eprintln!("claim_gas {gas}");
        assert!(gas <= 80_000, "claim used {gas} gas");
        assert_eq!(anvil.balance(account), before + amount);
    }
    assert_eq!(anvil.balance(&distributor), 0);

    // A second claim reverts with AlreadyClaimed (provdb checks first; cast goes straight
    // to the contract).
    let twice = chain(&data, &anvil, &["claim", contributors[0], "--key", relayer]);
    assert_eq!(twice.status.code(), Some(1));
    assert!(
        stderr(&twice).contains("AlreadyClaimed"),
        "{}",
        stderr(&twice)
    );
    let proof = json(&ok(provdb(
        &data,
        &["epoch", "proof", contributors[0], "--json"],
    )));
    let proof_list = format!(
        "[{}]",
        proof["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(",")
    );
    let sig = "claim(uint256,address,uint256,bytes32[])";
    let replay = anvil.cast(&[
        "send",
        &distributor,
        sig,
        "1",
        contributors[0],
        &amounts[0].to_string(),
        &proof_list,
        "--private-key",
        relayer,
    ]);
    assert!(!replay.status.success());
    let already_selector = anvil.selector("AlreadyClaimed(address,uint256)");
    assert!(
        stderr(&replay).contains(&already_selector),
        "{}",
        stderr(&replay)
    );
    // A forged proof (one more wei than the leaf says) reverts with InvalidProof.
    let forged = anvil.cast(&[
        "send",
        &distributor,
        sig,
        "1",
        contributors[0],
        &(amounts[0] + 1).to_string(),
        &proof_list,
        "--private-key",
        relayer,
    ]);
    assert!(!forged.status.success());
    let invalid_selector = anvil.selector("InvalidProof()");
    assert!(
        stderr(&forged).contains(&invalid_selector),
        "{}",
        stderr(&forged)
    );
    // An epoch out of order reverts with EpochOutOfOrder, even from the operator.
    let skipped = anvil.cast(&[
        "send",
        &distributor,
        "postEpoch(uint256,bytes32,uint256)",
        "3",
        "0x1111111111111111111111111111111111111111111111111111111111111111",
        &total.to_string(),
        "--private-key",
        operator,
    ]);
    assert!(!skipped.status.success());
    let order_selector = anvil.selector("EpochOutOfOrder(uint256,uint256)");
    assert!(
        stderr(&skipped).contains(&order_selector),
        "{}",
        stderr(&skipped)
    );

    // A second epoch pays only what is new.
    assert_eq!(pay_and_close(&data, &[(contributors[0], 5)], 2), 2);
    let synced = json(&ok(chain(
        &data,
        &anvil,
        &["sync", "--key", operator, "--json"],
    )));
    assert_eq!(synced["epochs_posted"][0]["epoch"], 2, "{synced}");
    assert_eq!(synced["epochs_posted"][0]["funded_wei"], "5", "{synced}");
    let before = anvil.balance(contributors[0]);
    let claim = json(&ok(chain(
        &data,
        &anvil,
        &["claim", contributors[0], "--key", relayer, "--json"],
    )));
    assert_eq!(claim["paid_wei"], "5");
    assert_eq!(anvil.balance(contributors[0]), before + 5);
    let verify = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
    assert_eq!(verify["ok"], true);
}

#[test]
fn sync_survives_sigkill_and_a_dead_rpc_without_skipping_or_doubling() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    ok(provdb(&data, &["datanet", "create", "aero"]));
    let operator = anvil.keys[0].as_str();
    let accounts: Vec<&str> = anvil.accounts[1..4].iter().map(String::as_str).collect();
    let epochs = 6u64;
    for n in 1..=epochs {
        ingest(&data, dir.path(), "aero", &[&format!("batch {n} text")]);
        let payments: Vec<(&str, u128)> = accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (*a, (n as u128) * 1000 + i as u128))
            .collect();
        assert_eq!(pay_and_close(&data, &payments, n), n);
    }
    ok(chain(
        &data,
        &anvil,
        &["deploy", "--rpc", &anvil.url, "--key", operator],
    ));
    let ledger_before = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));

    // A dead endpoint: retried, then a clear error (exit 2), nothing changes locally.
    let dead_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead_url = format!("http://127.0.0.1:{dead_port}");
    let dead = chain(
        &data,
        &anvil,
        &[
            "sync",
            "--key",
            operator,
            "--rpc",
            &dead_url,
            "--attempts",
            "2",
        ],
    );
    assert_eq!(dead.status.code(), Some(2), "{}", stderr(&dead));
    assert!(
        stderr(&dead).contains("after 2 attempt"),
        "{}",
        stderr(&dead)
    );

    // SIGKILL at random moments until a run completes.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut kills = 0;
    for _ in 0..40 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(20 + seed % 120);
        let mut child = Command::new(env!("CARGO_BIN_EXE_provdb"))
            .arg("--data")
            .arg(&data)
            .args(["chain", "sync", "--key", operator, "--rpc", &anvil.url])
            .env_remove("PROVDB_DATA")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "sync failed");
                break;
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
            }
        }
    }
    eprintln!("killed sync {kills} times");
    let last = json(&ok(chain(
        &data,
        &anvil,
        &["sync", "--key", operator, "--json"],
    )));
    assert_eq!(last["chain_last_epoch"], epochs, "{last}");
    let status = json(&ok(chain(&data, &anvil, &["status", "--json"])));
    assert_eq!(status["pending_batches"], 0, "{status}");
    for e in status["epochs"].as_array().unwrap() {
        assert_eq!(e["state"], "synced", "{status}");
        assert!(
            e["tx"].is_string(),
            "every post's tx is recorded or recovered: {status}"
        );
    }
    // Each epoch was posted exactly once (one EpochPosted event each), and the contract holds
    // exactly the last total.
    let distributor = status["distributor"].as_str().unwrap();
    let logs = anvil.cast_ok(&[
        "logs",
        "--from-block",
        "0",
        "--address",
        distributor,
        "EpochPosted(uint256 indexed,bytes32,uint256,uint256)",
        "--json",
    ]);
    let logs: serde_json::Value = serde_json::from_str(&logs).unwrap();
    assert_eq!(logs.as_array().unwrap().len() as u64, epochs);
    let local = json(&ok(provdb(&data, &["epoch", "list", "--json"])));
    let total: u128 = local[epochs as usize - 1]["total_wei"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(anvil.balance(distributor), total);
    let ledger_after = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
    assert_eq!(ledger_before, ledger_after);
}

#[test]
fn sync_finishes_across_an_anvil_restart_without_skipping_or_doubling() {
    let mut anvil = Anvil::start_with(true);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    ok(provdb(&data, &["datanet", "create", "aero"]));
    let batches = 40u64;
    for n in 1..=batches {
        ingest(&data, dir.path(), "aero", &[&format!("restart batch {n}")]);
    }
    let operator = anvil.keys[0].clone();
    let account = anvil.accounts[1].clone();
    assert_eq!(pay_and_close(&data, &[(account.as_str(), 5000)], 1), 1);
    let deployed = json(&ok(chain(
        &data,
        &anvil,
        &["deploy", "--rpc", &anvil.url, "--key", &operator, "--json"],
    )));
    let registry = deployed["registry"].as_str().unwrap().to_string();
    let mut sync = Command::new(env!("CARGO_BIN_EXE_provdb"))
        .arg("--data")
        .arg(&data)
        .args([
            "chain",
            "sync",
            "--key",
            &operator,
            "--rpc",
            &anvil.url,
            "--attempts",
            "30",
            "--json",
        ])
        .env_remove("PROVDB_DATA")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let it anchor a few batches, then take the node away for a while.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let last = anvil.cast(&["call", &registry, "lastSequence()(uint64)"]);
        if stdout(&last).trim().parse::<u64>().unwrap_or(0) >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "sync anchored nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        sync.try_wait().unwrap().is_none(),
        "the restart must come mid-sync"
    );
    anvil.restart(Duration::from_millis(1500));
    let finished = sync.wait_with_output().unwrap();
    assert!(
        finished.status.success(),
        "sync across the restart: {}",
        stderr(&finished)
    );
    let status = json(&ok(chain(&data, &anvil, &["status", "--json"])));
    assert_eq!(status["pending_batches"], 0, "{status}");
    assert_eq!(status["epochs"][0]["state"], "synced", "{status}");
    let again = json(&ok(chain(
        &data,
        &anvil,
        &["sync", "--key", &operator, "--json"],
    )));
    assert!(
        again["batches_anchored"].as_array().unwrap().is_empty(),
        "{again}"
    );
    // Every batch is on the chain that survived the restart (status: no pending batch, read
    // from the registry's last anchored sequence; the contract refuses a batch out of order or
    // twice). Events are only bounded: anvil's state file keeps the contracts' state across the
    // restart, not always the logs of the blocks mined before it.
    let logs = anvil.cast_ok(&[
        "logs",
        "--from-block",
        "0",
        "--address",
        &registry,
        "BatchAnchored(uint32 indexed,uint64,uint64,bytes32,uint32)",
        "--json",
    ]);
    let logs: serde_json::Value = serde_json::from_str(&logs).unwrap();
    assert!(
        logs.as_array().unwrap().len() as u64 <= batches,
        "no batch anchored twice"
    );
}
