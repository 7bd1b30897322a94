//! Money in on chain, against a real anvil: `provdb chain deposit` from a user's own key,
//! credited by `provdb chain sync` once per deposit after its confirmations, to the account
//! its event names; `provdb chain fund` for credits given off chain; the distributor's refusal
//! of an epoch above what came in (read by `cast`, bypassing provdb's own check), and of a
//! claim above what was posted. Each attack asserts the attacker gains nothing.

use crate::anvil::*;
use crate::common::*;

/// 0.05 ether, in wei.
const DEPOSIT_WEI: u128 = 50_000_000_000_000_000;

fn account_wei(data: &std::path::Path, account: &str, field: &str) -> u128 {
    let shown = json(&ok(provdb(data, &["account", "show", account, "--json"])));
    shown[field].as_str().unwrap().parse().unwrap()
}

/// A database with the contracts deployed by anvil's account 0; the distributor's address.
fn deployed(anvil: &Anvil, data: &std::path::Path) -> String {
    ok(provdb(data, &["init"]));
    let deployed = deploy(data, anvil);
    assert_eq!(deployed["token"], serde_json::Value::Null, "ETH by default");
    deployed["distributor"].as_str().unwrap().to_string()
}

#[test]
fn a_deposit_credits_the_account_its_event_names_once_after_its_confirmations() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    let distributor = deployed(&anvil, &data);
    let operator = key_file(&anvil.keys[0]);
    let (payer, payer_key) = (&anvil.accounts[1], key_file(&anvil.keys[1]));
    let beneficiary = &anvil.accounts[2];

    // The payer deposits for another account from its own key.
    let deposit = json(&ok(chain(
        &data,
        &anvil,
        &[
            "deposit",
            beneficiary,
            &DEPOSIT_WEI.to_string(),
            "--key-file",
            &payer_key,
            "--json",
        ],
    )));
    assert_eq!(deposit["deposit_id"], 0, "{deposit}");
    assert_eq!(deposit["asset"], "ETH", "{deposit}");
    assert_eq!(deposit["amount_wei"], DEPOSIT_WEI.to_string());

    // cast reads it: the counters and the event.
    assert_eq!(
        anvil.read_u128(&distributor, "nextDepositId()(uint64)", &[]),
        1
    );
    assert_eq!(
        anvil.read_u128(&distributor, "totalDeposited()(uint128)", &[]),
        DEPOSIT_WEI
    );
    let on_chain = chain_deposits(&anvil, &distributor);
    assert_eq!(on_chain.len(), 1);
    assert_eq!(
        on_chain[0].account.to_lowercase(),
        beneficiary.to_lowercase()
    );
    assert_eq!(on_chain[0].from.to_lowercase(), payer.to_lowercase());
    assert_eq!(on_chain[0].amount, DEPOSIT_WEI);
    assert_eq!(anvil.balance(&distributor), DEPOSIT_WEI);

    // With 3 confirmations asked, a deposit in the latest block waits.
    let early = json(&ok(chain(
        &data,
        &anvil,
        &[
            "sync",
            "--key-file",
            &operator,
            "--confirmations",
            "3",
            "--json",
        ],
    )));
    assert!(
        early["deposits_credited"].as_array().unwrap().is_empty(),
        "{early}"
    );
    assert_eq!(early["deposits_unconfirmed"], 1, "{early}");
    assert_eq!(account_wei(&data, beneficiary, "balance_wei"), 0);
    let zero = chain(
        &data,
        &anvil,
        &["sync", "--key-file", &operator, "--confirmations", "0"],
    );
    assert_eq!(zero.status.code(), Some(1), "0 confirmations is refused");

    anvil.mine(2);
    let synced = json(&ok(chain(
        &data,
        &anvil,
        &[
            "sync",
            "--key-file",
            &operator,
            "--confirmations",
            "3",
            "--json",
        ],
    )));
    let credited = synced["deposits_credited"].as_array().unwrap();
    assert_eq!(credited.len(), 1, "{synced}");
    assert_eq!(
        credited[0]["account"].as_str().unwrap().to_lowercase(),
        beneficiary.to_lowercase()
    );
    assert_eq!(synced["chain_deposits"], 1, "{synced}");
    // The account the event names is credited, not the sender.
    assert_eq!(account_wei(&data, beneficiary, "balance_wei"), DEPOSIT_WEI);
    assert_eq!(account_wei(&data, beneficiary, "credited_wei"), DEPOSIT_WEI);
    assert_eq!(account_wei(&data, payer, "credited_wei"), 0);

    // A re-sync, and one that lost its scan cursor (it reads every event again), credit
    // nothing twice.
    let again = json(&ok(chain(
        &data,
        &anvil,
        &["sync", "--key-file", &operator, "--json"],
    )));
    assert!(
        again["deposits_credited"].as_array().unwrap().is_empty(),
        "{again}"
    );
    let mut state = provdb_chain::ChainState::load(&data).unwrap();
    assert!(state.deposits_scanned_block.is_some());
    state.deposits_scanned_block = None;
    state.save(&data).unwrap();
    let replayed = json(&ok(chain(
        &data,
        &anvil,
        &["sync", "--key-file", &operator, "--json"],
    )));
    assert!(
        replayed["deposits_credited"].as_array().unwrap().is_empty(),
        "{replayed}"
    );
    assert_eq!(account_wei(&data, beneficiary, "credited_wei"), DEPOSIT_WEI);
    assert_eq!(check_credited_once(&data, &on_chain), 1);

    let status = json(&ok(chain(&data, &anvil, &["status", "--json"])));
    let deposits = &status["deposits"];
    assert_eq!(deposits["chain_deposits"], 1, "{status}");
    assert_eq!(deposits["credited_deposits"], 1, "{status}");
    assert_eq!(
        deposits["credited_wei"],
        DEPOSIT_WEI.to_string(),
        "{status}"
    );
    assert_eq!(deposits["payouts_within_deposits"], true, "{status}");

    // Nothing, or nobody, is refused before anything is sent.
    for (account, amount) in [
        (beneficiary.as_str(), "0"),
        ("0x0000000000000000000000000000000000000000", "5"),
    ] {
        let refused = chain(
            &data,
            &anvil,
            &["deposit", account, amount, "--key-file", &payer_key],
        );
        assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    }
    let with_key = chain(
        &data,
        &anvil,
        &["deposit", beneficiary, "5", "--key", &anvil.keys[1]],
    );
    assert_eq!(with_key.status.code(), Some(1));
    assert!(stderr(&with_key).contains("--key is not accepted"));
    assert_eq!(
        anvil.read_u128(&distributor, "nextDepositId()(uint64)", &[]),
        1,
        "no refused deposit reached the chain"
    );
}

