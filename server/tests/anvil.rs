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
use crate::ledger_check::{PAYER, payment, synthetic_answer};

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
    // Exactly what these answers cost, off chain: topping up to u128::MAX every time (as
    // `ledger_check::fund` does) would carry the payer's credited total past 2^128 on the
    // second call.
    let needed: u128 = payments.iter().map(|(_, amount)| amount).sum();
    let balance = store.account(&PAYER).unwrap().balance_wei;
    if balance < needed {
        let source = provdb::storage::CreditSource::Admin {
            by: None,
            reason: "test funds".into(),
        };
        store.credit(PAYER, needed - balance, source, 1).unwrap();
    }
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

/// Deploys the contracts (taking ETH) for `data`, signed by anvil's account 0, the operator;
/// the `chain deploy --json` report (chain_id, distributor, registry, token...).
pub(crate) fn deploy(data: &Path, anvil: &Anvil) -> serde_json::Value {
    deploy_with(data, anvil, &[])
}

/// [`deploy`] of a distributor that takes and pays the ERC-20 `token`.
pub(crate) fn deploy_for_token(data: &Path, anvil: &Anvil, token: &str) -> serde_json::Value {
    deploy_with(data, anvil, &["--token", token])
}

fn deploy_with(data: &Path, anvil: &Anvil, extra: &[&str]) -> serde_json::Value {
    let key = key_file(&anvil.keys[0]);
    let mut args = vec!["deploy", "--rpc", &anvil.url, "--key-file", &key, "--json"];
    args.extend_from_slice(extra);
    json(&ok(chain(data, anvil, &args)))
}

/// Deploys the test contract whose artifact is `chain/artifacts/test/NAME.json` from anvil's
/// account 0, with `constructor` (a signature, then its arguments) when it takes any; its
/// address. (`--create` takes the rest of the line as constructor arguments: the node goes
/// first.)
pub(crate) fn create_test_contract(anvil: &Anvil, name: &str, constructor: &[&str]) -> String {
    let path = repo_root().join(format!("chain/artifacts/test/{name}.json"));
    let artifact: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let bytecode = artifact["bytecode"]["object"].as_str().unwrap();
    let created = json(&ok(Command::new(tool("cast"))
        .args([
            "send",
            "--rpc-url",
            &anvil.url,
            "--private-key",
            &anvil.keys[0],
        ])
        .args(["--json", "--create", bytecode])
        .args(constructor)
        .output()
        .unwrap()));
    created["contractAddress"].as_str().unwrap().to_string()
}

