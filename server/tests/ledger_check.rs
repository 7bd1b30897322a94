//! The ledger's invariants after a crash or a fault, checked on the reopened database.

use std::path::Path;

use provdb::Db;

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
    assert_eq!(
        check.entries, expected_entries,
        "no entry without its answer"
    );
    answers
}
