//! Ledger and epoch tests on a real RocksDB in a temporary directory.

use super::*;
use crate::ledger::{AnswerId, AnswerRecord, Epoch, NewEntry, Role};
use crate::merkle::{merkle_leaf_hash, merkle_verify};
use crate::model::RecordId;
use crate::money::CreditSource;

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, StoreOptions::default()).unwrap()
}

/// The caller of `answer`.
const PAYER: Address = Address([0xca; 20]);
/// A second caller, for sums over more than one account.
const OTHER_PAYER: Address = Address([0xcb; 20]);

/// Credits `account` with the largest balance an account can hold (one ledger entry).
fn fund(store: &Store, account: Address) {
    let source = CreditSource::Admin {
        by: None,
        reason: "test funds".into(),
    };
    store.credit(account, u128::MAX, source, 1).unwrap();
}

fn answer(id: u8, payments: &[(u8, u128)]) -> NewAnswer {
    answer_by(PAYER, id, payments)
}

fn answer_by(payer: Address, id: u8, payments: &[(u8, u128)]) -> NewAnswer {
    NewAnswer {
        record: AnswerRecord {
            answer_id: AnswerId([id; 32]),
            ts_ms: 1_000 + i64::from(id),
            caller: Some(payer),
            datanet_ids: vec![0],
            question: format!("question {id}"),
            text: "an answer [1]".into(),
            model: "model".into(),
            adapter: None,
            // Saturating so the overflow tests can build their answers (storage refuses them).
            fee_wei: payments
                .iter()
                .fold(0u128, |sum, p| sum.saturating_add(p.1)),
            attribution: "cited".into(),
            training_attribution: None,
            citations: Vec::new(),
            first_seq: 0,
            entries: 0,
        },
        entries: payments
            .iter()
            .map(|&(to, amount_wei)| NewEntry {
                datanet_id: Some(0),
                record_id: Some(RecordId([to; 32])),
                chunk_id: Some(u64::from(to)),
                to: Address([to; 20]),
                role: Role::Contributor,
                weight_ppm: 500_000,
                amount_wei,
            })
            .collect(),
    }
}

#[test]
fn answers_chain_their_entries_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        fund(&store, PAYER);
        let stored = store
            .append_answers(vec![answer(1, &[(1, 10), (2, 20)]), answer(2, &[(1, 5)])])
            .unwrap();
        // Entry 1 is the credit; each answer starts with its charge.
        assert_eq!((stored[0].first_seq, stored[0].entries), (2, 3));
        assert_eq!((stored[1].first_seq, stored[1].entries), (5, 2));
        // An answer is paid once.
        let again = store
            .append_answers(vec![answer(2, &[(1, 5)])])
            .unwrap_err();
        assert!(again.is_user_error(), "{again}");
    }
    let store = open(dir.path());
    let check = store.verify_ledger().unwrap();
    assert_eq!((check.entries, check.broken.clone()), (6, None));
    assert_eq!(store.ledger_head().unwrap(), (6, check.head));
    store.append_answers(vec![answer(3, &[(2, 1)])]).unwrap();
    assert_eq!(store.verify_ledger().unwrap().entries, 8);
    let mut seen = Vec::new();
    store
        .visit_ledger(1, &mut |e| {
            seen.push((e.seq, e.payment.role, e.payment.amount_wei));
            Ok(true)
        })
        .unwrap();
    use Role::{Charge, Contributor as Paid, Credit};
    let expected = [
        (1, Credit, u128::MAX),
        (2, Charge, 30),
        (3, Paid, 10),
        (4, Paid, 20),
        (5, Charge, 5),
        (6, Paid, 5),
        (7, Charge, 1),
        (8, Paid, 1),
    ];
    assert_eq!(seen, expected);
    let account = store.account(&PAYER).unwrap();
    assert_eq!(account.balance_wei, u128::MAX - 36);
    assert_eq!((account.charged_wei, account.answers), (36, 3));
    let record = store.answer(&AnswerId([2; 32])).unwrap().unwrap();
    assert_eq!(record.question, "question 2");
}

