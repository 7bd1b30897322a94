//! Retrieval evaluation on test collections with relevance judgments (Cranfield, ADI, ...):
//! loading the queries and judgments, ranking documents from chunk hits, and the metrics
//! nDCG@10 (graded gains), recall@100 and MRR@10.
//!
//! Conventions (`shared/data/ir/README.md`): the n-th query of the query file is judgment
//! query n; judgment lines are whitespace-separated, 3 or 4 columns. In `cranqrel` (3
//! columns) the relevance code 1..4 gives gain `5 - code` and -1 means not relevant; in
//! `*.REL` files every listed pair is relevant with gain 1.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Serialize;

use provdb_storage::{RecordId, record_id_of};

use crate::db::Db;
use crate::demo::document_content;
use crate::error::{Error, Result};
use crate::ingest::canonical_object;
use crate::search::{Fusion, SearchOptions, Weights};
use crate::smart::{SmartDoc, find_file, parse_documents, read_collection_documents};
use provdb_index::Mode;
use provdb_index::fusion::{Ranked, rrf, weighted_sum};

/// Gains of the relevant documents of one query, by document id.
pub type Judgments = HashMap<u32, f64>;

/// A collection: documents, queries and judgments.
#[derive(Clone, Debug)]
pub struct Collection {
    /// Documents.
    pub documents: Vec<SmartDoc>,
    /// Queries as (judgment query number, text), in file order.
    pub queries: Vec<(u32, String)>,
    /// Judgments by query number (queries without a relevant document have none).
    pub judgments: BTreeMap<u32, Judgments>,
}

/// Loads `cran.all.1400`/`cran.qry`/`cranqrel` or `*.ALL`/`*.QRY`/`*.REL` from `dir`.
pub fn load_collection(dir: &Path) -> Result<Collection> {
    let documents = read_collection_documents(dir)?;
    let query_path = find_file(dir, &["cran.qry"], ".QRY")?;
    let text = fs_err::read_to_string(&query_path).map_err(Error::io(&query_path))?;
    let queries = parse_documents(&text, &query_path.display().to_string())?
        .into_iter()
        .enumerate()
        .map(|(n, q)| {
            (
                n as u32 + 1,
                format!("{} {}", q.title, q.text).trim().to_string(),
            )
        })
        .collect();
    let rel_path = find_file(dir, &["cranqrel"], ".REL")?;
    let graded = rel_path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().eq_ignore_ascii_case("cranqrel"));
    let text = fs_err::read_to_string(&rel_path).map_err(Error::io(&rel_path))?;
    let judgments = parse_judgments(&text, graded, &rel_path.display().to_string())?;
    Ok(Collection {
        documents,
        queries,
        judgments,
    })
}

/// Parses a judgment file; `graded` selects the Cranfield gain rule.
pub fn parse_judgments(text: &str, graded: bool, source: &str) -> Result<BTreeMap<u32, Judgments>> {
    let mut out: BTreeMap<u32, Judgments> = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let bad = || {
            Error::Invalid(format!(
                "{source}: line {}: expected 'query doc relevance'",
                index + 1
            ))
        };
        if !(3..=4).contains(&fields.len()) {
            return Err(bad());
        }
        let query: u32 = fields[0].parse().map_err(|_| bad())?;
        let doc: u32 = fields[1].parse().map_err(|_| bad())?;
        let gain = if graded {
            let code: i32 = fields[2].parse().map_err(|_| bad())?;
            if !(1..=4).contains(&code) {
                continue;
            }
            f64::from(5 - code)
        } else {
            1.0
        };
        out.entry(query).or_default().insert(doc, gain);
    }
    Ok(out)
}

/// Metrics of one retrieval mode, averaged over the judged queries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// Normalised discounted cumulative gain at 10 (graded).
    #[serde(rename = "ndcg@10")]
    pub ndcg_at_10: f64,
    /// Share of the relevant documents in the top 100.
    #[serde(rename = "recall@100")]
    pub recall_at_100: f64,
    /// Reciprocal rank of the first relevant document within the top 10.
    #[serde(rename = "mrr@10")]
    pub mrr_at_10: f64,
}

