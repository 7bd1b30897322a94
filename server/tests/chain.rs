//! `provdb chain deploy|sync|status|claim` against a real anvil (npm
//! `@foundry-rs/anvil-linux-amd64`, pinned by scripts/chain-tools.sh), with `cast` (npm
//! `@foundry-rs/cast-linux-amd64`) as the outside reader and as the sender of the transactions
//! provdb itself never sends (a forged proof, an epoch out of order). Ledger entries are
//! appended through the storage API (no model needed).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::anvil::*;
use crate::common::*;

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

    let deployed = deploy(&data, &anvil);
    assert_eq!(deployed["chain_id"], 31337);
    let distributor = deployed["distributor"].as_str().unwrap().to_string();
    let again = chain(
        &data,
        &anvil,
        &[
            "deploy",
            "--rpc",
            &anvil.url,
            "--key-file",
            &key_file(operator),
        ],
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
    let trained = crate::anvil::train_tiny_adapter(&data, "aero", contributors[1]);
    let trained_id = trained["id"].as_str().unwrap().to_string();

    // The answers were paid off chain (an admin's credit): the operator backs them on chain.
    let total: u128 = amounts.iter().sum();
    let funded = json(&ok(chain(
        &data,
        &anvil,
        &[
            "fund",
            &total.to_string(),
            "--key-file",
            &key_file(operator),
            "--json",
        ],
    )));
    assert_eq!(funded["total_deposited_wei"], total.to_string(), "{funded}");
    let synced = json(&ok(chain(
        &data,
        &anvil,
        &["sync", "--key-file", &key_file(operator), "--json"],
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
        &["sync", "--key-file", &key_file(operator), "--json"],
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

    // Seen from outside: cast reads the root, the ledger head and the funding.
    let local = json(&ok(provdb(&data, &["epoch", "list", "--json"])));
    let root = anvil.cast_ok(&["call", &distributor, "roots(uint256)(bytes32)", "1"]);
    assert_eq!(root, local[0]["root"].as_str().unwrap());
    let head = anvil.cast_ok(&["call", &distributor, "ledgerHeads(uint256)(bytes32)", "1"]);
    assert_eq!(
        head,
        synced["epochs_posted"][0]["ledger_head"].as_str().unwrap()
    );
    assert_ne!(head, format!("0x{}", "0".repeat(64)));
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
            &["claim", account, "--key-file", &key_file(relayer), "--json"],
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
    let twice = chain(
        &data,
        &anvil,
        &["claim", contributors[0], "--key-file", &key_file(relayer)],
    );
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
        "postEpoch(uint256,bytes32,uint256,bytes32)",
        "3",
        "0x1111111111111111111111111111111111111111111111111111111111111111",
        &total.to_string(),
        "0x2222222222222222222222222222222222222222222222222222222222222222",
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

    // A second epoch owes 5 wei more than was paid in: sync refuses it before sending,
    // naming the shortfall and the command that covers it.
    assert_eq!(pay_and_close(&data, &[(contributors[0], 5)], 2), 2);
    let short = chain(&data, &anvil, &["sync", "--key-file", &key_file(operator)]);
    assert_eq!(short.status.code(), Some(1), "{}", stderr(&short));
    assert!(
        stderr(&short).contains("5 wei short") && stderr(&short).contains("provdb chain fund 5"),
        "{}",
        stderr(&short)
    );
    assert_eq!(
        anvil.read_u128(&distributor, "lastEpoch()(uint64)", &[]),
        1,
        "nothing was posted"
    );
    ok(chain(
        &data,
        &anvil,
        &["fund", "5", "--key-file", &key_file(operator)],
    ));
    let synced = json(&ok(chain(
        &data,
        &anvil,
        &["sync", "--key-file", &key_file(operator), "--json"],
    )));
    assert_eq!(synced["epochs_posted"][0]["epoch"], 2, "{synced}");
    assert_eq!(synced["epochs_posted"][0]["added_wei"], "5", "{synced}");
    let before = anvil.balance(contributors[0]);
    let claim = json(&ok(chain(
        &data,
        &anvil,
        &[
            "claim",
            contributors[0],
            "--key-file",
            &key_file(relayer),
            "--json",
        ],
    )));
    assert_eq!(claim["paid_wei"], "5");
    assert_eq!(anvil.balance(contributors[0]), before + 5);
    let verify = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
    assert_eq!(verify["ok"], true);
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
    let deployed = deploy(&data, &anvil);
    let registry = deployed["registry"].as_str().unwrap().to_string();
    ok(chain(
        &data,
        &anvil,
        &["fund", "5000", "--key-file", &key_file(&operator)],
    ));
    let mut sync = Command::new(env!("CARGO_BIN_EXE_provdb"))
        .arg("--data")
        .arg(&data)
        .args([
            "chain",
            "sync",
            "--key-file",
            &key_file(&operator),
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
        &["sync", "--key-file", &key_file(&operator), "--json"],
    )));
    assert!(
        again["batches_anchored"].as_array().unwrap().is_empty(),
        "{again}"
    );
    // Every batch is on the chain that survived the restart (status: no pending batch, read
    // from the registry's last anchored sequence; the contract refuses a batch out of order or
    // twice). Events are only bounded: anvil's state file keeps the contracts' state across the
    // restart, not always the logs of the blocks mined before it.
    let logs = anvil.event_logs(
        &registry,
        "BatchAnchored(uint32 indexed,uint64,uint64,bytes32,uint32)",
    );
    assert!(logs.len() as u64 <= batches, "no batch anchored twice");
}