/// `account`'s balance of the ERC-20 `token`, read with cast.
pub(crate) fn token_balance(anvil: &Anvil, token: &str, account: &str) -> u128 {
    anvil.read_u128(token, "balanceOf(address)(uint256)", &[account])
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

impl Anvil {
    /// One JSON-RPC call straight to anvil; its `result` (fails on an error).
    pub(crate) fn rpc(&self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let request =
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response: serde_json::Value = reqwest::blocking::Client::new()
            .post(&self.url)
            .json(&request)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert!(response["error"].is_null(), "{method}: {response}");
        response["result"].clone()
    }

    /// cast without a node (`keccak`, `abi-encode`, `decode-error`): its output, trimmed.
    pub(crate) fn cast_offline(&self, args: &[&str]) -> String {
        let out = Command::new(tool("cast")).args(args).output().unwrap();
        assert!(out.status.success(), "cast {args:?}: {}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    /// Mines `blocks` empty blocks.
    pub(crate) fn mine(&self, blocks: u64) {
        self.rpc("anvil_mine", serde_json::json!([format!("{blocks:#x}")]));
    }

    /// Sends an ETH deposit of `amount` for `account` from `from` (an anvil account, unlocked:
    /// no key needed) without waiting for it to be mined; the transaction hash.
    pub(crate) fn send_deposit(
        &self,
        distributor: &str,
        from: &str,
        account: &str,
        amount: u128,
    ) -> String {
        // `cast sig "deposit(address)"`, spelled out: tests send deposits by the hundred.
        const DEPOSIT_SELECTOR: &str = "f340fa01";
        let data = format!(
            "0x{DEPOSIT_SELECTOR}{:0>64}",
            account.trim_start_matches("0x").to_lowercase()
        );
        let tx = serde_json::json!({
            "from": from,
            "to": distributor,
            "value": format!("{amount:#x}"),
            "data": data,
        });
        self.rpc("eth_sendTransaction", serde_json::json!([tx]))
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A `uint256` (or smaller) view of `contract`, read with cast.
    pub(crate) fn read_u128(&self, contract: &str, signature: &str, args: &[&str]) -> u128 {
        let mut all = vec!["call", contract, signature];
        all.extend_from_slice(args);
        let out = self.cast_ok(&all);
        // cast prints big numbers as "123 [1.23e2]".
        out.split_whitespace().next().unwrap().parse().unwrap()
    }
}

/// `Deposited(uint256 indexed depositId, address indexed account, address indexed from,
/// uint256 amount)`, as cast reads it.
pub(crate) const DEPOSITED: &str =
    "Deposited(uint256 indexed,address indexed,address indexed,uint256)";
/// `EpochPosted(uint256 indexed epoch, bytes32 root, uint256 total, bytes32 ledgerHead)`.
pub(crate) const EPOCH_POSTED: &str = "EpochPosted(uint256 indexed,bytes32,uint256,bytes32)";

/// A deposit as its event shows it, read by cast (a reader provdb did not write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChainDeposit {
    pub(crate) id: u64,
    pub(crate) account: String,
    pub(crate) from: String,
    pub(crate) amount: u128,
}

/// Every `Deposited` event of `distributor`, in id order (each id once).
pub(crate) fn chain_deposits(anvil: &Anvil, distributor: &str) -> Vec<ChainDeposit> {
    let topic_address = |t: &serde_json::Value| {
        format!("0x{}", &t.as_str().unwrap().trim_start_matches("0x")[24..])
    };
    let mut deposits: Vec<ChainDeposit> = anvil
        .event_logs(distributor, DEPOSITED)
        .iter()
        .map(|log| {
            let topics = &log["topics"];
            let id = u64::from_str_radix(
                &topics[1].as_str().unwrap().trim_start_matches("0x")[48..],
                16,
            )
            .unwrap();
            let amount = u128::from_str_radix(
                &log["data"].as_str().unwrap().trim_start_matches("0x")[32..],
                16,
            )
            .unwrap();
            ChainDeposit {
                id,
                account: topic_address(&topics[2]),
                from: topic_address(&topics[3]),
                amount,
            }
        })
        .collect();
    deposits.sort_by_key(|d| d.id);
    let ids: Vec<u64> = deposits.iter().map(|d| d.id).collect();
    assert_eq!(
        ids,
        (0..deposits.len() as u64).collect::<Vec<_>>(),
        "deposit ids run from 0, each once"
    );
    deposits
}

/// The storage of the database in `data`, opened for reading and writing (the binary must not
/// be running).
pub(crate) fn open_store(data: &Path) -> Store {
    Store::open(
        data.join("storage"),
        StoreOptions {
            sync_writes: false,
            create_if_missing: false,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

/// Checks that the deposits credited in `data` are `on_chain`'s, each once, to the account its
/// event names: one stored deposit and one credit entry per id, each account credited exactly
/// the sum of its stored deposits. Returns how many are credited.
pub(crate) fn check_credited_once(data: &Path, on_chain: &[ChainDeposit]) -> usize {
    use provdb::storage::{CreditSource, EntryDetail, Role};
    let store = open_store(data);
    let stored = store.deposits().unwrap();
    let mut per_account: std::collections::BTreeMap<String, u128> = Default::default();
    for credited in &stored {
        let deposit = &credited.deposit;
        let id = deposit.key.deposit_id as usize;
        let chain = on_chain
            .get(id)
            .unwrap_or_else(|| panic!("deposit {id} is credited but not on chain"));
        assert_eq!(
            deposit.account.to_string().to_lowercase(),
            chain.account.to_lowercase(),
            "deposit {id} credits the account its event names"
        );
        assert_eq!(deposit.amount_wei, chain.amount, "deposit {id}'s amount");
        *per_account.entry(chain.account.to_lowercase()).or_default() += deposit.amount_wei;
    }
    // Every deposit's credit entry names it, and no deposit has two.
    let mut credit_entries = std::collections::BTreeSet::new();
    store
        .visit_ledger(1, &mut |entry| {
            if entry.payment.role == Role::Credit
                && let EntryDetail::Credit(CreditSource::Deposit(deposit)) = &entry.detail
            {
                assert!(
                    credit_entries.insert(deposit.key.deposit_id),
                    "deposit {} has two credit entries",
                    deposit.key.deposit_id
                );
            }
            Ok(true)
        })
        .unwrap();
    assert_eq!(
        credit_entries.len(),
        stored.len(),
        "one credit entry per deposit"
    );
    for (account, sum) in &per_account {
        let state = store.account(&address(account)).unwrap();
        assert!(
            state.credited_wei >= *sum,
            "{account} credited with its deposits"
        );
        if state.credited_wei != *sum {
            // Only an account funded off chain too (the synthetic payer) gets more.
            assert_eq!(
                account,
                &crate::ledger_check::PAYER.to_string().to_lowercase()
            );
        }
    }
    stored.len()
}
