//! Money and the ledger on chain against the ledger here, on a real anvil:
//! - a random run of deposits (from anvil accounts' own ETH; in a second run, x402 payments:
//!   EIP-3009 authorizations of a token settled as deposits), syncs, answers at random fees,
//!   refunds, epoch closes and claims, with the conservation invariants checked after every
//!   step: the distributor holds exactly deposits − claims paid (its ETH or token balance, its
//!   counters read by `cast`), Σ credits = Σ balances + Σ charges, Σ charges = Σ
//!   payouts, every epoch's total ≤ Σ deposits, and no claim pays more than its epoch owes;
//! - a ledger rewritten whole (self-consistent: `ledger verify` passes) is caught by
//!   `provdb chain verify` against the heads an earlier sync posted, and pays its forger
//!   nothing.
//!
//! The run's seed is printed; `PROVDB_SEED` replays one.

use std::path::Path;

use provdb::storage::{CreditSource, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::anvil::*;
use crate::common::*;
use crate::ledger_check::{payment, synthetic_answer};

/// Steps in one random run.
const STEPS: usize = 80;

/// What the run sent and was paid, as the test counts it (not as provdb reports it).
#[derive(Default)]
struct Expected {
    deposited: u128,
    claimed: u128,
    answers: u64,
}

fn account_balance(store: &Store, account: &str) -> u128 {
    store.account(&address(account)).unwrap().balance_wei
}

/// One answer charged to `payer` (its whole fee split among 1-3 of `payees`).
fn answer(store: &Store, rng: &mut StdRng, payer: &str, payees: &[String], n: u64) {
    let balance = account_balance(store, payer);
    let fee = rng.random_range(1..=balance.min(2_000_000));
    let parts = rng.random_range(1..=3u128).min(fee);
    let mut entries = Vec::new();
    let mut left = fee;
    for part in 0..parts {
        let amount = if part + 1 == parts {
            left
        } else {
            rng.random_range(1..=left - (parts - part - 1))
        };
        left -= amount;
        let to = &payees[rng.random_range(0..payees.len())];
        entries.push(payment(address(to), amount, 1_000_000 / parts as u32));
    }
    let mut answer = synthetic_answer(&format!("conservation {n}"), 1_700_000_000_000, entries);
    answer.record.caller = Some(address(payer));
    store.append_answers(vec![answer]).unwrap();
}

/// What the distributor takes: ETH deposits, or an EIP-3009 token paid in by x402
/// authorizations settled as deposits (`provdb_chain::settle_authorization`).
enum Money {
    Eth,
    X402 {
        token: String,
        domain: provdb_chain::TokenDomain,
    },
}

impl Money {
    /// What `account` holds of the asset.
    fn held(&self, anvil: &Anvil, account: &str) -> u128 {
        match self {
            Self::Eth => anvil.balance(account),
            Self::X402 { token, .. } => token_balance(anvil, token, account),
        }
    }

    /// Pays `amount` in for anvil account `from` (its own key signs an x402 authorization).
    fn deposit(&self, anvil: &Anvil, data: &Path, distributor: &str, from: usize, amount: u128) {
        let Self::X402 { domain, .. } = self else {
            let account = &anvil.accounts[from];
            anvil.send_deposit(distributor, account, account, amount);
            return;
        };
        let auth = provdb_chain::TransferAuthorization {
            from: address(&anvil.accounts[from]),
            to: address(distributor),
            value: amount,
            valid_after: 0,
            valid_before: u64::MAX / 2,
            nonce: rand::random(),
        };
        let signature = provdb_chain::sign_authorization(domain, &auth, &anvil.keys[from]).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let settled = runtime
            .block_on(provdb_chain::settle_authorization(
                &open_store(data),
                data,
                &anvil.keys[8],
                None,
                provdb_chain::RetryPolicy::default(),
                &auth,
                &signature,
                1,
            ))
            .unwrap();
        assert!(settled.credited && settled.amount_wei == amount);
    }
}

/// Checks every invariant, on chain and here.
fn check_invariants(
    money: &Money,
    anvil: &Anvil,
    data: &Path,
    distributor: &str,
    expected: &Expected,
) {
    assert_eq!(
        money.held(anvil, distributor),
        expected.deposited - expected.claimed,
        "the distributor holds deposits - claims paid"
    );
    let read = |signature: &str| anvil.read_u128(distributor, signature, &[]);
    assert_eq!(read("totalDeposited()(uint128)"), expected.deposited);
    assert_eq!(read("totalClaimed()(uint128)"), expected.claimed);
    let posted = read("lastTotal()(uint128)");
    assert!(expected.claimed <= posted && posted <= expected.deposited);

    let store = open_store(data);
    let (mut credited, mut balances, mut charged) = (0u128, 0u128, 0u128);
    for (_, state) in store.accounts().unwrap() {
        credited += state.credited_wei;
        balances += state.balance_wei;
        charged += state.charged_wei;
    }
    assert_eq!(
        credited,
        balances + charged,
        "Σ credits = Σ balances + Σ charges"
    );
    assert_eq!(
        charged,
        store.ledger_total_wei().unwrap(),
        "Σ charges = Σ payouts"
    );
    let deposits: u128 = store
        .deposits()
        .unwrap()
        .iter()
        .map(|d| d.deposit.amount_wei)
        .sum();
    assert_eq!(credited, deposits, "every credit here is a deposit");
    for epoch in store.epochs().unwrap() {
        assert!(epoch.total_wei <= deposits, "epoch {}", epoch.epoch);
    }
    assert!(store.verify_ledger().unwrap().broken.is_none());
}

/// What `account` may still claim from the last epoch on chain: (that epoch's cumulative
/// amount − claimed on chain), None when it has no leaf or nothing is posted.
fn claimable(anvil: &Anvil, data: &Path, distributor: &str, account: &str) -> Option<u128> {
    let epoch = anvil.read_u128(distributor, "lastEpoch()(uint64)", &[]) as u64;
    if epoch == 0 {
        return None;
    }
    let cumulative = open_store(data)
        .epoch_tree(epoch)
        .unwrap()
        .amount(&address(account))?;
    let claimed = anvil.read_u128(distributor, "claimed(address)(uint256)", &[account]);
    Some(cumulative - claimed)
}

/// A new anvil and database with the contracts deployed (ETH): (anvil, its directory, the data
/// directory, the distributor).
fn deployed() -> (Anvil, tempfile::TempDir, std::path::PathBuf, String) {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let distributor = deploy(&data, &anvil)["distributor"]
        .as_str()
        .unwrap()
        .to_string();
    (anvil, dir, data, distributor)
}

#[test]
fn a_random_run_of_deposits_answers_refunds_epochs_and_claims_conserves_money() {
    let (anvil, _dir, data, distributor) = deployed();
    random_run(&Money::Eth, &anvil, &data, &distributor, STEPS);
}

#[test]
fn a_random_run_paid_in_by_x402_authorizations_conserves_the_token() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let token = crate::x402_fixture::deploy_token(&anvil, "provdb test dollar", "1");
    for payer in 1..4 {
        crate::x402_fixture::mint(&anvil, &token, &anvil.accounts[payer], u128::from(u64::MAX));
    }
    let distributor = deploy_for_token(&data, &anvil, &token)["distributor"]
        .as_str()
        .unwrap()
        .to_string();
    let domain = provdb_chain::TokenDomain {
        name: "provdb test dollar".into(),
        version: "1".into(),
        chain_id: 31337,
        token: address(&token),
    };
    let money = Money::X402 { token, domain };
    random_run(&money, &anvil, &data, &distributor, STEPS / 2);
}