#[test]
fn a_changed_byte_breaks_the_chain_at_that_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    fund(&store, PAYER);
    store
        .append_answers(vec![answer(1, &[(1, 10), (2, 20), (3, 30)])])
        .unwrap();
    let cf = store.cf(CF_LEDGER).unwrap();
    // Entry 2 is the charge (with its detail), 3 to 5 the payouts.
    for seq in [2u64, 4] {
        flip_every_byte(&store, seq);
    }
    // A deleted entry is a gap; a deleted last entry disagrees with the head.
    store.db.delete_cf(cf, 5u64.to_be_bytes()).unwrap();
    assert_eq!(store.verify_ledger().unwrap().broken.unwrap().0, 5);
}

/// Flips each byte of entry `seq` in turn: each is caught at that entry (changed content, or a
/// value that no longer decodes).
fn flip_every_byte(store: &Store, seq: u64) {
    let cf = store.cf(CF_LEDGER).unwrap();
    let key = seq.to_be_bytes();
    let mut value = store.db.get_cf(cf, key).unwrap().unwrap();
    for position in 0..value.len() {
        value[position] ^= 0x01;
        store.db.put_cf(cf, key, &value).unwrap();
        let check = store.verify_ledger().unwrap();
        let (broken, _) = check.broken.clone().unwrap_or((0, String::new()));
        assert_eq!(broken, seq, "byte {position}: {check:?}");
        value[position] ^= 0x01;
    }
    store.db.put_cf(cf, key, &value).unwrap();
    assert!(store.verify_ledger().unwrap().broken.is_none());
}

#[test]
fn epochs_hold_cumulative_balances_and_their_proofs_verify() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert!(store.close_epoch(1).unwrap_err().is_user_error());
    fund(&store, PAYER);
    // A credit alone owes no one anything.
    assert!(store.close_epoch(1).unwrap_err().is_user_error());
    store
        .append_answers(vec![answer(1, &[(1, 10), (2, 20)]), answer(2, &[(1, 5)])])
        .unwrap();
    let first = store.close_epoch(1).unwrap();
    assert_eq!(
        (
            first.epoch,
            first.first_seq,
            first.end_seq,
            first.accounts,
            first.total_wei
        ),
        (1, 1, 7, 2, 35)
    );
    assert!(store.close_epoch(2).unwrap_err().is_user_error());
    store
        .append_answers(vec![answer(3, &[(2, 7), (3, 1)])])
        .unwrap();
    let second = store.close_epoch(2).unwrap();
    assert_eq!(
        (second.first_seq, second.end_seq, second.total_wei),
        (7, 10, 43)
    );
    assert_eq!(
        store.epoch_balances(2).unwrap(),
        [
            (Address([1; 20]), 15),
            (Address([2; 20]), 27),
            (Address([3; 20]), 1)
        ]
    );
    for epoch in [&first, &second] {
        let tree = store.epoch_tree(epoch.epoch).unwrap();
        for (account, amount) in store.epoch_balances(epoch.epoch).unwrap() {
            let proof = tree.proof(&account).unwrap();
            let leaf = merkle_leaf_hash(&account, amount);
            assert!(merkle_verify(&epoch.root, &leaf, &proof));
        }
    }
    assert_eq!(store.epochs().unwrap(), [first, second]);
}

#[test]
fn the_most_specific_fee_policy_applies() {
    use crate::ledger::{LedgerPolicy, PolicyScope};
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let datanet = store
        .create_datanet(crate::model::Datanet::new("aero"))
        .unwrap();
    assert_eq!(
        store.effective_ledger_policy("m", &[datanet.id]).unwrap(),
        LedgerPolicy::default()
    );
    let policy = |bps| LedgerPolicy {
        model_owner: Some(Address([1; 20])),
        model_owner_bps: bps,
        protocol: None,
        protocol_bps: 0,
    };
    store
        .set_ledger_policy(&PolicyScope::Default, &policy(100))
        .unwrap();
    store
        .set_ledger_policy(&PolicyScope::Datanet(datanet.id), &policy(200))
        .unwrap();
    store
        .set_ledger_policy(&PolicyScope::Model("big".into()), &policy(300))
        .unwrap();
    let bps = |model: &str, datanets: &[u32]| {
        store
            .effective_ledger_policy(model, datanets)
            .unwrap()
            .model_owner_bps
    };
    assert_eq!(bps("big", &[datanet.id]), 300);
    assert_eq!(bps("small", &[datanet.id]), 200);
    assert_eq!(bps("small", &[datanet.id, 77]), 100);
    // Refused: shares over the whole, a share without an account, an unknown Datanet.
    let mut bad = policy(9_000);
    bad.protocol_bps = 1_001;
    assert!(
        store
            .set_ledger_policy(&PolicyScope::Default, &bad)
            .is_err()
    );
    let mut bad = policy(10);
    bad.model_owner = None;
    assert!(
        store
            .set_ledger_policy(&PolicyScope::Default, &bad)
            .is_err()
    );
    assert!(
        store
            .set_ledger_policy(&PolicyScope::Datanet(42), &policy(1))
            .is_err()
    );
}