#[test]
fn an_epoch_above_deposits_is_refused_by_sync_and_by_the_contract_and_only_the_operator_posts() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    let distributor = deployed(&anvil, &data);
    let operator = key_file(&anvil.keys[0]);
    let contributor = anvil.accounts[3].clone();
    ok(chain(
        &data,
        &anvil,
        &[
            "deposit",
            &anvil.accounts[1],
            "1000",
            "--key-file",
            &key_file(&anvil.keys[1]),
        ],
    ));
    // The synthetic answers are paid from an off-chain credit: 1,500 wei owed, 1,000 paid in.
    assert_eq!(pay_and_close(&data, &[(&contributor, 1_500)], 1), 1);
    let short = chain(&data, &anvil, &["sync", "--key-file", &operator]);
    assert_eq!(short.status.code(), Some(1), "{}", stderr(&short));
    let message = stderr(&short);
    assert!(
        message.contains("500 wei short") && message.contains("provdb chain fund 500"),
        "{message}"
    );
    // The deposit was credited all the same; nothing was posted.
    assert_eq!(account_wei(&data, &anvil.accounts[1], "balance_wei"), 1000);
    assert_eq!(anvil.read_u128(&distributor, "lastEpoch()(uint64)", &[]), 0);

    // Straight to the contract, bypassing provdb's check: EpochExceedsDeposits.
    let root = "0x1111111111111111111111111111111111111111111111111111111111111111";
    let head = "0x2222222222222222222222222222222222222222222222222222222222222222";
    let post = "postEpoch(uint256,bytes32,uint256,bytes32)";
    let over = anvil.cast(&[
        "send",
        &distributor,
        post,
        "1",
        root,
        "1500",
        head,
        "--private-key",
        &anvil.keys[0],
    ]);
    assert!(!over.status.success());
    let exceeds = anvil.selector("EpochExceedsDeposits(uint256,uint256)");
    assert!(stderr(&over).contains(&exceeds), "{}", stderr(&over));
    let decoded = anvil.cast_offline(&[
        "decode-error",
        "--sig",
        "EpochExceedsDeposits(uint256,uint256)",
        &format!("0x{exceeds}{:064x}{:064x}", 1500u32, 1000u32),
    ]);
    assert!(
        decoded.contains("1500") && decoded.contains("1000"),
        "{decoded}"
    );

    // Nobody but the operator posts, even within the deposits.
    let stranger = anvil.cast(&[
        "send",
        &distributor,
        post,
        "1",
        root,
        "10",
        head,
        "--private-key",
        &anvil.keys[5],
    ]);
    assert!(!stranger.status.success());
    let not_operator = anvil.selector("NotOperator(address)");
    assert!(
        stderr(&stranger).contains(&not_operator),
        "{}",
        stderr(&stranger)
    );
    assert_eq!(anvil.read_u128(&distributor, "lastEpoch()(uint64)", &[]), 0);

    // Funding the shortfall (the operator backs the off-chain credit) lets the epoch through,
    // with its ledger head.
    let funded = json(&ok(chain(
        &data,
        &anvil,
        &["fund", "500", "--key-file", &operator, "--json"],
    )));
    assert_eq!(funded["total_deposited_wei"], "1500", "{funded}");
    let synced = json(&ok(chain(
        &data,
        &anvil,
        &["sync", "--key-file", &operator, "--json"],
    )));
    let posted = &synced["epochs_posted"][0];
    assert_eq!(posted["total_wei"], "1500", "{synced}");
    let on_chain_head =
        anvil.cast_ok(&["call", &distributor, "ledgerHeads(uint256)(bytes32)", "1"]);
    assert_eq!(on_chain_head, posted["ledger_head"].as_str().unwrap());
    let logs = anvil.event_logs(&distributor, EPOCH_POSTED);
    assert_eq!(logs.len(), 1);
    let data_hex = logs[0]["data"].as_str().unwrap().trim_start_matches("0x");
    assert_eq!(
        format!("0x{}", &data_hex[128..192]),
        on_chain_head,
        "the event carries the ledger head"
    );
    // `Funded` credits nobody: only the deposit is in the accounts.
    assert_eq!(
        anvil
            .event_logs(&distributor, "Funded(address indexed,uint256)")
            .len(),
        1
    );
    let status = json(&ok(chain(&data, &anvil, &["status", "--json"])));
    assert_eq!(status["deposits"]["credited_wei"], "1000", "{status}");
    assert_eq!(
        status["deposits"]["total_deposited_wei"], "1500",
        "{status}"
    );
    assert_eq!(status["deposits"]["total_owed_wei"], "1500", "{status}");

    // The contributor claims, cast reads it.
    let before = anvil.balance(&contributor);
    let claim = json(&ok(chain(
        &data,
        &anvil,
        &[
            "claim",
            &contributor,
            "--key-file",
            &key_file(&anvil.keys[6]),
            "--json",
        ],
    )));
    assert_eq!(claim["paid_wei"], "1500");
    assert_eq!(anvil.balance(&contributor), before + 1500);
    assert_eq!(
        anvil.read_u128(&distributor, "claimed(address)(uint256)", &[&contributor]),
        1500
    );
    assert_eq!(
        anvil.read_u128(&distributor, "totalClaimed()(uint128)", &[]),
        1500
    );
    let claims = anvil.event_logs(
        &distributor,
        "Claimed(uint256 indexed,address indexed,uint256,uint256)",
    );
    assert_eq!(claims.len(), 1);
    assert_eq!(anvil.balance(&distributor), 0);
}