/// `steps` random steps over `money`, every invariant checked after each.
fn random_run(money: &Money, anvil: &Anvil, data: &Path, distributor: &str, steps_to_run: usize) {
    let seed = std::env::var("PROVDB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("PROVDB_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let operator = key_file(&anvil.keys[0]);
    let gas_payer = key_file(&anvil.keys[9]);
    let payers: Vec<String> = anvil.accounts[1..4].to_vec();
    let payees: Vec<String> = anvil.accounts[4..7].to_vec();
    let mut expected = Expected::default();
    let mut steps = [0usize; 6];

    for _ in 0..steps_to_run {
        let step = rng.random_range(0..6usize);
        match step {
            0 => {
                let from = rng.random_range(1..4usize);
                let amount = rng.random_range(1..=5_000_000u128);
                money.deposit(anvil, data, distributor, from, amount);
                expected.deposited += amount;
            }
            1 => {
                ok(chain(data, anvil, &["sync", "--key-file", &operator]));
            }
            2 => {
                let store = open_store(data);
                let Some(payer) = payers.iter().find(|p| account_balance(&store, p) > 0) else {
                    continue;
                };
                answer(&store, &mut rng, payer, &payees, expected.answers);
                expected.answers += 1;
            }
            3 => {
                let payer = &payers[rng.random_range(0..payers.len())];
                if account_balance(&open_store(data), payer) == 0 {
                    continue;
                }
                ok(provdb(data, &["account", "refund", payer]));
            }
            4 => {
                // Refused (and nothing written) when no one is owed anything new.
                let _ = open_store(data).close_epoch(1_700_000_000_000);
            }
            _ => {
                let everyone: Vec<&String> = payers.iter().chain(&payees).collect();
                let account = everyone[rng.random_range(0..everyone.len())];
                let Some(owed) = claimable(anvil, data, distributor, account) else {
                    continue;
                };
                let before = money.held(anvil, account);
                let claim = chain(
                    data,
                    anvil,
                    &["claim", account, "--key-file", &gas_payer, "--json"],
                );
                if owed == 0 {
                    // A second claim of the same balance is refused and pays nothing.
                    assert_eq!(claim.status.code(), Some(1), "{}", stderr(&claim));
                    assert_eq!(money.held(anvil, account), before);
                    continue;
                }
                let paid: u128 = json(&ok(claim))["paid_wei"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(paid, owed);
                assert_eq!(money.held(anvil, account), before + paid);
                expected.claimed += paid;
            }
        }
        steps[step] += 1;
        check_invariants(money, anvil, data, distributor, &expected);
    }
    eprintln!(
        "steps done (deposit, sync, answer, refund, close, claim): {steps:?}; {} wei deposited, \
         {} claimed",
        expected.deposited, expected.claimed
    );
}

#[test]
fn a_ledger_rewritten_whole_passes_locally_but_not_against_the_chain() {
    let (anvil, dir, data, distributor) = deployed();
    let operator = key_file(&anvil.keys[0]);
    let (payer, contributor, forger) = (&anvil.accounts[1], &anvil.accounts[3], &anvil.accounts[7]);
    anvil.send_deposit(&distributor, payer, payer, 10_000);
    ok(chain(&data, &anvil, &["sync", "--key-file", &operator]));
    {
        let store = open_store(&data);
        let mut paid = synthetic_answer("honest", 1, vec![payment(address(contributor), 100, 1)]);
        paid.record.caller = Some(address(payer));
        store.append_answers(vec![paid]).unwrap();
        store.close_epoch(2).unwrap();
    }
    ok(chain(&data, &anvil, &["sync", "--key-file", &operator]));
    let verified = json(&ok(chain(&data, &anvil, &["verify", "--json"])));
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["epochs"][0]["state"], "matches", "{verified}");

    // The forger builds a ledger of its own in which the same epoch paid it, consistent from
    // end to end, and puts it in place of this one.
    let forged = dir.path().join("forged");
    ok(provdb(&forged, &["init"]));
    {
        let store = open_store(&forged);
        let source = CreditSource::Admin {
            by: None,
            reason: "forged".into(),
        };
        store.credit(address(payer), 10_000, source, 1).unwrap();
        let mut paid = synthetic_answer("honest", 1, vec![payment(address(forger), 100, 1)]);
        paid.record.caller = Some(address(payer));
        store.append_answers(vec![paid]).unwrap();
        store.close_epoch(2).unwrap();
    }
    std::fs::remove_dir_all(data.join("storage")).unwrap();
    std::fs::rename(forged.join("storage"), data.join("storage")).unwrap();
    let local = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
    assert_eq!(local["ok"], true, "the rewrite is consistent here: {local}");

    let caught = chain(&data, &anvil, &["verify", "--json"]);
    assert_eq!(caught.status.code(), Some(1), "{}", stderr(&caught));
    let report = json(&caught);
    assert_eq!(report["ok"], false);
    let epoch = &report["epochs"][0];
    assert_eq!(epoch["state"], "diverged", "{report}");
    assert_ne!(epoch["ledger_head"], epoch["chain_ledger_head"]);
    assert!(
        stderr(&caught).contains("epoch 1 diverged"),
        "{}",
        stderr(&caught)
    );

    // The forged ledger pays its forger nothing, and posts nothing.
    let before = anvil.balance(forger);
    let claim = chain(
        &data,
        &anvil,
        &["claim", forger, "--key-file", &key_file(&anvil.keys[9])],
    );
    assert_ne!(claim.status.code(), Some(0), "{}", stderr(&claim));
    assert!(stderr(&claim).contains("diverge"), "{}", stderr(&claim));
    assert_eq!(anvil.balance(forger), before);
    let sync = chain(&data, &anvil, &["sync", "--key-file", &operator]);
    assert_ne!(sync.status.code(), Some(0), "{}", stderr(&sync));
    assert_eq!(anvil.balance(&distributor), 10_000);
}
