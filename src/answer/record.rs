//! What an answer leaves in the ledger and shows its caller: one citation per source that was
//! cited or paid (with the share of the data fee the split gave it), one ledger entry per
//! payment, and the answer's id.

use provdb_storage::{AnswerId, CitationRecord, NewEntry, keccak256};

use crate::answer::prompt::clip;
use crate::answer::request::{AskRequest, Citation, Payment};
use crate::answer::sources::Source;
use crate::answer::split::Share;
use crate::db::now_ms;

/// Bytes of a chunk shown as a citation's snippet.
const SNIPPET_BYTES: usize = 160;

/// One citation per source that was cited or paid, with the weight the split gave it.
pub(crate) fn citations_of(
    sources: &[Source],
    markers: &[u32],
    weights: &[u64],
    shares: &[Share],
) -> Vec<Option<(CitationRecord, Citation)>> {
    sources
        .iter()
        .enumerate()
        .map(|(index, source)| {
            let number = index as u32 + 1;
            let cited = markers.contains(&number);
            if !cited && weights[index] == 0 {
                return None;
            }
            let weight_ppm = shares
                .iter()
                .find(|s| s.source.is_some_and(|x| x.chunk_id == source.hit.chunk_id))
                .map_or(0, |s| s.weight_ppm);
            let marker = if cited { number } else { 0 };
            let record = CitationRecord {
                marker,
                chunk_id: source.hit.chunk_id,
                record_id: source.hit.record_id,
                datanet_id: source.datanet.id,
                contributor: source.hit.contributor,
                retrieval_score: source.hit.score,
                weight_ppm,
            };
            let citation = Citation {
                marker,
                chunk_id: source.hit.chunk_id,
                record_id: source.hit.record_id,
                datanet: source.datanet.name.clone(),
                contributor: source.hit.contributor,
                snippet: clip(&source.text, SNIPPET_BYTES).to_string(),
                retrieval_score: source.hit.score,
                weight_ppm,
            };
            Some((record, citation))
        })
        .collect()
}

/// The ledger entry of one payment.
pub(crate) fn entry_of(share: &Share) -> NewEntry {
    NewEntry {
        datanet_id: share.datanet_id,
        record_id: share.source.map(|s| s.record_id),
        chunk_id: share.source.map(|s| s.chunk_id),
        to: share.to,
        role: share.role,
        weight_ppm: share.weight_ppm,
        amount_wei: share.amount_wei,
    }
}

/// keccak256 over the time, the caller, the question, the answer, the sources and 16 random
/// bytes: unique even for the same question asked twice in the same millisecond.
pub(crate) fn answer_id(request: &AskRequest, text: &str, sources: &[Source]) -> AnswerId {
    let mut bytes = Vec::with_capacity(128 + request.question.len() + text.len());
    bytes.extend_from_slice(&now_ms().to_be_bytes());
    bytes.extend_from_slice(&request.caller.who().map_or([0; 20], |a| a.0));
    bytes.extend_from_slice(&rand::random::<[u8; 16]>());
    for part in [request.question.as_bytes(), text.as_bytes()] {
        bytes.extend_from_slice(&(part.len() as u64).to_be_bytes());
        bytes.extend_from_slice(part);
    }
    for source in sources {
        bytes.extend_from_slice(&source.hit.chunk_id.to_be_bytes());
    }
    AnswerId(keccak256(&bytes))
}

/// The payments as the caller sees them.
pub(crate) fn payments_of(shares: &[Share]) -> Vec<Payment> {
    shares
        .iter()
        .map(|s| Payment {
            to: s.to,
            role: s.role,
            amount_wei: s.amount_wei,
        })
        .collect()
}
