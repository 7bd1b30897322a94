//! Which answers a caller sees in the audit tables, and whose questions.
//!
//! An answer *touched* a Datanet when it retrieved from it (`AnswerRecord::datanet_ids`, which
//! since issue 24 also lists the Datanets its adapters trained on), cited a chunk of it, or
//! paid one of its contributors or its treasury (any ledger entry naming it, which also covers
//! training contributors of answers recorded before adapters' Datanets were listed).
//!
//! Invariants: an answer that touched a Datanet the caller may not read is wholly absent from
//! the caller's `attributions` and `citations` (its contributor, treasury, training, model
//! owner and protocol rows alike), so neither its existence, model, adapter, fee nor caller
//! shows; a question shows only to whoever asked it, the owner of a Datanet the answer
//! touched, and admins.

use std::collections::HashMap;

use provdb_storage::{AnswerRecord, Datanet, DatanetId, LedgerEntry, Store};

use crate::access::Caller;

/// The session's view of answers: the readable Datanets (name, owned by the caller) and the
/// caller.
#[derive(Clone, Debug)]
pub(crate) struct AnswerAccess {
    readable: HashMap<DatanetId, (String, bool)>,
    caller: Caller,
}

impl AnswerAccess {
    pub(crate) fn new(readable: &[Datanet], caller: Caller) -> Self {
        let readable = readable
            .iter()
            .map(|d| (d.id, (d.name.clone(), caller.owns(d))))
            .collect();
        Self { readable, caller }
    }

    /// The name of a readable Datanet.
    pub(crate) fn name(&self, id: DatanetId) -> Option<&str> {
        self.readable.get(&id).map(|(name, _)| name.as_str())
    }

    /// Whether the caller may see the rows of an answer that touched `touched`.
    pub(crate) fn sees(&self, touched: &[DatanetId]) -> bool {
        touched.iter().all(|id| self.readable.contains_key(id))
    }

    /// Whether the caller may see the rows of `account`'s own money (its credits and
    /// refunds): it is that account, or an admin.
    pub(crate) fn sees_account(&self, account: &provdb_storage::Address) -> bool {
        self.caller.is_admin() || self.caller.who().as_ref() == Some(account)
    }

    /// Whether the caller may see the question of `answer` (which touched `touched`, all of
    /// them readable): it asked it, owns one of those Datanets, or is an admin.
    pub(crate) fn sees_question(&self, answer: &AnswerRecord, touched: &[DatanetId]) -> bool {
        let asked = self.caller.who().is_some() && answer.caller == self.caller.who();
        let owns = touched
            .iter()
            .any(|id| self.readable.get(id).is_some_and(|(_, owned)| *owned));
        self.caller.is_admin() || asked || owns
    }
}

/// Every Datanet `answer` touched, given its ledger `entries`.
pub(crate) fn touched(answer: Option<&AnswerRecord>, entries: &[LedgerEntry]) -> Vec<DatanetId> {
    let mut ids: Vec<DatanetId> = entries
        .iter()
        .filter_map(|e| e.payment.datanet_id)
        .collect();
    if let Some(answer) = answer {
        ids.extend(&answer.datanet_ids);
        ids.extend(answer.citations.iter().map(|c| c.datanet_id));
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The ledger entries of `answer`, read from the ledger.
pub(crate) fn entries_of(
    store: &Store,
    answer: &AnswerRecord,
) -> Result<Vec<LedgerEntry>, provdb_storage::StorageError> {
    let end = answer.first_seq + u64::from(answer.entries);
    let mut entries = Vec::with_capacity(answer.entries as usize);
    if answer.entries == 0 {
        return Ok(entries);
    }
    store.visit_ledger(answer.first_seq, &mut |entry| {
        if entry.seq >= end {
            return Ok(false);
        }
        entries.push(entry);
        Ok(true)
    })?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use provdb_storage::{Address, AnswerId, CitationRecord, NewEntry, RecordId, Role};

    use super::*;

    fn datanet(id: DatanetId, owner: Option<Address>) -> Datanet {
        let mut d = Datanet::new(format!("d{id}"));
        d.id = id;
        d.owner = owner;
        d
    }

    fn answer(caller: Option<Address>, datanets: Vec<DatanetId>, cited: DatanetId) -> AnswerRecord {
        AnswerRecord {
            answer_id: AnswerId([1; 32]),
            ts_ms: 0,
            caller,
            datanet_ids: datanets,
            question: "q".into(),
            text: "t".into(),
            model: "m".into(),
            adapter: None,
            fee_wei: 1,
            attribution: "cited".into(),
            training_attribution: None,
            citations: vec![CitationRecord {
                marker: 1,
                chunk_id: 0,
                record_id: RecordId([2; 32]),
                datanet_id: cited,
                contributor: Address([3; 20]),
                retrieval_score: 1.0,
                weight_ppm: 1_000_000,
            }],
            first_seq: 1,
            entries: 1,
        }
    }

    fn entry(datanet_id: Option<DatanetId>) -> LedgerEntry {
        LedgerEntry {
            seq: 1,
            answer_id: AnswerId([1; 32]),
            ts_ms: 0,
            caller: None,
            payment: NewEntry {
                datanet_id,
                record_id: None,
                chunk_id: None,
                to: Address([4; 20]),
                role: Role::TrainingContributor,
                weight_ppm: 0,
                amount_wei: 1,
            },
            model: "m".into(),
            adapter: Some("a".into()),
            prev_hash: [0; 32],
            entry_hash: [0; 32],
            detail: Default::default(),
        }
    }

    #[test]
    fn an_answer_is_seen_only_when_every_datanet_it_touched_is_readable() {
        let alice = Address([0xaa; 20]);
        let access = AnswerAccess::new(&[datanet(1, None)], Caller::address(alice));
        let a = answer(None, vec![1], 1);
        assert!(access.sees(&touched(Some(&a), &[])));
        // A training Datanet named only by an entry hides the whole answer.
        assert!(!access.sees(&touched(Some(&a), &[entry(Some(2))])));
        assert!(!access.sees(&touched(Some(&answer(None, vec![1, 3], 1)), &[])));
        assert!(!access.sees(&touched(Some(&answer(None, vec![1], 4)), &[])));
    }

    #[test]
    fn a_question_shows_to_its_asker_the_owners_and_admins_only() {
        let (alice, bob, carol) = (
            Address([0xaa; 20]),
            Address([0xbb; 20]),
            Address([0xcc; 20]),
        );
        let readable = [datanet(1, Some(alice))];
        let asked_by_bob = answer(Some(bob), vec![1], 1);
        let ids = touched(Some(&asked_by_bob), &[]);
        let sees = |caller| AnswerAccess::new(&readable, caller).sees_question(&asked_by_bob, &ids);
        assert!(sees(Caller::address(bob)));
        assert!(sees(Caller::address(alice)), "the owner");
        assert!(sees(Caller::admin(carol)));
        assert!(!sees(Caller::address(carol)));
        assert!(!sees(Caller::anonymous()));
        let anonymous_question = answer(None, vec![1], 1);
        assert!(
            !AnswerAccess::new(&readable, Caller::anonymous())
                .sees_question(&anonymous_question, &ids)
        );
    }
}
