//! Ledger and epoch tests on a real RocksDB in a temporary directory.

use super::*;
use crate::ledger::{AnswerId, AnswerRecord, NewEntry, Role};
use crate::merkle::{merkle_leaf_hash, merkle_verify};
use crate::model::RecordId;

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, StoreOptions::default()).unwrap()
}

fn answer(id: u8, payments: &[(u8, u128)]) -> NewAnswer {
    NewAnswer {
        record: AnswerRecord {
            answer_id: AnswerId([id; 32]),
            ts_ms: 1_000 + i64::from(id),
            caller: Some(Address([0xca; 20])),
            datanet_ids: vec![0],
            question: format!("question {id}"),
            text: "an answer [1]".into(),
            model: "model".into(),
            adapter: None,
            fee_wei: payments.iter().map(|p| p.1).sum(),
            attribution: "cited".into(),
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
        let stored = store
            .append_answers(vec![answer(1, &[(1, 10), (2, 20)]), answer(2, &[(1, 5)])])
            .unwrap();
        assert_eq!((stored[0].first_seq, stored[0].entries), (1, 2));
        assert_eq!((stored[1].first_seq, stored[1].entries), (3, 1));
        // An answer is paid once.
        let again = store
            .append_answers(vec![answer(2, &[(1, 5)])])
            .unwrap_err();
        assert!(again.is_user_error(), "{again}");
    }
    let store = open(dir.path());
    let check = store.verify_ledger().unwrap();
    assert_eq!((check.entries, check.broken.clone()), (3, None));
    assert_eq!(store.ledger_head().unwrap(), (3, check.head));
    store.append_answers(vec![answer(3, &[(2, 1)])]).unwrap();
    assert_eq!(store.verify_ledger().unwrap().entries, 4);
    let mut seen = Vec::new();
    store
        .visit_ledger(1, &mut |e| {
            seen.push((e.seq, e.payment.amount_wei));
            Ok(true)
        })
        .unwrap();
    assert_eq!(seen, [(1, 10), (2, 20), (3, 5), (4, 1)]);
    let record = store.answer(&AnswerId([2; 32])).unwrap().unwrap();
    assert_eq!(record.question, "question 2");
}

#[test]
fn a_changed_byte_breaks_the_chain_at_that_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .append_answers(vec![answer(1, &[(1, 10), (2, 20), (3, 30)])])
        .unwrap();
    let cf = store.cf(CF_LEDGER).unwrap();
    let key = 2u64.to_be_bytes();
    let mut value = store.db.get_cf(cf, key).unwrap().unwrap();
    // Flip a byte of every position in turn: each is caught at entry 2 (changed content,
    // or a value that no longer decodes).
    for position in 0..value.len() {
        value[position] ^= 0x01;
        store.db.put_cf(cf, key, &value).unwrap();
        let check = store.verify_ledger().unwrap();
        let (seq, _) = check.broken.clone().unwrap_or((0, String::new()));
        assert_eq!(seq, 2, "byte {position}: {check:?}");
        value[position] ^= 0x01;
    }
    store.db.put_cf(cf, key, &value).unwrap();
    assert!(store.verify_ledger().unwrap().broken.is_none());
    // A deleted entry is a gap; a deleted last entry disagrees with the head.
    store.db.delete_cf(cf, 3u64.to_be_bytes()).unwrap();
    assert_eq!(store.verify_ledger().unwrap().broken.unwrap().0, 3);
}

#[test]
fn epochs_hold_cumulative_balances_and_their_proofs_verify() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
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
        (1, 1, 4, 2, 35)
    );
    assert!(store.close_epoch(2).unwrap_err().is_user_error());
    store
        .append_answers(vec![answer(3, &[(2, 7), (3, 1)])])
        .unwrap();
    let second = store.close_epoch(2).unwrap();
    assert_eq!(
        (second.first_seq, second.end_seq, second.total_wei),
        (4, 6, 43)
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