#[test]
fn claims_never_exceed_what_was_posted_even_under_a_forged_root() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    let distributor = deployed(&anvil, &data);
    let operator = anvil.keys[0].as_str();
    // 10,000 wei came in; the honest epoch owes 100 of it.
    ok(chain(
        &data,
        &anvil,
        &[
            "deposit",
            &anvil.accounts[1],
            "10000",
            "--key-file",
            &key_file(&anvil.keys[1]),
        ],
    ));
    assert_eq!(pay_and_close(&data, &[(&anvil.accounts[3], 100)], 1), 1);
    ok(chain(
        &data,
        &anvil,
        &["sync", "--key-file", &key_file(operator)],
    ));

    // A root whose single leaf pays an attacker 5,000 wei, posted (by a careless or captured
    // operator) as epoch 2 with no more owed: the claim is refused, since claims may never
    // pass the posted total.
    let attacker = anvil.accounts[7].clone();
    let leaf = anvil.cast_offline(&[
        "keccak",
        &anvil.cast_offline(&[
            "keccak",
            &anvil.cast_offline(&["abi-encode", "f(address,uint256)", &attacker, "5000"]),
        ]),
    ]);
    ok(anvil.cast(&[
        "send",
        &distributor,
        "postEpoch(uint256,bytes32,uint256,bytes32)",
        "2",
        &leaf,
        "100",
        &leaf,
        "--private-key",
        operator,
    ]));
    let before = anvil.balance(&attacker);
    let claim = anvil.cast(&[
        "send",
        &distributor,
        "claim(uint256,address,uint256,bytes32[])",
        "2",
        &attacker,
        "5000",
        "[]",
        "--private-key",
        &anvil.keys[8],
    ]);
    assert!(!claim.status.success());
    let exceeds = anvil.selector("ClaimsExceedPosted(uint256,uint256,uint256)");
    assert!(stderr(&claim).contains(&exceeds), "{}", stderr(&claim));
    assert_eq!(
        anvil.balance(&attacker),
        before,
        "the attacker gained nothing"
    );
    assert_eq!(
        anvil.balance(&distributor),
        10_000,
        "the victim lost nothing"
    );
    assert_eq!(
        anvil.read_u128(&distributor, "totalClaimed()(uint128)", &[]),
        0
    );
    // provdb sees the chain diverge from its ledger and posts nothing more.
    let status = json(&ok(chain(&data, &anvil, &["status", "--json"])));
    assert_eq!(status["chain_last_epoch"], 2, "{status}");
    let sync = chain(&data, &anvil, &["sync", "--key-file", &key_file(operator)]);
    assert_eq!(sync.status.code(), Some(2), "{}", stderr(&sync));
    assert!(stderr(&sync).contains("diverge"), "{}", stderr(&sync));
}
