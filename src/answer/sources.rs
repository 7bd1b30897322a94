//! An answer's sources: the top `k` chunks for the question over the Datanets it names, from
//! this database's indexes ([`Db::search_hits`]), with their chunk text.
//!
//! Invariant: a caller only retrieves from Datanets it may read, and one it may not read is
//! refused with the same message as one that does not exist; a Datanet named twice is read
//! (and priced) once.

use provdb_index::{IndexHit, SearchOptions};
use provdb_query::Caller;
use provdb_storage::Datanet;

use crate::db::Db;
use crate::error::{Error, Result};

/// A retrieved source.
pub(crate) struct Source {
    /// The index's hit: chunk, record, contributor, retrieval score.
    pub(crate) hit: IndexHit,
    /// The Datanet it was retrieved from.
    pub(crate) datanet: Datanet,
    /// The chunk's text.
    pub(crate) text: String,
}

/// The Datanets `names` names, each once (in first-named order), as `caller` may read them;
/// one it may not read is refused as unknown.
pub(crate) fn readable_named(db: &Db, caller: Caller, names: &[String]) -> Result<Vec<Datanet>> {
    let store = db.store();
    let mut readable = Vec::new();
    for datanet in store.datanets()? {
        if caller.may_read(store, &datanet)? {
            readable.push(datanet);
        }
    }
    let mut named: Vec<Datanet> = Vec::with_capacity(names.len());
    for name in names {
        if named.iter().any(|d| &d.name == name) {
            continue;
        }
        let datanet = readable
            .iter()
            .find(|d| &d.name == name)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("unknown datanet '{name}'")))?;
        named.push(datanet);
    }
    Ok(named)
}

/// The top `options.k` chunks for `question` over `datanets` (read by [`readable_named`]) as
/// `caller` sees them, best first (ties by chunk id).
pub(crate) fn retrieve(
    db: &Db,
    caller: Caller,
    datanets: &[Datanet],
    question: &str,
    options: &SearchOptions,
) -> Result<Vec<Source>> {
    let store = db.store();
    let mut sources = Vec::new();
    for datanet in datanets {
        let hits = db.search_hits(&datanet.name, question, options, caller)?;
        sources.extend(hits.into_iter().map(|hit| (hit, datanet.clone())));
    }
    sources.sort_by(|a, b| {
        b.0.score
            .total_cmp(&a.0.score)
            .then(a.0.chunk_id.cmp(&b.0.chunk_id))
    });
    sources.truncate(options.k);
    sources
        .into_iter()
        .map(|(hit, datanet)| {
            let chunk = store.chunk(hit.chunk_id)?.ok_or_else(|| {
                Error::Internal(format!("retrieved chunk {} is not stored", hit.chunk_id))
            })?;
            Ok(Source {
                hit,
                datanet,
                text: chunk.text,
            })
        })
        .collect()
}
