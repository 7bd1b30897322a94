//! Ledger fixtures and invariants: answers paying given accounts, appended straight through
//! the storage API (no model needed), and the checks a ledger passes after a crash or a fault.

use std::path::Path;

use provdb::Db;
use provdb::storage::{
    Address, AnswerId, AnswerRecord, CreditSource, NewAnswer, NewEntry, Role, Store, keccak256,
};

/// Who pays the synthetic answers.
pub(crate) const PAYER: Address = Address([0xfa; 20]);

/// Credits `payer` with `u128::MAX` wei, the most an account can ever be credited (one ledger
/// entry; none when it was credited before).
#[allow(
    dead_code,
    reason = "used by the adversarial and crash-matrix binaries; `binary`'s chain tests credit exactly what they spend (anvil.rs)"
)]
pub(crate) fn fund(store: &Store, payer: Address) {
    if store.account(&payer).unwrap().credited_wei == 0 {
        let source = CreditSource::Admin {
            by: None,
            reason: "test funds".into(),
        };
        store.credit(payer, u128::MAX, source, 1).unwrap();
    }
}

/// One contributor payment of `amount_wei` to `to`.
pub(crate) fn payment(to: Address, amount_wei: u128, weight_ppm: u32) -> NewEntry {
    NewEntry {
        datanet_id: None,
        record_id: None,
        chunk_id: None,
        to,
        role: Role::Contributor,
        weight_ppm,
        amount_wei,
    }
}

/// An answer whose id is the keccak256 of `seed`, paying `entries` (its fee is their sum),
/// charged to [`PAYER`] (who must be funded: [`fund`]).
pub(crate) fn synthetic_answer(seed: &str, ts_ms: i64, entries: Vec<NewEntry>) -> NewAnswer {
    NewAnswer {
        record: AnswerRecord {
            answer_id: AnswerId(keccak256(seed.as_bytes())),
            ts_ms,
            caller: Some(PAYER),
            datanet_ids: vec![],
            question: "q".into(),
            text: "a".into(),
            model: "test".into(),
            adapter: None,
            fee_wei: entries.iter().map(|e| e.amount_wei).sum(),
            attribution: "cited".into(),
            training_attribution: None,
            citations: vec![],
            first_seq: 0,
            entries: 0,
        },
        entries,
    }
}

/// Reopens `data` and checks the ledger: the hash chain verifies, every stored answer has all
/// of its entries, no entry is without its answer. Returns the number of answers stored.
pub(crate) fn check_whole_answers(data: &Path) -> usize {
    let db = Db::open(data).unwrap();
    let check = db.verify_ledger().unwrap();
    assert!(check.broken.is_none(), "{check:?}");
    let mut answers = 0;
    let mut expected_entries = 0u64;
    db.store()
        .visit_answers(&mut |answer| {
            answers += 1;
            expected_entries += u64::from(answer.entries);
            let mut seen = 0;
            db.store().visit_ledger(answer.first_seq, &mut |entry| {
                if seen == answer.entries {
                    return Ok(false);
                }
                assert_eq!(entry.answer_id, answer.answer_id, "entry {}", entry.seq);
                seen += 1;
                Ok(true)
            })?;
            assert_eq!(
                seen, answer.entries,
                "answer {} is partial",
                answer.answer_id
            );
            Ok(true)
        })
        .unwrap();
    // Every other entry is a credit or a refund: money into or back out of an account.
    let mut movements = 0u64;
    db.store()
        .visit_ledger(1, &mut |entry| {
            if db.store().answer(&entry.answer_id)?.is_none() {
                assert!(
                    matches!(
                        entry.payment.role,
                        Role::Credit | Role::Charge | Role::Refund
                    ),
                    "entry {} is without its answer",
                    entry.seq
                );
                movements += 1;
            }
            Ok(true)
        })
        .unwrap();
    assert_eq!(
        check.entries,
        expected_entries + movements,
        "no entry without its answer"
    );
    answers
}
