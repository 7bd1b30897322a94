//! The synthetic Datanet of `provdb bench sql`: deterministic JSONL files (the same seed gives
//! the same bytes), shaped like a contributed text collection:
//! - 1,000 contributor addresses drawn with a Zipf(1) skew (the top one holds about 13 % of the
//!   records, the tail about 130 each at a million records);
//! - a `text` of words, 50 to 600 bytes, with a quote, a backslash or an accented word now
//!   and then (so JSON escapes and multi-byte characters are exercised), and a short `title`;
//! - four licenses with unequal shares;
//! - `created_at` rising over two years in ingest order, with a day of jitter.
//!
//! Statuses (1 % rejected, 2 % pending) are set after ingest by [`set_statuses`].

use std::io::Write;
use std::path::{Path, PathBuf};

use provdb::{Db, RecordId, Status};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Contributor addresses.
pub(crate) const CONTRIBUTORS: usize = 1000;
/// `created_at` of the first record: 2024-01-01T00:00:00Z, in ms.
pub(crate) const START_MS: i64 = 1_704_067_200_000;
/// The time the records span: two years, in ms.
pub(crate) const SPAN_MS: i64 = 2 * 365 * 86_400_000;
const JITTER_MS: i64 = 86_400_000;
const SEED: u64 = 0x5eed_0005;

const LICENSES: [(&str, u32); 4] = [
    ("CC-BY-4.0", 60),
    ("CC0-1.0", 25),
    ("MIT", 10),
    ("proprietary", 5),
];

/// The vocabulary of texts and titles, separated by whitespace.
const WORDS: &str = "\
data model record chain ledger token provenance query index vector search answer \
citation curator license epoch reward storage batch signal river mountain forest ocean \
city market price energy grid solar wind battery protein enzyme genome cell neuron \
signal theory proof lemma graph matrix tensor kernel compiler parser network packet \
router latency throughput the of and a to in is for on with as by at from that this \
which over under between through during without within among measured observed reported \
estimated computed derived shown found used given made large small rapid slow stable \
novel robust simple complex sparse dense linear local global early late high low new old \
first";
/// Rare words: an accented one (two-byte characters), and ones that need JSON escapes.
const RARE_WORDS: &[&str] = &["café", "naïve", "\"quoted\"", "back\\slash", "Zürich"];

/// The address of the contributor of rank `rank` (0 is the most prolific).
pub(crate) fn contributor(rank: usize) -> String {
    let hash = provdb::storage::keccak256(format!("bench-sql contributor {rank}").as_bytes());
    format!("0x{}", hex::encode(&hash[..20]))
}

/// Cumulative Zipf(1) weights over the contributor ranks.
fn zipf_cdf() -> Vec<f64> {
    let mut total = 0.0;
    let mut cdf: Vec<f64> = (1..=CONTRIBUTORS)
        .map(|k| {
            total += 1.0 / k as f64;
            total
        })
        .collect();
    cdf.iter_mut().for_each(|c| *c /= total);
    cdf
}

fn text(rng: &mut StdRng, words: &[&str]) -> String {
    let target = rng.random_range(50..=600usize);
    let mut out = String::with_capacity(target + 16);
    while out.len() < target {
        if !out.is_empty() {
            out.push(' ');
        }
        let word = if rng.random_ratio(1, 200) {
            RARE_WORDS[rng.random_range(0..RARE_WORDS.len())]
        } else {
            words[rng.random_range(0..words.len())]
        };
        out.push_str(word);
    }
    out
}

fn license(rng: &mut StdRng) -> &'static str {
    let mut pick = rng.random_range(0..100u32);
    for (name, share) in LICENSES {
        if pick < share {
            return name;
        }
        pick -= share;
    }
    LICENSES[0].0
}

/// Writes `records` rows as JSONL files of `per_file` rows in `dir`; returns the paths and
/// the bytes written.
pub(crate) fn write_jsonl(
    dir: &Path,
    records: usize,
    per_file: usize,
) -> anyhow::Result<(Vec<PathBuf>, u64)> {
    fs_err::create_dir_all(dir)?;
    let mut rng = StdRng::seed_from_u64(SEED);
    let cdf = zipf_cdf();
    let addresses: Vec<String> = (0..CONTRIBUTORS).map(contributor).collect();
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let step = SPAN_MS / records.max(1) as i64;
    let (mut paths, mut bytes) = (Vec::new(), 0u64);
    let mut out: Option<std::io::BufWriter<fs_err::File>> = None;
    for i in 0..records {
        if i % per_file == 0 {
            if let Some(mut file) = out.take() {
                file.flush()?;
            }
            let path = dir.join(format!("part-{:04}.jsonl", i / per_file));
            out = Some(std::io::BufWriter::new(fs_err::File::create(&path)?));
            paths.push(path);
        }
        let u: f64 = rng.random();
        let rank = cdf.partition_point(|&c| c < u).min(CONTRIBUTORS - 1);
        let created_at = START_MS + i as i64 * step + rng.random_range(-JITTER_MS..=JITTER_MS);
        let title: Vec<&str> = (0..3)
            .map(|_| words[rng.random_range(0..words.len())])
            .collect();
        let row = serde_json::json!({
            "contributor": addresses[rank],
            "license": license(&mut rng),
            "created_at": created_at,
            "title": title.join(" "),
            "text": text(&mut rng, &words),
        });
        let line = serde_json::to_string(&row)?;
        bytes += line.len() as u64 + 1;
        if let Some(file) = out.as_mut() {
            writeln!(file, "{line}")?;
        }
    }
    if let Some(mut file) = out {
        file.flush()?;
    }
    Ok((paths, bytes))
}

/// Rejects 1 % and puts back to pending 2 % of the records of Datanet `name` (chosen by
/// position in ingest order, so the same records every run); returns how many changed.
pub(crate) fn set_statuses(db: &Db, name: &str) -> anyhow::Result<usize> {
    let datanet = db.store().datanet(name)?;
    let mut changes: Vec<(RecordId, Status)> = Vec::new();
    for (position, record) in db.store().scan_records(datanet.id)?.enumerate() {
        let status = match position % 100 {
            7 => Status::Rejected,
            31 | 64 => Status::Pending,
            _ => continue,
        };
        changes.push((record?.record_id, status));
    }
    for (id, status) in &changes {
        db.set_status(id, *status)?;
    }
    Ok(changes.len())
}
