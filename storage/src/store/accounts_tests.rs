//! Prepaid accounts, credits, deposits, refunds and prices on a real RocksDB.

use super::*;
use crate::ledger::{AnswerId, AnswerRecord, NewEntry, Role};
use crate::money::{CreditSource, Deposit, DepositKey, EntryDetail, PriceScope};

const ALICE: Address = Address([0xa1; 20]);
const BOB: Address = Address([0xb0; 20]);

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, StoreOptions::default()).unwrap()
}

fn admin(reason: &str) -> CreditSource {
    CreditSource::Admin {
        by: None,
        reason: reason.into(),
    }
}

fn deposit(id: u64, account: Address, amount_wei: u128) -> CreditSource {
    CreditSource::Deposit(Deposit {
        key: DepositKey {
            chain_id: 31_337,
            contract: Address([0xdd; 20]),
            deposit_id: id,
        },
        account,
        amount_wei,
        tx_hash: [id as u8; 32],
        block: 10 + id,
    })
}

/// An answer by `caller` for `fee`, paid to BOB.
fn answer(id: u8, caller: Option<Address>, fee: u128) -> NewAnswer {
    NewAnswer {
        record: AnswerRecord {
            answer_id: AnswerId([id; 32]),
            ts_ms: 5,
            caller,
            datanet_ids: Vec::new(),
            question: "q".into(),
            text: "t".into(),
            model: "m".into(),
            adapter: None,
            fee_wei: fee,
            attribution: "cited".into(),
            training_attribution: None,
            citations: Vec::new(),
            first_seq: 0,
            entries: 0,
        },
        entries: vec![NewEntry {
            datanet_id: None,
            record_id: None,
            chunk_id: None,
            to: BOB,
            role: Role::Treasury,
            weight_ppm: 0,
            amount_wei: fee,
        }],
    }
}

/// Every column family's rows, by name.
type Snapshot = Vec<(String, Vec<(Box<[u8]>, Box<[u8]>)>)>;

/// Every column family's bytes, to show a refused write changed nothing.
fn snapshot(store: &Store) -> Snapshot {
    ALL_CFS
        .iter()
        .map(|&name| {
            let cf = store.cf(name).unwrap();
            let rows = store
                .db
                .iterator_cf(cf, rocksdb::IteratorMode::Start)
                .map(Result::unwrap)
                .collect();
            (name.to_string(), rows)
        })
        .collect()
}

#[test]
fn an_answer_charges_its_caller_and_a_short_balance_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.credit(ALICE, 100, admin("card"), 1).unwrap();
    store
        .append_answers(vec![answer(1, Some(ALICE), 60)])
        .unwrap();
    let before = snapshot(&store);
    let short = store
        .append_answers(vec![answer(2, Some(ALICE), 41)])
        .unwrap_err();
    assert!(
        matches!(
            short,
            StorageError::InsufficientFunds {
                balance_wei: 40,
                needed_wei: 41,
                ..
            }
        ),
        "{short}"
    );
    assert!(short.is_user_error());
    // Two answers that fit alone but not together: the group is refused whole.
    let group = store
        .append_answers(vec![answer(3, Some(ALICE), 30), answer(4, Some(ALICE), 30)])
        .unwrap_err();
    assert!(group.is_user_error(), "{group}");
    // No caller for a fee, payouts that miss the fee, a charge posing as a payout.
    assert!(store.append_answers(vec![answer(5, None, 1)]).is_err());
    let mut off = answer(6, Some(ALICE), 10);
    off.entries[0].amount_wei = 9;
    assert!(store.append_answers(vec![off]).is_err());
    let mut posing = answer(7, Some(ALICE), 10);
    posing.entries[0].role = Role::Charge;
    assert!(store.append_answers(vec![posing]).is_err());
    assert_eq!(
        snapshot(&store),
        before,
        "a refused append changed the database"
    );
    // A free answer needs no account.
    store.append_answers(vec![answer(8, None, 0)]).unwrap();
    let alice = store.account(&ALICE).unwrap();
    assert_eq!(
        (
            alice.balance_wei,
            alice.credited_wei,
            alice.charged_wei,
            alice.answers
        ),
        (40, 100, 60, 1)
    );
    assert!(store.verify_ledger().unwrap().broken.is_none());
}

