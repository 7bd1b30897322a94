//! Near-duplicate detection's core: MinHash signatures of a text's word shingles, banded for
//! locality-sensitive hashing (Broder 1997; Leskovec, Rajaraman and Ullman, *Mining of Massive
//! Datasets*, ch. 3), and the exact Jaccard similarity that confirms a candidate.
//!
//! A text's shingles are its runs of [`SHINGLE_WORDS`] consecutive words, a word being a run of
//! letters and digits, lowercased (a text of fewer words is one shingle of them all), so case,
//! punctuation and spacing never make two texts differ. Each shingle is hashed with xxHash32
//! (seed 0), mixed once with MurmurHash3's finalizer (`fmix32`, a bijection), then permuted
//! [`NUM_PERM`] times as `a·h + b mod 2³²` with `a` odd (a bijection, so a permutation adds no
//! collisions): exactly the `affine32` scheme of the Python `datasketch` package (2.0.0's
//! default) for the same hash and the same `(a, b)`, which is the outside reference the tests
//! check against. The `(a, b)` come from a fixed seed, so a signature is the same on every
//! machine and in every version.
//!
//! Invariants: a signature depends only on the text's shingle set; the estimated similarity of
//! two signatures is the fraction of equal positions; [`Bands`] make two texts candidates when
//! any band's rows all agree, chosen per threshold so that a pair at the threshold is a
//! candidate with probability at least [`RECALL_AT_THRESHOLD`].

use std::collections::BTreeSet;
use std::hash::Hasher;

/// Hash functions (permutations) per signature.
pub const NUM_PERM: usize = 128;
/// Words per shingle.
pub const SHINGLE_WORDS: usize = 3;
/// The seed of the permutations (fixed: signatures are stored).
pub const PERMUTATION_SEED: u64 = 0x7072_6f76_6462_0001;
/// The least probability that a pair exactly at the threshold becomes a candidate.
pub const RECALL_AT_THRESHOLD: f64 = 0.98;

/// A text's MinHash signature.
pub type Signature = [u32; NUM_PERM];

/// The lowercased words of `text` (runs of letters and digits).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().flat_map(char::to_lowercase).collect())
        .collect()
}

/// The shingles of `text` (see the module docs); empty for a text without words.
pub fn shingles(text: &str) -> BTreeSet<String> {
    let words = words(text);
    if words.len() <= SHINGLE_WORDS {
        return if words.is_empty() {
            BTreeSet::new()
        } else {
            BTreeSet::from([words.join(" ")])
        };
    }
    words
        .windows(SHINGLE_WORDS)
        .map(|window| window.join(" "))
        .collect()
}

/// The exact Jaccard similarity of two shingle sets (1 for two empty sets).
pub fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let common = a.intersection(b).count();
    common as f64 / (a.len() + b.len() - common) as f64
}

/// xxHash32 of a shingle (seed 0).
pub fn shingle_hash(shingle: &str) -> u32 {
    let mut hasher = twox_hash::XxHash32::with_seed(0);
    hasher.write(shingle.as_bytes());
    hasher.finish() as u32
}

/// The permutations of the signatures.
#[derive(Clone, Debug)]
pub struct MinHasher {
    a: [u32; NUM_PERM],
    b: [u32; NUM_PERM],
}

/// splitmix64: the permutations' generator.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// MurmurHash3's 32-bit finalizer.
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

impl Default for MinHasher {
    fn default() -> Self {
        Self::with_seed(PERMUTATION_SEED)
    }
}

impl MinHasher {
    /// Permutations drawn from `seed`: `a` odd, `b` any 32-bit value.
    pub fn with_seed(seed: u64) -> Self {
        let mut state = seed;
        let mut a = [0; NUM_PERM];
        let mut b = [0; NUM_PERM];
        for i in 0..NUM_PERM {
            a[i] = (splitmix64(&mut state) as u32) | 1;
            b[i] = splitmix64(&mut state) as u32;
        }
        Self { a, b }
    }

    /// The `(a, b)` parameters (for the outside reference).
    pub fn permutations(&self) -> (&[u32; NUM_PERM], &[u32; NUM_PERM]) {
        (&self.a, &self.b)
    }

