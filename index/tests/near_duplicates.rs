//! Near-duplicate detection's core (`provdb_index::minhash`) against its outside reference and
//! against exact Jaccard similarity, on generated near-copies at known similarities: word
//! swaps, punctuation, spacing and case, sentence reordering and word replacements.
//!
//! - The Python `datasketch` package (`scripts/datasketch.sh`, pinned), given provdb's shingles,
//!   permutations and bands, computes the same signatures, bit for bit, and the same LSH
//!   candidate pairs.
//! - Candidates confirmed by exact Jaccard find at least 95 % of the pairs whose exact
//!   similarity is at or above the threshold (recall), and nothing below it (precision).
#![allow(clippy::unwrap_used, reason = "a test fails loudly on purpose")]

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};

use provdb_index::minhash::{Bands, MinHasher, Signature, jaccard, shingles};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const THRESHOLD: f64 = 0.8;

/// A text of `sentences` sentences of 8-14 words from a vocabulary of 400.
fn text(rng: &mut StdRng, sentences: usize) -> Vec<Vec<String>> {
    (0..sentences)
        .map(|_| {
            let words = rng.random_range(8..15);
            (0..words)
                .map(|_| format!("w{}", rng.random_range(0..400)))
                .collect()
        })
        .collect()
}

fn join(sentences: &[Vec<String>]) -> String {
    sentences
        .iter()
        .map(|s| format!("{}.", s.join(" ")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A near-copy of `original`: `kind` picks the change, `amount` how much of it.
fn variant(rng: &mut StdRng, original: &[Vec<String>], kind: usize, amount: usize) -> String {
    let mut sentences = original.to_vec();
    match kind {
        // Punctuation, spacing and case only.
        0 => {
            return join(&sentences)
                .replace(". ", "!   ")
                .to_uppercase()
                .replace('W', "w");
        }
        // Adjacent word swaps.
        1 => {
            for _ in 0..amount {
                let s = rng.random_range(0..sentences.len());
                let len = sentences[s].len();
                let i = rng.random_range(0..len - 1);
                sentences[s].swap(i, i + 1);
            }
        }
        // Sentences reordered.
        2 => sentences.shuffle(rng),
        // Words replaced.
        _ => {
            for _ in 0..amount {
                let s = rng.random_range(0..sentences.len());
                let len = sentences[s].len();
                let i = rng.random_range(0..len);
                sentences[s][i] = format!("x{}", rng.random_range(0..1000));
            }
        }
    }
    join(&sentences)
}

fn corpus() -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(11);
    let mut texts = Vec::new();
    for _ in 0..40 {
        let original = text(&mut rng, 6);
        texts.push(join(&original));
        for kind in 0..4 {
            for amount in [1, 3, 6, 12] {
                texts.push(variant(&mut rng, &original, kind, amount));
            }
        }
    }
    texts
}

/// Pairs sharing a band key.
fn candidates(bands: Bands, signatures: &[Signature]) -> BTreeSet<(usize, usize)> {
    let mut buckets: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, signature) in signatures.iter().enumerate() {
        for key in bands.keys(signature) {
            buckets.entry(key).or_default().push(i);
        }
    }
    let mut pairs = BTreeSet::new();
    for members in buckets.values() {
        for (n, &i) in members.iter().enumerate() {
            for &j in &members[n + 1..] {
                if i != j {
                    pairs.insert((i.min(j), i.max(j)));
                }
            }
        }
    }
    pairs
}

#[test]
fn candidates_confirmed_by_exact_jaccard_find_the_near_copies() {
    let texts = corpus();
    let sets: Vec<BTreeSet<String>> = texts.iter().map(|t| shingles(t)).collect();
    let hasher = MinHasher::default();
    let signatures: Vec<Signature> = texts.iter().map(|t| hasher.signature(t)).collect();
    let bands = Bands::for_threshold(THRESHOLD);
    let found: BTreeSet<(usize, usize)> = candidates(bands, &signatures)
        .into_iter()
        .filter(|&(i, j)| jaccard(&sets[i], &sets[j]) >= THRESHOLD)
        .collect();
    let mut truth = BTreeSet::new();
    let mut similarities = Vec::new();
    for i in 0..texts.len() {
        for j in i + 1..texts.len() {
            let similarity = jaccard(&sets[i], &sets[j]);
            if similarity >= THRESHOLD {
                truth.insert((i, j));
            }
            if similarity > 0.3 {
                similarities.push(similarity);
            }
        }
    }
    // The generated near-copies span the threshold on both sides.
    assert!(similarities.iter().any(|&s| s < THRESHOLD && s > 0.5));
    assert!(
        truth.len() > 100,
        "{} pairs at or above {THRESHOLD}",
        truth.len()
    );
    let recall = found.intersection(&truth).count() as f64 / truth.len() as f64;
    let precision = found.intersection(&truth).count() as f64 / found.len().max(1) as f64;
    eprintln!(
        "{} pairs at or above {THRESHOLD}, bands {bands:?}: recall {recall:.4}, precision {precision:.4}",
        truth.len()
    );
    assert!(recall >= 0.95, "recall {recall}");
    assert!(precision >= 0.95, "precision {precision}");
}

#[test]
fn datasketch_computes_the_same_signatures_and_candidates() {
    let texts = corpus();
    let hasher = MinHasher::default();
    let sets: Vec<Vec<String>> = texts
        .iter()
        .map(|t| shingles(t).into_iter().collect())
        .collect();
    let signatures: Vec<Signature> = texts.iter().map(|t| hasher.signature(t)).collect();
    let bands = Bands::for_threshold(THRESHOLD);
    let (a, b) = hasher.permutations();
    let request = serde_json::json!({
        "a": a.to_vec(), "b": b.to_vec(), "sets": sets,
        "bands": bands.bands, "rows": bands.rows, "threshold": THRESHOLD,
    });
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut child = Command::new("bash")
        .arg(root.join("scripts/datasketch.sh"))
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(child.stdin.take().unwrap(), &request).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "datasketch failed");
    let reference: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let theirs: Vec<Vec<u32>> = serde_json::from_value(reference["signatures"].clone()).unwrap();
    assert_eq!(theirs.len(), signatures.len());
    for (i, (ours, theirs)) in signatures.iter().zip(&theirs).enumerate() {
        assert_eq!(ours.as_slice(), theirs.as_slice(), "signature of text {i}");
    }
    let theirs: BTreeSet<(usize, usize)> =
        serde_json::from_value::<Vec<(usize, usize)>>(reference["candidates"].clone())
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(candidates(bands, &signatures), theirs);
}