#[test]
fn a_deposit_is_credited_once_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let entry = store.credit(ALICE, 50, deposit(0, ALICE, 50), 1).unwrap();
        assert_eq!(entry.map(|e| e.payment.role), Some(Role::Credit));
        assert!(
            store
                .credit(ALICE, 50, deposit(0, ALICE, 50), 2)
                .unwrap()
                .is_none()
        );
    }
    let store = open(dir.path());
    assert!(
        store
            .credit(ALICE, 50, deposit(0, ALICE, 50), 3)
            .unwrap()
            .is_none()
    );
    store.credit(ALICE, 7, deposit(1, ALICE, 7), 4).unwrap();
    assert_eq!(store.account(&ALICE).unwrap().balance_wei, 57);
    let deposits = store.deposits().unwrap();
    assert_eq!(deposits.len(), 2);
    assert_eq!((deposits[0].ledger_seq, deposits[1].ledger_seq), (1, 2));
    let mut details = Vec::new();
    store
        .visit_ledger(1, &mut |e| {
            details.push(e.detail);
            Ok(true)
        })
        .unwrap();
    assert_eq!(
        details,
        [
            EntryDetail::Credit(deposit(0, ALICE, 50)),
            EntryDetail::Credit(deposit(1, ALICE, 7))
        ]
    );
    assert!(store.verify_ledger().unwrap().broken.is_none());
}

#[test]
fn admin_credits_need_a_reason_and_an_amount() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for (amount, reason) in [(1, ""), (1, " "), (0, "card"), (1, &"x".repeat(257)[..])] {
        let refused = store.credit(ALICE, amount, admin(reason), 1).unwrap_err();
        assert!(refused.is_user_error(), "{refused}");
    }
    store.credit(ALICE, u128::MAX, admin("all"), 1).unwrap();
    let past = store.credit(ALICE, 1, admin("one more"), 1).unwrap_err();
    assert!(past.is_user_error(), "{past}");
    assert_eq!(store.verify_ledger().unwrap().entries, 1);
}

#[test]
fn a_refund_pays_the_balance_back_through_the_next_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert!(store.refund(ALICE, 1).unwrap_err().is_user_error());
    store.credit(ALICE, 100, deposit(0, ALICE, 100), 1).unwrap();
    store
        .append_answers(vec![answer(1, Some(ALICE), 30)])
        .unwrap();
    let entries = store.refund(ALICE, 2).unwrap();
    let roles: Vec<_> = entries
        .iter()
        .map(|e| (e.payment.role, e.payment.amount_wei))
        .collect();
    assert_eq!(roles, [(Role::Charge, 70), (Role::Refund, 70)]);
    assert_eq!(entries[0].detail, EntryDetail::Refund);
    let alice = store.account(&ALICE).unwrap();
    assert_eq!(
        (alice.balance_wei, alice.charged_wei, alice.refunded_wei),
        (0, 100, 70)
    );
    assert!(store.refund(ALICE, 3).unwrap_err().is_user_error());
    // The epoch owes BOB the answer and ALICE her refund: exactly what was deposited.
    let epoch = store.close_epoch(4).unwrap();
    assert_eq!(epoch.total_wei, 100);
    assert_eq!(store.epoch_balances(1).unwrap(), [(ALICE, 70), (BOB, 30)]);
}

#[test]
fn prices_are_logged_changes_and_refuse_what_cannot_be() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let datanet = store
        .create_datanet(crate::model::Datanet::new("aero"))
        .unwrap();
    let scope = PriceScope::Datanet(datanet.id);
    assert!(store.price(&scope).unwrap().is_none());
    let set = store
        .set_price(scope.clone(), 5, 0, Some(ALICE), 9)
        .unwrap();
    assert_eq!(set.sequence, 2);
    let model = PriceScope::Model("smollm2".into());
    store.set_price(model.clone(), 1, 3, None, 10).unwrap();
    store
        .set_price(scope.clone(), 6, 0, Some(ALICE), 11)
        .unwrap();
    assert_eq!(
        store
            .price(&scope)
            .unwrap()
            .map(|p| (p.per_answer_wei, p.sequence)),
        Some((6, 4))
    );
    assert_eq!(store.prices().unwrap().len(), 2);
    // A per-token price for a Datanet, an unknown Datanet, an empty model name.
    assert!(store.set_price(scope, 1, 1, None, 12).is_err());
    assert!(
        store
            .set_price(PriceScope::Datanet(99), 1, 0, None, 12)
            .is_err()
    );
    assert!(
        store
            .set_price(PriceScope::Model(String::new()), 1, 0, None, 12)
            .is_err()
    );
    // The log holds the history.
    let log = store.log_since(0).unwrap();
    let set = log
        .iter()
        .filter(|(_, entry)| matches!(entry, LogEntry::PriceSet { .. }))
        .count();
    assert_eq!(set, 3);
}

mod conservation {
    use proptest::prelude::*;

    use super::*;

    /// One step of a random history.
    #[derive(Clone, Debug)]
    enum Step {
        /// A deposit (an id from a small range, so that some repeat) to account `a`.
        Deposit { id: u64, a: u8, amount: u128 },
        /// An admin's credit.
        Credit { a: u8, amount: u128 },
        /// An answer by `a` paying `payouts` (to accounts 10..14).
        Answer {
            a: Option<u8>,
            payouts: Vec<(u8, u128)>,
        },
        /// A refund of `a`.
        Refund { a: u8 },
        /// An epoch close.
        Epoch,
    }

