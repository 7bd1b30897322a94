//! The distributor in ERC-20 mode, end to end on a real anvil: OpenZeppelin's ERC-20 (the
//! test-only `chain/contracts/test/TestToken.sol`, compiled from the pinned npm
//! `@openzeppelin/contracts`) deployed with cast, the distributor deployed for it
//! (`provdb chain deploy --token`), a user's approve + depositToken (`provdb chain deposit`),
//! the credit, an answer charged to it, an epoch, a contributor's claim paid in tokens, and
//! the user's refund of the rest claimed the same way. Every balance is read with cast.

use crate::anvil::*;
use crate::common::*;
use crate::ledger_check::{payment, synthetic_answer};

#[test]
fn erc20_mode_takes_deposits_and_pays_claims_and_refunds_in_the_token() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let operator = key_file(&anvil.keys[0]);
    let (user, user_key) = (anvil.accounts[1].clone(), key_file(&anvil.keys[1]));
    let contributor = anvil.accounts[3].clone();

    let token = create_test_contract(&anvil, "TestToken", &[]);
    let minted: u128 = 1_000_000_000_000_000_000_000;
    ok(anvil.cast(&[
        "send",
        &token,
        "mint(address,uint256)",
        &user,
        &minted.to_string(),
        "--private-key",
        &anvil.keys[0],
    ]));

    // An address without code is no token.
    let no_token = chain(
        &data,
        &anvil,
        &[
            "deploy",
            "--rpc",
            &anvil.url,
            "--key-file",
            &operator,
            "--token",
            &anvil.accounts[9],
        ],
    );
    assert_eq!(no_token.status.code(), Some(1), "{}", stderr(&no_token));
    assert!(
        stderr(&no_token).contains("no contract"),
        "{}",
        stderr(&no_token)
    );
    let deployed = deploy_for_token(&data, &anvil, &token);
    let distributor = deployed["distributor"].as_str().unwrap().to_string();
    assert_eq!(
        deployed["token"].as_str().unwrap().to_lowercase(),
        token.to_lowercase()
    );
    let asset = anvil.cast_ok(&["call", &distributor, "token()(address)"]);
    assert_eq!(asset.to_lowercase(), token.to_lowercase());

    // ETH is refused in ERC-20 mode (straight to the contract).
    let eth = anvil.cast(&[
        "send",
        &distributor,
        "deposit(address)",
        &user,
        "--value",
        "1000",
        "--private-key",
        &anvil.keys[1],
    ]);
    assert!(!eth.status.success());
    assert!(
        stderr(&eth).contains(&anvil.selector("WrongAsset(address)")),
        "{}",
        stderr(&eth)
    );

    // The user deposits 10^18 token units for itself: approve, then depositToken.
    let amount: u128 = 1_000_000_000_000_000_000;
    let deposit = json(&ok(chain(
        &data,
        &anvil,
        &[
            "deposit",
            &user,
            &amount.to_string(),
            "--key-file",
            &user_key,
            "--json",
        ],
    )));
    assert!(deposit["approve_tx"].is_string(), "{deposit}");
    assert_eq!(deposit["amount_wei"], amount.to_string());
    assert_eq!(token_balance(&anvil, &token, &distributor), amount);
    assert_eq!(token_balance(&anvil, &token, &user), minted - amount);
    assert_eq!(
        anvil.read_u128(&distributor, "totalDeposited()(uint128)", &[]),
        amount
    );
    assert_eq!(anvil.balance(&distributor), 0, "no ETH in ERC-20 mode");

    let synced = json(&ok(chain(
        &data,
        &anvil,
        &["sync", "--key-file", &operator, "--json"],
    )));
    assert_eq!(
        synced["deposits_credited"].as_array().unwrap().len(),
        1,
        "{synced}"
    );

    // An answer charged to the user pays the contributor 3 * 10^17.
    let fee: u128 = 300_000_000_000_000_000;
    {
        let store = open_store(&data);
        assert_eq!(store.account(&address(&user)).unwrap().balance_wei, amount);
        let mut answer = synthetic_answer(
            "erc20",
            1_700_000_000_000,
            vec![payment(address(&contributor), fee, 1_000_000)],
        );
        answer.record.caller = Some(address(&user));
        store.append_answers(vec![answer]).unwrap();
        assert_eq!(
            store.account(&address(&user)).unwrap().balance_wei,
            amount - fee,
            "the balance drops by exactly the fee"
        );
        let credited = store.deposits().unwrap();
        assert_eq!(credited.len(), 1);
        assert_eq!(credited[0].deposit.amount_wei, amount);
    }
    ok(provdb(&data, &["epoch", "close"]));
    let synced = json(&ok(chain(
        &data,
        &anvil,
        &["sync", "--key-file", &operator, "--json"],
    )));
    assert_eq!(synced["epochs_posted"][0]["total_wei"], fee.to_string());
    let claimer = key_file(&anvil.keys[5]);
    let claim = json(&ok(chain(
        &data,
        &anvil,
        &["claim", &contributor, "--key-file", &claimer, "--json"],
    )));
    assert_eq!(claim["paid_wei"], fee.to_string());
    assert_eq!(token_balance(&anvil, &token, &contributor), fee);

    // The user takes the rest back: a refund payout, claimed in tokens after the next epoch.
    ok(provdb(&data, &["account", "refund", &user]));
    assert_eq!(
        json(&ok(provdb(&data, &["account", "show", &user, "--json"])))["balance_wei"],
        "0"
    );
    ok(provdb(&data, &["epoch", "close"]));
    ok(chain(&data, &anvil, &["sync", "--key-file", &operator]));
    let refund = json(&ok(chain(
        &data,
        &anvil,
        &["claim", &user, "--key-file", &claimer, "--json"],
    )));
    assert_eq!(refund["paid_wei"], (amount - fee).to_string());
    assert_eq!(token_balance(&anvil, &token, &user), minted - fee);

    // Everything that came in went out, never more.
    assert_eq!(token_balance(&anvil, &token, &distributor), 0);
    assert_eq!(
        anvil.read_u128(&distributor, "totalClaimed()(uint128)", &[]),
        amount
    );
    let status = json(&ok(chain(&data, &anvil, &["status", "--json"])));
    let money = &status["deposits"];
    assert_eq!(
        money["asset"].as_str().unwrap().to_lowercase(),
        token.to_lowercase()
    );
    assert_eq!(money["total_deposited_wei"], amount.to_string(), "{status}");
    assert_eq!(money["total_claimed_wei"], amount.to_string(), "{status}");
    assert_eq!(money["balance_wei"], "0", "{status}");
    assert_eq!(money["payouts_within_deposits"], true, "{status}");
}