#[test]
fn two_fees_near_2_pow_127_to_one_account_refuse_the_second_and_epochs_keep_closing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    fund(&store, PAYER);
    fund(&store, OTHER_PAYER);
    let half = 1u128 << 127;
    store.append_answers(vec![answer(1, &[(1, half)])]).unwrap();
    let head = store.ledger_head().unwrap();
    let refused = store
        .append_answers(vec![answer_by(OTHER_PAYER, 2, &[(1, half)])])
        .unwrap_err();
    assert!(refused.is_user_error(), "{refused}");
    assert!(refused.to_string().contains("2^128 - 1 wei"), "{refused}");
    // Nothing of the refused answer was written, in the same group or alone.
    let group = store
        .append_answers(vec![
            answer(3, &[(2, 5)]),
            answer_by(OTHER_PAYER, 4, &[(1, half)]),
        ])
        .unwrap_err();
    assert!(group.is_user_error(), "{group}");
    assert_eq!(store.ledger_head().unwrap(), head);
    assert!(store.answer(&AnswerId([2; 32])).unwrap().is_none());
    assert!(store.answer(&AnswerId([3; 32])).unwrap().is_none());
    assert_eq!(store.ledger_total_wei().unwrap(), half);
    assert_eq!(store.account(&OTHER_PAYER).unwrap().balance_wei, u128::MAX);
    // Everyone else is still paid and epochs still close.
    store.append_answers(vec![answer(5, &[(2, 7)])]).unwrap();
    assert_eq!(store.close_epoch(1).unwrap().total_wei, half + 7);
    store.append_answers(vec![answer(6, &[(3, 1)])]).unwrap();
    assert_eq!(store.close_epoch(2).unwrap().total_wei, half + 8);
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.ledger_total_wei().unwrap(), half + 8);
}

#[test]
fn a_head_written_before_the_total_is_summed_from_the_ledger_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        fund(&store, PAYER);
        fund(&store, OTHER_PAYER);
        store
            .append_answers(vec![answer(1, &[(1, 10), (2, u128::MAX - 20)])])
            .unwrap();
        // Rewrite the head as an older version wrote it: sequence and hash only.
        let head = store.load_ledger_head().unwrap().encode();
        let cf = store.cf(CF_META).unwrap();
        store.db.put_cf(cf, META_LEDGER_HEAD, &head[..40]).unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.ledger_total_wei().unwrap(), u128::MAX - 10);
    assert!(store.verify_ledger().unwrap().broken.is_none());
    let refused = store
        .append_answers(vec![answer_by(OTHER_PAYER, 2, &[(3, 11)])])
        .unwrap_err();
    assert!(refused.to_string().contains("2^128 - 1 wei"), "{refused}");
    store.append_answers(vec![answer(3, &[(3, 10)])]).unwrap();
    assert_eq!(store.close_epoch(1).unwrap().total_wei, u128::MAX);
}