/// nDCG@k of a ranking of document ids.
pub fn ndcg_at(ranking: &[u32], judgments: &Judgments, k: usize) -> f64 {
    let dcg: f64 = ranking
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, doc)| judgments.get(doc).copied().unwrap_or(0.0) / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<f64> = judgments.values().copied().collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| g / (i as f64 + 2.0).log2())
        .sum();
    if idcg > 0.0 { dcg / idcg } else { 0.0 }
}

/// Recall@k of a ranking.
pub fn recall_at(ranking: &[u32], judgments: &Judgments, k: usize) -> f64 {
    if judgments.is_empty() {
        return 0.0;
    }
    let found = ranking
        .iter()
        .take(k)
        .filter(|d| judgments.contains_key(d))
        .count();
    found as f64 / judgments.len() as f64
}

/// Reciprocal rank of the first relevant document within the top k (0 when none).
pub fn mrr_at(ranking: &[u32], judgments: &Judgments, k: usize) -> f64 {
    ranking
        .iter()
        .take(k)
        .position(|d| judgments.contains_key(d))
        .map_or(0.0, |i| 1.0 / (i as f64 + 1.0))
}

/// Documents in order of their best chunk: the first occurrence of each document id.
pub fn documents_in_order(doc_ids_of_hits: impl IntoIterator<Item = u32>) -> Vec<u32> {
    let mut seen = HashSet::new();
    doc_ids_of_hits
        .into_iter()
        .filter(|d| seen.insert(*d))
        .collect()
}

/// Averages the metrics of rankings (one per judged query).
pub fn average(per_query: &[(Vec<u32>, &Judgments)]) -> Metrics {
    let n = per_query.len().max(1) as f64;
    let mut m = Metrics::default();
    for (ranking, judgments) in per_query {
        m.ndcg_at_10 += ndcg_at(ranking, judgments, 10) / n;
        m.recall_at_100 += recall_at(ranking, judgments, 100) / n;
        m.mrr_at_10 += mrr_at(ranking, judgments, 10) / n;
    }
    m
}

/// Document ids of a collection by the record id each document is stored under.
pub fn record_ids_of(documents: &[SmartDoc]) -> HashMap<RecordId, u32> {
    documents
        .iter()
        .map(|doc| {
            (
                record_id_of(&canonical_object(&document_content(doc))),
                doc.id,
            )
        })
        .collect()
}

/// Hits asked for per query: enough chunks for 100 distinct documents in practice.
pub const EVAL_HITS: usize = 300;

/// Runs every judged query of `collection` against Datanet `name` (which holds its documents)
/// with `options` (k is raised to `EVAL_HITS`), and averages the metrics.
pub fn evaluate(
    db: &Db,
    name: &str,
    collection: &Collection,
    options: &SearchOptions,
) -> Result<Metrics> {
    let doc_of = record_ids_of(&collection.documents);
    let options = SearchOptions {
        k: EVAL_HITS,
        ..options.clone()
    };
    let mut per_query = Vec::new();
    for (number, text) in &collection.queries {
        let Some(judgments) = collection.judgments.get(number) else {
            continue;
        };
        let hits = db.search(name, text, &options)?;
        let ranking = documents_in_order(
            hits.iter()
                .filter_map(|h| doc_of.get(&h.record_id).copied()),
        );
        per_query.push((ranking, judgments));
    }
    Ok(average(&per_query))
}