    fn step() -> impl Strategy<Value = Step> {
        let amount = prop_oneof![0u128..1_000, 1u128 << 100..1u128 << 101];
        prop_oneof![
            (0u64..6, 0u8..3, amount.clone()).prop_map(|(id, a, amount)| Step::Deposit {
                id,
                a,
                amount
            }),
            (0u8..3, 1u128..1_000).prop_map(|(a, amount)| Step::Credit { a, amount }),
            (
                prop::option::weighted(0.9, 0u8..3),
                prop::collection::vec((10u8..14, 0u128..700), 0..4)
            )
                .prop_map(|(a, payouts)| Step::Answer { a, payouts }),
            (0u8..3).prop_map(|a| Step::Refund { a }),
            Just(Step::Epoch),
        ]
    }

    fn who(a: u8) -> Address {
        Address([a; 20])
    }

    fn answer_of(n: usize, a: Option<u8>, payouts: &[(u8, u128)]) -> NewAnswer {
        let mut answer = super::answer(0, a.map(who), payouts.iter().map(|p| p.1).sum());
        answer.record.answer_id = AnswerId(crate::hash::keccak256(&n.to_be_bytes()));
        answer.entries = payouts
            .iter()
            .map(|&(to, amount_wei)| NewEntry {
                to: who(to),
                amount_wei,
                ..answer.entries[0].clone()
            })
            .collect();
        answer
    }

    /// Sums of the ledger's entries by role kind: (credits, charges, payouts).
    fn ledger_sums(store: &Store) -> (u128, u128, u128) {
        let (mut credits, mut charges, mut payouts) = (0u128, 0u128, 0u128);
        store
            .visit_ledger(1, &mut |e| {
                let amount = e.payment.amount_wei;
                match e.payment.role {
                    Role::Credit => credits += amount,
                    Role::Charge => charges += amount,
                    _ => payouts += amount,
                }
                Ok(true)
            })
            .unwrap();
        (credits, charges, payouts)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Whatever happens, in any order: Σ credits = Σ balances + Σ charges; Σ charges =
        /// Σ payouts; every epoch owes at most what came in; a deposit counts once; a refused
        /// step writes nothing.
        #[test]
        fn money_is_conserved(steps in prop::collection::vec(step(), 1..40)) {
            let dir = tempfile::tempdir().unwrap();
            let store = open(dir.path());
            let mut deposited: std::collections::BTreeMap<u64, u128> = Default::default();
            for (n, step) in steps.iter().enumerate() {
                let head = store.ledger_head().unwrap();
                let result: Result<()> = match step {
                    Step::Deposit { id, a, amount } => {
                        let credited = store.credit(who(*a), *amount, deposit(*id, who(*a), *amount), 1);
                        if let Ok(Some(_)) = credited {
                            deposited.insert(*id, *amount);
                        }
                        credited.map(|_| ())
                    }
                    Step::Credit { a, amount } => store.credit(who(*a), *amount, admin("card"), 1).map(|_| ()),
                    Step::Answer { a, payouts } => {
                        store.append_answers(vec![answer_of(n, *a, payouts)]).map(|_| ())
                    }
                    Step::Refund { a } => store.refund(who(*a), 1).map(|_| ()),
                    Step::Epoch => store.close_epoch(n as i64).map(|_| ()),
                };
                if let Err(error) = &result {
                    prop_assert!(error.is_user_error(), "{error}");
                    prop_assert_eq!(store.ledger_head().unwrap(), head, "a refused step wrote");
                }
                let accounts = store.accounts().unwrap();
                let balances: u128 = accounts.iter().map(|(_, s)| s.balance_wei).sum();
                let credited: u128 = accounts.iter().map(|(_, s)| s.credited_wei).sum();
                let charged: u128 = accounts.iter().map(|(_, s)| s.charged_wei).sum();
                let (credits, charges, payouts) = ledger_sums(&store);
                prop_assert_eq!(credits, credited);
                prop_assert_eq!(credits, balances + charged);
                prop_assert_eq!(charges, charged);
                prop_assert_eq!(charges, payouts);
                for epoch in store.epochs().unwrap() {
                    prop_assert!(epoch.total_wei <= credits);
                }
                let stored: u128 = store.deposits().unwrap().iter().map(|d| d.deposit.amount_wei).sum();
                prop_assert_eq!(stored, deposited.values().sum::<u128>());
                prop_assert!(store.verify_ledger().unwrap().broken.is_none());
            }
        }
    }
}