#[test]
fn verify_replays_every_epoch_and_names_a_record_its_entries_do_not_give() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    fund(&store, PAYER);
    store.append_answers(vec![answer(1, &[(1, 10)])]).unwrap();
    let first = store.close_epoch(1).unwrap();
    store
        .append_answers(vec![answer(2, &[(1, 5), (2, 7)])])
        .unwrap();
    let second = store.close_epoch(2).unwrap();
    let check = store.verify_ledger().unwrap();
    assert_eq!(check.broken, None);
    let replayed: Vec<_> = check
        .epochs
        .iter()
        .map(|e| (e.epoch, e.ledger_head, e.root, e.total_wei))
        .collect();
    assert_eq!(
        replayed,
        [&first, &second]
            .iter()
            .map(|e| (e.epoch, e.ledger_head, e.root, e.total_wei))
            .collect::<Vec<_>>()
    );

    // A record whose root (or total) its entries do not give is named, at its last entry.
    for (what, forge) in [
        ("root", (|e: &mut Epoch| e.root[0] ^= 1) as fn(&mut Epoch)),
        ("total", |e: &mut Epoch| e.total_wei += 1),
        ("ledger head", |e: &mut Epoch| e.ledger_head[31] ^= 1),
    ] {
        let mut forged = first.clone();
        forge(&mut forged);
        let cf = store.cf(CF_EPOCHS).unwrap();
        let key = 1u64.to_be_bytes();
        store
            .db
            .put_cf(cf, key, crate::codec::encode(&forged).unwrap())
            .unwrap();
        let check = store.verify_ledger().unwrap();
        let (seq, reason) = check.broken.clone().expect(what);
        assert_eq!(seq, first.end_seq - 1, "{reason}");
        assert!(
            reason.contains(&format!("epoch 1 records {what}")),
            "{reason}"
        );
        store
            .db
            .put_cf(cf, key, crate::codec::encode(&first).unwrap())
            .unwrap();
    }
    assert_eq!(store.verify_ledger().unwrap().broken, None);

    // An epoch record past the last entry is named too.
    let mut beyond = second.clone();
    beyond.epoch = 3;
    beyond.first_seq = second.end_seq;
    beyond.end_seq = second.end_seq + 4;
    let cf = store.cf(CF_EPOCHS).unwrap();
    store
        .db
        .put_cf(
            cf,
            3u64.to_be_bytes(),
            crate::codec::encode(&beyond).unwrap(),
        )
        .unwrap();
    let (_, reason) = store.verify_ledger().unwrap().broken.unwrap();
    assert!(reason.contains("past the ledger's last"), "{reason}");
}

mod sums {
    use proptest::prelude::*;

    use super::*;

    /// Amounts from tiny to near `u128::MAX`, so that some groups would wrap.
    fn amount() -> impl Strategy<Value = u128> {
        prop_oneof![
            0u128..1_000,
            any::<u128>(),
            (0u128..4).prop_map(|k| u128::MAX - k),
            (0u128..4).prop_map(|k| (1u128 << 127) + k),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever the amounts, an append either fits (the total is the exact sum) or is
        /// refused writing nothing; every epoch closes with the exact total and its balances
        /// sum to it.
        #[test]
        fn ledger_and_epoch_sums_never_wrap(
            groups in prop::collection::vec(
                prop::collection::vec((1u8..5, amount()), 1..4), 1..8),
            close_after in prop::collection::vec(any::<bool>(), 8),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let store = open(dir.path());
            fund(&store, PAYER);
            let mut expected = 0u128;
            let mut closed = 0i64;
            for (index, payments) in groups.iter().enumerate() {
                let sum = payments
                    .iter()
                    .try_fold(expected, |total, p| total.checked_add(p.1));
                let head = store.ledger_head().unwrap();
                let result = store.append_answers(vec![answer(index as u8 + 1, payments)]);
                match sum {
                    Some(total) => {
                        prop_assert!(result.is_ok(), "{:?}", result.err());
                        expected = total;
                    }
                    None => {
                        let error = result.unwrap_err();
                        prop_assert!(error.is_user_error(), "{error}");
                        prop_assert_eq!(store.ledger_head().unwrap(), head);
                    }
                }
                prop_assert_eq!(store.ledger_total_wei().unwrap(), expected);
                if close_after[index] && expected > 0 {
                    closed += 1;
                    match store.close_epoch(closed) {
                        Ok(epoch) => {
                            prop_assert_eq!(epoch.total_wei, expected);
                            let balances = store.epoch_balances(epoch.epoch).unwrap();
                            let summed = balances
                                .iter()
                                .try_fold(0u128, |total, (_, a)| total.checked_add(*a));
                            prop_assert_eq!(summed, Some(expected));
                        }
                        // Nothing new since the last epoch: refused, as before.
                        Err(error) => {
                            prop_assert!(error.is_user_error(), "{error}");
                            closed -= 1;
                        }
                    }
                }
            }
        }
    }
}