    /// The signature of a set of shingle hashes (all `u32::MAX` for an empty set).
    pub fn signature_of_hashes(&self, hashes: impl IntoIterator<Item = u32>) -> Signature {
        let mut signature = [u32::MAX; NUM_PERM];
        for hash in hashes {
            let mixed = fmix32(hash);
            for (slot, (a, b)) in signature.iter_mut().zip(self.a.iter().zip(&self.b)) {
                *slot = (*slot).min(a.wrapping_mul(mixed).wrapping_add(*b));
            }
        }
        signature
    }

    /// The signature of `text`'s shingles.
    pub fn signature(&self, text: &str) -> Signature {
        self.signature_of_hashes(shingles(text).iter().map(|s| shingle_hash(s)))
    }
}

/// The estimated Jaccard similarity of two signatures.
pub fn estimate(a: &Signature, b: &Signature) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / NUM_PERM as f64
}

/// How a signature is cut into bands for locality-sensitive hashing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bands {
    /// Bands.
    pub bands: usize,
    /// Rows per band.
    pub rows: usize,
}

impl Bands {
    /// The bands for `threshold` (in 0..=1): of the splits `bands × rows <= NUM_PERM`, the one
    /// with the fewest bands (the fewest chance candidates) that still makes a pair at the
    /// threshold a candidate with probability at least [`RECALL_AT_THRESHOLD`].
    pub fn for_threshold(threshold: f64) -> Self {
        let threshold = threshold.clamp(0.0, 1.0);
        let mut best = Self {
            bands: NUM_PERM,
            rows: 1,
        };
        for rows in 1..=NUM_PERM {
            let split = Self {
                bands: NUM_PERM / rows,
                rows,
            };
            if split.candidate_probability(threshold) >= RECALL_AT_THRESHOLD && rows > best.rows {
                best = split;
            }
        }
        best
    }

    /// The probability that a pair of similarity `jaccard` becomes a candidate.
    pub fn candidate_probability(&self, jaccard: f64) -> f64 {
        1.0 - (1.0 - jaccard.powi(self.rows as i32)).powi(self.bands as i32)
    }

    /// The key of each band of `signature` (its band number with its rows' values).
    pub fn keys(&self, signature: &Signature) -> Vec<u64> {
        (0..self.bands)
            .map(|band| {
                let mut hasher = twox_hash::XxHash64::with_seed(band as u64);
                for value in &signature[band * self.rows..(band + 1) * self.rows] {
                    hasher.write_u32(*value);
                }
                hasher.finish()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shingles_ignore_case_punctuation_and_spacing() {
        assert_eq!(
            shingles("The Zorbian  glacier, melts!"),
            shingles("the zorbian glacier melts")
        );
        assert_eq!(
            shingles("a b c d"),
            BTreeSet::from(["a b c".to_string(), "b c d".to_string()])
        );
        assert_eq!(
            shingles("Two words"),
            BTreeSet::from(["two words".to_string()])
        );
        assert!(shingles("  ...  ").is_empty());
    }

    #[test]
    fn the_estimate_tracks_the_exact_jaccard() {
        let hasher = MinHasher::default();
        let base: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
        let a = base.join(" ");
        let b = base[..160].join(" ");
        let exact = jaccard(&shingles(&a), &shingles(&b));
        let estimated = estimate(&hasher.signature(&a), &hasher.signature(&b));
        assert!((exact - estimated).abs() < 0.1, "{exact} vs {estimated}");
        assert_eq!(estimate(&hasher.signature(&a), &hasher.signature(&a)), 1.0);
        assert_eq!(hasher.signature(""), [u32::MAX; NUM_PERM]);
    }

    #[test]
    fn bands_give_the_stated_recall_at_the_threshold() {
        for threshold in [0.5, 0.8, 0.9, 0.95] {
            let bands = Bands::for_threshold(threshold);
            assert!(bands.bands * bands.rows <= NUM_PERM);
            assert!(bands.candidate_probability(threshold) >= RECALL_AT_THRESHOLD);
            // One more row per band would lose recall (or not fit).
            let tighter = Bands {
                bands: NUM_PERM / (bands.rows + 1),
                rows: bands.rows + 1,
            };
            assert!(tighter.candidate_probability(threshold) < RECALL_AT_THRESHOLD);
        }
        let bands = Bands::for_threshold(0.8);
        let signature = MinHasher::default().signature("a b c d e");
        assert_eq!(bands.keys(&signature).len(), bands.bands);
    }
}