/// One hybrid setting of a sweep and what it scored.
#[derive(Clone, Debug, Serialize)]
pub struct SweepPoint {
    /// "rrf" or "weighted".
    pub fusion: &'static str,
    /// RRF constant (unused by the weighted sum).
    pub rrf_k: f32,
    /// BM25 weight.
    pub bm25_weight: f32,
    /// Vector weight.
    pub vector_weight: f32,
    /// The metrics.
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// The settings a sweep tries: RRF constants crossed with weights, and weighted sums.
pub fn sweep_grid() -> Vec<(Fusion, f32, Weights)> {
    let weights = [
        (1.0, 1.0),
        (1.0, 1.5),
        (1.0, 2.0),
        (1.0, 3.0),
        (1.5, 1.0),
        (2.0, 1.0),
        (3.0, 1.0),
    ];
    let mut grid = Vec::new();
    for rrf_k in [5.0, 10.0, 20.0, 30.0, 60.0, 100.0] {
        for (bm25, vector) in weights {
            grid.push((Fusion::Rrf, rrf_k, Weights { bm25, vector }));
        }
    }
    for (bm25, vector) in weights {
        grid.push((Fusion::WeightedSum, 0.0, Weights { bm25, vector }));
    }
    grid
}

/// Evaluates many hybrid settings at the cost of one BM25 and one vector search per query:
/// the two ranked lists (depth `EVAL_HITS`, as hybrid search uses at that k) are fused here
/// with the index's own fusion functions.
pub fn sweep(
    db: &Db,
    name: &str,
    collection: &Collection,
    grid: &[(Fusion, f32, Weights)],
) -> Result<Vec<SweepPoint>> {
    let doc_of = record_ids_of(&collection.documents);
    let mut lists = Vec::new();
    for (number, text) in &collection.queries {
        let Some(judgments) = collection.judgments.get(number) else {
            continue;
        };
        let mut per_mode = Vec::new();
        for mode in [Mode::Bm25, Mode::Vector] {
            let options = SearchOptions {
                k: EVAL_HITS,
                mode,
                ..SearchOptions::default()
            };
            per_mode.push(db.search(name, text, &options)?);
        }
        let mut chunk_doc: HashMap<u32, u32> = HashMap::new();
        let mut scored = |hits: &[crate::search::SearchHit]| -> Vec<(u32, f32)> {
            hits.iter()
                .filter_map(|h| {
                    let doc = doc_of.get(&h.record_id)?;
                    let key = h.chunk_id as u32;
                    chunk_doc.insert(key, *doc);
                    Some((key, h.score))
                })
                .collect()
        };
        let bm25 = scored(&per_mode[0]);
        let vector = scored(&per_mode[1]);
        lists.push((bm25, vector, chunk_doc, judgments));
    }
    Ok(grid
        .iter()
        .map(|(fusion, rrf_k, weights)| {
            let per_query: Vec<(Vec<u32>, &Judgments)> = lists
                .iter()
                .map(|(bm25, vector, chunk_doc, judgments)| {
                    let ranked = [
                        Ranked {
                            scored: bm25,
                            weight: weights.bm25,
                        },
                        Ranked {
                            scored: vector,
                            weight: weights.vector,
                        },
                    ];
                    let fused = match fusion {
                        Fusion::Rrf => rrf(&ranked, *rrf_k),
                        Fusion::WeightedSum => weighted_sum(&ranked),
                    };
                    let docs = fused
                        .iter()
                        .take(EVAL_HITS)
                        .filter_map(|(c, _)| chunk_doc.get(c).copied());
                    (documents_in_order(docs), *judgments)
                })
                .collect();
            SweepPoint {
                fusion: match fusion {
                    Fusion::Rrf => "rrf",
                    Fusion::WeightedSum => "weighted",
                },
                rrf_k: *rrf_k,
                bm25_weight: weights.bm25,
                vector_weight: weights.vector,
                metrics: average(&per_query),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_of_known_rankings() {
        let judgments: Judgments = [(1, 3.0), (2, 1.0)].into_iter().collect();
        assert!((ndcg_at(&[1, 2, 9], &judgments, 10) - 1.0).abs() < 1e-12);
        let swapped = ndcg_at(&[2, 1], &judgments, 10);
        let expected = (1.0 + 3.0 / 3f64.log2()) / (3.0 + 1.0 / 3f64.log2());
        assert!((swapped - expected).abs() < 1e-12);
        assert!((recall_at(&[9, 2], &judgments, 100) - 0.5).abs() < 1e-12);
        assert!((mrr_at(&[9, 8, 2], &judgments, 10) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(mrr_at(&[9], &judgments, 10), 0.0);
        assert_eq!(documents_in_order([3, 3, 1, 3, 2]), vec![3, 1, 2]);
    }

    #[test]
    fn judgments_parse_both_conventions() -> Result<()> {
        let graded = parse_judgments("1 184 2\n  1 29\t4\n2 12 -1\n", true, "t")?;
        assert_eq!(graded[&1][&184], 3.0);
        assert_eq!(graded[&1][&29], 1.0);
        assert!(!graded.contains_key(&2));
        let binary = parse_judgments(" 1  17 0 0.000000\n", false, "t")?;
        assert_eq!(binary[&1][&17], 1.0);
        assert!(parse_judgments("1 x 2\n", true, "t").is_err());
        Ok(())
    }
}
